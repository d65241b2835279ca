"""Caliper's network configuration (version "2.0.0", Fabric peer-gateway connector), rendered from the topology.

Every channel lists the chaincodes deployed on it; every domain is an
organization with its identities (Admin and each user, named
``<user>@<domain id>`` such as ``doctor@hospital-a``) and its peers, the duty
node first: Caliper's Gateway connection for an organization goes to its first
peer, and only the duty node is on every channel.

Caliper refuses a contract ID defined twice, and the same chaincode runs on
every channel: each entry gets ``contractID: <chaincode>@<channel>``. A
workload names the channel and the chaincode in its request
(``sendRequests({channel: 'public', contractId: 'medfabric', invokerMspId:
'HospitalBMSP', invokerIdentity: 'doctor@hospital-b', ...})``), or the
contract ID alone (``contractId: 'medfabric@public'``).

    >>> render_caliper_network(topology, layout)   # layout.caliper_network_config
    >>> caliper_network(topology, layout)["channels"][0]["contracts"][0]
    {'id': 'medfabric', 'contractID': 'medfabric@hospital-a-local'}
"""

from __future__ import annotations

from typing import Any, Sequence

from medfabric.consortium.layout import NetworkLayout
from medfabric.consortium.topology import Chaincode, Domain, Topology

from .files import write_yaml

VERSION = "2.0.0"  # exactly: Caliper 0.6 refuses "2.0"


def identity_name(domain: Domain, user: str) -> str:
    """The name of a domain's identity in Caliper (invokerIdentity), unique across organizations."""
    return f"{user}@{domain.id}"


def contract_id(chaincode: str, channel: str) -> str:
    return f"{chaincode}@{channel}"


def caliper_network(topology: Topology, layout: NetworkLayout,
                    chaincodes: Sequence[Chaincode] | None = None) -> dict[str, Any]:
    """The document; `chaincodes` are those deployed (default: every chaincode of the topology)."""
    deployed = [chaincode.name for chaincode in (topology.chaincodes if chaincodes is None else chaincodes)]
    return {
        "name": topology.name,
        "version": VERSION,
        "caliper": {"blockchain": "fabric"},
        "channels": [
            {"channelName": channel.name,
             "contracts": [{"id": name, "contractID": contract_id(name, channel.name)} for name in deployed]}
            for channel in topology.channels
        ],
        "organizations": [_organization(layout, domain) for domain in topology.domains],
    }


def render_caliper_network(topology: Topology, layout: NetworkLayout,
                           chaincodes: Sequence[Chaincode] | None = None) -> None:
    write_yaml(layout.caliper_network_config, caliper_network(topology, layout, chaincodes))


def _organization(layout: NetworkLayout, domain: Domain) -> dict[str, Any]:
    users = ["Admin", *domain.users]
    return {
        "mspid": domain.msp_id,
        "identities": {"certificates": [
            {
                "name": identity_name(domain, user),
                **({"admin": True} if user == "Admin" else {}),
                "clientPrivateKey": {"path": str(layout.user_private_key(domain, user))},
                "clientSignedCert": {"path": str(layout.user_signcert(domain, user))},
            }
            for user in users
        ]},
        # The duty node first: it is the organization's gateway, and the only peer on the public channel.
        "peers": [{"endpoint": peer.address, "tlsCACerts": {"path": str(layout.peer_tls_ca(domain))}}
                  for peer in domain.peers],
    }
