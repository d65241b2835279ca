"""A consortium without Fabric for the EMR flow, audit and CLI tests: the fake Fabric and real data services.

`consortium` gives the default topology's three domains with a FakeFabric (the
real chaincode, a world state per channel) and each domain's real data service
(RecordService over HTTPS with client certificates on 127.0.0.1, its ledger adapters on the fake Fabric as
the domain's data-service user), at the ports a topology file written for the test says.
"""

from __future__ import annotations

import json
import random
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml

from medfabric.data_service.server import DataServiceServer, create_app
from medfabric.data_service.transport import ConsortiumTlsCas, server_context, user_tls_files
from medfabric.consortium.layout import NetworkLayout
from medfabric.data_service.ledger_access import LedgerAccessDecisions, LedgerAuditSink, LedgerEmrIndex
from medfabric.data_service.orphan_sweep import SweepOutcome
from medfabric.data_service.record_service import RecordService
from medfabric.consortium.service_identity import SERVICE_USER, Consortium, ServiceIdentity
from medfabric.sharing.session import Session
from medfabric.data_service.store import FileBlobStore, FileKeyStore, FilePendingPuts
from medfabric.consortium.topology import DEFAULT_TOPOLOGY, PORT_PLAN, Topology, load_topology

from .fake_fabric import FakeFabric

PORT_ATTEMPTS = 20


@dataclass
class FakeConsortium:
    """The consortium a test acts in, and what it can look at or break."""

    topology: Topology  # loaded from topology_file
    topology_file: Path
    layout: NetworkLayout
    fabric: FakeFabric
    stores: dict[str, Path]  # domain id -> its data service's store folder
    servers: dict[str, DataServiceServer]
    _threads: dict[str, threading.Thread]
    services: dict[str, RecordService]

    def sweep(self, domain_id: str, later: timedelta = timedelta(0)) -> SweepOutcome:
        """One orphan sweep of the domain's data service, as if run `later` from now, its index on the fake Fabric."""
        index = LedgerEmrIndex(self.fabric.connect_as(domain_id, SERVICE_USER))
        return self.services[domain_id].orphan_sweep(index, clock=lambda: datetime.now(timezone.utc) + later).run()

    def session(self, domain_id: str, user: str = "doctor") -> Session:
        domain = self.topology.domain(domain_id)
        return Session(self.topology, self.layout, domain, user, self.fabric.connect_as(domain_id, user))

    def stop_data_service(self, domain_id: str) -> None:
        server, thread = self.servers.pop(domain_id), self._threads.pop(domain_id)
        server.shutdown()
        thread.join(10)
        server.server_close()

    def log(self, channel: str) -> list[dict]:
        """The channel's access-log entries, read straight from its world state, in key (time) order (once the
        data services have written the refusals they queued)."""
        for service in self.services.values():
            service.flush_refusals()
        return [json.loads(value) for (_, key), value in sorted(self.fabric.world_state(channel).items())
                if key.startswith("\x00log\x00")]

    def index_keys(self, channel: str) -> list[str]:
        return [key for _, key in self.fabric.world_state(channel) if key.startswith("\x00emr\x00")]

    def stored_files(self, domain_id: str) -> list[Path]:
        """Every blob and key file the domain's data service holds (tombstones of erased keys and pending-put
        marks excluded)."""
        store = self.stores[domain_id]
        return sorted(path for path in store.rglob("*")
                      if path.is_file() and not {"erased", "pending"} & set(path.parts))

    def pending_puts(self, domain_id: str) -> list[str]:
        """The record ids the domain's data service holds as stored but not yet seen indexed."""
        return sorted(path.stem for path in (self.stores[domain_id] / "keys" / "pending").glob("*.json"))


@pytest.fixture
def consortium(crypto_layout, tmp_path) -> FakeConsortium:
    fabric = FakeFabric(load_topology(), crypto_layout)
    stores = {domain.id: tmp_path / "stores" / domain.id for domain in fabric.topology.domains}
    services = [_record_service(fabric, domain.id, stores[domain.id]) for domain in fabric.topology.domains]
    base_port, servers = _listen(fabric, services)
    raw = yaml.safe_load(DEFAULT_TOPOLOGY.read_text())
    topology_file = tmp_path / "topology.yaml"
    topology_file.write_text(yaml.safe_dump({**raw, "base_port": base_port}))
    topology = load_topology(topology_file)
    servers_by_domain = dict(zip((domain.id for domain in topology.domains), servers))
    threads = {domain_id: threading.Thread(target=server.serve_forever, daemon=True)
               for domain_id, server in servers_by_domain.items()}
    for thread in threads.values():
        thread.start()
    running = FakeConsortium(topology, topology_file, crypto_layout, fabric, stores, servers_by_domain, threads,
                             dict(zip((domain.id for domain in topology.domains), services)))
    yield running
    for domain_id in list(running.servers):
        running.stop_data_service(domain_id)
    for service in services:
        service.close()
    fabric.close()


def _record_service(fabric: FakeFabric, domain_id: str, store: Path) -> RecordService:
    """A domain's RecordService as medfabric.data_service.main builds it, its ledger on the fake Fabric."""
    topology, layout = fabric.topology, fabric.layout
    domain = topology.domain(domain_id)
    members = Consortium.from_layout(topology, layout, domain_id)
    gateway = fabric.connect_as(domain_id, SERVICE_USER)
    return RecordService(
        ServiceIdentity.load(layout.user_msp(domain, SERVICE_USER), domain.msp_id), members,
        FileBlobStore(store / "blobs"), FileKeyStore(store / "keys"),
        LedgerAccessDecisions(gateway, propagation_wait=0), LedgerAuditSink(gateway, members),
        pending=FilePendingPuts(store / "keys" / "pending"), orphan_grace=timedelta(milliseconds=topology.orphan_grace_ms),
    )


def _listen(fabric: FakeFabric, services: list[RecordService]) -> tuple[int, list[DataServiceServer]]:
    """A base port whose data service ports (base + 900 + domain index) are free, with a server on each."""
    offset = PORT_PLAN["data_service"][0]
    cas = ConsortiumTlsCas.from_layout(fabric.topology, fabric.layout)
    contexts = [server_context(user_tls_files(fabric.layout, domain, SERVICE_USER), cas)
                for domain in fabric.topology.domains]
    for _ in range(PORT_ATTEMPTS):
        base_port = random.randrange(20_000, 60_000)
        servers: list[DataServiceServer] = []
        try:
            for index, (service, context) in enumerate(zip(services, contexts)):
                servers.append(DataServiceServer(create_app(service, cas), context, "127.0.0.1",
                                                 base_port + offset + index))
        except OSError:
            for server in servers:
                server.server_close()
            continue
        return base_port, servers
    raise RuntimeError(f"no free data service ports in {PORT_ATTEMPTS} attempts")
