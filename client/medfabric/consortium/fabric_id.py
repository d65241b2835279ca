"""The id Fabric's chaincode gives an X.509 identity (cid GetID), computed on the client side.

The access log records who acted as `x509::<subject DN>::<issuer DN>`; a service
that meets the same identity off chain, in a signed statement, computes the same
string to match the two. This mirrors medfabric_chaincode.runtime.identity (the
client does not import the chaincode package); a test pins the two together.
"""

from __future__ import annotations

from cryptography import x509
from cryptography.x509.oid import NameOID

# The attributes Go's pkix.Name keeps, in the order Name.ToRDNSequence emits them.
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


def fabric_client_id(certificate: x509.Certificate) -> str:
    """`x509::<subject DN>::<issuer DN>`, as the chaincode's ClientIdentity.get_id writes it."""
    return f"x509::{_go_distinguished_name(certificate.subject)}::{_go_distinguished_name(certificate.issuer)}"


def _go_distinguished_name(name: x509.Name) -> str:
    """Last RDN first, repeated attribute types joined with '+', as Go's pkix.Name.String writes it."""
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
