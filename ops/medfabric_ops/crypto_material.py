"""The consortium's keys and certificates, in the folder layout of Fabric's cryptogen.

Made with `cryptography` rather than cryptogen so that user certificates carry
Fabric CA attributes (extension 1.2.3.4.5.6.7.8.1), which the chaincode reads:

    crypto/peerOrganizations/<org domain>/
        ca/ca.<org domain>-cert.pem, priv_sk        the CA of enrollment certificates (ECDSA P-256)
        tlsca/tlsca.<org domain>-cert.pem, priv_sk  the TLS CA
        msp/{cacerts,tlscacerts}/, config.yaml       the org MSP; NodeOUs client, peer, admin, orderer
        peers/<host>/{msp,tls}/                      OU=peer; TLS server certificate for <host>, localhost, 127.0.0.1
        users/Admin@<org domain>/{msp,tls}/          OU=admin
        users/<user>@<org domain>/{msp,tls}/         OU=client, one per user of the domain in the topology, and
                                                     data-service, the identity of the domain's data service
    crypto/ordererOrganizations/orderer.<org domain>/
        ...                                          the same, with orderers/<host>/ (OU=orderer) and the Admin

    >>> generate_crypto(topology, layout)

Existing material is never replaced: a run adds the nodes and users the
topology gained, signed by the organisation's existing CAs. An organisation,
node or user is written into a scratch folder and renamed into place, so an
interrupted run leaves nothing half-written.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterator, Mapping

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from medfabric.consortium.layout import NetworkLayout
from medfabric.consortium.service_identity import SERVING_USERS
from medfabric.consortium.topology import Domain, Topology

VALIDITY = timedelta(days=3650)
CLOCK_SKEW = timedelta(minutes=5)  # certificates are valid from a little before they were made
FABRIC_ATTRIBUTES_OID = x509.ObjectIdentifier("1.2.3.4.5.6.7.8.1")  # as Fabric CA writes them
NODE_OUS = ("client", "peer", "admin", "orderer")
_LOCATION = ((NameOID.COUNTRY_NAME, "US"), (NameOID.STATE_OR_PROVINCE_NAME, "California"),
             (NameOID.LOCALITY_NAME, "San Francisco"))  # cryptogen's defaults


class CryptoMaterialError(RuntimeError):
    """Existing material cannot be completed (a CA is missing or does not match its key)."""


@dataclass(frozen=True)
class _Member:
    """A node or user of an organisation: its folder, subject and NodeOU."""

    dir: Path
    common_name: str
    role: str  # one of NODE_OUS
    attributes: Mapping[str, str] | None = None  # Fabric CA attributes (users only)

    @property
    def is_node(self) -> bool:
        return self.role in ("peer", "orderer")

    @property
    def serves(self) -> bool:
        """A node, or a user that runs a server (the data service, the diagnosis server): a TLS server certificate."""
        return self.is_node or (self.attributes or {}).get("hf.EnrollmentID") in SERVING_USERS


@dataclass(frozen=True)
class _Org:
    dir: Path
    domain: str  # the organisation's DNS domain, also its X.509 O
    members: tuple[_Member, ...]


@dataclass(frozen=True)
class _Authority:
    name: str  # ca.<org domain> or tlsca.<org domain>
    certificate: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @property
    def file_name(self) -> str:
        return f"{self.name}-cert.pem"


@dataclass(frozen=True)
class _Authorities:
    ca: _Authority
    tlsca: _Authority


def generate_crypto(topology: Topology, layout: NetworkLayout) -> None:
    """Write every organisation's CAs, nodes and users that do not exist yet."""
    for domain in topology.domains:
        _complete(_peer_org(layout, domain))
        _complete(_orderer_org(topology, layout, domain))


def _peer_org(layout: NetworkLayout, domain: Domain) -> _Org:
    peers = [_Member(layout.peer_dir(domain, peer), peer.host_name, "peer") for peer in domain.peers]
    users = [_user(layout.user_dir(domain, "Admin"), domain, domain.org_domain, "Admin")]
    users += [_user(layout.user_dir(domain, user), domain, domain.org_domain, user)
              for user in (*domain.users, *SERVING_USERS)]
    return _Org(layout.peer_org(domain), domain.org_domain, (*peers, *users))


def _orderer_org(topology: Topology, layout: NetworkLayout, domain: Domain) -> _Org:
    orderers = [_Member(layout.orderer_dir(domain, orderer), orderer.host_name, "orderer")
                for orderer in topology.orderers if orderer.domain_id == domain.id]
    admin = _user(layout.orderer_admin_dir(domain), domain, domain.orderer_org_domain, "Admin")
    return _Org(layout.orderer_org(domain), domain.orderer_org_domain, (*orderers, admin))


def _user(folder: Path, domain: Domain, org_domain: str, name: str) -> _Member:
    role = "admin" if name == "Admin" else "client"
    attributes = {
        "hf.EnrollmentID": name,
        "hf.Type": "client",
        "medfabric.role": "admin" if role == "admin" else name,
        "medfabric.domain": domain.id,
    }
    return _Member(folder, f"{name}@{org_domain}", role, attributes)


def _complete(org: _Org) -> None:
    if not org.dir.exists():
        with _staged(org.dir) as staging:
            authorities = _new_authorities(staging, org.domain)
            for member in org.members:
                _write_member(staging / member.dir.relative_to(org.dir), member, org.domain, authorities)
        return
    missing = [member for member in org.members if not member.dir.exists()]
    if not missing:
        return  # the CA keys are not even read
    authorities = _Authorities(_load_authority(org.dir / "ca", f"ca.{org.domain}"),
                               _load_authority(org.dir / "tlsca", f"tlsca.{org.domain}"))
    for member in missing:
        with _staged(member.dir) as staging:
            _write_member(staging, member, org.domain, authorities)


@contextmanager
def _staged(target: Path) -> Iterator[Path]:
    """A scratch folder beside `target`, renamed to it once filled, removed if filling fails."""
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent))
    try:
        yield scratch
        os.rename(scratch, target)
    except BaseException:
        shutil.rmtree(scratch)
        raise


def _new_authorities(org_dir: Path, org_domain: str) -> _Authorities:
    authorities = _Authorities(_new_authority(org_dir / "ca", f"ca.{org_domain}", org_domain),
                               _new_authority(org_dir / "tlsca", f"tlsca.{org_domain}", org_domain))
    _write_msp_roots(org_dir / "msp", authorities)
    return authorities


def _new_authority(folder: Path, name: str, org_domain: str) -> _Authority:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = _name(org_domain, name)
    certificate = (
        _builder(subject, subject, key.public_key(), datetime.now(timezone.utc) + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(_key_usage("digital_signature", "key_encipherment", "key_cert_sign", "crl_sign"), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH]),
                       critical=False)
        .sign(key, hashes.SHA256())
    )
    authority = _Authority(name, certificate, key)
    _write_certificate(folder / authority.file_name, certificate)
    _write_key(folder / "priv_sk", key)
    return authority


def _load_authority(folder: Path, name: str) -> _Authority:
    certificate_file, key_file = folder / f"{name}-cert.pem", folder / "priv_sk"
    try:
        certificate = x509.load_pem_x509_certificate(certificate_file.read_bytes())
        key = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
    except FileNotFoundError as missing:
        raise CryptoMaterialError(
            f"{missing.filename} is missing while {folder.parent} holds material it signed; refusing to make a new "
            f"CA (move {folder.parent} away to start the organisation over)"
        ) from None
    except ValueError as exc:
        raise CryptoMaterialError(f"{folder}: unreadable CA certificate or key: {exc}") from None
    if _public_bytes(key.public_key()) != _public_bytes(certificate.public_key()):
        raise CryptoMaterialError(f"{key_file} is not the key of {certificate_file}")
    return _Authority(name, certificate, key)


def _write_member(folder: Path, member: _Member, org_domain: str, authorities: _Authorities) -> None:
    """msp/ (enrollment key and certificate, the org's roots, NodeOUs) and tls/ (key, certificate, TLS CA)."""
    key = ec.generate_private_key(ec.SECP256R1())
    extensions: list[x509.ExtensionType] = [_key_usage("digital_signature")]
    if member.attributes is not None:
        value = json.dumps({"attrs": member.attributes}, sort_keys=True, separators=(",", ":")).encode()
        extensions.append(x509.UnrecognizedExtension(FABRIC_ATTRIBUTES_OID, value))
    certificate = _issue(authorities.ca, _name(org_domain, member.common_name, member.role), key, extensions)
    msp = folder / "msp"
    _write_msp_roots(msp, authorities)
    _write_key(msp / "keystore" / "priv_sk", key)
    _write_certificate(msp / "signcerts" / f"{member.common_name}-cert.pem", certificate)

    tls_key = ec.generate_private_key(ec.SECP256R1())
    usages = [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH] if member.serves else \
        [ExtendedKeyUsageOID.CLIENT_AUTH]
    extensions = [_key_usage("digital_signature", "key_encipherment"), x509.ExtendedKeyUsage(usages)]
    if member.serves:
        extensions.append(x509.SubjectAlternativeName([
            x509.DNSName(member.common_name), x509.DNSName("localhost"),
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        ]))
    tls_certificate = _issue(authorities.tlsca, _name(org_domain, member.common_name), tls_key, extensions)
    side = "server" if member.serves else "client"
    _write_certificate(folder / "tls" / "ca.crt", authorities.tlsca.certificate)
    _write_certificate(folder / "tls" / f"{side}.crt", tls_certificate)
    _write_key(folder / "tls" / f"{side}.key", tls_key)


def _write_msp_roots(msp: Path, authorities: _Authorities) -> None:
    """The part of an MSP folder every member shares: CA certificates and the NodeOUs configuration."""
    _write_certificate(msp / "cacerts" / authorities.ca.file_name, authorities.ca.certificate)
    _write_certificate(msp / "tlscacerts" / authorities.tlsca.file_name, authorities.tlsca.certificate)
    identifiers = {
        f"{role.capitalize()}OUIdentifier": {
            "Certificate": f"cacerts/{authorities.ca.file_name}",
            "OrganizationalUnitIdentifier": role,
        }
        for role in NODE_OUS
    }
    config = yaml.safe_dump({"NodeOUs": {"Enable": True, **identifiers}}, sort_keys=False)
    _write(msp / "config.yaml", config.encode(), 0o644)


def _issue(authority: _Authority, subject: x509.Name, key: ec.EllipticCurvePrivateKey,
           extensions: list[x509.ExtensionType]) -> x509.Certificate:
    """A leaf certificate signed by `authority`; it expires no later than the authority does."""
    not_after = min(datetime.now(timezone.utc) + VALIDITY, authority.certificate.not_valid_after_utc)
    authority_key_id = authority.certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    builder = (
        _builder(subject, authority.certificate.subject, key.public_key(), not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(authority_key_id),
                       critical=False)
    )
    for extension in extensions:
        builder = builder.add_extension(extension, critical=isinstance(extension, x509.KeyUsage))
    return builder.sign(authority.key, hashes.SHA256())


def _builder(subject: x509.Name, issuer: x509.Name, public_key: ec.EllipticCurvePublicKey,
             not_after: datetime) -> x509.CertificateBuilder:
    # Like cryptogen, the key identifier is the SHA-256 of the public point (Fabric's BCCSP key id).
    key_id = hashlib.sha256(_public_bytes(public_key)).digest()
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(datetime.now(timezone.utc) - CLOCK_SKEW)
        .not_valid_after(not_after)
        .add_extension(x509.SubjectKeyIdentifier(key_id), critical=False)
    )


def _name(org_domain: str, common_name: str, unit: str | None = None) -> x509.Name:
    attributes = [*_LOCATION, (NameOID.ORGANIZATION_NAME, org_domain)]
    if unit:
        attributes.append((NameOID.ORGANIZATIONAL_UNIT_NAME, unit))
    attributes.append((NameOID.COMMON_NAME, common_name))
    return x509.Name([x509.NameAttribute(oid, value) for oid, value in attributes])


def _key_usage(*granted: str) -> x509.KeyUsage:
    usages = dict.fromkeys(("digital_signature", "content_commitment", "key_encipherment", "data_encipherment",
                            "key_agreement", "key_cert_sign", "crl_sign", "encipher_only", "decipher_only"), False)
    usages.update(dict.fromkeys(granted, True))
    return x509.KeyUsage(**usages)


def _public_bytes(public_key: ec.EllipticCurvePublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)


def _write_certificate(path: Path, certificate: x509.Certificate) -> None:
    _write(path, certificate.public_bytes(serialization.Encoding.PEM), 0o644)


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    _write(path, pem, 0o600)


def _write(path: Path, data: bytes, mode: int) -> None:
    """A new file with exactly `mode`, whatever the umask (only ever into a scratch folder)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(descriptor, "wb") as file:
        os.fchmod(file.fileno(), mode)
        file.write(data)
