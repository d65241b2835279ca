"""orderer.yaml of each orderer, and the environment that runs it.

Only keys of the orderer's config struct are written: the orderer refuses a
file with any other. There is no system channel (BootstrapMethod none): each
channel is joined through the channel participation API on the admin
endpoint, which takes mutual TLS with the orderer org admin's client
certificate. Cluster traffic shares the general listener. Settings that name a
file or folder are also given as ORDERER_* environment variables (orderer_env).

    >>> render_orderer_yaml(topology, layout, orderer)   # layout.node_config(orderer.host_name) / "orderer.yaml"
    >>> orderer_env(topology, layout, orderer)["ORDERER_FILELEDGER_LOCATION"]
    '/.../build/network/data/raft0.orderer.hospital-a.medfabric.local'
"""

from __future__ import annotations

from typing import Any

from medfabric.layout import NetworkLayout
from medfabric.topology import Orderer, Topology

from .core_yaml import NODE_LOGGING_SPEC
from .files import environment, nested, write_yaml

_SHARED = {
    "General.TLS.Enabled": True,
    "General.TLS.ClientAuthRequired": False,
    "General.Keepalive.ServerMinInterval": "60s",
    "General.Keepalive.ServerInterval": "7200s",
    "General.Keepalive.ServerTimeout": "20s",
    "General.BootstrapMethod": "none",
    "General.BCCSP.Default": "SW",
    "General.BCCSP.SW.Hash": "SHA2",
    "General.BCCSP.SW.Security": 256,
    "General.Authentication.TimeWindow": "15m",
    "Operations.TLS.Enabled": False,
    "Metrics.Provider": "prometheus",
    "Admin.TLS.Enabled": True,
    "Admin.TLS.ClientAuthRequired": True,
    "ChannelParticipation.Enabled": True,
}


def render_orderer_yaml(topology: Topology, layout: NetworkLayout, orderer: Orderer) -> None:
    write_yaml(layout.node_config(orderer.host_name) / "orderer.yaml", nested(_settings(topology, layout, orderer)))

def orderer_env(topology: Topology, layout: NetworkLayout, orderer: Orderer) -> dict[str, str]:
    """The environment of the orderer: its config folder and, as ORDERER_*, its paths."""
    return {
        "FABRIC_CFG_PATH": str(layout.node_config(orderer.host_name)),
        "FABRIC_LOGGING_SPEC": NODE_LOGGING_SPEC,
        **environment("ORDERER", _paths(topology, layout, orderer)),
    }


def _settings(topology: Topology, layout: NetworkLayout, orderer: Orderer) -> dict[str, Any]:
    """Every setting of the orderer's orderer.yaml, by dotted key."""
    own = {
        "General.ListenAddress": orderer.host,
        "General.ListenPort": orderer.listen_port,
        "General.LocalMSPID": topology.orderer_domain(orderer).orderer_msp_id,
        "Operations.ListenAddress": orderer.operations_address,
        "Admin.ListenAddress": orderer.admin_address,
    }
    return {**own, **_SHARED, **_paths(topology, layout, orderer)}


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
