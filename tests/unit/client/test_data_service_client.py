"""DataServiceClient against a tiny HTTPS server: answers read, errors in one line, the identity asked once, TLS
failures named."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator

import pytest

from medfabric.consortium.service_identity import SERVICE_USER
from medfabric.consortium.topology import load_topology
from medfabric.data_service.client import DataServiceClient, DataServiceError
from medfabric.data_service.transport import ConsortiumTlsCas, caller_context, server_context, user_tls_files

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
def tls_server(crypto_layout) -> Iterator[ThreadingHTTPServer]:
    """hospital-a's data-service certificate, client certificates of the consortium required."""
    topology = load_topology()
    context = server_context(user_tls_files(crypto_layout, topology.domain("hospital-a"), SERVICE_USER),
                             ConsortiumTlsCas.from_layout(topology, crypto_layout))
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    server.requests = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def client_of(server, layout, served: str = "hospital-a", caller: str = "hospital-b") -> DataServiceClient:
    topology = load_topology()
    tls = caller_context(layout, topology.domain(served), topology.domain(caller), "doctor")
    return DataServiceClient("hospital-a", f"https://127.0.0.1:{server.server_address[1]}", tls, timeout_s=5)


def test_the_identity_is_asked_once_per_client(tls_server, crypto_layout):
    client = client_of(tls_server, crypto_layout)

    first = client.identity()
    first["msp_id"] = "changed by the caller"

    assert client.identity() == IDENTITY
    assert tls_server.requests == ["/identity"]


def test_an_error_answer_is_one_line_with_its_status(tls_server, crypto_layout):
    with pytest.raises(DataServiceError) as refused:
        client_of(tls_server, crypto_layout)._call("GET", "/elsewhere")

    assert str(refused.value) == "data service of hospital-a: no such (HTTP 404)" and refused.value.status == 404


def test_a_server_certificate_of_another_domains_ca_is_not_trusted(tls_server, crypto_layout):
    client = client_of(tls_server, crypto_layout, served="hospital-c")

    with pytest.raises(DataServiceError, match=r"cannot reach the data service of hospital-a at 127\.0\.0\.1:\d+: "
                                               r"TLS: [a-z -]*certificate[a-z -]*$"):
        client.identity()
    assert tls_server.requests == []


def test_an_unreachable_service_is_one_line_without_status(crypto_layout):
    topology = load_topology()
    tls = caller_context(crypto_layout, topology.domain("hospital-b"), topology.domain("hospital-a"), "doctor")
    client = DataServiceClient("hospital-b", "https://127.0.0.1:9", tls, timeout_s=2)

    with pytest.raises(DataServiceError, match="cannot reach the data service of hospital-b at 127.0.0.1:9") as failed:
        client.identity()
    assert failed.value.status is None
