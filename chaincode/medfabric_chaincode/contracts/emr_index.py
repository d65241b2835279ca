"""emr_index: the on-chain index of electronic medical records (SYSTEM.md section 2).

An entry tells where a record's ciphertext lives and how to verify it; the
record itself never goes on a ledger. State:

    ("emr", record_id)                   -> the entry, canonical JSON
    ("emr~patient", patient, record_id)  -> b"\\x00", to list a patient's entries in key order

Erasing a record (the right to erasure: its ciphertext and keys are destroyed
off chain) keeps the entry as a tombstone for the audit trail, without its
location. Puts and erasures are written to the access log in the same
transaction.

Deterministic by construction: times come from the proposal, JSON is
canonical, and lists follow key order.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any

from ..runtime import (
    ChaincodeStub,
    Contract,
    TransactionContext,
    TransactionError,
    canonical_json,
    load_json,
    transaction,
)
from .access_log import REASON_RULE, append_log
from .common import (
    DOMAIN_RULE,
    ID_RULE,
    INDEX_VALUE,
    SHA256_RULE,
    TIME_RULE,
    Rule,
    check_argument,
    check_fields,
    check_page,
    invalid_field,
    is_count,
    iso_millis,
    one_of,
    parse_document,
    read_range,
    require_domain,
    text,
)

RESOURCE_TYPES = frozenset({
    "Patient", "Encounter", "Observation", "DiagnosticReport", "ImagingStudy", "Condition",
    "MedicationRequest", "Procedure", "AllergyIntolerance", "Immunization", "DocumentReference",
})
RECORD_KEY = "emr"
PATIENT_INDEX = "emr~patient"
RECORD_PUT_EVENT = "RecordPut"
RECORD_ERASED_EVENT = "RecordErased"
EVENT_FIELDS = ("record_id", "patient", "domain", "resource_type", "version")
MAX_GRANTS = 100
MAX_LOCATION_LENGTH = 1024

_GRANTEE = re.compile(r"[A-Za-z0-9._:@-]{1,128}")
_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:[!-~]+")  # a scheme, then printable ASCII


@dataclass(frozen=True)
class Grant:
    grantee: str
    expires: str  # ISO-8601 with a time zone


@dataclass(frozen=True)
class EmrRecord:
    record_id: str
    patient: str  # a pseudonym, never a name
    domain: str
    resource_type: str
    ciphertext_sha256: str
    plaintext_sha256: str
    size: int
    location: str
    grants: list[Grant]
    owner_msp: str  # set by the contract: the caller's MSP
    created: str  # set by the contract: the transaction's timestamp, ISO-8601 UTC with milliseconds
    updated: str
    version: int
    erased: bool = False  # set by EraseRecord: a tombstone, its location cleared
    erased_at: str | None = None


@dataclass(frozen=True)
class RecordPage:
    records: list[EmrRecord]
    bookmark: str  # starts the next page; "" when there is none


def _is_location(value: Any) -> bool:
    return isinstance(value, str) and len(value) <= MAX_LOCATION_LENGTH and _URI.fullmatch(value) is not None


ENTRY_RULES: dict[str, Rule] = {
    "record_id": ID_RULE,
    "patient": (ID_RULE[0], "must be a pseudonym of 1-128 characters of A-Z a-z 0-9 . _ : -"),
    "domain": DOMAIN_RULE,
    "resource_type": (one_of(RESOURCE_TYPES), f"must be one of {', '.join(sorted(RESOURCE_TYPES))}"),
    "ciphertext_sha256": SHA256_RULE,
    "plaintext_sha256": SHA256_RULE,
    "size": (is_count, "must be an integer >= 0"),
    "location": (_is_location, f"must be an absolute URI of at most {MAX_LOCATION_LENGTH} printable ASCII characters"),
}
_GRANT_RULES: dict[str, Rule] = {
    "grantee": (text(_GRANTEE), "must be 1-128 characters of A-Z a-z 0-9 . _ : @ -"),
    "expires": TIME_RULE,
}


class EmrIndexContract(Contract):
    """Index entries of EMRs: put once, read, list by patient, erase to a tombstone."""

    name = "emr_index"

    @transaction
    def PutRecord(self, ctx: TransactionContext, record_json: str) -> EmrRecord:
        """Index a new record of the caller's domain, owned by the caller's MSP; returns the entry as stored.

        Roles: any identity of the domain (require_domain); none is needed beyond it."""
        entry = _parse_entry(record_json)
        require_domain(ctx.client_identity, entry["domain"], "index its records")
        stub = ctx.stub
        key = stub.create_composite_key(RECORD_KEY, [entry["record_id"]])
        if stub.get_state(key) is not None:
            raise TransactionError(f"record {entry['record_id']} already exists")
        now = iso_millis(stub.get_tx_timestamp())
        record = EmrRecord(**entry, owner_msp=ctx.client_identity.msp_id, created=now, updated=now, version=1)
        stub.put_state(key, canonical_json(record))
        stub.put_state(stub.create_composite_key(PATIENT_INDEX, [record.patient, record.record_id]), INDEX_VALUE)
        append_log(ctx, "write", "success", record.record_id)
        stub.set_event(RECORD_PUT_EVENT, canonical_json({name: getattr(record, name) for name in EVENT_FIELDS}))
        return record

    @transaction
    def EraseRecord(self, ctx: TransactionContext, record_id: str, reason: str) -> EmrRecord:
        """Erase a record of the caller's MSP: the entry becomes a tombstone without location; returns it.

        The reason goes to the access log: never personal data.
        """
        _check_argument("record_id", record_id)
        check_argument("reason", reason, REASON_RULE)
        stub = ctx.stub
        record = load_record(stub, record_id)
        if record.owner_msp != ctx.client_identity.msp_id:
            raise TransactionError(f"only the owner {record.owner_msp} may erase record {record_id}")
        if record.erased:
            raise TransactionError(f"record {record_id} is already erased")
        now = iso_millis(stub.get_tx_timestamp())
        tombstone = replace(record, location="", erased=True, erased_at=now, updated=now, version=record.version + 1)
        stub.put_state(stub.create_composite_key(RECORD_KEY, [record_id]), canonical_json(tombstone))
        entry = append_log(ctx, "erase", "success", record_id, reason)
        event = {name: getattr(tombstone, name) for name in (*EVENT_FIELDS, "erased_at")}
        stub.set_event(RECORD_ERASED_EVENT, canonical_json({**event, "log_id": entry.log_id}))
        return tombstone

    @transaction(evaluate=True)
    def GetRecord(self, ctx: TransactionContext, record_id: str) -> EmrRecord:
        """The entry of a record (an erased record's tombstone)."""
        _check_argument("record_id", record_id)
        return load_record(ctx.stub, record_id)

    @transaction(evaluate=True)
    def ListRecordsByPatient(
        self, ctx: TransactionContext, patient: str, page_size: int = 0, bookmark: str = ""
    ) -> RecordPage:
        """A patient's entries in record id order: all of them, or a page of `page_size` from `bookmark`."""
        _check_argument("patient", patient)
        check_page(page_size, bookmark)
        stub = ctx.stub
        entries, next_bookmark = read_range(stub, PATIENT_INDEX, [patient], page_size, bookmark)
        record_ids = [stub.split_composite_key(entry.key)[1][1] for entry in entries]
        return RecordPage([load_record(stub, record_id) for record_id in record_ids], next_bookmark)


def find_record(stub: ChaincodeStub, record_id: str) -> EmrRecord | None:
    """The entry of a record on this channel, None when there is none."""
    data = stub.get_state(stub.create_composite_key(RECORD_KEY, [record_id]))
    return None if data is None else load_json(EmrRecord, data, "record")


def load_record(stub: ChaincodeStub, record_id: str) -> EmrRecord:
    """The entry of a record; TransactionError when there is none."""
    record = find_record(stub, record_id)
    if record is None:
        raise TransactionError(f"record {record_id} not found")
    return record


def _parse_entry(record_json: str) -> dict[str, Any]:
    document = parse_document(record_json, "record")
    check_fields(document, ENTRY_RULES, "record", optional={"grants"})
    entry = {name: document[name] for name in ENTRY_RULES}
    entry["grants"] = _parse_grants(document.get("grants", []))
    return entry


def _parse_grants(grants: Any) -> list[Grant]:
    if not isinstance(grants, list) or len(grants) > MAX_GRANTS:
        invalid_field("record", "grants", f"must be a list of at most {MAX_GRANTS} grants")
    for index, grant in enumerate(grants):
        if not isinstance(grant, dict):
            invalid_field("record", f"grants[{index}]", "must be an object with grantee and expires")
        check_fields(grant, _GRANT_RULES, "record", prefix=f"grants[{index}].")
    return [Grant(grantee=grant["grantee"], expires=grant["expires"]) for grant in grants]


def _check_argument(name: str, value: str) -> None:
    """An argument that is also an entry field follows the field's rule."""
    check_argument(name, value, ENTRY_RULES[name])
