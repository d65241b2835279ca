"""DataServiceClient against a tiny HTTP server: answers read, errors in one line, the identity asked once."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator

import pytest

from medfabric.data_service.client import DataServiceClient, DataServiceError

IDENTITY = {"msp_id": "HospitalAMSP", "certificate_pem": "-----BEGIN CERTIFICATE-----...", "key_id": "k1"}


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self.server.requests.append(self.path)
        status, body = (200, json.dumps(IDENTITY)) if self.path == "/identity" else (404, '{"error": "no\\nsuch"}')
        self.send_response(status)
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def service() -> Iterator[tuple[DataServiceClient, list[str]]]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.requests = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield DataServiceClient("hospital-a", f"http://127.0.0.1:{server.server_address[1]}"), server.requests
    finally:
        server.shutdown()
        server.server_close()


def test_the_identity_is_asked_once_per_client(service):
    client, requests = service

    first = client.identity()
    first["msp_id"] = "changed by the caller"

    assert client.identity() == IDENTITY
    assert requests == ["/identity"]


def test_an_error_answer_is_one_line_with_its_status(service):
    client, _ = service

    with pytest.raises(DataServiceError) as refused:
        client._call("GET", "/elsewhere")

    assert str(refused.value) == "data service of hospital-a: no such (HTTP 404)" and refused.value.status == 404


def test_an_unreachable_service_is_one_line_without_status():
    client = DataServiceClient("hospital-b", "http://127.0.0.1:9", timeout_s=2)

    with pytest.raises(DataServiceError, match="cannot reach the data service of hospital-b at 127.0.0.1:9") as failed:
        client.identity()
    assert failed.value.status is None
