"""Writes sent in batches (WRITE_BATCH_STATE) when the peer's READY says it takes them, as Fabric >= 2.5 does
with core.yaml chaincode.runtimeParams.useWriteBatch; one request per write when it says nothing."""

from __future__ import annotations

import pytest

from medfabric_chaincode.runtime import Contract, TransactionContext, TransactionError, transaction

from .probe_contract import ProbeContract


class Writer(Contract):
    name = "writer"

    @transaction
    def Many(self, ctx: TransactionContext, count: int, fail: bool) -> None:
        for number in range(count):
            ctx.stub.put_state(f"k{number}", str(number).encode())
        ctx.stub.put_state("k0", b"again")  # the last write of a key is the one that counts
        ctx.stub.del_state("k1")
        ctx.stub.set_state_validation_parameter("k2", b"policy")
        ctx.stub.put_private_data("secrets", "s", b"hidden")
        if fail:
            raise TransactionError("refused after writing")

    @transaction(evaluate=True)
    def Read(self, ctx: TransactionContext, key: str) -> bytes:
        return ctx.stub.get_state(key) or b""


EXPECTED = {("", "k0"): b"again", ("", "k1"): None, ("", "k2"): b"2", ("", "k3"): b"3", ("secrets", "s"): b"hidden"}


def test_without_the_peer_saying_so_each_write_is_its_own_request(connect):
    peer = connect(Writer)
    result = peer.invoke("Many", "4", "false")
    assert (result.status, result.writes) == (200, EXPECTED)
    assert "WRITE_BATCH_STATE" not in peer.requests and peer.requests.count("PUT_STATE") == 6


def test_a_peer_that_takes_batches_gets_one_message_with_the_same_writes(connect):
    peer = connect(Writer, write_batch=0)
    result = peer.invoke("Many", "4", "false")
    assert (result.status, result.writes) == (200, EXPECTED)
    assert peer.requests == ["WRITE_BATCH_STATE"]
    assert peer.state_metadata == {("", "k2"): {"VALIDATION_PARAMETER": b"policy"}}
    assert peer.invoke("Read", "k0").payload == b"again"


def test_batches_keep_within_the_peers_limit(connect):
    peer = connect(Writer, write_batch=2)
    result = peer.invoke("Many", "6", "false")
    assert result.status == 200 and result.writes[("", "k5")] == b"5"
    assert peer.requests == ["WRITE_BATCH_STATE"] * 4  # 6 keys + metadata + private: 8 records, 2 a message


def test_a_failed_transaction_sends_no_writes(connect):
    peer = connect(Writer, write_batch=0)
    result = peer.invoke("Many", "4", "true")
    assert (result.status, result.message, result.writes) == (500, "refused after writing", {})
    assert peer.requests == []


def test_a_batch_the_peer_refuses_fails_the_transaction(connect):
    peer = connect(Writer, write_batch=0)
    peer.failures["WRITE_BATCH_STATE"] = "no write permission on collection secrets"
    result = peer.invoke("Many", "2", "false")
    assert result.kind == "ERROR"
    assert result.message == "WRITE_BATCH_STATE failed: no write permission on collection secrets"


@pytest.mark.parametrize("function, args, writes", [
    ("Put", ("k", "v"), {("", "k"): b"v"}),
    ("Delete", ("k",), {("", "k"): None}),
    ("PurgePrivate", ("secrets", "k"), {("secrets", "k"): None}),
])
def test_the_probe_contracts_writes_are_the_same_batched(connect, function, args, writes):
    peer = connect(ProbeContract, write_batch=0)
    assert peer.invoke(function, *args).writes == writes
    assert peer.requests == ["WRITE_BATCH_STATE"]
