"""The fake gateway is strict: each malformed message the client could send is rejected.

Each case changes one thing in an otherwise correct message and signs the
result properly, so only the check under test can reject it.
"""

import hashlib
from datetime import datetime, timedelta, timezone

import grpc
import pytest
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature
from fabric_protos.common import common_pb2
from fabric_protos.gateway import gateway_pb2
from fabric_protos.msp import identities_pb2
from fabric_protos.orderer import ab_pb2
from fabric_protos.peer import chaincode_pb2, proposal_pb2

from medfabric.gateway import CommitStatusError, GatewayError, SubmitError
from medfabric.gateway.identity import ecdsa_signer

from .fakegateway import CHAINCODE, CHANNEL, issue

P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
OTHER_CREATOR = identities_pb2.SerializedIdentity(
    mspid="Org2MSP", id_bytes=b"-----BEGIN CERTIFICATE-----"
).SerializeToString()


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def rejected_with(fake, reason: str) -> bool:
    rejections = fake.take_rejections()
    return len(rejections) == 1 and reason in rejections[0]


def tampered_proposal(gateway, contract, signer, tamper):
    """A proposal for ReadAsset changed by tamper(proposed, channel_header, signature_header, spec), re-signed."""
    proposed = gateway_pb2.ProposedTransaction.FromString(contract.new_proposal("ReadAsset").to_bytes())
    proposal = proposal_pb2.Proposal.FromString(proposed.proposal.proposal_bytes)
    header = common_pb2.Header.FromString(proposal.header)
    channel_header = common_pb2.ChannelHeader.FromString(header.channel_header)
    signature_header = common_pb2.SignatureHeader.FromString(header.signature_header)
    payload = proposal_pb2.ChaincodeProposalPayload.FromString(proposal.payload)
    invocation = chaincode_pb2.ChaincodeInvocationSpec.FromString(payload.input)

    tamper(proposed, channel_header, signature_header, invocation.chaincode_spec)

    header.channel_header = channel_header.SerializeToString()
    header.signature_header = signature_header.SerializeToString()
    payload.input = invocation.SerializeToString()
    proposal.header, proposal.payload = header.SerializeToString(), payload.SerializeToString()
    proposed.proposal.proposal_bytes = proposal.SerializeToString()
    return gateway.new_signed_proposal(proposed.SerializeToString(), signer(sha256(proposed.proposal.proposal_bytes)))


def with_transaction_id(proposed, channel_header, signature_header):
    """Keep the transaction id right for the (tampered) nonce and creator."""
    channel_header.tx_id = hashlib.sha256(signature_header.nonce + signature_header.creator).hexdigest()
    proposed.transaction_id = channel_header.tx_id


def other_creator(proposed, channel_header, signature_header, spec):
    signature_header.creator = OTHER_CREATOR
    with_transaction_id(proposed, channel_header, signature_header)


def short_nonce(proposed, channel_header, signature_header, spec):
    signature_header.nonce = signature_header.nonce[:12]
    with_transaction_id(proposed, channel_header, signature_header)


def transaction_id_without_creator(proposed, channel_header, signature_header, spec):
    channel_header.tx_id = proposed.transaction_id = hashlib.sha256(signature_header.nonce).hexdigest()


def request_transaction_id(proposed, channel_header, signature_header, spec):
    proposed.transaction_id = "0" * 64


def config_header_type(proposed, channel_header, signature_header, spec):
    channel_header.type = common_pb2.HeaderType.CONFIG


def nonzero_epoch(proposed, channel_header, signature_header, spec):
    channel_header.epoch = 1


def unknown_channel(proposed, channel_header, signature_header, spec):
    channel_header.channel_id = "otherchannel"


def hour_old_timestamp(proposed, channel_header, signature_header, spec):
    channel_header.timestamp.FromDatetime(datetime.now(timezone.utc) - timedelta(hours=1))


def header_chaincode_differs(proposed, channel_header, signature_header, spec):
    channel_header.extension = proposal_pb2.ChaincodeHeaderExtension(
        chaincode_id=chaincode_pb2.ChaincodeID(name="other")
    ).SerializeToString()


def unknown_chaincode(proposed, channel_header, signature_header, spec):
    header_chaincode_differs(proposed, channel_header, signature_header, spec)
    spec.chaincode_id.name = "other"


@pytest.mark.parametrize("tamper, reason", [
    (other_creator, "proposal creator identity is not the client's"),
    (short_nonce, "nonce of 12 bytes, expected 24"),
    (transaction_id_without_creator, "is not sha256(nonce + creator)"),
    (request_transaction_id, "differs from the header's"),
    (config_header_type, "expected ENDORSER_TRANSACTION"),
    (nonzero_epoch, "epoch is not 0"),
    (unknown_channel, "no channel 'otherchannel'"),
    (hour_old_timestamp, "is not now"),
    (header_chaincode_differs, "header chaincode 'other' but invocation chaincode 'basic'"),
    (unknown_chaincode, "no chaincode 'other'"),
])
def test_malformed_proposal_is_rejected(gateway, contract, signer, fake, tamper, reason):
    proposal = tampered_proposal(gateway, contract, signer, tamper)

    with pytest.raises(GatewayError):
        proposal.evaluate()
    assert rejected_with(fake, reason)


def test_untampered_proposal_passes(gateway, contract, signer, fake):
    tampered_proposal(gateway, contract, signer, lambda *parts: None).evaluate()


def test_high_s_signature_is_rejected(gateway, contract, signer, fake):
    unsigned = contract.new_proposal("ReadAsset")
    r, s = decode_dss_signature(signer(unsigned.digest()))
    high_s = encode_dss_signature(r, P256_ORDER - s)

    with pytest.raises(GatewayError) as raised:
        gateway.new_signed_proposal(unsigned.to_bytes(), high_s).evaluate()
    assert raised.value.grpc_code == grpc.StatusCode.PERMISSION_DENIED
    assert rejected_with(fake, "proposal signature is high-S")


@pytest.mark.parametrize("wrong_signature", [
    lambda signer, digest: signer(sha256(b"other bytes")),
    lambda signer, digest: ecdsa_signer(issue("intruder").private_key)(digest),
    lambda signer, digest: b"not a signature",
])
def test_signature_not_over_the_proposal_by_the_client_is_rejected(gateway, contract, signer, fake, wrong_signature):
    unsigned = contract.new_proposal("ReadAsset")
    signature = wrong_signature(signer, unsigned.digest())

    with pytest.raises(GatewayError):
        gateway.new_signed_proposal(unsigned.to_bytes(), signature).evaluate()
    assert fake.take_rejections()[0].startswith("proposal signature")


def test_submitted_payload_must_be_the_endorsed_one(gateway, contract, signer, fake):
    endorsed = gateway_pb2.PreparedTransaction.FromString(contract.new_proposal("CreateAsset").endorse().to_bytes())
    endorsed.envelope.payload += b"\x08\x01"  # a valid protobuf field more: same message for a lenient parser
    changed = gateway.new_signed_transaction(endorsed.SerializeToString(), signer(sha256(endorsed.envelope.payload)))

    with pytest.raises(SubmitError):
        changed.submit()
    assert rejected_with(fake, "submitted payload differs from the endorsed one")
    assert fake.submitted == []


def test_commit_status_request_must_carry_the_clients_identity(gateway, signer, fake):
    request = gateway_pb2.CommitStatusRequest(transaction_id="t", channel_id=CHANNEL, identity=OTHER_CREATOR)
    signed = gateway_pb2.SignedCommitStatusRequest(request=request.SerializeToString()).SerializeToString()

    with pytest.raises(CommitStatusError) as raised:
        gateway.new_signed_commit(signed, signer(sha256(request.SerializeToString()))).get_status()
    assert raised.value.grpc_code == grpc.StatusCode.PERMISSION_DENIED
    assert rejected_with(fake, "commit status request identity is not the client's")


@pytest.mark.parametrize("other_identity, start, reason", [
    (True, ab_pb2.SeekPosition(next_commit=ab_pb2.SeekNextCommit()), "identity is not the client's"),
    (False, ab_pb2.SeekPosition(newest=ab_pb2.SeekNewest()), "invalid start position type: newest"),
])
def test_bad_chaincode_events_request_is_rejected(gateway, identity, signer, fake, other_identity, start, reason):
    request = gateway_pb2.ChaincodeEventsRequest(
        channel_id=CHANNEL,
        chaincode_id=CHAINCODE,
        identity=OTHER_CREATOR if other_identity else identity.serialize(),
        start_position=start,
    ).SerializeToString()
    signed = gateway_pb2.SignedChaincodeEventsRequest(request=request).SerializeToString()

    events = gateway.new_signed_chaincode_events_request(signed, signer(sha256(request))).get_events()
    with pytest.raises(GatewayError):
        next(events)
    assert rejected_with(fake, reason)
