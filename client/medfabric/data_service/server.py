"""A domain's data service over HTTP: `python -m medfabric.data_service --domain hospital-a [--port N] [--store DIR]`.

    GET    /identity                  the service's certificate, MSP id and key id (wrap data keys to it)
    POST   /records                   store a sealed record (owner's users)            201 {record_id, address}
    POST   /records/<id>/fetch        deliver it, re-wrapped for an allowed requester   200 {blob, wrapped_key, delivery}
    DELETE /records/<id>              erase it: ciphertext and key destroyed            200; fetches then get 410

Bodies and answers are JSON; errors are {"error": "<one line>"}: 400 malformed,
403 refused, 404 unknown, 409 stored data fails its check, 410 erased, 503
ledger or access log unavailable. The rules: medfabric.data_service.record_service; the
ledger protocols: medfabric.data_service.service_ledger, over Fabric in medfabric.data_service.ledger_access.
The access log lines (stderr) name method, path, status and the verified
requester MSP only: never a payload, key or statement.
"""

from __future__ import annotations

import argparse
import os
import json
import logging
import re
import signal
import sys
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

from medfabric.consortium.connection import connect_as
from medfabric.errors import MedfabricError
from medfabric.consortium.layout import NetworkLayout
from medfabric.data_service.ledger_access import LedgerAccessDecisions, LedgerAuditSink, LedgerFlRecords
from medfabric.data_service.record_service import RecordService, Reply
from medfabric.consortium.service_identity import SERVICE_USER, Consortium, ServiceIdentity
from medfabric.data_service.store import RECORD_ID, FileBlobStore, FileKeyStore
from medfabric.consortium.topology import TopologyError, load_topology

MAX_BODY_BYTES = 32 * 1024 * 1024
_RECORD_PATH = re.compile(rf"/records/({RECORD_ID.pattern})")
_FETCH_PATH = re.compile(rf"/records/({RECORD_ID.pattern})/fetch")
_log = logging.getLogger(__name__)


class DataServiceServer(ThreadingHTTPServer):
    """A threading HTTP server answering for one RecordService."""

    daemon_threads = True

    def __init__(self, service: RecordService, host: str, port: int):
        super().__init__((host, port), _Handler)
        self.service = service

    def handle_error(self, request: object, client_address: tuple[str, int]) -> None:
        """One line instead of socketserver's traceback."""
        _log.error("request from %s failed: %s", client_address[0], sys.exc_info()[0].__name__)


class _Handler(BaseHTTPRequestHandler):
    server: DataServiceServer
    server_version = "medfabric-data-service"
    sys_version = ""
    timeout = 30  # seconds a client may stall on the socket
    _requester_msp: str | None = None  # of the reply, for the access log line

    def do_GET(self) -> None:
        self._answer(self._route("GET"))

    def do_POST(self) -> None:
        self._answer(self._route("POST"))

    def do_DELETE(self) -> None:
        self._answer(self._route("DELETE"))

    def _route(self, method: str) -> Reply:
        service, path = self.server.service, urlsplit(self.path).path
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            return _error(HTTPStatus.BAD_REQUEST, "Content-Length is not a number")
        if length > MAX_BODY_BYTES:
            return _error(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"request body is over {MAX_BODY_BYTES} bytes")
        body = self.rfile.read(length) if length > 0 else b""
        if path == "/identity":
            return service.identity() if method == "GET" else _not_allowed()
        if path == "/records":
            return service.store(body) if method == "POST" else _not_allowed()
        if match := _FETCH_PATH.fullmatch(path):
            return service.fetch(match[1], body) if method == "POST" else _not_allowed()
        if match := _RECORD_PATH.fullmatch(path):
            return service.erase(match[1], body) if method == "DELETE" else _not_allowed()
        return _error(HTTPStatus.NOT_FOUND, "no such endpoint")

    def _answer(self, reply: Reply) -> None:
        data = json.dumps(reply.body, separators=(",", ":")).encode() + b"\n"
        self._requester_msp = reply.requester_msp
        self.send_response(reply.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(data)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        _log.info("%s %s %s %s", self.command, ascii(self.path)[1:-1], int(code), self._requester_msp or "-")


def _error(status: int, message: str) -> Reply:
    return Reply(status, {"error": message})


def _not_allowed() -> Reply:
    return _error(HTTPStatus.METHOD_NOT_ALLOWED, "method not allowed on this endpoint")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line instead of usage and error
        self.exit(2, f"{self.prog}: {message}\n")


def main(argv: list[str] | None = None) -> int:
    """Serve one domain's records until SIGTERM or SIGINT; the exit status (2: cannot start)."""
    parser = _Parser(prog="python -m medfabric.data_service", description="Serve a domain's sealed EMR payloads.")
    parser.add_argument("--domain", required=True, help="the domain whose records this service keeps")
    parser.add_argument("--port", type=int, help="port on the topology's host (default: the domain's)")
    parser.add_argument("--store", type=Path, help="store folder (default: <build>/data/data-service.<org domain>)")
    parser.add_argument("--identity", default=SERVICE_USER,
                        help="the domain user the service acts as: its key opens the stored data keys")
    parser.add_argument("--topology", default=os.environ.get("MEDFABRIC_TOPOLOGY"),
                        help="consortium description (default: $MEDFABRIC_TOPOLOGY or network/topology.yaml)")
    parser.add_argument("--listen", help="address to bind (default: the topology's host; 0.0.0.0 in a container)")
    args = parser.parse_args(argv)
    try:
        topology, layout = load_topology(args.topology), NetworkLayout.default()
        domain = topology.domain(args.domain)
        identity = ServiceIdentity.load(layout.user_msp(domain, args.identity), domain.msp_id)
        consortium = Consortium.from_layout(topology, layout, domain.id)
        store = args.store or layout.node_data(f"data-service.{domain.org_domain}")
        gateway = connect_as(domain.id, args.identity, topology=topology, layout=layout)
    except (MedfabricError, TopologyError, OSError) as error:
        print(f"{parser.prog}: {error}", file=sys.stderr)
        return 2
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    with gateway:
        service = RecordService(
            identity, consortium, FileBlobStore(store / "blobs"), FileKeyStore(store / "keys"),
            LedgerAccessDecisions(gateway), LedgerAuditSink(gateway, consortium),
            fl_ledger=LedgerFlRecords(gateway, {member.id: member.msp_id for member in topology.domains}),
        )
        port = domain.data_service_port if args.port is None else args.port
        listen = args.listen or topology.host
        try:
            server = DataServiceServer(service, listen, port)
        except OSError as error:
            print(f"{parser.prog}: cannot listen on {listen}:{port}: {error.strerror}", file=sys.stderr)
            return 2
        _serve_until_signalled(server)
    return 0


def _serve_until_signalled(server: DataServiceServer) -> None:
    stopping = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopping.set())
    worker = threading.Thread(target=server.serve_forever, name="data-service", daemon=True)
    worker.start()
    _log.info("data service listening on %s:%d", *server.server_address[:2])
    stopping.wait()
    server.shutdown()
    server.server_close()


if __name__ == "__main__":
    sys.exit(main())
