"""configtx.yaml: one configtxgen profile per channel, named after the channel.

A local channel holds its domain's peer org and orderer org and is ordered by
that domain's Raft orderers; the public channel holds every domain's peer org
and the orderer orgs of its SmartBFT consenters. Orgs are written out in each
profile with only the orderer endpoints that serve that channel, so peers never
ask an orderer for a channel it does not serve. Policies use the NodeOU roles
of the crypto material. The top-level Organizations list is for
`configtxgen -printOrg`.

    >>> render_configtx(topology, layout)   # layout.configtx_dir / "configtx.yaml"
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

from medfabric.consortium.layout import NetworkLayout
from medfabric.consortium.topology import SMARTBFT_TIMEOUTS, Channel, Domain, Orderer, Topology

from .files import write_yaml

CAPABILITIES = {"Channel": {"V3_0": True}, "Orderer": {"V2_0": True}, "Application": {"V2_5": True}}
BATCH_MAX_BYTES = 99 * 1024 * 1024  # Fabric's samples: 99 MB, preferably 512 KB
BATCH_PREFERRED_BYTES = 512 * 1024
# Every SmartBFT option rendered comes from the topology: RequestBatchMaxInterval is the channel's
# batch_timeout, RequestBatchMaxCount its max_message_count (the orderer also takes it, and
# RequestBatchMaxBytes, from BatchSize), the rest its smartbft section; the options left out keep
# SmartBFT's defaults.

def render_configtx(topology: Topology, layout: NetworkLayout) -> None:
    write_yaml(layout.configtx_dir / "configtx.yaml", _configtx(topology, layout))

def _configtx(topology: Topology, layout: NetworkLayout) -> dict[str, Any]:
    orderer_orgs = [_orderer_org(layout, domain, _owned(domain, topology.orderers)) for domain in topology.domains]
    return {
        "Organizations": [*(_peer_org(layout, domain) for domain in topology.domains), *orderer_orgs],
        "Profiles": {channel.name: _profile(topology, layout, channel) for channel in topology.channels},
    }


def _profile(topology: Topology, layout: NetworkLayout, channel: Channel) -> dict[str, Any]:
    return {
        "Policies": _implicit_meta_policies(),
        "Capabilities": CAPABILITIES["Channel"],
        "Orderer": _orderer(topology, layout, channel),
        "Application": {
            "Organizations": [_peer_org(layout, domain) for domain in channel.domains],
            "Policies": {
                **_implicit_meta_policies(),
                "LifecycleEndorsement": _policy("ImplicitMeta", "MAJORITY Endorsement"),
                "Endorsement": _policy("ImplicitMeta", f"{channel.endorsement} Endorsement"),
            },
            "Capabilities": CAPABILITIES["Application"],
        },
    }


def _orderer(topology: Topology, layout: NetworkLayout, channel: Channel) -> dict[str, Any]:
    ordering = channel.ordering
    owners = [domain for domain in topology.domains if _owned(domain, channel.orderers)]
    section: dict[str, Any] = {
        "OrdererType": "etcdraft" if ordering.consensus == "raft" else "BFT",
        "BatchTimeout": f"{ordering.batch_timeout_ms}ms",
        "BatchSize": {"MaxMessageCount": ordering.max_message_count, "AbsoluteMaxBytes": BATCH_MAX_BYTES,
                      "PreferredMaxBytes": BATCH_PREFERRED_BYTES},
        "Organizations": [_orderer_org(layout, domain, _owned(domain, channel.orderers)) for domain in owners],
        "Policies": {**_implicit_meta_policies(), "BlockValidation": _policy("ImplicitMeta", "ANY Writers")},
        "Capabilities": CAPABILITIES["Orderer"],
    }
    if ordering.consensus == "raft":
        section["EtcdRaft"] = {"Consenters": [
            {"Host": orderer.host, "Port": orderer.listen_port, **_tls_certs(topology, layout, orderer)}
            for orderer in channel.orderers
        ]}
    else:
        section["ConsenterMapping"] = [_bft_consenter(topology, layout, orderer) for orderer in channel.orderers]
        section["SmartBFT"] = {
            "RequestBatchMaxCount": ordering.max_message_count,
            "RequestBatchMaxBytes": BATCH_MAX_BYTES,
            "RequestBatchMaxInterval": f"{ordering.batch_timeout_ms}ms",
            "RequestPoolSize": ordering.smartbft.request_pool_size,
            "IncomingMessageBufferSize": ordering.smartbft.incoming_message_buffer_size,
            "LeaderHeartbeatCount": ordering.smartbft.leader_heartbeat_count,
            **{option: f"{ordering.smartbft.timeout_ms(name)}ms" for name, (_, option) in SMARTBFT_TIMEOUTS.items()},
        }
    return section


def _bft_consenter(topology: Topology, layout: NetworkLayout, orderer: Orderer) -> dict[str, Any]:
    domain = topology.orderer_domain(orderer)
    signcert = layout.orderer_dir(domain, orderer) / "msp" / "signcerts" / f"{orderer.host_name}-cert.pem"
    return {
        "ID": orderer.consenter_id,
        "Host": orderer.host,
        "Port": orderer.listen_port,
        "MSPID": domain.orderer_msp_id,
        "Identity": str(signcert),  # the enrollment certificate the orderer signs blocks with
        **_tls_certs(topology, layout, orderer),
    }


def _tls_certs(topology: Topology, layout: NetworkLayout, orderer: Orderer) -> dict[str, str]:
    """The orderer's one TLS certificate serves both sides of cluster connections."""
    certificate = str(layout.orderer_dir(topology.orderer_domain(orderer), orderer) / "tls" / "server.crt")
    return {"ClientTLSCert": certificate, "ServerTLSCert": certificate}


def _peer_org(layout: NetworkLayout, domain: Domain) -> dict[str, Any]:
    msp = domain.msp_id
    policies = {
        "Readers": _signed_by(msp, "admin", "peer", "client"),
        "Writers": _signed_by(msp, "admin", "client"),
        "Admins": _signed_by(msp, "admin"),
        "Endorsement": _signed_by(msp, "peer"),
    }
    anchor = domain.duty_peer
    return _org(msp, layout.peer_org(domain), policies, AnchorPeers=[{"Host": anchor.host, "Port": anchor.listen_port}])


def _orderer_org(layout: NetworkLayout, domain: Domain, orderers: Iterable[Orderer]) -> dict[str, Any]:
    msp = domain.orderer_msp_id
    policies = {"Readers": _signed_by(msp, "member"), "Writers": _signed_by(msp, "member"),
                "Admins": _signed_by(msp, "admin")}
    return _org(msp, layout.orderer_org(domain), policies,
                OrdererEndpoints=[orderer.address for orderer in orderers])


def _org(msp_id: str, org_dir: Path, policies: dict[str, Any], **details: Any) -> dict[str, Any]:
    return {"Name": msp_id, "ID": msp_id, "MSPDir": str(org_dir / "msp"), "Policies": policies, **details}


def _owned(domain: Domain, orderers: Iterable[Orderer]) -> list[Orderer]:
    return [orderer for orderer in orderers if orderer.domain_id == domain.id]


def _implicit_meta_policies() -> dict[str, Any]:
    return {
        "Readers": _policy("ImplicitMeta", "ANY Readers"),
        "Writers": _policy("ImplicitMeta", "ANY Writers"),
        "Admins": _policy("ImplicitMeta", "MAJORITY Admins"),
    }


def _signed_by(msp_id: str, *roles: str) -> dict[str, str]:
    return _policy("Signature", "OR(" + ", ".join(f"'{msp_id}.{role}'" for role in roles) + ")")


def _policy(kind: str, rule: str) -> dict[str, str]:
    return {"Type": kind, "Rule": rule}
