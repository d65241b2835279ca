"""Fixtures: a chaincode server on 127.0.0.1 (port 0), a fake peer connected to it, client identities."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from cryptography.x509.oid import NameOID

from medfabric_chaincode.runtime import ChaincodeServer, ContractRouter, ServerConfig

from . import pki
from .fakepeer import FakePeer
from .probe_contract import GATE, ProbeContract

PACKAGE_ID = "medfabric_0.1.0:0123456789abcdef"
MSP_ID = "HospitalAMSP"
PLAINTEXT = ServerConfig(address="127.0.0.1:0", chaincode_id=PACKAGE_ID, tls=None)


@dataclass(frozen=True)
class Identities:
    ca: pki.Credential
    doctor: pki.Credential  # pki.USER_NAME, Fabric CA attributes role=doctor and hf.EnrollmentID=doctor1
    creator: bytes  # the doctor as a SerializedIdentity of MSP_ID


@pytest.fixture(scope="session")
def identities() -> Identities:
    ca = pki.issue(pki.name((NameOID.ORGANIZATION_NAME, "hospital-a"), (NameOID.COMMON_NAME, "ca.hospital-a")), ca=True)
    doctor = pki.issue(pki.USER_NAME, ca, attributes={"role": "doctor", "hf.EnrollmentID": "doctor1",
                                                     "medfabric.domain": "hospital-a"})
    return Identities(ca, doctor, pki.serialized_identity(MSP_ID, doctor))


@pytest.fixture
def start_server():
    """start_server(config, contracts) -> the port of a started server; every server is stopped afterwards."""
    servers = []

    def start(config: ServerConfig = PLAINTEXT, contracts=(ProbeContract,)) -> int:
        server = ChaincodeServer(config, ContractRouter(contracts))
        servers.append(server)
        return server.start()

    yield start
    for server in servers:
        server.stop(0)


@pytest.fixture
def open_peer(identities):
    """open_peer(port, **options) -> a FakePeer for the port, not yet connected; closed afterwards."""
    peers = []

    def open_peer(port: int, **options) -> FakePeer:
        peer = FakePeer(f"127.0.0.1:{port}", identities.creator, identities.doctor.key, **options)
        peers.append(peer)
        return peer

    yield open_peer
    for peer in peers:
        peer.close()


@pytest.fixture
def connect(start_server, open_peer):
    """connect(*contracts, **peer_options) -> a FakePeer registered with a plaintext server of the contracts."""

    def connect(*contracts, **peer_options) -> FakePeer:
        peer = open_peer(start_server(contracts=contracts or (ProbeContract,)), **peer_options)
        peer.connect()
        return peer

    return connect


@pytest.fixture
def peer(connect) -> FakePeer:
    """A fake peer registered with a server of the probe contract."""
    return connect()


@pytest.fixture(autouse=True)
def _closed_gate():
    GATE.clear()
    yield
    GATE.set()  # never leave a worker waiting
