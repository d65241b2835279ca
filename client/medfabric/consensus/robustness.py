"""The paper's Fig. 3 claim: a few nodes lying about their features do not change how the honest nodes group."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from medfabric.consensus.clustering import METHODS, cluster, honest_agreement
from medfabric.consensus.nodes import region_of, synthetic_nodes


@dataclass(frozen=True)
class RobustnessRow:
    method: str
    liars: int
    agreement_without: float  # adjusted Rand index of the honest nodes' groups with their true regions
    agreement_with: float

    def to_json(self) -> dict:
        return asdict(self)


def robustness(nodes: int = 160, groups: int = 4, liars: int = 8, seed: int = 0) -> list[RobustnessRow]:
    """For each linkage method: how well AHC recovers the regions of the honest nodes, with and without liars."""
    rows = []
    truth = region_of(synthetic_nodes(nodes, groups, seed), groups)
    for method in METHODS:
        honest = cluster(synthetic_nodes(nodes, groups, seed), groups, method)
        lying = cluster(synthetic_nodes(nodes, groups, seed, liars=liars), groups, method)
        rows.append(RobustnessRow(method, liars, honest_agreement(honest, truth), honest_agreement(lying, truth)))
    return rows
