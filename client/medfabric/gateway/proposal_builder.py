"""Builds the proposal message peers endorse, as the official clients do."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Iterable, Mapping, TypedDict

from fabric_protos.common import common_pb2
from fabric_protos.gateway import gateway_pb2
from fabric_protos.peer import chaincode_pb2, proposal_pb2

from .proposal import Proposal

if TYPE_CHECKING:
    from .client import GatewayClient
    from .signing import SigningIdentity

NONCE_LENGTH = 24


class ProposalOptions(TypedDict, total=False):
    """What a proposal may carry besides the transaction name."""

    arguments: Iterable[str | bytes]
    """The transaction function's arguments."""
    transient: Mapping[str, str | bytes]
    """Private data for the transaction function, kept out of the ledger."""
    endorsing_organizations: Iterable[str]
    """MSP ids of the only organisations whose peers get the proposal (private data, state-based endorsement)."""


def build_proposal(
    client: GatewayClient,
    signing_identity: SigningIdentity,
    channel_name: str,
    chaincode_name: str,
    transaction_name: str,
    arguments: Iterable[str | bytes] = (),
    transient: Mapping[str, str | bytes] | None = None,
    endorsing_organizations: Iterable[str] = (),
) -> Proposal:
    """An unsigned proposal to call `transaction_name(*arguments)` of a chaincode.

    The transaction id is hex(SHA-256(nonce + creator)), as peers check it.
    """
    args = [_as_bytes(transaction_name, "transaction name")]
    args += [_as_bytes(argument, f"argument {index}") for index, argument in enumerate(arguments, 1)]
    transient_map = {key: _as_bytes(value, f"transient {key!r}") for key, value in (transient or {}).items()}

    nonce = os.urandom(NONCE_LENGTH)
    transaction_id = signing_identity.hash(nonce + signing_identity.creator).hex()
    chaincode_id = chaincode_pb2.ChaincodeID(name=chaincode_name)
    channel_header = common_pb2.ChannelHeader(
        type=common_pb2.HeaderType.ENDORSER_TRANSACTION,
        channel_id=channel_name,
        tx_id=transaction_id,
        epoch=0,
        extension=proposal_pb2.ChaincodeHeaderExtension(chaincode_id=chaincode_id).SerializeToString(),
    )
    channel_header.timestamp.GetCurrentTime()
    signature_header = common_pb2.SignatureHeader(creator=signing_identity.creator, nonce=nonce)
    spec = chaincode_pb2.ChaincodeSpec(chaincode_id=chaincode_id, input=chaincode_pb2.ChaincodeInput(args=args))
    invocation = chaincode_pb2.ChaincodeInvocationSpec(chaincode_spec=spec)
    proposal = proposal_pb2.Proposal(
        header=common_pb2.Header(
            channel_header=channel_header.SerializeToString(),
            signature_header=signature_header.SerializeToString(),
        ).SerializeToString(),
        payload=proposal_pb2.ChaincodeProposalPayload(
            input=invocation.SerializeToString(), TransientMap=transient_map
        ).SerializeToString(),
    )
    proposed = gateway_pb2.ProposedTransaction(
        transaction_id=transaction_id,
        proposal=proposal_pb2.SignedProposal(proposal_bytes=proposal.SerializeToString()),
        endorsing_organizations=list(endorsing_organizations),
    )
    return Proposal(client, signing_identity, proposed)


def _as_bytes(value: str | bytes, what: str) -> bytes:
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, bytes):
        return value
    raise TypeError(f"{what} is {type(value).__name__}: pass str or bytes")
