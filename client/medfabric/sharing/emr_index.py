"""The emr_index contract seen from the client: typed calls, JSON in and out."""

from __future__ import annotations

import json
from typing import Any

from medfabric.consortium.topology import CHAINCODE_NAME
from medfabric.gateway import GatewayError, Network

CONTRACT_NAME = "emr_index"


class EmrIndex:
    """Index entries of EMRs on one channel.

        >>> index = EmrIndex(gateway.get_network("public"))
        >>> index.put({"record_id": "rec-1", ...})["version"]
        1
    """

    def __init__(self, network: Network, chaincode_name: str = CHAINCODE_NAME):
        self._contract = network.get_contract(chaincode_name, CONTRACT_NAME)

    def put(self, entry: dict[str, Any]) -> dict[str, Any]:
        """Record a new index entry; returns it as stored (owner, times, version added)."""
        payload = json.dumps(entry, sort_keys=True, separators=(",", ":"))
        return json.loads(self._contract.submit_transaction("PutRecord", payload))

    def get(self, record_id: str) -> dict[str, Any]:
        return json.loads(self._contract.evaluate_transaction("GetRecord", record_id))

    def find(self, record_id: str) -> dict[str, Any] | None:
        """The entry, or None when the channel has none (the contract answers "record <id> not found")."""
        try:
            return self.get(record_id)
        except GatewayError as error:
            if f"record {record_id} not found" in str(error):
                return None
            raise

    def erase(self, record_id: str, reason: str) -> dict[str, Any]:
        """Turn the caller's entry into a tombstone; returns it. The reason is logged: never personal data."""
        return json.loads(self._contract.submit_transaction("EraseRecord", record_id, reason))

    def list_by_patient(self, patient: str, page_size: int = 0, bookmark: str = "") -> dict[str, Any]:
        """One page of a patient's entries: {"records": [...], "bookmark": "..."}."""
        result = self._contract.evaluate_transaction(
            "ListRecordsByPatient", patient, str(page_size), bookmark
        )
        return json.loads(result)
