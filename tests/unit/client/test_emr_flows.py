"""EMR sharing end to end without Fabric: the real contracts on a fake Fabric, the real data services over HTTP.

Hospital A's doctor owns the records; B's doctor reads across domains; C's doctor breaks the glass.
"""

from __future__ import annotations

import json
from datetime import timedelta

import grpc
import pytest

from medfabric.crypto import canonical_json, seal
from medfabric.data_service.client import DataServiceClient, DataServiceError
from medfabric.data_service.delivery import DeliveryRejected, open_delivery
from medfabric.sharing.emr import (
    AccessDenied, RecordErased, RecordNotFound, emergency_read, erase, find_records, get_record, grant, index_entry,
    prepare_payload, put_record, record_id_for, request, revoke, store_sealed,
)
from medfabric.errors import MedfabricError
from medfabric.sharing.fhir import FhirValidationError
from medfabric.gateway import GatewayError
from medfabric.sharing.synthetic import generate_patient_bundle

PATIENT = "P-001"
BUNDLE = generate_patient_bundle(7, PATIENT, n_observations=1)
OBSERVATION = json.dumps(BUNDLE[2], indent=2).encode()  # not canonical: the record is the canonical form
PATIENT_RESOURCE = json.dumps(BUNDLE[0]).encode()


def put(consortium, publish: bool = True, data: bytes = OBSERVATION, **options) -> str:
    """A record of hospital A's doctor; its id."""
    payload = prepare_payload(data, PATIENT)
    return put_record(consortium.session("hospital-a"), payload, publish=publish, **options)["record_id"]


def grant_to_b(consortium, record_id: str, seconds: float = 3600, purpose: str = "treatment", **options) -> dict:
    until = consortium.fabric.clock.now() + timedelta(seconds=seconds)
    return grant(consortium.session("hospital-a"), record_id, "hospital-b", purpose, until, **options)


def entries_of(consortium, channel: str, record_id: str, action: str | None = None) -> list[dict]:
    return [entry for entry in consortium.log(channel)
            if entry["record_id"] == record_id and action in (None, entry["action"])]


# -- owner ---------------------------------------------------------------------------


def test_owner_puts_then_reads_the_canonical_bytes_back(consortium, tmp_path):
    record_id = put(consortium, publish=False)
    out = tmp_path / "read" / "obs.json"

    result = get_record(consortium.session("hospital-a"), record_id, out)

    assert out.read_bytes() == canonical_json(BUNDLE[2])
    assert result["decided_on"] == "hospital-a-local" and result["reason"] == "own domain"
    assert len(consortium.stored_files("hospital-a")) == 2  # the blob and its wrapped key
    assert consortium.index_keys("hospital-a-local") and not consortium.index_keys("public")
    actions = [(e["action"], e["outcome"]) for e in entries_of(consortium, "hospital-a-local", record_id)]
    assert actions == [("write", "success"), ("write", "success"), ("read", "success"), ("deliver", "success")]


def test_the_record_id_comes_from_domain_patient_and_content_so_a_second_put_is_refused(consortium):
    record_id = put(consortium)
    assert record_id == record_id_for("hospital-a", prepare_payload(OBSERVATION, PATIENT))

    with pytest.raises(MedfabricError, match=f"record {record_id} already exists on hospital-a-local"):
        put(consortium)
    assert len(consortium.stored_files("hospital-a")) == 2


def test_direct_identifiers_are_refused_unless_allowed():
    named = json.dumps({**BUNDLE[0], "name": [{"family": "Doe"}]}).encode()

    with pytest.raises(MedfabricError, match=r"direct identifiers \(Patient.name\)"):
        prepare_payload(named, PATIENT)
    assert prepare_payload(named, PATIENT, allow_identifiers=True).resource_type == "Patient"


def test_malformed_fhir_and_pseudonyms_are_refused_before_anything_is_written():
    with pytest.raises(FhirValidationError, match="Observation.status"):
        prepare_payload(json.dumps({**BUNDLE[2], "status": 5}).encode(), PATIENT)
    with pytest.raises(MedfabricError, match="patient pseudonym"):
        prepare_payload(OBSERVATION, "John Doe")


def test_find_lists_what_the_user_can_see_with_its_channels(consortium):
    observation = put(consortium)
    patient = put(consortium, publish=False, data=PATIENT_RESOURCE)

    found = {e["record_id"]: e["channels"] for e in find_records(consortium.session("hospital-a"), PATIENT)}
    assert found == {observation: ["hospital-a-local", "public"], patient: ["hospital-a-local"]}
    assert [e["record_id"] for e in find_records(consortium.session("hospital-a"), PATIENT, "Patient")] == [patient]
    assert [e["record_id"] for e in find_records(consortium.session("hospital-b"), PATIENT)] == [observation]


def test_unknown_record_is_not_found(consortium, tmp_path):
    with pytest.raises(RecordNotFound, match="record nope not found on hospital-b-local or public"):
        get_record(consortium.session("hospital-b"), "nope", tmp_path / "out.json")
    assert not (tmp_path / "out.json").exists()


def test_a_domain_cannot_use_another_domains_local_channel(consortium):
    session = consortium.session("hospital-b")

    with pytest.raises(GatewayError, match=r"access denied: channel \[hospital-a-local\]") as refused:
        session.index("hospital-a-local").find("anything")
    assert refused.value.grpc_code == grpc.StatusCode.PERMISSION_DENIED


# -- other domains ---------------------------------------------------------------------


def test_reader_without_grant_is_denied_the_denial_logged_and_nothing_leaves_the_store(consortium, tmp_path):
    record_id = put(consortium)
    reader = consortium.session("hospital-b")

    with pytest.raises(AccessDenied, match="denied on public: no grant"):
        request(reader, record_id, "hospital-a", tmp_path / "out.json")

    assert not (tmp_path / "out.json").exists()
    actions = [(e["action"], e["actor_msp"]) for e in entries_of(consortium, "public", record_id)]
    assert actions == [("write", "HospitalAMSP"), ("request", "HospitalBMSP"), ("denied", "HospitalBMSP")]
    decision, denial_tx = reader.consent("public").check_access(record_id)
    assert decision["decision"] == "deny"
    with pytest.raises(DataServiceError, match="the decision is deny") as refused:
        reader.data_service("hospital-a").fetch(
            record_id, reader.signed(action="fetch", record_id=record_id, decision_tx=denial_tx))
    assert refused.value.status == 403
    assert entries_of(consortium, "public", record_id, "deliver") == []
    [refusal] = [e for e in entries_of(consortium, "public", record_id, "denied") if e["actor_msp"] == "HospitalAMSP"]
    assert refusal["requester_msp"] == "HospitalBMSP" and refusal["decision_tx"] == denial_tx


def test_granted_reader_of_another_domain_reads_and_verifies(consortium, tmp_path):
    record_id = put(consortium)
    granted = grant_to_b(consortium, record_id)

    result = request(consortium.session("hospital-b"), record_id, "hospital-a", tmp_path / "out.json")

    assert (tmp_path / "out.json").read_bytes() == canonical_json(BUNDLE[2])
    assert result["decided_on"] == "public" and result["reason"] == f"grant {granted['grant_id']}"
    delivered = entries_of(consortium, "public", record_id, "deliver")
    assert [(e["outcome"], e["actor_msp"], e["requester_msp"]) for e in delivered] == [
        ("success", "HospitalAMSP", "HospitalBMSP")]
    assert delivered[0]["decision_tx"] == result["decision_tx"]


def test_a_grant_to_one_user_lets_no_other_user_of_the_domain_read(consortium, tmp_path):
    record_id = put(consortium)
    grant_to_b(consortium, record_id, user="doctor")

    with pytest.raises(AccessDenied, match="no grant"):
        get_record(consortium.session("hospital-b", "researcher"), record_id, tmp_path / "out.json")
    get_record(consortium.session("hospital-b", "doctor"), record_id, tmp_path / "out.json")


def test_a_grant_for_research_opens_the_record_for_research_only(consortium, tmp_path):
    record_id = put(consortium)
    granted = grant_to_b(consortium, record_id, purpose="research")
    reader = consortium.session("hospital-b", "researcher")

    with pytest.raises(AccessDenied, match=f"grant {granted['grant_id']} is for research, not treatment"):
        request(reader, record_id, "hospital-a", tmp_path / "treatment.json")
    result = request(reader, record_id, "hospital-a", tmp_path / "research.json", purpose="research")

    assert result["reason"] == f"grant {granted['grant_id']}"
    assert not (tmp_path / "treatment.json").exists() and (tmp_path / "research.json").exists()
    assert [e["reason"] for e in entries_of(consortium, "public", record_id, "request")] == [
        "request to hospital-a for treatment", "request to hospital-a for research"]


def test_the_client_offers_the_purposes_consent_takes():
    from medfabric.sharing import emr
    from medfabric_chaincode.contracts import consent

    assert emr.PURPOSES == consent.PURPOSES and emr.DEFAULT_PURPOSE == consent.EMERGENCY_PURPOSE


def test_a_revoke_after_the_decision_stops_the_delivery(consortium, tmp_path):
    record_id = put(consortium)
    granted = grant_to_b(consortium, record_id)
    reader = consortium.session("hospital-b")
    _, decision_tx = reader.consent("public").check_access(record_id)
    revoke(consortium.session("hospital-a"), granted["grant_id"])

    with pytest.raises(DataServiceError, match=f"its grant {granted['grant_id']} has been revoked") as refused:
        reader.data_service("hospital-a").fetch(
            record_id, reader.signed(action="fetch", record_id=record_id, decision_tx=decision_tx))
    assert refused.value.status == 403
    [denied] = entries_of(consortium, "public", record_id, "denied")[-1:]
    assert (denied["actor_msp"], denied["decision_tx"]) == ("HospitalAMSP", decision_tx)


def test_expired_grant_is_denied(consortium, tmp_path):
    record_id = put(consortium)
    granted = grant_to_b(consortium, record_id, seconds=2)
    consortium.fabric.clock.advance(3)

    with pytest.raises(AccessDenied, match=f"grant {granted['grant_id']} expired"):
        get_record(consortium.session("hospital-b"), record_id, tmp_path / "out.json")


def test_revoked_grant_is_denied(consortium, tmp_path):
    record_id = put(consortium)
    granted = grant_to_b(consortium, record_id)
    get_record(consortium.session("hospital-b"), record_id, tmp_path / "before.json")

    revoke(consortium.session("hospital-a"), granted["grant_id"])

    with pytest.raises(AccessDenied, match=f"grant {granted['grant_id']} revoked"):
        get_record(consortium.session("hospital-b"), record_id, tmp_path / "after.json")
    assert not (tmp_path / "after.json").exists()


def test_only_published_records_are_granted_and_never_to_the_own_domain(consortium):
    record_id = put(consortium, publish=False)
    with pytest.raises(RecordNotFound, match="not published on public"):
        grant_to_b(consortium, record_id)
    with pytest.raises(MedfabricError, match="without a grant"):
        grant(consortium.session("hospital-a"), record_id, "hospital-a", "treatment",
              consortium.fabric.clock.now() + timedelta(hours=1))


# -- integrity -------------------------------------------------------------------------


def test_a_tampered_blob_in_the_owners_store_is_detected_reported_and_logged(consortium, tmp_path):
    record_id = put(consortium)
    grant_to_b(consortium, record_id)
    [blob] = [path for path in consortium.stored_files("hospital-a") if "keys" not in path.parts]
    blob.write_bytes(blob.read_bytes()[:-1] + bytes([blob.read_bytes()[-1] ^ 1]))

    with pytest.raises(DataServiceError, match="stored ciphertext does not match its hash") as refused:
        request(consortium.session("hospital-b"), record_id, "hospital-a", tmp_path / "out.json")

    assert refused.value.status == 409
    assert not (tmp_path / "out.json").exists()
    [delivery] = entries_of(consortium, "public", record_id, "deliver")
    assert delivery["outcome"] == "failure" and "does not match its hash" in delivery["reason"]


@pytest.mark.parametrize("field", ["ciphertext_sha256", "plaintext_sha256"])
def test_a_delivery_other_than_the_indexed_record_is_rejected_logged_and_never_written(consortium, tmp_path, field):
    record_id = put(consortium)
    grant_to_b(consortium, record_id)
    state = consortium.fabric.world_state("public")
    key = ("", f"\x00emr\x00{record_id}\x00")
    state[key] = canonical_json({**json.loads(state[key]), field: "0" * 64})  # what the owner says it holds

    with pytest.raises(DeliveryRejected, match="hash mismatch"):
        request(consortium.session("hospital-b"), record_id, "hospital-a", tmp_path / "out.json")

    assert not (tmp_path / "out.json").exists()
    verdicts = [e for e in entries_of(consortium, "public", record_id, "deliver") if e["outcome"] == "failure"]
    assert [(e["actor_msp"], e["reason"][:13]) for e in verdicts] == [("HospitalBMSP", "hash mismatch")]


def test_forged_and_replayed_fetch_statements_are_refused(consortium):
    record_id = put(consortium)
    grant_to_b(consortium, record_id)
    reader, outsider = consortium.session("hospital-b"), consortium.session("hospital-c")
    service = reader.data_service("hospital-a")
    _, decision_tx = reader.consent("public").check_access(record_id)
    statement = reader.signed(action="fetch", record_id=record_id, decision_tx=decision_tx)

    assert service.fetch(record_id, statement)["record_id"] == record_id
    with pytest.raises(DataServiceError, match="seen before"):
        service.fetch(record_id, statement)
    with pytest.raises(DataServiceError, match="the decision is for another requester"):
        outsider.data_service("hospital-a").fetch(
            record_id, outsider.signed(action="fetch", record_id=record_id, decision_tx=decision_tx))
    with pytest.raises(DataServiceError, match="signed by doctor@hospital-c.* the TLS client certificate is "
                                               "doctor@hospital-b.*'s"):
        service.fetch(record_id, outsider.signed(action="fetch", record_id=record_id, decision_tx=decision_tx))
    altered = reader.signed(action="fetch", record_id=record_id, decision_tx=decision_tx)
    altered["statement"]["record_id"] = "another"
    with pytest.raises(DataServiceError, match="signature does not verify"):
        service.fetch(record_id, altered)


def test_a_delivery_is_opened_only_by_its_requester_and_only_as_the_owner_signed_it(consortium):
    record_id = put(consortium)
    grant_to_b(consortium, record_id)
    reader, other = consortium.session("hospital-b"), consortium.session("hospital-c")
    _, decision_tx = reader.consent("public").check_access(record_id)
    delivery = reader.data_service("hospital-a").fetch(
        record_id, reader.signed(action="fetch", record_id=record_id, decision_tx=decision_tx))
    entry = reader.index("public").get(record_id)
    owner_ca = reader.ca_pems("HospitalAMSP")

    assert open_delivery(delivery, entry, decision_tx, reader.credentials, owner_ca) == canonical_json(BUNDLE[2])
    with pytest.raises(DeliveryRejected, match="names requester 'HospitalBMSP', not 'HospitalCMSP'"):
        open_delivery(delivery, entry, decision_tx, other.credentials, owner_ca)
    with pytest.raises(DeliveryRejected, match="names decision"):
        open_delivery(delivery, entry, "ab" * 32, reader.credentials, owner_ca)
    with pytest.raises(DeliveryRejected, match="unverifiable delivery: signer certificate .* not issued by a trusted"):
        open_delivery(delivery, entry, decision_tx, reader.credentials, reader.ca_pems("HospitalBMSP"))
    forged = json.loads(json.dumps(delivery))
    forged["delivery"]["statement"]["ciphertext_sha256"] = "0" * 64
    with pytest.raises(DeliveryRejected, match="unverifiable delivery: statement signature does not verify"):
        open_delivery(forged, entry, decision_tx, reader.credentials, owner_ca)


def test_the_data_key_is_wrapped_only_for_a_data_service_of_the_own_domains_ca(consortium, monkeypatch):
    impostor = consortium.session("hospital-b", "Admin").credentials.identity
    answer = {"msp_id": "HospitalAMSP", "certificate_pem": impostor.certificate_pem.decode()}
    monkeypatch.setattr(DataServiceClient, "identity", lambda _service: answer)

    with pytest.raises(MedfabricError, match="does not show a certificate of HospitalAMSP's CA"):
        put(consortium)

    assert consortium.stored_files("hospital-a") == [] and not consortium.index_keys("hospital-a-local")


# -- break-glass and erasure ------------------------------------------------------------


def test_break_glass_by_a_doctor_is_decided_logged_on_both_tiers_and_flagged(consortium, tmp_path):
    record_id = put(consortium)

    result = emergency_read(consortium.session("hospital-c"), record_id, "unconscious in the ER", tmp_path / "out")

    assert (tmp_path / "out").read_bytes() == canonical_json(BUNDLE[2])
    [decided] = entries_of(consortium, "public", record_id, "break-glass")
    assert decided["flagged"] and decided["actor_msp"] == "HospitalCMSP" and decided["tx_id"] == result["decision_tx"]
    [noted] = entries_of(consortium, "hospital-c-local", record_id)
    assert (noted["action"], noted["flagged"], noted["decision_tx"]) == ("request", True, result["decision_tx"])
    for owner_tier in ("public", "hospital-a-local"):  # the owner's service: its delivery, flagged on both tiers
        [delivered] = entries_of(consortium, owner_tier, record_id, "deliver")
        assert delivered["flagged"] and (delivered["actor_msp"], delivered["actor_role"]) == ("HospitalAMSP",
                                                                                             "data-service")
        assert (delivered["requester_msp"], delivered["decision_tx"]) == ("HospitalCMSP", result["decision_tx"])


def test_break_glass_is_refused_to_anyone_but_a_doctor(consortium, tmp_path):
    record_id = put(consortium)

    with pytest.raises(AccessDenied, match="break-glass refused: medfabric.role is researcher"):
        emergency_read(consortium.session("hospital-c", "researcher"), record_id, "curious", tmp_path / "out")
    assert not entries_of(consortium, "hospital-c-local", record_id)


def test_after_erasure_nobody_reads_the_index_keeps_a_tombstone_and_the_trail_stays(consortium, tmp_path):
    record_id = put(consortium)
    grant_to_b(consortium, record_id)
    reader = consortium.session("hospital-b")
    get_record(reader, record_id, tmp_path / "before.json")
    _, earlier_allow = reader.consent("public").check_access(record_id)
    trail = {channel: consortium.log(channel) for channel in ("hospital-a-local", "public")}

    result = erase(consortium.session("hospital-a"), record_id)

    assert result["payload"] == "destroyed" and set(result["tombstones"]) == {"hospital-a-local", "public"}
    assert consortium.stored_files("hospital-a") == []
    for session in (consortium.session("hospital-a"), reader):
        with pytest.raises(RecordErased):
            get_record(session, record_id, tmp_path / "after.json")
    decision, _ = reader.consent("public").check_access(record_id)
    assert decision == {**decision, "decision": "deny", "reason": "record erased"}
    with pytest.raises(DataServiceError, match="record erased") as gone:
        reader.data_service("hospital-a").fetch(
            record_id, reader.signed(action="fetch", record_id=record_id, decision_tx=earlier_allow))
    assert gone.value.status == 410
    tombstone = reader.index("public").get(record_id)
    assert tombstone["erased"] and tombstone["location"] == "" and tombstone["plaintext_sha256"]
    for channel, before in trail.items():
        after = consortium.log(channel)
        assert after[:len(before)] == before
        assert "erase" in [e["action"] for e in after[len(before):] if e["record_id"] == record_id]
    assert not (tmp_path / "after.json").exists()


# -- failures leave nothing half-written -------------------------------------------------


def test_an_unreachable_data_service_leaves_nothing_written(consortium, tmp_path):
    record_id = put(consortium)
    consortium.stop_data_service("hospital-a")

    with pytest.raises(DataServiceError, match="cannot reach the data service of hospital-a") as put_failed:
        put(consortium, data=PATIENT_RESOURCE)
    with pytest.raises(DataServiceError, match="cannot reach") as read_failed:
        get_record(consortium.session("hospital-a"), record_id, tmp_path / "out.json")

    assert "nothing was indexed. Put it again" in str(put_failed.value)
    assert "nothing was written. Read it again once the service answers" in str(read_failed.value)
    assert put_failed.value.status is None and read_failed.value.status is None

    assert len(consortium.index_keys("hospital-a-local")) == 1 and len(consortium.index_keys("public")) == 1
    assert not (tmp_path / "out.json").exists()


@pytest.mark.parametrize("failing, tombstoned", [("hospital-a-local", []), ("public", ["hospital-a-local"])])
def test_a_failed_index_write_erases_the_stored_payload(consortium, failing, tombstoned):
    consortium.fabric.refuse(failing, "emr_index:PutRecord")

    with pytest.raises(MedfabricError, match=f"on {failing} failed .*the stored payload was erased") as failed:
        put(consortium)

    assert "\n" not in str(failed.value)
    assert consortium.stored_files("hospital-a") == []
    assert not consortium.index_keys("public")
    record_id = record_id_for("hospital-a", prepare_payload(OBSERVATION, PATIENT))
    for channel in tombstoned:
        assert consortium.session("hospital-a").index(channel).get(record_id)["erased"]
        assert f"its entry on {channel} is a tombstone" in str(failed.value)
    if not tombstoned:
        assert not consortium.index_keys("hospital-a-local")


def store_only(consortium, data: bytes = OBSERVATION) -> str:
    """The first half of a put, as a client killed before its index write leaves it; the record id."""
    session = consortium.session("hospital-a")
    payload = prepare_payload(data, PATIENT)
    record_id = record_id_for("hospital-a", payload)
    store_sealed(session, session.data_service("hospital-a"), record_id, seal(payload.plaintext, record_id.encode()))
    return record_id


GRACE = timedelta(seconds=600)  # the default topology's data_services.orphan_grace


def test_a_put_cut_after_its_store_leaves_no_payload_once_its_grace_has_passed(consortium):
    record_id = store_only(consortium)

    kept = consortium.sweep("hospital-a")
    with pytest.raises(DataServiceError, match=f"record {record_id} is already stored but not indexed.*put it again"):
        put(consortium)
    swept = consortium.sweep("hospital-a", later=GRACE + timedelta(seconds=1))

    assert kept.kept == [record_id] and not kept.destroyed
    assert swept.destroyed == [record_id]
    assert consortium.stored_files("hospital-a") == [] and consortium.pending_puts("hospital-a") == []
    [logged] = entries_of(consortium, "hospital-a-local", record_id, "erase")
    assert logged["outcome"] == "success"
    assert logged["reason"] == ("put not completed: not indexed on hospital-a-local within 600 s of its store; "
                                "ciphertext and key destroyed")
    assert put(consortium) == record_id  # no tombstone: the same put goes through again


def test_a_completed_put_is_confirmed_by_the_sweep_and_kept(consortium, tmp_path):
    record_id = put(consortium)

    swept = consortium.sweep("hospital-a", later=GRACE * 2)

    assert swept.confirmed == [record_id] and not swept.destroyed
    assert consortium.pending_puts("hospital-a") == [] and len(consortium.stored_files("hospital-a")) == 2
    assert get_record(consortium.session("hospital-a"), record_id, tmp_path / "out.json")


def test_a_payload_whose_entry_was_tombstoned_while_the_service_was_down_is_destroyed(consortium):
    record_id = store_only(consortium)
    session = consortium.session("hospital-a")
    session.index("hospital-a-local").put(index_entry(session, record_id, prepare_payload(OBSERVATION, PATIENT),
                                                      seal(b"x", b"")))
    session.index("hospital-a-local").erase(record_id, "put not completed: compensated")

    kept = consortium.sweep("hospital-a")
    swept = consortium.sweep("hospital-a", later=GRACE + timedelta(seconds=1))

    assert kept.kept == [record_id] and swept.destroyed == [record_id]
    assert consortium.stored_files("hospital-a") == []
    with pytest.raises(DataServiceError, match="record erased"):
        store_only(consortium)


def test_the_sweep_keeps_what_it_cannot_check_on_the_ledger(consortium):
    record_id = store_only(consortium)
    consortium.fabric.refuse("hospital-a-local", "emr_index:GetRecord", evaluations=True)

    swept = consortium.sweep("hospital-a", later=GRACE * 2)

    assert swept.kept == [record_id] and not swept.destroyed
    assert len(consortium.stored_files("hospital-a")) == 2


def test_a_store_cut_between_its_blob_and_its_key_leaves_no_blob_once_swept(consortium):
    record_id = store_only(consortium)
    [key_file] = (consortium.stores["hospital-a"] / "keys" / "keys").glob("*.json")
    key_file.unlink()  # as a service killed after writing the blob

    swept = consortium.sweep("hospital-a", later=GRACE * 2)

    assert swept.destroyed == [record_id]
    assert consortium.stored_files("hospital-a") == []


def test_erasing_needs_the_owner(consortium):
    record_id = put(consortium)

    with pytest.raises(MedfabricError, match="only its owner erases it"):
        erase(consortium.session("hospital-b"), record_id)
    with pytest.raises(RecordNotFound, match="neither indexed nor stored"):
        erase(consortium.session("hospital-a"), "nope")
    assert len(consortium.stored_files("hospital-a")) == 2


def test_an_index_entry_not_written_by_its_domains_msp_is_never_followed(consortium, tmp_path):
    """An entry written before domains were bound to their MSPs (or forged on disk) names hospital-a but
    HospitalCMSP as its writer: the reader refuses to follow its location, saying why, and writes nothing."""
    record_id = put(consortium)
    grant_to_b(consortium, record_id)
    state = consortium.fabric.world_state("public")
    [key] = [key for key in state if key[1].endswith(f"\x00{record_id}\x00") and key[1].startswith("\x00emr\x00")]
    forged = {**json.loads(state[key]), "owner_msp": "HospitalCMSP", "location": "medfabric://elsewhere/x"}
    state[key] = canonical_json(forged)

    with pytest.raises(MedfabricError, match=rf"the index entry of {record_id} names domain hospital-a but was "
                                             r"written by HospitalCMSP: not trusted"):
        request(consortium.session("hospital-b"), record_id, "hospital-a", tmp_path / "out.json")
    assert not (tmp_path / "out.json").exists()
