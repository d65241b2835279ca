"""Access logs read in pages, a domain's local log anchored on the public channel, and tampering found by verify."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta

import pytest

from medfabric.sharing import audit
from medfabric.sharing import contracts
from medfabric.crypto import canonical_json
from medfabric.sharing.emr import get_record, prepare_payload, put_record
from medfabric.sharing.synthetic import generate_patient_bundle
from medfabric_chaincode.contracts.access_log import merkle_root as contract_merkle_root

RESOURCES = [json.dumps(resource).encode() for resource in generate_patient_bundle(3, "P-002", n_observations=3)]


def activity(consortium, tmp_path, first: int, last: int) -> None:
    """RESOURCES[first:last] put and read by hospital A's doctor: four entries each on its local log."""
    session = consortium.session("hospital-a")
    for data in RESOURCES[first:last]:
        record_id = put_record(session, prepare_payload(data, "P-002"), publish=False)["record_id"]
        get_record(session, record_id, tmp_path / f"{record_id}.json")


def anchor_now(consortium, session) -> dict | None:
    """Anchor once everything logged so far is older than audit.SETTLE."""
    consortium.fabric.clock.advance(audit.SETTLE.total_seconds() + 1)
    return audit.anchor(session, now=consortium.fabric.clock.now())


def test_log_reads_every_page_in_time_order(consortium, tmp_path, monkeypatch):
    monkeypatch.setattr(contracts, "PAGE_SIZE", 2)
    activity(consortium, tmp_path, 0, 3)

    entries = audit.log(consortium.session("hospital-a"), "hospital-a-local")

    assert entries == consortium.log("hospital-a-local") and len(entries) == 12
    first = entries[0]["record_id"]
    assert [e["action"] for e in audit.log(consortium.session("hospital-a"), "hospital-a-local", first)] == [
        "write", "write", "read", "deliver"]
    since = entries[4]["timestamp"]
    assert audit.log(consortium.session("hospital-a"), "hospital-a-local", since=since) == entries[4:]


def test_anchor_covers_the_settled_log_then_continues_where_it_ended(consortium, tmp_path):
    session = consortium.session("hospital-a")
    activity(consortium, tmp_path, 0, 2)

    first = anchor_now(consortium, session)
    activity(consortium, tmp_path, 2, 3)
    second = anchor_now(consortium, session)

    assert first["since"] == audit.FIRST_SINCE and first["count"] == 8
    assert second["since"] == first["until"] and second["count"] == 4
    assert audit.anchor(session, now=consortium.fabric.clock.now() - timedelta(seconds=1)) is None
    result = audit.verify(session)
    assert (result.anchors, result.entries, result.mismatch) == (2, 12, None)


def test_verify_finds_an_entry_altered_after_anchoring_and_names_its_period(consortium, tmp_path):
    session = consortium.session("hospital-a")
    activity(consortium, tmp_path, 0, 1)
    anchor_now(consortium, session)
    activity(consortium, tmp_path, 1, 2)
    second = anchor_now(consortium, session)
    state = consortium.fabric.world_state("hospital-a-local")
    key = max(key for key in state if key[1].startswith("\x00log\x00") and key[1] < "\x00log\x00" + second["until"])
    state[key] = canonical_json({**json.loads(state[key]), "reason": "nothing to see here"})

    result = audit.verify(session)

    assert result.anchors == 2
    assert (result.mismatch["since"], result.mismatch["until"]) == (second["since"], second["until"])
    assert result.mismatch["found"]["count"] == result.mismatch["anchored"]["count"]
    assert result.mismatch["found"]["merkle_root"] != result.mismatch["anchored"]["merkle_root"]


def test_verify_finds_an_entry_removed_after_anchoring(consortium, tmp_path):
    session = consortium.session("hospital-a")
    activity(consortium, tmp_path, 0, 1)
    anchored = anchor_now(consortium, session)
    state = consortium.fabric.world_state("hospital-a-local")
    del state[min(key for key in state if key[1].startswith("\x00log\x00"))]

    mismatch = audit.verify(session).mismatch

    assert mismatch["anchored"]["count"] == anchored["count"] == mismatch["found"]["count"] + 1


def test_an_intact_log_verifies_for_any_number_of_entries(consortium):
    session = consortium.session("hospital-a")
    log = session.access_log("hospital-a-local")
    for count in range(1, 6):
        log.log({"record_id": f"rec-{count}", "action": "request", "outcome": "success"})
        anchor_now(consortium, session)

    result = audit.verify(session)

    assert (result.anchors, result.entries, result.mismatch) == (5, 5, None)


@pytest.mark.parametrize("count", range(8))
def test_merkle_root_is_the_contracts(count):
    entries = [{"n": n, "action": "read"} for n in range(count)]
    leaves = [hashlib.sha256(canonical_json(entry)).digest() for entry in entries]

    assert audit.merkle_root(entries) == contract_merkle_root(leaves)


def test_verify_reports_progress_per_anchor(consortium, tmp_path):
    session = consortium.session("hospital-a")
    activity(consortium, tmp_path, 0, 1)
    anchor_now(consortium, session)
    anchor_now(consortium, session)
    seen = []

    audit.verify(session, lambda done, total: seen.append((done, total)))

    assert seen == [(1, 2), (2, 2)]
