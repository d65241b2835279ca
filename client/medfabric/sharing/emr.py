"""EMR sharing end to end, as the `emr` commands do it: put, get, find, grant, revoke, erase, request, break-glass.

A payload is validated and sealed on the client, kept by the owner's data
service and indexed on chain: on the owner's local channel, and on the public
channel when published. A read is decided on chain first (consent), on the
owner's local channel for its own users and on the public channel for everyone
else; the owner's data service then delivers it re-wrapped for the reader, who
checks it against the index entry (medfabric.data_service.delivery) before writing it.

    >>> payload = prepare_payload(Path("obs.json").read_bytes(), "P-001")
    >>> put_record(owner_session, payload, publish=True)["record_id"]
    'rec-3f0c...'
    >>> grant(owner_session, "rec-3f0c...", "hospital-b", "treatment", until)["grant_id"]
    >>> request(reader_session, "rec-3f0c...", "hospital-a", Path("obs.json"))
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from http import HTTPStatus
from pathlib import Path
from typing import Any, Callable

from cryptography import x509

from medfabric.sharing.contracts import PAGE_SIZE, all_pages
from medfabric.crypto import CryptoError, SealedPayload, check_issued_by_trusted_ca, seal, wrap_key
from medfabric.data_service.client import DataServiceClient, DataServiceError
from medfabric.data_service.delivery import DeliveryRejected, open_delivery
from medfabric.errors import MedfabricError
from medfabric.sharing.fhir import contains_direct_identifiers, validate_resource
from medfabric.gateway import GatewayError
from medfabric.data_service.record_service import key_context
from medfabric.sharing.session import Session
from medfabric.data_service.store import RECORD_ID, write_atomically
from medfabric.consortium.topology import Domain

ERASE_REASON = "erasure requested by the owner"
REASON_LIMIT = 256  # the access log's limit on a reason
PURPOSES = ("treatment", "research", "payment", "operations", "public-health")  # as consent takes them
READ_PURPOSES = (*PURPOSES, "purchase")  # a read may also rest on the reader's purchase (market contract)
DEFAULT_PURPOSE = "treatment"

Decide = Callable[[str], tuple[dict[str, Any], str]]  # channel -> (decision, its transaction id)


class RecordNotFound(MedfabricError):
    """No index entry (or stored payload) has this record id where it was looked for."""


class RecordErased(MedfabricError):
    """The record was erased: its index entry is a tombstone."""


class AccessDenied(MedfabricError):
    """The ledger decided against the read; the denial is logged there."""


@dataclass(frozen=True)
class Payload:
    """A validated FHIR resource to seal: its canonical bytes, its type, and the patient's pseudonym."""

    patient: str
    resource_type: str
    plaintext: bytes


def prepare_payload(fhir_json: bytes, patient: str, *, allow_identifiers: bool = False) -> Payload:
    """Validate the FHIR resource and the pseudonym; refuse direct identifiers (names, addresses...) unless allowed."""
    if not RECORD_ID.fullmatch(patient):
        raise MedfabricError(f"patient pseudonym {patient!r} must be 1-128 characters of A-Z a-z 0-9 . _ : -")
    resource = validate_resource(fhir_json)
    identifiers = contains_direct_identifiers(json.loads(resource.canonical_bytes))
    if identifiers and not allow_identifiers:
        raise MedfabricError(f"the {resource.resource_type} holds direct identifiers ({', '.join(identifiers)}): "
                             "remove them, or allow them explicitly (they stay encrypted off chain)")
    return Payload(patient, resource.resource_type, resource.canonical_bytes)


def record_id_for(domain_id: str, payload: Payload) -> str:
    """"rec-" and 32 hex digits of SHA-256 over domain, patient and plaintext hash: one payload, one id."""
    plaintext_sha256 = hashlib.sha256(payload.plaintext).hexdigest()
    return "rec-" + hashlib.sha256(f"{domain_id}\n{payload.patient}\n{plaintext_sha256}".encode()).hexdigest()[:32]


# -- writing ---------------------------------------------------------------------------


def index_entry(session: Session, record_id: str, payload: Payload, sealed: SealedPayload) -> dict[str, Any]:
    """The emr_index entry of a sealed payload stored in the session domain's data service."""
    return {
        "record_id": record_id,
        "patient": payload.patient,
        "domain": session.domain.id,
        "resource_type": payload.resource_type,
        "ciphertext_sha256": sealed.ciphertext_sha256,
        "plaintext_sha256": sealed.plaintext_sha256,
        "size": len(payload.plaintext),
        "location": f"medfabric://{session.domain.id}/records/{record_id}",
    }


def put_record(session: Session, payload: Payload, *, publish: bool, record_id: str | None = None) -> dict[str, Any]:
    """Seal, store with the domain's data service, index locally (and publicly); all of it or nothing readable.

    When an index write fails after the store write, the stored payload is erased
    and an entry already written becomes a tombstone; the error says so.
    """
    record_id = record_id or record_id_for(session.domain.id, payload)
    if not RECORD_ID.fullmatch(record_id):
        raise MedfabricError(f"record id {record_id!r} must be 1-128 characters of A-Z a-z 0-9 . _ : -")
    channels = [session.local_channel] + ([session.public_channel] if publish else [])
    for channel in channels:
        if session.index(channel).find(record_id) is not None:
            raise MedfabricError(f"record {record_id} already exists on {channel}")
    sealed = seal(payload.plaintext, aad=record_id.encode())
    service = session.data_service(session.domain.id)
    try:
        store_sealed(session, service, record_id, sealed)
    except DataServiceError as error:
        raise _unanswered(error, f"storing record {record_id} failed ({error}); nothing was indexed. Put it again: "
                                 "a payload the service kept without its index entry is destroyed by its orphan "
                                 "sweep, and until then the put is refused saying when") from None
    entry = index_entry(session, record_id, payload, sealed)
    indexed: dict[str, dict[str, Any]] = {}
    for channel in channels:
        try:
            indexed[channel] = session.index(channel).put(entry)
        except GatewayError as error:
            undone = _undo_put(session, service, record_id, list(indexed))
            raise MedfabricError(f"indexing record {record_id} on {channel} failed ({error}); {undone}") from None
    return {"record_id": record_id, "entries": indexed}


def store_sealed(session: Session, service: DataServiceClient, record_id: str, sealed: SealedPayload) -> None:
    """Wrap the data key for the domain's data service (checked to be the domain's) and store blob and key."""
    identity = service.identity()
    msp_id = session.domain.msp_id
    certificate_pem = str(identity.get("certificate_pem", "")).encode()
    if identity.get("msp_id") != msp_id or not _issued_by(certificate_pem, session.ca_pems(msp_id)):
        raise MedfabricError(f"the data service at {service.base_url} does not show a certificate of {msp_id}'s CA: "
                             "the data key is not given to it")
    wrapped = wrap_key(sealed.data_key, certificate_pem, key_context(record_id, sealed.ciphertext_sha256, msp_id))
    service.store({
        "statement": session.signed(action="store", record_id=record_id, ciphertext_sha256=sealed.ciphertext_sha256),
        "blob": base64.b64encode(sealed.blob).decode(),
        "wrapped_key": wrapped.to_dict(),
    })


def _unanswered(error: DataServiceError, advice: str) -> DataServiceError:
    """A refusal (4xx) as it is; an unreachable or failing service (no status, 5xx) as `advice`, same status."""
    if error.status is not None and error.status < 500:
        return error
    return DataServiceError(advice, error.status)


def _issued_by(certificate_pem: bytes, ca_pems: list[bytes]) -> bool:
    try:
        certificate = x509.load_pem_x509_certificate(certificate_pem)
        check_issued_by_trusted_ca(certificate, ca_pems, datetime.now(timezone.utc))
    except (ValueError, CryptoError):
        return False
    return True


def _undo_put(session: Session, service: DataServiceClient, record_id: str, indexed: list[str]) -> str:
    """Erase the stored payload and tombstone the entries written; what was done, for the error message."""
    done = []
    try:
        service.erase(record_id, session.signed(action="erase", record_id=record_id))
        done.append("the stored payload was erased")
    except DataServiceError as error:
        done.append(f"erasing the stored payload failed too ({error}): run `medfabric emr erase {record_id}`")
    for channel in indexed:
        try:
            session.index(channel).erase(record_id, "put not completed: compensated")
            done.append(f"its entry on {channel} is a tombstone")
        except GatewayError as error:
            done.append(f"tombstoning its entry on {channel} failed ({error})")
    return "; ".join(done)


def erase(session: Session, record_id: str, reason: str = ERASE_REASON) -> dict[str, Any]:
    """Destroy the payload (ciphertext and key) in the domain's data service, then tombstone the index entries."""
    entries = {channel: entry for channel in (session.local_channel, session.public_channel)
               if (entry := session.index(channel).find(record_id)) is not None}
    for entry in entries.values():
        if entry["owner_msp"] != session.domain.msp_id:
            raise MedfabricError(f"record {record_id} is owned by {entry['owner_msp']}: only its owner erases it")
    service = session.data_service(session.domain.id)
    try:
        service.erase(record_id, session.signed(action="erase", record_id=record_id))
        payload = "destroyed"
    except DataServiceError as error:
        if error.status == HTTPStatus.GONE:
            payload = "already destroyed"
        elif error.status == HTTPStatus.NOT_FOUND and entries:
            payload = "not stored"
        elif error.status == HTTPStatus.NOT_FOUND:
            raise RecordNotFound(f"record {record_id} is neither indexed nor stored by {session.domain.id}") from None
        else:
            raise
    tombstones = {channel: session.index(channel).erase(record_id, reason)
                  for channel, entry in entries.items() if not entry["erased"]}
    return {"record_id": record_id, "payload": payload, "tombstones": tombstones}


# -- sharing ---------------------------------------------------------------------------


def grant(
    session: Session, record_id: str, to_domain: str, purpose: str, until: datetime, user: str | None = None
) -> dict[str, Any]:
    """Let another domain (or one user of it) read a published record for a purpose until `until`; the grant."""
    grantee = session.topology.domain(to_domain)
    if grantee.id == session.domain.id:
        raise MedfabricError(f"users of {grantee.id} read its records without a grant")
    if user is not None and user not in ("Admin", *grantee.users):
        raise MedfabricError(f"domain {grantee.id} has no user '{user}' (known: {', '.join(('Admin',) + grantee.users)})")
    if until.tzinfo is None:
        raise ValueError("a grant's end needs a time zone")
    if session.index(session.public_channel).find(record_id) is None:
        raise RecordNotFound(f"record {record_id} is not published on {session.public_channel}: "
                             "only published records are shared (put it with --publish)")
    document = {"record_id": record_id, "domain": session.domain.id, "grantee_msp": grantee.msp_id,
                "purpose": purpose, "expires": until.isoformat()}
    if user is not None:
        document["grantee_user"] = user
    return session.consent(session.public_channel).grant(document)


def revoke(session: Session, grant_id: str) -> dict[str, Any]:
    """Revoke a grant the domain made; the grant as revoked."""
    return session.consent(session.public_channel).revoke(grant_id)


def find_records(session: Session, patient: str, resource_type: str | None = None) -> list[dict[str, Any]]:
    """A patient's entries the user can see (its domain's local channel, then the public one), each with its channels."""
    found: dict[str, dict[str, Any]] = {}
    for channel in (session.local_channel, session.public_channel):
        index = session.index(channel)
        for entry in all_pages(lambda bookmark: index.list_by_patient(patient, PAGE_SIZE, bookmark), "records"):
            if resource_type is None or entry["resource_type"] == resource_type:
                found.setdefault(entry["record_id"], {**entry, "channels": []})["channels"].append(channel)
    return list(found.values())


def find_entry(session: Session, record_id: str) -> dict[str, Any]:
    """The index entry of a record: on the user's local channel, else on the public one."""
    for channel in (session.local_channel, session.public_channel):
        entry = session.index(channel).find(record_id)
        if entry is not None:
            return entry
    raise RecordNotFound(f"record {record_id} not found on {session.local_channel} or {session.public_channel}")


# -- reading ---------------------------------------------------------------------------


def get_record(session: Session, record_id: str, out: Path, purpose: str = DEFAULT_PURPOSE) -> dict[str, Any]:
    """Read a record the user may read (own domain, or granted for `purpose`) into `out`, verified against its
    index entry."""
    return _read(session, find_entry(session, record_id), out,
                 lambda channel: session.consent(channel).check_access(record_id, purpose))


def request(session: Session, record_id: str, from_domain: str, out: Path,
            purpose: str = DEFAULT_PURPOSE) -> dict[str, Any]:
    """The cross-domain request (SYSTEM.md section 7): logged on the public channel, then decided, delivered, verified."""
    owner = session.topology.domain(from_domain)
    if owner.id == session.domain.id:
        raise MedfabricError(f"{record_id} would be a record of {owner.id} itself: read it with `emr get`")
    public = session.public_channel
    entry = session.index(public).find(record_id)
    if entry is None:
        raise RecordNotFound(f"record {record_id} is not published on {public}")
    if entry["domain"] != owner.id:
        raise MedfabricError(f"record {record_id} belongs to {entry['domain']}, not {owner.id}")
    session.access_log(public).log({"record_id": record_id, "action": "request", "outcome": "success",
                                    "reason": f"request to {owner.id} for {purpose}"})
    return _read(session, entry, out, lambda channel: session.consent(channel).check_access(record_id, purpose))


def emergency_read(session: Session, record_id: str, reason: str, out: Path) -> dict[str, Any]:
    """Break-glass: a doctor reads without a grant. Decided and logged (flagged) where access is decided; the
    reader's other tier gets a flagged request naming the decision, and the owner's data service logs the delivery,
    flagged, on both of its tiers."""

    def break_glass(channel: str) -> tuple[dict[str, Any], str]:
        decision, decision_tx = session.consent(channel).emergency_access(record_id, reason)
        if decision["decision"] == "allow":
            other = session.public_channel if channel == session.local_channel else session.local_channel
            note = f"break-glass decided on {channel}: {reason}"
            session.access_log(other).log({"record_id": record_id, "action": "request", "outcome": "success",
                                           "reason": note[:REASON_LIMIT], "decision_tx": decision_tx,
                                           "break_glass": True})
        return decision, decision_tx

    return _read(session, find_entry(session, record_id), out, break_glass)


def _read(session: Session, entry: dict[str, Any], out: Path, decide: Decide) -> dict[str, Any]:
    """Decide on chain, fetch from the owner's data service, verify, and only then write `out` (atomically)."""
    record_id = entry["record_id"]
    if entry.get("erased"):
        raise RecordErased(f"record {record_id} was erased at {entry.get('erased_at')}")
    owner = _owner(session, entry)
    channel = session.channel_for(owner.msp_id)
    decision, decision_tx = decide(channel)
    if decision["decision"] != "allow":
        raise AccessDenied(f"access to record {record_id} denied on {channel}: {decision['reason']} "
                           f"(logged as {decision['log_id']})")
    statement = session.signed(action="fetch", record_id=record_id, decision_tx=decision_tx)
    try:
        delivery = session.data_service(owner.id).fetch(record_id, statement)
    except DataServiceError as error:
        raise _unanswered(error, f"fetching record {record_id} failed ({error}); nothing was written. Read it "
                                 f"again once the service answers: a new decision is taken (this one, "
                                 f"{decision_tx}, stays on the access log)") from None
    try:
        plaintext = open_delivery(delivery, entry, decision_tx, session.credentials, session.ca_pems(owner.msp_id))
    except DeliveryRejected as rejection:
        verdict = {"record_id": record_id, "action": "deliver", "outcome": "failure",
                   "reason": rejection.reason[:REASON_LIMIT]}
        try:
            session.access_log(channel).log(verdict)
        except GatewayError as error:
            raise MedfabricError(f"{rejection}; logging it on {channel} failed too ({error})") from None
        raise
    write_atomically(out, plaintext)
    return {"record_id": record_id, "owner": owner.id, "decided_on": channel, "decision_tx": decision_tx,
            "reason": decision["reason"], "out": str(out), "size": len(plaintext),
            "plaintext_sha256": entry["plaintext_sha256"]}


def _owner(session: Session, entry: dict[str, Any]) -> Domain:
    """The domain the entry names, which must be the domain of the MSP that wrote it."""
    owner = session.topology.domain(entry["domain"])
    if owner.msp_id != entry["owner_msp"]:
        raise MedfabricError(f"the index entry of {entry['record_id']} names domain {owner.id} "
                             f"but was written by {entry['owner_msp']}: not trusted")
    return owner
