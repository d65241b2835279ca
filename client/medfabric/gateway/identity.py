"""Who the client is and how it signs: X.509 identities and ECDSA signers for Fabric.

    >>> import hashlib
    >>> from cryptography.hazmat.primitives.asymmetric import ec
    >>> sign = ecdsa_signer(ec.generate_private_key(ec.SECP256R1()))
    >>> signature = sign(hashlib.sha256(b"proposal bytes").digest())

From a Fabric MSP folder (as written by cryptogen or fabric-ca-client):

    >>> identity, sign = load_msp_identity(msp_dir, "Org1MSP")
    >>> identity.msp_id
    'Org1MSP'
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.hazmat.primitives.asymmetric.utils import (
    Prehashed,
    decode_dss_signature,
    encode_dss_signature,
)
from fabric_protos.msp import identities_pb2

from medfabric.errors import MedfabricError

Signer = Callable[[bytes], bytes]
"""Signs a SHA-256 digest and returns the DER-encoded signature."""

# Peers accept only low-S signatures: s must not exceed half the curve order.
_CURVE_ORDERS = {
    "secp256r1": 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551,
    "secp384r1": 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF581A0DB248B0A77AECEC196ACCC52973,
}


class Identity(Protocol):
    """A client identity as its organisation's MSP knows it."""

    @property
    def msp_id(self) -> str: ...

    def serialize(self) -> bytes:
        """The creator bytes put in every signed message (msp.SerializedIdentity)."""


@dataclass(frozen=True)
class X509Identity:
    """An identity backed by an X.509 certificate (PEM), the kind Fabric MSPs issue."""

    msp_id: str
    certificate_pem: bytes

    def serialize(self) -> bytes:
        identity = identities_pb2.SerializedIdentity(mspid=self.msp_id, id_bytes=self.certificate_pem)
        return identity.SerializeToString()


def ecdsa_signer(private_key: ec.EllipticCurvePrivateKey) -> Signer:
    """A signer for a P-256 or P-384 key: ECDSA over the given SHA-256 digest, low-S, DER."""
    order = _CURVE_ORDERS.get(private_key.curve.name)
    if order is None:
        raise ValueError(f"unsupported curve {private_key.curve.name}: Fabric signs with P-256 or P-384")
    algorithm = ec.ECDSA(Prehashed(hashes.SHA256()))

    def sign(digest: bytes) -> bytes:
        r, s = decode_dss_signature(private_key.sign(digest, algorithm))
        return encode_dss_signature(r, min(s, order - s))

    return sign


def load_msp_identity(msp_dir: str | Path, msp_id: str) -> tuple[X509Identity, Signer]:
    """The identity in `msp_dir/signcerts` and a signer with its key from `msp_dir/keystore`."""
    msp_dir = Path(msp_dir)
    if not msp_dir.is_dir():
        raise MedfabricError(f"no MSP folder at {msp_dir}")
    certificate_pem = _read_signing_certificate(msp_dir / "signcerts")
    certificate = x509.load_pem_x509_certificate(certificate_pem)
    private_key = _find_private_key(msp_dir / "keystore", certificate.public_key())
    return X509Identity(msp_id, certificate_pem), ecdsa_signer(private_key)


def _read_signing_certificate(signcerts: Path) -> bytes:
    found = sorted(signcerts.glob("*.pem"))
    if len(found) != 1:
        names = ", ".join(path.name for path in found) or "none"
        raise MedfabricError(f"expected one signing certificate (*.pem) in {signcerts}, found {names}")
    return found[0].read_bytes()


def _find_private_key(keystore: Path, public_key: CertificatePublicKeyTypes) -> ec.EllipticCurvePrivateKey:
    """The key in `keystore` (files *_sk or *.pem) that belongs to `public_key`."""
    candidates = sorted({*keystore.glob("*_sk"), *keystore.glob("*.pem")})
    if not candidates:
        raise MedfabricError(f"no private key (*_sk or *.pem) in {keystore}")
    wanted = _public_key_der(public_key)
    for path in candidates:
        try:
            private_key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        except (ValueError, TypeError):
            raise MedfabricError(f"{path} is not an unencrypted PEM private key") from None
        if _public_key_der(private_key.public_key()) == wanted:
            if not isinstance(private_key, ec.EllipticCurvePrivateKey):
                raise MedfabricError(f"{path} is not an elliptic-curve key")
            return private_key
    raise MedfabricError(f"none of the {len(candidates)} keys in {keystore} belongs to the signing certificate")


def _public_key_der(public_key: CertificatePublicKeyTypes) -> bytes:
    return public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
