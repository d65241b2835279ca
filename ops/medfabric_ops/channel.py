"""Channels: genesis blocks from configtxgen, orderers joined through the
channel participation API, peers joined with the peer CLI.

There is no system channel: each channel starts from its own genesis block,
which every orderer and every member peer of the channel joins with.

    >>> create_genesis_block(tools, layout, channel)
    >>> join_orderers(topology, layout, channel)
    >>> join_peers(tools, topology, layout, channel)
"""

from __future__ import annotations

import json
import os
import re
from functools import partial
from pathlib import Path

from medfabric.consortium.layout import NetworkLayout
from medfabric.consortium.topology import Channel, Peer, Topology

from . import render
from .binaries import FabricTools
from .osnadmin import ChannelNotFound, OSNAdmin
from .process import child_env, poll_until

JOIN_TIMEOUT = 30.0
_CHANNEL_NAME = re.compile(r"^[a-z][a-z0-9.-]*$")


class ChannelError(RuntimeError):
    """A node did not reach the expected state in a channel."""


class PeerAdmin:
    """The peer CLI, run as the admin of a peer's org against that peer."""

    def __init__(self, tools: FabricTools, topology: Topology, layout: NetworkLayout, peer: Peer):
        self.peer = peer
        self._tools = tools
        self._env = child_env(render.admin_cli_env(topology, layout, topology.domain(peer.domain_id), peer))

    def run(self, *args: str | Path, timeout: float = 120.0) -> str:
        """Run `peer <args>` and return its stdout."""
        return self._tools.run("peer", *args, env=self._env, timeout=timeout, target=self.peer.host_name)

    def joined_channels(self) -> set[str]:
        # stdout: a header line, then one channel name per line
        return {line.strip() for line in self.run("channel", "list").splitlines()
                if _CHANNEL_NAME.match(line.strip())}

    def join(self, block: Path) -> None:
        self.run("channel", "join", "-b", block)

    def height(self, channel: str) -> int:
        """Block height of the peer's ledger of `channel`."""
        return self.chain_info(channel)[0]

    def chain_info(self, channel: str) -> tuple[int, str]:
        """(height, current block hash in base64) of the peer's ledger of `channel`."""
        out = self.run("channel", "getinfo", "-c", channel)
        _label, _colon, info = out.partition("Blockchain info:")
        try:
            document = json.loads(info)
            # a zero height (and its hash) is left out of the JSON
            return int(document.get("height", 0)), str(document.get("currentBlockHash", ""))
        except (ValueError, AttributeError):
            raise ChannelError(
                f"{self.peer.host_name}: unexpected `peer channel getinfo` output: {out[:200]}"
            ) from None


def create_genesis_block(tools: FabricTools, layout: NetworkLayout, channel: Channel) -> bool:
    """Write the channel's genesis block unless it exists; True if it was written.

    The configtx.yaml profile of each channel is named after the channel.
    """
    block = layout.genesis_block(channel.name)
    if block.exists():
        return False
    block.parent.mkdir(parents=True, exist_ok=True)
    partial_block = block.with_name(block.name + ".partial")
    tools.run(
        "configtxgen", "-profile", channel.name, "-outputBlock", partial_block, "-channelID", channel.name,
        "-configPath", layout.configtx_dir, env=child_env({}), target=channel.name,
    )
    os.replace(partial_block, block)
    return True


def join_orderers(topology: Topology, layout: NetworkLayout, channel: Channel,
                  timeout: float = JOIN_TIMEOUT) -> None:
    """Join every orderer of the channel that is not a member yet, then wait until each is active."""
    block = layout.genesis_block(channel.name).read_bytes()
    admins = {orderer.host_name: OSNAdmin.for_orderer(topology, layout, orderer) for orderer in channel.orderers}
    for admin in admins.values():
        try:
            admin.info(channel.name)
        except ChannelNotFound:
            admin.join(channel.name, block)
    for host_name, admin in admins.items():
        _wait_until_active(admin, host_name, channel.name, timeout)


def join_peers(tools: FabricTools, topology: Topology, layout: NetworkLayout, channel: Channel,
               timeout: float = JOIN_TIMEOUT) -> None:
    """Join every member peer that has not joined yet, then wait until each holds the genesis block."""
    block = layout.genesis_block(channel.name)
    for peer in channel.peers:
        admin = PeerAdmin(tools, topology, layout, peer)
        if channel.name not in admin.joined_channels():
            admin.join(block)
        if not poll_until(partial(_has_blocks, admin, channel.name), timeout):
            raise ChannelError(f"peer {peer.host_name} has no block of channel '{channel.name}' after {timeout:g}s")


def _wait_until_active(admin: OSNAdmin, host_name: str, channel: str, timeout: float) -> None:
    statuses = []

    def active() -> bool:
        statuses.append(admin.info(channel).status)
        if statuses[-1] == "failed":
            raise ChannelError(f"orderer {host_name} failed to join channel '{channel}'")
        return statuses[-1] == "active"

    if not poll_until(active, timeout):
        raise ChannelError(
            f"orderer {host_name} is not active in channel '{channel}' after {timeout:g}s (status: {statuses[-1]})"
        )


def _has_blocks(admin: PeerAdmin, channel: str) -> bool:
    return admin.height(channel) >= 1
