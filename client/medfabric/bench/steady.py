"""A steady PutRecord load that runs in the background while something else happens (a node dies, comes back).

Each submit is recorded: when it started and ended (monotonic seconds) and whether Fabric said it committed
VALID, or the client's error. Afterwards every record reported committed is read back: one that is not is lost.

    >>> load = SteadyLoad(topology, layout, domain_id="hospital-a", channel="public", concurrency=16)
    >>> load.start(); ...; submits = load.stop()
    >>> lost = load.lost(submits)
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass
from typing import Callable

from medfabric.bench.loadtest import readable
from medfabric.consortium.connection import connect_as
from medfabric.consortium.layout import NetworkLayout
from medfabric.consortium.topology import Topology
from medfabric.sharing.demo import demo_entry
from medfabric.sharing.emr_index import EmrIndex

RETRY_PAUSE = 0.2  # seconds a worker waits after a failed submit, so a dead node is not hammered


@dataclass(frozen=True)
class Submit:
    record_id: str
    started: float
    ended: float
    committed: bool
    error: str = ""


class BackToBack:
    """`workers` threads running `_work` until stop(); the Submits they recorded, sorted by start."""

    def __init__(self, workers: int, name: str):
        self.workers, self._name = workers, name
        self._run_id = uuid.uuid4().hex[:8]
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._submits: list[Submit] = []
        self._threads: list[threading.Thread] = []
        self._next = 0

    def start(self) -> None:
        for worker in range(self.workers):
            thread = threading.Thread(target=self._work, name=f"{self._name}-{worker}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 120.0) -> list[Submit]:
        """Stop submitting; wait for the submits in flight (each has the Gateway's deadlines) and return all."""
        self._stop.set()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        with self._lock:
            return sorted(self._submits, key=lambda s: s.started)

    def _work(self) -> None:
        raise NotImplementedError

    def _number(self) -> int:
        """The next number of this run: record ids stay unique across the workers."""
        with self._lock:
            self._next += 1
            return self._next

    def _attempt(self, record_id: str, submit: Callable[[], object]) -> None:
        """Time `submit()` and record it; after a failure pause, so a dead node is not hammered."""
        started = time.monotonic()
        try:
            submit()
            done = Submit(record_id, started, time.monotonic(), True)
        except Exception as error:  # every failure is recorded; the load goes on
            first = str(error).splitlines()[0] if str(error) else ""
            done = Submit(record_id, started, time.monotonic(), False, f"{type(error).__name__}: {first}")
        with self._lock:
            self._submits.append(done)
        if not done.committed:
            self._stop.wait(RETRY_PAUSE)


class SteadyLoad(BackToBack):
    """`concurrency` threads submitting PutRecord back to back on `channel` until stop()."""

    def __init__(self, topology: Topology, layout: NetworkLayout, *, domain_id: str, channel: str,
                 concurrency: int = 16, user: str = "doctor", peer_name: str | None = None):
        super().__init__(concurrency, "steady-load")
        self._topology, self._layout = topology, layout
        self.domain_id, self.channel, self.concurrency, self.user = domain_id, channel, concurrency, user
        self._peer_name = peer_name

    def lost(self, submits: list[Submit], peer_name: str | None = None, domain_id: str | None = None
             ) -> list[str]:
        """Record ids reported committed that cannot be read back (through `peer_name` of `domain_id`, by default
        the load's peer)."""
        committed = [s.record_id for s in submits if s.committed]
        found = set(self.readable_ids(committed, peer_name, domain_id))
        return [record_id for record_id in committed if record_id not in found]

    def readable_ids(self, record_ids: list[str], peer_name: str | None = None, domain_id: str | None = None
                     ) -> list[str]:
        """Those of `record_ids` the channel's state holds (read through `peer_name` of `domain_id`, by default
        the load's peer)."""
        with self._reader(peer_name, domain_id) as gateway:
            index = EmrIndex(gateway.get_network(self.channel))
            return [record_id for record_id in record_ids if readable(index, record_id)]

    def read_error(self, record_id: str, peer_name: str | None = None, domain_id: str | None = None
                   ) -> str | None:
        """Why `record_id` cannot be read back (through `peer_name` of `domain_id`); None if it can."""
        try:
            with self._reader(peer_name, domain_id) as gateway:
                EmrIndex(gateway.get_network(self.channel)).get(record_id)
        except Exception as error:  # noqa: BLE001 - reported, not raised
            return f"{type(error).__name__}: {' '.join(str(error).split())[:200]}"
        return None

    def _reader(self, peer_name: str | None, domain_id: str | None):
        """A gateway to read through: `domain_id`'s user of the same name at `peer_name` (that domain's duty peer
        when None), or the load's own peer."""
        if domain_id is None or domain_id == self.domain_id:
            domain_id, peer_name = self.domain_id, peer_name or self._peer_name
        return connect_as(domain_id, self.user, topology=self._topology, layout=self._layout, peer_name=peer_name)

    def _work(self) -> None:
        with connect_as(self.domain_id, self.user, topology=self._topology, layout=self._layout,
                        peer_name=self._peer_name) as gateway:
            index = EmrIndex(gateway.get_network(self.channel))
            while not self._stop.is_set():
                record_id = f"steady-{self._run_id}-{self._number():07d}"
                self._attempt(record_id, lambda: index.put(demo_entry(self.domain_id, record_id)))


def recovery_seconds(submits: list[Submit], fault_at: float, window: float = 1.0, share: float = 0.5,
                     before: float = 5.0) -> float | None:
    """Seconds from `fault_at` to the end of the first `window` after it that commits at least `share` of the
    rate of the `before` seconds before it; None if the rate never comes back."""
    ends = sorted(s.ended for s in submits if s.committed)
    rate_before = sum(1 for end in ends if fault_at - before <= end < fault_at) / before
    if rate_before == 0:
        return None
    needed = share * rate_before * window
    start = fault_at
    while start <= ends[-1]:
        if sum(1 for end in ends if start <= end < start + window) >= needed:
            return round(start + window - fault_at, 2)
        start += window / 10
    return None

