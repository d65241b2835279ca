"""Federated learning on the real consortium: a task trained to its target, every aggregation re-run to the same
hash, a tampered stored update and a lying aggregation detected, and bad updates refused with nothing written."""

from __future__ import annotations

import base64
import json
import time
from contextlib import ExitStack

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from medfabric.crypto import canonical_json
from medfabric.fl import experiments, flow, task_keys
from medfabric.fl.records import FlRecordId
from medfabric.gateway import GatewayError
from medfabric.polling import awaited

from .fl_sessions import participants

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def sessions(consortium):
    """A researcher session of every domain, with each domain's share of the data in its folder."""
    with ExitStack() as stack:
        yield participants(consortium, stack)


def new_task(sessions, **changes) -> dict:
    domains = changes.pop("domains", sorted(sessions))
    spec = flow.TaskSpec(f"it-{time.time_ns()}", domains, **changes)
    return flow.create_task(sessions[domains[0]], spec)


def test_a_task_reaches_its_target_and_every_aggregation_verifies(sessions):
    task = new_task(sessions, rounds=30, target_accuracy=0.95)

    reports = flow.run(sessions, task["task_id"])

    assert reports[-1].completes and reports[-1].accuracy >= 0.95 and len(reports) <= 30
    checks = flow.verify(sessions[task["publisher_domain"]], task["task_id"])
    assert [c.round for c in checks] == [r.round for r in reports] and all(c.matches for c in checks)
    status = flow.status(sessions["hospital-b"], task["task_id"])
    assert status["task"]["status"] == "complete"
    assert [r["accuracy"] for r in status["rounds"]] == [r.accuracy for r in reports]
    # through the ledger and the data services, the same bits as the same rounds in one process
    in_process = experiments.curves(len(reports), domains=sorted(sessions))["accuracy"]["federated (fedavg)"]
    assert [r.accuracy for r in reports] == in_process[1:]


def stored_blob(layout, topology, domain_id: str, ciphertext_sha256: str):
    domain = topology.domain(domain_id)
    return layout.node_data(f"data-service.{domain.org_domain}") / "blobs" / ciphertext_sha256[:2] / ciphertext_sha256[2:]


def test_a_tampered_stored_update_is_named_by_aggregate_and_verify(consortium, sessions):
    topology, layout, _env = consortium
    task = new_task(sessions, rounds=2)
    for domain in task["domains"]:
        flow.train(sessions[domain], task["task_id"])
    flow.aggregate(sessions[task["publisher_domain"]], task["task_id"])
    update = next(u for u in flow.fl_tasks(sessions["hospital-b"]).updates(task["task_id"], 1)
                  if u["domain"] == "hospital-b")
    blob = stored_blob(layout, topology, "hospital-b", update["ciphertext_sha256"])
    original = blob.read_bytes()
    blob.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))
    try:
        [check] = flow.verify(sessions[task["publisher_domain"]], task["task_id"])
    finally:
        blob.write_bytes(original)

    assert not check.matches
    assert f"the update {FlRecordId(task['task_id'], 1, 'hospital-b')} of hospital-b fails its check" in check.problem


def test_an_aggregation_recorded_with_another_hash_is_detected(sessions):
    task = new_task(sessions, rounds=2)
    for domain in task["domains"]:
        flow.train(sessions[domain], task["task_id"])
    publisher = sessions[task["publisher_domain"]]
    flow.fl_tasks(publisher).record_aggregation({
        "task_id": task["task_id"], "round": 1, "global_sha256": "ab" * 32, "global_ciphertext_sha256": "cd" * 32,
        "updates": task["domains"], "aggregator": task["aggregator"], "accuracy": 0.99, "loss": 0.01,
    })

    [check] = flow.verify(publisher, task["task_id"])

    assert (check.recorded, check.matches, check.problem) == ("ab" * 32, False, None)
    assert len(check.recomputed) == 64


def signed_update(key, **fields) -> dict:
    signature = key.sign(canonical_json(fields), ec.ECDSA(hashes.SHA256()))
    return {**fields, "signature": base64.b64encode(signature).decode()}


def test_bad_updates_are_refused_naming_why_and_write_nothing(sessions):
    task = new_task(sessions, rounds=3, domains=["hospital-a", "hospital-b"])
    task_id = task["task_id"]
    b = sessions["hospital-b"]
    flow.train(b, task_id)
    tasks = flow.fl_tasks(b)
    own_key = task_keys.unwrapped(tasks.task_key(task_id, "hospital-b"), b.credentials)
    fields = {"task_id": task_id, "round": 2, "domain": "hospital-b", "weights_sha256": "11" * 32,
              "ciphertext_sha256": "22" * 32, "location": "medfabric://hospital-b/x", "n_samples": 10,
              "loss": 0.5, "accuracy": 0.5}

    with pytest.raises(flow.FlError, match=f"hospital-b already submitted its update for round 1 of task {task_id}"):
        flow.train(b, task_id)
    with pytest.raises(flow.FlError, match=f"hospital-c does not take part in task {task_id}"):
        flow.train(sessions["hospital-c"], task_id)
    with pytest.raises(flow.FlError, match="task it-0 not found on public"):
        flow.train(b, "it-0")
    with pytest.raises(GatewayError, match="field 'round' must be the task's current round 1"):
        tasks.submit_update(signed_update(own_key, **fields))
    with pytest.raises(GatewayError, match="the signature does not verify with hospital-a's key"):
        flow.fl_tasks(sessions["hospital-a"]).submit_update(
            signed_update(task_keys.new_task_key(), **{**fields, "round": 1, "domain": "hospital-a"}))
    assert [u["domain"] for u in tasks.updates(task_id, 1)] == ["hospital-b"]
    assert tasks.updates(task_id, 2) == []


def test_only_the_publisher_fetches_an_update_from_its_domains_data_service(sessions):
    task = new_task(sessions, rounds=2)
    update = flow.train(sessions["hospital-b"], task["task_id"])
    record_id = str(FlRecordId(task["task_id"], 1, "hospital-b"))
    outsider = sessions["hospital-c"]

    with pytest.raises(flow.FlError, match=f"HospitalCMSP may not have {record_id}: only HospitalAMSP"):
        flow.fetch_updates(outsider, task, [update])
    assert flow.fetch_updates(sessions[task["publisher_domain"]], task, [update])[0].domain == "hospital-b"
    expected = [("denied", "failure", "HospitalCMSP"), ("deliver", "success", "HospitalAMSP")]  # the store: locally
    log = outsider.gateway.get_network("public").get_contract("medfabric", "access_log")

    def entries():  # hospital-b's data service logged both through its own peer: wait for them to reach C's
        logged = json.loads(log.evaluate_transaction("ListLog", "", "", record_id, "0", ""))["entries"]
        found = [(e["action"], e["outcome"], e["requester_msp"]) for e in logged]
        return found if found == expected else None

    assert awaited(entries, 30) == expected
