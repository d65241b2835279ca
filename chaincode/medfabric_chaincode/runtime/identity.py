"""The identity that submitted a transaction: MSP id, X.509 certificate, Fabric CA attributes."""

from __future__ import annotations

import json

from cryptography import x509
from cryptography.x509.oid import NameOID
from fabric_protos.msp import identities_pb2
from google.protobuf.message import DecodeError

from .errors import ChaincodeError, TransactionError

FABRIC_ATTRIBUTE_OID = x509.ObjectIdentifier("1.2.3.4.5.6.7.8.1")

# The attributes Go's pkix.Name keeps from a parsed certificate, in the order
# Name.ToRDNSequence emits them; every other attribute is left out of the DN.
_GO_DN_ATTRIBUTES = (
    (NameOID.COUNTRY_NAME, "C"),
    (NameOID.STATE_OR_PROVINCE_NAME, "ST"),
    (NameOID.LOCALITY_NAME, "L"),
    (NameOID.STREET_ADDRESS, "STREET"),
    (NameOID.POSTAL_CODE, "POSTALCODE"),
    (NameOID.ORGANIZATION_NAME, "O"),
    (NameOID.ORGANIZATIONAL_UNIT_NAME, "OU"),
    (NameOID.COMMON_NAME, "CN"),
    (NameOID.SERIAL_NUMBER, "SERIALNUMBER"),
)
_SINGLE_VALUED = (NameOID.COMMON_NAME, NameOID.SERIAL_NUMBER)  # pkix.Name keeps only the last of these
_ESCAPED = ',+"\\<>;'


class ClientIdentity:
    """The creator of a transaction, read from the SerializedIdentity in its proposal."""

    def __init__(self, creator: bytes):
        try:
            identity = identities_pb2.SerializedIdentity.FromString(creator)
            self.certificate = x509.load_pem_x509_certificate(identity.id_bytes)
        except (DecodeError, ValueError):
            raise ChaincodeError("the transaction creator is not an X.509 identity") from None
        self.msp_id: str = identity.mspid
        self._attributes = _fabric_ca_attributes(self.certificate)

    def get_id(self) -> str:
        """`x509::<subject DN>::<issuer DN>`, the DNs written as Go's cid package writes them."""
        subject, issuer = self.certificate.subject, self.certificate.issuer
        return f"x509::{go_distinguished_name(subject)}::{go_distinguished_name(issuer)}"

    def get_attribute(self, name: str) -> str | None:
        """The value of a Fabric CA attribute in the certificate, None if it has none of that name."""
        return self._attributes.get(name)

    def assert_attribute_value(self, name: str, value: str) -> None:
        """TransactionError unless the certificate carries attribute `name` with exactly this value."""
        actual = self.get_attribute(name)
        if actual is None:
            raise TransactionError(f"attribute '{name}' was not found")
        if actual != value:
            raise TransactionError(f"attribute '{name}' equals '{actual}', not '{value}'")


def go_distinguished_name(name: x509.Name) -> str:
    """The DN as Go's cid package writes it: last RDN first, repeated attribute types joined with '+'."""
    rdns = []
    for oid, label in _GO_DN_ATTRIBUTES:
        values = [attribute.value for attribute in name if attribute.oid == oid and isinstance(attribute.value, str)]
        if oid in _SINGLE_VALUED:
            values = values[-1:]
        if values:
            rdns.append("+".join(f"{label}={_escape(value)}" for value in values))
    return ",".join(reversed(rdns))


def _escape(value: str) -> str:
    escaped = []
    for index, char in enumerate(value):
        at_edge = (index == 0 and char in " #") or (index == len(value) - 1 and char == " ")
        escaped.append("\\" + char if at_edge or char in _ESCAPED else char)
    return "".join(escaped)


def _fabric_ca_attributes(certificate: x509.Certificate) -> dict[str, str]:
    try:
        extension = certificate.extensions.get_extension_for_oid(FABRIC_ATTRIBUTE_OID)
    except x509.ExtensionNotFound:
        return {}
    try:
        attributes = json.loads(extension.value.value).get("attrs") or {}
    except (ValueError, AttributeError):
        attributes = None
    if not isinstance(attributes, dict) or not all(isinstance(v, str) for v in attributes.values()):
        raise ChaincodeError("the creator's certificate has a malformed Fabric CA attribute extension")
    return attributes
