"""Consensus nodes and the features they are clustered on, read from a CSV file and checked line by line.

The file has a header; `id` names each node, the feature columns are numbers (by default `x` and `y`: a node's
position, so that distance stands for network latency; the paper's per-node transaction attributes, e.g.
blood_pressure,glucose,heart_rate, with --features).
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medfabric.consensus import DEFAULT_FEATURES, ConsensusError


@dataclass(frozen=True)
class NodeSet:
    ids: tuple[str, ...]  # sorted: every result is in this order
    features: np.ndarray  # (N, F)
    feature_names: tuple[str, ...]
    liars: np.ndarray | None = None  # (N,) bool, for generated sets: nodes that report false features

    def __len__(self) -> int:
        return len(self.ids)


def read_nodes(path: Path, features: tuple[str, ...] = DEFAULT_FEATURES) -> NodeSet:
    """The nodes of a CSV file, sorted by id; ConsensusError naming the file, line and column of a bad value."""
    try:
        with open(path, newline="") as handle:
            rows = list(csv.DictReader(handle))
            header = rows[0].keys() if rows else []
    except FileNotFoundError:
        raise ConsensusError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise ConsensusError(f"{path}: cannot be read as CSV: {error}") from None
    if not rows:
        raise ConsensusError(f"{path} has no nodes (a header line, then one line per node)")
    for column in ("id", *features):
        if column not in header:
            raise ConsensusError(f"{path} has no column '{column}' (it has: {', '.join(header)})")
    ids, values = [], []
    for line, row in enumerate(rows, start=2):
        node_id = (row["id"] or "").strip()
        if not node_id:
            raise ConsensusError(f"{path} line {line}: the id is empty")
        vector = []
        for column in features:
            text = (row[column] or "").strip()
            try:
                value = float(text)
            except ValueError:
                raise ConsensusError(f"{path} line {line}: {column} is not a number: {text!r}") from None
            if not math.isfinite(value):
                raise ConsensusError(f"{path} line {line}: {column} must be finite, not {text}")
            vector.append(value)
        ids.append(node_id)
        values.append(vector)
    duplicates = sorted({node_id for node_id in ids if ids.count(node_id) > 1})
    if duplicates:
        raise ConsensusError(f"{path}: node id {duplicates[0]} appears more than once")
    order = sorted(range(len(ids)), key=ids.__getitem__)
    return NodeSet(tuple(ids[i] for i in order), np.asarray([values[i] for i in order], dtype=np.float64),
                   tuple(features))


def write_nodes(nodes: NodeSet, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", *nodes.feature_names])
        for node_id, vector in zip(nodes.ids, nodes.features):
            writer.writerow([node_id, *(f"{value:.6f}" for value in vector)])
    return path


def synthetic_nodes(count: int, regions: int = 4, seed: int = 0, liars: int = 0, spread: float = 60.0,
                    side: float = 1000.0) -> NodeSet:
    """`count` nodes in `regions` Gaussian clusters on a side x side km square (region centres drawn apart); the
    first `liars` of a random choice report a uniformly random position instead of their own."""
    if count < 1 or regions < 1:
        raise ConsensusError("a synthetic node set needs at least one node and one region")
    if not 0 <= liars <= count:
        raise ConsensusError(f"liars must be between 0 and {count}, not {liars}")
    rng = np.random.default_rng(seed)
    centres = rng.uniform(0.15 * side, 0.85 * side, (regions, 2))
    region = np.arange(count) % regions
    features = centres[region] + rng.normal(0.0, spread, (count, 2))
    lying = np.zeros(count, dtype=bool)
    lying[rng.choice(count, liars, replace=False)] = True
    features[lying] = rng.uniform(0.0, side, (liars, 2))
    width = len(str(count - 1))
    return NodeSet(tuple(f"n{i:0{width}d}" for i in range(count)), features, DEFAULT_FEATURES, lying)


def region_of(nodes: NodeSet, regions: int) -> np.ndarray:
    """The region each synthetic node was drawn in (synthetic_nodes assigns them in turn)."""
    return np.arange(len(nodes)) % regions
