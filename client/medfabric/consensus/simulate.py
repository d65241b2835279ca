"""A message-level simulation of one PBFT consensus instance, flat or AHC-clustered, vectorised per phase.

Every message of a phase is sent when its sender reaches that phase; it crosses a shared backbone (a FIFO link of
`backbone_mbps`: the medium every consensus message shares, which is what makes message counts cost time), then
propagates (a base latency plus distance at fibre speed plus exponential jitter), then waits for its receiver's
CPU (a FIFO per node, `verify_ms` per message: the signature check). A node moves on when it has processed its
quorum of the phase: prepared with the pre-prepare and 2f prepares, its own counting (the primary, which sends
none, needs 2f from others), committed with 2f + 1 commits, its own counting. Silent (faulty) nodes receive but send nothing. The instance is final when 2f + 1
nodes have committed; clustered, when 2f_M + 1 duty nodes have committed the inter-group round that follows
their groups' rounds (all groups run at once, over the same backbone).

Phases are simulated one after another: a phase's messages queue on the backbone behind the previous phase's
(a pessimistic simplification: in a real run an early node's next-phase messages may overtake late ones).

Throughput: a block carries block_mb / tx_bytes transactions and one is cut every max(block interval, latency).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

import numpy as np

from medfabric.consensus import model
from medfabric.consensus.clustering import cluster
from medfabric.consensus.nodes import ConsensusError, synthetic_nodes

_SEGMENT = 1e6  # seconds: larger than any simulated time, to keep per-receiver running maxima apart


@dataclass(frozen=True)
class Settings:
    backbone_mbps: float = 100.0
    message_bytes: int = 1024  # a signed consensus message: view, sequence, digest, signature
    base_latency_ms: float = 0.5
    km_per_ms: float = 200.0  # light in fibre
    jitter_ms: float = 0.2  # mean of the exponential jitter per message
    verify_ms: float = 0.05  # receiver CPU per message
    block_mb: float = 32.0  # the paper's block size and block time
    block_interval_s: float = 2.0
    tx_bytes: int = 1024
    faulty: int = 0  # silent nodes (in every group, clustered), at most f
    side_km: float = 1000.0  # nodes are placed in regions of a side x side km square
    regions: int = 8

    def check(self) -> None:
        for name in ("backbone_mbps", "message_bytes", "km_per_ms", "block_mb", "block_interval_s", "tx_bytes",
                     "side_km", "regions"):
            if not getattr(self, name) > 0:
                raise ConsensusError(f"{name} must be positive, not {getattr(self, name)}")
        for name in ("base_latency_ms", "jitter_ms", "verify_ms", "faulty"):
            if getattr(self, name) < 0:
                raise ConsensusError(f"{name} must not be negative, not {getattr(self, name)}")

    @property
    def transactions_per_block(self) -> float:
        return self.block_mb * 2**20 / self.tx_bytes


@dataclass
class _Medium:
    """The shared backbone and every node's CPU, with the time each is next free."""

    settings: Settings
    positions: np.ndarray  # (N, 2) km
    rng: np.random.Generator
    backbone_free: float = 0.0
    cpu_free: np.ndarray = field(default=None)  # (N,)
    sent: int = 0

    def __post_init__(self):
        self.cpu_free = np.zeros(len(self.positions))

    def deliver(self, src: np.ndarray, dst: np.ndarray, sent_at: np.ndarray) -> np.ndarray:
        """When each message (src -> dst, sent at sent_at) has been processed by its receiver."""
        s = self.settings
        self.sent += len(src)
        if not len(src):
            return np.empty(0)
        order = np.argsort(sent_at, kind="stable")
        service = s.message_bytes * 8 / (s.backbone_mbps * 1e6)
        finished = _fifo(sent_at[order], service, self.backbone_free)
        self.backbone_free = float(finished[-1])
        left = np.empty_like(finished)
        left[order] = finished
        distance = np.linalg.norm(self.positions[src] - self.positions[dst], axis=1)
        arrival = left + (s.base_latency_ms + distance / s.km_per_ms) / 1e3
        if s.jitter_ms:
            arrival = arrival + self.rng.exponential(s.jitter_ms / 1e3, len(src))
        processed = _per_receiver_fifo(dst, arrival, s.verify_ms / 1e3, self.cpu_free)
        np.maximum.at(self.cpu_free, dst, processed)
        return processed


def _fifo(enter: np.ndarray, service: float, free_at: float) -> np.ndarray:
    """Departure times of a FIFO server with constant service time; `enter` sorted."""
    done_before = service * np.arange(len(enter))
    return service * np.arange(1, len(enter) + 1) + np.maximum(np.maximum.accumulate(enter - done_before), free_at)


def _per_receiver_fifo(dst: np.ndarray, arrival: np.ndarray, service: float, free_at: np.ndarray) -> np.ndarray:
    """Departure times of one FIFO server per receiver (each free from free_at[receiver])."""
    order = np.lexsort((arrival, dst))
    receivers, arrivals = dst[order], arrival[order]
    starts = np.flatnonzero(np.r_[True, receivers[1:] != receivers[:-1]])
    rank = np.arange(len(order)) - np.repeat(starts, np.diff(np.r_[starts, len(order)]))
    ready = np.maximum(arrivals - service * rank, free_at[receivers])
    shifted = np.maximum.accumulate(ready + receivers * _SEGMENT) - receivers * _SEGMENT
    done = np.empty_like(arrival)
    done[order] = shifted + service * (rank + 1)
    return done


def _quorum_time(dst: np.ndarray, processed: np.ndarray, nodes: np.ndarray, needed: np.ndarray) -> np.ndarray:
    """For each of `nodes`, when it has processed needed[k] of the messages addressed to it (inf: never; 0 when it
    needs none)."""
    order = np.lexsort((processed, dst))
    size = int(max(dst.max(initial=0), nodes.max(initial=0))) + 1
    counts = np.bincount(dst, minlength=size)
    first = np.r_[0, np.cumsum(counts)[:-1]]
    result = np.full(len(nodes), np.inf)
    result[needed <= 0] = 0.0
    enough = (needed > 0) & (counts[nodes] >= needed)
    result[enough] = processed[order][first[nodes[enough]] + needed[enough] - 1]
    return result


def _broadcasts(senders: np.ndarray, start: np.ndarray, members: np.ndarray) -> tuple[np.ndarray, ...]:
    """Every sender to every other member, at the sender's start time."""
    src = np.repeat(senders, len(members))
    dst = np.tile(members, len(senders))
    at = np.repeat(start, len(members))
    keep = src != dst
    return src[keep], dst[keep], at[keep]


def _pbft_round(medium: _Medium, groups: list[np.ndarray], primaries: list[int], silent: set[int],
                start: dict[int, float], with_pre_prepare: bool = True) -> dict[int, float]:
    """One PBFT round in each group at once (phase by phase over the shared medium); when each member committed."""
    faults = [(len(members) - 1) // 3 for members in groups]
    ready = dict(start)
    if with_pre_prepare:
        src, dst, at = [], [], []
        for members, primary in zip(groups, primaries):
            others = members[members != primary]
            src.append(np.full(len(others), primary))
            dst.append(others)
            at.append(np.full(len(others), start[primary]))
        src, dst, at = (np.concatenate(part) for part in (src, dst, at))
        processed = medium.deliver(src, dst, at)
        for node, moment in zip(dst, processed):
            ready[int(node)] = float(moment)
    for phase, skip_primary in (("prepare", with_pre_prepare), ("commit", False)):
        src, dst, at = [], [], []
        for members, primary in zip(groups, primaries):
            senders = np.asarray([m for m in members if m not in silent and not (skip_primary and m == primary)
                                  and np.isfinite(ready.get(int(m), np.inf))], dtype=int)
            s, d, a = _broadcasts(senders, np.asarray([ready[int(m)] for m in senders]), members)
            src.append(s)
            dst.append(d)
            at.append(a)
        src, dst, at = (np.concatenate(part) for part in (src, dst, at))
        processed = medium.deliver(src, dst, at)
        after: dict[int, float] = {}
        for members, primary, f in zip(groups, primaries, faults):
            # a node's own prepare or commit counts: 2f from others, but the primary sends no prepare
            needed = np.full(len(members), 2 * f)
            if phase == "prepare":
                needed[members != primary if with_pre_prepare else np.ones(len(members), dtype=bool)] -= 1
            reached = _quorum_time(dst, processed, members, needed)
            for node, moment in zip(members, reached):
                after[int(node)] = max(moment, ready.get(int(node), np.inf))
        ready = after  # prepared, then committed
    return ready


def _final(committed: dict[int, float], nodes: list[int], silent: set[int]) -> float:
    honest = sorted(committed[n] for n in nodes if n not in silent)
    quorum = 2 * ((len(nodes) - 1) // 3) + 1
    return honest[quorum - 1] if len(honest) >= quorum else np.inf


@dataclass(frozen=True)
class InstanceResult:
    nodes: int
    groups: int  # 1: flat
    latency_s: float
    throughput_tps: float
    messages: int


def run_instance(nodes: int, groups: int, settings: Settings, rng: np.random.Generator) -> InstanceResult:
    """One consensus instance of `nodes` nodes, flat (groups = 1) or in `groups` AHC groups (balanced)."""
    if groups < 1 or nodes < max(1, groups):
        raise ConsensusError(f"{groups} groups need at least {groups} nodes; nodes is {nodes}")
    node_set = synthetic_nodes(nodes, settings.regions, int(rng.integers(2**31)), side=settings.side_km)
    medium = _Medium(settings, node_set.features, rng)
    if groups == 1:
        members = [np.arange(nodes)]
        primaries = [0]
    else:
        grouping = cluster(node_set, groups, balanced=True)
        members = [np.asarray(grouping.members(g)) for g in range(groups)]
        primaries = list(grouping.duty)
    silent: set[int] = set()
    for group, primary in zip(members, primaries):
        f = (len(group) - 1) // 3
        if settings.faulty > f:
            raise ConsensusError(f"faulty must be at most f = {f} for a group of {len(group)}, not {settings.faulty}")
        silent |= {int(m) for m in group[group != primary][-settings.faulty:]} if settings.faulty else set()
    committed = _pbft_round(medium, members, primaries, silent, {int(p): 0.0 for p in primaries})
    if groups == 1:
        latency = _final(committed, list(range(nodes)), silent)
    else:
        duty = np.asarray(primaries)
        inter = _pbft_round(medium, [duty], [primaries[0]], set(), {int(d): committed[int(d)] for d in duty},
                            with_pre_prepare=False)
        latency = _final(inter, [int(d) for d in duty], set())
    throughput = settings.transactions_per_block / max(settings.block_interval_s, latency)
    return InstanceResult(nodes, groups, latency, throughput, medium.sent)


def expected_messages(nodes: int, groups: int) -> int:
    """What run_instance sends without faults: the model's count (model.flat, model.clustered)."""
    return model.flat(nodes).total if groups == 1 else model.clustered(nodes, groups).total


@dataclass(frozen=True)
class SweepPoint:
    nodes: int
    groups: int
    latency_mean: float
    latency_sd: float
    latency_p5: float
    latency_p95: float
    throughput_mean: float
    throughput_sd: float
    messages: int
    repetitions: int

    def to_json(self) -> dict:
        return asdict(self)


def sweep(node_counts: list[int], group_counts: list[int], repetitions: int = 50, seed: int = 0,
          settings: Settings = Settings(), progress=None) -> tuple[list[SweepPoint], float]:
    """Every (N, M) point `repetitions` times (positions and jitter drawn from the seed); the points and the
    seconds it took."""
    settings.check()
    if repetitions < 1:
        raise ConsensusError(f"repetitions must be at least 1, not {repetitions}")
    started = time.perf_counter()
    points = []
    for groups in group_counts:
        for nodes in node_counts:
            if nodes < 4 * groups and groups > 1:
                continue  # a BFT group needs 4 nodes to tolerate one fault
            rng = np.random.default_rng([seed, nodes, groups])
            runs = [run_instance(nodes, groups, settings, rng) for _ in range(repetitions)]
            latency = np.asarray([run.latency_s for run in runs])
            throughput = np.asarray([run.throughput_tps for run in runs])
            points.append(SweepPoint(nodes, groups, float(latency.mean()), float(latency.std()),
                                     float(np.percentile(latency, 5)), float(np.percentile(latency, 95)),
                                     float(throughput.mean()), float(throughput.std()), runs[0].messages, repetitions))
            if progress is not None:
                progress(points[-1])
    return points, time.perf_counter() - started
