"""core.yaml of each peer, and the environments that run a peer or the peer CLI.

The file holds every setting the peer reads at start-up, so nothing falls back
to another core.yaml. Shared values are those of Fabric's sample core.yaml
unless a comment says why not. Settings that name a file or folder are also
given as CORE_* environment variables (peer_env), so the same core.yaml serves
a container whose paths differ.

    >>> render_core_yaml(topology, layout, peer)   # layout.node_config(peer.host_name) / "core.yaml"
    >>> peer_env(topology, layout, peer)["FABRIC_CFG_PATH"] == str(layout.node_config(peer.host_name))
    True
"""

from __future__ import annotations

from pathlib import Path, PurePath
from typing import Any

from medfabric.layout import NetworkLayout
from medfabric.topology import Domain, Peer, Topology

from .files import environment, nested, write_yaml

CCAAS_BUILDER_DIR = Path(__file__).resolve().parents[1] / "builders"  # holds bin/detect, bin/build, bin/release
CCAAS_BUILDER_NAME = "medfabric-ccaas"
NODE_LOGGING_SPEC = "info"
CLI_LOGGING_SPEC = "warning:chaincodeCmd,channelCmd=info"  # at info the peer CLI logs whole responses

_SHARED = {
    "peer.addressAutoDetect": False,
    "peer.gateway.enabled": True,
    "peer.gateway.endorsementTimeout": "30s",
    "peer.gateway.broadcastTimeout": "30s",
    "peer.gateway.dialTimeout": "2m",
    "peer.keepalive.interval": "7200s",
    "peer.keepalive.timeout": "20s",
    "peer.keepalive.minInterval": "60s",
    "peer.keepalive.client.interval": "60s",
    "peer.keepalive.client.timeout": "20s",
    "peer.keepalive.deliveryClient.interval": "60s",
    "peer.keepalive.deliveryClient.timeout": "20s",
    "peer.gossip.useLeaderElection": False,
    "peer.gossip.orgLeader": True,  # every peer pulls its blocks from the ordering service
    # 2s and 1s, not 25s and 4s: a peer that probed another org before that org
    # joined the channel finds it within seconds, so endorsement across orgs works
    # right after the chaincode is committed.
    "peer.gossip.reconnectInterval": "2s",
    "peer.gossip.requestStateInfoInterval": "1s",
    "peer.gossip.publishStateInfoInterval": "1s",
    "peer.gossip.pvtData.reconciliationEnabled": True,
    "peer.gossip.state.enabled": False,
    "peer.tls.enabled": True,
    "peer.tls.clientAuthRequired": False,
    "peer.authentication.timewindow": "15m",
    "peer.BCCSP.Default": "SW",
    "peer.BCCSP.SW.Hash": "SHA2",
    "peer.BCCSP.SW.Security": 256,
    "peer.localMspType": "bccsp",
    "peer.client.connTimeout": "3s",
    "peer.deliveryclient.blockGossipEnabled": False,
    "peer.deliveryclient.reconnectTotalTimeThreshold": "3600s",
    "peer.deliveryclient.connTimeout": "3s",
    "peer.deliveryclient.reConnectBackoffThreshold": "3600s",
    "peer.deliveryclient.blockCensorshipTimeoutKey": "30s",
    "peer.deliveryclient.minimalReconnectInterval": "100ms",
    "peer.deliveryclient.policy": "cluster",  # on BFT channels, the deliverer that detects censoring orderers
    "peer.profile.enabled": False,
    "peer.handlers.authFilters": [{"name": "DefaultAuth"}, {"name": "ExpirationCheck"}, {"name": "TimeWindowCheck"}],
    "peer.handlers.decorators": [{"name": "DefaultDecorator"}],
    "peer.handlers.endorsers.escc.name": "DefaultEndorsement",
    "peer.handlers.validators.vscc.name": "DefaultValidation",
    "peer.discovery.enabled": True,
    "peer.discovery.authCacheEnabled": True,
    "peer.discovery.authCacheMaxSize": 1000,
    "peer.discovery.authCachePurgeRetentionRatio": 0.75,
    "peer.discovery.orgMembersAllowedAccess": False,
    "peer.limits.concurrency.endorserService": 2500,
    "peer.limits.concurrency.deliverService": 2500,
    "peer.maxRecvMsgSize": 104857600,
    "peer.maxSendMsgSize": 104857600,
    "vm.endpoint": "",  # no Docker: chaincode runs as a service, found through the external builder
    "chaincode.installTimeout": "300s",
    "chaincode.startuptimeout": "300s",
    "chaincode.executetimeout": "30s",
    "chaincode.mode": "net",
    "chaincode.keepalive": 0,
    "chaincode.system._lifecycle": "enable",
    "chaincode.system.cscc": "enable",
    "chaincode.system.lscc": "enable",
    "chaincode.system.qscc": "enable",
    "ledger.state.stateDatabase": "goleveldb",
    "ledger.state.totalQueryLimit": 100000,
    "ledger.history.enableHistoryDatabase": True,
    "ledger.pvtdataStore.collElgProcMaxDbBatchSize": 5000,
    "ledger.pvtdataStore.collElgProcDbBatchesInterval": 1000,
    "ledger.pvtdataStore.deprioritizedDataReconcilerInterval": "60m",
    "ledger.pvtdataStore.purgeInterval": 100,
    "ledger.pvtdataStore.purgedKeyAuditLogging": True,
    "operations.tls.enabled": False,
    "metrics.provider": "prometheus",
}


def external_builders(builder_dir: PurePath = CCAAS_BUILDER_DIR) -> list[dict[str, str]]:
    """chaincode.externalBuilders: our chaincode-as-a-service builder, installed at `builder_dir`."""
    return [{"name": CCAAS_BUILDER_NAME, "path": str(builder_dir)}]


def render_core_yaml(topology: Topology, layout: NetworkLayout, peer: Peer) -> None:
    write_yaml(layout.node_config(peer.host_name) / "core.yaml", nested(_settings(topology, layout, peer)))

def _settings(topology: Topology, layout: NetworkLayout, peer: Peer) -> dict[str, Any]:
    """Every setting of the peer's core.yaml, by dotted key."""
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
    return {**own, **_SHARED, **_paths(layout, domain, peer)}


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
