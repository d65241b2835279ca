"""Per-task keys: the publisher makes a fresh ECDSA P-256 key pair for each taking-part domain, wraps the private
key for that domain's participant (its enrollment certificate) and records it on chain with the public key. The
domain signs its updates with it; the contract verifies them with the public key.

The wrapped private key is the PKCS#8 DER of the key, sealed (AES-256-GCM, crypto.seal) under a data key that is
wrapped (crypto.wrap_key) for the participant's certificate, bound to task and domain: no one else can open it,
and the publisher forgets it once issued. Signed updates can be checked by anyone, with the recorded public key,
apart from Fabric's own signatures.
"""

from __future__ import annotations

import base64
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from medfabric.consortium.service_identity import ServiceIdentity
from medfabric.crypto import WrappedKey, open_sealed, seal, unwrap_key, wrap_key
from medfabric.errors import MedfabricError


class TaskKeyError(MedfabricError):
    """A per-task key that cannot be made, read or opened; one line."""


def _context(task_id: str, domain: str) -> bytes:
    return f"fl-task-key/{task_id}/{domain}".encode()


def new_task_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def public_pem(key: ec.EllipticCurvePrivateKey) -> str:
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def wrapped_for(key: ec.EllipticCurvePrivateKey, task_id: str, domain: str, certificate_pem: bytes) -> dict[str, str]:
    """The private key sealed and wrapped for the holder of `certificate_pem`, as IssueTaskKey records it."""
    secret = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                               serialization.NoEncryption())
    sealed = seal(secret, aad=_context(task_id, domain))
    wrapped = wrap_key(sealed.data_key, certificate_pem, _context(task_id, domain))
    return {**wrapped.to_dict(), "sealed_key": base64.b64encode(sealed.blob).decode()}


def unwrapped(record: dict[str, Any], participant: ServiceIdentity) -> ec.EllipticCurvePrivateKey:
    """The private key of a TaskKey record, opened with the participant's enrollment key."""
    task_id, domain = record["task_id"], record["domain"]
    fields = dict(record["wrapped_private_key"])
    try:
        blob = base64.b64decode(fields.pop("sealed_key"), validate=True)
        data_key = unwrap_key(WrappedKey.from_dict(fields), participant.private_key,
                              participant.identity.certificate_pem, _context(task_id, domain))
        key = serialization.load_der_private_key(open_sealed(blob, data_key, aad=_context(task_id, domain)), None)
    except (KeyError, ValueError, MedfabricError) as error:
        raise TaskKeyError(f"the key of task {task_id} for {domain} does not open for this identity: {error}") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or public_pem(key) != record["public_key"]:
        raise TaskKeyError(f"the key of task {task_id} for {domain} does not match its recorded public key")
    return key
