"""Whole record puts back to back (seal, store with the data service, index locally), from several clients.

The load of the data-service fault of `make reliability`: unlike medfabric.bench.steady (bare index entries),
each put goes through medfabric.sharing.emr.put_record, so a data service that dies mid-put is met the way a
user meets it.

    >>> puts = RecordPuts(topology, layout, topology.domains[0], clients=4)
    >>> puts.start(); ...; submits = puts.stop()  # medfabric.bench.steady.Submit, one per put
"""

from __future__ import annotations

from contextlib import ExitStack

from medfabric.bench.steady import BackToBack
from medfabric.consortium.connection import connect_as
from medfabric.consortium.layout import NetworkLayout
from medfabric.consortium.topology import Domain, Topology
from medfabric.crypto import canonical_json
from medfabric.sharing.demo import SAMPLE_OBSERVATION
from medfabric.sharing.emr import prepare_payload, put_record
from medfabric.sharing.session import Session

class RecordPuts(BackToBack):
    """`clients` threads, each a session of the domain's doctor, putting new records until stop()."""

    def __init__(self, topology: Topology, layout: NetworkLayout, domain: Domain, *, clients: int = 4,
                 user: str = "doctor"):
        super().__init__(clients, "record-puts")
        self._topology, self._layout, self.domain, self.clients, self.user = topology, layout, domain, clients, user

    def indexed_ids(self, record_ids: list[str]) -> list[str]:
        """Those of `record_ids` with a live (not erased) entry on the domain's local channel."""
        with ExitStack() as stack:
            session = self._session(stack)
            index = session.index(session.local_channel)
            found = []
            for record_id in record_ids:
                entry = index.find(record_id)
                if entry is not None and entry.get("location"):
                    found.append(record_id)
            return found

    def _session(self, stack: ExitStack) -> Session:
        gateway = stack.enter_context(connect_as(self.domain.id, self.user, topology=self._topology,
                                                 layout=self._layout))
        return Session(self._topology, self._layout, self.domain, self.user, gateway)

    def _work(self) -> None:
        with ExitStack() as stack:
            session = self._session(stack)
            while not self._stop.is_set():
                number = self._number()
                patient, record_id = f"P-PUTS-{self._run_id}-{number:06d}", f"puts-{self._run_id}-{number:06d}"
                plaintext = canonical_json(SAMPLE_OBSERVATION).replace(b"P-DEMO-001", patient.encode())
                self._attempt(record_id, lambda: put_record(session, prepare_payload(plaintext, patient),
                                                            publish=False, record_id=record_id))
