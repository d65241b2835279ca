"""Failures are typed by stage and carry each peer's details, read from the status trailer."""

import grpc
import pytest
from fabric_protos.gateway import gateway_pb2

from medfabric.cli.main import one_line
from medfabric.gateway import CommitStatusError, EndorseError, ErrorDetail, GatewayError, SubmitError

ENDORSE_FAILURE = "failed to endorse transaction, see attached details for more info"
PEER_DETAILS = [
    gateway_pb2.ErrorDetail(address="peer0.org1.example.com:7051", msp_id="Org1MSP",
                            message="chaincode response 500, asset1 already exists"),
    gateway_pb2.ErrorDetail(address="peer0.org2.example.com:9051", msp_id="Org2MSP",
                            message="chaincode response 500, asset1 already\nexists"),
]


def test_endorse_failure_is_an_endorse_error_with_every_peers_details(contract, fake):
    fake.fail_next("Endorse", grpc.StatusCode.ABORTED, ENDORSE_FAILURE, details=PEER_DETAILS)
    proposal = contract.new_proposal("CreateAsset", arguments=["asset1"])

    with pytest.raises(EndorseError) as raised:
        proposal.endorse()

    error = raised.value
    assert error.grpc_code == grpc.StatusCode.ABORTED
    assert error.transaction_id == proposal.transaction_id
    assert error.details == (
        ErrorDetail("peer0.org1.example.com:7051", "Org1MSP", "chaincode response 500, asset1 already exists"),
        ErrorDetail("peer0.org2.example.com:9051", "Org2MSP", "chaincode response 500, asset1 already\nexists"),
    )
    assert str(error) == (
        "ABORTED: failed to endorse transaction, see attached details for more info "
        "[peer0.org1.example.com:7051 (Org1MSP): chaincode response 500, asset1 already exists; "
        "peer0.org2.example.com:9051 (Org2MSP): chaincode response 500, asset1 already exists]"
    )
    assert fake.submitted == []


def test_the_cli_shows_the_error_as_it_is(contract, fake):
    other_peer = gateway_pb2.ErrorDetail(address="peer1:7051", msp_id="Org2MSP", message="x")
    fake.fail_next("Endorse", grpc.StatusCode.ABORTED, ENDORSE_FAILURE, details=[PEER_DETAILS[0], other_peer])

    with pytest.raises(GatewayError) as raised:
        contract.submit_transaction("CreateAsset", "asset1")

    assert one_line(raised.value) == str(raised.value)


def test_evaluate_failure_is_a_gateway_error(contract, fake):
    fake.fail_next("Evaluate", grpc.StatusCode.UNKNOWN, "chaincode response 404, no asset9", details=PEER_DETAILS[:1])

    with pytest.raises(GatewayError) as raised:
        contract.evaluate_transaction("ReadAsset", "asset9")

    assert type(raised.value) is GatewayError
    assert raised.value.details[0].msp_id == "Org1MSP"


def test_commit_status_failure_is_a_commit_status_error(contract, fake):
    fake.fail_next("CommitStatus", grpc.StatusCode.UNAVAILABLE, "peer ledger unavailable")
    submitted = contract.submit_async("CreateAsset")

    with pytest.raises(CommitStatusError) as raised:
        submitted.get_status()

    assert raised.value.transaction_id == submitted.transaction_id
    assert str(raised.value) == "UNAVAILABLE: peer ledger unavailable"


def test_error_without_details_is_its_status(contract, fake):
    fake.fail_next("Submit", grpc.StatusCode.INVALID_ARGUMENT, "prepared transaction must be signed")

    with pytest.raises(SubmitError) as raised:
        contract.submit_transaction("CreateAsset")

    assert (raised.value.details, str(raised.value)) == ((), "INVALID_ARGUMENT: prepared transaction must be signed")
