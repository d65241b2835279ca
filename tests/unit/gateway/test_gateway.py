"""Connecting: TLS with a server name override, and owned versus borrowed gRPC channels."""

import grpc
import pytest

from medfabric.gateway import GatewayError, connect

from .fakegateway import CHAINCODE, CHANNEL


def read_asset(gateway) -> bytes:
    return gateway.get_network(CHANNEL).get_contract(CHAINCODE).evaluate_transaction("ReadAsset")


def test_tls_with_the_name_in_the_peers_certificate(server, pki, identity, signer):
    with connect(identity, signer, endpoint=server.address, tls_root_cert=pki.ca.cert_pem,
                 server_name_override=pki.server_name) as gateway:
        assert read_asset(gateway) == b"ReadAsset"
        assert gateway.identity is identity


@pytest.mark.parametrize("server_name", ["peer1.org1.example.com", None])
def test_tls_with_another_name_fails(server, pki, identity, signer, fake, server_name):
    with connect(identity, signer, endpoint=server.address, tls_root_cert=pki.ca.cert_pem,
                 server_name_override=server_name) as gateway:
        with pytest.raises(GatewayError) as raised:
            read_asset(gateway)
    assert raised.value.grpc_code == grpc.StatusCode.UNAVAILABLE
    assert fake.invocations == []


def secure_channel(server, pki):
    credentials = grpc.ssl_channel_credentials(root_certificates=pki.ca.cert_pem)
    return grpc.secure_channel(server.address, credentials, [("grpc.ssl_target_name_override", pki.server_name)])


def test_a_borrowed_channel_stays_open(server, pki, identity, signer):
    with secure_channel(server, pki) as channel:
        with connect(identity, signer, channel) as gateway:
            read_asset(gateway)
        with connect(identity, signer, channel) as second_gateway:
            assert read_asset(second_gateway) == b"ReadAsset"


def test_an_owned_channel_closes_with_the_gateway(gateway):
    read_asset(gateway)
    gateway.close()

    with pytest.raises(ValueError, match="closed channel"):
        read_asset(gateway)


@pytest.mark.parametrize("arguments", [
    {},
    {"channel": "a channel", "endpoint": "localhost:7051"},
    {"channel": "a channel", "tls_root_cert": b"pem"},
    {"endpoint": "localhost:7051", "server_name_override": "peer0"},
])
def test_connect_refuses_unclear_connection_settings(identity, arguments):
    with pytest.raises(ValueError):
        connect(identity, **arguments)
