"""The commit of a submitted transaction, and its status."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from fabric_protos.gateway import gateway_pb2
from fabric_protos.peer import transaction_pb2

from .signing import Signable

if TYPE_CHECKING:
    from .client import GatewayClient
    from .signing import SigningIdentity


@dataclass(frozen=True)
class Status:
    """How a transaction committed: `code` is a peer.TxValidationCode.

        >>> status = Status("8f3a…", transaction_pb2.MVCC_READ_CONFLICT, block_number=12)
        >>> status.successful, status.code_name
        (False, 'MVCC_READ_CONFLICT')
    """

    transaction_id: str
    code: int
    block_number: int

    @property
    def successful(self) -> bool:
        return self.code == transaction_pb2.VALID

    @property
    def code_name(self) -> str:
        return transaction_pb2.TxValidationCode.Name(self.code)


class Commit(Signable):
    """Access to the commit of one transaction; signable for offline signing."""

    def __init__(
        self,
        client: GatewayClient,
        signing_identity: SigningIdentity,
        signed_request: gateway_pb2.SignedCommitStatusRequest,
    ):
        super().__init__(signing_identity, signed_request, signed_request, "request")
        self._client = client
        self._signed_request = signed_request
        self.transaction_id = gateway_pb2.CommitStatusRequest.FromString(signed_request.request).transaction_id

    def get_status(self, *, timeout: float | None = None) -> Status:
        """Wait until the transaction commits; how it did. Raises CommitStatusError."""
        self._sign()
        response = self._client.commit_status(self._signed_request, timeout)
        return Status(self.transaction_id, response.result, response.block_number)


class SubmittedTransaction(Commit):
    """A transaction the orderers accepted: its result now, its status once committed.

        >>> submitted = contract.submit_async("CreateAsset", arguments=["asset9", "green"])
        >>> result = submitted.result  # before the commit: answer the user now
        >>> submitted.get_status().successful
        True
    """

    def __init__(
        self,
        client: GatewayClient,
        signing_identity: SigningIdentity,
        signed_request: gateway_pb2.SignedCommitStatusRequest,
        result: bytes,
    ):
        super().__init__(client, signing_identity, signed_request)
        self.result = result
