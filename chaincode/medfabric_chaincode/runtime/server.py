"""The gRPC server peers connect to (chaincode as a service): protos.Chaincode/Connect."""

from __future__ import annotations

import logging
import weakref
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import grpc
from fabric_protos.peer import chaincode_shim_pb2, chaincode_shim_pb2_grpc

from .config import ServerConfig, TlsConfig
from .errors import ConfigError
from .handler import PeerSession
from .router import ContractRouter

logger = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 100 * 1024 * 1024  # the peer's own limit for chaincode messages
GRPC_OPTIONS = (
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    # The peer pings its chaincode connections (peer.keepalive.client.interval, 60 s by
    # default), also when no call is active; gRPC's default policy answers pings more
    # frequent than every 5 minutes with GOAWAY and cuts the peer off.
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.min_ping_interval_without_data_ms", 5_000),
    ("grpc.http2.max_ping_strikes", 0),
    # A second server on a busy port must fail to start, not silently share the port.
    ("grpc.so_reuseport", 0),
)


class ChaincodeServer:
    """Serves the router's contracts to every peer that connects; one stream per peer."""

    def __init__(self, config: ServerConfig, router: ContractRouter, *, workers: int = 64, max_streams: int = 16):
        self._config = config
        self._router = router
        self._workers = ThreadPoolExecutor(workers, thread_name_prefix="chaincode-tx")
        self._sessions: weakref.WeakSet[PeerSession] = weakref.WeakSet()
        # A stream holds one thread for its whole life; beyond max_streams peers are refused, not queued.
        stream_threads = ThreadPoolExecutor(max_streams, thread_name_prefix="chaincode-stream")
        self._server = grpc.server(stream_threads, options=GRPC_OPTIONS, maximum_concurrent_rpcs=max_streams)
        chaincode_shim_pb2_grpc.add_ChaincodeServicer_to_server(_ChaincodeService(self._new_session), self._server)

    def start(self) -> int:
        """Listen and serve; the bound port (the one the system chose if the address asks for port 0)."""
        address, tls = self._config.address, self._config.tls
        try:
            if tls is None:
                port = self._server.add_insecure_port(address)
            else:
                port = self._server.add_secure_port(address, _credentials(tls))
        except RuntimeError:  # recent gRPC raises where older versions returned 0
            port = 0
        if not port:
            raise ConfigError(f"cannot listen on {address}: the address is in use or not local")
        self._server.start()
        mode = "plaintext" if tls is None else "mutual TLS" if tls.client_ca else "TLS"
        logger.info("serving chaincode %s on port %d (%s)", self._config.chaincode_id, port, mode)
        return port

    def stop(self, grace: float | None = 5.0) -> None:
        """Refuse new peers and transactions; running transactions get `grace` seconds, then every stream ends."""
        stopped = self._server.stop(grace)
        for session in list(self._sessions):
            session.drain()
        stopped.wait()
        self._workers.shutdown(wait=False, cancel_futures=True)

    def _new_session(self) -> PeerSession:
        session = PeerSession(self._config.chaincode_id, self._router, self._workers)
        self._sessions.add(session)
        return session


class _ChaincodeService(chaincode_shim_pb2_grpc.ChaincodeServicer):
    def __init__(self, new_session):
        self._new_session = new_session

    def Connect(self, request_iterator, context) -> Iterator[chaincode_shim_pb2.ChaincodeMessage]:
        logger.info("peer connected from %s", context.peer())
        return self._new_session().serve(request_iterator, context)


def _credentials(tls: TlsConfig) -> grpc.ServerCredentials:
    return grpc.ssl_server_credentials(
        [(tls.key, tls.cert)], root_certificates=tls.client_ca, require_client_auth=tls.client_ca is not None
    )
