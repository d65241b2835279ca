"""Open a Gateway connection as a user of a domain, found through the topology.

    >>> with connect_as("hospital-a", "doctor") as gateway:
    ...     index = EmrIndex(gateway.get_network("public"))
"""

from __future__ import annotations

from medfabric.errors import MedfabricError
from medfabric.gateway import Gateway, connect
from medfabric.gateway.identity import load_msp_identity
from medfabric.consortium.layout import NetworkLayout
from medfabric.consortium.service_identity import SERVING_USERS
from medfabric.consortium.topology import Topology, load_topology


def connect_as(
    domain_id: str,
    user: str = "Admin",
    *,
    topology: Topology | None = None,
    layout: NetworkLayout | None = None,
    peer_name: str | None = None,
) -> Gateway:
    """Connect to a domain's gateway peer (its duty node by default) as `user`."""
    topology = topology or load_topology()
    layout = layout or NetworkLayout.default()
    domain = topology.domain(domain_id)
    peer = domain.duty_peer
    if peer_name:
        matches = [p for p in domain.peers if p.name == peer_name]
        if not matches:
            raise MedfabricError(f"domain {domain_id} has no peer '{peer_name}'")
        peer = matches[0]
    if user not in ("Admin", *SERVING_USERS) and user not in domain.users:
        known = ", ".join(("Admin", *domain.users, *SERVING_USERS))
        raise MedfabricError(f"domain {domain_id} has no user '{user}' (known: {known})")
    msp_dir = layout.user_msp(domain, user)
    if not msp_dir.is_dir():
        raise MedfabricError(f"no identity for {user}@{domain_id} at {msp_dir}: run 'make up' first")
    identity, signer = load_msp_identity(msp_dir, domain.msp_id)
    return connect(
        identity,
        signer,
        endpoint=peer.address,
        tls_root_cert=layout.peer_tls_ca(domain).read_bytes(),
        server_name_override=peer.host_name,
    )
