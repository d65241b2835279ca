"""emr_index: the on-chain index of electronic medical records (SYSTEM.md section 2).

An entry tells where a record's ciphertext lives and how to verify it; the
record itself never goes on a ledger. State:

    ("emr", record_id)                   -> the entry, canonical JSON
    ("emr~patient", patient, record_id)  -> b"\\x00", to list a patient's entries in key order

Deterministic by construction: times come from the proposal, JSON is
canonical, and lists follow key order.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NoReturn

from ..runtime import (
    ChaincodeStub,
    Contract,
    TransactionContext,
    TransactionError,
    canonical_json,
    load_json,
    parse_json,
    transaction,
)

RESOURCE_TYPES = frozenset({
    "Patient", "Encounter", "Observation", "DiagnosticReport", "ImagingStudy", "Condition",
    "MedicationRequest", "Procedure", "AllergyIntolerance", "Immunization", "DocumentReference",
})
RECORD_KEY = "emr"
PATIENT_INDEX = "emr~patient"
INDEX_VALUE = b"\x00"  # the peer treats an empty value as a delete
RECORD_PUT_EVENT = "RecordPut"
EVENT_FIELDS = ("record_id", "patient", "domain", "resource_type", "version")
MAX_GRANTS = 100
MAX_LOCATION_LENGTH = 1024
MAX_PAGE_SIZE = 1000

_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_DOMAIN = re.compile(r"[a-z0-9-]{1,63}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
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


@dataclass(frozen=True)
class RecordPage:
    records: list[EmrRecord]
    bookmark: str  # starts the next page; "" when there is none


def _text(pattern: re.Pattern) -> Callable[[Any], bool]:
    return lambda value: isinstance(value, str) and pattern.fullmatch(value) is not None


def _is_size(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _is_location(value: Any) -> bool:
    return isinstance(value, str) and len(value) <= MAX_LOCATION_LENGTH and _URI.fullmatch(value) is not None


def _is_zoned_time(value: Any) -> bool:
    try:
        return isinstance(value, str) and datetime.fromisoformat(value).tzinfo is not None
    except ValueError:
        return False


_ENTRY_RULES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "record_id": (_text(_ID), "must be 1-128 characters of A-Z a-z 0-9 . _ : -"),
    "patient": (_text(_ID), "must be a pseudonym of 1-128 characters of A-Z a-z 0-9 . _ : -"),
    "domain": (_text(_DOMAIN), "must be 1-63 characters of a-z 0-9 -"),
    "resource_type": (RESOURCE_TYPES.__contains__, f"must be one of {', '.join(sorted(RESOURCE_TYPES))}"),
    "ciphertext_sha256": (_text(_SHA256), "must be 64 lowercase hex characters"),
    "plaintext_sha256": (_text(_SHA256), "must be 64 lowercase hex characters"),
    "size": (_is_size, "must be an integer >= 0"),
    "location": (_is_location, f"must be an absolute URI of at most {MAX_LOCATION_LENGTH} printable ASCII characters"),
}
_GRANT_RULES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "grantee": (_text(_GRANTEE), "must be 1-128 characters of A-Z a-z 0-9 . _ : @ -"),
    "expires": (_is_zoned_time, "must be an ISO-8601 date-time with a time zone"),
}


class EmrIndexContract(Contract):
    """Index entries of EMRs: put once, read, list by patient."""

    name = "emr_index"

    @transaction
    def PutRecord(self, ctx: TransactionContext, record_json: str) -> EmrRecord:
        """Index a new record owned by the caller's MSP; returns the entry as stored."""
        entry = _parse_entry(record_json)
        stub = ctx.stub
        key = stub.create_composite_key(RECORD_KEY, [entry["record_id"]])
        if stub.get_state(key) is not None:
            raise TransactionError(f"record {entry['record_id']} already exists")
        now = _iso_millis(stub.get_tx_timestamp())
        record = EmrRecord(**entry, owner_msp=ctx.client_identity.msp_id, created=now, updated=now, version=1)
        stub.put_state(key, canonical_json(record))
        stub.put_state(stub.create_composite_key(PATIENT_INDEX, [record.patient, record.record_id]), INDEX_VALUE)
        stub.set_event(RECORD_PUT_EVENT, canonical_json({name: getattr(record, name) for name in EVENT_FIELDS}))
        return record

    @transaction(evaluate=True)
    def GetRecord(self, ctx: TransactionContext, record_id: str) -> EmrRecord:
        """The entry of a record."""
        _check_argument("record_id", record_id)
        return _load_record(ctx.stub, record_id)

    @transaction(evaluate=True)
    def ListRecordsByPatient(
        self, ctx: TransactionContext, patient: str, page_size: int = 0, bookmark: str = ""
    ) -> RecordPage:
        """A patient's entries in record id order: all of them, or a page of `page_size` from `bookmark`."""
        _check_argument("patient", patient)
        if not 0 <= page_size <= MAX_PAGE_SIZE:
            raise TransactionError(f"invalid argument: 'page_size' must be between 0 (no paging) and {MAX_PAGE_SIZE}")
        if bookmark and not page_size:
            raise TransactionError("invalid argument: 'bookmark' needs a page_size")
        stub = ctx.stub
        if page_size:
            entries, page = stub.get_state_by_partial_composite_key_with_pagination(
                PATIENT_INDEX, [patient], page_size, bookmark
            )
            next_bookmark = page.bookmark
        else:
            entries, next_bookmark = stub.get_state_by_partial_composite_key(PATIENT_INDEX, [patient]), ""
        with entries:
            record_ids = [stub.split_composite_key(entry.key)[1][1] for entry in entries]
        return RecordPage([_load_record(stub, record_id) for record_id in record_ids], next_bookmark)


def _parse_entry(record_json: str) -> dict[str, Any]:
    try:
        document = parse_json(record_json)
    except ValueError as exc:
        raise TransactionError(f"invalid record: not valid JSON: {exc}") from None
    if not isinstance(document, dict):
        raise TransactionError("invalid record: expected a JSON object")
    _check_fields(document, _ENTRY_RULES, optional={"grants"}, prefix="")
    entry = {name: document[name] for name in _ENTRY_RULES}
    entry["grants"] = _parse_grants(document.get("grants", []))
    return entry


def _parse_grants(grants: Any) -> list[Grant]:
    if not isinstance(grants, list) or len(grants) > MAX_GRANTS:
        _invalid_field("grants", f"must be a list of at most {MAX_GRANTS} grants")
    for index, grant in enumerate(grants):
        if not isinstance(grant, dict):
            _invalid_field(f"grants[{index}]", "must be an object with grantee and expires")
        _check_fields(grant, _GRANT_RULES, optional=(), prefix=f"grants[{index}].")
    return [Grant(grantee=grant["grantee"], expires=grant["expires"]) for grant in grants]


def _check_fields(
    document: dict[str, Any],
    rules: dict[str, tuple[Callable[[Any], bool], str]],
    optional: Collection[str],
    prefix: str,
) -> None:
    unknown = sorted(set(document) - set(rules) - set(optional))
    if unknown:
        names = ", ".join(f"'{prefix}{name}'" for name in unknown)
        raise TransactionError(f"invalid record: unknown field{'s' if len(unknown) > 1 else ''} {names}")
    for name, (is_valid, rule) in rules.items():
        if name not in document:
            _invalid_field(prefix + name, "is required")
        if not is_valid(document[name]):
            _invalid_field(prefix + name, rule)


def _invalid_field(name: str, rule: str) -> NoReturn:
    raise TransactionError(f"invalid record: field '{name}' {rule}")


def _check_argument(name: str, value: str) -> None:
    """An argument that is also an entry field follows the field's rule."""
    is_valid, rule = _ENTRY_RULES[name]
    if not is_valid(value):
        raise TransactionError(f"invalid argument: '{name}' {rule}")


def _load_record(stub: ChaincodeStub, record_id: str) -> EmrRecord:
    data = stub.get_state(stub.create_composite_key(RECORD_KEY, [record_id]))
    if data is None:
        raise TransactionError(f"record {record_id} not found")
    return load_json(EmrRecord, data, "record")


def _iso_millis(moment: datetime) -> str:
    moment = moment.astimezone(UTC)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{moment.microsecond // 1000:03d}Z"
