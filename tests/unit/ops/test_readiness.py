"""When a native orderer or peer counts as ready: real sockets shaped like Fabric's start-up.

Both nodes serve /healthz (operations) from the first moment of start-up. The orderer opens
its channel participation (admin) endpoint only after it has loaded every channel, and the
peer binds its gRPC port early but answers TLS handshakes only once its channels are loaded.
`up` joins channels right after readiness, so /healthz alone lets it talk to an endpoint that
refuses or stays silent (reliably so on `up` after `down`, when there are ledgers to load).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import http.server
import socket
import ssl
import threading

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from medfabric_ops.network import orderer_ready, peer_ready
from medfabric_ops.process import all_of, tls_handshake


class _Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == "/healthz" else 404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def operations():
    """A /healthz that answers 200, like a Fabric node's operations endpoint during start-up."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.fixture
def bound_but_not_serving():
    """A port that is bound and listening but never accepts: the kernel completes TCP connects,
    nobody answers a TLS ClientHello (Fabric's gRPC server between net.Listen and Serve)."""
    listener = socket.create_server(("127.0.0.1", 0))
    yield listener.getsockname()[1]
    listener.close()


@pytest.fixture
def tls_server(tmp_path):
    """A TLS server that completes handshakes, offering h2 like a gRPC server."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "peer")])
    now = dt.datetime.now(dt.timezone.utc)
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                   .serial_number(1).not_valid_before(now - dt.timedelta(minutes=1))
                   .not_valid_after(now + dt.timedelta(hours=1)).sign(key, hashes.SHA256()))
    cert_file, key_file = tmp_path / "server.crt", tmp_path / "server.key"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    context.set_alpn_protocols(["h2"])
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve():
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                connection, _address = listener.accept()
            except OSError:
                continue
            try:
                with context.wrap_socket(connection, server_side=True):
                    pass
            except (OSError, ssl.SSLError):
                pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join(2)
    listener.close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_tls_handshake_needs_a_server_that_answers_not_just_a_bound_port(bound_but_not_serving, tls_server):
    assert not tls_handshake("127.0.0.1", free_port(), timeout=0.3)()
    assert not tls_handshake("127.0.0.1", bound_but_not_serving, timeout=0.3)()
    assert tls_handshake("127.0.0.1", tls_server)()


def test_all_of_wants_every_probe():
    assert all_of(lambda: True, lambda: True)()
    assert not all_of(lambda: True, lambda: False)()


def test_an_orderer_is_not_ready_until_its_admin_endpoint_accepts(topology, operations):
    orderer = dataclasses.replace(topology.orderers[0], operations_port=operations, admin_port=free_port())
    assert not orderer_ready(orderer)(), "/healthz answers but the admin endpoint is still closed"
    admin = socket.create_server(("127.0.0.1", orderer.admin_port))
    try:
        assert orderer_ready(orderer)()
    finally:
        admin.close()


def test_a_peer_is_not_ready_until_its_grpc_endpoint_serves(topology, operations, bound_but_not_serving,
                                                             tls_server):
    loading = dataclasses.replace(topology.peers[0], operations_port=operations, listen_port=bound_but_not_serving)
    assert not peer_ready(loading)(), "/healthz answers but the gRPC port does not serve yet"
    serving = dataclasses.replace(loading, listen_port=tls_server)
    assert peer_ready(serving)()


def test_neither_is_ready_without_healthz(topology, tls_server):
    orderer = dataclasses.replace(topology.orderers[0], operations_port=free_port(), admin_port=tls_server)
    peer = dataclasses.replace(topology.peers[0], operations_port=free_port(), listen_port=tls_server)
    assert not orderer_ready(orderer)() and not peer_ready(peer)()
