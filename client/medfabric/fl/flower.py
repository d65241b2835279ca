"""Flower on the ledger: a Strategy that aggregates with ours and records every round, and a client wrapper that
records each update, so that a Flower user keeps its own client code and its own server loop.

    strategy = LedgerStrategy(publisher_session, task_id)               # the task published with fl task create
    flwr.server.start_server(server_address=..., config=ServerConfig(num_rounds=30), strategy=strategy)
    flwr.client.start_client(server_address=..., client=LedgerClient(my_numpy_client, session, task_id).to_client())

A model is a list of numpy arrays (Flower's parameters); on the ledger it is their concatenation, one float64
vector of the task's size, in the order the client gives them (for logistic regression: coefficients, then the
intercept). The clients' fit must report "loss" and "accuracy" metrics: the ledger records them. The strategy
aggregates from the ledger and the data services, not from what came over Flower's wire, and checks that the two
agree; after the task completes (its target reached), it selects no more clients.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from flwr.client import NumPyClient
from flwr.common import FitIns, FitRes, Parameters, Scalar, ndarrays_to_parameters, parameters_to_ndarrays
from flwr.server.client_manager import ClientManager
from flwr.server.client_proxy import ClientProxy
from flwr.server.strategy import Strategy

from medfabric.fl import flow, weights
from medfabric.sharing.session import Session

REQUIRED_METRICS = ("loss", "accuracy")


class FlowerLedgerError(flow.FlError):
    """Flower and the ledger disagree, or a client does not give what the ledger records; one line."""


def flatten(arrays: list[np.ndarray]) -> np.ndarray:
    return np.concatenate([np.asarray(a, dtype=np.float64).ravel() for a in arrays])


def unflatten(vector: np.ndarray, like: list[np.ndarray]) -> list[np.ndarray]:
    """`vector` cut into arrays of the shapes of `like`."""
    sizes = [int(np.prod(a.shape)) for a in like]
    if sum(sizes) != vector.size:
        raise FlowerLedgerError(f"a model of {vector.size} values does not fit arrays of {sum(sizes)}")
    pieces = np.split(vector, np.cumsum(sizes)[:-1])
    return [piece.reshape(a.shape).astype(a.dtype) for piece, a in zip(pieces, like)]


class LedgerClient(NumPyClient):
    """A Flower user's NumPyClient, unchanged, whose every fit is recorded as its domain's update of the round."""

    def __init__(self, client: NumPyClient, session: Session, task_id: str):
        self._client = client
        self._session = session
        self._task_id = task_id

    def get_parameters(self, config: dict[str, Scalar]) -> list[np.ndarray]:
        return self._client.get_parameters(config)

    def fit(self, parameters: list[np.ndarray], config: dict[str, Scalar]):
        arrays, n_samples, metrics = self._client.fit(parameters, config)
        missing = [name for name in REQUIRED_METRICS if name not in metrics]
        if missing:
            raise FlowerLedgerError(f"the client's fit must report {', '.join(missing)} in its metrics: the ledger "
                                    "records them with the update")
        number = int(config["round"])
        task = flow.task_at_round(self._session, self._task_id, number)
        if weights.weights_sha256(flatten(parameters)) != task["global_sha256"]:
            raise FlowerLedgerError(f"round {number}: the parameters Flower sent are not the global weights task "
                                    f"{self._task_id} records")
        update = flow.record_update(self._session, task, number, flatten(arrays), int(n_samples),
                                    float(metrics["loss"]), float(metrics["accuracy"]))
        return arrays, n_samples, {**metrics, "domain": self._session.domain.id, "update_tx": update["tx_id"]}

    def evaluate(self, parameters: list[np.ndarray], config: dict[str, Scalar]):
        return self._client.evaluate(parameters, config)


class LedgerStrategy(Strategy):
    """Every round: all of the task's domains train; their recorded updates are fetched, checked against what
    Flower received, aggregated with the task's aggregator and recorded by the publisher (`session`)."""

    def __init__(self, session: Session, task_id: str, initial_parameters: list[np.ndarray]):
        self._session = session
        self._task_id = task_id
        self._like = [np.asarray(a) for a in initial_parameters]
        task = flow.find_task(session, task_id)
        if weights.weights_sha256(flatten(self._like)) != task["initial_weights_sha256"]:
            raise FlowerLedgerError(f"the initial parameters are not the initial weights task {task_id} records")
        self.rounds: list[dict[str, Any]] = []  # the recorded aggregations, in order

    def initialize_parameters(self, client_manager: ClientManager) -> Parameters | None:
        return ndarrays_to_parameters(self._like)

    def configure_fit(self, server_round: int, parameters: Parameters, client_manager: ClientManager):
        task = flow.find_task(self._session, self._task_id)
        if task["status"] != "training":
            return []  # complete: Flower's loop goes on, selecting no one
        if task["round"] != server_round:
            raise FlowerLedgerError(f"Flower is at round {server_round}, task {self._task_id} at {task['round']}")
        count = len(task["domains"])
        clients = client_manager.sample(num_clients=count, min_num_clients=count)
        config = {"task_id": self._task_id, "round": server_round}
        return [(client, FitIns(parameters, config)) for client in clients]

    def aggregate_fit(self, server_round: int, results: list[tuple[ClientProxy, FitRes]], failures: list[Any]):
        if failures:
            raise FlowerLedgerError(f"round {server_round}: {len(failures)} clients failed")
        task = flow.find_task(self._session, self._task_id)
        recorded = {u["domain"]: u for u in flow.fl_tasks(self._session).updates(self._task_id, server_round)}
        for _client, result in results:
            domain = str(result.metrics.get("domain"))
            update = recorded.get(domain)
            if update is None or update["tx_id"] != result.metrics.get("update_tx"):
                raise FlowerLedgerError(f"round {server_round}: {domain}'s update is not the one the ledger records")
            received = weights.weights_sha256(flatten(parameters_to_ndarrays(result.parameters)))
            if received != update["weights_sha256"]:
                raise FlowerLedgerError(f"round {server_round}: what {domain} sent over Flower is not its recorded "
                                        "update")
        aggregation, combined = flow.aggregate_round(self._session, task["task_id"])
        self.rounds.append(aggregation)
        metrics = {"accuracy": aggregation["accuracy"], "loss": aggregation["loss"],
                   "global_sha256": aggregation["global_sha256"]}
        return ndarrays_to_parameters(unflatten(combined, self._like)), metrics

    def configure_evaluate(self, server_round: int, parameters: Parameters, client_manager: ClientManager):
        return []

    def aggregate_evaluate(self, server_round: int, results: list[Any], failures: list[Any]):
        return None, {}

    def evaluate(self, server_round: int, parameters: Parameters):
        return None
