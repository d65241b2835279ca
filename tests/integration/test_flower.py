"""Flower drives federated learning on the real consortium: its own server loop and clients, a Flower user's own
client code, our strategy and client wrapper recording every round on the ledger."""

from __future__ import annotations

import socket
import threading
import time
from contextlib import ExitStack

import numpy as np
import pytest
from flwr.client import NumPyClient, start_client
from flwr.server import ServerConfig, start_server

from medfabric.fl import data, flow
from medfabric.fl.flower import LedgerClient, LedgerStrategy

from .fl_sessions import participants

pytestmark = pytest.mark.integration


class UsersClient(NumPyClient):
    """A Flower user's own logistic regression (coefficients and intercept), with nothing of MedFabric in it."""

    def __init__(self, features, labels, learning_rate: float, epochs: int):
        self.features, self.labels, self.learning_rate, self.epochs = features, labels, learning_rate, epochs

    def get_parameters(self, config):
        return [np.zeros(self.features.shape[1]), np.zeros(1)]

    def _probabilities(self, coef, intercept):
        return 1 / (1 + np.exp(-(self.features @ coef + intercept[0])))

    def fit(self, parameters, config):
        coef, intercept = (np.array(p, dtype=float) for p in parameters)
        for _ in range(self.epochs):
            error = self._probabilities(coef, intercept) - self.labels
            coef = coef - self.learning_rate * (self.features.T @ error / len(self.labels) + 1e-4 * coef)
            intercept = intercept - self.learning_rate * np.array([np.mean(error)])
        p = np.clip(self._probabilities(coef, intercept), 1e-12, 1 - 1e-12)
        loss = float(-np.mean(self.labels * np.log(p) + (1 - self.labels) * np.log(1 - p)))
        return [coef, intercept], len(self.labels), {"loss": loss,
                                                      "accuracy": float(np.mean((p >= 0.5) == (self.labels == 1)))}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_port(port: int, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)


def test_flowers_own_loop_records_every_round_on_the_ledger(consortium):
    _topology, layout, _env = consortium
    with ExitStack() as stack:
        sessions = participants(consortium, stack)
        domains = list(sessions)
        task = flow.create_task(sessions[domains[0]], flow.TaskSpec(f"flower-{time.time_ns()}", domains, rounds=12,
                                                                    target_accuracy=0.99))
        scaler = flow.scaler_of(task)
        port = free_port()
        errors: list[BaseException] = []

        def run_client(domain: str) -> None:
            share = data.load_share(layout.fl_data(domain))
            users = UsersClient(scaler.apply(share.features), share.labels, task["learning_rate"], task["epochs"])
            wait_for_port(port)
            try:
                start_client(server_address=f"127.0.0.1:{port}", insecure=True,
                             client=LedgerClient(users, sessions[domain], task["task_id"]).to_client())
            except BaseException as error:  # noqa: BLE001 - reported by the test below
                errors.append(error)

        clients = [threading.Thread(target=run_client, args=(d,), daemon=True) for d in domains]
        for thread in clients:
            thread.start()
        strategy = LedgerStrategy(sessions[domains[0]], task["task_id"], [np.zeros(30), np.zeros(1)])
        history = start_server(server_address=f"127.0.0.1:{port}", config=ServerConfig(num_rounds=12),
                               strategy=strategy)
        for thread in clients:
            thread.join(30)

        assert errors == []
        recorded = flow.fl_tasks(sessions["hospital-b"]).aggregations(task["task_id"])
        assert [a["round"] for a in recorded] == [a["round"] for a in strategy.rounds] == list(range(1, 9))
        assert recorded[-1]["completes"] and recorded[-1]["accuracy"] >= 0.99  # target reached: Flower's later rounds select no one
        assert all(check.matches for check in flow.verify(sessions[domains[0]], task["task_id"]))
        flowers = history.metrics_distributed_fit["global_sha256"]  # what Flower's own history kept of each round
        assert flowers == [(a["round"], a["global_sha256"]) for a in recorded]
