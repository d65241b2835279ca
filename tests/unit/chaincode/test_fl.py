"""The fl contract: tasks, per-task keys, one signed update per domain per round, aggregations in round order."""

from __future__ import annotations

import base64
import json

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from medfabric_chaincode.contracts import ALL_CONTRACTS
from medfabric_chaincode.contracts.fl import signed_update_fields

from .actors import A_DOCTOR, B_DOCTOR, C_DOCTOR, caller, ok, stamp

FEATURES = 3
TASK = {
    "task_id": "task-1", "publisher_domain": "hospital-a", "model": "logreg", "features": FEATURES,
    "scaler_mean": [0.5, 1, -2.25], "scaler_scale": [1.5, 2, 0.125], "initial_weights_sha256": "11" * 32,
    "initial_location": "medfabric://hospital-a/fl/task-1/initial", "learning_rate": 0.5, "epochs": 5, "rounds": 2,
    "target_accuracy": 0.95, "domains": ["hospital-b", "hospital-a"], "aggregator": "fedavg", "max_samples": 500,
}
KEYS = {domain: ec.generate_private_key(ec.SECP256R1()) for domain in ("hospital-a", "hospital-b", "hospital-c")}
CALLERS = {"hospital-a": A_DOCTOR, "hospital-b": B_DOCTOR}


@pytest.fixture
def chain(connect):
    return connect(*ALL_CONTRACTS)


def public_pem(domain: str) -> str:
    return KEYS[domain].public_key().public_bytes(serialization.Encoding.PEM,
                                                  serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def create(chain, creator=A_DOCTOR, **changes):
    return chain.invoke("fl:CreateTask", json.dumps({**TASK, **changes}), creator=creator)


def issue(chain, domain: str, creator=A_DOCTOR, **changes):
    key = {"task_id": "task-1", "domain": domain, "public_key": public_pem(domain),
           "wrapped_private_key": {"scheme": "test", "ciphertext": "c2VhbGVk"}, **changes}
    return chain.invoke("fl:IssueTaskKey", json.dumps(key), creator=creator)


def ready(chain):
    """A task with keys issued for both its domains."""
    ok(create(chain))
    for domain in TASK["domains"]:
        ok(issue(chain, domain))


def update_document(domain: str, round_number: int = 1, key=None, **changes) -> dict:
    document = {"task_id": "task-1", "round": round_number, "domain": domain, "weights_sha256": "22" * 32,
                "ciphertext_sha256": "33" * 32, "location": f"medfabric://{domain}/fl/task-1/{round_number}",
                "n_samples": 120, "loss": 0.25, "accuracy": 0.9, **changes}
    signature = (key or KEYS[domain]).sign(signed_update_fields(document), ec.ECDSA(hashes.SHA256()))
    return {**document, "signature": base64.b64encode(signature).decode()}


def submit(chain, domain: str, round_number: int = 1, creator=None, document=None, **changes):
    document = document or update_document(domain, round_number, **changes)
    return chain.invoke("fl:SubmitUpdate", json.dumps(document), creator=creator or CALLERS[domain])


def aggregate(chain, round_number: int = 1, creator=A_DOCTOR, **changes):
    document = {"task_id": "task-1", "round": round_number, "global_sha256": f"{round_number:02d}" * 32,
                "global_ciphertext_sha256": "99" * 32,
                "updates": ["hospital-a", "hospital-b"], "aggregator": "fedavg", "accuracy": 0.9, "loss": 0.3,
                **changes}
    return chain.invoke("fl:RecordAggregation", json.dumps(document), creator=creator)


def task(chain) -> dict:
    return ok(chain.invoke("fl:GetTask", "task-1"))


def test_a_task_is_recorded_for_its_publisher_at_round_one(chain):
    created = ok(create(chain))

    assert created == {**TASK, "domains": ["hospital-a", "hospital-b"], "scaler_mean": [0.5, 1.0, -2.25],
                       "scaler_scale": [1.5, 2.0, 0.125], "publisher_msp": "HospitalAMSP", "created": stamp(),
                       "tx_id": created["tx_id"], "status": "training", "round": 1,
                       "global_sha256": TASK["initial_weights_sha256"], "accuracy": None}
    assert task(chain) == created


@pytest.mark.parametrize(
    "changes, problem",
    [
        ({"aggregator": "mean"}, "field 'aggregator' must be one of fedavg, median, trimmed-mean, krum"),
        ({"rounds": 0}, "field 'rounds' must be an integer from 1 to 10000"),
        ({"learning_rate": 0}, "field 'learning_rate' must be a number in (0, 100]"),
        ({"target_accuracy": 1.5}, "field 'target_accuracy' must be a number in (0, 1]"),
        ({"domains": ["hospital-a", "hospital-z"]}, "field 'domains' names hospital-z: no domain of this consortium"),
        ({"domains": ["hospital-a", "hospital-a"]}, "field 'domains' must not name a domain twice"),
        ({"scaler_mean": [0, 1]}, "field 'scaler_mean' must have one number per feature (3)"),
        ({"scaler_scale": [1, 0, 1]}, "field 'scaler_scale' must be a list of positive numbers"),
        ({"model": "cnn"}, "field 'model' must be one of logreg"),
        ({"epochs": True}, "field 'epochs' must be an integer from 1 to 10000"),
    ],
)
def test_an_invalid_task_is_refused_naming_the_field(chain, changes, problem):
    result = create(chain, **changes)

    assert (result.status, result.message, result.writes) == (500, f"invalid task: {problem}", {})


def test_only_the_publisher_domain_publishes_and_a_task_id_is_taken_once(chain):
    foreign = create(chain, creator=B_DOCTOR)
    ok(create(chain))
    again = create(chain, rounds=9)

    assert foreign.message.startswith("only an identity of domain hospital-a (HospitalAMSP) may publish its tasks")
    assert (again.status, again.message, again.writes) == (500, "task task-1 already exists", {})


def test_keys_are_issued_by_the_publisher_once_per_taking_part_domain(chain):
    ok(create(chain))

    by_b = issue(chain, "hospital-b", creator=B_DOCTOR)
    outsider = issue(chain, "hospital-c")
    issued = ok(issue(chain, "hospital-b"))
    twice = issue(chain, "hospital-b")
    bad = issue(chain, "hospital-a", public_key="-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")

    assert by_b.message.startswith("only an identity of domain hospital-a (HospitalAMSP) may issue the keys")
    assert outsider.message == "invalid task key: field 'domain' hospital-c does not take part in task task-1"
    assert (issued["domain"], issued["public_key"]) == ("hospital-b", public_pem("hospital-b"))
    assert ok(chain.invoke("fl:GetTaskKey", "task-1", "hospital-b")) == issued
    assert twice.message == "task task-1 already has a key for hospital-b"
    assert bad.message == "invalid task key: field 'public_key' is not a readable PEM public key"
    assert all(result.writes == {} for result in (by_b, outsider, twice, bad))


def test_a_signed_update_of_the_current_round_is_recorded(chain):
    ready(chain)

    update = ok(submit(chain, "hospital-b"))

    assert (update["domain"], update["round"], update["owner_msp"], update["n_samples"]) == (
        "hospital-b", 1, "HospitalBMSP", 120)
    assert ok(chain.invoke("fl:ListUpdates", "task-1", "1")) == [update]


@pytest.mark.parametrize(
    "case, problem",
    [
        ("round out of order", "invalid update: field 'round' must be the task's current round 1"),
        ("domain not in the task", "invalid update: field 'domain' hospital-c does not take part in task task-1"),
        ("another domain's caller", "only an identity of domain hospital-b (HospitalBMSP) may submit its updates"),
        ("wrong key", "invalid update: the signature does not verify with hospital-b's key for task task-1"),
        ("altered after signing", "invalid update: the signature does not verify with hospital-b's key for task task-1"),
        ("unknown task", "task task-9 not found"),
        ("second update in the round", "hospital-b already submitted its update for round 1 of task task-1"),
    ],
)
def test_a_bad_update_is_refused_and_writes_nothing(chain, case, problem):
    ready(chain)
    if case == "round out of order":
        result = submit(chain, "hospital-b", round_number=2)
    elif case == "domain not in the task":
        result = submit(chain, "hospital-c", creator=C_DOCTOR, document=update_document("hospital-c", key=KEYS["hospital-a"]))
    elif case == "another domain's caller":
        result = submit(chain, "hospital-b", creator=A_DOCTOR)
    elif case == "wrong key":
        result = submit(chain, "hospital-b", document=update_document("hospital-b", key=KEYS["hospital-a"]))
    elif case == "altered after signing":
        result = submit(chain, "hospital-b", document={**update_document("hospital-b"), "n_samples": 100_000})
    elif case == "unknown task":
        result = submit(chain, "hospital-b", document=update_document("hospital-b", task_id="task-9"))
    else:
        ok(submit(chain, "hospital-b"))
        result = submit(chain, "hospital-b", weights_sha256="44" * 32)

    assert (result.status, result.writes) == (500, {})
    assert result.message.startswith(problem)


def test_an_update_needs_its_domains_key(chain):
    ok(create(chain))

    result = submit(chain, "hospital-b")

    assert (result.status, result.message, result.writes) == (500, "task task-1 has no key for hospital-b yet", {})


def test_a_domain_certificate_of_another_msp_cannot_submit_for_it(chain):
    ready(chain)
    forged = caller("HospitalCMSP", "doctor", "doctor", domain="hospital-b")

    result = submit(chain, "hospital-b", creator=forged)

    assert result.message.startswith("only an identity of domain hospital-b (HospitalBMSP) may submit its updates to "
                                     "task task-1: the caller is of HospitalCMSP")


def test_an_aggregation_moves_the_task_to_the_next_round(chain):
    ready(chain)
    updates = [ok(submit(chain, domain)) for domain in ("hospital-a", "hospital-b")]

    aggregation = ok(aggregate(chain))

    assert [used["tx_id"] for used in aggregation["updates"]] == [u["tx_id"] for u in updates]
    assert (aggregation["round"], aggregation["completes"], aggregation["aggregator_msp"]) == (1, False, "HospitalAMSP")
    assert (task(chain)["round"], task(chain)["global_sha256"], task(chain)["status"]) == (2, "01" * 32, "training")
    late = submit(chain, "hospital-b", weights_sha256="44" * 32)
    assert late.message == "invalid update: field 'round' must be the task's current round 2"
    ok(submit(chain, "hospital-b", round_number=2))
    assert ok(chain.invoke("fl:ListAggregations", "task-1")) == [aggregation]


@pytest.mark.parametrize(
    "changes, creator, problem",
    [
        ({"updates": ["hospital-a", "hospital-b"]}, A_DOCTOR,
         "invalid aggregation: field 'updates' names hospital-b: no update of round 1"),
        ({"round": 2}, A_DOCTOR, "invalid aggregation: field 'round' must be the task's current round 1"),
        ({"aggregator": "krum"}, A_DOCTOR, "invalid aggregation: field 'aggregator' must be the task's aggregator fedavg"),
        ({}, B_DOCTOR, "only an identity of domain hospital-a (HospitalAMSP) may aggregate task task-1"),
        ({"updates": ["hospital-a", "hospital-a"]}, A_DOCTOR,
         "invalid aggregation: field 'updates' must not name a domain twice"),
    ],
)
def test_a_bad_aggregation_is_refused(chain, changes, creator, problem):
    ready(chain)
    ok(submit(chain, "hospital-a"))

    result = aggregate(chain, creator=creator, **{"updates": ["hospital-a"], **changes})

    assert (result.status, result.writes) == (500, {})
    assert result.message.startswith(problem)


@pytest.mark.parametrize("accuracy, rounds_run", [(0.96, 1), (0.5, 2)])
def test_the_task_completes_at_the_target_or_the_last_round(chain, accuracy, rounds_run):
    ready(chain)
    for number in range(1, rounds_run + 1):
        ok(submit(chain, "hospital-a", round_number=number))
        last = ok(aggregate(chain, round_number=number, updates=["hospital-a"], accuracy=accuracy))

    assert last["completes"] is True
    assert (task(chain)["status"], task(chain)["round"], task(chain)["accuracy"]) == ("complete", rounds_run + 1,
                                                                                       accuracy)
    after = submit(chain, "hospital-b", round_number=rounds_run + 1)
    assert after.message == "task task-1 is complete: it takes no more updates"
    assert aggregate(chain, round_number=rounds_run + 1).message == "task task-1 is complete"
