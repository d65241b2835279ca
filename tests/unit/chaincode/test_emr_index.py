"""The emr_index contract: put, get, list by patient, validation naming the field, determinism."""

from __future__ import annotations

import json

import pytest

from medfabric_chaincode.contracts import ALL_CONTRACTS
from medfabric_chaincode.contracts.emr_index import EmrIndexContract

from . import pki
from .conftest import MSP_ID

STORED_AT = "2025-03-04T05:06:07.891Z"  # fakepeer.DEFAULT_TIMESTAMP as the contract writes it
ENTRY = {
    "record_id": "rec-001",
    "patient": "p1",
    "domain": "hospital-a",
    "resource_type": "Observation",
    "ciphertext_sha256": "a" * 64,
    "plaintext_sha256": "0123456789abcdef" * 4,
    "size": 1234,
    "location": "medfabric://hospital-a/store/rec-001",
}


def entry(**changes) -> dict:
    return {**ENTRY, **changes}


def record_key(record_id: str) -> str:
    return f"\x00emr\x00{record_id}\x00"


def index_key(patient: str, record_id: str) -> str:
    return f"\x00emr~patient\x00{patient}\x00{record_id}\x00"


@pytest.fixture
def index(connect):
    return connect(*ALL_CONTRACTS)


def put(index, document: dict, **options):
    return index.invoke("PutRecord", json.dumps(document), **options)


def test_emr_index_is_the_default_contract():
    assert ALL_CONTRACTS[0] is EmrIndexContract
    assert EmrIndexContract.name == "emr_index"


def user_of(msp_id: str, attributes: dict) -> bytes:
    ca = pki.issue(pki.name((pki.NameOID.COMMON_NAME, f"ca.{msp_id}"),), ca=True)
    return pki.serialized_identity(msp_id, pki.issue(pki.USER_NAME, ca, attributes=attributes))


@pytest.mark.parametrize(
    "msp_id, attributes, why",
    [("HospitalBMSP", {"medfabric.domain": "hospital-b"}, "(HospitalAMSP) may index its records: the caller is of "
                                                          "HospitalBMSP"),
     # B's CA can write any domain into B's certificates: the MSP decides, not the attribute
     ("HospitalBMSP", {"medfabric.domain": "hospital-a"}, "(HospitalAMSP) may index its records: the caller is of "
                                                          "HospitalBMSP"),
     (MSP_ID, {"hf.EnrollmentID": "doctor1"}, "may index its records: the caller's certificate has no "
                                              "medfabric.domain")],
)
def test_only_an_identity_of_the_entrys_domain_indexes_it(index, msp_id, attributes, why):
    result = put(index, ENTRY, creator=user_of(msp_id, attributes))

    assert (result.status, result.writes) == (500, {})
    assert result.message == f"only an identity of domain hospital-a {why}"


def test_put_record_writes_record_index_and_event(index):
    result = put(index, entry(grants=[{"grantee": "HospitalBMSP:doctor2", "expires": "2026-01-01T00:00:00Z"}]))

    stored = {
        **ENTRY,
        "grants": [{"grantee": "HospitalBMSP:doctor2", "expires": "2026-01-01T00:00:00Z"}],
        "owner_msp": MSP_ID,
        "created": STORED_AT,
        "updated": STORED_AT,
        "version": 1,
        "erased": False,
        "erased_at": None,
    }
    canonical = json.dumps(stored, sort_keys=True, separators=(",", ":")).encode()
    assert (result.status, result.payload) == (200, canonical)
    log_suffix = f"{STORED_AT}\x00{result.tx_id}\x000000\x00"  # the "write" entry: see test_access_log.py
    assert set(result.writes) == {("", record_key("rec-001")), ("", index_key("p1", "rec-001")),
                                  ("", f"\x00log\x00{log_suffix}"), ("", f"\x00log~record\x00rec-001\x00{log_suffix}")}
    assert result.writes[("", record_key("rec-001"))] == canonical
    assert result.writes[("", index_key("p1", "rec-001"))] == b"\x00"
    assert result.event.event_name == "RecordPut"
    assert result.event.payload == (
        b'{"domain":"hospital-a","patient":"p1","record_id":"rec-001","resource_type":"Observation","version":1}'
    )


def test_grants_default_to_none(index):
    assert put(index, ENTRY).json()["grants"] == []


def test_owner_is_the_callers_msp_and_another_msp_cannot_present_the_certificate(index, identities):
    other = pki.serialized_identity("HospitalBMSP", identities.doctor)  # hospital-a's attributes, B's MSP id

    refused = put(index, ENTRY, creator=other)
    assert (refused.status, refused.writes) == (500, {})
    assert put(index, ENTRY).json()["owner_msp"] == MSP_ID


def test_duplicate_record_is_refused(index):
    put(index, ENTRY)

    again = put(index, entry(size=1))

    assert (again.status, again.message, again.writes) == (500, "record rec-001 already exists", {})


def test_get_record_returns_it_as_stored(index):
    stored = put(index, ENTRY)

    got = index.invoke("GetRecord", "rec-001")

    assert (got.status, got.payload) == (200, stored.payload)


def test_get_unknown_record(index):
    result = index.invoke("emr_index:GetRecord", "rec-404")

    assert (result.status, result.message) == (500, "record rec-404 not found")


def test_get_record_checks_the_id(index):
    result = index.invoke("GetRecord", "rec\x00")

    assert result.status == 500
    assert result.message == "invalid argument: 'record_id' must be 1-128 characters of A-Z a-z 0-9 . _ : -"


def test_list_by_patient_in_record_order_without_prefix_matches(index):
    for record_id, patient in [("rec-b", "p1"), ("rec-c", "p10"), ("rec-a", "p1"), ("rec-d", "p2")]:
        put(index, entry(record_id=record_id, patient=patient))

    listed = index.invoke("ListRecordsByPatient", "p1").json()

    assert [record["record_id"] for record in listed["records"]] == ["rec-a", "rec-b"]
    assert listed["bookmark"] == ""
    assert listed["records"][0] == index.invoke("GetRecord", "rec-a").json()


def test_list_by_unknown_patient_is_empty(index):
    assert index.invoke("ListRecordsByPatient", "nobody").json() == {"records": [], "bookmark": ""}


def test_list_by_patient_in_pages(index):
    for record_id in ("rec-3", "rec-1", "rec-2"):
        put(index, entry(record_id=record_id))

    first = index.invoke("ListRecordsByPatient", "p1", "2", "").json()
    second = index.invoke("ListRecordsByPatient", "p1", "2", first["bookmark"]).json()

    assert [record["record_id"] for record in first["records"]] == ["rec-1", "rec-2"]
    assert first["bookmark"] == index_key("p1", "rec-3")
    assert [record["record_id"] for record in second["records"]] == ["rec-3"]
    assert second["bookmark"] == ""


@pytest.mark.parametrize(
    "args, message",
    [
        (("p1", "1001", ""), "invalid argument: 'page_size' must be between 0 (no paging) and 1000"),
        (("p1", "-1", ""), "invalid argument: 'page_size' must be between 0 (no paging) and 1000"),
        (("p1", "0", "\x00emr~patient\x00p1\x00"), "invalid argument: 'bookmark' needs a page_size"),
        (("p1", "ten", ""), "invalid value for 'page_size': not valid JSON: Expecting value: line 1 column 1 (char 0)"),
        (("p1", "2", index_key("p2", "rec-1")), "invalid argument: 'bookmark' does not belong to this listing"),
        (("p 1",), "invalid argument: 'patient' must be a pseudonym of 1-128 characters of A-Z a-z 0-9 . _ : -"),
    ],
)
def test_list_arguments_are_checked(index, args, message):
    result = index.invoke("ListRecordsByPatient", *args)

    assert (result.status, result.message) == (500, message)


ID_RULE = "must be 1-128 characters of A-Z a-z 0-9 . _ : -"
SHA_RULE = "must be 64 lowercase hex characters"
URI_RULE = "must be an absolute URI of at most 1024 printable ASCII characters"
TIME_RULE = "must be an ISO-8601 date-time with a time zone"
GRANT = {"grantee": "HospitalBMSP", "expires": "2026-01-01T00:00:00+01:00"}


def without(name: str) -> dict:
    return {key: value for key, value in ENTRY.items() if key != name}


@pytest.mark.parametrize(
    "document, problem",
    [
        (entry(record_id=""), f"field 'record_id' {ID_RULE}"),
        (entry(record_id="r" * 129), f"field 'record_id' {ID_RULE}"),
        (entry(record_id="rec/1"), f"field 'record_id' {ID_RULE}"),
        (entry(record_id=7), f"field 'record_id' {ID_RULE}"),
        (entry(patient="John Doe"), "field 'patient' must be a pseudonym of 1-128 characters of A-Z a-z 0-9 . _ : -"),
        (entry(domain="Hospital-A"), "field 'domain' must be 1-63 characters of a-z 0-9 -"),
        (entry(domain="d" * 64), "field 'domain' must be 1-63 characters of a-z 0-9 -"),
        (entry(resource_type="Bundle"), "field 'resource_type' must be one of AllergyIntolerance, Condition, "
         "DiagnosticReport, DocumentReference, Encounter, ImagingStudy, Immunization, MedicationRequest, "
         "Observation, Patient, Procedure"),
        (entry(resource_type={"Observation": 1}), "field 'resource_type' must be one of AllergyIntolerance, "
         "Condition, DiagnosticReport, DocumentReference, Encounter, ImagingStudy, Immunization, MedicationRequest, "
         "Observation, Patient, Procedure"),
        (entry(ciphertext_sha256="not-a-hash"), f"field 'ciphertext_sha256' {SHA_RULE}"),
        (entry(ciphertext_sha256="A" * 64), f"field 'ciphertext_sha256' {SHA_RULE}"),
        (entry(plaintext_sha256="a" * 63), f"field 'plaintext_sha256' {SHA_RULE}"),
        (entry(size=-1), "field 'size' must be an integer >= 0"),
        (entry(size=True), "field 'size' must be an integer >= 0"),
        (entry(size=1.5), "field 'size' must be an integer >= 0"),
        (entry(size="12"), "field 'size' must be an integer >= 0"),
        (entry(location=""), f"field 'location' {URI_RULE}"),
        (entry(location="no-scheme"), f"field 'location' {URI_RULE}"),
        (entry(location="https://a b"), f"field 'location' {URI_RULE}"),
        (entry(location="https://" + "a" * 1017), f"field 'location' {URI_RULE}"),
        (entry(grants={}), "field 'grants' must be a list of at most 100 grants"),
        (entry(grants=[GRANT] * 101), "field 'grants' must be a list of at most 100 grants"),
        (entry(grants=["HospitalBMSP"]), "field 'grants[0]' must be an object with grantee and expires"),
        (entry(grants=[GRANT, {"grantee": "x"}]), "field 'grants[1].expires' is required"),
        (entry(grants=[{**GRANT, "grantee": "a b"}]), "field 'grants[0].grantee' must be 1-128 characters of "
         "A-Z a-z 0-9 . _ : @ -"),
        (entry(grants=[{**GRANT, "expires": "tomorrow"}]), f"field 'grants[0].expires' {TIME_RULE}"),
        (entry(grants=[{**GRANT, "expires": "2026-01-01T00:00:00"}]), f"field 'grants[0].expires' {TIME_RULE}"),
        (entry(grants=[{**GRANT, "role": "reader"}]), "unknown field 'grants[0].role'"),
        (without("size"), "field 'size' is required"),
        (entry(owner_msp="HospitalBMSP"), "unknown field 'owner_msp'"),
        (entry(version=2, created=STORED_AT, updated=STORED_AT), "unknown fields 'created', 'updated', 'version'"),
        (entry(colour="red"), "unknown field 'colour'"),
        ([ENTRY], "expected a JSON object"),
    ],
)
def test_invalid_entries_are_refused_naming_the_field(index, document, problem):
    result = put(index, document)

    assert (result.status, result.message, result.writes) == (500, f"invalid record: {problem}", {})


@pytest.mark.parametrize(
    "text, problem",
    [
        ("{", "not valid JSON: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"),
        (json.dumps(ENTRY)[:-1] + ',"size":1}', "not valid JSON: key 'size' appears twice"),
        (json.dumps(entry(size=0)).replace('"size": 0', '"size": NaN'), "not valid JSON: NaN is not a JSON number"),
    ],
)
def test_malformed_json_is_refused(index, text, problem):
    result = index.invoke("PutRecord", text)

    assert (result.status, result.message) == (500, f"invalid record: {problem}")


def test_same_input_and_timestamp_give_identical_bytes(connect):
    grants = [{"grantee": "HospitalBMSP", "expires": "2026-01-01T00:00:00Z"}, {"expires": "2027-01-01T00:00:00Z",
              "grantee": "HospitalCMSP"}]
    forward = json.dumps(entry(grants=grants))
    backward = json.dumps(dict(reversed(list(entry(grants=grants).items()))), indent=2)

    first = connect(*ALL_CONTRACTS).invoke("PutRecord", forward, nonce=b"1" * 24)
    second = connect(*ALL_CONTRACTS).invoke("PutRecord", backward, nonce=b"2" * 24)

    assert first.tx_id != second.tx_id
    assert first.status == second.status == 200
    assert without_tx_id(first) == without_tx_id(second)  # the access-log entry carries the tx id
    assert first.payload == second.payload
    assert (first.event.event_name, first.event.payload) == (second.event.event_name, second.event.payload)


def without_tx_id(result) -> dict:
    """The writes of a transaction with its id replaced by "TX"."""
    return {(collection, key.replace(result.tx_id, "TX")): value.replace(result.tx_id.encode(), b"TX")
            for (collection, key), value in result.writes.items()}
