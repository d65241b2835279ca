"""Whole record puts and reads back to back (seal, store with the data service, index locally; decide, fetch,
verify, write), from several clients.

The loads of the data-service fault of `make reliability`: unlike medfabric.bench.steady (bare index entries),
each put goes through medfabric.sharing.emr.put_record and each read through get_record, so a data service that
dies mid-put or mid-fetch is met the way a user meets it.

    >>> puts = RecordPuts(topology, layout, topology.domains[0], clients=4)
    >>> puts.start(); ...; submits = puts.stop()  # medfabric.bench.steady.Submit, one per put
    >>> reads = RecordReads(topology, layout, topology.domains[0], record_ids, out_dir, clients=2)
    >>> reads.start(); ...; reads.stop(); reads.partial_files()   # [] : a read writes all of a record or nothing
"""

from __future__ import annotations

import hashlib
from contextlib import ExitStack
from pathlib import Path

from medfabric.bench.steady import BackToBack
from medfabric.consortium.connection import connect_as
from medfabric.consortium.layout import NetworkLayout
from medfabric.consortium.topology import Domain, Topology
from medfabric.crypto import canonical_json
from medfabric.sharing.demo import SAMPLE_OBSERVATION
from medfabric.sharing.emr import get_record, prepare_payload, put_record
from medfabric.sharing.session import Session


class _UserSessions(BackToBack):
    """Back-to-back work of `clients` threads, each in a session of one user of `domain`."""

    def __init__(self, topology: Topology, layout: NetworkLayout, domain: Domain, clients: int, user: str,
                 name: str):
        super().__init__(clients, name)
        self._topology, self._layout, self.domain, self.clients, self.user = topology, layout, domain, clients, user

    def _session(self, stack: ExitStack) -> Session:
        gateway = stack.enter_context(connect_as(self.domain.id, self.user, topology=self._topology,
                                                 layout=self._layout))
        return Session(self._topology, self._layout, self.domain, self.user, gateway)


class RecordPuts(_UserSessions):
    """`clients` threads, each a session of the domain's doctor, putting new records until stop()."""

    def __init__(self, topology: Topology, layout: NetworkLayout, domain: Domain, *, clients: int = 4,
                 user: str = "doctor"):
        super().__init__(topology, layout, domain, clients, user, "record-puts")

    def put_now(self, count: int) -> list[str]:
        """Put `count` records at once, in this thread (for reads to come); their ids."""
        with ExitStack() as stack:
            session = self._session(stack)
            return [self._put(session, self._number())["record_id"] for _ in range(count)]

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

    def _work(self) -> None:
        with ExitStack() as stack:
            session = self._session(stack)
            while not self._stop.is_set():
                number = self._number()
                self._attempt(self._record_id(number), lambda: self._put(session, number))

    def _record_id(self, number: int) -> str:
        return f"puts-{self._run_id}-{number:06d}"

    def _put(self, session: Session, number: int) -> dict:
        patient = f"P-PUTS-{self._run_id}-{number:06d}"
        plaintext = canonical_json(SAMPLE_OBSERVATION).replace(b"P-DEMO-001", patient.encode())
        return put_record(session, prepare_payload(plaintext, patient), publish=False,
                          record_id=self._record_id(number))


class RecordReads(_UserSessions):
    """`clients` threads, each a session of the domain's doctor, reading `record_ids` round robin into `out_dir`
    until stop()."""

    def __init__(self, topology: Topology, layout: NetworkLayout, domain: Domain, record_ids: list[str],
                 out_dir: Path, *, clients: int = 2, user: str = "doctor"):
        super().__init__(topology, layout, domain, clients, user, "record-reads")
        self.record_ids, self.out_dir = list(record_ids), Path(out_dir)

    def partial_files(self) -> list[str]:
        """What in out_dir is not a whole record as indexed: temporaries left, or bytes other than the
        plaintext the index entry names."""
        with ExitStack() as stack:
            index = self._session(stack).index(self.domain.local_channel)
            wrong = []
            for path in sorted(self.out_dir.iterdir()):
                record_id = path.name.split("--")[0]
                entry = index.find(record_id) if path.suffix == ".json" else None
                if entry is None or hashlib.sha256(path.read_bytes()).hexdigest() != entry["plaintext_sha256"]:
                    wrong.append(path.name)
            return wrong

    def _work(self) -> None:
        with ExitStack() as stack:
            session = self._session(stack)
            while not self._stop.is_set():
                number = self._number()
                record_id = self.record_ids[number % len(self.record_ids)]
                out = self.out_dir / f"{record_id}--{number:06d}.json"
                self._attempt(record_id, lambda: get_record(session, record_id, out))
