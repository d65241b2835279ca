"""Message counts of one consensus instance, per phase (SYSTEM.md section 4).

Flat PBFT over N nodes: pre-prepare N - 1, prepare (N - 1)^2, commit N (N - 1); about 2 N (N - 1).
AHC-PBFT with M groups (equal groups of N / M, or the given sizes n_g):
    intra pre-prepare  sum_g (n_g - 1)         = N - M
    intra prepare      sum_g (n_g - 1)^2       = M (N/M - 1)^2
    intra commit       sum_g n_g (n_g - 1)     = N (N/M - 1)
    inter (duty nodes) 2 M (M - 1)
and the paper's order of the whole, O(zeta^2) with zeta = max(N / sqrt(M), M).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from medfabric.consensus import ConsensusError


@dataclass(frozen=True)
class MessageCounts:
    pre_prepare: int
    prepare: int
    commit: int
    inter: int = 0  # among the duty nodes (clustered only)

    @property
    def total(self) -> int:
        return self.pre_prepare + self.prepare + self.commit + self.inter

    def to_json(self) -> dict:
        return {**asdict(self), "total": self.total}


def flat(nodes: int) -> MessageCounts:
    if nodes < 1:
        raise ConsensusError(f"nodes must be at least 1, not {nodes}")
    return MessageCounts(nodes - 1, (nodes - 1) ** 2, nodes * (nodes - 1))


def equal_sizes(nodes: int, groups: int) -> list[int]:
    """Group sizes as even as they can be (they differ by at most one)."""
    if groups < 1 or nodes < groups:
        raise ConsensusError(f"{groups} groups need at least {groups} nodes and a positive count; nodes is {nodes}")
    base, extra = divmod(nodes, groups)
    return [base + 1] * extra + [base] * (groups - extra)


def clustered(nodes: int, groups: int, sizes: Sequence[int] | None = None) -> MessageCounts:
    sizes = list(sizes) if sizes is not None else equal_sizes(nodes, groups)
    if len(sizes) != groups or sum(sizes) != nodes or min(sizes) < 1:
        raise ConsensusError(f"group sizes {sizes} are not {groups} positive sizes adding up to {nodes}")
    return MessageCounts(sum(n - 1 for n in sizes), sum((n - 1) ** 2 for n in sizes), sum(n * (n - 1) for n in sizes),
                         2 * groups * (groups - 1))


def zeta(nodes: int, groups: int) -> float:
    return max(nodes / math.sqrt(groups), groups)
