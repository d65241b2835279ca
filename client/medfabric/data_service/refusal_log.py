"""Refusals written to the access log by a thread of their own, so that a refused request never waits for the ledger.

An access-log entry is a transaction: its commit takes a block (a quarter second, and seconds on a busy BFT
channel). A delivery waits for its entry, since nothing unlogged may leave; a refusal gives nothing away, so
its entry is queued and the refusal answered at once. Without that, a flood of refused requests held the
service's worker threads waiting for commits, and the honest requests queued behind them.

    >>> log = RefusalLog(audit_sink)
    >>> log.submit(RefusalEntry("denied", "rec-1", "no decision", requester))   # False when the queue is full
    >>> log.flush(); log.close()
"""

from __future__ import annotations

import logging
import queue
import threading
from dataclasses import dataclass

from medfabric.data_service.service_ledger import AuditSink, Requester

CAPACITY = 1_000  # entries waiting; past it a refusal is counted as not logged
_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RefusalEntry:
    """What AuditSink.log_access takes for a failure."""

    action: str
    record_id: str | None
    reason: str
    requester: Requester | None
    decision_tx: str | None = None
    break_glass: bool = False


class RefusalLog:
    """One writer thread over `sink`; entries in the order submitted."""

    def __init__(self, sink: AuditSink, capacity: int = CAPACITY):
        self._sink = sink
        self._queue: queue.Queue[RefusalEntry | None] = queue.Queue(maxsize=capacity)
        self._thread = threading.Thread(target=self._write, name="refusal-log", daemon=True)
        self._thread.start()

    def submit(self, entry: RefusalEntry) -> bool:
        """Queue `entry`; False (nothing queued) when the queue is full."""
        try:
            self._queue.put_nowait(entry)
        except queue.Full:
            return False
        return True

    def flush(self) -> None:
        """Return once every entry submitted so far has been written (or failed)."""
        self._queue.join()

    def close(self, timeout: float = 10.0) -> None:
        """Write what is queued (for up to `timeout` seconds), then stop the thread."""
        try:
            self._queue.put(None, timeout=timeout)
        except queue.Full:
            return
        self._thread.join(timeout)

    def _write(self) -> None:
        while True:
            entry = self._queue.get()
            try:
                if entry is None:
                    return
                self._sink.log_access(entry.action, entry.record_id, "failure", entry.reason, entry.requester,
                                      entry.decision_tx, break_glass=entry.break_glass)
            except Exception as error:  # noqa: BLE001 - the refusal stands; the lost log entry is reported here
                _log.error("access log unavailable for %s of record %s: %s", entry.action, entry.record_id, error)
            finally:
                self._queue.task_done()
