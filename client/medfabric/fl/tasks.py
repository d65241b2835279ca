"""The fl contract of one channel, from the client side: one method per transaction, answers as dicts."""

from __future__ import annotations

import json
import re
from typing import Any, Callable

from medfabric.consortium.topology import CHAINCODE_NAME
from medfabric.gateway import GatewayError, Network
from medfabric.polling import awaited

FL_CONTRACT = "fl"
LAG_WAIT = 5.0  # seconds another domain's peer may take to commit what this one has
_LAGGING = ("not found", "no update of round", "has no key for")
_CURRENT_ROUND = re.compile(r"must be the task's current round (\d+)")


class FlTasks:
    """Tasks, per-task keys, updates and aggregations on the public channel."""

    def __init__(self, network: Network, chaincode_name: str = CHAINCODE_NAME):
        self._contract = network.get_contract(chaincode_name, FL_CONTRACT)

    def create(self, task: dict[str, Any]) -> dict[str, Any]:
        return self._submit("CreateTask", task)

    def issue_key(self, key: dict[str, Any]) -> dict[str, Any]:
        return self._submit("IssueTaskKey", key)

    def submit_update(self, update: dict[str, Any]) -> dict[str, Any]:
        return self._submit("SubmitUpdate", update)

    def record_aggregation(self, aggregation: dict[str, Any]) -> dict[str, Any]:
        return self._submit("RecordAggregation", aggregation)

    def task(self, task_id: str) -> dict[str, Any]:
        return self._evaluate("GetTask", task_id)

    def task_key(self, task_id: str, domain: str, wait: float = LAG_WAIT) -> dict[str, Any]:
        """The domain's wrapped key of the task; the publisher issues keys after the task, in later blocks, so a
        "has no key" from this peer is asked again for up to `wait` seconds before it is raised."""
        return _asked_again(lambda: self._evaluate("GetTaskKey", task_id, domain),
                            lambda message: "has no key for" in message, wait)

    def updates(self, task_id: str, round_number: int) -> list[dict[str, Any]]:
        return self._evaluate("ListUpdates", task_id, str(round_number))

    def aggregations(self, task_id: str) -> list[dict[str, Any]]:
        return self._evaluate("ListAggregations", task_id)

    def _submit(self, name: str, document: dict[str, Any]) -> Any:
        """Submit; while an endorser refuses because it has not yet committed what this one has (the last
        transaction committed on this peer only), ask again, for up to LAG_WAIT seconds."""
        return _asked_again(lambda: json.loads(self._contract.submit_transaction(name, json.dumps(document))),
                            lambda message: _behind(message, document), LAG_WAIT)

    def _evaluate(self, name: str, *arguments: str) -> Any:
        return json.loads(self._contract.evaluate_transaction(name, *arguments))


def _asked_again(call: Callable[[], Any], lagging: Callable[[str], bool], wait: float) -> Any:
    """call() again while its GatewayError says this peer or an endorser lags, for up to `wait` seconds; then the
    last refusal is raised."""
    refusals: list[GatewayError] = []

    def attempt() -> Any:
        try:
            return call()
        except GatewayError as error:
            if not lagging(str(error)):
                raise
            refusals.append(error)
            return None

    answer = awaited(attempt, wait)
    if answer is None:
        raise refusals[-1]
    return answer


def _behind(message: str, document: dict[str, Any]) -> bool:
    """Whether a refusal says an endorser is behind: it does not know yet what was committed here."""
    if "chaincode response" not in message:
        return False
    if any(marker in message for marker in _LAGGING):
        return True
    rounds = [int(found) for found in _CURRENT_ROUND.findall(message)]
    return bool(rounds) and all(found < document.get("round", 0) for found in rounds)
