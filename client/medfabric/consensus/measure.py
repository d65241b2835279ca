"""Counting SmartBFT's messages on real Fabric orderers, from what they expose: the operations endpoint's metrics.

Per orderer and channel, `cluster_comm_msg_send_time_count{channel, host}` counts the cluster messages it sent to
each other consenter (consensus messages and forwarded requests alike) and `consensus_smartbft_view_decisions`
the blocks it decided. Idle, the leader still sends heartbeats: the idle rate is measured first and taken off.
A measurement: snapshot, idle for a while, snapshot, a load through the Gateway, snapshot.
"""

from __future__ import annotations

import re
import time
import urllib.request
from dataclasses import asdict, dataclass

from medfabric.bench.loadtest import run_put_load
from medfabric.consensus import model
from medfabric.consensus.nodes import ConsensusError
from medfabric.consortium.layout import NetworkLayout
from medfabric.consortium.topology import Topology

_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)$')
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')
SENT = "cluster_comm_msg_send_time_count"
DECIDED = "consensus_smartbft_view_decisions"
VIEW = "consensus_smartbft_view_number"


def parse_metrics(text: str) -> list[tuple[str, dict[str, str], float]]:
    """Prometheus text exposition: (name, labels, value) per sample line."""
    samples = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = _SAMPLE.match(line.strip())
        if match:
            name, labels, value = match.groups()
            samples.append((name, dict(_LABEL.findall(labels or "")), float(value)))
    return samples


@dataclass(frozen=True)
class ChannelCounters:
    sent: float  # messages sent to the other consenters, all orderers of the channel together
    decisions: float  # blocks decided (the most any orderer reports)
    views: float  # the highest view number (a view change raises it)


def snapshot(topology: Topology, channel_name: str, timeout: float = 5.0) -> ChannelCounters:
    channel = topology.channel(channel_name)
    if channel.ordering.consensus != "bft":
        raise ConsensusError(f"channel {channel_name} is ordered by {channel.ordering.consensus}, not BFT")
    sent = decisions = views = 0.0
    for orderer in channel.orderers:
        url = f"http://{orderer.operations_address}/metrics"
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - our own 127.0.0.1 node
                samples = parse_metrics(response.read().decode())
        except OSError as error:
            raise ConsensusError(f"orderer {orderer.name} of {channel_name} gave no metrics at {url}: {error}") from None
        for name, labels, value in samples:
            if labels.get("channel") != channel_name:
                continue
            if name == SENT:
                sent += value
            elif name == DECIDED:
                decisions = max(decisions, value)
            elif name == VIEW:
                views = max(views, value)
    return ChannelCounters(sent, decisions, views)


@dataclass(frozen=True)
class Measurement:
    channel: str
    consenters: int
    transactions: int
    concurrency: int
    seconds: float
    tps: float
    latency_p50_ms: float
    latency_p99_ms: float
    failed: int
    blocks: float
    messages: float  # sent during the load
    idle_messages_per_s: float
    heartbeat_share: float  # of `messages`, what the idle rate accounts for
    messages_per_block: float  # idle rate taken off
    pbft_per_block: int  # the model's flat PBFT count for this many consenters
    view_changes: float

    def to_json(self) -> dict:
        return asdict(self)


def measure(topology: Topology, layout: NetworkLayout, channel_name: str, domain_id: str, transactions: int = 300,
            concurrency: int = 16, idle_s: float = 10.0) -> Measurement:
    """Messages per decided block on `channel_name` under a PutRecord load, with its latency and throughput."""
    consenters = len(topology.channel(channel_name).orderers)
    before_idle = snapshot(topology, channel_name)
    time.sleep(idle_s)
    after_idle = snapshot(topology, channel_name)
    idle_rate = (after_idle.sent - before_idle.sent) / idle_s
    result = run_put_load(topology, layout, domain_id=domain_id, channel=channel_name, count=transactions,
                          concurrency=concurrency)
    after = snapshot(topology, channel_name)
    blocks = after.decisions - after_idle.decisions
    messages = after.sent - after_idle.sent
    heartbeats = idle_rate * result.seconds
    return Measurement(
        channel=channel_name, consenters=consenters, transactions=transactions, concurrency=concurrency,
        seconds=result.seconds, tps=result.tps, latency_p50_ms=result.latency_p50_ms,
        latency_p99_ms=result.latency_p99_ms, failed=result.failed, blocks=blocks, messages=messages,
        idle_messages_per_s=idle_rate, heartbeat_share=heartbeats / messages if messages else 0.0,
        messages_per_block=(messages - heartbeats) / blocks if blocks else float("nan"),
        pbft_per_block=model.flat(consenters).total, view_changes=after.views - before_idle.views)
