"""How many refusals of one requester a data service writes to the ledger, one by one.

Every refusal is an access-log transaction, so a caller sending bad requests
in a loop would make the service submit a transaction for each. A token bucket
per requester (a verified MSP and client id; every unverified caller shares
one) lets a burst through and then a steady rate; a refusal beyond it is
answered as usual but counted instead of logged, and the next refusal of that
requester that is logged says how many were not.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Callable, Hashable

BURST = 30  # refusals logged one by one before the rate applies
RATE_PER_S = 1.0  # then this many a second


@dataclass
class _Bucket:
    tokens: float
    updated: float
    unlogged: int = 0


class RefusalBudget:
    """Token buckets of refusal log entries, one per requester key."""

    def __init__(self, burst: int = BURST, rate_per_s: float = RATE_PER_S,
                 clock: Callable[[], float] = time.monotonic, max_requesters: int = 10_000):
        if burst < 1 or rate_per_s <= 0:
            raise ValueError("a refusal budget needs burst >= 1 and a positive rate")
        self._burst, self._rate, self._clock = burst, rate_per_s, clock
        self._max_requesters = max_requesters
        self._buckets: dict[Hashable, _Bucket] = {}
        self._lock = threading.Lock()

    def admit(self, requester: Hashable) -> int | None:
        """None: do not log this refusal (it is counted). Otherwise log it, noting the returned number of this
        requester's refusals that were not logged since its last logged one."""
        with self._lock:
            now = self._clock()
            bucket = self._buckets.get(requester)
            if bucket is None:
                self._forget_full_buckets(now)
                bucket = self._buckets[requester] = _Bucket(float(self._burst), now)
            bucket.tokens = min(float(self._burst), bucket.tokens + (now - bucket.updated) * self._rate)
            bucket.updated = now
            if bucket.tokens < 1:
                bucket.unlogged += 1
                return None
            bucket.tokens -= 1
            unlogged, bucket.unlogged = bucket.unlogged, 0
            return unlogged

    def _forget_full_buckets(self, now: float) -> None:
        """Bounded memory: past max_requesters, drop the buckets that have refilled and owe no count."""
        if len(self._buckets) < self._max_requesters:
            return
        for key, bucket in list(self._buckets.items()):
            refilled = bucket.tokens + (now - bucket.updated) * self._rate >= self._burst
            if refilled and not bucket.unlogged:
                del self._buckets[key]
