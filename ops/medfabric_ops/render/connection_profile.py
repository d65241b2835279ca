"""A common connection profile per domain (for SDKs and Caliper): the domain's
org and its peers, with the TLS CA that verifies them.

    >>> render_connection_profile(topology, layout, domain)   # layout.connection_profile(domain)
"""

from __future__ import annotations

from typing import Any

from medfabric.consortium.layout import NetworkLayout
from medfabric.consortium.topology import Domain, Topology

from .files import HEADER, write_json


def connection_profile(topology: Topology, layout: NetworkLayout, domain: Domain) -> dict[str, Any]:
    peers = {
        peer.host_name: {
            "url": f"grpcs://{peer.address}",
            "tlsCACerts": {"path": str(layout.peer_tls_ca(domain))},
            "grpcOptions": {"ssl-target-name-override": peer.host_name, "hostnameOverride": peer.host_name},
        }
        for peer in domain.peers
    }
    return {
        "name": f"{topology.name}-{domain.id}",
        "description": HEADER.removeprefix("# ").strip(),
        "version": "1.0.0",
        "client": {"organization": domain.msp_id},
        "organizations": {domain.msp_id: {"mspid": domain.msp_id, "peers": list(peers)}},
        "peers": peers,
    }


def render_connection_profile(topology: Topology, layout: NetworkLayout, domain: Domain) -> None:
    write_json(layout.connection_profile(domain), connection_profile(topology, layout, domain))
