"""Offline signing: a Gateway without a signer, each message signed elsewhere from its digest."""

import hashlib

import grpc
import pytest
from fabric_protos.gateway import gateway_pb2
from fabric_protos.peer import chaincode_event_pb2

from medfabric.gateway import SubmitError

from .fakegateway import CHAINCODE, CHANNEL


@pytest.fixture
def offline_gateway(connect_to_fake):
    return connect_to_fake(signer=None)


def test_full_submit_flow_signed_offline(offline_gateway, signer, fake):
    contract = offline_gateway.get_network(CHANNEL).get_contract(CHAINCODE)

    unsigned_proposal = contract.new_proposal("CreateAsset", arguments=["asset1"])
    proposal = offline_gateway.new_signed_proposal(unsigned_proposal.to_bytes(), signer(unsigned_proposal.digest()))
    unsigned_transaction = proposal.endorse()
    transaction = offline_gateway.new_signed_transaction(
        unsigned_transaction.to_bytes(), signer(unsigned_transaction.digest())
    )
    unsigned_commit = transaction.submit()
    commit = offline_gateway.new_signed_commit(unsigned_commit.to_bytes(), signer(unsigned_commit.digest()))

    status = commit.get_status()
    assert status.successful
    assert transaction.result == b"CreateAsset asset1"
    assert status.transaction_id == proposal.transaction_id == fake.submitted[0]


def test_digest_is_the_sha256_of_what_peers_verify(offline_gateway):
    unsigned = offline_gateway.get_network(CHANNEL).get_contract(CHAINCODE).new_proposal("ReadAsset")

    proposal_bytes = gateway_pb2.ProposedTransaction.FromString(unsigned.to_bytes()).proposal.proposal_bytes
    assert unsigned.digest() == hashlib.sha256(proposal_bytes).digest()


def test_evaluate_signed_offline(offline_gateway, signer):
    unsigned = offline_gateway.get_network(CHANNEL).get_contract(CHAINCODE).new_proposal("ReadAsset", arguments=["a"])

    proposal = offline_gateway.new_signed_proposal(unsigned.to_bytes(), signer(unsigned.digest()))

    assert proposal.evaluate() == b"ReadAsset a"


def test_chaincode_events_request_signed_offline(offline_gateway, signer, fake):
    fake.add_block(chaincode_event_pb2.ChaincodeEvent(chaincode_id=CHAINCODE, tx_id="t1", event_name="Created"))
    unsigned = offline_gateway.get_network(CHANNEL).new_chaincode_events_request(CHAINCODE, start_block=0)

    request = offline_gateway.new_signed_chaincode_events_request(unsigned.to_bytes(), signer(unsigned.digest()))

    with request.get_events() as events:
        assert next(events).transaction_id == "t1"


def test_failed_submit_signed_offline_is_raised_as_it_is(offline_gateway, signer, fake):
    fake.fail_next("Submit", grpc.StatusCode.UNAVAILABLE, "no orderer reached")
    unsigned = offline_gateway.get_network(CHANNEL).get_contract(CHAINCODE).new_proposal("CreateAsset")
    unsigned_transaction = offline_gateway.new_signed_proposal(unsigned.to_bytes(), signer(unsigned.digest())).endorse()
    transaction = offline_gateway.new_signed_transaction(
        unsigned_transaction.to_bytes(), signer(unsigned_transaction.digest())
    )

    with pytest.raises(SubmitError, match="no orderer reached$"):
        transaction.submit()  # the commit status request is not signed: the caller asks for it
    assert fake.commit_status_requests == []


def test_sending_unsigned_without_a_signer_says_how_to_sign(offline_gateway, fake):
    contract = offline_gateway.get_network(CHANNEL).get_contract(CHAINCODE)

    with pytest.raises(ValueError, match="no signer: .* new_signed_"):
        contract.evaluate_transaction("ReadAsset")
    assert fake.invocations == []
