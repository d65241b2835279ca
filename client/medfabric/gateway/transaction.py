"""An endorsed transaction, ready to be submitted to the orderers."""

from __future__ import annotations

from typing import TYPE_CHECKING

import grpc
from fabric_protos.common import common_pb2
from fabric_protos.gateway import gateway_pb2
from fabric_protos.peer import proposal_pb2, proposal_response_pb2, transaction_pb2

from .commit import SubmittedTransaction
from .errors import CommitStatusError, SubmitError
from .signing import Signable

if TYPE_CHECKING:
    from .client import GatewayClient
    from .signing import SigningIdentity

# Codes with which the Gateway refuses a Submit before broadcasting it: no orderer has the transaction.
_REFUSED_BEFORE_ORDERING = frozenset({
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.UNAUTHENTICATED,
})


class Transaction(Signable):
    """The prepared transaction the Gateway returned from endorsement.

        >>> transaction = contract.new_proposal("CreateAsset", arguments=["asset8", "red"]).endorse()
        >>> submitted = transaction.submit()
        >>> submitted.get_status().successful
        True
    """

    def __init__(
        self, client: GatewayClient, signing_identity: SigningIdentity, prepared: gateway_pb2.PreparedTransaction
    ):
        super().__init__(signing_identity, prepared, prepared.envelope, "payload")
        self._client = client
        self._prepared = prepared
        payload = common_pb2.Payload.FromString(prepared.envelope.payload)
        self._channel_name = common_pb2.ChannelHeader.FromString(payload.header.channel_header).channel_id
        self.result = _chaincode_result(payload)
        """What the transaction function returned when endorsed."""

    @property
    def transaction_id(self) -> str:
        return self._prepared.transaction_id

    def submit(self, *, timeout: float | None = None) -> SubmittedTransaction:
        """Send it to the orderers; returns once they have accepted it, before it commits.

        With BFT ordering a Submit can fail although a quorum of orderers
        accepted the transaction. So when Submit fails in a way that leaves
        this open, the commit status of this same transaction is asked for
        (within the commit status timeout): committed VALID counts as
        submitted; otherwise the SubmitError is raised, noting what was
        learnt. A new transaction id is never tried, which could commit twice.
        Without a signer (offline signing) the SubmitError is raised as is.
        """
        self._sign()
        creator = self._signing_identity.creator
        status_request = gateway_pb2.CommitStatusRequest(
            transaction_id=self.transaction_id, channel_id=self._channel_name, identity=creator
        )
        submitted = SubmittedTransaction(
            self._client,
            self._signing_identity,
            gateway_pb2.SignedCommitStatusRequest(request=status_request.SerializeToString()),
            self.result,
        )
        request = gateway_pb2.SubmitRequest(
            transaction_id=self.transaction_id,
            channel_id=self._channel_name,
            prepared_transaction=self._prepared.envelope,
        )
        try:
            self._client.submit(request, timeout)
        except SubmitError as error:
            if error.grpc_code in _REFUSED_BEFORE_ORDERING or not self._signing_identity.can_sign:
                raise
            _raise_unless_committed(error, submitted)
        return submitted


def _raise_unless_committed(error: SubmitError, submitted: SubmittedTransaction) -> None:
    try:
        status = submitted.get_status()
    except CommitStatusError as status_error:
        raise _noted(error, f"and no commit of it was seen ({status_error})") from status_error
    if not status.successful:
        raise _noted(error, f"though it was ordered: it committed as {status.code_name} in block {status.block_number}")


def _noted(error: SubmitError, note: str) -> SubmitError:
    return SubmitError(
        f"{error.message}; {note}",
        transaction_id=error.transaction_id,
        grpc_code=error.grpc_code,
        details=error.details,
    )


def _chaincode_result(payload: common_pb2.Payload) -> bytes:
    """Payload -> Transaction -> ChaincodeActionPayload -> ProposalResponsePayload -> ChaincodeAction.response."""
    actions = transaction_pb2.Transaction.FromString(payload.data).actions
    if not actions:
        raise ValueError("the prepared transaction holds no endorsed action")
    action_payload = transaction_pb2.ChaincodeActionPayload.FromString(actions[0].payload)
    response_payload = proposal_response_pb2.ProposalResponsePayload.FromString(
        action_payload.action.proposal_response_payload
    )
    return proposal_pb2.ChaincodeAction.FromString(response_payload.extension).response.payload
