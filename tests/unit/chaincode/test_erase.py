"""Erasure in emr_index: the owner turns an entry into a tombstone, logged once; no access to it afterwards."""

from __future__ import annotations

import json

import pytest

from medfabric_chaincode.contracts import ALL_CONTRACTS

from .actors import A_DOCTOR, B_DOCTOR, at, ok, put_record, stamp
from .test_emr_index import ENTRY, record_key

REASON = "patient request (GDPR art. 17)"


@pytest.fixture
def chain(connect):
    chain = connect(*ALL_CONTRACTS)
    put_record(chain)  # rec-001: hospital-a's (HospitalAMSP), patient p1
    return chain


def erase(chain, record_id: str = "rec-001", reason: str = REASON, creator: bytes = A_DOCTOR, **options):
    return chain.invoke("EraseRecord", record_id, reason, creator=creator, **{**at(60), **options})


def test_owner_erases_to_a_tombstone(chain):
    stored = ok(chain.invoke("GetRecord", "rec-001"))

    result = erase(chain)

    tombstone = {**stored, "location": "", "erased": True, "erased_at": stamp(60), "updated": stamp(60), "version": 2}
    assert ok(result) == tombstone
    assert {key for (_, key) in result.writes} == {
        record_key("rec-001"),
        f"\x00log\x00{stamp(60)}\x00{result.tx_id}\x000000\x00",
        f"\x00log~record\x00rec-001\x00{stamp(60)}\x00{result.tx_id}\x000000\x00",
    }
    assert json.loads(result.writes[("", record_key("rec-001"))]) == tombstone
    # what the audit trail keeps
    assert {name: tombstone[name] for name in ENTRY if name != "location"} == {
        name: value for name, value in ENTRY.items() if name != "location"
    }
    assert (result.event.event_name, json.loads(result.event.payload)) == ("RecordErased", {
        "record_id": "rec-001", "patient": "p1", "domain": "hospital-a", "resource_type": "Observation", "version": 2,
        "erased_at": stamp(60), "log_id": result.tx_id,
    })


def test_erasure_is_logged_with_its_reason(chain):
    result = erase(chain)

    entry = json.loads(chain.state[("", f"\x00log\x00{stamp(60)}\x00{result.tx_id}\x000000\x00")])
    assert (entry["action"], entry["outcome"], entry["reason"], entry["record_id"]) == ("erase", "success", REASON,
                                                                                         "rec-001")


def test_tombstone_stays_readable_and_listed(chain):
    tombstone = ok(erase(chain))

    assert ok(chain.invoke("GetRecord", "rec-001")) == tombstone
    assert ok(chain.invoke("ListRecordsByPatient", "p1"))["records"] == [tombstone]


def test_second_erase_is_refused(chain):
    ok(erase(chain))

    again = erase(chain, **at(61))

    assert (again.status, again.message, again.writes) == (500, "record rec-001 is already erased", {})


@pytest.mark.parametrize(
    "record_id, reason, creator, message",
    [
        ("rec-001", REASON, B_DOCTOR, "only the owner HospitalAMSP may erase record rec-001"),
        ("rec-404", REASON, A_DOCTOR, "record rec-404 not found"),
        ("rec/1", REASON, A_DOCTOR, "invalid argument: 'record_id' must be 1-128 characters of A-Z a-z 0-9 . _ : -"),
        ("rec-001", "", A_DOCTOR, "invalid argument: 'reason' must be 1-256 characters without control characters, "
                                  "not all spaces"),
    ],
)
def test_erase_is_refused(chain, record_id, reason, creator, message):
    result = erase(chain, record_id, reason, creator)

    assert (result.status, result.message, result.writes) == (500, message, {})


def test_erased_record_is_denied_to_everyone(chain):
    grant = {"record_id": "rec-001", "domain": "hospital-a", "grantee_msp": "HospitalBMSP", "purpose": "treatment",
             "expires": stamp(3600)}
    ok(chain.invoke("consent:GrantAccess", json.dumps(grant), creator=A_DOCTOR))
    ok(erase(chain))

    for creator in (A_DOCTOR, B_DOCTOR):
        result = chain.invoke("consent:CheckAccess", "rec-001", creator=creator, **at(61))
        assert ok(result) == {"decision": "deny", "reason": "record erased", "grant_id": None, "log_id": result.tx_id}
    assert ok(chain.invoke("consent:EmergencyAccess", "rec-001", "trauma", creator=B_DOCTOR))["reason"] == (
        "record erased"
    )
    refused = chain.invoke("consent:GrantAccess", json.dumps(grant), creator=A_DOCTOR, **at(62))
    assert (refused.status, refused.message) == (500, "record rec-001 is erased")


def test_erased_record_id_cannot_be_reused(chain):
    ok(erase(chain))

    result = chain.invoke("PutRecord", json.dumps(ENTRY), creator=A_DOCTOR)

    assert (result.status, result.message) == (500, "record rec-001 already exists")


def test_entries_stored_before_erasure_existed_read_as_not_erased(chain):
    stored = ok(chain.invoke("GetRecord", "rec-001"))
    old = {name: value for name, value in stored.items() if name not in ("erased", "erased_at")}
    chain.state[("", record_key("rec-001"))] = json.dumps(old).encode()

    assert ok(chain.invoke("GetRecord", "rec-001")) == stored
    assert ok(erase(chain))["erased"] is True


def test_same_input_and_timestamp_give_identical_writes(connect):
    results = []
    for _ in range(2):
        chain = connect(*ALL_CONTRACTS)
        put_record(chain)
        results.append(erase(chain, nonce=b"e" * 24))

    first, second = results
    assert first.status == second.status == 200
    assert (first.writes, first.payload, first.event) == (second.writes, second.payload, second.event)
