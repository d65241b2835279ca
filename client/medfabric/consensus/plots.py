"""Figures of the consensus study (Agg backend: no display needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from medfabric.consensus.clustering import Clustering
from medfabric.consensus.simulate import SweepPoint


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(figure, path: Path) -> Path:
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    _pyplot().close(figure)
    return path


def plot_clusters(clustering: Clustering, path: Path, title: str = "") -> Path:
    """The paper's Fig. 3: nodes by their first two features, coloured by group; liars grey, duty nodes starred;
    and the dendrogram."""
    from scipy.cluster.hierarchy import dendrogram

    plt = _pyplot()
    figure, (scatter, tree) = plt.subplots(1, 2, figsize=(12, 4.5))
    features = clustering.nodes.features
    liars = clustering.nodes.liars if clustering.nodes.liars is not None else np.zeros(len(features), dtype=bool)
    for group in range(clustering.groups):
        members = (clustering.labels == group) & ~liars
        scatter.scatter(features[members, 0], features[members, 1], s=14, label=f"group {group + 1}")
    scatter.scatter(features[liars, 0], features[liars, 1], s=18, c="grey", marker="x", label="lying nodes")
    duty = list(clustering.duty)
    scatter.scatter(features[duty, 0], features[duty, 1], s=160, marker="*", c="black", label="duty nodes")
    scatter.set_xlabel(clustering.nodes.feature_names[0])
    scatter.set_ylabel(clustering.nodes.feature_names[1] if features.shape[1] > 1 else "")
    scatter.legend(fontsize=7)
    scatter.set_title(title or f"AHC ({clustering.method}) into {clustering.groups} groups")
    if len(clustering.linkage):
        dendrogram(clustering.linkage, ax=tree, no_labels=True, color_threshold=0)
    tree.set_title("dendrogram")
    return _save(figure, path)


def plot_sweep(points: list[SweepPoint], path: Path) -> Path:
    """The paper's Fig. 4: latency and throughput against N, flat (M = 1) and clustered, with 5-95 % spread."""
    plt = _pyplot()
    figure, (latency, throughput) = plt.subplots(1, 2, figsize=(12, 4.5))
    for groups in sorted({p.groups for p in points}):
        series = sorted((p for p in points if p.groups == groups), key=lambda p: p.nodes)
        n = [p.nodes for p in series]
        label = "flat PBFT" if groups == 1 else f"AHC-PBFT, M = {groups}"
        latency.plot(n, [p.latency_mean for p in series], marker="o", label=label)
        latency.fill_between(n, [p.latency_p5 for p in series], [p.latency_p95 for p in series], alpha=0.2)
        throughput.plot(n, [p.throughput_mean for p in series], marker="o", label=label)
    latency.set_xlabel("consensus nodes N")
    latency.set_ylabel("latency of one instance (s)")
    latency.set_title("latency (mean, 5-95 % band)")
    throughput.set_xlabel("consensus nodes N")
    throughput.set_ylabel("throughput (tx/s)")
    throughput.set_title("throughput")
    for axis in (latency, throughput):
        axis.legend(fontsize=8)
    return _save(figure, path)
