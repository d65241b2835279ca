"""Counting SmartBFT's messages on real Fabric orderers, from what they expose: the operations endpoint's metrics.

Per orderer and channel, `cluster_comm_msg_send_time_count{channel, host}` counts the cluster messages it sent to
each other consenter (consensus messages and forwarded requests alike) and `consensus_smartbft_view_decisions`
the blocks it decided. Idle, the leader sends heartbeats (one to each follower per LeaderHeartbeatTimeout /
LeaderHeartbeatCount): the idle rate is measured first and reported. Under load it sends none (every PrePrepare,
prepare and commit it broadcasts resets its heartbeat timer), so nothing is taken off the load's count.
A measurement: snapshot, idle for a while, snapshot, a load through the Gateway, snapshot. Then, to tell the
messages apart (the counter has no type label), a second, smaller load with the orderers' SmartBFT logger at debug
(set through their /logspec endpoint, then back to info): each "got message from <id>: <type>" line is one
message received, by type (PrePrepare, prepare, commit, HeartBeat...); a prepare or commit marked `assist:true`
is a consenter's reply to a late one (it resends its own vote of the sequence it has left), counted apart. Each
"Received heartbeat from" line is a heartbeat a follower's monitor took: a real HeartBeat, or one of the leader's
PrePrepare/prepare/commit, which SmartBFT injects into the monitor as an artificial heartbeat.
"""

from __future__ import annotations

import json
import re
import time
import urllib.request
from collections import Counter
from dataclasses import asdict, dataclass, field

from medfabric.bench.loadtest import run_put_load
from medfabric.consensus import model
from medfabric.consensus.nodes import ConsensusError
from medfabric.consortium.layout import NetworkLayout
from medfabric.consortium.topology import Topology
from medfabric.prometheus import parse_samples

_RECEIVED = re.compile(r"got message from (\d+): <?(\w+)")
_ASSIST = re.compile(r"assist:\s*true")
_HEARTBEAT_TAKEN = "Received heartbeat from"
CONSENSUS_TYPES = ("PrePrepare", "prepare", "commit")
DEBUG_SPEC = "orderer.consensus.smartbft=debug:info"
INFO_SPEC = "info"
SENT = "cluster_comm_msg_send_time_count"
DECIDED = "consensus_smartbft_view_decisions"
VIEW = "consensus_smartbft_view_number"
FORWARDED = "consensus_smartbft_pool_count_leader_forward_request"  # requests a follower sent on to the leader
DROPPED = "cluster_comm_msg_dropped_count"  # messages an orderer dropped (its egress queue to a peer full)


@dataclass(frozen=True)
class ChannelCounters:
    sent: float  # messages sent to the other consenters, all orderers of the channel together
    decisions: float  # blocks decided (the most any orderer reports)
    views: float  # the highest view number (a view change raises it)
    forwarded: float = 0.0  # requests forwarded to the leader, all orderers together
    dropped: float = 0.0  # messages dropped, all orderers together


def snapshot(topology: Topology, channel_name: str, timeout: float = 5.0) -> ChannelCounters:
    channel = topology.channel(channel_name)
    if channel.ordering.consensus != "bft":
        raise ConsensusError(f"channel {channel_name} is ordered by {channel.ordering.consensus}, not BFT")
    sent = decisions = views = forwarded = dropped = 0.0
    for orderer in channel.orderers:
        url = f"http://{orderer.operations_address}/metrics"
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - our own 127.0.0.1 node
                samples = parse_samples(response.read().decode())
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
            elif name == FORWARDED:
                forwarded += value
            elif name == DROPPED:
                dropped += value
    return ChannelCounters(sent, decisions, views, forwarded, dropped)


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
    messages_per_block: float
    pbft_per_block: int  # the model's flat PBFT count for this many consenters
    view_changes: float
    forwarded_per_block: float  # requests the followers sent on to the leader
    dropped_per_block: float
    typed_blocks: float = 0.0  # blocks of the debug-logged load
    received_per_block: dict[str, float] = field(default_factory=dict)  # by message type, from the debug logs

    def to_json(self) -> dict:
        return asdict(self)


def set_logspec(address: str, spec: str, timeout: float = 5.0) -> None:
    request = urllib.request.Request(f"http://{address}/logspec", data=json.dumps({"spec": spec}).encode(),
                                     method="PUT")
    try:
        with urllib.request.urlopen(request, timeout=timeout):  # noqa: S310 - our own 127.0.0.1 node
            pass
    except OSError as error:
        raise ConsensusError(f"cannot set the log level at {address}: {error}") from None


def messages_by_type(topology: Topology, layout: NetworkLayout, channel_name: str, domain_id: str,
                     transactions: int, concurrency: int) -> tuple[float, Counter]:
    """(blocks decided, messages received by type) during a load run with the orderers' SmartBFT logs at debug."""
    orderers = topology.channel(channel_name).orderers
    offsets = {}
    for orderer in orderers:
        log = layout.log_file(orderer.host_name)
        offsets[orderer.name] = log.stat().st_size if log.exists() else 0
        set_logspec(orderer.operations_address, DEBUG_SPEC)
    try:
        before = snapshot(topology, channel_name)
        run_put_load(topology, layout, domain_id=domain_id, channel=channel_name, count=transactions,
                     concurrency=concurrency)
        after = snapshot(topology, channel_name)
    finally:
        for orderer in orderers:
            set_logspec(orderer.operations_address, INFO_SPEC)
    lines: list[str] = []
    for orderer in orderers:
        with open(layout.log_file(orderer.host_name), "rb") as log:
            log.seek(offsets[orderer.name])
            lines += log.read().decode(errors="replace").splitlines()
    received = tally(lines, channel_name)
    return after.decisions - before.decisions, received


def tally(lines: list[str], channel_name: str) -> Counter:
    """Messages received on `channel_name` by type, from the orderers' SmartBFT debug lines: PrePrepare, prepare,
    commit (assists as prepare_assist and commit_assist), HeartBeat, ...; also heartbeats_taken (the followers'
    monitors' "Received heartbeat" lines) and from_leader (PrePrepares, prepares and commits the leader, the
    sender of the PrePrepares, sent: each is an artificial heartbeat at its receiver)."""
    received: Counter = Counter()
    by_sender: Counter = Counter()
    for line in lines:
        if f"channel={channel_name}" not in line:
            continue
        if _HEARTBEAT_TAKEN in line:
            received["heartbeats_taken"] += 1
        for sender, kind in _RECEIVED.findall(line):
            if kind in ("prepare", "commit") and _ASSIST.search(line):
                kind += "_assist"
            received[kind] += 1
            if kind.split("_")[0] in CONSENSUS_TYPES:
                by_sender[sender, kind] += 1
    leaders = {sender for sender, kind in by_sender if kind == "PrePrepare"}
    from_leader = sum(count for (sender, _), count in by_sender.items() if sender in leaders)
    if from_leader:
        received["from_leader"] = from_leader
    return received


def measure(topology: Topology, layout: NetworkLayout, channel_name: str, domain_id: str, transactions: int = 300,
            concurrency: int = 16, idle_s: float = 10.0, typed_transactions: int = 100) -> Measurement:
    """Messages per decided block on `channel_name` under a PutRecord load, with its latency and throughput, and
    (typed_transactions > 0) the messages of a second load by type."""
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
    typed_blocks, received = (messages_by_type(topology, layout, channel_name, domain_id, typed_transactions,
                                               concurrency) if typed_transactions else (0.0, Counter()))
    return Measurement(
        channel=channel_name, consenters=consenters, transactions=transactions, concurrency=concurrency,
        seconds=result.seconds, tps=result.tps, latency_p50_ms=result.latency_p50_ms,
        latency_p99_ms=result.latency_p99_ms, failed=result.failed, blocks=blocks, messages=messages,
        idle_messages_per_s=idle_rate, messages_per_block=messages / blocks if blocks else float("nan"),
        pbft_per_block=model.flat(consenters).total, view_changes=after.views - before_idle.views,
        forwarded_per_block=(after.forwarded - after_idle.forwarded) / blocks if blocks else float("nan"),
        dropped_per_block=(after.dropped - after_idle.dropped) / blocks if blocks else float("nan"),
        typed_blocks=typed_blocks,
        received_per_block={kind: count / typed_blocks for kind, count in sorted(received.items())} if typed_blocks
        else {})
