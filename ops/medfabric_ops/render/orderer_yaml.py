"""orderer.yaml of each orderer, and the environment that runs it.

The file is Fabric's sample orderer.yaml of the release (fabric_defaults) with
the orderer's own settings and SHARED written over it: only keys of the
orderer's config struct, which refuses any other. There is no system channel
(Fabric v3 has none; its sample sets no BootstrapMethod): each
channel is joined through the channel participation API on the admin
endpoint, which takes mutual TLS with the orderer org admin's client
certificate. Cluster traffic shares the general listener. Settings that name a
file or folder are also given as ORDERER_* environment variables (orderer_env).

    >>> render_orderer_yaml(topology, layout, defaults, orderer)   # layout.node_config(orderer.host_name) / "orderer.yaml"
    >>> orderer_env(topology, layout, orderer)["ORDERER_FILELEDGER_LOCATION"]
    '/.../build/network/data/raft0.orderer.hospital-a.medfabric.local'
"""

from __future__ import annotations

from typing import Any

from medfabric.consortium.layout import NetworkLayout
from medfabric.consortium.topology import Orderer, Topology

from .core_yaml import NODE_LOGGING_SPEC
from .fabric_defaults import Changed, FabricDefaults, overlay
from .files import environment, write_yaml

# Where our orderers differ from Fabric's sample orderer.yaml, and why; every other key keeps Fabric's value.
SHARED: dict[str, Changed] = {
    "General.TLS.Enabled": Changed(True, "clients, peers and the other consenters reach the orderer over TLS"),
    "Admin.TLS.Enabled": Changed(True, "the channel participation API takes the org admin's mutual TLS"),
    "Metrics.Provider": Changed("prometheus", "benchmarks and the consensus study read /metrics"),
    "General.Profile.Address": Changed("127.0.0.1:6060", "every server binds to 127.0.0.1, should profiling "
                                                         "(General.Profile.Enabled, off) be turned on"),
}
# Keys of the orderer's config struct (orderer/common/localconfig) that Fabric's sample leaves out.
ADDED: dict[str, str] = {
    "General.Cluster.RootCAs": "cluster connections trust the org's TLS CA, as the general listener does",
    "Admin.TLS.RootCAs": "the admin endpoint's own TLS CA, as for the general listener",
}


def render_orderer_yaml(topology: Topology, layout: NetworkLayout, defaults: FabricDefaults,
                        orderer: Orderer) -> None:
    """Fabric's sample orderer.yaml of the release, with the orderer's own settings and SHARED written over it."""
    document = overlay(defaults.orderer, node_settings(topology, layout, orderer), added=ADDED)
    write_yaml(layout.node_config(orderer.host_name) / "orderer.yaml", overlay(document, SHARED))

def orderer_env(topology: Topology, layout: NetworkLayout, orderer: Orderer) -> dict[str, str]:
    """The environment of the orderer: its config folder and, as ORDERER_*, its paths."""
    return {
        "FABRIC_CFG_PATH": str(layout.node_config(orderer.host_name)),
        "FABRIC_LOGGING_SPEC": NODE_LOGGING_SPEC,
        **environment("ORDERER", _paths(topology, layout, orderer)),
    }


def node_settings(topology: Topology, layout: NetworkLayout, orderer: Orderer) -> dict[str, Any]:
    """The settings that are the orderer's own (its names, addresses and paths), by dotted key."""
    own = {
        "General.ListenAddress": orderer.host,
        "General.ListenPort": orderer.listen_port,
        "General.LocalMSPID": topology.orderer_domain(orderer).orderer_msp_id,
        "Operations.ListenAddress": orderer.operations_address,
        "Admin.ListenAddress": orderer.admin_address,
    }
    return {**own, **_paths(topology, layout, orderer)}


def _paths(topology: Topology, layout: NetworkLayout, orderer: Orderer) -> dict[str, Any]:
    """The settings that name a file or folder."""
    domain = topology.orderer_domain(orderer)
    node, data = layout.orderer_dir(domain, orderer), layout.node_data(orderer.host_name)
    key, certificate, ca = (str(node / "tls" / name) for name in ("server.key", "server.crt", "ca.crt"))
    return {
        "General.LocalMSPDir": str(node / "msp"),
        "General.TLS.PrivateKey": key,
        "General.TLS.Certificate": certificate,
        "General.TLS.RootCAs": [ca],
        "General.Cluster.ClientCertificate": certificate,
        "General.Cluster.ClientPrivateKey": key,
        "General.Cluster.RootCAs": [ca],
        "Admin.TLS.PrivateKey": key,
        "Admin.TLS.Certificate": certificate,
        "Admin.TLS.RootCAs": [ca],
        "Admin.TLS.ClientRootCAs": [str(layout.orderer_tls_ca(domain))],  # the org admin's TLS client certificate
        "FileLedger.Location": str(data),
        "Consensus.WALDir": str(data / "wal"),
        "Consensus.SnapDir": str(data / "snapshot"),
    }
