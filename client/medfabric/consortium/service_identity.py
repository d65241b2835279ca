"""Who a domain's data service is (its Fabric identity and key) and whom it trusts (each member MSP's CAs)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from medfabric.gateway.identity import Signer, X509Identity, _find_private_key, load_msp_identity
from medfabric.consortium.layout import NetworkLayout
from medfabric.consortium.topology import Topology

# Each domain's data service acts as this user of the domain (medfabric.role "data-service"), made beside Admin and
# the topology's users: never the domain Admin, whose key could change the channels.
SERVICE_USER = "data-service"
# The diagnosis server's user (medfabric.role "diagnosis"): it answers decoy challenges for its domain.
DIAGNOSIS_USER = "diagnosis"
# The users that serve HTTPS: beside their enrollment certificate, a TLS server certificate for 127.0.0.1.
SERVING_USERS = (SERVICE_USER, DIAGNOSIS_USER)


@dataclass(frozen=True)
class ServiceIdentity:
    """The data service's own Fabric identity: data keys are wrapped for it, deliveries signed by it."""

    identity: X509Identity
    signer: Signer
    private_key: ec.EllipticCurvePrivateKey = field(repr=False)

    @classmethod
    def load(cls, msp_dir: Path, msp_id: str) -> "ServiceIdentity":
        identity, signer = load_msp_identity(msp_dir, msp_id)
        public_key = x509.load_pem_x509_certificate(identity.certificate_pem).public_key()
        return cls(identity, signer, _find_private_key(msp_dir / "keystore", public_key))


@dataclass(frozen=True)
class Consortium:
    """What the service trusts: each member MSP's CA certificates, and where its domain's decisions live."""

    own_msp: str
    local_channel: str
    public_channel: str
    ca_pems: Mapping[str, tuple[bytes, ...]]

    @classmethod
    def from_layout(cls, topology: Topology, layout: NetworkLayout, domain_id: str) -> "Consortium":
        """Every peer org's MSP cacerts in the crypto tree."""
        ca_pems = {
            member.msp_id: tuple(path.read_bytes() for path in sorted(layout.peer_org(member).glob("msp/cacerts/*.pem")))
            for member in topology.domains
        }
        domain = topology.domain(domain_id)
        return cls(domain.msp_id, domain.local_channel, topology.public_channel.name, ca_pems)

    def channel_for(self, msp_id: str) -> str:
        """Internal access is decided on the local channel, cross-domain access on the public one."""
        return self.local_channel if msp_id == self.own_msp else self.public_channel

    def other_tier(self, channel: str) -> str:
        """The public channel for the local one, and the other way round."""
        return self.public_channel if channel == self.local_channel else self.local_channel
