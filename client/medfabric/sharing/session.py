"""Who acts and where: a user of a domain, connected through a Gateway, with the consortium around it.

    >>> with connect_as("hospital-b", "doctor") as gateway:
    ...     session = Session(topology, layout, topology.domain("hospital-b"), "doctor", gateway)
    ...     get_record(session, "rec-1", Path("obs.json"))
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from medfabric.sharing.contracts import AccessLog, Anchors, Consent
from medfabric.crypto import sign_statement
from medfabric.data_service.client import DataServiceClient
from medfabric.data_service.transport import caller_context
from medfabric.sharing.emr_index import EmrIndex
from medfabric.gateway import Gateway
from medfabric.consortium.layout import NetworkLayout
from medfabric.consortium.service_identity import Consortium, ServiceIdentity
from medfabric.consortium.topology import Domain, Topology


@dataclass
class Session:
    """A user of `domain` acting through `gateway` (a Gateway, or anything with its get_network)."""

    topology: Topology
    layout: NetworkLayout
    domain: Domain
    user: str
    gateway: Gateway
    _data_services: dict[str, DataServiceClient] = field(default_factory=dict, init=False, repr=False)

    @cached_property
    def credentials(self) -> ServiceIdentity:
        """The user's Fabric identity, signer and private key (ServiceIdentity is that triple for any user)."""
        return ServiceIdentity.load(self.layout.user_msp(self.domain, self.user), self.domain.msp_id)

    @cached_property
    def consortium(self) -> Consortium:
        """Each member MSP's CA certificates, and this domain's channels."""
        return Consortium.from_layout(self.topology, self.layout, self.domain.id)

    @property
    def local_channel(self) -> str:
        return self.domain.local_channel

    @property
    def public_channel(self) -> str:
        return self.topology.public_channel.name

    def channel_for(self, owner_msp: str) -> str:
        """Where access to a record of `owner_msp` is decided: own records locally, the rest on the public channel."""
        return self.consortium.channel_for(owner_msp)

    def index(self, channel: str) -> EmrIndex:
        return EmrIndex(self.gateway.get_network(channel), self.topology.chaincode.name)

    def consent(self, channel: str) -> Consent:
        return Consent(self.gateway.get_network(channel), self.topology.chaincode.name)

    def access_log(self, channel: str) -> AccessLog:
        return AccessLog(self.gateway.get_network(channel), self.topology.chaincode.name)

    def anchors(self) -> Anchors:
        return Anchors(self.gateway.get_network(self.public_channel), self.topology.chaincode.name)

    def data_service(self, domain_id: str) -> DataServiceClient:
        """The data service of a domain, where the topology puts it; one client per domain for the session's life."""
        if domain_id not in self._data_services:
            domain = self.topology.domain(domain_id)
            tls = caller_context(self.layout, served=domain, caller=self.domain, user=self.user)
            self._data_services[domain_id] = DataServiceClient(
                domain.id, f"https://{self.topology.host}:{domain.data_service_port}", tls)
        return self._data_services[domain_id]

    def ca_pems(self, msp_id: str) -> list[bytes]:
        return list(self.consortium.ca_pems.get(msp_id, ()))

    def signed(self, **statement: Any) -> dict[str, Any]:
        """The statement signed by the user, as a data service takes it."""
        credentials = self.credentials
        return sign_statement(statement, credentials.signer, credentials.identity).to_dict()
