"""Each stage has its own deadline; exceeding it raises that stage's error, and each call can override it."""

import grpc
import pytest

from medfabric.gateway import CommitStatusError, ConnectOptions, EndorseError, GatewayError, SubmitError

from .fakegateway import CHAINCODE, CHANNEL

SHORT = 0.2
LATE = 0.6


@pytest.fixture
def impatient_contract(connect_to_fake):
    options = ConnectOptions(evaluate_timeout=SHORT, endorse_timeout=SHORT, submit_timeout=SHORT,
                             commit_status_timeout=SHORT, chaincode_events_timeout=SHORT)
    return connect_to_fake(options=options).get_network(CHANNEL).get_contract(CHAINCODE)


def deadline_exceeded(raised) -> bool:
    return raised.value.grpc_code == grpc.StatusCode.DEADLINE_EXCEEDED


def test_evaluate_deadline(impatient_contract, fake):
    fake.delay("Evaluate", LATE)
    proposal = impatient_contract.new_proposal("ReadAsset")

    with pytest.raises(GatewayError) as raised:
        proposal.evaluate()
    assert deadline_exceeded(raised)

    assert proposal.evaluate(timeout=LATE * 5) == b"ReadAsset"


def test_endorse_deadline(impatient_contract, fake):
    fake.delay("Endorse", LATE)
    proposal = impatient_contract.new_proposal("CreateAsset")

    with pytest.raises(EndorseError) as raised:
        proposal.endorse()
    assert deadline_exceeded(raised) and raised.value.transaction_id == proposal.transaction_id

    assert proposal.endorse(timeout=LATE * 5).result == b"CreateAsset"


def test_submit_deadline(impatient_contract, fake):
    fake.delay("Submit", LATE)
    transaction = impatient_contract.new_proposal("CreateAsset").endorse()

    with pytest.raises(SubmitError) as raised:
        transaction.submit()  # not ordered: the commit status check runs out too
    assert deadline_exceeded(raised) and fake.submitted == []

    assert transaction.submit(timeout=LATE * 5).get_status().successful


def test_commit_status_deadline(impatient_contract, fake):
    fake.delay("CommitStatus", LATE)
    submitted = impatient_contract.submit_async("CreateAsset")

    with pytest.raises(CommitStatusError) as raised:
        submitted.get_status()
    assert deadline_exceeded(raised)

    assert submitted.get_status(timeout=LATE * 5).successful


def test_chaincode_events_deadline(connect_to_fake, fake):
    network = connect_to_fake(options=ConnectOptions(chaincode_events_timeout=SHORT)).get_network(CHANNEL)

    with pytest.raises(GatewayError) as raised:
        next(network.get_chaincode_events(CHAINCODE))  # no commit comes
    assert deadline_exceeded(raised)


def test_default_deadlines():
    options = ConnectOptions()

    assert (options.evaluate_timeout, options.endorse_timeout, options.submit_timeout,
            options.commit_status_timeout, options.chaincode_events_timeout) == (5, 15, 5, 60, None)
