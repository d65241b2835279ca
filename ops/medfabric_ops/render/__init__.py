"""Everything rendered from the topology: channel profiles (configtx.yaml),
each node's core.yaml or orderer.yaml, each domain's chaincode packages and
connection profile, Caliper's network configuration, and the environments
nodes and the peer CLI run with.

    >>> render_network(topology, layout, FabricDefaults.load(binaries.config_dir))   # after crypto_material.generate_crypto(topology, layout)

A second render with the same topology rewrites nothing.
"""

from __future__ import annotations

from medfabric.consortium.layout import NetworkLayout
from medfabric.consortium.topology import Topology

from .caliper_network import caliper_network, render_caliper_network
from .chaincode_package import chaincode_package
from .configtx import render_configtx
from .connection_profile import connection_profile, render_connection_profile
from .fabric_defaults import FabricDefaults, SampleConfigError
from .core_yaml import admin_cli_env, peer_env, render_core_yaml
from .orderer_yaml import orderer_env, render_orderer_yaml

__all__ = [
    "admin_cli_env",
    "caliper_network",
    "render_caliper_network",
    "chaincode_package",
    "connection_profile",
    "FabricDefaults",
    "SampleConfigError",
    "orderer_env",
    "peer_env",
    "render_network",
]


def render_network(topology: Topology, layout: NetworkLayout, defaults: FabricDefaults) -> None:
    """Write every rendered file of the network into `layout`, nodes' files over Fabric's `defaults`;
    unchanged files are left alone."""
    render_configtx(topology, layout)
    for peer in topology.peers:
        render_core_yaml(topology, layout, defaults, peer)
    for orderer in topology.orderers:
        render_orderer_yaml(topology, layout, defaults, orderer)
    for domain in topology.domains:
        for chaincode in topology.chaincodes:
            chaincode_package(topology, layout, domain, chaincode)
        render_connection_profile(topology, layout, domain)
    render_caliper_network(topology, layout)
