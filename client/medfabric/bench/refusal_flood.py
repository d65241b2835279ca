"""A refusal flood against a data service, and what it costs the other requesters (`make reliability`).

One requester (the flooder: the second domain's doctor, who holds no grant) sends signed fetches of the first
domain's record naming decisions that do not exist, as fast as `flooders` threads can, for `seconds`. Meanwhile
an honest requester (the third domain's doctor, granted the record) requests it over and over: a CheckAccess
decision on the ledger, then the fetch, as `medfabric emr request` does. Measured: the flood's answers by
status (403 refused and checked, 429 throttled at the door), the refusals the owner's service wrote to the
public access log for the flooder (its budget bounds them), and the honest requester's latency before and
during the flood.

    >>> result = run_refusal_flood(topology, layout, seconds=20)
    >>> result.flood_statuses, result.honest_during.p50_s
"""

from __future__ import annotations

import secrets
import statistics
import tempfile
import threading
import time
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable

from medfabric.consortium.connection import connect_as
from medfabric.consortium.layout import NetworkLayout
from medfabric.consortium.topology import Topology
from medfabric.crypto import canonical_json
from medfabric.data_service.client import DataServiceError
from medfabric.sharing import audit
from medfabric.sharing.demo import SAMPLE_OBSERVATION
from medfabric.sharing.emr import grant, prepare_payload, put_record, request
from medfabric.sharing.session import Session

HONEST_REQUESTS = 8  # honest requests timed before the flood, and at least as many during it


@dataclass(frozen=True)
class Latency:
    count: int
    p50_s: float
    max_s: float

    @classmethod
    def of(cls, seconds: list[float]) -> "Latency":
        return cls(len(seconds), round(statistics.median(seconds), 3), round(max(seconds), 3)) if seconds \
            else cls(0, 0.0, 0.0)


@dataclass
class FloodResult:
    seconds: float
    flooders: int
    flood_statuses: dict[str, int]  # "403", "429", or an error kind: the flood's answers
    refusals_logged: int  # the public access log's refusals of the flooder for the record
    honest_before: Latency
    honest_during: Latency
    honest_failures: list[str] = field(default_factory=list)

    @property
    def flood_requests(self) -> int:
        return sum(self.flood_statuses.values())

    @property
    def escapes(self) -> int:
        """Flood requests that were not refused: any answer but 403 or 429."""
        return sum(n for status, n in self.flood_statuses.items() if status not in ("403", "429"))


def run_refusal_flood(topology: Topology, layout: NetworkLayout, *, seconds: float = 20.0, flooders: int = 48,
                      say: Callable[[str], None] = lambda line: None) -> FloodResult:
    """The flood on a running consortium with its data services (see the module's docstring)."""
    owner, flooder, honest = topology.domains[0], topology.domains[1], topology.domains[-1]
    with ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="medfabric-flood-")))

        def session(domain) -> Session:
            gateway = stack.enter_context(connect_as(domain.id, "doctor", topology=topology, layout=layout))
            return Session(topology, layout, domain, "doctor", gateway)

        owner_s, flooder_s, honest_s = session(owner), session(flooder), session(honest)
        patient = f"P-FLOOD-{secrets.token_hex(4)}"
        record_id = put_record(owner_s, prepare_payload(canonical_json(SAMPLE_OBSERVATION).replace(
            b"P-DEMO-001", patient.encode()), patient), publish=True)["record_id"]
        grant(owner_s, record_id, honest.id, "treatment", datetime.now(timezone.utc) + timedelta(hours=1), "doctor")
        say(f"refusal flood: record {record_id} of {owner.id}, granted to {honest.id}'s doctor")
        _wait_visible(honest_s, record_id)

        def honest_request() -> float:
            started = time.monotonic()
            request(honest_s, record_id, owner.id, folder / "honest.json")
            return time.monotonic() - started

        before, failures = _timed(honest_request, HONEST_REQUESTS)
        service = flooder_s.data_service(owner.id)
        statuses: Counter[str] = Counter()
        lock = threading.Lock()
        stop = threading.Event()

        def flood() -> None:
            while not stop.is_set():
                statement = flooder_s.signed(action="fetch", record_id=record_id, decision_tx=secrets.token_hex(32))
                try:
                    service.fetch(record_id, statement)
                    outcome = "200"
                except DataServiceError as error:
                    outcome = str(error.status) if error.status else "unreachable"
                with lock:
                    statuses[outcome] += 1

        threads = [threading.Thread(target=flood, name=f"flood-{n}", daemon=True) for n in range(flooders)]
        say(f"refusal flood: {flooders} threads of {flooder.id}'s doctor for {seconds:g} s")
        started = time.monotonic()
        for thread in threads:
            thread.start()
        during: list[float] = []
        while time.monotonic() - started < seconds or len(during) < HONEST_REQUESTS:
            times, failed = _timed(honest_request, 1)
            during += times
            failures += failed
        stop.set()
        for thread in threads:
            thread.join(30)
        elapsed = time.monotonic() - started
        time.sleep(audit.SETTLE.total_seconds())  # the service's last refusals reach the ledger
        logged = [e for e in audit.log(owner_s, owner_s.public_channel, record_id)
                  if e["requester_msp"] == flooder.msp_id and e["outcome"] == "failure"]
    return FloodResult(seconds=round(elapsed, 1), flooders=flooders, flood_statuses=dict(statuses),
                       refusals_logged=len(logged), honest_before=Latency.of(before),
                       honest_during=Latency.of(during), honest_failures=failures)


def _timed(call: Callable[[], float], times: int) -> tuple[list[float], list[str]]:
    seconds, failures = [], []
    for _ in range(times):
        try:
            seconds.append(call())
        except Exception as error:  # noqa: BLE001 - an honest request that fails is a finding, reported
            failures.append(f"{type(error).__name__}: {' '.join(str(error).split())[:160]}")
    return seconds, failures


def _wait_visible(session: Session, record_id: str, timeout: float = 30.0) -> None:
    index = session.index(session.public_channel)
    deadline = time.monotonic() + timeout
    while index.find(record_id) is None:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{record_id} not visible to {session.domain.id} after {timeout:g} s")
        time.sleep(0.2)
