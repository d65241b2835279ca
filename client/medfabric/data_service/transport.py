"""TLS between a domain's data service and its callers, authenticated both ways by the domains' Fabric identities.

The service presents its data-service user's TLS server certificate (issued by its domain's TLS CA) and
requires of every caller a client certificate issued by one of the consortium's TLS CAs, before any request is
read. The caller that certificate names (its domain's MSP, its common name) must be the signer of the request's
statement (medfabric.data_service.record_service), and it is whom the refusal gate counts.

    >>> cas = ConsortiumTlsCas.from_layout(topology, layout)
    >>> context = server_context(user_tls_files(layout, domain, "data-service"), cas)
    >>> client = caller_context(layout, served=domain, caller=reader, user="doctor")
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Mapping

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

from medfabric.consortium.layout import NetworkLayout
from medfabric.consortium.topology import Domain, Topology
from medfabric.errors import MedfabricError


class TransportError(MedfabricError):
    """TLS material that is missing or unreadable; one line naming the file."""


@dataclass(frozen=True)
class TlsPeer:
    """Who is at the other end of a verified TLS connection: a domain's MSP and the certificate's common name."""

    msp_id: str
    common_name: str

    def __str__(self) -> str:
        return f"{self.common_name} of {self.msp_id}"


@dataclass(frozen=True)
class TlsFiles:
    """A user's TLS certificate and key (PEM files)."""

    certificate: Path
    key: Path


def user_tls_files(layout: NetworkLayout, domain: Domain, user: str) -> TlsFiles:
    """The user's TLS key pair: server.* for the users that serve (they authenticate as clients with it too),
    client.* for everyone else."""
    folder = layout.user_dir(domain, user) / "tls"
    for side in ("server", "client"):
        files = TlsFiles(folder / f"{side}.crt", folder / f"{side}.key")
        if files.certificate.is_file() and files.key.is_file():
            return files
    raise TransportError(f"no TLS certificate for {user} of {domain.id} in {folder}: run `make setup`")


class ConsortiumTlsCas:
    """Each member's TLS CA certificate, by MSP id: the only issuers a data service accepts clients from."""

    def __init__(self, certificates: Mapping[str, x509.Certificate]):
        self._certificates = dict(sorted(certificates.items()))

    @classmethod
    def from_layout(cls, topology: Topology, layout: NetworkLayout) -> "ConsortiumTlsCas":
        certificates = {}
        for member in topology.domains:
            path = layout.peer_tls_ca(member)
            try:
                certificates[member.msp_id] = x509.load_pem_x509_certificate(path.read_bytes())
            except (OSError, ValueError) as error:
                reason = getattr(error, "strerror", None) or str(error)
                raise TransportError(f"cannot read the TLS CA of {member.id} at {path}: {reason}") from None
        return cls(certificates)

    def pem_bundle(self) -> str:
        return "".join(certificate.public_bytes(serialization.Encoding.PEM).decode()
                       for certificate in self._certificates.values())

    def peer_of(self, certificate_pem: str) -> TlsPeer | None:
        """The member whose TLS CA issued this (already chain-verified) certificate; None for any other."""
        return _peer_of(certificate_pem, tuple(self._certificates.items()))


@lru_cache(maxsize=1024)
def _peer_of(certificate_pem: str, cas: tuple[tuple[str, x509.Certificate], ...]) -> TlsPeer | None:
    try:
        certificate = x509.load_pem_x509_certificate(certificate_pem.encode())
    except ValueError:
        return None
    names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if not names:
        return None
    for msp_id, ca in cas:
        if certificate.issuer != ca.subject:
            continue
        try:
            certificate.verify_directly_issued_by(ca)
        except (ValueError, TypeError, InvalidSignature):
            continue
        return TlsPeer(msp_id, str(names[0].value))
    return None


def server_context(files: TlsFiles, cas: ConsortiumTlsCas) -> ssl.SSLContext:
    """TLS 1.2+ with the service's certificate; a client certificate from one of `cas` is required."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    _load_pair(context, files)
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_verify_locations(cadata=cas.pem_bundle())
    return context


def client_context(server_ca_pem: bytes, files: TlsFiles) -> ssl.SSLContext:
    """Trust only the served domain's TLS CA (host name checked), and present the user's certificate."""
    context = ssl.create_default_context(cadata=server_ca_pem.decode())
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    _load_pair(context, files)
    return context


def caller_context(layout: NetworkLayout, served: Domain, caller: Domain, user: str) -> ssl.SSLContext:
    """The TLS context with which `user` of `caller` reaches the data service of `served`."""
    path = layout.peer_tls_ca(served)
    try:
        server_ca_pem = path.read_bytes()
    except OSError as error:
        raise TransportError(f"cannot read the TLS CA of {served.id} at {path}: {error.strerror}") from None
    return client_context(server_ca_pem, user_tls_files(layout, caller, user))


def _load_pair(context: ssl.SSLContext, files: TlsFiles) -> None:
    try:
        context.load_cert_chain(files.certificate, files.key)
    except (OSError, ssl.SSLError) as error:
        reason = getattr(error, "strerror", None) or getattr(error, "reason", None) or str(error)
        raise TransportError(f"cannot load the TLS key pair {files.certificate}: {reason}") from None
