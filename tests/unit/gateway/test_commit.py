"""Commits: the result before the commit, the status after, and invalid commits as CommitError."""

import pytest
from fabric_protos.peer import transaction_pb2

from medfabric.gateway import CommitError


def test_submit_async_gives_the_result_then_the_status(contract, fake):
    fake.result = lambda invocation: b'{"id": "asset1"}'

    submitted = contract.submit_async("CreateAsset", arguments=["asset1"])

    assert submitted.result == b'{"id": "asset1"}'
    assert fake.commit_status_requests == []
    status = submitted.get_status()
    assert status.successful and status.code_name == "VALID"
    assert status.transaction_id == submitted.transaction_id == fake.submitted[0]
    assert status.block_number == 1


def test_step_by_step_flow_keeps_one_transaction_id(contract, fake):
    proposal = contract.new_proposal("CreateAsset", arguments=["asset2"])
    transaction = proposal.endorse()
    submitted = transaction.submit()

    assert proposal.transaction_id == transaction.transaction_id == submitted.transaction_id
    assert transaction.result == b"CreateAsset asset2"
    assert submitted.get_status().successful
    assert [i.transaction_id for i in fake.invocations] == fake.submitted == [proposal.transaction_id]


def test_invalid_commit_raises_commit_error_with_its_status(contract, fake):
    fake.commit_code = transaction_pb2.MVCC_READ_CONFLICT

    with pytest.raises(CommitError) as raised:
        contract.submit_transaction("UpdateAsset", "asset1")

    status = raised.value.status
    assert (status.successful, status.code_name) == (False, "MVCC_READ_CONFLICT")
    assert status.transaction_id == fake.submitted[0]
    assert raised.value.transaction_id == fake.submitted[0]
    assert "MVCC_READ_CONFLICT" in str(raised.value)


def test_invalid_commit_is_a_status_for_submit_async(contract, fake):
    fake.commit_code = transaction_pb2.ENDORSEMENT_POLICY_FAILURE

    status = contract.submit_async("UpdateAsset").get_status()

    assert not status.successful and status.code == transaction_pb2.ENDORSEMENT_POLICY_FAILURE
