"""The channel participation client against a real local HTTPS server that demands a client certificate."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from medfabric.consortium.layout import NetworkLayout
from medfabric.consortium.topology import load_topology
from medfabric_ops.osnadmin import ChannelInfo, ChannelNotFound, OSNAdmin, OSNAdminError

ORDERER_HOST = "raft0.orderer.hospital-a.medfabric.local"
ADMIN_NAME = "Admin@orderer.hospital-a.medfabric.local"
BLOCK = bytes(range(256)) * 3 + b"\r\n--not-a-boundary\r\n"


def _certificate(subject: str, key, issuer_name: str, issuer_key, *, ca: bool = False, dns: str | None = None):
    now = dt.datetime.now(dt.timezone.utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer_name)]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        builder = builder.add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=False, data_encipherment=False,
            key_agreement=False, key_cert_sign=True, crl_sign=True, encipher_only=False, decipher_only=False,
        ), critical=True).add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    else:
        builder = builder.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
                                        critical=False)
    if dns:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(dns)]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _write(path: Path, cert, key=None, key_path: Path | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    if key is not None:
        key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """An orderer org TLS CA, the orderer's server pair (DNS name only, no IP) and its admin's client pair."""
    folder = tmp_path_factory.mktemp("pki")
    ca_name, ca_key = "tlsca.orderer.hospital-a.medfabric.local", ec.generate_private_key(ec.SECP256R1())
    server_key, client_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    _write(folder / "ca.crt", _certificate(ca_name, ca_key, ca_name, ca_key, ca=True))
    _write(folder / "server.crt", _certificate(ORDERER_HOST, server_key, ca_name, ca_key, dns=ORDERER_HOST),
           server_key, folder / "server.key")
    _write(folder / "client.crt", _certificate(ADMIN_NAME, client_key, ca_name, ca_key), client_key,
           folder / "client.key")
    return folder


class FakeOrderer(ThreadingHTTPServer):
    """Answers each (method, path) with a scripted (status, JSON) and remembers every request."""

    def __init__(self, pki: Path):
        super().__init__(("127.0.0.1", 0), _Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(pki / "server.crt", pki / "server.key")
        context.load_verify_locations(pki / "ca.crt")
        context.verify_mode = ssl.CERT_REQUIRED
        self.socket = context.wrap_socket(self.socket, server_side=True)
        self.answers: dict[tuple[str, str], tuple[int, object]] = {}
        self.requests: list[dict] = []


class _Handler(BaseHTTPRequestHandler):
    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        client = dict(item[0] for item in self.connection.getpeercert()["subject"])
        self.server.requests.append({
            "method": self.command, "path": self.path, "headers": dict(self.headers),
            "body": self.rfile.read(length), "client": client["commonName"],
        })
        status, doc = self.server.answers.get((self.command, self.path), (404, {"error": "not found"}))
        body = b"" if doc is None else json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_DELETE = _answer

    def log_message(self, *args):
        pass


@pytest.fixture
def orderer(pki):
    server = FakeOrderer(pki)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def admin(orderer, pki):
    return OSNAdmin("127.0.0.1", orderer.server_address[1], ORDERER_HOST, pki / "ca.crt", pki / "client.crt",
                    pki / "client.key", timeout=5)


def _multipart_parts(content_type: str, body: bytes) -> list[tuple[bytes, bytes]]:
    """(headers, content) of each part of a multipart/form-data body."""
    media_type, _, parameter = content_type.partition("; ")
    assert media_type == "multipart/form-data" and parameter.startswith("boundary=")
    delimiter = b"--" + parameter.removeprefix("boundary=").encode()
    sections = body.split(b"\r\n" + delimiter)
    assert sections[0].startswith(delimiter + b"\r\n") and sections[-1] == b"--\r\n"
    sections[0] = sections[0].removeprefix(delimiter)
    parts = []
    for section in sections[:-1]:
        headers, _, content = section.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        parts.append((headers, content))
    return parts


def test_join_posts_the_block_as_the_config_block_form_file(orderer, admin):
    joined = {"name": "public", "url": "/participation/v1/channels/public", "consensusRelation": "consenter",
              "status": "active", "height": 1}
    orderer.answers[("POST", "/participation/v1/channels")] = (201, joined)

    assert admin.join("public", BLOCK) == ChannelInfo("public", "active", "consenter", 1)

    [request] = orderer.requests
    [(headers, content)] = _multipart_parts(request["headers"]["Content-Type"], request["body"])
    assert b'Content-Disposition: form-data; name="config-block"; filename=' in headers
    assert content == BLOCK
    assert request["client"] == ADMIN_NAME


def test_join_with_a_block_of_another_channel_is_an_error(orderer, admin):
    orderer.answers[("POST", "/participation/v1/channels")] = (201, {"name": "other", "status": "active"})
    with pytest.raises(OSNAdminError, match="the block given to join 'public' is of channel 'other'"):
        admin.join("public", BLOCK)


def test_a_refused_join_names_the_http_status_and_the_orderers_error(orderer, admin):
    orderer.answers[("POST", "/participation/v1/channels")] = (
        405, {"error": "cannot join: channel already exists"})
    with pytest.raises(OSNAdminError) as error:
        admin.join("public", BLOCK)
    assert error.value.status == 405
    assert str(error.value) == (f"POST /participation/v1/channels on {ORDERER_HOST} (127.0.0.1:"
                                f"{orderer.server_address[1]}): HTTP 405: cannot join: channel already exists")


def test_list_names_the_channels(orderer, admin):
    orderer.answers[("GET", "/participation/v1/channels")] = (200, {"channels": [
        {"name": "hospital-a-local", "url": "/participation/v1/channels/hospital-a-local"},
        {"name": "public", "url": "/participation/v1/channels/public"},
    ]})
    assert admin.list() == ["hospital-a-local", "public"]
    orderer.answers[("GET", "/participation/v1/channels")] = (200, {"channels": None})
    assert admin.list() == []


def test_info_reads_status_relation_and_height(orderer, admin):
    orderer.answers[("GET", "/participation/v1/channels/public")] = (200, {
        "name": "public", "url": "/participation/v1/channels/public", "consensusRelation": "follower",
        "status": "onboarding", "height": 7})
    assert admin.info("public") == ChannelInfo("public", "onboarding", "follower", 7)
    assert orderer.requests[0]["headers"]["Accept"] == "application/json"


def test_info_of_a_channel_the_orderer_is_not_in_is_channel_not_found(orderer, admin):
    orderer.answers[("GET", "/participation/v1/channels/public")] = (
        404, {"error": "channel does not exist"})
    with pytest.raises(ChannelNotFound, match="HTTP 404: channel does not exist"):
        admin.info("public")


def test_remove_deletes_the_channel(orderer, admin):
    orderer.answers[("DELETE", "/participation/v1/channels/public")] = (204, None)
    admin.remove("public")
    assert [(r["method"], r["path"]) for r in orderer.requests] == [("DELETE", "/participation/v1/channels/public")]


def test_the_orderer_certificate_is_checked_against_its_host_name(orderer, pki):
    impostor = OSNAdmin("127.0.0.1", orderer.server_address[1], "bft9.orderer.elsewhere", pki / "ca.crt",
                        pki / "client.crt", pki / "client.key", timeout=5)
    with pytest.raises(OSNAdminError, match=r"CERTIFICATE_VERIFY_FAILED|certificate verify failed"):
        impostor.list()
    assert orderer.requests == []


def test_an_unreachable_orderer_is_an_osnadmin_error(pki):
    admin = OSNAdmin("127.0.0.1", 9, ORDERER_HOST, pki / "ca.crt", pki / "client.crt", pki / "client.key")
    with pytest.raises(OSNAdminError, match=r"GET /participation/v1/channels on raft0\.orderer.*Connection refused"):
        admin.list()


def test_for_orderer_uses_the_orderer_org_admin_tls_files(orderer, pki, tmp_path):
    topology = load_topology()
    layout = NetworkLayout(tmp_path / "network")
    orderer_node = dataclasses.replace(topology.orderers[0], admin_port=orderer.server_address[1])
    domain = topology.orderer_domain(orderer_node)
    assert orderer_node.host_name == ORDERER_HOST
    credentials = layout.orderer_admin_tls(domain)
    credentials.mkdir(parents=True)
    layout.orderer_tls_ca(domain).parent.mkdir(parents=True)
    for name in ("client.crt", "client.key"):
        (credentials / name).write_bytes((pki / name).read_bytes())
    layout.orderer_tls_ca(domain).write_bytes((pki / "ca.crt").read_bytes())
    orderer.answers[("GET", "/participation/v1/channels")] = (200, {"channels": []})

    assert OSNAdmin.for_orderer(topology, layout, orderer_node).list() == []
    assert orderer.requests[0]["client"] == ADMIN_NAME
