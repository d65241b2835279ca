"""access_log: who did what to which record, and when (SYSTEM.md section 2; shaped like FHIR AuditEvent).

Contracts log what they do to a record with `append_log`, in the same
transaction; clients and services log what happens off chain (requests,
deliveries, refusals, their own writes and erasures) with LogAccess, which
refuses the actions only contracts log (read, break-glass, grant, revoke,
purchase): an entry a caller wrote never looks like consent's decisions. Who
acted always comes from the caller's identity; a service acting for someone
names them in requester_msp and requester_id, and the decision it relied on
in decision_tx. An off-chain entry that follows a break-glass decision says
break_glass: true (with its decision_tx) and is flagged like the decision, so
that the tier which did not decide shows the break-glass too. State:

    ("log", timestamp, tx_id, n)                     -> the entry, canonical JSON
    ("log~record", record_id, timestamp, tx_id, n)    -> b"\\x00", to list a record's entries

`timestamp` is the transaction's, ISO-8601 UTC with milliseconds, so key order
is time order (then transaction id, then n) and a period is one key range.
Entries of different transactions never share a key and no counter is shared,
so concurrent writers never conflict. n numbers the entries of one transaction
("0000", "0001"...); the first entry's log_id is the transaction id, a later
one's the transaction id + ":" + n.

The Merkle root of a period (LogDigest), so that a domain can anchor its local
log on the public channel: the leaves are SHA-256 of each entry's canonical
JSON, in key order; a parent is SHA-256 of its two children's 32-byte digests
concatenated; a level with an odd number of nodes promotes its last node to the
next level unchanged (it is not paired with itself). The root of one entry is
its leaf; the root of no entries is SHA-256 of nothing. Written in hex.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from ..runtime import (
    ChaincodeStub, Contract, KeyValue, TransactionContext, TransactionError, canonical_json, load_json, transaction
)
from .common import (
    ID_RULE, INDEX_VALUE, MSP_ID_RULE, TIME_RULE, TX_ID_RULE, Rule, check_argument, check_fields, check_page,
    invalid_field, iso_millis, member_domain, one_of, parse_document, read_range, require_role, text, time_argument,
    trusted_role
)

LOG_KEY = "log"
RECORD_INDEX = "log~record"
ACTIONS = ("read", "write", "grant", "revoke", "purchase", "denied", "erase", "break-glass", "request", "deliver")
OFF_CHAIN_ACTIONS = ("request", "deliver", "write", "erase", "denied")  # what LogAccess takes
DATA_SERVICE_ROLE = "data-service"  # the only role that logs for a requester, a delivery made, a write or an erasure
OUTCOMES = ("success", "failure")
FLAGGED_ACTIONS = frozenset({"break-glass"})  # to be reviewed after the fact
MAX_ENTRIES_PER_TRANSACTION = 10_000  # n is written with 4 digits
REASON_RULE: Rule = (
    text(re.compile(r"(?=.*\S)[^\x00-\x1f\x7f]{1,256}", re.DOTALL)),
    "must be 1-256 characters without control characters, not all spaces",
)

MAX_CLIENT_ID_LENGTH = 1024

_COUNT_ATTRIBUTE = "_access_log_entries"  # on the TransactionContext: entries appended by this transaction
_CLIENT_ID = re.compile(r"x509::[^\x00-\x1f\x7f]+::[^\x00-\x1f\x7f]+")
_REQUESTER = ("requester_msp", "requester_id")  # both or neither
_ENTRY_RULES: dict[str, Rule] = {
    "record_id": ID_RULE,
    "action": (one_of(OFF_CHAIN_ACTIONS), f"must be one of {', '.join(OFF_CHAIN_ACTIONS)}"),
    "outcome": (one_of(OUTCOMES), f"must be one of {', '.join(OUTCOMES)}"),
    "reason": REASON_RULE,
    "requester_msp": MSP_ID_RULE,
    "requester_id": (
        lambda value: text(_CLIENT_ID)(value) and len(value) <= MAX_CLIENT_ID_LENGTH,
        f"must be a client id x509::<subject>::<issuer> of at most {MAX_CLIENT_ID_LENGTH} characters without control "
        "characters",
    ),
    "decision_tx": TX_ID_RULE,
    "break_glass": (lambda value: value is True, "must be true when present"),
}
_OPTIONAL_FIELDS = frozenset(_ENTRY_RULES) - {"action", "outcome"}


@dataclass(frozen=True)
class LogEntry:
    log_id: str  # the transaction id, + ":" + n for a transaction's later entries
    record_id: str | None  # None for a grant of a patient's or a resource type's records
    actor_id: str  # the caller's x509::subject::issuer
    actor_msp: str
    actor_role: str | None  # the caller's medfabric.role, when trusted (common.trusted_role); None otherwise
    action: str
    outcome: str
    reason: str | None
    from_domain: str | None  # the domain of the caller's MSP (the consortium's binding); None for an MSP of none
    flagged: bool  # a break-glass access, to be reviewed
    channel: str
    tx_id: str
    timestamp: str  # the transaction's, ISO-8601 UTC with milliseconds
    requester_msp: str | None = None  # from LogAccess: the party the caller (a service) acted for
    requester_id: str | None = None  # its x509::subject::issuer
    decision_tx: str | None = None  # from LogAccess: the consent decision the access relied on


@dataclass(frozen=True)
class LogPage:
    entries: list[LogEntry]
    bookmark: str  # starts the next page; "" when there is none


@dataclass(frozen=True)
class PeriodDigest:
    channel: str
    since: str  # as iso_millis writes it: the period is [since, until)
    until: str
    count: int
    merkle_root: str  # hex


def append_log(
    ctx: TransactionContext,
    action: str,
    outcome: str,
    record_id: str | None = None,
    reason: str | None = None,
    *,
    requester_msp: str | None = None,
    requester_id: str | None = None,
    decision_tx: str | None = None,
    break_glass: bool = False,
) -> LogEntry:
    """Write an entry for the caller in this transaction; returns it. Flagged when the action is break-glass or the
    entry follows a break-glass decision."""
    if action not in ACTIONS or outcome not in OUTCOMES:
        raise ValueError(f"no log action {action!r} with outcome {outcome!r}")
    number = getattr(ctx, _COUNT_ATTRIBUTE, 0)
    if number >= MAX_ENTRIES_PER_TRANSACTION:
        raise TransactionError(f"a transaction may write at most {MAX_ENTRIES_PER_TRANSACTION} log entries")
    setattr(ctx, _COUNT_ATTRIBUTE, number + 1)
    stub, identity = ctx.stub, ctx.client_identity
    tx_id = stub.get_tx_id()
    entry = LogEntry(
        log_id=f"{tx_id}:{number}" if number else tx_id,
        record_id=record_id,
        actor_id=identity.get_id(),
        actor_msp=identity.msp_id,
        actor_role=trusted_role(identity)[0],
        action=action,
        outcome=outcome,
        reason=reason,
        from_domain=member_domain(identity),
        flagged=action in FLAGGED_ACTIONS or break_glass,
        channel=stub.get_channel_id(),
        tx_id=tx_id,
        timestamp=iso_millis(stub.get_tx_timestamp()),
        requester_msp=requester_msp,
        requester_id=requester_id,
        decision_tx=decision_tx,
    )
    suffix = [entry.timestamp, tx_id, f"{number:04d}"]
    stub.put_state(stub.create_composite_key(LOG_KEY, suffix), canonical_json(entry))
    if record_id is not None:
        stub.put_state(stub.create_composite_key(RECORD_INDEX, [record_id, *suffix]), INDEX_VALUE)
    return entry


def merkle_root(leaves: list[bytes]) -> str:
    """The root over 32-byte leaf digests, as the module docstring defines it, in hex."""
    if not leaves:
        return hashlib.sha256(b"").hexdigest()
    level = leaves
    while len(level) > 1:
        parents = [hashlib.sha256(level[i] + level[i + 1]).digest() for i in range(0, len(level) - 1, 2)]
        level = parents + level[len(parents) * 2 :]
    return level[0].hex()


class AccessLogContract(Contract):
    """The access log: append, list a period in time order, digest a period for anchoring."""

    name = "access_log"

    @transaction
    def LogAccess(self, ctx: TransactionContext, entry_json: str) -> LogEntry:
        """Log an access made off chain by the caller; returns the entry.

        {action, outcome, record_id?, reason?, requester_msp?, requester_id?, decision_tx?, break_glass?}: action
        one of OFF_CHAIN_ACTIONS; the requester fields name whom the caller acted for, both or neither; break_glass
        (true) needs the decision_tx it follows.

        Roles: any member logs its own request, a refusal or a failed delivery; only a data service (trusted role
        data-service) logs for a requester, a delivery made, a write or an erasure, so that a reader cannot log
        that it was served, nor one member that another's service acted.
        """
        document = parse_document(entry_json, "entry")
        check_fields(document, _ENTRY_RULES, "entry", optional=_OPTIONAL_FIELDS)
        for given, needed in (_REQUESTER, _REQUESTER[::-1]):
            if given in document and needed not in document:
                invalid_field("entry", needed, f"is required with '{given}'")
        if "break_glass" in document and "decision_tx" not in document:
            invalid_field("entry", "decision_tx", "is required with 'break_glass'")
        action, outcome = document["action"], document["outcome"]
        if "requester_msp" in document:
            require_role(ctx.client_identity, DATA_SERVICE_ROLE, "log an access for a requester")
        elif action in ("write", "erase") or (action, outcome) == ("deliver", "success"):
            article = "an" if action[0] in "aeiou" else "a"
            require_role(ctx.client_identity, DATA_SERVICE_ROLE, f"log {article} {action} {outcome}")
        optional = {name: document.get(name) for name in (*_REQUESTER, "decision_tx")}
        return append_log(
            ctx, action, outcome, document.get("record_id"), document.get("reason"), **optional,
            break_glass="break_glass" in document,
        )

    @transaction(evaluate=True)
    def ListLog(
        self,
        ctx: TransactionContext,
        since: str = "",
        until: str = "",
        record_id: str = "",
        page_size: int = 0,
        bookmark: str = "",
    ) -> LogPage:
        """Entries of [since, until) ("" for no bound), of one record or all, in time order; all or a page."""
        since, until = _period(since, until)
        if record_id:
            check_argument("record_id", record_id, ID_RULE)
        check_page(page_size, bookmark)
        stub = ctx.stub
        if record_id:
            keys, next_bookmark = _read_period(stub, RECORD_INDEX, [record_id], since, until, page_size, bookmark)
            entries = [_load_entry(stub, _entry_key(stub, key)) for key in keys]
        else:
            keys, next_bookmark = _read_period(stub, LOG_KEY, [], since, until, page_size, bookmark)
            entries = [load_json(LogEntry, entry.value, "log entry") for entry in keys]
        return LogPage(entries, next_bookmark)

    @transaction(evaluate=True)
    def LogDigest(self, ctx: TransactionContext, since: str, until: str) -> PeriodDigest:
        """The number of entries of [since, until) on this channel and their Merkle root."""
        check_argument("since", since, TIME_RULE)
        check_argument("until", until, TIME_RULE)
        since, until = _period(since, until)
        entries, _ = _read_period(ctx.stub, LOG_KEY, [], since, until, 0, "")
        leaves = [hashlib.sha256(canonical_json(load_json(LogEntry, e.value, "log entry"))).digest() for e in entries]
        return PeriodDigest(ctx.stub.get_channel_id(), since, until, len(leaves), merkle_root(leaves))


def _period(since: str, until: str) -> tuple[str, str]:
    since, until = time_argument("since", since), time_argument("until", until)
    if since and until and until <= since:
        raise TransactionError("invalid argument: 'until' must be after 'since'")
    return since, until


def _read_period(
    stub: ChaincodeStub, object_type: str, attributes: list[str], since: str, until: str, page_size: int, bookmark: str
) -> tuple[list[KeyValue], str]:
    start = stub.create_composite_key(object_type, [*attributes, since]) if since else ""
    end = stub.create_composite_key(object_type, [*attributes, until]) if until else ""
    return read_range(stub, object_type, attributes, page_size, bookmark, start, end)


def _entry_key(stub: ChaincodeStub, index_entry: KeyValue) -> str:
    _, (_, *suffix) = stub.split_composite_key(index_entry.key)
    return stub.create_composite_key(LOG_KEY, suffix)


def _load_entry(stub: ChaincodeStub, key: str) -> LogEntry:
    data = stub.get_state(key)
    if data is None:
        raise TransactionError("the log index names an entry that does not exist")
    return load_json(LogEntry, data, "log entry")
