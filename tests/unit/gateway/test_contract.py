"""Evaluate and submit through Contract: what reaches the peers, and what comes back."""

import pytest

from .fakegateway import CHAINCODE, CHANNEL


def test_evaluate_sends_name_and_arguments_and_returns_the_result(contract, fake):
    fake.result = lambda invocation: b"asset " + invocation.args[1]

    assert contract.evaluate_transaction("ReadAsset", "asset1") == b"asset asset1"

    [invocation] = fake.invocations
    assert (invocation.method, invocation.channel, invocation.chaincode) == ("Evaluate", CHANNEL, CHAINCODE)
    assert invocation.args == (b"ReadAsset", b"asset1")
    assert fake.submitted == []


def test_submit_endorses_orders_and_waits_for_the_commit(contract, fake):
    result = contract.submit_transaction("CreateAsset", "asset1", b"\x00\xffbinary")

    assert result == b"CreateAsset asset1 \x00\xffbinary"

    [invocation] = fake.invocations
    assert invocation.method == "Endorse"
    assert invocation.args == (b"CreateAsset", b"asset1", b"\x00\xffbinary")
    assert fake.submitted == [invocation.transaction_id]
    assert fake.commit_status_requests == [invocation.transaction_id]


def test_transient_data_and_organizations_reach_the_gateway(contract, fake):
    contract.evaluate("ReadPrivate", arguments=["k"], transient={"secret": "s1"}, endorsing_organizations=["Org1MSP"])
    contract.submit("PutPrivate", transient={"secret": b"s2"}, endorsing_organizations=["Org1MSP", "Org2MSP"])

    evaluated, endorsed = fake.invocations
    assert evaluated.transient == {"secret": b"s1"} and evaluated.organizations == ("Org1MSP",)
    assert endorsed.transient == {"secret": b"s2"} and endorsed.organizations == ("Org1MSP", "Org2MSP")


def test_transient_data_stays_out_of_the_transaction(contract, fake):
    transaction = contract.new_proposal("PutPrivate", transient={"secret": b"do-not-order"}).endorse()

    assert b"do-not-order" not in transaction.to_bytes()


def test_named_contract_prefixes_the_transaction_name(network, fake):
    network.get_contract(CHAINCODE, "emr_index").evaluate_transaction("GetRecord", "rec-1")

    assert fake.invocations[0].args[0] == b"emr_index:GetRecord"


@pytest.mark.parametrize("bad", [{"arguments": [1]}, {"arguments": ["ok", None]}, {"transient": {"k": 2}}])
def test_arguments_other_than_str_or_bytes_are_refused(contract, fake, bad):
    with pytest.raises(TypeError, match="pass str or bytes"):
        contract.evaluate("ReadAsset", **bad)
    assert fake.invocations == []


def test_each_proposal_has_its_own_transaction_id(contract):
    first, second = contract.new_proposal("ReadAsset"), contract.new_proposal("ReadAsset")

    assert first.transaction_id != second.transaction_id
    assert len(first.transaction_id) == 64
