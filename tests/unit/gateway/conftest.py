"""A FakeGateway on 127.0.0.1 per test, and a client connected to it over TLS."""

from __future__ import annotations

from pathlib import Path

import pytest

from medfabric.gateway import ConnectOptions, connect
from medfabric.gateway.identity import X509Identity, ecdsa_signer

from .fakegateway import CHAINCODE, CHANNEL, FakeGateway, FakeGatewayServer, make_pki


def pytest_collection_modifyitems(items):
    """A client left waiting for an answer fails its test instead of hanging the run."""
    here = Path(__file__).parent
    for item in items:
        if item.path.is_relative_to(here):
            item.add_marker(pytest.mark.timeout(15))


@pytest.fixture(scope="session")
def pki():
    return make_pki()


@pytest.fixture
def fake(pki):
    fake = FakeGateway(pki.msp_id, pki.client.cert_pem)
    yield fake
    assert fake.rejections == [], "the fake gateway rejected messages the client sent"


@pytest.fixture
def server(fake, pki):
    with FakeGatewayServer(fake, pki) as server:
        yield server


@pytest.fixture
def identity(pki):
    return X509Identity(pki.msp_id, pki.client.cert_pem)


@pytest.fixture
def signer(pki):
    return ecdsa_signer(pki.client.private_key)


@pytest.fixture
def connect_to_fake(server, pki, identity, signer):
    """connect() to the fake over TLS; keyword arguments as connect()'s."""
    opened = []

    def connect_to_fake(signer=signer, options=ConnectOptions()):
        gateway = connect(identity, signer, endpoint=server.address, tls_root_cert=pki.ca.cert_pem,
                          server_name_override=pki.server_name, options=options)
        opened.append(gateway)
        return gateway

    yield connect_to_fake
    for gateway in opened:
        gateway.close()


@pytest.fixture
def gateway(connect_to_fake):
    return connect_to_fake()


@pytest.fixture
def network(gateway):
    return gateway.get_network(CHANNEL)


@pytest.fixture
def contract(network):
    return network.get_contract(CHAINCODE)
