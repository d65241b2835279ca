"""Chaincode events: start positions, resuming from checkpoints, closing, stream failures."""

import threading

import grpc
import pytest
from fabric_protos.peer import chaincode_event_pb2

from medfabric.gateway import ChaincodeEvent, FileCheckpointer, GatewayError, InMemoryCheckpointer

from .fakegateway import CHAINCODE


def event(tx_id, name="Created", chaincode=CHAINCODE, payload=b""):
    return chaincode_event_pb2.ChaincodeEvent(chaincode_id=chaincode, tx_id=tx_id, event_name=name, payload=payload)


@pytest.fixture
def ledger(fake):
    """Blocks 1-3 with events of two chaincodes."""
    fake.add_block(event("t1", payload=b"p1"), event("x1", chaincode="other"))
    fake.add_block(event("t2"), event("t3", name="Updated"))
    fake.add_block(event("t4"))
    return fake


def read(events, count):
    with events:
        return [next(events) for _ in range(count)]


def test_events_from_a_start_block(network, ledger):
    first, second, third = read(network.get_chaincode_events(CHAINCODE, start_block=2), 3)

    assert first == ChaincodeEvent(2, "t2", CHAINCODE, "Created", b"")
    assert (second.block_number, second.transaction_id, second.event_name) == (2, "t3", "Updated")
    assert (third.block_number, third.transaction_id) == (3, "t4")


def test_only_the_chaincodes_events_are_delivered(network, ledger):
    assert [e.transaction_id for e in read(network.get_chaincode_events(CHAINCODE, start_block=0), 4)] == [
        "t1", "t2", "t3", "t4"
    ]


def test_by_default_events_start_at_the_next_commit(network, ledger):
    events = network.get_chaincode_events(CHAINCODE)
    committer = threading.Timer(0.2, ledger.add_block, [event("t5", payload=b"new")])
    committer.start()

    [received] = read(events, 1)

    assert received == ChaincodeEvent(4, "t5", CHAINCODE, "Created", b"new")
    committer.join()


@pytest.fixture(params=["in memory", "file"])
def checkpointer_and_restart(request, tmp_path):
    """A checkpointer, and how to get it back after a restart."""
    if request.param == "in memory":
        checkpointer = InMemoryCheckpointer()
        return checkpointer, lambda: checkpointer
    path = tmp_path / "checkpoint.json"
    return FileCheckpointer(path), lambda: FileCheckpointer(path)


def test_resume_after_the_last_checkpointed_event(network, ledger, checkpointer_and_restart):
    checkpointer, restart = checkpointer_and_restart
    with network.get_chaincode_events(CHAINCODE, start_block=0, checkpoint=checkpointer) as events:
        for received in [next(events), next(events)]:
            checkpointer.checkpoint_chaincode_event(received)
    assert (checkpointer.block_number, checkpointer.transaction_id) == (2, "t2")

    resumed = network.get_chaincode_events(CHAINCODE, start_block=0, checkpoint=restart())

    assert [e.transaction_id for e in read(resumed, 2)] == ["t3", "t4"]


def test_checkpointed_block_resumes_at_the_next_block(network, ledger):
    checkpointer = InMemoryCheckpointer()
    checkpointer.checkpoint_block(2)

    [resumed] = read(network.get_chaincode_events(CHAINCODE, checkpoint=checkpointer), 1)

    assert resumed.transaction_id == "t4"


def test_file_checkpointer_survives_a_restart_and_leaves_one_file(tmp_path):
    path = tmp_path / "checkpoint.json"
    FileCheckpointer(path).checkpoint_chaincode_event(ChaincodeEvent(9, "t9", CHAINCODE, "Created", b""))

    restarted = FileCheckpointer(path)

    assert (restarted.block_number, restarted.transaction_id) == (9, "t9")
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.json"]


def test_close_ends_the_stream(network, ledger):
    events = network.get_chaincode_events(CHAINCODE, start_block=3)
    assert next(events).transaction_id == "t4"

    threading.Timer(0.2, events.close).start()

    with pytest.raises(StopIteration):
        next(events)  # would wait for the next commit


def test_stream_failure_is_a_gateway_error(network, fake):
    fake.fail_next("ChaincodeEvents", grpc.StatusCode.NOT_FOUND, "channel not found")

    with pytest.raises(GatewayError, match="NOT_FOUND: channel not found"):
        next(network.get_chaincode_events(CHAINCODE))
