"""The fl contract of one channel, from the client side: one method per transaction, answers as dicts."""

from __future__ import annotations

import json
import re
from typing import Any

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

    def task_key(self, task_id: str, domain: str) -> dict[str, Any]:
        return self._evaluate("GetTaskKey", task_id, domain)

    def updates(self, task_id: str, round_number: int) -> list[dict[str, Any]]:
        return self._evaluate("ListUpdates", task_id, str(round_number))

    def aggregations(self, task_id: str) -> list[dict[str, Any]]:
        return self._evaluate("ListAggregations", task_id)

    def _submit(self, name: str, document: dict[str, Any]) -> Any:
        """Submit; while an endorser refuses because it has not yet committed what this one has (the last
        transaction committed on this peer only), ask again, for up to LAG_WAIT seconds."""
        refusals: list[GatewayError] = []

        def attempt() -> Any:
            try:
                return json.loads(self._contract.submit_transaction(name, json.dumps(document)))
            except GatewayError as error:
                if not _behind(str(error), document):
                    raise
                refusals.append(error)
                return None

        answer = awaited(attempt, LAG_WAIT)
        if answer is None:
            raise refusals[-1]
        return answer

    def _evaluate(self, name: str, *arguments: str) -> Any:
        return json.loads(self._contract.evaluate_transaction(name, *arguments))


def _behind(message: str, document: dict[str, Any]) -> bool:
    """Whether a refusal says an endorser is behind: it does not know yet what was committed here."""
    if "chaincode response" not in message:
        return False
    if any(marker in message for marker in _LAGGING):
        return True
    rounds = [int(found) for found in _CURRENT_ROUND.findall(message)]
    return bool(rounds) and all(found < document.get("round", 0) for found in rounds)
