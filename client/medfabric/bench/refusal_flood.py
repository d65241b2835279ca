"""A refusal flood against a data service, and what it costs the other requesters (`make reliability`).

One requester (the flooder: the second domain's doctor, who holds no grant) sends signed fetches of the first
domain's record naming decisions that do not exist, as fast as `flooders` threads can, for `seconds`. Meanwhile
an honest requester (the third domain's doctor, granted the record) requests it over and over: a CheckAccess
decision on the ledger, then the fetch, as `medfabric emr request` does. Measured: the flood's answers by
status (403 refused and checked, 429 throttled at the door), the refusals the owner's service wrote to the
public access log for the flooder (its budget bounds them), and the honest requester's latency before and
during the flood. The flood runs in a process of its own, so that its threads do not hold the honest
requester's interpreter; the CPU seconds each side used (the flood process, the data service when its pid is
given) say how much of the machine the flood took, on a machine shared with every node of the consortium.

    >>> result = run_refusal_flood(topology, layout, seconds=20, service_pid=pid)
    >>> result.flood_statuses, result.honest_during.p50_s, result.flood_cpu_s, result.service_cpu_s
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import resource
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
from typing import Any, Callable

from medfabric.consortium.connection import connect_as
from medfabric.consortium.layout import NetworkLayout
from medfabric.consortium.topology import Topology, load_topology
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
    flood_cpu_s: float = 0.0  # CPU seconds of the flood's process
    flood_answers: Latency = Latency(0, 0.0, 0.0)  # how long the flood's requests took to be answered
    service_cpu_s: float | None = None  # of the flooded data service over the flood, when its pid was given

    @property
    def flood_requests(self) -> int:
        return sum(self.flood_statuses.values())

    @property
    def escapes(self) -> int:
        """Flood requests that were not refused: any answer but 403 or 429."""
        return sum(n for status, n in self.flood_statuses.items() if status not in ("403", "429"))


def run_refusal_flood(topology: Topology, layout: NetworkLayout, *, seconds: float = 20.0, flooders: int = 48,
                      service_pid: int | None = None, say: Callable[[str], None] = lambda line: None) -> FloodResult:
    """The flood on a running consortium with its data services (see the module's docstring); the topology must
    have been loaded from its file (the flood's process loads it again)."""
    if topology.source is None:
        raise ValueError("the refusal flood's process reads the topology from its file: load it from one")
    owner, flooder, honest = topology.domains[0], topology.domains[1], topology.domains[-1]
    with ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="medfabric-flood-")))

        def session(domain) -> Session:
            gateway = stack.enter_context(connect_as(domain.id, "doctor", topology=topology, layout=layout))
            return Session(topology, layout, domain, "doctor", gateway)

        owner_s, honest_s = session(owner), session(honest)
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
        spawn = multiprocessing.get_context("spawn")
        answers: multiprocessing.Queue = spawn.Queue()
        stop = spawn.Event()
        flood = spawn.Process(target=_flood, name="refusal-flood", daemon=True, args=(
            str(topology.source), str(layout.root), flooder.id, owner.id, record_id, flooders, stop, answers))
        say(f"refusal flood: {flooders} threads of {flooder.id}'s doctor, in a process of their own, "
            f"for {seconds:g} s")
        children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
        service_before = _cpu_seconds(service_pid)
        flood.start()
        started = time.monotonic()
        during: list[float] = []
        while time.monotonic() - started < seconds or len(during) < HONEST_REQUESTS:
            times, failed = _timed(honest_request, 1)
            during += times
            failures += failed
        stop.set()
        try:
            statuses, flood_answers = answers.get(timeout=60)
        except queue.Empty:
            raise RuntimeError("the refusal flood's process did not report its answers") from None
        flood.join(30)
        elapsed = time.monotonic() - started
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        service_after = _cpu_seconds(service_pid)
        flood_cpu = (children.ru_utime + children.ru_stime) - (children_before.ru_utime + children_before.ru_stime)
        time.sleep(audit.SETTLE.total_seconds())  # the service's last refusals reach the ledger
        logged = [e for e in audit.log(owner_s, owner_s.public_channel, record_id)
                  if e["requester_msp"] == flooder.msp_id and e["outcome"] == "failure"]
    service_cpu = None if service_before is None or service_after is None else service_after - service_before
    return FloodResult(seconds=round(elapsed, 1), flooders=flooders, flood_statuses=dict(statuses),
                       refusals_logged=len(logged), honest_before=Latency.of(before),
                       honest_during=Latency.of(during), honest_failures=failures, flood_cpu_s=round(flood_cpu, 1),
                       flood_answers=flood_answers,
                       service_cpu_s=None if service_cpu is None else round(service_cpu, 1))


def _flood(topology_file: str, layout_root: str, flooder_id: str, owner_id: str, record_id: str, flooders: int,
           stop: Any, answers: Any) -> None:
    """The flood's process: `flooders` threads of the flooder domain's doctor until `stop`; the answers by status
    go to `answers`."""
    topology, layout = load_topology(topology_file), NetworkLayout(Path(layout_root))
    domain = topology.domain(flooder_id)
    statuses: Counter[str] = Counter()
    lock = threading.Lock()
    with connect_as(domain.id, "doctor", topology=topology, layout=layout) as gateway:
        session = Session(topology, layout, domain, "doctor", gateway)
        service = session.data_service(owner_id)

        answer_s: list[float] = []

        def flood() -> None:
            while not stop.is_set():
                statement = session.signed(action="fetch", record_id=record_id, decision_tx=secrets.token_hex(32))
                started = time.monotonic()
                try:
                    service.fetch(record_id, statement)
                    outcome = "200"
                except DataServiceError as error:
                    outcome = str(error.status) if error.status else "unreachable"
                with lock:
                    statuses[outcome] += 1
                    answer_s.append(time.monotonic() - started)

        threads = [threading.Thread(target=flood, name=f"flood-{n}", daemon=True) for n in range(flooders)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    answers.put((dict(statuses), Latency.of(answer_s)))


def _cpu_seconds(pid: int | None) -> float | None:
    """User and system CPU seconds of process `pid` so far (Linux /proc); None without a pid or a readable one."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


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
