"""Refusals logged by a thread of their own: in order, never holding up the refused request, bounded."""

from __future__ import annotations

import logging
import threading

from medfabric.data_service.refusal_log import RefusalEntry, RefusalLog
from medfabric.data_service.service_ledger import Requester

REQUESTER = Requester("HospitalBMSP", "x509::CN=doctor")


class Sink:
    """An AuditSink that records entries; `gate` holds every write until set; `failing` makes them raise."""

    def __init__(self) -> None:
        self.entries: list[tuple] = []
        self.gate = threading.Event()
        self.gate.set()
        self.failing = False
        self.writing = threading.Event()  # set once a write has begun

    def log_access(self, action, record_id, outcome, reason, requester, decision_tx=None, break_glass=False):
        self.writing.set()
        self.gate.wait(10)
        if self.failing:
            raise RuntimeError("orderer unreachable")
        self.entries.append((action, record_id, outcome, reason, requester, decision_tx, break_glass))


def entry(n: int) -> RefusalEntry:
    return RefusalEntry("denied", f"rec-{n}", f"refusal {n}", REQUESTER, "ab" * 32, n % 2 == 0)


def test_entries_are_written_in_order_as_failures():
    sink = Sink()
    log = RefusalLog(sink)

    assert all(log.submit(entry(n)) for n in range(5))
    log.flush()

    assert [e[1] for e in sink.entries] == [f"rec-{n}" for n in range(5)]
    assert sink.entries[0] == ("denied", "rec-0", "failure", "refusal 0", REQUESTER, "ab" * 32, True)
    log.close()


def test_a_slow_ledger_does_not_hold_up_submit_and_a_full_queue_says_so():
    sink = Sink()
    sink.gate.clear()  # every commit takes "forever"
    log = RefusalLog(sink, capacity=3)

    first = log.submit(entry(0))
    assert sink.writing.wait(5)  # the writer holds entry 0, waiting on the ledger
    accepted = [first] + [log.submit(entry(n)) for n in range(1, 6)]  # at once: nothing waits for the sink

    assert accepted == [True] * 4 + [False] * 2  # one being written, three queued, then full
    sink.gate.set()
    log.flush()
    assert len(sink.entries) == sum(accepted)
    log.close()


def test_a_failing_ledger_is_reported_and_the_log_goes_on(caplog):
    sink = Sink()
    sink.failing = True
    log = RefusalLog(sink)

    with caplog.at_level(logging.ERROR):
        log.submit(entry(1))
        log.flush()
    sink.failing = False
    log.submit(entry(2))
    log.flush()

    assert "access log unavailable for denied of record rec-1: orderer unreachable" in caplog.text
    assert [e[1] for e in sink.entries] == ["rec-2"]
    log.close()


def test_close_writes_what_is_queued_then_stops():
    sink = Sink()
    log = RefusalLog(sink)
    for n in range(3):
        log.submit(entry(n))

    log.close()

    assert len(sink.entries) == 3
    assert not log._thread.is_alive()
