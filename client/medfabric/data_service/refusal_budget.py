"""How much a requester's refused requests may cost a data service: token buckets per requester.

Every refusal is an access-log transaction, so a caller sending bad requests
in a loop would make the service submit a transaction for each, and ask the
ledger for each. Two budgets bound that, both a burst and then a steady rate:

* RefusalBudget, per verified requester (an MSP and client id; every unverified
  caller shares one): a refusal beyond it is answered as usual but counted
  instead of logged, and the next logged refusal of that requester says how
  many were not.
* RefusalGate, per TLS client (medfabric.data_service.transport.TlsPeer): once a
  client's refusals are over it, its requests are answered 429 at once, with
  no ledger read and no statement check, until its bucket refills; the other
  clients are not slowed.

The refusals that are logged are written by a thread of their own
(medfabric.data_service.refusal_log), so a refused request never waits for
its entry's commit.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Callable, Hashable

BURST = 30  # refusals logged one by one before the rate applies
RATE_PER_S = 1.0  # then this many a second
GATE_BURST = 60  # refused requests a TLS client may send before it is throttled
GATE_RATE_PER_S = 5.0


@dataclass
class _Bucket:
    tokens: float
    updated: float
    unlogged: int = 0  # RefusalBudget: refusals not logged since the last logged one


class _TokenBuckets:
    """Buckets of `burst` tokens refilled at `rate_per_s`, one per key, in bounded memory."""

    def __init__(self, burst: float, rate_per_s: float, clock: Callable[[], float], max_keys: int):
        if burst < 1 or rate_per_s <= 0:
            raise ValueError("a refusal budget needs burst >= 1 and a positive rate")
        self.burst, self.rate, self._clock, self._max_keys = float(burst), rate_per_s, clock, max_keys
        self._buckets: dict[Hashable, _Bucket] = {}
        self.lock = threading.Lock()

    def bucket(self, key: Hashable) -> _Bucket:
        """The key's bucket, refilled to now; call with the lock held."""
        now = self._clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            self._forget_full_buckets(now)
            bucket = self._buckets[key] = _Bucket(self.burst, now)
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
        bucket.updated = now
        return bucket

    def _forget_full_buckets(self, now: float) -> None:
        """Past max_keys, drop the buckets that have refilled and owe no count."""
        if len(self._buckets) < self._max_keys:
            return
        for key, bucket in list(self._buckets.items()):
            refilled = bucket.tokens + (now - bucket.updated) * self.rate >= self.burst
            if refilled and not bucket.unlogged:
                del self._buckets[key]


class RefusalBudget:
    """Token buckets of refusal log entries, one per requester key."""

    def __init__(self, burst: int = BURST, rate_per_s: float = RATE_PER_S,
                 clock: Callable[[], float] = time.monotonic, max_requesters: int = 10_000):
        self._buckets = _TokenBuckets(burst, rate_per_s, clock, max_requesters)

    def admit(self, requester: Hashable) -> int | None:
        """None: do not log this refusal (it is counted). Otherwise log it, noting the returned number of this
        requester's refusals that were not logged since its last logged one."""
        with self._buckets.lock:
            bucket = self._buckets.bucket(requester)
            if bucket.tokens < 1:
                bucket.unlogged += 1
                return None
            bucket.tokens -= 1
            unlogged, bucket.unlogged = bucket.unlogged, 0
            return unlogged

    def not_logged(self, requester: Hashable) -> None:
        """A refusal admit() let through could not be logged after all: counted with the unlogged ones."""
        with self._buckets.lock:
            self._buckets.bucket(requester).unlogged += 1


class RefusalGate:
    """Per TLS client: refused requests spend tokens; with none left its requests wait (are answered 429)."""

    def __init__(self, burst: int = GATE_BURST, rate_per_s: float = GATE_RATE_PER_S,
                 clock: Callable[[], float] = time.monotonic, max_clients: int = 10_000):
        self._buckets = _TokenBuckets(burst, rate_per_s, clock, max_clients)

    def wait_s(self, client: Hashable) -> float:
        """0: serve the client's request now; otherwise answer it 429, to retry after this many seconds."""
        with self._buckets.lock:
            tokens = self._buckets.bucket(client).tokens
        return 0.0 if tokens >= 1 else (1 - tokens) / self._buckets.rate

    def refused(self, client: Hashable) -> None:
        """The client's request was refused (any 4xx): one token less."""
        with self._buckets.lock:
            bucket = self._buckets.bucket(client)
            bucket.tokens = max(0.0, bucket.tokens - 1)
