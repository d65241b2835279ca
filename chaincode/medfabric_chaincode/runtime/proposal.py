"""What a transaction needs from the client's signed proposal: creator, transient data, binding, timestamp."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime

from fabric_protos.common import common_pb2
from fabric_protos.peer import proposal_pb2
from google.protobuf.message import DecodeError

from .errors import ChaincodeError

_ACCEPTED_HEADER_TYPES = (common_pb2.HeaderType.ENDORSER_TRANSACTION, common_pb2.HeaderType.CONFIG)


@dataclass(frozen=True)
class ProposalFacts:
    creator: bytes  # a serialized msp.SerializedIdentity
    transient: dict[str, bytes]
    binding: bytes
    timestamp: datetime  # set by the client in the channel header; the same on every endorsing peer


def decode_signed_proposal(signed: proposal_pb2.SignedProposal) -> ProposalFacts:
    """Decode the proposal; ChaincodeError when it is malformed or not a transaction proposal."""
    try:
        proposal = proposal_pb2.Proposal.FromString(signed.proposal_bytes)
        header = common_pb2.Header.FromString(proposal.header)
        channel_header = common_pb2.ChannelHeader.FromString(header.channel_header)
        signature_header = common_pb2.SignatureHeader.FromString(header.signature_header)
        payload = proposal_pb2.ChaincodeProposalPayload.FromString(proposal.payload)
    except DecodeError as exc:
        raise ChaincodeError(f"malformed signed proposal: {exc}") from None
    if not proposal.header:
        raise ChaincodeError("malformed signed proposal: the header is missing")
    if channel_header.type not in _ACCEPTED_HEADER_TYPES:
        raise ChaincodeError(f"unexpected channel header type {channel_header.type} in the proposal")
    # As the Go shim computes it: SHA-256 over nonce, creator and the epoch as 8 little-endian bytes.
    epoch = channel_header.epoch.to_bytes(8, "little")
    binding = hashlib.sha256(signature_header.nonce + signature_header.creator + epoch).digest()
    return ProposalFacts(
        creator=signature_header.creator,
        transient=dict(payload.TransientMap),
        binding=binding,
        timestamp=channel_header.timestamp.ToDatetime(tzinfo=UTC),
    )
