"""A channel seen through the Gateway: its contracts and chaincode events."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .contract import Contract
from .events import ChaincodeEvents, ChaincodeEventsRequest, build_chaincode_events_request

if TYPE_CHECKING:
    from .checkpointers import Checkpoint
    from .client import GatewayClient
    from .signing import SigningIdentity


class Network:
    """One channel; obtained with Gateway.get_network(name).

        >>> contract = network.get_contract("basic")
        >>> with network.get_chaincode_events("basic", start_block=0) as events:
        ...     first = next(events)
    """

    def __init__(self, client: GatewayClient, signing_identity: SigningIdentity, name: str):
        self._client = client
        self._signing_identity = signing_identity
        self.name = name

    def get_contract(self, chaincode_name: str, contract_name: str | None = None) -> Contract:
        """A contract of a chaincode; `contract_name` picks one of several in the chaincode."""
        return Contract(self._client, self._signing_identity, self.name, chaincode_name, contract_name)

    def get_chaincode_events(
        self, chaincode_name: str, *, start_block: int | None = None, checkpoint: Checkpoint | None = None
    ) -> ChaincodeEvents:
        """Events of a chaincode: from the checkpoint's position if it has one, else from
        `start_block`, else from the next block committed. Close the stream when done."""
        return self.new_chaincode_events_request(
            chaincode_name, start_block=start_block, checkpoint=checkpoint
        ).get_events()

    def new_chaincode_events_request(
        self, chaincode_name: str, *, start_block: int | None = None, checkpoint: Checkpoint | None = None
    ) -> ChaincodeEventsRequest:
        """The request get_chaincode_events() sends, for offline signing."""
        return build_chaincode_events_request(
            self._client, self._signing_identity, self.name, chaincode_name, start_block, checkpoint
        )
