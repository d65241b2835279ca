"""When a channel takes transactions: its ordering service has a leader (for SmartBFT: a quorum of consenters
follows one leader, none of them in a view change), and every member peer holds the blocks those committed.

A node that answers /healthz and TLS is not yet a channel that orders: after a
restart a Raft orderer refuses every transaction ("no Raft leader") until its
election timeout has passed, and a SmartBFT consenter may be in a view change. A consenter outside the
quorum does not hold the channel back (SmartBFT orders without f of them) but is named as a straggler:
seen on a restarted leader that complained alone and stayed in a view change of its own.
The peers, refused meanwhile, retry their block delivery with a growing
pause. So `up` ends by waiting on what the nodes' operations endpoints say
(their Prometheus /metrics), never on a transaction of its own:

    >>> wait_until_ready(topology, topology.channels, timeout=60)
    >>> not_ready(topology, channel)      # None once ready, else what is still missing
    'raft0.orderer.hospital-a.medfabric.local has no leader for hospital-a-local'

Metrics read: etcdraft `consensus_etcdraft_is_leader` and
`consensus_etcdraft_committed_block_number`; SmartBFT `consensus_BFT_leader_id`,
`consensus_smartbft_viewchange_{current,next}_view` and
`consensus_BFT_committed_block_number`; peers `ledger_blockchain_height`.
"""

from __future__ import annotations

import http.client
import logging
import time
from collections import Counter
from typing import Callable, Iterable

from medfabric.consortium.topology import Channel, Topology
from medfabric.prometheus import parse_samples

from .process import poll_until



class ChannelNotReadyError(RuntimeError):
    """A channel did not become ready in time; the message names the channel and what was missing."""


def read_metrics(address: str, timeout: float = 2.0) -> dict[tuple[str, str], float]:
    """{(metric name, channel label): value} of the Prometheus text at http://address/metrics; {} if unreachable."""
    host, port = address.rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        connection.request("GET", "/metrics")
        response = connection.getresponse()
        text = response.read().decode(errors="replace") if response.status == 200 else ""
    except (OSError, http.client.HTTPException):
        return {}
    finally:
        connection.close()
    return parse_metrics(text)


def parse_metrics(text: str) -> dict[tuple[str, str], float]:
    """{(metric name, channel label): value} of the samples that have a channel label."""
    return {(name, labels["channel"]): value for name, labels, value in parse_samples(text) if "channel" in labels}


def not_ready(topology: Topology, channel: Channel) -> str | None:
    """None when `channel` takes transactions and its peers are in step; else what is missing, in one line."""
    return _readiness(channel)[0]


def stragglers(topology: Topology, channel: Channel) -> list[str]:
    """The consenters of a ready SmartBFT channel outside its quorum (a restarted one still in a view change of
    its own, say), one line each; the channel orders without them."""
    return _readiness(channel)[1]


def _readiness(channel: Channel) -> tuple[str | None, list[str]]:
    name = channel.name
    orderers = {orderer.host_name: read_metrics(orderer.operations_address) for orderer in channel.orderers}
    behind: list[str] = []
    if channel.ordering.consensus == "bft":
        prefix = "consensus_BFT"
        leaders = {host: metrics.get(("consensus_BFT_leader_id", name)) for host, metrics in orderers.items()}
        votes = Counter(leader for leader in leaders.values() if leader)
        if not votes:
            return f"the consenters of {name} do not follow one leader yet ({_listed(leaders)})", []
        leader = votes.most_common(1)[0][0]
        changing = {host for host, metrics in orderers.items()
                    if metrics.get(("consensus_smartbft_viewchange_next_view", name))
                    != metrics.get(("consensus_smartbft_viewchange_current_view", name))}
        quorum = {host for host in orderers if leaders[host] == leader and host not in changing}
        if len(quorum) < bft_quorum(len(orderers)):
            if changing:
                return f"{', '.join(sorted(changing))}: view change in progress on {name}", []
            return f"the consenters of {name} do not follow one leader yet ({_listed(leaders)})", []
        for host in orderers:
            if host in quorum:
                continue
            if host in changing:
                view = orderers[host].get(("consensus_smartbft_viewchange_next_view", name))
                behind.append(f"{host}: {_OWN_VIEW_CHANGE} {int(view or 0)} of its own on {name} "
                              f"(the others follow leader {int(leader)}); the channel orders without it")
            else:
                known = f"follows leader {int(leaders[host])}" if leaders[host] else "knows no leader"
                behind.append(f"{host}: {known} on {name}, the others {int(leader)}; the channel orders without it")
        orderers = {host: metrics for host, metrics in orderers.items() if host in quorum}
    else:
        prefix = "consensus_etcdraft"
        leading = [host for host, metrics in orderers.items() if metrics.get(("consensus_etcdraft_is_leader", name))]
        if len(leading) != 1:
            return f"{', '.join(orderers)}: no Raft leader for {name} yet", []
    committed = [metrics.get((f"{prefix}_committed_block_number", name)) for metrics in orderers.values()]
    if any(number is None for number in committed):
        return f"an orderer of {name} reports no committed block yet", []
    height = int(max(committed)) + 1
    for peer in channel.peers:
        peer_height = read_metrics(peer.operations_address).get(("ledger_blockchain_height", name))
        if peer_height is None or peer_height < height:
            return f"{peer.host_name} holds {int(peer_height or 0)} of the {height} blocks of {name}", []
    return None, behind


_log = logging.getLogger(__name__)
_OWN_VIEW_CHANGE = "in a view change to view"
REJOIN_TIMEOUT_S = 90.0
REJOIN_MARGIN_S = 3.0  # beyond the heartbeat timeout, before a rejoined consenter counts as in step
REJOIN_POLL_S = 1.0


def stuck_in_view_change(stragglers: Iterable[str]) -> list[str]:
    """The host names of those `stragglers` (lines as wait_until_ready returns them) that sit in a view change of
    their own, sorted: SmartBFT leaves such a consenter there for good; restarted, it syncs."""
    return sorted({_host(line) for line in stragglers if f": {_OWN_VIEW_CHANGE} " in line})


def _host(line: str) -> str:
    """The host name a straggler line (or a not-in-step line) begins with."""
    return line.split(":", 1)[0]


def alive_consenters(channel: Channel) -> set[str]:
    """The host names of the channel's orderers whose operations endpoint answers now."""
    return {orderer.host_name for orderer in channel.orderers if read_metrics(orderer.operations_address)}


def settle_rejoined(channel: Channel, rejoined: set[str], restart: Callable[[str], None],
                    *, restarts: int = 2, timeout: float = REJOIN_TIMEOUT_S,
                    clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep
                    ) -> list[str]:
    """Wait until each consenter of `rejoined` (started again into a SmartBFT channel that went on without
    it) has been in the quorum for a heartbeat timeout and more without a break: before that, one that got no
    heartbeat in time complains alone and stays in a view change of its own for good (seen after a leader was
    killed and restarted). Such a one is restarted, at most `restarts` times; the lines of those still out
    after `timeout` are returned."""
    hold = channel.ordering.smartbft.timeout_ms("leader_heartbeat_timeout") / 1000 + REJOIN_MARGIN_S
    deadline = clock() + timeout
    in_step_since: dict[str, float] = {}
    left = restarts
    while True:
        now = clock()
        not_ready_reason, behind = _readiness(channel)
        if not_ready_reason is not None:  # no quorum to be in: none of them is in step
            out = {host: f"{host}: not in step, {not_ready_reason}" for host in rejoined}
        else:
            out = {_host(line): line for line in behind if _host(line) in rejoined}
        for host in rejoined:
            if host in out:
                in_step_since.pop(host, None)
            else:
                in_step_since.setdefault(host, now)
        if not out and all(now - in_step_since[host] >= hold for host in rejoined):
            return []
        stuck = stuck_in_view_change(out.values())
        if stuck and left:
            left -= 1
            for host in stuck:
                _log.warning("%s sits in a view change of its own on %s: restarting it", host, channel.name)
                restart(host)
                in_step_since.pop(host, None)
            continue
        if clock() > deadline:
            return sorted(out.values())
        sleep(REJOIN_POLL_S)


def bft_quorum(consenters: int) -> int:
    """SmartBFT's quorum of n consenters tolerating f = (n - 1) // 3 faults: ceil((n + f + 1) / 2)."""
    faults = (consenters - 1) // 3
    return -(-(consenters + faults + 1) // 2)


def wait_until_ready(topology: Topology, channels: Iterable[Channel], timeout: float) -> list[str]:
    """Return once every channel is ready; ChannelNotReadyError naming the first that is not after `timeout`.
    The stragglers of the ready channels are returned, and logged as warnings."""
    behind: list[str] = []
    for channel in channels:
        last: list[tuple[str | None, list[str]]] = [(None, [])]

        def ready() -> bool:
            last[0] = _readiness(channel)
            return last[0][0] is None

        if not poll_until(ready, timeout):
            raise ChannelNotReadyError(f"channel {channel.name} not ready after {timeout:g}s: {last[0][0]}")
        behind += last[0][1]
    for line in behind:
        _log.warning(line)
    return behind


def _listed(values: dict[str, float | None]) -> str:
    return ", ".join(f"{host.split('.')[0]}: {int(value) if value else 'none'}" for host, value in values.items())
