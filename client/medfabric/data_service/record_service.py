"""What a domain's data service does, without HTTP: store, deliver and erase sealed records.

The owner seals a record locally (crypto.seal), wraps its data key for the
service's certificate and stores blob and wrapped key with a statement signed
by one of its users. A reader of any domain first obtains an access decision
on the ledger (consent CheckAccess or EmergencyAccess), then asks for the
record with a signed statement naming that transaction; the service checks
the statement and the decision (and that the grant it relied on is neither
revoked nor expired since), re-wraps the data key for the reader's certificate
and signs the delivery. What follows a break-glass decision is logged on both
tiers. Erasing destroys ciphertext and key. A store is kept pending until
its index entry is seen on the local channel (medfabric.data_service.orphan_sweep):
a put that never completes leaves no payload behind.

The ledger is reached through two small protocols (medfabric.data_service.service_ledger):
AccessLedger reads a decision, AuditSink logs every outcome; so the rules here
run without a network.
"""

from __future__ import annotations

import base64
import hashlib
import heapq
import json
import logging
import re
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from http import HTTPStatus
from typing import Any, Callable

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

from medfabric.crypto import (
    BLOB_HEADER,
    FUTURE_SKEW,
    CryptoError,
    SignedStatement,
    VerifiedStatement,
    WrappedKey,
    key_id,
    sign_statement,
    unwrap_key,
    verify_statement,
    wrap_key,
)
from medfabric.consortium.fabric_id import fabric_client_id
from medfabric.consortium.topology import DEFAULT_ORPHAN_GRACE_MS
from medfabric.fl.records import FlRecordId, parse_fl_record_id
from medfabric.data_service.refusal_budget import RefusalBudget
from medfabric.data_service.refusal_log import RefusalEntry, RefusalLog
from medfabric.consortium.service_identity import Consortium, ServiceIdentity
from medfabric.data_service.service_ledger import (
    ALLOW, AccessLedger, AuditSink, Decision, FlLedger, FlRecordFacts, GrantStanding, LedgerError, Requester
)
from medfabric.data_service.orphan_sweep import IndexLedger, OrphanSweep
from medfabric.data_service.transport import TlsPeer
from medfabric.data_service.store import (
    RECORD_ID,
    BlobNotFoundError,
    BlobStore,
    KeyStore,
    PendingPut,
    PendingPuts,
    RecordErasedError,
    RecordKey,
    StoreError,
    TamperedBlobError,
    UnknownRecordError,
)

STATEMENT_MAX_AGE_S = 120
# A reader fetches right after its decision commits. A revoke counts at once (the grant is read again at fetch);
# the window bounds how long one decision can be reused.
DECISION_MAX_AGE = timedelta(minutes=2)
ORPHAN_GRACE = timedelta(milliseconds=DEFAULT_ORPHAN_GRACE_MS)
_TX_ID = re.compile(r"[0-9a-f]{64}")
_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Reply:
    """An HTTP status and JSON body; `requester_msp` (verified) is for the access log line."""

    status: int
    body: dict[str, Any]
    requester_msp: str | None = None


def key_context(record_id: str, ciphertext_sha256: str, recipient_msp: str) -> bytes:
    """The key-wrap context binding a data key to its record, its ciphertext and the recipient's MSP."""
    return f"{record_id}/{ciphertext_sha256}/{recipient_msp}".encode()


class RecordService:
    """Store, deliver and erase records of one domain; every outcome goes to the audit sink."""

    def __init__(
        self,
        identity: ServiceIdentity,
        consortium: Consortium,
        blobs: BlobStore,
        keys: KeyStore,
        ledger: AccessLedger,
        audit: AuditSink,
        refusals: RefusalBudget | None = None,
        fl_ledger: FlLedger | None = None,
        pending: PendingPuts | None = None,
        orphan_grace: timedelta = ORPHAN_GRACE,
    ):
        """`pending`: where stores wait to be seen indexed (orphan_sweep); without it nothing is swept."""
        self._identity = identity
        self._consortium = consortium
        self._blobs = blobs
        self._keys = keys
        self._ledger = ledger
        self._audit = audit
        self._refusals = refusals or RefusalBudget()
        self._refusal_log = RefusalLog(audit)  # refusals are logged without holding up their answer
        self._fl_ledger = fl_ledger
        self._pending = pending
        self._orphan_grace = orphan_grace
        self._seen = _SeenNonces(STATEMENT_MAX_AGE_S)
        self._records_lock = threading.Lock()  # store and erase against each other and against reads

    def identity(self) -> Reply:
        certificate_pem = self._identity.identity.certificate_pem
        return Reply(
            HTTPStatus.OK,
            {"msp_id": self._identity.identity.msp_id, "certificate_pem": certificate_pem.decode(),
             "key_id": key_id(certificate_pem)},
        )

    def store(self, body: bytes, peer: TlsPeer | None = None) -> Reply:
        """Body {statement: signed {action "store", record_id, ciphertext_sha256}, blob: base64, wrapped_key}.

        `peer`, in this and the other requests: the caller's verified TLS client; when given, it must be the
        statement's signer."""
        trail = _Trail("write", None, peer)
        return self._audited(trail, lambda: self._store(trail, _json_object(body)))

    def fetch(self, record_id: str, body: bytes, peer: TlsPeer | None = None) -> Reply:
        """Body: signed {action "fetch", record_id, decision_tx}."""
        trail = _Trail("deliver", record_id, peer)
        return self._audited(trail, lambda: self._fetch(trail, _json_object(body)))

    def erase(self, record_id: str, body: bytes, peer: TlsPeer | None = None) -> Reply:
        """Body: signed {action "erase", record_id}, by a user of this domain."""
        trail = _Trail("erase", record_id, peer)
        return self._audited(trail, lambda: self._erase(trail, _json_object(body)))

    # -- the three requests ------------------------------------------------------

    def _store(self, trail: _Trail, document: dict[str, Any]) -> _Success:
        trail.record_id = _claimed_record_id(document.get("statement"))
        if trail.record_id is None:
            raise _Failure(HTTPStatus.BAD_REQUEST, "statement record_id must be 1-128 of A-Z a-z 0-9 . _ : -")
        verified = self._authenticate(trail, document.get("statement"), "store", owners_only=True)
        blob = _base64_field(document, "blob")
        ciphertext_sha256 = hashlib.sha256(blob).hexdigest()
        if verified.statement.get("ciphertext_sha256") != ciphertext_sha256:
            raise _Failure(HTTPStatus.BAD_REQUEST, "blob does not match the signed ciphertext_sha256")
        if not blob.startswith(BLOB_HEADER):
            raise _Failure(HTTPStatus.BAD_REQUEST, "blob is not a sealed MedFabric payload")
        try:
            key = RecordKey(trail.record_id, ciphertext_sha256, WrappedKey.from_dict(document.get("wrapped_key")))
            self._data_key(key)  # the service must be able to open what it keeps
        except CryptoError:
            message = "wrapped_key does not open for this service (see GET /identity)"
            raise _Failure(HTTPStatus.BAD_REQUEST, message) from None
        with self._records_lock:
            self._refuse_existing(key.record_id)
            if self._blobs.exists(ciphertext_sha256):
                raise _Failure(HTTPStatus.CONFLICT, "this ciphertext is already stored for another record")
            if self._pending is not None:  # first: a store cut short leaves a mark the sweep finds
                self._pending.add(PendingPut(key.record_id, ciphertext_sha256, datetime.now(timezone.utc)))
            self._blobs.put(blob)
            self._keys.put(key)
        return _Success(HTTPStatus.CREATED, {"record_id": key.record_id, "address": ciphertext_sha256}, "stored",
                        undo=lambda: self._unstore(key))

    def _unstore(self, key: RecordKey) -> None:
        """Forget a store whose access-log entry could not be written (nothing of it was delivered)."""
        with self._records_lock:
            self._keys.discard(key.record_id)
            self._blobs.delete(key.ciphertext_sha256)
            if self._pending is not None:
                self._pending.remove(key.record_id)

    def orphan_sweep(self, index: IndexLedger, clock: Callable[[], datetime] | None = None) -> OrphanSweep:
        """The sweep of this service's pending stores against `index` (the local channel's emr_index)."""
        if self._pending is None:
            raise ValueError("this service keeps no pending stores to sweep")
        return OrphanSweep(self._blobs, self._keys, self._pending, index, self._audit,
                           self._consortium.local_channel, self._records_lock, self._orphan_grace, clock)

    def _fetch(self, trail: _Trail, document: dict[str, Any]) -> _Success:
        verified = self._authenticate(trail, document, "fetch", owners_only=False)
        requester = trail.requester
        fl_record = parse_fl_record_id(trail.record_id)
        if fl_record is None:
            decision_tx = verified.statement.get("decision_tx")
            if not isinstance(decision_tx, str) or not _TX_ID.fullmatch(decision_tx):
                raise _Failure(HTTPStatus.FORBIDDEN, "statement names no decision_tx (a transaction id)")
            trail.decision_tx = decision_tx
            trail.break_glass = self._check_decision(trail.record_id, requester, decision_tx).break_glass
        else:
            facts = self._fl_facts(fl_record, requester)
            trail.decision_tx = facts.tx_id
        with self._records_lock:
            key = self._key(trail.record_id)
            blob = self._blob(key)
        if fl_record is not None and facts.ciphertext_sha256 not in (None, key.ciphertext_sha256):
            raise _Failure(HTTPStatus.CONFLICT, f"the stored {fl_record} is not the one recorded on the ledger "
                                                f"(ciphertext {key.ciphertext_sha256[:16]}..., recorded "
                                                f"{facts.ciphertext_sha256[:16]}...)")
        decision_tx = trail.decision_tx
        try:
            data_key = self._data_key(key)
        except CryptoError:
            raise _Failure(HTTPStatus.CONFLICT, "stored data key does not open for this service") from None
        requester_pem = verified.certificate.public_bytes(serialization.Encoding.PEM)
        context = key_context(key.record_id, key.ciphertext_sha256, requester.msp_id)
        wrapped = wrap_key(data_key, requester_pem, context)
        delivery = {
            "action": "deliver",
            "record_id": key.record_id,
            "ciphertext_sha256": key.ciphertext_sha256,
            "requester": {"msp_id": requester.msp_id, "id": requester.id},
            "recipient_key_id": wrapped.recipient_key_id,
            "decision_tx": decision_tx,
        }
        signed = sign_statement(delivery, self._identity.signer, self._identity.identity)
        body = {
            "record_id": key.record_id,
            "ciphertext_sha256": key.ciphertext_sha256,
            "blob": base64.b64encode(blob).decode(),
            "wrapped_key": wrapped.to_dict(),
            "delivery": signed.to_dict(),
        }
        return _Success(HTTPStatus.OK, body, f"decision {decision_tx}")

    def _erase(self, trail: _Trail, document: dict[str, Any]) -> _Success:
        self._authenticate(trail, document, "erase", owners_only=True)
        with self._records_lock:
            key = self._key(trail.record_id)
            self._keys.erase(key.record_id)
            self._blobs.delete(key.ciphertext_sha256)
            if self._pending is not None:
                self._pending.remove(key.record_id)
        return _Success(HTTPStatus.OK, {"record_id": key.record_id, "erased": True}, "ciphertext and key destroyed")

    # -- checks ------------------------------------------------------------------

    def _authenticate(self, trail: _Trail, document: Any, action: str, *, owners_only: bool) -> VerifiedStatement:
        """The verified statement of `action` on the trail's record; its signer becomes the trail's requester."""
        if not isinstance(document, dict):
            raise _Failure(HTTPStatus.BAD_REQUEST, "expected a signed statement (a JSON object)")
        try:
            signed = SignedStatement.from_dict(document)
        except CryptoError as error:
            raise _Failure(HTTPStatus.BAD_REQUEST, str(error)) from None
        trusted = self._consortium.ca_pems.get(signed.msp_id)
        if trusted is None:
            raise _Failure(HTTPStatus.FORBIDDEN, "the signer's MSP is not a member of the consortium")
        if owners_only and signed.msp_id != self._consortium.own_msp:
            raise _Failure(HTTPStatus.FORBIDDEN, f"only users of {self._consortium.own_msp} may {action} its records")
        try:
            verified = self._seen.verify(signed, list(trusted))
        except CryptoError as error:
            raise _Failure(HTTPStatus.FORBIDDEN, str(error)) from None
        trail.requester = Requester(verified.msp_id, fabric_client_id(verified.certificate))
        signer = TlsPeer(verified.msp_id, _common_name(verified.certificate))
        if trail.peer is not None and trail.peer != signer:
            raise _Failure(HTTPStatus.FORBIDDEN,
                           f"the statement is signed by {signer}, but the TLS client certificate is {trail.peer}'s")
        if verified.statement.get("action") != action:
            raise _Failure(HTTPStatus.FORBIDDEN, f"the statement is not for action {action}")
        if verified.statement.get("record_id") != trail.record_id:
            raise _Failure(HTTPStatus.FORBIDDEN, f"the statement is not for record {trail.record_id}")
        return verified

    def _check_decision(self, record_id: str, requester: Requester, decision_tx: str) -> Decision:
        """The allowing decision `decision_tx` for `requester` on `record_id`, its grant still standing."""
        channel = self._consortium.channel_for(requester.msp_id)
        try:
            decision = self._ledger.decision(channel, decision_tx)
            now = datetime.now(timezone.utc)
            refusal = _refusal(decision, record_id, requester, now)
            if refusal is None and decision.grant_id is not None:
                refusal = _grant_refusal(self._ledger.grant(channel, decision.grant_id), decision.grant_id, now)
        except LedgerError as error:
            raise _Failure(HTTPStatus.SERVICE_UNAVAILABLE, f"ledger unavailable: {error}") from None
        if refusal:
            raise _Failure(HTTPStatus.FORBIDDEN, f"decision {decision_tx} on {channel}: {refusal}")
        return decision

    def _fl_facts(self, record: FlRecordId, requester: Requester) -> FlRecordFacts:
        """What the fl contract says of this FL record, when it lets `requester` have it; _Failure otherwise."""
        if self._fl_ledger is None:
            raise _Failure(HTTPStatus.FORBIDDEN, "this service keeps no federated-learning records")
        what = "aggregation" if record.is_global else "update"
        try:
            facts = self._fl_ledger.fl_record(self._consortium.public_channel, record.task_id, record.round,
                                              record.part)
        except LedgerError as error:
            raise _Failure(HTTPStatus.SERVICE_UNAVAILABLE, f"ledger unavailable: {error}") from None
        if facts is None:
            raise _Failure(HTTPStatus.FORBIDDEN, f"the ledger records no {what} for {record}")
        if requester.msp_id not in facts.readers:
            readers = ", ".join(sorted(facts.readers))
            raise _Failure(HTTPStatus.FORBIDDEN, f"{requester.msp_id} may not have {record}: only {readers}")
        return facts

    def _key(self, record_id: str) -> RecordKey:
        try:
            return self._keys.get(record_id)
        except UnknownRecordError:
            raise _Failure(HTTPStatus.NOT_FOUND, f"record {record_id} not found") from None
        except RecordErasedError:
            raise _Failure(HTTPStatus.GONE, "record erased") from None
        except StoreError as error:
            raise _Failure(HTTPStatus.CONFLICT, str(error)) from None

    def _refuse_existing(self, record_id: str) -> None:
        try:
            self._key(record_id)
        except _Failure as failure:
            if failure.status == HTTPStatus.NOT_FOUND:
                return
            raise
        pending = self._pending.get(record_id) if self._pending is not None else None
        if pending is not None:
            settled = pending.stored_at + self._orphan_grace
            raise _Failure(HTTPStatus.CONFLICT,
                           f"record {record_id} is already stored but not indexed: a put in progress, or one that "
                           f"did not complete, whose payload is destroyed if still not indexed at "
                           f"{settled.isoformat(timespec='seconds')}; put it again after that")
        raise _Failure(HTTPStatus.CONFLICT, f"record {record_id} is already stored")

    def _blob(self, key: RecordKey) -> bytes:
        try:
            return self._blobs.get(key.ciphertext_sha256)
        except TamperedBlobError as error:
            raise _Failure(HTTPStatus.CONFLICT, str(error)) from None
        except BlobNotFoundError:
            raise _Failure(HTTPStatus.CONFLICT, f"the ciphertext of record {key.record_id} is missing") from None

    def _data_key(self, key: RecordKey) -> bytes:
        own = self._identity
        context = key_context(key.record_id, key.ciphertext_sha256, own.identity.msp_id)
        return unwrap_key(key.wrapped_key, own.private_key, own.identity.certificate_pem, context)

    # -- auditing ----------------------------------------------------------------

    def _audited(self, trail: _Trail, handle: Callable[[], _Success]) -> Reply:
        """Run `handle`, report its outcome; a success that cannot be logged is answered 503 without its data."""
        try:
            success = handle()
        except _Failure as failure:
            action = "denied" if failure.status == HTTPStatus.FORBIDDEN else trail.action
            self._report_failure(trail, action, failure.message)
            return Reply(failure.status, {"error": failure.message}, trail.requester_msp)
        except Exception as error:  # noqa: BLE001 - answered 500, never with its details
            _log.error("%s of record %s failed: %s", trail.action, trail.record_id, type(error).__name__)
            self._report_failure(trail, trail.action, "internal error")
            return Reply(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": "internal error"}, trail.requester_msp)
        try:
            self._audit.log_access(
                trail.action, trail.record_id, "success", success.reason, trail.requester, trail.decision_tx,
                break_glass=trail.break_glass,
            )
        except Exception as error:  # noqa: BLE001 - whatever the sink raises, nothing unlogged leaves
            _log.error("access log unavailable for %s of record %s: %s", trail.action, trail.record_id, error)
            message = f"access log unavailable: the {trail.action} of record {trail.record_id} is not logged"
            if success.undo is not None:
                success.undo()
                message += ", and nothing of it was kept: retry"
            return Reply(HTTPStatus.SERVICE_UNAVAILABLE, {"error": message}, trail.requester_msp)
        return Reply(success.status, success.body, trail.requester_msp)

    def _report_failure(self, trail: _Trail, action: str, reason: str) -> None:
        """Log a refusal or failure, within the requester's refusal budget (medfabric.data_service.refusal_budget)."""
        requester = (trail.requester.msp_id, trail.requester.id) if trail.requester else None
        unlogged = self._refusals.admit(requester)
        if unlogged is None:
            _log.warning("%s of record %s not logged on the ledger: too many refusals for %s", action,
                         trail.record_id, trail.requester_msp or "unverified callers")
            return
        if unlogged:
            reason = f"[{unlogged} earlier refusals of this requester over its budget not logged] {reason}"
        entry = RefusalEntry(action, trail.record_id, reason, trail.requester, trail.decision_tx, trail.break_glass)
        if not self._refusal_log.submit(entry):
            self._refusals.not_logged(requester)
            _log.warning("%s of record %s not logged on the ledger: the refusal log is full", action, trail.record_id)

    def flush_refusals(self) -> None:
        """Return once every refusal so far is on the access log (or failed to get there)."""
        self._refusal_log.flush()

    def close(self) -> None:
        """Write the refusals still queued, then stop the refusal log's thread."""
        self._refusal_log.close()


def _refusal(decision: Decision | None, record_id: str, requester: Requester, now: datetime) -> str | None:
    """Why the decision does not let `requester` read `record_id` now; None when it does."""
    if decision is None:
        return "no access decision by that transaction"
    if decision.record_id != record_id:
        return "the decision is for another record"
    if (decision.actor_msp, decision.actor_id) != (requester.msp_id, requester.id):
        return "the decision is for another requester"
    if decision.decision != ALLOW:
        return f"the decision is {decision.decision}"
    age = now - decision.timestamp
    if age > DECISION_MAX_AGE or age < -FUTURE_SKEW:
        return f"the decision was made at {decision.timestamp.isoformat()}, not within the last {DECISION_MAX_AGE}"
    return None


def _grant_refusal(grant: GrantStanding | None, grant_id: str, now: datetime) -> str | None:
    """Why the grant an allowing decision relied on no longer stands; None when it does."""
    if grant is None:
        return f"its grant {grant_id} is not on the ledger"
    if grant.revoked:
        return f"its grant {grant_id} has been revoked"
    if grant.expires <= now:
        return f"its grant {grant_id} expired at {grant.expires.isoformat()}"
    return None


@dataclass
class _Trail:
    """What the audit entry of one request says: the action, the record, and (once verified) who asked and on
    which decision."""

    action: str
    record_id: str | None
    peer: TlsPeer | None = None  # the verified TLS client, when the request came over TLS
    requester: Requester | None = None
    decision_tx: str | None = None
    break_glass: bool = False  # the decision was a break-glass one

    @property
    def requester_msp(self) -> str | None:
        return self.requester.msp_id if self.requester else None


@dataclass(frozen=True)
class _Success:
    status: int
    body: dict[str, Any]
    reason: str  # for the audit entry
    undo: Callable[[], None] | None = None  # what reverts it when its audit entry cannot be written


class _Failure(Exception):
    """A request answered with an error status and a one-line message."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


class _SeenNonces:
    """Statement verification with replay protection; a nonce is forgotten once its statement is too old anyway."""

    def __init__(self, max_age_s: float):
        self._max_age = timedelta(seconds=max_age_s)
        self._lock = threading.Lock()
        self._nonces: set[str] = set()
        self._expiries: list[tuple[datetime, str]] = []

    def verify(self, signed: SignedStatement, trusted_ca_pems: list[bytes]) -> VerifiedStatement:
        with self._lock:
            now = datetime.now(timezone.utc)
            while self._expiries and self._expiries[0][0] < now:
                self._nonces.discard(heapq.heappop(self._expiries)[1])
            verified = verify_statement(
                signed, trusted_ca_pems, max_age_s=self._max_age.total_seconds(), now=now, seen_nonces=self._nonces
            )
            heapq.heappush(self._expiries, (verified.issued_at + self._max_age, verified.nonce))
            return verified


def _common_name(certificate: x509.Certificate) -> str:
    names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else ""


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        document = json.loads(body)
    except ValueError:
        document = None
    if not isinstance(document, dict):
        raise _Failure(HTTPStatus.BAD_REQUEST, "request body is not a JSON object")
    return document


def _claimed_record_id(signed: Any) -> str | None:
    """The record id a (not yet verified) signed statement names, if it is a valid one."""
    content = signed.get("statement") if isinstance(signed, dict) else None
    record_id = content.get("record_id") if isinstance(content, dict) else None
    return record_id if isinstance(record_id, str) and RECORD_ID.fullmatch(record_id) else None


def _base64_field(document: dict[str, Any], name: str) -> bytes:
    value = document.get(name)
    try:
        return base64.b64decode(value, validate=True) if isinstance(value, str) else b""
    except ValueError:
        raise _Failure(HTTPStatus.BAD_REQUEST, f"'{name}' is not base64") from None
