"""Checking a data service's delivery against the index entry before its plaintext is used (SYSTEM.md section 7).

The delivery must be signed by the owner's data service for this very request;
the ciphertext it signed, the ciphertext it sent and the ciphertext the owner
indexed must hash the same; the data key must open for the reader; and the
plaintext must hash as the index entry says. Any difference is a rejection
whose reason goes to the access log.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from typing import Any

from medfabric.crypto import CryptoError, SignedStatement, WrappedKey, open_sealed, unwrap_key, verify_statement
from medfabric.errors import MedfabricError
from medfabric.data_service.record_service import STATEMENT_MAX_AGE_S, key_context
from medfabric.consortium.service_identity import ServiceIdentity

HASH_MISMATCH = "hash mismatch"


class DeliveryRejected(MedfabricError):
    """What the data service delivered is not what the owner indexed, or not provably from it; `reason` is for the log."""

    def __init__(self, record_id: str, reason: str):
        super().__init__(f"delivery of record {record_id} rejected: {reason}")
        self.reason = reason


def open_delivery(
    delivery: dict[str, Any], entry: dict[str, Any], decision_tx: str, reader: ServiceIdentity,
    owner_ca_pems: list[bytes],
) -> bytes:
    """The plaintext of `delivery` (a data service's fetch answer) for `reader`, checked against the index `entry`."""
    record_id = entry["record_id"]
    statement = _signed_delivery(delivery, entry, decision_tx, reader, owner_ca_pems)
    try:
        blob = base64.b64decode(delivery.get("blob") or "", validate=True)
        wrapped = WrappedKey.from_dict(delivery.get("wrapped_key") or {})
    except (binascii.Error, CryptoError) as error:
        raise DeliveryRejected(record_id, f"malformed delivery: {error}") from None
    indexed = entry["ciphertext_sha256"]
    for what, digest in (("signed", statement.get("ciphertext_sha256")),
                         ("delivered", hashlib.sha256(blob).hexdigest())):
        if digest != indexed:
            raise DeliveryRejected(record_id, f"{HASH_MISMATCH}: the {what} ciphertext is not the indexed one")
    try:
        data_key = unwrap_key(wrapped, reader.private_key, reader.identity.certificate_pem,
                              key_context(record_id, indexed, reader.identity.msp_id))
        plaintext = open_sealed(blob, data_key, aad=record_id.encode())
    except CryptoError as error:
        raise DeliveryRejected(record_id, f"cannot open the delivery: {error}") from None
    if hashlib.sha256(plaintext).hexdigest() != entry["plaintext_sha256"]:
        raise DeliveryRejected(record_id, f"{HASH_MISMATCH}: the plaintext is not the indexed one")
    return plaintext


def _signed_delivery(
    delivery: dict[str, Any], entry: dict[str, Any], decision_tx: str, reader: ServiceIdentity,
    owner_ca_pems: list[bytes],
) -> dict[str, Any]:
    """The delivery statement, signed by an identity of the owner's CA, for this record, decision and reader."""
    record_id = entry["record_id"]
    try:
        signed = SignedStatement.from_dict(delivery.get("delivery") if isinstance(delivery.get("delivery"), dict) else {})
        verified = verify_statement(signed, owner_ca_pems, max_age_s=STATEMENT_MAX_AGE_S)
    except CryptoError as error:
        raise DeliveryRejected(record_id, f"unverifiable delivery: {error}") from None
    statement = verified.statement
    requester = statement.get("requester") if isinstance(statement.get("requester"), dict) else {}
    expected = {
        "owner": (verified.msp_id, entry["owner_msp"]),
        "action": (statement.get("action"), "deliver"),
        "record": (statement.get("record_id"), record_id),
        "decision": (statement.get("decision_tx"), decision_tx),
        "requester": (requester.get("msp_id"), reader.identity.msp_id),
    }
    for what, (found, wanted) in expected.items():
        if found != wanted:
            raise DeliveryRejected(record_id, f"the signed delivery names {what} {found!r}, not {wanted!r}")
    return statement
