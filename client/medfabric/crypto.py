"""Payload encryption, key wrapping for Fabric identities, and signed statements.

Everything here is built from the `cryptography` package; nothing is logged,
and no object's repr shows a data key.

An owner seals a FHIR payload under a fresh data key, keeps the blob in its
store and wraps the data key for each authorised reader's enrollment
certificate; the reader unwraps with its enrollment key and opens the blob:

    >>> sealed = seal(b'{"resourceType":"Patient"}', aad=b"record rec-1 v1")
    >>> wrapped = wrap_key(sealed.data_key, reader_certificate_pem, context=b"rec-1/v1/HospitalBMSP")
    >>> data_key = unwrap_key(wrapped, reader_private_key, reader_certificate_pem, context=b"rec-1/v1/HospitalBMSP")
    >>> open_sealed(sealed.blob, data_key, aad=b"record rec-1 v1")
    b'{"resourceType":"Patient"}'

Requests and deliveries travel as statements signed with the sender's Fabric
identity; the receiver checks signature, issuing CA, freshness and replay:

    >>> signed = sign_statement({"action": "request", "record_id": "rec-1"}, signer, identity)
    >>> verified = verify_statement(SignedStatement.from_dict(signed.to_dict()), [ca_pem],
    ...                             max_age_s=300, seen_nonces=seen)
    >>> verified.msp_id
    'HospitalAMSP'
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.keywrap import InvalidUnwrap, aes_key_unwrap, aes_key_wrap

from medfabric.errors import MedfabricError
from medfabric.gateway.identity import Signer, X509Identity

DATA_KEY_BYTES = 32
NONCE_BYTES = 12
_TAG_BYTES = 16
# Blob header: magic "MFP" (MedFabric payload) and a format version; version 1 is
# AES-256-GCM with a 12-byte nonce. The header is authenticated with the aad.
BLOB_HEADER = b"MFP\x01"

KEY_WRAP_ALGORITHM = "ECDH-ES+HKDF-SHA256+A256KW"
KEY_WRAP_INFO = b"medfabric/key-wrap/v1"
_WRAP_CURVES = (ec.SECP256R1, ec.SECP384R1)

STATEMENT_FORMAT = "medfabric/statement/v1"
FUTURE_SKEW = timedelta(seconds=30)


class CryptoError(MedfabricError):
    """A cryptographic check failed or an input cannot be used; the message is one line."""


class IntegrityError(CryptoError):
    """A sealed blob is truncated, of an unknown version, or fails its authentication tag."""


class KeyUnwrapError(CryptoError):
    """A wrapped key is not for this recipient, was wrapped under another context, or was altered."""


class SignatureError(CryptoError):
    """A signed statement is malformed, its signature is wrong, or its signer is not trusted."""


class ExpiredStatementError(CryptoError):
    """A signed statement's issued_at is too old, or later than now beyond the allowed clock skew."""


class ReplayError(CryptoError):
    """A signed statement's nonce has been seen before."""


def canonical_json(value: Any) -> bytes:
    """JSON with sorted keys, no whitespace, UTF-8 (not \\u-escaped); the bytes MedFabric hashes and signs.

    >>> canonical_json({"b": 1, "a": "é"})
    b'{"a":"\\xc3\\xa9","b":1}'

    Floats are written as Python writes them; keep signed numbers to integers or strings
    if other languages must reproduce the bytes.
    """
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


# -- payloads ------------------------------------------------------------------


@dataclass(frozen=True)
class SealedPayload:
    """A sealed payload: the blob to store, its single-use data key, and the two hashes for the index.

    Blob format (version 1): ``b"MFP" 0x01 || nonce (12 bytes) || AES-256-GCM ciphertext || tag (16 bytes)``;
    the GCM associated data is the 4-byte header followed by the caller's aad.
    """

    blob: bytes
    data_key: bytes = field(repr=False)
    ciphertext_sha256: str
    plaintext_sha256: str


def seal(plaintext: bytes, aad: bytes) -> SealedPayload:
    """Encrypt `plaintext` under a fresh random data key; `aad` (e.g. record id and version) is bound, not stored.

    >>> sealed = seal(b"payload", aad=b"rec-1")
    >>> len(sealed.blob) == len(BLOB_HEADER) + NONCE_BYTES + len(b"payload") + 16
    True
    """
    data_key = AESGCM.generate_key(bit_length=DATA_KEY_BYTES * 8)
    nonce = os.urandom(NONCE_BYTES)
    blob = BLOB_HEADER + nonce + AESGCM(data_key).encrypt(nonce, plaintext, BLOB_HEADER + aad)
    return SealedPayload(
        blob=blob,
        data_key=data_key,
        ciphertext_sha256=hashlib.sha256(blob).hexdigest(),
        plaintext_sha256=hashlib.sha256(plaintext).hexdigest(),
    )


def open_sealed(blob: bytes, data_key: bytes, aad: bytes) -> bytes:
    """The plaintext of a blob made by `seal`; IntegrityError if anything in blob or aad differs."""
    if len(data_key) != DATA_KEY_BYTES:
        raise ValueError(f"data key must be {DATA_KEY_BYTES} bytes, got {len(data_key)}")
    header_length = len(BLOB_HEADER)
    if len(blob) < header_length + NONCE_BYTES + _TAG_BYTES:
        raise IntegrityError(f"sealed blob is truncated ({len(blob)} bytes)")
    if blob[:header_length] != BLOB_HEADER:
        found = blob[:header_length].hex()
        raise IntegrityError(f"sealed blob has an unknown header {found} (expected {BLOB_HEADER.hex()})")
    nonce = blob[header_length : header_length + NONCE_BYTES]
    try:
        return AESGCM(data_key).decrypt(nonce, blob[header_length + NONCE_BYTES :], BLOB_HEADER + aad)
    except InvalidTag:
        raise IntegrityError("sealed blob failed authentication: wrong key or aad, or the blob was altered") from None


# -- key wrapping ----------------------------------------------------------------


@dataclass(frozen=True)
class WrappedKey:
    """A data key wrapped for one recipient; `to_dict` gives JSON-ready values (bytes as base64)."""

    recipient_key_id: str
    ephemeral_public_key: bytes
    wrapped_key: bytes
    algorithm: str = KEY_WRAP_ALGORITHM

    def to_dict(self) -> dict[str, str]:
        return {
            "algorithm": self.algorithm,
            "recipient_key_id": self.recipient_key_id,
            "ephemeral_public_key": base64.b64encode(self.ephemeral_public_key).decode(),
            "wrapped_key": base64.b64encode(self.wrapped_key).decode(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "WrappedKey":
        try:
            return cls(
                recipient_key_id=str(data["recipient_key_id"]),
                ephemeral_public_key=base64.b64decode(data["ephemeral_public_key"], validate=True),
                wrapped_key=base64.b64decode(data["wrapped_key"], validate=True),
                algorithm=str(data["algorithm"]),
            )
        except KeyError as missing:
            raise KeyUnwrapError(f"wrapped key has no {missing}") from None
        except (TypeError, ValueError) as bad:
            raise KeyUnwrapError(f"wrapped key is malformed: {bad}") from None


def key_id(certificate_pem: bytes) -> str:
    """The recipient key id: SHA-256 (hex) of the certificate's SubjectPublicKeyInfo DER."""
    return hashlib.sha256(_spki_der(_load_certificate(certificate_pem).public_key())).hexdigest()


def wrap_key(data_key: bytes, recipient_certificate_pem: bytes, context: bytes) -> WrappedKey:
    """Wrap `data_key` for the holder of the enrollment certificate, bound to `context`.

    ECDH-ES: an ephemeral key on the recipient's curve (P-256 or P-384), ECDH with the
    certificate's public key, HKDF-SHA256 with salt = ephemeral public key (X9.62
    uncompressed) || raw recipient key id (32 bytes) and info = b"medfabric/key-wrap/v1" ||
    context, giving a 32-byte key-encryption key; then AES key wrap (RFC 3394).
    `context` should name what the key opens and for whom, e.g. b"rec-1/v3/HospitalBMSP".

    The recipient's Fabric enrollment key serves ECDH as well as ECDSA, so access is bound
    to the very identity the chaincode authorises, with no second key to distribute.
    Acceptable here: ECDH output only ever feeds HKDF with a domain-separated info string,
    peer points are checked to lie on the curve, signatures are over SHA-256 digests, and
    no practical attack is known that turns one use against the other. Still, key
    separation is the textbook rule, Fabric enrollment certificates carry keyUsage
    digitalSignature only, and a leaked enrollment key exposes every data key ever
    wrapped to it (no forward secrecy on the recipient side). A stricter deployment
    issues each user a separate encryption certificate (keyUsage keyAgreement) from the
    same Fabric CA and wraps to that key, which can then be rotated on its own.
    """
    if len(data_key) != DATA_KEY_BYTES:
        raise ValueError(f"data key must be {DATA_KEY_BYTES} bytes, got {len(data_key)}")
    recipient_key = _wrap_public_key(_load_certificate(recipient_certificate_pem))
    recipient_key_id = hashlib.sha256(_spki_der(recipient_key)).digest()
    ephemeral = ec.generate_private_key(recipient_key.curve)
    ephemeral_public = ephemeral.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    kek = _derive_kek(ephemeral.exchange(ec.ECDH(), recipient_key), ephemeral_public, recipient_key_id, context)
    return WrappedKey(recipient_key_id.hex(), ephemeral_public, aes_key_wrap(kek, data_key))


def unwrap_key(
    wrapped: WrappedKey, private_key: ec.EllipticCurvePrivateKey, certificate_pem: bytes, context: bytes
) -> bytes:
    """The data key inside `wrapped`, using the recipient's enrollment key and certificate."""
    if wrapped.algorithm != KEY_WRAP_ALGORITHM:
        raise KeyUnwrapError(f"unsupported key wrap algorithm '{wrapped.algorithm}' (expected {KEY_WRAP_ALGORITHM})")
    public_key = _wrap_public_key(_load_certificate(certificate_pem))
    if _spki_der(private_key.public_key()) != _spki_der(public_key):
        raise KeyUnwrapError("the private key does not belong to the given certificate")
    recipient_key_id = hashlib.sha256(_spki_der(public_key)).digest()
    if wrapped.recipient_key_id != recipient_key_id.hex():
        raise KeyUnwrapError(
            f"key was wrapped for recipient {wrapped.recipient_key_id[:16]}..., not {recipient_key_id.hex()[:16]}..."
        )
    try:
        ephemeral_key = ec.EllipticCurvePublicKey.from_encoded_point(public_key.curve, wrapped.ephemeral_public_key)
    except ValueError:
        raise KeyUnwrapError(f"ephemeral public key is not a point on {public_key.curve.name}") from None
    kek = _derive_kek(
        private_key.exchange(ec.ECDH(), ephemeral_key), wrapped.ephemeral_public_key, recipient_key_id, context
    )
    try:
        return aes_key_unwrap(kek, wrapped.wrapped_key)
    except InvalidUnwrap:
        raise KeyUnwrapError("wrapped key failed its integrity check: wrong context, or it was altered") from None


def _derive_kek(shared_secret: bytes, ephemeral_public: bytes, recipient_key_id: bytes, context: bytes) -> bytes:
    hkdf = HKDF(hashes.SHA256(), length=32, salt=ephemeral_public + recipient_key_id, info=KEY_WRAP_INFO + context)
    return hkdf.derive(shared_secret)


def _wrap_public_key(certificate: x509.Certificate) -> ec.EllipticCurvePublicKey:
    public_key = certificate.public_key()
    if not isinstance(public_key, ec.EllipticCurvePublicKey) or not isinstance(public_key.curve, _WRAP_CURVES):
        raise CryptoError("recipient certificate must hold a P-256 or P-384 elliptic-curve key")
    return public_key


def _load_certificate(certificate_pem: bytes) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(certificate_pem)
    except ValueError:
        raise CryptoError("not a PEM X.509 certificate") from None


def _spki_der(public_key: Any) -> bytes:
    return public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


# -- signed statements -------------------------------------------------------------


@dataclass(frozen=True)
class SignedStatement:
    """A statement signed by a Fabric identity; the signature covers `signed_bytes()`."""

    statement: dict[str, Any]
    msp_id: str
    certificate_pem: str
    nonce: str
    issued_at: str
    signature: bytes

    def signed_bytes(self) -> bytes:
        """Canonical JSON of everything but the signature, tagged with the statement format."""
        return canonical_json(self._unsigned_fields())

    def to_dict(self) -> dict[str, Any]:
        return {**self._unsigned_fields(), "signature": base64.b64encode(self.signature).decode()}

    def _unsigned_fields(self) -> dict[str, Any]:
        return {
            "format": STATEMENT_FORMAT,
            "statement": self.statement,
            "msp_id": self.msp_id,
            "certificate_pem": self.certificate_pem,
            "nonce": self.nonce,
            "issued_at": self.issued_at,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "SignedStatement":
        if data.get("format") != STATEMENT_FORMAT:
            raise SignatureError(f"not a signed statement of format {STATEMENT_FORMAT}")
        try:
            signed = cls(
                statement=data["statement"],
                msp_id=data["msp_id"],
                certificate_pem=data["certificate_pem"],
                nonce=data["nonce"],
                issued_at=data["issued_at"],
                signature=base64.b64decode(data["signature"], validate=True),
            )
        except KeyError as missing:
            raise SignatureError(f"signed statement has no {missing}") from None
        except (TypeError, ValueError):
            raise SignatureError("signed statement signature is not base64") from None
        if not isinstance(signed.statement, dict) or not all(
            isinstance(value, str) for value in (signed.msp_id, signed.certificate_pem, signed.nonce, signed.issued_at)
        ):
            raise SignatureError("signed statement fields have the wrong types")
        return signed


@dataclass(frozen=True)
class VerifiedStatement:
    """A statement whose signature, signer, freshness and nonce have been checked."""

    statement: dict[str, Any]
    msp_id: str
    certificate: x509.Certificate
    issued_at: datetime
    nonce: str


def sign_statement(statement: dict[str, Any], signer: Signer, identity: X509Identity) -> SignedStatement:
    """Sign `statement` (JSON values) with `signer`, embedding the identity, a random nonce and the UTC time.

    `signer` is a medfabric.gateway.identity signer (ECDSA over SHA-256, low-S) for `identity`'s key.
    """
    unsigned = SignedStatement(
        statement=statement,
        msp_id=identity.msp_id,
        certificate_pem=identity.certificate_pem.decode(),
        nonce=secrets.token_hex(16),
        issued_at=datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
        signature=b"",
    )
    signature = signer(hashlib.sha256(unsigned.signed_bytes()).digest())
    signed = replace(unsigned, signature=signature)
    if not _signature_valid(signed, _load_certificate(identity.certificate_pem)):
        raise CryptoError(f"the signer does not hold the key of {identity.msp_id}'s certificate")
    return signed


def verify_statement(
    signed: SignedStatement,
    trusted_ca_pems: list[bytes],
    *,
    max_age_s: float,
    now: datetime | None = None,
    seen_nonces: set[str] | None = None,
) -> VerifiedStatement:
    """Check a signed statement and return what it says and who said it.

    The embedded certificate must be issued directly by one of `trusted_ca_pems` and be
    valid now; the signature must verify with its key; issued_at must be at most
    `max_age_s` old and at most 30 s in the future; the nonce must not be in
    `seen_nonces`, to which it is then added. Pass the CA certificates of the MSP you
    expect the signer to belong to: the embedded msp id is only a claim.
    """
    now = now or datetime.now(timezone.utc)
    if now.tzinfo is None:
        raise ValueError("now must be a timezone-aware datetime")
    certificate = _load_signer_certificate(signed.certificate_pem)
    check_issued_by_trusted_ca(certificate, trusted_ca_pems, now)
    if not _signature_valid(signed, certificate):
        raise SignatureError(f"statement signature does not verify with the certificate of {signed.msp_id}")
    issued_at = _parse_issued_at(signed.issued_at)
    if issued_at > now + FUTURE_SKEW:
        raise ExpiredStatementError(f"statement is issued in the future ({signed.issued_at}, now {now.isoformat()})")
    if now - issued_at > timedelta(seconds=max_age_s):
        raise ExpiredStatementError(f"statement issued at {signed.issued_at} is older than {max_age_s:g} s")
    if seen_nonces is not None:
        if signed.nonce in seen_nonces:
            raise ReplayError(f"statement nonce {signed.nonce} has been seen before")
        seen_nonces.add(signed.nonce)
    return VerifiedStatement(signed.statement, signed.msp_id, certificate, issued_at, signed.nonce)


def _signature_valid(signed: SignedStatement, certificate: x509.Certificate) -> bool:
    public_key = certificate.public_key()
    if not isinstance(public_key, ec.EllipticCurvePublicKey):
        return False
    digest = hashlib.sha256(signed.signed_bytes()).digest()
    try:
        public_key.verify(signed.signature, digest, ec.ECDSA(Prehashed(hashes.SHA256())))
    except InvalidSignature:
        return False
    return True


def _load_signer_certificate(certificate_pem: str) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(certificate_pem.encode())
    except ValueError:
        raise SignatureError("statement carries no valid PEM certificate") from None


def check_issued_by_trusted_ca(certificate: x509.Certificate, trusted_ca_pems: list[bytes], now: datetime) -> None:
    """SignatureError unless `certificate` is valid at `now` and issued directly by one of the CAs, valid too."""
    if not certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
        raise SignatureError(
            f"signer certificate is valid from {certificate.not_valid_before_utc.isoformat()} "
            f"to {certificate.not_valid_after_utc.isoformat()}, not at {now.isoformat()}"
        )
    for ca_pem in trusted_ca_pems:
        ca = x509.load_pem_x509_certificate(ca_pem)
        try:
            certificate.verify_directly_issued_by(ca)
        except (ValueError, TypeError, InvalidSignature):
            continue
        if ca.not_valid_before_utc <= now <= ca.not_valid_after_utc:
            return
    raise SignatureError(f"signer certificate ({certificate.subject.rfc4514_string()}) is not issued by a trusted CA")


def _parse_issued_at(issued_at: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(issued_at)
    except ValueError:
        raise SignatureError(f"statement issued_at '{issued_at}' is not an ISO 8601 time") from None
    if parsed.tzinfo is None:
        raise SignatureError(f"statement issued_at '{issued_at}' has no time zone")
    return parsed
