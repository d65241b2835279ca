"""Federated learning on the consortium: publish a task, train a round, aggregate it, run them all, verify.

Every step is a Session (a domain's user on its Gateway). Updates and global
weights travel like EMRs: sealed, stored in the owner's data service as
fl:<task>:<round>:<domain|global>, fetched with a signed request the data
service checks against the fl contract, opened only if the ciphertext and the
weights hash as the ledger records them. So `aggregate` needs nothing but the
ledger and the stored updates, and `verify` re-runs every aggregation from
them, bit for bit.
"""

from __future__ import annotations

import base64
import hashlib
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from medfabric.consortium.layout import NetworkLayout
from medfabric.crypto import canonical_json, seal
from medfabric.data_service.client import DataServiceError
from medfabric.data_service.delivery import DeliveryRejected, open_delivery
from medfabric.errors import MedfabricError
from medfabric.fl import data, model, task_keys, weights
from medfabric.fl.aggregators import AggregationError, ModelUpdate, aggregator
from medfabric.fl.records import GLOBAL, TASK_ID, FlRecordId
from medfabric.fl.tasks import FlTasks
from medfabric.fl.training import DEFAULT_EPOCHS, DEFAULT_LEARNING_RATE, local_round
from medfabric.gateway import GatewayError
from medfabric.polling import awaited
from medfabric.sharing.emr import store_sealed
from medfabric.sharing.session import Session

FL_USER = "researcher"  # each domain's participant: its per-task key is wrapped for this user's certificate
INITIAL_LOCATION = "medfabric:zeros"  # the initial weights are zeros: anyone rebuilds them from the task
TEST_SHARE = "test"
PROPAGATION_WAIT = 5.0  # seconds a record committed on another domain's peer may take to reach ours


class FlError(MedfabricError):
    """A federated-learning step that cannot go on; one line naming why."""


@dataclass(frozen=True)
class TaskSpec:
    task_id: str
    domains: Sequence[str]
    rounds: int = 30
    target_accuracy: float = 0.95
    aggregator: str = "fedavg"
    learning_rate: float = DEFAULT_LEARNING_RATE
    epochs: int = DEFAULT_EPOCHS
    max_samples: int = 0
    model: str = "logreg"


def prepare_data(layout: NetworkLayout, domains: Sequence[str], publisher: str, seed: int = data.DEFAULT_SEED
                 ) -> dict[str, int]:
    """Write each domain's share of the breast-cancer split into its own folder, and the held-out test share into
    the publisher's; the share sizes. Existing shares are rewritten only from the same seed's split."""
    split = data.split(sorted(domains), seed=seed)
    for domain, share in split.shares.items():
        data.save_share(layout.fl_data(domain), share)
    data.save_share(layout.fl_data(publisher) / TEST_SHARE, split.test)
    return {domain: len(share) for domain, share in split.shares.items()} | {TEST_SHARE: len(split.test)}


def ensure_data(layout: NetworkLayout, domains: Sequence[str], publisher: str, seed: int = data.DEFAULT_SEED
                ) -> dict[str, int] | None:
    """prepare_data() unless every domain's share and the publisher's test share are there; the sizes written,
    None when nothing was."""
    folders = [layout.fl_data(domain) for domain in {*domains, publisher}] + [layout.fl_data(publisher) / TEST_SHARE]
    if all((folder / data.SHARE_FILE).is_file() for folder in folders):
        return None
    return prepare_data(layout, domains, publisher, seed)


def create_task(session: Session, spec: TaskSpec) -> dict[str, Any]:
    """Publish `spec` from the session's domain: the task (scaler from the publisher's own share, zero initial
    weights), then a per-task key for each domain, wrapped for its participant."""
    if not TASK_ID.fullmatch(spec.task_id):
        raise FlError(f"task id {spec.task_id!r} must be 1-96 characters of A-Z a-z 0-9 . _ -")
    unknown = sorted(set(spec.domains) - {domain.id for domain in session.topology.domains})
    if unknown:
        raise FlError(f"no domain {', '.join(unknown)} in this consortium")
    try:
        aggregator(spec.aggregator)
    except AggregationError as error:
        raise FlError(str(error)) from None
    own = data.load_share(session.layout.fl_data(session.domain.id))
    scaler = model.Scaler.fit(own.features)
    initial = model.initial_weights(own.features.shape[1])
    tasks = fl_tasks(session)
    task = tasks.create({
        "task_id": spec.task_id, "publisher_domain": session.domain.id, "model": spec.model,
        "features": int(own.features.shape[1]), "scaler_mean": list(scaler.mean), "scaler_scale": list(scaler.scale),
        "initial_weights_sha256": weights.weights_sha256(initial), "initial_location": INITIAL_LOCATION,
        "learning_rate": spec.learning_rate, "epochs": spec.epochs, "rounds": spec.rounds,
        "target_accuracy": spec.target_accuracy, "domains": sorted(spec.domains), "aggregator": spec.aggregator,
        "max_samples": spec.max_samples,
    })
    for domain_id in task["domains"]:
        domain = session.topology.domain(domain_id)
        certificate_pem = session.layout.user_signcert(domain, FL_USER).read_bytes()
        key = task_keys.new_task_key()
        tasks.issue_key({"task_id": task["task_id"], "domain": domain_id, "public_key": task_keys.public_pem(key),
                         "wrapped_private_key": task_keys.wrapped_for(key, task["task_id"], domain_id, certificate_pem)})
    return task


def fl_tasks(session: Session) -> FlTasks:
    return FlTasks(session.gateway.get_network(session.public_channel), session.topology.chaincode.name)


def find_task(session: Session, task_id: str) -> dict[str, Any]:
    try:
        return fl_tasks(session).task(task_id)
    except GatewayError as error:
        if f"task {task_id} not found" in str(error):
            raise FlError(f"task {task_id} not found on {session.public_channel}") from None
        raise


def task_at_round(session: Session, task_id: str, round_number: int) -> dict[str, Any]:
    """The task once this session's peer has it at `round_number` (it may be a block behind the aggregation before
    it); FlError when it is at another round."""
    task = find_task(session, task_id)
    if task["round"] < round_number and task["status"] == "training":
        task = awaited(lambda: (t if (t := find_task(session, task_id))["round"] >= round_number else None),
                       PROPAGATION_WAIT) or task
    if task["round"] != round_number:
        raise FlError(f"task {task_id} is at round {task['round']}, not {round_number}")
    return task


def scaler_of(task: dict[str, Any]) -> model.Scaler:
    return model.Scaler(tuple(task["scaler_mean"]), tuple(task["scaler_scale"]))


def train(session: Session, task_id: str, attack: str | None = None, round_number: int | None = None
          ) -> dict[str, Any]:
    """One round of local training for the session's domain: from the current global weights, on its own share;
    the update sealed into its data service, signed with its per-task key and recorded. `round_number`: the round
    meant, waited for while this peer catches up with the aggregation before it. `attack` poisons the update
    (medfabric.fl.training.ATTACKS), for experiments."""
    started = time.perf_counter()
    task = find_task(session, task_id) if round_number is None else task_at_round(session, task_id, round_number)
    domain = session.domain.id
    if task["status"] != "training":
        raise FlError(f"task {task_id} is complete")
    if domain not in task["domains"]:
        raise FlError(f"{domain} does not take part in task {task_id} ({', '.join(task['domains'])})")
    number = task["round"]
    tasks = fl_tasks(session)
    if any(update["domain"] == domain for update in tasks.updates(task_id, number)):
        raise FlError(f"{domain} already submitted its update for round {number} of task {task_id}")
    current = global_weights(session, task, number - 1)
    share = data.load_share(session.layout.fl_data(domain))
    fetched = time.perf_counter()
    result = local_round(domain, share, scaler_of(task), current, task["learning_rate"], task["epochs"], attack)
    trained = time.perf_counter()
    update = record_update(session, task, number, result.update.weights, result.update.n_samples, result.loss,
                           result.accuracy)
    done = time.perf_counter()
    return {**update, "seconds": {"fetch": fetched - started, "train": trained - fetched, "record": done - trained}}


def record_update(session: Session, task: dict[str, Any], number: int, trained: np.ndarray, n_samples: int,
                  loss: float, accuracy: float) -> dict[str, Any]:
    """The session's domain's update of round `number`: sealed into its data service, signed with its per-task
    key, recorded; the stored copy erased again when the record fails. Returns the recorded update."""
    task_id, domain = task["task_id"], session.domain.id
    tasks = fl_tasks(session)
    signing_key = task_keys.unwrapped(tasks.task_key(task_id, domain), session.credentials)
    record_id = str(FlRecordId(task_id, number, domain))
    plaintext = weights.to_bytes(trained)
    sealed = seal(plaintext, aad=record_id.encode())
    service = session.data_service(domain)
    store_sealed(session, service, record_id, sealed)
    document = {"task_id": task_id, "round": number, "domain": domain,
                "weights_sha256": hashlib.sha256(plaintext).hexdigest(), "ciphertext_sha256": sealed.ciphertext_sha256,
                "location": f"medfabric://{domain}/{record_id}", "n_samples": n_samples, "loss": float(loss),
                "accuracy": float(accuracy)}
    signature = signing_key.sign(canonical_json(document), ec.ECDSA(hashes.SHA256()))
    try:
        return tasks.submit_update({**document, "signature": base64.b64encode(signature).decode()})
    except GatewayError as error:
        _erase(session, service, record_id)
        raise FlError(f"recording the update of {domain} for round {number} failed ({error}); its stored copy "
                      "was erased") from None


def _erase(session: Session, service, record_id: str) -> None:
    try:
        service.erase(record_id, session.signed(action="erase", record_id=record_id))
    except DataServiceError:
        pass  # the update was never recorded: a stray stored copy is unreachable through the fl contract


def global_weights(session: Session, task: dict[str, Any], after_round: int) -> np.ndarray:
    """The global weights after `after_round` (0: the initial ones), checked against their recorded hash."""
    if after_round == 0:
        initial = model.initial_weights(task["features"])
        if weights.weights_sha256(initial) != task["initial_weights_sha256"]:
            raise FlError(f"task {task['task_id']} names initial weights other than zeros: not supported")
        return initial
    aggregation = _aggregation(session, task, after_round)
    record_id = str(FlRecordId(task["task_id"], after_round, GLOBAL))
    entry = {"record_id": record_id, "ciphertext_sha256": aggregation["global_ciphertext_sha256"],
             "plaintext_sha256": aggregation["global_sha256"], "owner_msp": task["publisher_msp"]}
    return _fetch_weights(session, task["publisher_domain"], entry, aggregation["tx_id"], "global weights")


def _aggregation(session: Session, task: dict[str, Any], number: int) -> dict[str, Any]:
    tasks = fl_tasks(session)
    found = awaited(lambda: next((a for a in tasks.aggregations(task["task_id"]) if a["round"] == number), None),
                    PROPAGATION_WAIT)
    if found is None:
        raise FlError(f"task {task['task_id']} has no aggregation of round {number}")
    return found


def _fetch_weights(session: Session, owner_domain: str, entry: dict[str, Any], record_tx: str,
                   what: str) -> np.ndarray:
    record_id = entry["record_id"]
    try:
        delivery = session.data_service(owner_domain).fetch(
            record_id, session.signed(action="fetch", record_id=record_id))
        plaintext = open_delivery(delivery, entry, record_tx, session.credentials, session.ca_pems(entry["owner_msp"]))
        return weights.from_bytes(plaintext)
    except (DataServiceError, DeliveryRejected, weights.WeightsError) as error:
        raise FlError(f"the {what} {record_id} of {owner_domain} fails its check: {error}") from None


def fetch_updates(session: Session, task: dict[str, Any], updates: Sequence[dict[str, Any]]) -> list[ModelUpdate]:
    """Each recorded update fetched from its domain's data service (all at once), checked against the ledger."""
    def fetch(update: dict[str, Any]) -> ModelUpdate:
        record_id = str(FlRecordId(task["task_id"], update["round"], update["domain"]))
        entry = {"record_id": record_id, "ciphertext_sha256": update["ciphertext_sha256"],
                 "plaintext_sha256": update["weights_sha256"], "owner_msp": update["owner_msp"]}
        values = _fetch_weights(session, update["domain"], entry, update["tx_id"], "update")
        return ModelUpdate(update["domain"], values, update["n_samples"])

    ordered = sorted(updates, key=lambda u: u["domain"])
    with ThreadPoolExecutor(max_workers=max(1, len(ordered))) as pool:
        return list(pool.map(fetch, ordered))


def aggregate(session: Session, task_id: str, partial: bool = False) -> dict[str, Any]:
    """Aggregate the current round as the task's publisher: fetch and check every recorded update, combine them,
    evaluate on the held-out test share, store the global weights, record the aggregation."""
    return aggregate_round(session, task_id, partial)[0]


def aggregate_round(session: Session, task_id: str, partial: bool = False) -> tuple[dict[str, Any], np.ndarray]:
    """aggregate(), and the new global weights."""
    started = time.perf_counter()
    task = find_task(session, task_id)
    if session.domain.id != task["publisher_domain"]:
        raise FlError(f"only {task['publisher_domain']}, the publisher of task {task_id}, aggregates it")
    if task["status"] != "training":
        raise FlError(f"task {task_id} is complete")
    number = task["round"]
    tasks = fl_tasks(session)

    def all_recorded() -> list[dict[str, Any]] | None:
        found = tasks.updates(task_id, number)
        return found if {u["domain"] for u in found} >= set(task["domains"]) else None

    # an update commits first on its domain's peer: give this peer a moment to catch up
    recorded = awaited(all_recorded, PROPAGATION_WAIT) or tasks.updates(task_id, number)
    missing = sorted(set(task["domains"]) - {u["domain"] for u in recorded})
    if not recorded or (missing and not partial):
        raise FlError(f"round {number} of task {task_id} waits for the updates of {', '.join(missing)}")
    updates = fetch_updates(session, task, recorded)
    fetched = time.perf_counter()
    try:
        combined = aggregator(task["aggregator"], task["max_samples"]).aggregate(updates)
    except AggregationError as error:
        raise FlError(f"round {number} of task {task_id}: {error}") from None
    test = data.load_share(session.layout.fl_data(session.domain.id) / TEST_SHARE)
    features = scaler_of(task).apply(test.features)
    accuracy, loss = model.accuracy(combined, features, test.labels), model.loss(combined, features, test.labels)
    aggregated = time.perf_counter()
    record_id = str(FlRecordId(task_id, number, GLOBAL))
    plaintext = weights.to_bytes(combined)
    sealed = seal(plaintext, aad=record_id.encode())
    service = session.data_service(session.domain.id)
    store_sealed(session, service, record_id, sealed)
    try:
        aggregation = fl_tasks(session).record_aggregation({
            "task_id": task_id, "round": number, "global_sha256": hashlib.sha256(plaintext).hexdigest(),
            "global_ciphertext_sha256": sealed.ciphertext_sha256, "updates": [u.domain for u in updates],
            "aggregator": task["aggregator"], "accuracy": accuracy, "loss": loss,
        })
    except GatewayError as error:
        _erase(session, service, record_id)
        raise FlError(f"recording round {number} of task {task_id} failed ({error}); the stored global weights "
                      "were erased") from None
    done = time.perf_counter()
    return {**aggregation, "seconds": {"fetch": fetched - started, "aggregate": aggregated - fetched,
                                       "record": done - aggregated}}, combined


@dataclass(frozen=True)
class RoundCheck:
    round: int
    recorded: str  # the global hash on the ledger
    recomputed: str  # from the fetched updates
    problem: str | None = None  # an update that fails its check, or the aggregator's refusal

    @property
    def matches(self) -> bool:
        return self.problem is None and self.recorded == self.recomputed


def verify(session: Session, task_id: str,
           on_round: Callable[[RoundCheck], None] | None = None) -> list[RoundCheck]:
    """Re-run every recorded aggregation of the task from the ledger and the stored updates: one check per round.
    Needs the publisher's identity (only it may fetch the updates)."""
    task = find_task(session, task_id)
    checks = []
    for aggregation in fl_tasks(session).aggregations(task_id):
        recorded = fl_tasks(session).updates(task_id, aggregation["round"])
        used = {u["domain"] for u in aggregation["updates"]}
        by_tx = {u["tx_id"] for u in aggregation["updates"]}
        chosen = [u for u in recorded if u["domain"] in used]
        check: RoundCheck
        if {u["tx_id"] for u in chosen} != by_tx:
            check = RoundCheck(aggregation["round"], aggregation["global_sha256"], "",
                               "the aggregation names updates the ledger does not hold")
        else:
            try:
                combined = aggregator(task["aggregator"], task["max_samples"]).aggregate(
                    fetch_updates(session, task, chosen))
                check = RoundCheck(aggregation["round"], aggregation["global_sha256"],
                                   weights.weights_sha256(combined))
            except (FlError, AggregationError) as error:
                check = RoundCheck(aggregation["round"], aggregation["global_sha256"], "", str(error))
        checks.append(check)
        if on_round:
            on_round(check)
    return checks


def status(session: Session, task_id: str) -> dict[str, Any]:
    """The task, and per aggregated round: accuracy, loss, contributors and their reported counts."""
    task = find_task(session, task_id)
    rounds = [{"round": a["round"], "accuracy": a["accuracy"], "loss": a["loss"], "global_sha256": a["global_sha256"],
               "contributors": {u["domain"]: u["n_samples"] for u in a["updates"]}}
              for a in fl_tasks(session).aggregations(task_id)]
    return {"task": task, "rounds": rounds}


@dataclass(frozen=True)
class RoundReport:
    round: int
    accuracy: float
    loss: float
    completes: bool
    seconds: float  # the whole round: the domains' training and records (at once), then the aggregation
    phases: dict[str, float]  # train.fetch/train/record: the slowest domain's; aggregate.fetch/aggregate/record


def run(sessions: dict[str, Session], task_id: str, attacks: dict[str, str] | None = None,
        on_round: Callable[[RoundReport], None] | None = None) -> list[RoundReport]:
    """Every remaining round: each taking-part domain trains (through its own session), the publisher aggregates;
    until the task completes. `sessions` holds a session of each domain, the publisher's included."""
    task = find_task(next(iter(sessions.values())), task_id)
    absent = sorted({*task["domains"], task["publisher_domain"]} - set(sessions))
    if absent:
        raise FlError(f"task {task_id} needs a session of {', '.join(absent)}")
    reports = []
    while task["status"] == "training":
        started = time.perf_counter()
        number = task["round"]
        # the hospitals train at once, as they would, each through its own session
        with ThreadPoolExecutor(max_workers=len(task["domains"])) as pool:
            updates = list(pool.map(lambda domain: train(sessions[domain], task_id, (attacks or {}).get(domain),
                                                         round_number=number), task["domains"]))
        aggregation = aggregate(sessions[task["publisher_domain"]], task_id)
        phases = {f"train.{name}": max(u["seconds"][name] for u in updates) for name in updates[0]["seconds"]}
        phases |= {f"aggregate.{name}": value for name, value in aggregation["seconds"].items()}
        report = RoundReport(number, aggregation["accuracy"], aggregation["loss"], aggregation["completes"],
                             time.perf_counter() - started, phases)
        reports.append(report)
        if on_round:
            on_round(report)
        task = {**task, "round": number + 1, "status": "complete" if report.completes else "training"}
    return reports
