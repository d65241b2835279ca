"""fl: federated-learning tasks, their per-task keys, the hospitals' updates and the aggregations (SYSTEM.md s. 5).

A task's publisher (an identity of its domain) records the task; issues each
participating domain a fresh per-task key pair (the private key wrapped for
that domain, so it alone and the publisher can read the domain's updates);
each domain records one update per round (hashes of its encrypted update and
of the weights inside, where the ciphertext is, n_k, local loss and accuracy,
signed with its per-task key); the publisher records each round's
aggregation (the new global weights' hash and the updates it used). Rounds
go in order: round r takes updates until it is aggregated, then round r + 1.
The task is complete after its last round or once an aggregation reaches the
target accuracy. State:

    ("fl-task", task_id)                    -> the task, canonical JSON
    ("fl-key", task_id, domain)             -> the domain's per-task key
    ("fl-update", task_id, round, domain)   -> the update (round as 6 digits: key order is round order)
    ("fl-aggregation", task_id, round)      -> the aggregation

Only the task's record changes (its round, global hash, status), and only by
an aggregation: updates of different domains never conflict.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, replace

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from ..runtime import ChaincodeStub, Contract, TransactionContext, TransactionError, canonical_json, load_json, transaction
from .common import (
    DOMAIN_RULE, ID_RULE, SHA256_RULE, Rule, check_argument, check_fields, domain_msps, integer_in, invalid_field,
    iso_millis, number_in, one_of, parse_document, read_range, require_domain, text
)

TASK_KEY = "fl-task"
KEY_KEY = "fl-key"
UPDATE_KEY = "fl-update"
AGGREGATION_KEY = "fl-aggregation"
MODELS = ("logreg",)
AGGREGATORS = ("fedavg", "median", "trimmed-mean", "krum")
MAX_ROUNDS = 10_000
MAX_FEATURES = 4096
MAX_DOMAINS = 64
TASK_CREATED_EVENT = "FlTaskCreated"
ROUND_AGGREGATED_EVENT = "FlRoundAggregated"

_LOCATION = re.compile(r"[\x21-\x7e]{1,512}")
_BASE64 = re.compile(r"[A-Za-z0-9+/]{1,8192}={0,2}")
_PEM_PUBLIC_KEY = re.compile(r"-----BEGIN PUBLIC KEY-----\n[A-Za-z0-9+/=\n]{1,1024}-----END PUBLIC KEY-----\n?")


LOCATION_RULE: Rule = (text(_LOCATION), "must be 1-512 printable ASCII characters without spaces")
_TASK_RULES: dict[str, Rule] = {
    "task_id": ID_RULE,
    "publisher_domain": DOMAIN_RULE,
    "model": (one_of(MODELS), f"must be one of {', '.join(MODELS)}"),
    "features": integer_in(1, MAX_FEATURES),
    "scaler_mean": (lambda v: isinstance(v, list) and all(number_in(-1e300, 1e300)[0](x) for x in v),
                    "must be a list of finite numbers"),
    "scaler_scale": (lambda v: isinstance(v, list) and all(number_in(0, 1e300)[0](x) for x in v),
                     "must be a list of positive numbers"),
    "initial_weights_sha256": SHA256_RULE,
    "initial_location": LOCATION_RULE,
    "learning_rate": number_in(0, 100),
    "epochs": integer_in(1, 10_000),
    "rounds": integer_in(1, MAX_ROUNDS),
    "target_accuracy": number_in(0, 1),
    "domains": (lambda v: isinstance(v, list) and 1 <= len(v) <= MAX_DOMAINS and all(DOMAIN_RULE[0](d) for d in v),
                f"must be a list of 1 to {MAX_DOMAINS} domain ids"),
    "aggregator": (one_of(AGGREGATORS), f"must be one of {', '.join(AGGREGATORS)}"),
    "max_samples": integer_in(0, 10**9),
}
_KEY_RULES: dict[str, Rule] = {
    "task_id": ID_RULE,
    "domain": DOMAIN_RULE,
    "public_key": (text(_PEM_PUBLIC_KEY), "must be a PEM public key (SubjectPublicKeyInfo)"),
    "wrapped_private_key": (lambda v: isinstance(v, dict) and 0 < len(v) <= 16 and all(
        isinstance(k, str) and isinstance(x, str) and len(x) <= 4096 for k, x in v.items()),
        "must be an object of at most 16 string fields (the wrapped key)"),
}
_UPDATE_RULES: dict[str, Rule] = {
    "task_id": ID_RULE,
    "round": integer_in(1, MAX_ROUNDS),
    "domain": DOMAIN_RULE,
    "weights_sha256": SHA256_RULE,
    "ciphertext_sha256": SHA256_RULE,
    "location": LOCATION_RULE,
    "n_samples": integer_in(1, 10**12),
    "loss": number_in(0, 1e300, low_open=False),
    "accuracy": number_in(0, 1, low_open=False),
    "signature": (text(_BASE64), "must be base64 (the per-task key's ECDSA signature)"),
}
_AGGREGATION_RULES: dict[str, Rule] = {
    "task_id": ID_RULE,
    "round": integer_in(1, MAX_ROUNDS),
    "global_sha256": SHA256_RULE,
    "global_ciphertext_sha256": SHA256_RULE,
    "updates": (lambda v: isinstance(v, list) and 1 <= len(v) <= MAX_DOMAINS and all(DOMAIN_RULE[0](d) for d in v),
                f"must be a list of 1 to {MAX_DOMAINS} domain ids"),
    "aggregator": (one_of(AGGREGATORS), f"must be one of {', '.join(AGGREGATORS)}"),
    "accuracy": number_in(0, 1, low_open=False),
    "loss": number_in(0, 1e300, low_open=False),
}


@dataclass(frozen=True)
class FlTask:
    task_id: str
    publisher_domain: str
    publisher_msp: str  # set by the contract: the caller's
    model: str
    features: int
    scaler_mean: list[float]  # the standardisation every domain applies: (x - mean) / scale
    scaler_scale: list[float]
    initial_weights_sha256: str
    initial_location: str
    learning_rate: float
    epochs: int  # local epochs per round
    rounds: int
    target_accuracy: float
    domains: list[str]  # sorted
    aggregator: str
    max_samples: int  # the cap on a reported n_k that FedAvg weighs by; 0: no cap
    created: str
    tx_id: str
    status: str  # "training" or "complete"
    round: int  # the round taking updates; rounds + 1 once complete
    global_sha256: str  # the latest global weights (the initial ones before round 1)
    accuracy: float | None  # the latest aggregation's test accuracy


@dataclass(frozen=True)
class TaskKey:
    task_id: str
    domain: str
    public_key: str  # PEM: verifies the domain's update signatures
    wrapped_private_key: dict[str, str]  # for the domain's enrollment key, as the client's crypto wraps keys
    issued_at: str
    tx_id: str


@dataclass(frozen=True)
class FlUpdate:
    task_id: str
    round: int
    domain: str
    owner_msp: str  # set by the contract: the caller's
    weights_sha256: str  # of the canonical weights inside the ciphertext
    ciphertext_sha256: str
    location: str
    n_samples: int  # as the domain reports it
    loss: float  # on its own share
    accuracy: float
    signature: str
    recorded_at: str
    tx_id: str


@dataclass(frozen=True)
class UsedUpdate:
    domain: str
    weights_sha256: str
    ciphertext_sha256: str
    n_samples: int
    tx_id: str


@dataclass(frozen=True)
class FlAggregation:
    task_id: str
    round: int
    global_sha256: str  # of the new global weights (canonical bytes)
    global_ciphertext_sha256: str  # of their sealed copy in the publisher's data service, fl:<task>:<round>:global
    aggregator: str
    updates: list[UsedUpdate]  # in domain order
    accuracy: float  # of the new global weights on the aggregator's test set
    loss: float
    aggregator_msp: str
    recorded_at: str
    tx_id: str
    completes: bool  # the task is complete with this round


def signed_update_fields(document: dict) -> bytes:
    """What a domain's per-task key signs: the update's fields but the signature, as canonical JSON."""
    return canonical_json({name: value for name, value in document.items() if name != "signature"})


class FlContract(Contract):
    """Federated-learning tasks: create, issue keys, record updates and aggregations; read them."""

    name = "fl"

    @transaction
    def CreateTask(self, ctx: TransactionContext, task_json: str) -> FlTask:
        """Record a task published by the caller's domain; returns it.

        Roles: any identity of publisher_domain. Every domain must be a domain of the consortium."""
        document = parse_document(task_json, "task")
        check_fields(document, _TASK_RULES, "task")
        stub, identity = ctx.stub, ctx.client_identity
        require_domain(identity, document["publisher_domain"], "publish its tasks")
        for name in ("scaler_mean", "scaler_scale"):
            if len(document[name]) != document["features"]:
                invalid_field("task", name, f"must have one number per feature ({document['features']})")
        domains = document["domains"]
        if len(set(domains)) != len(domains):
            invalid_field("task", "domains", "must not name a domain twice")
        unknown = sorted(set(domains) - set(domain_msps()))
        if unknown:
            invalid_field("task", "domains", f"names {', '.join(unknown)}: no domain of this consortium")
        key = stub.create_composite_key(TASK_KEY, [document["task_id"]])
        if stub.get_state(key) is not None:
            raise TransactionError(f"task {document['task_id']} already exists")
        now = iso_millis(stub.get_tx_timestamp())
        task = FlTask(
            **{name: document[name] for name in _TASK_RULES if name not in ("domains", "learning_rate",
                                                                             "target_accuracy")},
            learning_rate=float(document["learning_rate"]),
            target_accuracy=float(document["target_accuracy"]),
            domains=sorted(domains),
            publisher_msp=identity.msp_id,
            created=now,
            tx_id=stub.get_tx_id(),
            status="training",
            round=1,
            global_sha256=document["initial_weights_sha256"],
            accuracy=None,
        )
        task = replace(task, scaler_mean=[float(v) for v in task.scaler_mean],
                       scaler_scale=[float(v) for v in task.scaler_scale])
        stub.put_state(key, canonical_json(task))
        stub.set_event(TASK_CREATED_EVENT, canonical_json({"task_id": task.task_id, "domains": task.domains}))
        return task

    @transaction
    def IssueTaskKey(self, ctx: TransactionContext, key_json: str) -> TaskKey:
        """Record a participating domain's per-task key; once per domain, before its first update.

        Roles: any identity of the task's publisher domain."""
        document = parse_document(key_json, "task key")
        check_fields(document, _KEY_RULES, "task key")
        stub = ctx.stub
        task = _load_task(stub, document["task_id"])
        require_domain(ctx.client_identity, task.publisher_domain, f"issue the keys of task {task.task_id}")
        domain = document["domain"]
        if domain not in task.domains:
            invalid_field("task key", "domain", f"{domain} does not take part in task {task.task_id}")
        _public_key(document["public_key"], "task key")
        key = stub.create_composite_key(KEY_KEY, [task.task_id, domain])
        if stub.get_state(key) is not None:
            raise TransactionError(f"task {task.task_id} already has a key for {domain}")
        issued = TaskKey(task.task_id, domain, document["public_key"], dict(document["wrapped_private_key"]),
                         iso_millis(stub.get_tx_timestamp()), stub.get_tx_id())
        stub.put_state(key, canonical_json(issued))
        return issued

    @transaction
    def SubmitUpdate(self, ctx: TransactionContext, update_json: str) -> FlUpdate:
        """Record the caller's domain's update for the task's current round; one per domain per round.

        Roles: any identity of the update's domain; the signature must verify with the domain's per-task key."""
        document = parse_document(update_json, "update")
        check_fields(document, _UPDATE_RULES, "update")
        stub = ctx.stub
        task = _load_task(stub, document["task_id"])
        domain, number = document["domain"], document["round"]
        if domain not in task.domains:
            invalid_field("update", "domain", f"{domain} does not take part in task {task.task_id}")
        require_domain(ctx.client_identity, domain, f"submit its updates to task {task.task_id}")
        if task.status != "training":
            raise TransactionError(f"task {task.task_id} is complete: it takes no more updates")
        if number != task.round:
            invalid_field("update", "round", f"must be the task's current round {task.round}")
        key = stub.create_composite_key(UPDATE_KEY, [task.task_id, f"{number:06d}", domain])
        if stub.get_state(key) is not None:
            raise TransactionError(f"{domain} already submitted its update for round {number} of task {task.task_id}")
        task_key = stub.get_state(stub.create_composite_key(KEY_KEY, [task.task_id, domain]))
        if task_key is None:
            raise TransactionError(f"task {task.task_id} has no key for {domain} yet")
        public_key = _public_key(load_json(TaskKey, task_key, "task key").public_key, "task key")
        try:
            public_key.verify(base64.b64decode(document["signature"]), signed_update_fields(document),
                              ec.ECDSA(hashes.SHA256()))
        except (InvalidSignature, ValueError):
            raise TransactionError(f"invalid update: the signature does not verify with {domain}'s key for task "
                                   f"{task.task_id}") from None
        update = FlUpdate(
            **{name: document[name] for name in _UPDATE_RULES if name not in ("loss", "accuracy")},
            loss=float(document["loss"]),
            accuracy=float(document["accuracy"]),
            owner_msp=ctx.client_identity.msp_id,
            recorded_at=iso_millis(stub.get_tx_timestamp()),
            tx_id=stub.get_tx_id(),
        )
        stub.put_state(key, canonical_json(update))
        return update

    @transaction
    def RecordAggregation(self, ctx: TransactionContext, aggregation_json: str) -> FlAggregation:
        """Record the current round's aggregation over updates recorded for it; moves the task to the next round.

        Roles: any identity of the task's publisher domain (the aggregator)."""
        document = parse_document(aggregation_json, "aggregation")
        check_fields(document, _AGGREGATION_RULES, "aggregation")
        stub = ctx.stub
        task = _load_task(stub, document["task_id"])
        require_domain(ctx.client_identity, task.publisher_domain, f"aggregate task {task.task_id}")
        if task.status != "training":
            raise TransactionError(f"task {task.task_id} is complete")
        if document["round"] != task.round:
            invalid_field("aggregation", "round", f"must be the task's current round {task.round}")
        if document["aggregator"] != task.aggregator:
            invalid_field("aggregation", "aggregator", f"must be the task's aggregator {task.aggregator}")
        names = document["updates"]
        if len(set(names)) != len(names):
            invalid_field("aggregation", "updates", "must not name a domain twice")
        recorded = {update.domain: update for update in _updates(stub, task.task_id, task.round)}
        missing = sorted(set(names) - set(recorded))
        if missing:
            invalid_field("aggregation", "updates", f"names {', '.join(missing)}: no update of round {task.round}")
        used = [UsedUpdate(d, recorded[d].weights_sha256, recorded[d].ciphertext_sha256, recorded[d].n_samples,
                           recorded[d].tx_id) for d in sorted(names)]
        accuracy = float(document["accuracy"])
        completes = task.round == task.rounds or accuracy >= task.target_accuracy
        now = iso_millis(stub.get_tx_timestamp())
        aggregation = FlAggregation(task.task_id, task.round, document["global_sha256"],
                                    document["global_ciphertext_sha256"], task.aggregator, used,
                                    accuracy, float(document["loss"]), ctx.client_identity.msp_id, now,
                                    stub.get_tx_id(), completes)
        stub.put_state(stub.create_composite_key(AGGREGATION_KEY, [task.task_id, f"{task.round:06d}"]),
                       canonical_json(aggregation))
        moved = replace(task, round=task.round + 1, global_sha256=aggregation.global_sha256, accuracy=accuracy,
                        status="complete" if completes else "training")
        stub.put_state(stub.create_composite_key(TASK_KEY, [task.task_id]), canonical_json(moved))
        stub.set_event(ROUND_AGGREGATED_EVENT, canonical_json(
            {"task_id": task.task_id, "round": task.round, "global_sha256": aggregation.global_sha256}))
        return aggregation

    @transaction(evaluate=True)
    def GetTask(self, ctx: TransactionContext, task_id: str) -> FlTask:
        check_argument("task_id", task_id, ID_RULE)
        return _load_task(ctx.stub, task_id)

    @transaction(evaluate=True)
    def GetTaskKey(self, ctx: TransactionContext, task_id: str, domain: str) -> TaskKey:
        check_argument("task_id", task_id, ID_RULE)
        check_argument("domain", domain, DOMAIN_RULE)
        data = ctx.stub.get_state(ctx.stub.create_composite_key(KEY_KEY, [task_id, domain]))
        if data is None:
            raise TransactionError(f"task {task_id} has no key for {domain}")
        return load_json(TaskKey, data, "task key")

    @transaction(evaluate=True)
    def ListUpdates(self, ctx: TransactionContext, task_id: str, round: int) -> list[FlUpdate]:
        """The updates recorded for a round, in domain order."""
        check_argument("task_id", task_id, ID_RULE)
        check_argument("round", round, integer_in(1, MAX_ROUNDS))
        _load_task(ctx.stub, task_id)
        return _updates(ctx.stub, task_id, round)

    @transaction(evaluate=True)
    def ListAggregations(self, ctx: TransactionContext, task_id: str) -> list[FlAggregation]:
        """Every aggregation of the task, in round order."""
        check_argument("task_id", task_id, ID_RULE)
        _load_task(ctx.stub, task_id)
        entries, _ = read_range(ctx.stub, AGGREGATION_KEY, [task_id])
        return [load_json(FlAggregation, entry.value, "aggregation") for entry in entries]


def _load_task(stub: ChaincodeStub, task_id: str) -> FlTask:
    data = stub.get_state(stub.create_composite_key(TASK_KEY, [task_id]))
    if data is None:
        raise TransactionError(f"task {task_id} not found")
    return load_json(FlTask, data, "task")


def _updates(stub: ChaincodeStub, task_id: str, number: int) -> list[FlUpdate]:
    entries, _ = read_range(stub, UPDATE_KEY, [task_id, f"{number:06d}"])
    return [load_json(FlUpdate, entry.value, "update") for entry in entries]


def _public_key(pem: str, what: str) -> ec.EllipticCurvePublicKey:
    try:
        key = serialization.load_pem_public_key(pem.encode())
    except ValueError:
        raise TransactionError(f"invalid {what}: field 'public_key' is not a readable PEM public key") from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
        raise TransactionError(f"invalid {what}: field 'public_key' must be an ECDSA P-256 key")
    return key
