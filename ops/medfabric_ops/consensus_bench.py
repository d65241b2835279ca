"""`make bench-consensus`: real SmartBFT, flat against clustered, on this machine.

Flat: the default consortium with K orderers on the public channel (K = 4, 7, 10, 16). Clustered: 16 nodes
clustered into 4 groups of 4 (`medfabric consensus cluster --out`): a BFT set of 4 per group's local channel and
the 4 duty nodes' set on the public channel. Each case comes up in its own build folder, gets the same PutRecord
load on each BFT channel (medfabric.bench.loadtest through the Gateway), has its orderers' message counters read
(medfabric.consensus.measure), and is cleaned away. The report goes to build/bench/consensus-<UTC time>/.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml

from medfabric.consensus import model
from medfabric.consensus.clustering import cluster
from medfabric.consensus.measure import measure
from medfabric.consensus.nodes import synthetic_nodes
from medfabric.consensus.topology_writer import topology_document
from medfabric.consortium.layout import NetworkLayout
from medfabric.consortium.topology import DEFAULT_TOPOLOGY

from .isolated import IsolatedConsortium

FLAT_SIZES = (4, 7, 10, 16)
GROUPS, GROUP_SIZE = 4, 4
BASE_PORT = 27000
PROFILE = "low-latency"


def flat_document(consenters: int) -> dict[str, Any]:
    document = yaml.safe_load(DEFAULT_TOPOLOGY.read_text())
    document["base_port"] = BASE_PORT
    document["channels"]["public"]["orderers"] = consenters
    document.setdefault("baseline", {})["enabled"] = False
    return document


def clustered_document(seed: int = 0) -> dict[str, Any]:
    nodes = synthetic_nodes(GROUPS * GROUP_SIZE, GROUPS, seed)
    return topology_document(cluster(nodes, GROUPS, balanced=True), BASE_PORT)


def smartbft_per_block(consenters: int) -> int:
    """SmartBFT's three phases per decision: the leader's pre-prepare to K - 1, then every consenter's prepare
    and commit to the other K - 1 (its leader prepares too, unlike PBFT's primary)."""
    return (consenters - 1) + 2 * consenters * (consenters - 1)


def run_case(name: str, document: dict[str, Any], folder: Path, transactions: int, concurrency: int,
             idle_s: float, say: Callable[[str], None]) -> dict[str, Any]:
    consortium = IsolatedConsortium(document, folder, PROFILE)
    topology, layout = consortium.topology, consortium.layout
    orderers = sum(len(channel.orderers) for channel in topology.channels)
    say(f"{name}: {orderers} orderers, setting up")
    channels = []
    with consortium:
        for channel in topology.channels:
            if channel.ordering.consensus != "bft":
                continue
            owner = channel.domains[0].id
            say(f"{name}: {transactions} transactions on {channel.name} ({len(channel.orderers)} consenters)")
            measured = measure(topology, layout, channel.name, owner, transactions, concurrency, idle_s)
            channels.append({**measured.to_json(), "smartbft_per_block": smartbft_per_block(measured.consenters)})
    return {"case": name, "orderers": orderers, "channels": channels}


def run(out: Path | None = None, transactions: int = 300, concurrency: int = 16, idle_s: float = 10.0,
        flat_sizes: tuple[int, ...] = FLAT_SIZES, say: Callable[[str], None] = print) -> Path:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    out = out or NetworkLayout.default().root / "bench" / f"consensus-{stamp}"
    cases = [(f"flat-{k}", flat_document(k)) for k in flat_sizes]
    cases.append((f"ahc-{GROUPS}x{GROUP_SIZE}", clustered_document()))
    results = [run_case(name, document, out / name, transactions, concurrency, idle_s, say)
               for name, document in cases]
    report = {"when": stamp, "profile": PROFILE, "transactions": transactions, "concurrency": concurrency,
              "cases": results,
              "model": {"flat": {k: model.flat(k).total for k in flat_sizes},
                        "ahc": model.clustered(GROUPS * GROUP_SIZE, GROUPS).to_json()}}
    (out / "report.json").write_text(json.dumps(report, indent=2))
    (out / "report.md").write_text(markdown(report))
    say(markdown(report))
    return out


def markdown(report: dict[str, Any]) -> str:
    lines = ["| case | channel | K | blocks | tx/block | messages/block | SmartBFT 3 phases | PBFT model | "
             "forwarded/block | dropped/block | idle msg/s | views changed | TPS | p50 ms | p99 ms |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for case in report["cases"]:
        for c in case["channels"]:
            per_block = c['transactions'] / c['blocks'] if c['blocks'] else float("nan")
            lines.append(f"| {case['case']} | {c['channel']} | {c['consenters']} | {c['blocks']:.0f} | "
                         f"{per_block:.1f} | {c['messages_per_block']:.1f} | {c['smartbft_per_block']} | "
                         f"{c['pbft_per_block']} | {c['forwarded_per_block']:.2f} | {c['dropped_per_block']:.2f} | "
                         f"{c['idle_messages_per_s']:.1f} | {c['view_changes']:.0f} | {c['tps']} | "
                         f"{c['latency_p50_ms']} | {c['latency_p99_ms']} |")
    lines += ["", "Messages received per block by type (a second load of the same kind, SmartBFT logs at debug; an "
              "assist is a consenter's resend of its vote to a late one; heartbeats taken: the followers' monitors, "
              "real HeartBeats and the leader's messages injected as artificial ones):", "",
              "| case | channel | K | blocks | PrePrepare | prepare | prepare assists | commit | commit assists | "
              "state transfer (req + resp) | HeartBeat | heartbeats taken | from the leader | other |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for case in report["cases"]:
        for c in case["channels"]:
            kinds = dict(c["received_per_block"])
            known = [kinds.pop(k, 0.0) for k in ("PrePrepare", "prepare", "prepare_assist", "commit",
                                                 "commit_assist")]
            transfer = kinds.pop("state_transfer_request", 0.0) + kinds.pop("state_transfer_response", 0.0)
            heartbeat = kinds.pop("HeartBeat", 0.0) + kinds.pop("heart_beat_response", 0.0)
            taken, from_leader = kinds.pop("heartbeats_taken", 0.0), kinds.pop("from_leader", 0.0)
            other = ", ".join(f"{k} {v:.2f}" for k, v in kinds.items()) or "-"
            lines.append(f"| {case['case']} | {c['channel']} | {c['consenters']} | {c['typed_blocks']:.0f} | "
                         + " | ".join(f"{v:.2f}" for v in (*known, transfer, heartbeat, taken, from_leader))
                         + f" | {other} |")
    return "\n".join(lines) + "\n"
