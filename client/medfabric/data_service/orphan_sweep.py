"""Settling the puts that did not complete: a payload stored but never indexed is destroyed after a grace period.

A put is two steps on two systems: the owner's client stores the sealed payload
with the data service, then writes its index entry on the local channel. A put
cut between them (the client or the service killed, the ledger unreachable)
leaves ciphertext that nothing on the ledger refers to. The service marks each
store as pending (medfabric.data_service.store.PendingPut) before it writes the
blob; once a pending record is `grace` old, the sweep reads its entry in the
local channel's emr_index (one query per put, in the sweep's thread):

* a live entry: the put completed; the mark is dropped.
* a tombstone: the put was undone on the ledger but the payload was not erased
  (the service was down when the client compensated): ciphertext and key are
  destroyed, the record left erased.
* no entry: ciphertext and key are destroyed with no tombstone, so the same
  record id can be put again.
* the ledger cannot be asked: kept for the next sweep.

Each destruction is written to the local access log (action erase) before it is
done. The grace must exceed the time a client takes from the store's answer to
its index entry's commit; the topology sets it (data_services.orphan_grace).

    >>> sweep = service.orphan_sweep(LedgerEmrIndex(gateway))
    >>> sweep.run()            # SweepOutcome(confirmed=.., destroyed=.., kept=..)
    >>> sweep.run_every(sweep.interval_s, stop_event)   # in the service process, a thread
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Protocol

from medfabric.data_service.service_ledger import AuditSink, LedgerError
from medfabric.data_service.store import BlobStore, KeyStore, PendingPut, PendingPuts, StoreError

_log = logging.getLogger(__name__)
MAX_INTERVAL_S = 60.0  # a sweep every quarter grace, at least once a minute and at most once a second


class IndexLedger(Protocol):
    def index_entry(self, channel: str, record_id: str) -> dict[str, Any] | None:
        """The emr_index entry of `record_id` on `channel` (a tombstone has erased true); None when there is none.
        LedgerError when the ledger cannot be asked."""


@dataclass
class SweepOutcome:
    """What one sweep did, by record id."""

    confirmed: list[str] = field(default_factory=list)  # indexed: the put completed
    destroyed: list[str] = field(default_factory=list)  # never indexed, or tombstoned on the ledger
    kept: list[str] = field(default_factory=list)  # within the grace, or the ledger could not be asked

    def summary(self) -> str:
        return (f"{len(self.confirmed)} confirmed indexed, {len(self.destroyed)} destroyed, "
                f"{len(self.kept)} kept pending")


class OrphanSweep:
    """The sweep over one service's stores; `lock` is the one its stores and erases hold."""

    def __init__(self, blobs: BlobStore, keys: KeyStore, pending: PendingPuts, index: IndexLedger, audit: AuditSink,
                 channel: str, lock: threading.Lock, grace: timedelta,
                 clock: Callable[[], datetime] | None = None):
        self._blobs, self._keys, self._pending, self._index, self._audit = blobs, keys, pending, index, audit
        self._channel, self._lock, self.grace = channel, lock, grace
        self._clock = clock or (lambda: datetime.now(timezone.utc))

    @property
    def interval_s(self) -> float:
        """How often run_every should sweep: a put is settled within about a quarter grace of its grace."""
        return max(1.0, min(MAX_INTERVAL_S, self.grace.total_seconds() / 4))

    def run(self) -> SweepOutcome:
        """Settle every pending put that can be settled now."""
        outcome = SweepOutcome()
        for put in self._pending.all():
            try:
                verdict = self._settle(put)
            except LedgerError as error:
                _log.warning("orphan sweep: cannot ask the index of record %s: %s", put.record_id, error)
                verdict = "kept"
            except (StoreError, OSError) as error:
                _log.error("orphan sweep: record %s: %s", put.record_id, error)
                verdict = "kept"
            getattr(outcome, verdict).append(put.record_id)
        if outcome.confirmed or outcome.destroyed:
            _log.info("orphan sweep: %s", outcome.summary())
        return outcome

    def run_every(self, interval_s: float, stop: threading.Event) -> None:
        """Sweep now and then every `interval_s` until `stop` is set."""
        while not stop.is_set():
            try:
                self.run()
            except Exception as error:  # noqa: BLE001 - the sweep thread must outlive one bad round
                _log.error("orphan sweep failed: %s", type(error).__name__)
            stop.wait(interval_s)

    def _settle(self, put: PendingPut) -> str:
        if self._clock() - put.stored_at <= self.grace:  # a put in progress, most likely: not asked about yet
            return "kept"
        entry = self._index.index_entry(self._channel, put.record_id)
        if entry is not None and not entry.get("erased"):
            self._pending.remove(put.record_id)
            return "confirmed"
        if entry is None:
            reason = (f"put not completed: not indexed on {self._channel} within {_seconds(self.grace)} of its "
                      "store; ciphertext and key destroyed")
        else:
            reason = f"erased on {self._channel} while its payload was kept; ciphertext and key destroyed"
        self._audit.log_access("erase", put.record_id, "success", reason, None)
        with self._lock:
            if self._pending.get(put.record_id) != put:  # stored again or settled since it was read
                return "kept"
            self._destroy(put, tombstone=entry is not None)
        return "destroyed"

    def _destroy(self, put: PendingPut, *, tombstone: bool) -> None:
        try:
            stored = self._keys.get(put.record_id).ciphertext_sha256
        except StoreError:  # erased already, or no key: the store was cut between its blob and its key
            stored = None
        if tombstone:
            self._keys.erase(put.record_id)
        elif stored == put.ciphertext_sha256:
            self._keys.discard(put.record_id)
        self._blobs.delete(put.ciphertext_sha256)
        self._pending.remove(put.record_id)


def _seconds(interval: timedelta) -> str:
    return f"{interval.total_seconds():g} s"
