"""The fl contract of one channel, from the client side: one method per transaction, answers as dicts."""

from __future__ import annotations

import json
from typing import Any

from medfabric.consortium.topology import CHAINCODE_NAME
from medfabric.gateway import Network

FL_CONTRACT = "fl"


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
        return json.loads(self._contract.submit_transaction(name, json.dumps(document)))

    def _evaluate(self, name: str, *arguments: str) -> Any:
        return json.loads(self._contract.evaluate_transaction(name, *arguments))
