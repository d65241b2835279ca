"""Certificates for the tests, made with `cryptography`: client identities and TLS material."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from ipaddress import IPv4Address

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from fabric_protos.msp import identities_pb2

FABRIC_ATTRIBUTE_OID = x509.ObjectIdentifier("1.2.3.4.5.6.7.8.1")
_VALID_FROM = datetime(2024, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Credential:
    key: ec.EllipticCurvePrivateKey
    certificate: x509.Certificate

    @property
    def cert_pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    @property
    def key_pem(self) -> bytes:
        return self.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )


def name(*attributes: tuple[x509.ObjectIdentifier, str]) -> x509.Name:
    """A name with one RDN per attribute, in the order given."""
    return x509.Name([x509.RelativeDistinguishedName([x509.NameAttribute(oid, value)]) for oid, value in attributes])


def issue(
    subject: x509.Name,
    issuer: Credential | None = None,
    *,
    attributes: dict[str, object] | bytes | None = None,
    ca: bool = False,
    server: bool = False,
) -> Credential:
    """A P-256 certificate for `subject`, signed by `issuer` (self-signed without one).

    `attributes` become a Fabric CA attribute extension (bytes are written as they are).
    """
    key = ec.generate_private_key(ec.SECP256R1())
    signer_key = issuer.key if issuer else key
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.certificate.subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_VALID_FROM)
        .not_valid_after(_VALID_FROM + timedelta(days=36500))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if attributes is not None:
        value = attributes if isinstance(attributes, bytes) else json.dumps({"attrs": attributes}).encode()
        builder = builder.add_extension(x509.UnrecognizedExtension(FABRIC_ATTRIBUTE_OID, value), critical=False)
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(IPv4Address("127.0.0.1"))]),
            critical=False,
        ).add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
    return Credential(key, builder.sign(signer_key, hashes.SHA256()))


def serialized_identity(msp_id: str, credential: Credential) -> bytes:
    """The creator bytes of a proposal: msp.SerializedIdentity with the PEM certificate."""
    return identities_pb2.SerializedIdentity(mspid=msp_id, id_bytes=credential.cert_pem).SerializeToString()


USER_NAME = name(
    (NameOID.COUNTRY_NAME, "US"),
    (NameOID.STATE_OR_PROVINCE_NAME, "North Carolina"),
    (NameOID.ORGANIZATION_NAME, "Hyperledger"),
    (NameOID.ORGANIZATIONAL_UNIT_NAME, "client"),
    (NameOID.ORGANIZATIONAL_UNIT_NAME, "hospital-a"),
    (NameOID.COMMON_NAME, "doctor1"),
)
