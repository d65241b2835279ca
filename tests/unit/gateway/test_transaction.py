"""Ambiguous submits: Submit failed, but the orderers may have taken the transaction (BFT).

The client then asks for the commit status of the same transaction id,
and never tries a new one.
"""

import time

import grpc
import pytest
from fabric_protos.peer import transaction_pb2

from medfabric.gateway import ConnectOptions, SubmitError

from .fakegateway import CHAINCODE, CHANNEL

QUORUM_FAILURE = "insufficient number of orderers could successfully process transaction to satisfy quorum requirement"


def test_failed_submit_that_committed_valid_returns_the_result(contract, fake):
    fake.fail_next("Submit", grpc.StatusCode.UNAVAILABLE, QUORUM_FAILURE, accepted=True)

    assert contract.submit_transaction("CreateAsset", "asset1") == b"CreateAsset asset1"

    [invocation] = fake.invocations
    assert fake.submitted == [invocation.transaction_id]
    assert set(fake.commit_status_requests) == {invocation.transaction_id}


def test_failed_submit_that_committed_invalid_is_a_submit_error_saying_so(contract, fake):
    fake.fail_next("Submit", grpc.StatusCode.UNAVAILABLE, QUORUM_FAILURE, accepted=True)
    fake.commit_code = transaction_pb2.MVCC_READ_CONFLICT

    with pytest.raises(SubmitError) as raised:
        contract.submit_transaction("CreateAsset", "asset1")

    assert str(raised.value) == (
        f"UNAVAILABLE: {QUORUM_FAILURE}; though it was ordered: it committed as MVCC_READ_CONFLICT in block 1"
    )
    assert raised.value.transaction_id == fake.submitted[0]
    assert len(fake.invocations) == 1


def test_failed_submit_never_ordered_is_a_submit_error_after_the_commit_status_timeout(connect_to_fake, fake):
    gateway = connect_to_fake(options=ConnectOptions(commit_status_timeout=0.3))
    contract = gateway.get_network(CHANNEL).get_contract(CHAINCODE)
    fake.fail_next("Submit", grpc.StatusCode.UNAVAILABLE, QUORUM_FAILURE)

    started = time.monotonic()
    with pytest.raises(SubmitError) as raised:
        contract.submit_transaction("CreateAsset", "asset1")

    assert 0.3 <= time.monotonic() - started < 3
    assert raised.value.grpc_code == grpc.StatusCode.UNAVAILABLE
    assert "and no commit of it was seen (DEADLINE_EXCEEDED" in str(raised.value)
    assert fake.submitted == []
    assert fake.commit_status_requests == [fake.invocations[0].transaction_id]


def test_submit_refused_before_ordering_is_raised_at_once(contract, fake):
    fake.fail_next("Submit", grpc.StatusCode.FAILED_PRECONDITION, "no orderers for channel mychannel")

    with pytest.raises(SubmitError, match="no orderers for channel mychannel$"):
        contract.submit_transaction("CreateAsset")

    assert fake.commit_status_requests == []
