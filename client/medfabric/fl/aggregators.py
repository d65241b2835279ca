"""Aggregators behind one interface: FedAvg (by sample count, capped), coordinate median, trimmed mean, Krum.

Every aggregator is bit-for-bit deterministic: updates are taken in domain
order, sums run over the updates one at a time (element-wise IEEE float64
operations, the same on every machine, where a library's pairwise reduction
might not be), Krum's distances are exactly rounded (math.fsum). So anyone who
fetches the same updates gets the same global weights and the same hash.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol, Sequence

import numpy as np


class AggregationError(ValueError):
    """Updates an aggregator cannot combine; one line naming why."""


@dataclass(frozen=True)
class ModelUpdate:
    """One hospital's trained weights for a round and the sample count it reported."""

    domain: str
    weights: np.ndarray
    n_samples: int


class Aggregator(Protocol):
    name: str

    def aggregate(self, updates: Sequence[ModelUpdate]) -> np.ndarray:
        """The new global weights."""


def ordered(updates: Sequence[ModelUpdate], minimum: int = 1) -> list[ModelUpdate]:
    """The updates in domain order, checked: at least `minimum`, one per domain, same shape, finite."""
    if len(updates) < minimum:
        raise AggregationError(f"needs at least {minimum} update{'s' if minimum > 1 else ''}, got {len(updates)}")
    result = sorted(updates, key=lambda update: update.domain)
    domains = [update.domain for update in result]
    if len(set(domains)) != len(domains):
        raise AggregationError(f"two updates of one domain: {', '.join(domains)}")
    shape = result[0].weights.shape
    for update in result:
        if update.weights.shape != shape or update.weights.dtype != np.float64:
            raise AggregationError(f"the update of {update.domain} is not float64 of shape {shape}")
        if not np.all(np.isfinite(update.weights)):
            raise AggregationError(f"the update of {update.domain} has NaN or infinite weights")
        if isinstance(update.n_samples, bool) or not isinstance(update.n_samples, int) or update.n_samples <= 0:
            raise AggregationError(f"the update of {update.domain} reports {update.n_samples!r} samples")
    return result


def _sum(arrays: Sequence[np.ndarray]) -> np.ndarray:
    total = np.zeros_like(arrays[0])
    for array in arrays:
        total = total + array
    return total


@dataclass(frozen=True)
class FedAvg:
    """Σ_k (n_k / n) w_k with n = Σ_k n_k; each n_k first capped at max_samples (0: no cap), since a hospital
    reports its own count and could inflate it to outweigh the others."""

    max_samples: int = 0
    name: str = "fedavg"

    def counts(self, updates: Sequence[ModelUpdate]) -> list[int]:
        return [min(u.n_samples, self.max_samples) if self.max_samples else u.n_samples for u in updates]

    def aggregate(self, updates: Sequence[ModelUpdate]) -> np.ndarray:
        updates = ordered(updates)
        counts = self.counts(updates)
        total = sum(counts)
        return _sum([(count / total) * update.weights for count, update in zip(counts, updates)])


@dataclass(frozen=True)
class CoordinateMedian:
    """Per coordinate, the median of the updates (the mean of the middle two for an even count)."""

    name: str = "median"

    def aggregate(self, updates: Sequence[ModelUpdate]) -> np.ndarray:
        stacked = np.sort(np.stack([u.weights for u in ordered(updates)]), axis=0)
        k = len(stacked)
        return stacked[k // 2].copy() if k % 2 else (stacked[k // 2 - 1] + stacked[k // 2]) / 2


@dataclass(frozen=True)
class TrimmedMean:
    """Per coordinate, the mean after dropping the `trim` largest and `trim` smallest values."""

    trim: int = 1
    name: str = "trimmed-mean"

    def aggregate(self, updates: Sequence[ModelUpdate]) -> np.ndarray:
        updates = ordered(updates, minimum=2 * self.trim + 1)
        kept = np.sort(np.stack([u.weights for u in updates]), axis=0)[self.trim: len(updates) - self.trim]
        return _sum(list(kept)) / len(kept)


@dataclass(frozen=True)
class Krum:
    """The update closest to its neighbours: the least sum of squared distances to its n - f - 2 nearest others
    (at least one), for up to f Byzantine updates. Ties go to the first domain in order."""

    byzantine: int = 1
    name: str = "krum"

    def aggregate(self, updates: Sequence[ModelUpdate]) -> np.ndarray:
        updates = ordered(updates, minimum=self.byzantine + 2)
        neighbours = max(1, len(updates) - self.byzantine - 2)
        distances = [[math.fsum(np.square(a.weights - b.weights).ravel()) for b in updates] for a in updates]
        scores = [math.fsum(sorted(row[:i] + row[i + 1:])[:neighbours]) for i, row in enumerate(distances)]
        best = min(range(len(updates)), key=lambda i: (scores[i], i))
        return updates[best].weights.copy()


AGGREGATORS = ("fedavg", "median", "trimmed-mean", "krum")


def aggregator(name: str, max_samples: int = 0) -> Aggregator:
    """The aggregator of that name; AggregationError listing the known ones otherwise."""
    if name == "fedavg":
        return FedAvg(max_samples)
    if name == "median":
        return CoordinateMedian()
    if name == "trimmed-mean":
        return TrimmedMean()
    if name == "krum":
        return Krum()
    raise AggregationError(f"no aggregator '{name}' (known: {', '.join(AGGREGATORS)})")
