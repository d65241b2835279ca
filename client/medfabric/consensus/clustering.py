"""Agglomerative hierarchical clustering of consensus nodes into groups, each with its duty node (scipy).

Deterministic: nodes are clustered in id order and scipy's linkage breaks ties by that order; groups are numbered
by their smallest node id. A group's duty node is its medoid: the member with the least total distance to the
other members (its most central node; ties go to the smaller id). `balanced` cuts the dendrogram's leaf order into
groups whose sizes differ by at most one, so that no group is too small to run BFT (4 nodes for f = 1).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.cluster.hierarchy import fcluster, leaves_list, linkage
from scipy.spatial.distance import pdist, squareform

from medfabric.consensus import METHODS, ConsensusError
from medfabric.consensus.nodes import NodeSet


@dataclass(frozen=True)
class Clustering:
    nodes: NodeSet
    labels: np.ndarray  # (N,) group of each node, 0..M-1
    duty: tuple[int, ...]  # the duty node's index of each group
    linkage: np.ndarray
    method: str

    @property
    def groups(self) -> int:
        return len(self.duty)

    def members(self, group: int) -> list[int]:
        return [int(i) for i in np.flatnonzero(self.labels == group)]

    def sizes(self) -> list[int]:
        return [len(self.members(group)) for group in range(self.groups)]

    def to_json(self) -> dict:
        return {"method": self.method, "groups": [
            {"group": group, "duty_node": self.nodes.ids[self.duty[group]],
             "members": [self.nodes.ids[i] for i in self.members(group)]} for group in range(self.groups)]}


def cluster(nodes: NodeSet, groups: int, method: str = "ward", balanced: bool = False) -> Clustering:
    if method not in METHODS:
        raise ConsensusError(f"method must be one of {', '.join(METHODS)}, not {method!r}")
    if groups < 1:
        raise ConsensusError(f"groups must be at least 1, not {groups}")
    if len(nodes) < groups:
        raise ConsensusError(f"{groups} groups need at least {groups} nodes; there are {len(nodes)}")
    if len(nodes) == 1:
        return Clustering(nodes, np.zeros(1, dtype=int), (0,), np.empty((0, 4)), method)
    tree = linkage(nodes.features, method=method)
    if balanced:
        order = leaves_list(tree)
        raw = np.empty(len(nodes), dtype=int)
        for group, chunk in enumerate(np.array_split(order, groups)):
            raw[chunk] = group
    else:
        raw = fcluster(tree, t=groups, criterion="maxclust")
        if len(set(raw)) != groups:
            raise ConsensusError(f"the dendrogram has no cut into exactly {groups} groups (ties at that height): "
                                 f"try --balanced or another --method")
    labels = _numbered_by_first_member(raw)
    distances = squareform(pdist(nodes.features))
    duty = []
    for group in range(groups):
        members = np.flatnonzero(labels == group)
        totals = distances[np.ix_(members, members)].sum(axis=1)
        duty.append(int(members[np.flatnonzero(totals == totals.min())[0]]))
    return Clustering(nodes, labels, tuple(duty), tree, method)


def _numbered_by_first_member(raw: np.ndarray) -> np.ndarray:
    first: dict[int, int] = {}
    for index, label in enumerate(raw):
        first.setdefault(int(label), len(first))
    return np.asarray([first[int(label)] for label in raw], dtype=int)


def honest_agreement(clustering: Clustering, truth: np.ndarray) -> float:
    """Adjusted Rand index between the groups of the honest nodes and their true regions (1: identical)."""
    from sklearn.metrics import adjusted_rand_score

    honest = ~clustering.nodes.liars if clustering.nodes.liars is not None else np.ones(len(truth), dtype=bool)
    return float(adjusted_rand_score(truth[honest], clustering.labels[honest]))
