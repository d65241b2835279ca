"""A domain's data service over HTTPS: `python -m medfabric.data_service --domain hospital-a [--port N] [--store DIR]`.

    GET    /identity                  the service's certificate, MSP id and key id (wrap data keys to it)
    POST   /records                   store a sealed record (owner's users)            201 {record_id, address}
    POST   /records/<id>/fetch        deliver it, re-wrapped for an allowed requester   200 {blob, wrapped_key, delivery}
    DELETE /records/<id>              erase it: ciphertext and key destroyed            200; fetches then get 410

Starlette on uvicorn, TLS with mutual authentication (medfabric.data_service.transport): the service shows
its data-service user's TLS certificate and takes only callers with a client certificate from one of the
consortium's TLS CAs; that caller must have signed the request's statement. Bodies and answers are JSON;
errors are {"error": "<one line>"}: 400 malformed, 403 refused, 404 unknown, 409 stored data fails its check,
410 erased, 413 too large, 429 too many refused requests from this client (Retry-After), 503 ledger or access
log unavailable. A client's requests are worked on at most eight at a time, the rest waiting their turn
(medfabric.data_service.fair_share). The rules: medfabric.data_service.record_service; the ledger protocols:
medfabric.data_service.service_ledger, over Fabric in medfabric.data_service.ledger_access.
A thread destroys payloads whose put never completed (stored, never indexed: medfabric.data_service.orphan_sweep).
The access log lines (stderr) name method, path, status and the TLS client only: never a payload, key or
statement.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import math
import os
import signal
import socket
import ssl
import sys
import threading
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any, Callable

import uvicorn
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from uvicorn.protocols.http.h11_impl import H11Protocol

from medfabric.consortium.connection import connect_as
from medfabric.consortium.layout import NetworkLayout
from medfabric.consortium.service_identity import SERVICE_USER, Consortium, ServiceIdentity
from medfabric.consortium.topology import TopologyError, load_topology
from medfabric.data_service.fair_share import FairShare
from medfabric.data_service.ledger_access import (
    LedgerAccessDecisions, LedgerAuditSink, LedgerEmrIndex, LedgerFlRecords
)
from medfabric.data_service.record_service import RecordService, Reply
from medfabric.data_service.refusal_budget import RefusalGate
from medfabric.data_service.store import RECORD_ID, FileBlobStore, FileKeyStore, FilePendingPuts
from medfabric.data_service.transport import ConsortiumTlsCas, TlsPeer, server_context, user_tls_files
from medfabric.errors import MedfabricError

MAX_BODY_BYTES = 32 * 1024 * 1024
_log = logging.getLogger(__name__)

Handler = Callable[[bytes, TlsPeer], Reply]


class _JsonLine(JSONResponse):
    """Compact JSON and a newline: one line per answer, never cached."""

    def __init__(self, content: Any, status_code: int = 200):
        super().__init__(content, status_code=status_code, headers={"Cache-Control": "no-store"})

    def render(self, content: Any) -> bytes:
        return json.dumps(content, separators=(",", ":")).encode() + b"\n"


def create_app(service: RecordService, cas: ConsortiumTlsCas, gate: RefusalGate | None = None,
               share: FairShare | None = None) -> Starlette:
    """The service's routes; every request needs a TLS client certificate of the consortium (`cas`). A client's
    requests go to the worker threads a few at a time (`share`), so that no client takes them all."""
    gate = gate or RefusalGate()
    share = share or FairShare()

    async def answer(request: Request, handle: Handler) -> JSONResponse:
        peer = _tls_peer(request, cas)
        if peer is None:
            return _logged(request, None, _error(403, "no client certificate of a consortium member"))
        wait_s = gate.wait_s(peer)
        if wait_s > 0:
            response = _error(429, f"too many refused requests from {peer}: retry in {math.ceil(wait_s)} s")
            response.headers["Retry-After"] = str(math.ceil(wait_s))
            return _logged(request, peer, response)
        body = await _body(request)
        if isinstance(body, JSONResponse):
            gate.refused(peer)
            return _logged(request, peer, body)
        async with share.slot(peer):
            reply = await run_in_threadpool(handle, body, peer)
        if 400 <= reply.status < 500:
            gate.refused(peer)
        return _logged(request, peer, _JsonLine(reply.body, reply.status))

    async def identity(request: Request) -> JSONResponse:
        return await answer(request, lambda _body, _peer: service.identity())

    async def store(request: Request) -> JSONResponse:
        return await answer(request, service.store)

    async def fetch(request: Request) -> JSONResponse:
        return await answer(request, partial(service.fetch, _record_id(request)))

    async def erase(request: Request) -> JSONResponse:
        return await answer(request, partial(service.erase, _record_id(request)))

    async def http_error(request: Request, error: Exception) -> JSONResponse:
        status = error.status_code if isinstance(error, HTTPException) else 500
        message = {404: "no such endpoint", 405: "method not allowed on this endpoint"}.get(status, "bad request")
        peer = _tls_peer(request, cas)
        if peer is not None:
            gate.refused(peer)
        return _logged(request, peer, _error(status, message))

    return Starlette(
        routes=[
            Route("/identity", identity, methods=["GET"]),
            Route("/records", store, methods=["POST"]),
            Route("/records/{record_id}/fetch", fetch, methods=["POST"]),
            Route("/records/{record_id}", erase, methods=["DELETE"]),
        ],
        exception_handlers={HTTPException: http_error},
    )


def _record_id(request: Request) -> str:
    """The path's record id; a path whose id is not one (RECORD_ID) names no endpoint."""
    record_id = request.path_params["record_id"]
    if not RECORD_ID.fullmatch(record_id):
        raise HTTPException(404)
    return record_id


def _tls_peer(request: Request, cas: ConsortiumTlsCas) -> TlsPeer | None:
    chain = request.scope.get("extensions", {}).get("tls", {}).get("client_cert_chain") or []
    return cas.peer_of(chain[0]) if chain else None


async def _body(request: Request) -> bytes | JSONResponse:
    """The request body, or the 400/413 answer when its length is wrong; never more than MAX_BODY_BYTES read."""
    try:
        declared = int(request.headers.get("content-length") or 0)
    except ValueError:
        return _error(400, "Content-Length is not a number")
    if declared > MAX_BODY_BYTES:
        return _error(413, f"request body is over {MAX_BODY_BYTES} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return _error(413, f"request body is over {MAX_BODY_BYTES} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _error(status: int, message: str) -> JSONResponse:
    return _JsonLine({"error": message}, status)


def _logged(request: Request, peer: TlsPeer | None, response: JSONResponse) -> JSONResponse:
    _log.info("%s %s %d %s", request.method, ascii(request.url.path)[1:-1], response.status_code, peer or "-")
    return response


class _ClientCertH11Protocol(H11Protocol):
    """uvicorn's h11 protocol that hands the application the connection's verified client certificate, as the
    ASGI TLS extension's client_cert_chain (uvicorn does not fill that extension itself)."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        ssl_object = transport.get_extra_info("ssl_object")
        der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
        if der:
            self.app = partial(_with_client_certificate, self.app, ssl.DER_cert_to_PEM_cert(der))


async def _with_client_certificate(app: Any, certificate_pem: str, scope: dict, receive: Any, send: Any) -> None:
    extensions = scope.setdefault("extensions", {})
    extensions["tls"] = {"client_cert_chain": [certificate_pem], "server_cert": None}
    await app(scope, receive, send)


class DataServiceServer:
    """The app on uvicorn over TLS, its socket bound on construction (OSError then, not later)."""

    def __init__(self, app: Starlette, context: ssl.SSLContext, host: str, port: int):
        self._socket = _listening_socket(host, port)
        config = uvicorn.Config(
            app, http=_ClientCertH11Protocol, ssl_context_factory=lambda _config, _default: context,
            lifespan="off", access_log=False, log_level="warning", timeout_keep_alive=5,
            timeout_graceful_shutdown=10,
        )
        self._server = uvicorn.Server(config)

    @property
    def server_address(self) -> tuple[str, int]:
        return self._socket.getsockname()[:2]

    def serve_forever(self) -> None:
        """Serve until shutdown() (or, in the main thread, SIGTERM or SIGINT)."""
        self._server.run(sockets=[self._socket])

    def shutdown(self) -> None:
        self._server.should_exit = True

    def server_close(self) -> None:
        self._socket.close()


def _listening_socket(host: str, port: int) -> socket.socket:
    """A TCP socket whose protocol is IPPROTO_TCP, not 0 (socket.create_server's): asyncio sets TCP_NODELAY only on
    such sockets' connections, and without it a response's body waited 40 ms for the client's delayed ACK."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listening = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listening.bind((host, port))
        listening.listen(socket.SOMAXCONN)
    except OSError:
        listening.close()
        raise
    return listening


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
        cas = ConsortiumTlsCas.from_layout(topology, layout)
        context = server_context(user_tls_files(layout, domain, args.identity), cas)
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
            pending=FilePendingPuts(store / "keys" / "pending"),
            orphan_grace=timedelta(milliseconds=topology.orphan_grace_ms),
        )
        sweep = service.orphan_sweep(LedgerEmrIndex(gateway))
        stop_sweeping = threading.Event()
        sweeper = threading.Thread(target=sweep.run_every, args=(sweep.interval_s, stop_sweeping),
                                   name="orphan-sweep", daemon=True)
        port = domain.data_service_port if args.port is None else args.port
        listen = args.listen or topology.host
        try:
            server = DataServiceServer(create_app(service, cas), context, listen, port)
        except OSError as error:
            print(f"{parser.prog}: cannot listen on {listen}:{port}: {error.strerror}", file=sys.stderr)
            return 2
        _log.info("data service listening on https://%s:%d", *server.server_address)
        # uvicorn stops on SIGTERM/SIGINT, then raises the signal again for the handler it found: a no-op one, so
        # that the gateway closes and the service exits 0.
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: None)
        sweeper.start()
        try:
            server.serve_forever()
        finally:
            stop_sweeping.set()
            server.server_close()
            sweeper.join(timeout=10)
            service.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
