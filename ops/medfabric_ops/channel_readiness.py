"""When a channel takes transactions: its ordering service has a leader every consenter follows, and every
member peer holds the blocks the consenters committed.

A node that answers /healthz and TLS is not yet a channel that orders: after a
restart a Raft orderer refuses every transaction ("no Raft leader") until its
election timeout has passed, and a SmartBFT consenter may be in a view change.
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
from typing import Iterable

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
    name = channel.name
    orderers = {orderer.host_name: read_metrics(orderer.operations_address) for orderer in channel.orderers}
    if channel.ordering.consensus == "bft":
        prefix = "consensus_BFT"
        leaders = {host: metrics.get(("consensus_BFT_leader_id", name)) for host, metrics in orderers.items()}
        if any(not leader for leader in leaders.values()) or len(set(leaders.values())) != 1:
            return f"the consenters of {name} do not follow one leader yet ({_listed(leaders)})"
        changing = [host for host, metrics in orderers.items()
                    if metrics.get(("consensus_smartbft_viewchange_next_view", name))
                    != metrics.get(("consensus_smartbft_viewchange_current_view", name))]
        if changing:
            return f"{', '.join(changing)}: view change in progress on {name}"
    else:
        prefix = "consensus_etcdraft"
        leading = [host for host, metrics in orderers.items() if metrics.get(("consensus_etcdraft_is_leader", name))]
        if len(leading) != 1:
            return f"{', '.join(orderers)}: no Raft leader for {name} yet"
    committed = [metrics.get((f"{prefix}_committed_block_number", name)) for metrics in orderers.values()]
    if any(number is None for number in committed):
        return f"an orderer of {name} reports no committed block yet"
    height = int(max(committed)) + 1
    for peer in channel.peers:
        peer_height = read_metrics(peer.operations_address).get(("ledger_blockchain_height", name))
        if peer_height is None or peer_height < height:
            return f"{peer.host_name} holds {int(peer_height or 0)} of the {height} blocks of {name}"
    return None


def wait_until_ready(topology: Topology, channels: Iterable[Channel], timeout: float) -> None:
    """Return once every channel is ready; ChannelNotReadyError naming the first that is not after `timeout`."""
    for channel in channels:
        last: list[str | None] = [None]

        def ready() -> bool:
            last[0] = not_ready(topology, channel)
            return last[0] is None

        if not poll_until(ready, timeout):
            raise ChannelNotReadyError(f"channel {channel.name} not ready after {timeout:g}s: {last[0]}")


def _listed(values: dict[str, float | None]) -> str:
    return ", ".join(f"{host.split('.')[0]}: {int(value) if value else 'none'}" for host, value in values.items())
