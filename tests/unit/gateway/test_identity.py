"""Identities and signers: low-S ECDSA that the fake (like a peer) accepts, and MSP folders."""

import hashlib
import os
import re

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed, decode_dss_signature
from fabric_protos.msp import identities_pb2

from medfabric.errors import MedfabricError
from medfabric.gateway import connect
from medfabric.gateway.identity import X509Identity, ecdsa_signer, load_msp_identity

from .fakegateway import CHAINCODE, CHANNEL, FakeGateway, FakeGatewayServer, issue, make_pki

CURVES = {"P-256": ec.SECP256R1(), "P-384": ec.SECP384R1()}
ORDERS = {
    "P-256": 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551,
    "P-384": 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF581A0DB248B0A77AECEC196ACCC52973,
}


@pytest.mark.parametrize("curve", CURVES)
def test_signatures_are_low_s_and_verify_over_the_digest(curve):
    key = ec.generate_private_key(CURVES[curve])
    sign = ecdsa_signer(key)
    for _ in range(200):
        digest = hashlib.sha256(os.urandom(32)).digest()
        signature = sign(digest)
        assert decode_dss_signature(signature)[1] <= ORDERS[curve] // 2
        key.public_key().verify(signature, digest, ec.ECDSA(Prehashed(hashes.SHA256())))
        with pytest.raises(InvalidSignature):
            key.public_key().verify(signature, hashlib.sha256(digest).digest(), ec.ECDSA(Prehashed(hashes.SHA256())))


@pytest.fixture
def connect_with_pki():
    """A gateway to a fresh fake serving `pki`; checks the fake rejected nothing."""
    opened = []

    def connect_with_pki(pki):
        fake = FakeGateway(pki.msp_id, pki.client.cert_pem)
        server = FakeGatewayServer(fake, pki)
        gateway = connect(X509Identity(pki.msp_id, pki.client.cert_pem), ecdsa_signer(pki.client.private_key),
                          endpoint=server.address, tls_root_cert=pki.ca.cert_pem, server_name_override=pki.server_name)
        opened.append((fake, server, gateway))
        return gateway

    yield connect_with_pki
    for fake, server, gateway in opened:
        gateway.close()
        server.stop()
        assert fake.rejections == []


@pytest.mark.parametrize("curve", CURVES)
def test_fake_peer_accepts_the_signers_proposals(curve, connect_with_pki):
    pki = make_pki(client_curve=CURVES[curve])
    contract = connect_with_pki(pki).get_network(CHANNEL).get_contract(CHAINCODE)

    for _ in range(5):
        assert contract.submit_transaction("CreateAsset") == b"CreateAsset"


def test_other_curves_are_refused():
    with pytest.raises(ValueError, match="P-256 or P-384"):
        ecdsa_signer(ec.generate_private_key(ec.SECP521R1()))


def test_identity_serializes_as_the_creator_peers_read():
    identity = X509Identity("Org1MSP", b"-----BEGIN CERTIFICATE-----\n...")

    creator = identities_pb2.SerializedIdentity.FromString(identity.serialize())
    assert (creator.mspid, creator.id_bytes) == ("Org1MSP", b"-----BEGIN CERTIFICATE-----\n...")


# --- MSP folders


def write_msp(root, cert_pem, keys, cert_name="cert.pem"):
    """An MSP folder: signcerts/<cert_name>, keystore/<name> for each (name, PEM) in `keys`."""
    (root / "signcerts").mkdir(parents=True)
    (root / "keystore").mkdir()
    (root / "signcerts" / cert_name).write_bytes(cert_pem)
    for name, pem in keys:
        (root / "keystore" / name).write_bytes(pem)
    return root


def test_cryptogen_msp_loads_and_signs_for_its_certificate(tmp_path):
    user = issue("User1@org1.example.com")
    msp = write_msp(tmp_path / "msp", user.cert_pem, [("priv_sk", user.key_pem)], "User1@org1.example.com-cert.pem")

    identity, sign = load_msp_identity(msp, "Org1MSP")

    assert identity == X509Identity("Org1MSP", user.cert_pem)
    digest = hashlib.sha256(b"proposal").digest()
    user.certificate.public_key().verify(sign(digest), digest, ec.ECDSA(Prehashed(hashes.SHA256())))


def test_the_key_matching_the_certificate_is_picked_among_several(tmp_path):
    user, others = issue("user"), [issue("old"), issue("other")]
    keys = [("a_sk", others[0].key_pem), ("key.pem", user.key_pem), ("z_sk", others[1].key_pem)]
    msp = write_msp(tmp_path / "msp", user.cert_pem, keys)

    _, sign = load_msp_identity(msp, "Org1MSP")

    digest = hashlib.sha256(b"x").digest()
    user.certificate.public_key().verify(sign(digest), digest, ec.ECDSA(Prehashed(hashes.SHA256())))


def encrypted_pem(credentials):
    return credentials.private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.BestAvailableEncryption(b"pw")
    )


@pytest.mark.parametrize("layout, message", [
    ("missing", "no MSP folder at"),
    ("no certificate", "expected one signing certificate (*.pem) in"),
    ("no key", "no private key (*_sk or *.pem) in"),
    ("other key", "none of the 1 keys in"),
    ("encrypted key", "is not an unencrypted PEM private key"),
])
def test_incomplete_msp_folder_is_a_clear_error(tmp_path, layout, message):
    user, other = issue("user"), issue("other")
    msp = tmp_path / "msp"
    if layout == "no certificate":
        write_msp(msp, user.cert_pem, [("priv_sk", user.key_pem)])
        (msp / "signcerts" / "cert.pem").unlink()
    elif layout == "no key":
        write_msp(msp, user.cert_pem, [])
    elif layout == "other key":
        write_msp(msp, user.cert_pem, [("priv_sk", other.key_pem)])
    elif layout == "encrypted key":
        write_msp(msp, user.cert_pem, [("priv_sk", encrypted_pem(user))])

    with pytest.raises(MedfabricError, match=re.escape(message)) as raised:
        load_msp_identity(msp, "Org1MSP")
    assert "PRIVATE KEY" not in str(raised.value)
