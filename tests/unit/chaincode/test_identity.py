"""ClientIdentity: Fabric's x509::subject::issuer id with Go's DN rules, Fabric CA attributes."""

from __future__ import annotations

import pytest
from cryptography.x509.oid import NameOID
from fabric_protos.msp import identities_pb2

from medfabric_chaincode.runtime import ChaincodeError, ClientIdentity, TransactionError
from medfabric_chaincode.runtime.identity import go_distinguished_name

from . import pki
from .conftest import MSP_ID

CA_DN = "CN=ca.hospital-a,O=hospital-a"
DOCTOR_DN = "CN=doctor1,OU=client+OU=hospital-a,O=Hyperledger,ST=North Carolina,C=US"


def test_id_is_subject_and_issuer_in_go_form(identities):
    identity = ClientIdentity(identities.creator)

    assert identity.msp_id == MSP_ID
    assert identity.get_id() == f"x509::{DOCTOR_DN}::{CA_DN}"


def test_dn_follows_go_attribute_order_whatever_the_certificate_order():
    name = pki.name(
        (NameOID.COMMON_NAME, "nurse7"),
        (NameOID.SERIAL_NUMBER, "42"),
        (NameOID.ORGANIZATIONAL_UNIT_NAME, "ward-3"),
        (NameOID.POSTAL_CODE, "27601"),
        (NameOID.LOCALITY_NAME, "Raleigh"),
        (NameOID.STREET_ADDRESS, "1 Main St"),
        (NameOID.COUNTRY_NAME, "US"),
        (NameOID.ORGANIZATION_NAME, "Hospital A"),
        (NameOID.STATE_OR_PROVINCE_NAME, "NC"),
    )

    assert go_distinguished_name(name) == (
        "SERIALNUMBER=42,CN=nurse7,OU=ward-3,O=Hospital A,POSTALCODE=27601,STREET=1 Main St,L=Raleigh,ST=NC,C=US"
    )


def test_dn_keeps_only_the_last_common_name_and_drops_attributes_go_does_not_parse():
    name = pki.name(
        (NameOID.COMMON_NAME, "first"),
        (NameOID.EMAIL_ADDRESS, "doctor@example.org"),
        (NameOID.DOMAIN_COMPONENT, "org"),
        (NameOID.COMMON_NAME, "second"),
    )

    assert go_distinguished_name(name) == "CN=second"


@pytest.mark.parametrize(
    "value, written",
    [
        ("Doe, John", "Doe\\, John"),
        ('a+b"c\\d<e>f;g', 'a\\+b\\"c\\\\d\\<e\\>f\\;g'),
        ("#1", "\\#1"),
        (" padded ", "\\ padded\\ "),
        ("mid # and = stay", "mid # and = stay"),
    ],
)
def test_dn_escapes_values_like_go(value, written):
    assert go_distinguished_name(pki.name((NameOID.COMMON_NAME, value))) == f"CN={written}"


def test_attributes_from_the_fabric_ca_extension(identities):
    identity = ClientIdentity(identities.creator)

    assert identity.get_attribute("role") == "doctor"
    assert identity.get_attribute("hf.EnrollmentID") == "doctor1"
    assert identity.get_attribute("absent") is None
    identity.assert_attribute_value("role", "doctor")


def test_assert_attribute_value_refuses(identities):
    identity = ClientIdentity(identities.creator)

    with pytest.raises(TransactionError, match="^attribute 'role' equals 'doctor', not 'nurse'$"):
        identity.assert_attribute_value("role", "nurse")
    with pytest.raises(TransactionError, match="^attribute 'ward' was not found$"):
        identity.assert_attribute_value("ward", "3")


def test_certificate_without_extension_has_no_attributes(identities):
    plain = pki.issue(pki.name((NameOID.COMMON_NAME, "plain")), identities.ca)

    assert ClientIdentity(pki.serialized_identity(MSP_ID, plain)).get_attribute("role") is None


@pytest.mark.parametrize(
    "extension",
    [b"not json", b'["attrs"]', b'{"attrs": ["role"]}', b'{"attrs": {"level": 3}}', b"\xff\xfe"],
)
def test_malformed_attribute_extension_is_refused(identities, extension):
    odd = pki.issue(pki.name((NameOID.COMMON_NAME, "odd")), identities.ca, attributes=extension)

    with pytest.raises(ChaincodeError, match="malformed Fabric CA attribute extension"):
        ClientIdentity(pki.serialized_identity(MSP_ID, odd))


@pytest.mark.parametrize(
    "creator",
    [
        b"\xff\xff",
        identities_pb2.SerializedIdentity(mspid=MSP_ID, id_bytes=b"idemix credential").SerializeToString(),
    ],
)
def test_creator_must_be_an_x509_identity(creator):
    with pytest.raises(ChaincodeError, match="not an X.509 identity"):
        ClientIdentity(creator)


def test_contract_sees_the_caller(peer):
    result = peer.invoke("Identity", "role")

    assert result.json() == {"msp_id": MSP_ID, "id": f"x509::{DOCTOR_DN}::{CA_DN}", "attribute": "doctor"}


def test_contract_call_with_malformed_extension_fails_cleanly(peer, identities):
    odd = pki.issue(pki.name((NameOID.COMMON_NAME, "odd")), identities.ca, attributes=b"{broken")
    creator = pki.serialized_identity(MSP_ID, odd)

    result = peer.invoke("Identity", "role", creator=creator)

    assert result.status == 500
    assert result.message == "the creator's certificate has a malformed Fabric CA attribute extension"


def test_the_domain_binding_is_read_from_the_environment_and_checked():
    import pytest as _pytest

    from medfabric_chaincode.contracts.common import DomainBindingError, domain_msps

    assert domain_msps({"MEDFABRIC_DOMAIN_MSPS": '{"b":"BMSP","a":"AMSP"}'}) == {"a": "AMSP", "b": "BMSP"}
    for setting, problem in [("", "is not set"), ("{", "is not JSON"), ('{"A!":"X"}', "must map domain ids"),
                             ('{"a":"X","b":"X"}', "binds one MSP to two domains"), ("[]", "must map domain ids")]:
        with _pytest.raises(DomainBindingError, match=problem):
            domain_msps({"MEDFABRIC_DOMAIN_MSPS": setting})


def test_the_server_refuses_to_start_without_the_binding(monkeypatch, capsys):
    from medfabric_chaincode.__main__ import main

    monkeypatch.delenv("MEDFABRIC_DOMAIN_MSPS", raising=False)
    assert main(["--address", "127.0.0.1:0", "--id", "cc:1", "--tls-disabled"]) == 2
    assert "MEDFABRIC_DOMAIN_MSPS is not set" in capsys.readouterr().err
