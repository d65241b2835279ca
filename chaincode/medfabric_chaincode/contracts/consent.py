"""consent: grants to read records of another domain, and access decisions (shaped like FHIR Consent).

A grant lets one MSP, or one user of it (an enrollment id), read one record,
every record of one patient, or every record of one FHIR resource type, of one
domain, for a purpose, until it expires or is revoked. Only the owner grants:
for a record, its owner_msp in emr_index on this channel; for a patient or a
resource type, an identity whose certificate says medfabric.domain = the
domain. A grant counts for a record only when the grantor's MSP owns the
record, so no MSP can open another's records by claiming its domain. State:

    ("grant", grant_id)                              -> the grant, canonical JSON
    ("grant~record", record_id, grant_id)             -> b"\\x00"
    ("grant~patient", domain, patient, grant_id)      -> b"\\x00"
    ("grant~type", domain, resource_type, grant_id)   -> b"\\x00"
    ("decision", tx_id)                               -> an AccessDecision, canonical JSON

grant_id is the id of the granting transaction. Expiry is judged by the
transaction timestamp: a grant is valid while timestamp < expires.

CheckAccess decides for the caller and a declared purpose: a grant counts only
for its own purpose; for the purpose "purchase", the caller's own unexpired
purchase of the record (market contract) is the grant. EmergencyAccess (break-glass) is for treatment. Both keep
the decision under
their own transaction id (only they write "decision" keys: GetDecision is what
a data service trusts, never an access-log entry) and write it to the access
log in the same transaction (access_log.append_log). A denial is an answer, not
a failure: it commits, so that it stays on the ledger.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, replace

from ..runtime import (
    ChaincodeStub, Contract, TransactionContext, TransactionError, canonical_json, load_json, transaction
)
from .access_log import REASON_RULE, append_log
from .common import (
    ENROLLMENT_ATTRIBUTE, INDEX_VALUE, MSP_ID_RULE, ROLE_ATTRIBUTE, TIME_RULE, TX_ID_RULE, Rule, check_argument,
    check_fields, invalid_field, iso_millis, one_of, parse_document, require_domain, text, trusted_role, utc_time
)
from .emr_index import ENTRY_RULES, EmrRecord, find_record, load_record
from .market import PURCHASE_PURPOSE, purchase_allowing

GRANT_KEY = "grant"
RECORD_GRANTS = "grant~record"
PATIENT_GRANTS = "grant~patient"
TYPE_GRANTS = "grant~type"
DECISION_KEY = "decision"
SCOPES = ("record_id", "patient", "resource_type")
PURPOSES = ("treatment", "research", "payment", "operations", "public-health")
ACCESS_PURPOSES = (*PURPOSES, PURCHASE_PURPOSE)  # a purchase (market contract) counts as a grant for its own purpose
EMERGENCY_ROLE = "doctor"
EMERGENCY_PURPOSE = "treatment"  # break-glass is emergency treatment; also CheckAccess's default purpose
GRANT_CREATED_EVENT = "GrantCreated"
GRANT_REVOKED_EVENT = "GrantRevoked"
ACCESS_DECISION_EVENT = "AccessDecision"

_ENROLLMENT_ID = re.compile(r"[A-Za-z0-9._@-]{1,128}")
_GRANT_RULES: dict[str, Rule] = {
    **{scope: ENTRY_RULES[scope] for scope in SCOPES},
    "domain": ENTRY_RULES["domain"],
    "grantee_msp": MSP_ID_RULE,
    "grantee_user": (text(_ENROLLMENT_ID), "must be an enrollment id of 1-128 characters of A-Z a-z 0-9 . _ @ -"),
    "purpose": (one_of(PURPOSES), f"must be one of {', '.join(PURPOSES)}"),
    "expires": TIME_RULE,
}


@dataclass(frozen=True)
class ConsentGrant:
    grant_id: str  # the granting transaction's id
    domain: str  # the domain whose records are granted
    record_id: str | None  # the scope: exactly one of record_id, patient, resource_type
    patient: str | None
    resource_type: str | None
    grantee_msp: str
    grantee_user: str | None  # an enrollment id within grantee_msp; None: any identity of it
    purpose: str
    expires: str  # ISO-8601 UTC with milliseconds (truncated)
    grantor_msp: str  # set by the contract: the caller's
    grantor_id: str
    created: str
    revoked: bool
    revoked_at: str | None


@dataclass(frozen=True)
class AccessDecision:
    """A decision of CheckAccess or EmergencyAccess, kept under ("decision", tx_id)."""

    tx_id: str  # the deciding transaction's id
    record_id: str
    actor_id: str  # the caller decided for, x509::subject::issuer
    actor_msp: str
    action: str  # the access decided on: "read"
    purpose: str  # the purpose the caller declared (break-glass: treatment)
    decision: str  # "allow" or "deny"
    reason: str
    grant_id: str | None  # the grant that allows it, if one does
    break_glass: bool  # decided by EmergencyAccess
    timestamp: str  # the transaction's, ISO-8601 UTC with milliseconds


@dataclass(frozen=True)
class AccessAnswer:
    """What CheckAccess and EmergencyAccess return."""

    decision: str  # "allow" or "deny"
    reason: str
    grant_id: str | None  # the grant that allows it, if one does
    log_id: str  # the access-log entry of the decision (the transaction id)


class ConsentContract(Contract):
    """Grant, revoke and list access to records; decide and log accesses."""

    name = "consent"

    @transaction
    def GrantAccess(self, ctx: TransactionContext, grant_json: str) -> ConsentGrant:
        """Let grantee_msp (or one user of it) read a record, or a patient's or a type's records, until `expires`.

        Roles: any identity of the record's owner MSP, or of the domain for a patient or type scope."""
        document = parse_document(grant_json, "grant")
        check_fields(document, _GRANT_RULES, "grant", optional={*SCOPES, "grantee_user"})
        if sum(scope in document for scope in SCOPES) != 1:
            raise TransactionError("invalid grant: exactly one of the fields 'record_id', 'patient', 'resource_type' "
                                   "is required")
        stub, identity = ctx.stub, ctx.client_identity
        now = stub.get_tx_timestamp()
        expires = iso_millis(utc_time(document["expires"]))
        if utc_time(expires) <= now:
            invalid_field("grant", "expires", f"must be after the transaction time {iso_millis(now)}")
        if "record_id" in document:
            _check_record_owner(stub, identity.msp_id, document["record_id"], document["domain"])
        else:
            require_domain(identity, document["domain"], "grant access to its patients or resource types")
        grant = ConsentGrant(
            grant_id=stub.get_tx_id(),
            domain=document["domain"],
            **{scope: document.get(scope) for scope in SCOPES},
            grantee_msp=document["grantee_msp"],
            grantee_user=document.get("grantee_user"),
            purpose=document["purpose"],
            expires=expires,
            grantor_msp=identity.msp_id,
            grantor_id=identity.get_id(),
            created=iso_millis(now),
            revoked=False,
            revoked_at=None,
        )
        stub.put_state(stub.create_composite_key(GRANT_KEY, [grant.grant_id]), canonical_json(grant))
        stub.put_state(_index_key(stub, grant), INDEX_VALUE)
        append_log(ctx, "grant", "success", grant.record_id, f"grant {grant.grant_id}")
        stub.set_event(GRANT_CREATED_EVENT, canonical_json(grant))
        return grant

    @transaction
    def RevokeGrant(self, ctx: TransactionContext, grant_id: str) -> ConsentGrant:
        """Revoke a grant the caller's MSP made; returns it revoked."""
        check_argument("grant_id", grant_id, TX_ID_RULE)
        stub = ctx.stub
        grant = _load_grant(stub, grant_id)
        if grant.grantor_msp != ctx.client_identity.msp_id:
            raise TransactionError(f"only the grantor {grant.grantor_msp} may revoke grant {grant_id}")
        if grant.revoked:
            raise TransactionError(f"grant {grant_id} is already revoked")
        revoked = replace(grant, revoked=True, revoked_at=iso_millis(stub.get_tx_timestamp()))
        stub.put_state(stub.create_composite_key(GRANT_KEY, [grant_id]), canonical_json(revoked))
        append_log(ctx, "revoke", "success", grant.record_id, f"grant {grant_id}")
        stub.set_event(GRANT_REVOKED_EVENT, canonical_json(revoked))
        return revoked

    @transaction(evaluate=True)
    def GetGrant(self, ctx: TransactionContext, grant_id: str) -> ConsentGrant:
        """A grant, revoked or not."""
        check_argument("grant_id", grant_id, TX_ID_RULE)
        return _load_grant(ctx.stub, grant_id)

    @transaction(evaluate=True)
    def ListGrants(self, ctx: TransactionContext, record_id: str) -> list[ConsentGrant]:
        """Every grant that bears on a record, revoked and expired ones too: its own, its patient's, its type's."""
        check_argument("record_id", record_id, ENTRY_RULES["record_id"])
        return _grants_for(ctx.stub, load_record(ctx.stub, record_id))

    @transaction
    def CheckAccess(
        self, ctx: TransactionContext, record_id: str, action: str = "read", purpose: str = EMERGENCY_PURPOSE
    ) -> AccessAnswer:
        """May the caller read the record now, for `purpose`? Keeps and logs the decision ("read" or "denied");
        commits either way."""
        check_argument("record_id", record_id, ENTRY_RULES["record_id"])
        check_argument("action", action, (one_of(("read",)), "must be read"))
        check_argument("purpose", purpose, (one_of(ACCESS_PURPOSES), f"must be one of {', '.join(ACCESS_PURPOSES)}"))
        allowed, reason, grant_id = _decide(ctx, record_id, purpose)
        return _conclude(ctx, record_id, purpose, allowed, reason, grant_id)

    @transaction
    def EmergencyAccess(self, ctx: TransactionContext, record_id: str, reason: str) -> AccessAnswer:
        """Break-glass: a doctor reads a record without a grant; logged as "break-glass" and flagged for review."""
        check_argument("record_id", record_id, ENTRY_RULES["record_id"])
        check_argument("reason", reason, REASON_RULE)
        role, untrusted = trusted_role(ctx.client_identity)
        if role != EMERGENCY_ROLE:
            refusal = f"break-glass refused: {untrusted or f'{ROLE_ATTRIBUTE} is {role}'}"
            return _conclude(ctx, record_id, EMERGENCY_PURPOSE, False, refusal, break_glass=True)
        record = find_record(ctx.stub, record_id)
        if record is None or record.erased:
            refusal = "record not found" if record is None else "record erased"
            return _conclude(ctx, record_id, EMERGENCY_PURPOSE, False, refusal, break_glass=True)
        return _conclude(ctx, record_id, EMERGENCY_PURPOSE, True, f"break-glass: {reason}", break_glass=True)

    @transaction(evaluate=True)
    def GetDecision(self, ctx: TransactionContext, tx_id: str) -> AccessDecision:
        """The decision CheckAccess or EmergencyAccess transaction `tx_id` made, allow or deny."""
        check_argument("tx_id", tx_id, TX_ID_RULE)
        data = ctx.stub.get_state(ctx.stub.create_composite_key(DECISION_KEY, [tx_id]))
        if data is None:
            raise TransactionError(f"decision {tx_id} not found")
        return load_json(AccessDecision, data, "decision")


def _check_record_owner(stub: ChaincodeStub, msp_id: str, record_id: str, domain: str) -> None:
    record = load_record(stub, record_id)
    if record.owner_msp != msp_id:
        raise TransactionError(f"only the owner {record.owner_msp} may grant access to record {record_id}")
    if record.erased:
        raise TransactionError(f"record {record_id} is erased")
    if record.domain != domain:
        invalid_field("grant", "domain", f"must be the record's domain {record.domain}")


def _index_key(stub: ChaincodeStub, grant: ConsentGrant) -> str:
    if grant.record_id is not None:
        return stub.create_composite_key(RECORD_GRANTS, [grant.record_id, grant.grant_id])
    if grant.patient is not None:
        return stub.create_composite_key(PATIENT_GRANTS, [grant.domain, grant.patient, grant.grant_id])
    return stub.create_composite_key(TYPE_GRANTS, [grant.domain, grant.resource_type, grant.grant_id])


def _load_grant(stub: ChaincodeStub, grant_id: str) -> ConsentGrant:
    data = stub.get_state(stub.create_composite_key(GRANT_KEY, [grant_id]))
    if data is None:
        raise TransactionError(f"grant {grant_id} not found")
    return load_json(ConsentGrant, data, "grant")


def _grants_for(stub: ChaincodeStub, record: EmrRecord) -> list[ConsentGrant]:
    """The grants of the record's owner on it, on its patient, on its type; each group in grant id order."""
    grant_ids = []
    for object_type, attributes in (
        (RECORD_GRANTS, [record.record_id]),
        (PATIENT_GRANTS, [record.domain, record.patient]),
        (TYPE_GRANTS, [record.domain, record.resource_type]),
    ):
        with stub.get_state_by_partial_composite_key(object_type, attributes) as entries:
            grant_ids += [stub.split_composite_key(entry.key)[1][-1] for entry in entries]
    grants = [_load_grant(stub, grant_id) for grant_id in grant_ids]
    return [grant for grant in grants if grant.grantor_msp == record.owner_msp]


def _decide(ctx: TransactionContext, record_id: str, purpose: str) -> tuple[bool, str, str | None]:
    """(allowed, reason, grant id) for the caller reading the record for `purpose` at the transaction's time."""
    stub, identity = ctx.stub, ctx.client_identity
    record = find_record(stub, record_id)
    if record is None:
        return False, "record not found", None
    if record.erased:
        return False, "record erased", None
    if record.owner_msp == identity.msp_id:
        return True, "own domain", None
    now, user = stub.get_tx_timestamp(), identity.get_attribute(ENROLLMENT_ATTRIBUTE)
    if purpose == PURCHASE_PURPOSE:
        purchase_id = purchase_allowing(stub, record_id, identity.msp_id, user, now)
        if purchase_id is None:
            return False, "no unexpired purchase of the record by the caller", None
        # no grant id: the data service re-reads a grant id with GetGrant; a purchase is neither revocable nor a grant
        return True, f"purchase {purchase_id}", None
    refusal = "no grant"
    for grant in _grants_for(stub, record):
        if grant.grantee_msp != identity.msp_id or grant.grantee_user not in (None, user):
            continue
        if grant.purpose == purpose and not grant.revoked and now < utc_time(grant.expires):
            return True, f"grant {grant.grant_id}", grant.grant_id
        if refusal == "no grant":
            refusal = f"grant {grant.grant_id} {_why_not(grant, purpose)}"
    return False, refusal, None


def _why_not(grant: ConsentGrant, purpose: str) -> str:
    if grant.purpose != purpose:
        return f"is for {grant.purpose}, not {purpose}"
    return "revoked" if grant.revoked else "expired"


def _conclude(
    ctx: TransactionContext,
    record_id: str,
    purpose: str,
    allowed: bool,
    reason: str,
    grant_id: str | None = None,
    *,
    break_glass: bool = False,
) -> AccessAnswer:
    """Keep the caller's decision under the transaction id, log it, announce it in the event; return the answer.

    The only writer of "decision" keys.
    """
    action = ("break-glass" if break_glass else "read") if allowed else "denied"
    entry = append_log(ctx, action, "success" if allowed else "failure", record_id, reason)
    decision = AccessDecision(
        tx_id=entry.tx_id,
        record_id=record_id,
        actor_id=entry.actor_id,
        actor_msp=entry.actor_msp,
        action="read",
        purpose=purpose,
        decision="allow" if allowed else "deny",
        reason=reason,
        grant_id=grant_id,
        break_glass=break_glass,
        timestamp=entry.timestamp,
    )
    stub = ctx.stub
    stub.put_state(stub.create_composite_key(DECISION_KEY, [decision.tx_id]), canonical_json(decision))
    answer = AccessAnswer(decision.decision, reason, grant_id, entry.log_id)
    event = {**asdict(answer), "record_id": record_id, "actor_msp": entry.actor_msp, "flagged": entry.flagged}
    stub.set_event(ACCESS_DECISION_EVENT, canonical_json(event))
    return answer
