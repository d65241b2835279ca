"""The Connect stream: registration, concurrency on one stream, keepalive, large messages, errors."""

from __future__ import annotations

import os

from fabric_protos.peer import proposal_pb2

from .conftest import PACKAGE_ID
from .fakepeer import CHANNEL, WAIT, Msg
from .probe_contract import GATE


def test_registers_with_the_package_id(start_server, open_peer):
    peer = open_peer(start_server())
    assert peer.connect() == PACKAGE_ID


def test_fifty_transactions_in_flight_on_one_stream(peer):
    for index in range(50):
        peer.state[("", f"key{index}")] = f"value{index}".encode()
    peer.hold_replies_until(50)  # no GET_STATE is answered before all 50 transactions wait for theirs

    pending = [peer.submit("Get", f"key{index}") for index in range(50)]

    results = [future.result(timeout=WAIT) for future in pending]
    assert [result.payload for result in results] == [f"value{index}".encode() for index in range(50)]
    assert peer.requests.count("GET_STATE") == 50


def test_a_slow_transaction_does_not_hold_up_others(peer):
    slow = peer.submit("Wait")

    fast = peer.invoke("Echo", b"quick")

    assert fast.payload == b"quick"
    assert not slow.done()
    GATE.set()
    assert slow.result(timeout=WAIT).payload == b"released"


def test_keepalive_is_echoed(peer):
    peer.send(Msg(type=Msg.KEEPALIVE, payload=b"ping"))

    echoed = peer.keepalives.get(timeout=WAIT)

    assert echoed.payload == b"ping"


def test_six_megabyte_messages_pass_both_ways(peer):
    data = os.urandom(6 * 1024 * 1024)

    result = peer.invoke("Echo", data)

    assert result.status == 200
    assert result.payload == data


def test_malformed_transaction_payload_is_answered_with_error(peer):
    peer.send(Msg(type=Msg.TRANSACTION, txid="tx-bad-input", channel_id=CHANNEL, payload=b"\xff\xff\xff"))

    error = peer.protocol_errors.get(timeout=WAIT)

    assert (error.txid, error.channel_id) == ("tx-bad-input", CHANNEL)
    assert error.payload.startswith(b"malformed TRANSACTION message")
    assert peer.invoke("Echo", b"still serving").payload == b"still serving"


def test_malformed_proposal_is_answered_with_error(peer):
    garbage = proposal_pb2.SignedProposal(proposal_bytes=b"\xff\xff\xff")
    peer.send(Msg(type=Msg.TRANSACTION, txid="tx-bad-proposal", channel_id=CHANNEL, proposal=garbage))

    error = peer.protocol_errors.get(timeout=WAIT)

    assert error.txid == "tx-bad-proposal"
    assert b"malformed signed proposal" in error.payload


def test_unexpected_message_type_is_answered_with_error(peer):
    peer.send(Msg(type=Msg.GET_STATE, txid="tx-odd", channel_id=CHANNEL))

    error = peer.protocol_errors.get(timeout=WAIT)

    assert error.txid == "tx-odd"
    assert error.payload == b"cannot handle a GET_STATE message"


def test_failed_init_is_an_error_message(peer):
    result = peer.invoke("Fail", "refusal", init=True)

    assert result.kind == "ERROR"
    assert result.message == "refused: first line second line"


def test_successful_init_completes(peer):
    result = peer.invoke("Echo", b"init", init=True)

    assert (result.kind, result.status, result.payload) == ("COMPLETED", 200, b"init")


def test_failed_transaction_completes_with_status_500(peer):
    result = peer.invoke("Fail", "refusal")

    assert (result.kind, result.status) == ("COMPLETED", 500)


def test_transaction_without_proposal_runs_but_has_no_proposal_details(peer):
    assert peer.invoke("Echo", b"bare", with_proposal=False).payload == b"bare"

    result = peer.invoke("Proposal", with_proposal=False)

    assert result.status == 500
    assert result.message == "the peer sent this transaction without a signed proposal"
