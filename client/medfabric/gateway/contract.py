"""A smart contract: submit and evaluate transactions, simply or step by step."""

from __future__ import annotations

from typing import TYPE_CHECKING, Unpack

from .errors import CommitError
from .proposal_builder import ProposalOptions, build_proposal

if TYPE_CHECKING:
    from .client import GatewayClient
    from .commit import SubmittedTransaction
    from .proposal import Proposal
    from .signing import SigningIdentity


class Contract:
    """A contract of a chaincode on one channel.

    Each call is a thin layer over the next: submit_transaction() -> submit()
    -> submit_async() -> new_proposal().endorse().submit() -> get_status().
    Drop a level to sign offline, to retry one step, or to use the result
    before the commit.

        >>> contract.submit_transaction("CreateAsset", "asset1", "blue")
        b'CreateAsset asset1 blue'
        >>> result = contract.evaluate("ReadAsset", arguments=["asset1"], endorsing_organizations=["Org1MSP"])

    Arguments and transient values are str (sent UTF-8 encoded) or bytes;
    see ProposalOptions for what evaluate(), submit() and the others take.
    """

    def __init__(
        self,
        client: GatewayClient,
        signing_identity: SigningIdentity,
        channel_name: str,
        chaincode_name: str,
        contract_name: str | None = None,
    ):
        self._client = client
        self._signing_identity = signing_identity
        self._channel_name = channel_name
        self.chaincode_name = chaincode_name
        self.contract_name = contract_name

    def evaluate_transaction(self, name: str, *args: str | bytes) -> bytes:
        """Run a transaction function on a peer, not recording it: a query. Raises GatewayError."""
        return self.evaluate(name, arguments=args)

    def submit_transaction(self, name: str, *args: str | bytes) -> bytes:
        """Record a transaction on the ledger; its result once committed valid."""
        return self.submit(name, arguments=args)

    def evaluate(self, name: str, **options: Unpack[ProposalOptions]) -> bytes:
        """evaluate_transaction() with transient data, or only the peers of the given organisations."""
        return self.new_proposal(name, **options).evaluate()

    def submit(self, name: str, **options: Unpack[ProposalOptions]) -> bytes:
        """submit_transaction() with options; raises EndorseError, SubmitError, CommitStatusError, CommitError."""
        return self.submit_committed(name, **options).result

    def submit_committed(self, name: str, **options: Unpack[ProposalOptions]) -> SubmittedTransaction:
        """As submit(), keeping the transaction (its result and id) once it committed valid."""
        submitted = self.submit_async(name, **options)
        status = submitted.get_status()
        if not status.successful:
            raise CommitError(status)
        return submitted

    def submit_async(self, name: str, **options: Unpack[ProposalOptions]) -> SubmittedTransaction:
        """Endorse and submit; returns once the orderers accepted it, with the result, before the commit."""
        return self.new_proposal(name, **options).endorse().submit()

    def new_proposal(self, name: str, **options: Unpack[ProposalOptions]) -> Proposal:
        """An unsigned proposal, to evaluate or endorse."""
        transaction_name = f"{self.contract_name}:{name}" if self.contract_name else name
        return build_proposal(
            self._client, self._signing_identity, self._channel_name, self.chaincode_name, transaction_name, **options
        )
