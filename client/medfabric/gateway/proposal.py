"""A transaction proposal: evaluated as a query, or endorsed into a transaction."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fabric_protos.common import common_pb2
from fabric_protos.gateway import gateway_pb2
from fabric_protos.peer import proposal_pb2

from .signing import Signable
from .transaction import Transaction

if TYPE_CHECKING:
    from .client import GatewayClient
    from .signing import SigningIdentity


class Proposal(Signable):
    """A proposal for one transaction id; made by Contract.new_proposal().

        >>> proposal = contract.new_proposal("CreateAsset", arguments=["asset7", "blue"])
        >>> transaction = proposal.endorse()
        >>> transaction.transaction_id == proposal.transaction_id
        True
    """

    def __init__(
        self, client: GatewayClient, signing_identity: SigningIdentity, proposed: gateway_pb2.ProposedTransaction
    ):
        super().__init__(signing_identity, proposed, proposed.proposal, "proposal_bytes")
        self._client = client
        self._proposed = proposed
        header = common_pb2.Header.FromString(proposal_pb2.Proposal.FromString(proposed.proposal.proposal_bytes).header)
        self._channel_name = common_pb2.ChannelHeader.FromString(header.channel_header).channel_id

    @property
    def transaction_id(self) -> str:
        return self._proposed.transaction_id

    def evaluate(self, *, timeout: float | None = None) -> bytes:
        """Run the transaction function on a peer without ordering it; its result. Raises GatewayError."""
        self._sign()
        request = gateway_pb2.EvaluateRequest(
            transaction_id=self.transaction_id,
            channel_id=self._channel_name,
            proposed_transaction=self._proposed.proposal,
            target_organizations=self._proposed.endorsing_organizations,
        )
        return self._client.evaluate(request, timeout).result.payload

    def endorse(self, *, timeout: float | None = None) -> Transaction:
        """Have the peers the endorsement policy needs endorse it. Raises EndorseError."""
        self._sign()
        request = gateway_pb2.EndorseRequest(
            transaction_id=self.transaction_id,
            channel_id=self._channel_name,
            proposed_transaction=self._proposed.proposal,
            endorsing_organizations=self._proposed.endorsing_organizations,
        )
        response = self._client.endorse(request, timeout)
        prepared = gateway_pb2.PreparedTransaction(
            transaction_id=self.transaction_id, envelope=response.prepared_transaction
        )
        return Transaction(self._client, self._signing_identity, prepared)
