"""The data service keeps federated-learning updates like records, and delivers them as the fl contract says."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from medfabric.data_service.service_ledger import FlRecordFacts, LedgerError

from .test_data_service import FakeLedger, assert_refused, fetch_statement, network, served, signed, users  # noqa: F401

UPDATE = "fl:task-1:1:hospital-a"
UPDATE_TX = "ef" * 32


@dataclass
class FakeFlLedger:
    records: dict[tuple[str, str, int, str], FlRecordFacts] = field(default_factory=dict)
    error: str | None = None

    def fl_record(self, channel, task_id, round, part):
        if self.error:
            raise LedgerError(self.error)
        return self.records.get((channel, task_id, round, part))


@pytest.fixture
def fl_ledger():
    return FakeFlLedger()


@pytest.fixture
def running(network, users, tmp_path, fl_ledger):
    with served(network, users, tmp_path, FakeLedger(), fl_ledger=fl_ledger) as run:
        yield run


@pytest.fixture
def update(running, users, fl_ledger):
    """hospital-a's researcher stores its round-1 update; the ledger records it with the task's publisher B."""
    answer, sealed = running.store(users.colleague, record_id=UPDATE, plaintext=b"MFW1 weights")
    assert answer.status == 201, answer.text
    fl_ledger.records[("public", "task-1", 1, "hospital-a")] = FlRecordFacts(
        frozenset({"HospitalBMSP"}), sealed.ciphertext_sha256, UPDATE_TX)
    return sealed


def fetch(running, user, record_id=UPDATE):
    return running.fetch(signed(user, action="fetch", record_id=record_id), record_id)


def test_the_tasks_publisher_gets_the_update_on_the_update_transaction(running, users, update):
    answer = fetch(running, users.other_reader)

    assert answer.status == 200, answer.text
    assert answer.body["ciphertext_sha256"] == update.ciphertext_sha256
    assert answer.body["delivery"]["statement"]["decision_tx"] == UPDATE_TX
    [entry] = [e for e in running.audit.entries if e.action == "deliver"]
    assert (entry.record_id, entry.outcome, entry.decision_tx, entry.requester.msp_id) == (
        UPDATE, "success", UPDATE_TX, "HospitalBMSP")


def test_no_one_but_the_publisher_gets_an_update(running, users, update):
    assert_refused(fetch(running, users.owner), 403, f"HospitalAMSP may not have {UPDATE}: only HospitalBMSP")


def test_an_update_the_ledger_does_not_record_is_not_delivered(running, users, update, fl_ledger):
    fl_ledger.records.clear()

    assert_refused(fetch(running, users.other_reader), 403, f"the ledger records no update for {UPDATE}")


def test_a_stored_update_other_than_the_recorded_one_is_named(running, users, update, fl_ledger):
    fl_ledger.records[("public", "task-1", 1, "hospital-a")] = FlRecordFacts(frozenset({"HospitalBMSP"}), "00" * 32,
                                                                              UPDATE_TX)

    answer = fetch(running, users.other_reader)

    assert_refused(answer, 409, f"the stored {UPDATE} is not the one recorded on the ledger")
    assert [(e.action, e.outcome) for e in running.audit.entries[-1:]] == [("deliver", "failure")]


def test_no_update_leaves_when_the_ledger_cannot_be_asked(running, users, update, fl_ledger):
    fl_ledger.error = "peer down"

    assert_refused(fetch(running, users.other_reader), 503, "ledger unavailable: peer down")


def test_a_service_without_the_fl_ledger_keeps_no_fl_records(network, users, tmp_path):
    with served(network, users, tmp_path, FakeLedger()) as run:
        answer, _ = run.store(users.colleague, record_id=UPDATE, plaintext=b"MFW1 weights")
        assert answer.status == 201
        assert_refused(fetch(run, users.other_reader), 403, "this service keeps no federated-learning records")


def test_an_fl_record_never_passes_on_an_access_decision(running, users, update):
    statement = fetch_statement(users.other_reader, "ab" * 32, record_id=UPDATE)

    answer = running.fetch(statement, UPDATE)

    assert answer.status == 200  # the fl contract decided, the decision_tx named is not what counts
    assert answer.body["delivery"]["statement"]["decision_tx"] == UPDATE_TX
