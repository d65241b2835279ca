"""core.yaml of each peer, and the environments that run a peer or the peer CLI.

The file is Fabric's sample core.yaml of the release (fabric_defaults), with
the peer's own settings (names, addresses, paths, tuning) and the shared
changes of SHARED, each with its reason, written over it; so every key the
peer reads has Fabric's value unless we say why not. Settings that name a file
or folder are also given as CORE_* environment variables (peer_env), so the
same core.yaml serves a container whose paths differ.

    >>> render_core_yaml(topology, layout, defaults, peer)   # layout.node_config(peer.host_name) / "core.yaml"
    >>> peer_env(topology, layout, peer)["FABRIC_CFG_PATH"] == str(layout.node_config(peer.host_name))
    True
"""

from __future__ import annotations

from pathlib import Path, PurePath
from typing import Any

from medfabric.consortium.layout import NetworkLayout
from medfabric.consortium.topology import Domain, Peer, Topology

from .fabric_defaults import Changed, FabricDefaults, overlay
from .files import environment, write_yaml

CCAAS_BUILDER_DIR = Path(__file__).resolve().parents[1] / "builders"  # holds bin/detect, bin/build, bin/release
CCAAS_BUILDER_NAME = "medfabric-ccaas"
NODE_LOGGING_SPEC = "info"
CLI_LOGGING_SPEC = "warning:chaincodeCmd,channelCmd=info"  # at info the peer CLI logs whole responses

# Where our peers differ from Fabric's sample core.yaml, and why; every other key keeps Fabric's value.
SHARED: dict[str, Changed] = {
    "peer.gossip.reconnectInterval": Changed(
        "2s", "a peer that probed another org before that org joined the channel finds it within seconds "
              "(25s: endorsement across orgs fails for ~30 s after the chaincode is committed)"),
    "peer.gossip.requestStateInfoInterval": Changed("1s", "channel membership is known within a second of a join"),
    "peer.gossip.publishStateInfoInterval": Changed("1s", "channel membership is known within a second of a join"),
    "peer.tls.enabled": Changed(True, "every peer serves TLS; clients, orderers and other orgs check it"),
    "vm.endpoint": Changed("", "no Docker: chaincode runs as a service, found through the external builder"),
    "metrics.provider": Changed("prometheus", "benchmarks and `status` read /metrics on the operations port"),
    "peer.profile.listenAddress": Changed("127.0.0.1:6060", "every server binds to 127.0.0.1, should profiling "
                                                            "(peer.profile.enabled, off) be turned on"),
}
# Keys of the peer's config that Fabric's sample core.yaml leaves out (commented), and why we set them.
ADDED: dict[str, str] = {
    "peer.chaincodeListenAddress": "the peer's chaincode listener on the topology's port, not listenAddress + 1",
}


def external_builders(builder_dir: PurePath = CCAAS_BUILDER_DIR) -> list[dict[str, str]]:
    """chaincode.externalBuilders: our chaincode-as-a-service builder, installed at `builder_dir`."""
    return [{"name": CCAAS_BUILDER_NAME, "path": str(builder_dir)}]


def render_core_yaml(topology: Topology, layout: NetworkLayout, defaults: FabricDefaults, peer: Peer) -> None:
    """Fabric's sample core.yaml of the release, with the peer's own settings and SHARED written over it."""
    document = overlay(defaults.core, node_settings(topology, layout, peer), added=ADDED)
    write_yaml(layout.node_config(peer.host_name) / "core.yaml", overlay(document, SHARED))


def node_settings(topology: Topology, layout: NetworkLayout, peer: Peer) -> dict[str, Any]:
    """The settings that are the peer's own (its names, addresses, tuning and paths), by dotted key."""
    domain = topology.domain(peer.domain_id)
    own = {
        "peer.id": peer.host_name,
        "peer.networkId": topology.name,
        "peer.listenAddress": peer.address,
        "peer.chaincodeListenAddress": f"{peer.host}:{peer.chaincode_port}",
        "peer.address": peer.address,
        "peer.localMspId": domain.msp_id,
        "peer.gossip.bootstrap": domain.duty_peer.address,
        "peer.gossip.endpoint": peer.address,
        "peer.gossip.externalEndpoint": peer.address,  # other orgs, and service discovery, see every peer
        "chaincode.externalBuilders": external_builders(),
        "operations.listenAddress": peer.operations_address,
        # in-flight Gateway calls before it refuses more: a tuning knob (topology peer_gateway.concurrency)
        "peer.limits.concurrency.gatewayService": topology.tuning.gateway_concurrency,
    }
    return {**own, **_paths(layout, domain, peer)}


def peer_env(topology: Topology, layout: NetworkLayout, peer: Peer) -> dict[str, str]:
    """The environment of `peer node start`: its config folder and, as CORE_*, its paths."""
    paths = _paths(layout, topology.domain(peer.domain_id), peer)
    return {
        "FABRIC_CFG_PATH": str(layout.node_config(peer.host_name)),
        "FABRIC_LOGGING_SPEC": NODE_LOGGING_SPEC,
        **environment("CORE", paths),
    }


def admin_cli_env(topology: Topology, layout: NetworkLayout, domain: Domain, peer: Peer) -> dict[str, str]:
    """The environment of the peer CLI acting as the admin of `domain` against `peer`."""
    settings = {
        "peer.localMspId": domain.msp_id,
        "peer.mspConfigPath": str(layout.user_msp(domain, "Admin")),
        "peer.address": peer.address,
        "peer.tls.enabled": True,
        "peer.tls.rootcert.file": str(layout.peer_tls_ca(topology.domain(peer.domain_id))),
    }
    return {
        "FABRIC_CFG_PATH": str(layout.node_config(peer.host_name)),
        "FABRIC_LOGGING_SPEC": CLI_LOGGING_SPEC,
        **environment("CORE", settings),
    }


def _paths(layout: NetworkLayout, domain: Domain, peer: Peer) -> dict[str, str]:
    """The settings that name a file or folder."""
    node, data = layout.peer_dir(domain, peer), layout.node_data(peer.host_name)
    return {
        "peer.fileSystemPath": str(data),
        "peer.mspConfigPath": str(node / "msp"),
        "peer.tls.cert.file": str(node / "tls" / "server.crt"),
        "peer.tls.key.file": str(node / "tls" / "server.key"),
        "peer.tls.rootcert.file": str(node / "tls" / "ca.crt"),
        "ledger.snapshots.rootDir": str(data / "snapshots"),
    }
