"""`make reliability`: faults under a steady load on a real consortium of its own, and what each cost.

The default topology comes up at base port 28000 (medfabric_ops.isolated). For each fault a PutRecord load
(medfabric.bench.steady, 16 clients through hospital-a's duty peer) runs, the fault is made by SIGKILL of a
process this run started, `up` brings it back, and afterwards every record Fabric reported committed is read
back. Per fault: transactions committed and failed, lost (committed, not readable), recovery (seconds from the
fault until a one-second window commits half the rate before it), and whether the node came back in step.

    leader orderer   the public channel's current SmartBFT leader (of 4: f = 1)
    peer             hospital-b's duty peer, a public endorser (the load goes on through hospital-a's); its
                     ledger against hospital-a's duty peer's afterwards, every record read back through it
    local peer       hospital-a's second peer, under a load on hospital-a's local channel; the same checks
    chaincode        hospital-a's chaincode server (CCaaS): the errors clients saw
    data service     hospital-a's data service, under whole puts (seal, store, index) and whole reads: the
                     orphan sweep's work, entries without payload, and every file the reads wrote
    unauthorized     every kind of read that must fail (medfabric.bench.unauthorized_reads), each tried and
      reads          its denial looked for in the access log
    refusal flood    one requester's refused fetches as fast as it can send them, another's granted requests
                     meanwhile (medfabric.bench.refusal_flood): throttled, logged within budget, the other unhurt
    down + up        the whole consortium stopped and started again mid-run

The report goes to build/network/bench/reliability-<UTC time>/ (report.md, report.json), with the nodes' logs
(logs/), since the consortium itself is cleaned away.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml
from fabric_protos.common import common_pb2

from medfabric.bench.record_puts import RecordPuts, RecordReads
from medfabric.bench.refusal_flood import run_refusal_flood
from medfabric.bench.steady import BackToBack, SteadyLoad, Submit, recovery_seconds
from medfabric.bench.unauthorized_reads import run_unauthorized_reads
from medfabric.consortium.layout import NetworkLayout
from medfabric.consortium.topology import DEFAULT_TOPOLOGY, Orderer, Peer, Topology

from .binaries import FabricTools, find_binaries
from .channel import PeerAdmin
from .channel_readiness import read_metrics, stragglers
from .data_services import data_service_name
from .isolated import IsolatedConsortium
from .lifecycle import chaincode_process_name
from .process import Supervisor, poll_until

BASE_PORT = 28000
PROFILE = "low-latency"
CONCURRENCY = 16
WARM_S = 8.0  # load before the fault: the rate recovery is measured against
DOWN_S = 15.0  # how long a killed node stays dead
AFTER_S = 10.0  # load after the node is back
CATCH_UP_TIMEOUT_S = 90.0
RETRY_UP_S = 20.0
FLOOD_S = 20.0
UNAUTHORIZED_ROUNDS = 3
PUT_CLIENTS = 4  # whole puts: each also seals and stores with the data service
READ_CLIENTS = 2  # whole reads meanwhile (decide, fetch, verify, write), of READ_RECORDS records put first
READ_RECORDS = 8
_RECORD_NAMED = re.compile(r"\brecord [A-Za-z0-9._:-]+")
SWEPT = re.compile(r"orphan sweep: \d+ confirmed indexed, (\d+) destroyed")  # its log line (orphan_sweep)
ORPHAN_GRACE_S = 20  # the data services' orphan grace here: well above a put's store-to-index time (~50 ms)


@dataclass
class FaultResult:
    fault: str
    load: str
    committed: int
    failed: int
    lost: int
    recovery_s: float | None
    back_in_step: str  # how the node compared with the others once back
    errors: dict[str, int] = field(default_factory=dict)  # the clients' errors, by kind
    written_despite_error: int = 0  # failed submits whose record is readable all the same
    inputs_tried: int | None = None  # hostile rows: requests or argument sets sent
    refusals: int | None = None  # of them refused
    escapes: int | None = None  # of them neither refused nor a valid result


def reliability_document() -> dict[str, Any]:
    document = yaml.safe_load(DEFAULT_TOPOLOGY.read_text())
    document["base_port"] = BASE_PORT
    document.setdefault("baseline", {})["enabled"] = False
    document.setdefault("data_services", {})["orphan_grace"] = f"{ORPHAN_GRACE_S}s"
    return document


class FaultRun:
    """The running consortium, the tools to reach its nodes and the supervisor that started them."""

    def __init__(self, consortium: IsolatedConsortium, tools: FabricTools, say: Callable[[str], None]):
        self.consortium, self.tools, self.say = consortium, tools, say
        self.topology: Topology = consortium.topology
        self.layout: NetworkLayout = consortium.layout
        self.domain = self.topology.domains[0]
        self.public = self.topology.public_channel
        self.restart_error: str | None = None  # the current fault's `up` failed twice: why

    # -- processes -------------------------------------------------------------------

    def kill(self, name: str) -> None:
        status = {s.name: s for s in Supervisor(self.layout).status()}.get(name)
        if status is None or not status.alive or status.pid is None:
            raise RuntimeError(f"{name} is not running: cannot make it fail")
        os.kill(status.pid, signal.SIGKILL)
        poll_until(lambda: not self._alive(name), 10)

    def _alive(self, name: str) -> bool:
        return any(s.name == name and s.alive for s in Supervisor(self.layout).status())

    def restart(self) -> float:
        """`up` again (it starts only what is not running); the monotonic time it returned. Asked once more when
        it finds a channel not ready (a SmartBFT view change still settling); failing again, the error is kept
        for the fault's report and the run goes on."""
        try:
            self.consortium.ops("up")
        except RuntimeError as error:
            self.say(f"  `up` again in {RETRY_UP_S:g} s: {error}")
            time.sleep(RETRY_UP_S)
            try:
                self.consortium.ops("up")
            except RuntimeError as again:
                self.restart_error = str(again)
                self.say(f"  {again}")
        return time.monotonic()

    # -- load --------------------------------------------------------------------------

    def load(self, channel: str | None = None) -> SteadyLoad:
        return SteadyLoad(self.topology, self.layout, domain_id=self.domain.id, channel=channel or self.public.name,
                          concurrency=CONCURRENCY)

    def result(self, fault: str, load: SteadyLoad, submits: list[Submit], fault_at: float, in_step: str,
               peer: Peer | None = None) -> FaultResult:
        """The counts of a fault's run; committed records read back through `peer` (default: the load's)."""
        reader = (peer.name, peer.domain_id) if peer else (None, None)
        failed = [s for s in submits if not s.committed]
        lost = load.lost(submits, *reader)
        written = load.readable_ids([s.record_id for s in failed])
        if lost:
            in_step += f"; reading {lost[0]} back: {load.read_error(lost[0], *reader)}"
        if self.restart_error:
            in_step = f"{self.restart_error}; {in_step}"
            self.restart_error = None
        for line in stragglers(self.topology, self.public):
            in_step += f"; afterwards {line}"
        return FaultResult(
            fault=fault, load=f"PutRecord on {load.channel}, {load.concurrency} clients",
            committed=sum(1 for s in submits if s.committed), failed=len(failed), lost=len(lost),
            recovery_s=recovery_seconds(submits, fault_at), back_in_step=in_step,
            errors=dict(Counter(_error_kind(s.error) for s in failed).most_common(5)),
            written_despite_error=len(written),
        )

    # -- ledgers -----------------------------------------------------------------------

    def leader(self) -> Orderer:
        """The public channel's SmartBFT leader, as most of its live orderers see it."""
        votes = Counter()
        for orderer in self.public.orderers:
            value = read_metrics(orderer.operations_address).get(("consensus_BFT_leader_id", self.public.name))
            if value is not None:
                votes[int(value)] += 1
        if not votes:
            raise RuntimeError("no orderer of the public channel reports a leader")
        leader_id = votes.most_common(1)[0][0]
        return next(o for o in self.public.orderers if o.consenter_id == leader_id)

    def orderer_head(self, orderer: Orderer, number: int | None = None) -> tuple[int, str, str]:
        """(number, previous hash, data hash) of block `number` as `orderer` delivers it (default: its newest)."""
        admin = PeerAdmin(self.tools, self.topology, self.layout, self.domain.peers[0])
        ca = self.layout.orderer_tls_ca(self.topology.orderer_domain(orderer))
        which = "newest" if number is None else str(number)
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / f"{which}.block"
            admin.run("channel", "fetch", which, path, "-c", self.public.name, "--orderer", orderer.address,
                      "--ordererTLSHostnameOverride", orderer.host_name, "--tls", "--cafile", ca, timeout=30)
            header = common_pb2.Block.FromString(path.read_bytes()).header
        return header.number, header.previous_hash.hex(), header.data_hash.hex()

    def peer_info(self, peer: Peer, channel: str) -> tuple[int, str]:
        """(height, current block hash) of the peer's ledger of `channel`."""
        return PeerAdmin(self.tools, self.topology, self.layout, peer).chain_info(channel)

    def under_load(self, fault: Callable[[], None], down_s: float = DOWN_S, channel: str | None = None,
                   load: BackToBack | None = None) -> tuple[Any, list[Submit], float, float]:
        """`load` (by default a PutRecord load on `channel`, default public) warmed up, `fault` made, `down_s`
        later `up`, AFTER_S more load: (load, submits, fault time, restart time)."""
        load = load or self.load(channel)
        load.start()
        time.sleep(WARM_S)
        fault()
        fault_at = time.monotonic()
        time.sleep(down_s)
        restarted = self.restart()
        time.sleep(AFTER_S)
        return load, load.stop(), fault_at, restarted


def leader_orderer(run: FaultRun) -> FaultResult:
    chosen: list[Orderer] = []

    def kill_leader() -> None:
        chosen.append(run.leader())
        run.say(f"leader orderer: killing {chosen[0].host_name} (consenter {chosen[0].consenter_id}) under load")
        run.kill(chosen[0].host_name)

    load, submits, fault_at, restarted = run.under_load(kill_leader)
    leader = chosen[0]
    reference = next(o for o in run.public.orderers if o != leader)
    in_step = _orderer_in_step(run, leader, reference, restarted)
    return run.result(f"kill the public leader orderer ({leader.host_name})", load, submits, fault_at, in_step)


def _orderer_in_step(run: FaultRun, orderer: Orderer, reference: Orderer, restarted: float) -> str:
    """Whether the restarted orderer delivers the reference's newest block, the same (the load has stopped: it
    stays); compared at the reference's block number, since either may be past the other by then."""
    target = run.orderer_head(reference)
    heads: list[tuple[int, str, str]] = []

    def caught_up() -> bool:
        try:
            heads.append(run.orderer_head(orderer))
        except Exception:  # noqa: BLE001 - still starting: asked again
            return False
        return heads[-1][0] >= target[0]

    if not poll_until(caught_up, CATCH_UP_TIMEOUT_S):
        return f"not caught up in {CATCH_UP_TIMEOUT_S:g} s (block {heads[-1][0] if heads else None} of {target[0]})"
    caught_up_s = time.monotonic() - restarted
    same = (heads[-1] if heads[-1][0] == target[0] else run.orderer_head(orderer, target[0])) == target
    return (f"caught up {caught_up_s:.1f} s after restart: block {target[0]}, "
            f"{'same' if same else 'DIFFERENT'} previous and data hash as {reference.host_name}")


def peer(run: FaultRun) -> FaultResult:
    """Another domain's duty peer, a public-channel endorser, killed under the public load through hospital-a."""
    reference = run.domain.duty_peer
    victim = run.topology.domains[1].duty_peer

    def kill_peer() -> None:
        run.say(f"peer: killing {victim.host_name} (a public-channel endorser) under load")
        run.kill(victim.host_name)

    load, submits, fault_at, restarted = run.under_load(kill_peer)
    return _peer_result(run, load, submits, fault_at, restarted, victim, reference,
                        f"kill and restart a public endorser ({victim.host_name})")


def local_peer(run: FaultRun) -> FaultResult:
    """hospital-a's second peer killed under a load on hospital-a's local channel through its duty peer."""
    reference = run.domain.duty_peer
    victim = next(p for p in run.domain.peers if p.name != reference.name)

    def kill_peer() -> None:
        run.say(f"local peer: killing {victim.host_name} under load on {run.domain.local_channel}")
        run.kill(victim.host_name)

    load, submits, fault_at, restarted = run.under_load(kill_peer, channel=run.domain.local_channel)
    return _peer_result(run, load, submits, fault_at, restarted, victim, reference,
                        f"kill and restart a local peer ({victim.host_name})")


def _peer_result(run: FaultRun, load: SteadyLoad, submits: list[Submit], fault_at: float, restarted: float,
                 victim: Peer, reference: Peer, fault: str) -> FaultResult:
    """The victim's ledger against the reference's once the load has stopped, and every committed record read
    back through the victim."""
    def in_step() -> bool:
        try:
            return run.peer_info(victim, load.channel) == run.peer_info(reference, load.channel)
        except Exception:  # noqa: BLE001 - a restarted peer answers "Invalid chain ID" until its channel is loaded
            return False

    if poll_until(in_step, CATCH_UP_TIMEOUT_S):
        height, block_hash = run.peer_info(victim, load.channel)
        state = f"caught up {time.monotonic() - restarted:.1f} s after restart: height {height}, same block hash " \
                f"({block_hash[:12]}...) as {reference.host_name}"
    else:
        state = f"not in step with {reference.host_name} in {CATCH_UP_TIMEOUT_S:g} s"
    result = run.result(fault, load, submits, fault_at, state, peer=victim)
    result.back_in_step += f"; every committed record read back through it ({result.lost} missing)"
    return result


def chaincode(run: FaultRun) -> FaultResult:
    name = chaincode_process_name(run.domain)

    def kill_chaincode() -> None:
        run.say(f"chaincode: killing {name} under load")
        run.kill(name)

    load, submits, fault_at, _ = run.under_load(kill_chaincode)
    return run.result(f"kill a chaincode server ({name})", load, submits, fault_at,
                      "restarted by `up`, chaincode not installed again")


def data_service(run: FaultRun) -> FaultResult:
    """hospital-a's data service killed while its doctors put whole records (seal, store, index) and read others
    back to back; afterwards every stored key against the ledger's index, every index entry against the store,
    and every file the reads wrote against its index entry."""
    name = data_service_name(run.domain)

    def kill_service() -> None:
        run.say(f"data service: killing {name} while {PUT_CLIENTS} clients put records and {READ_CLIENTS} read")
        run.kill(name)

    puts = RecordPuts(run.topology, run.layout, run.domain, clients=PUT_CLIENTS)
    with tempfile.TemporaryDirectory(prefix="medfabric-reads-") as folder:
        reads = RecordReads(run.topology, run.layout, run.domain, puts.put_now(READ_RECORDS), Path(folder),
                            clients=READ_CLIENTS)
        reads.start()
        try:
            puts, attempts, fault_at, _ = run.under_load(kill_service, load=puts)
        finally:
            read_attempts = reads.stop()
        partial = reads.partial_files()
        files = len(list(Path(folder).iterdir()))
    # attempts: Submits, committed = put_record returned
    store = run.layout.node_data(name) / "keys"
    tried = {a.record_id for a in attempts}
    ok = [a for a in attempts if a.committed]
    failed = [a for a in attempts if not a.committed]
    indexed = set(puts.indexed_ids(sorted(tried)))

    def stored_ids() -> set[str]:
        return {path.stem for path in (store / "keys").glob("*.json")} & tried

    def unsettled() -> set[str]:
        """Orphans (stored, never indexed), and blobs of stores cut before their key: pending marks of both."""
        return (stored_ids() - indexed) | ({path.stem for path in (store / "pending").glob("*.json")} & tried - indexed)

    # The sweep destroys an orphan once it is ORPHAN_GRACE_S old, checking every quarter of that.
    swept = poll_until(lambda: not unsettled(), ORPHAN_GRACE_S * 2 + 10)
    settled_s = time.monotonic() - fault_at
    stored = stored_ids()
    without_payload = sorted(indexed - stored)
    left = sorted(unsettled())
    destroyed = sum(int(found) for found in SWEPT.findall(run.layout.log_file(name).read_text(errors="replace")))
    state = (f"orphan sweep destroyed {destroyed} payloads of puts cut short; "
             + (f"none left {settled_s:.0f} s after the kill" if swept else f"{len(left)} left (orphan {left[0]})")
             + f"; {len(without_payload)} index entries with no payload")
    read_ok = sum(1 for a in read_attempts if a.committed)
    read_errors = Counter(_error_kind(a.error) for a in read_attempts if not a.committed)
    state += (f"; reads meanwhile: {read_ok} whole, {len(read_attempts) - read_ok} failed"
              + (f" ({read_errors.most_common(1)[0][0]})" if read_errors else "")
              + f", {len(partial)} of {files} files written not a whole record"
              + (f" ({partial[0]})" if partial else ""))
    lost = sum(1 for a in ok if a.record_id not in indexed or a.record_id not in stored)
    return FaultResult(
        fault=f"kill a data service mid-put ({name})", load=f"whole puts (store + index), {PUT_CLIENTS} clients",
        committed=len(ok), failed=len(failed), lost=lost, recovery_s=recovery_seconds(attempts, fault_at),
        back_in_step=state, errors=dict(Counter(_error_kind(a.error) for a in failed).most_common(5)))


def refusal_flood(run: FaultRun) -> FaultResult:
    """One requester floods hospital-a's data service with fetches naming decisions that do not exist; another,
    granted, reads."""
    service = {s.name: s for s in Supervisor(run.layout).status()}.get(data_service_name(run.domain))
    flood = run_refusal_flood(run.topology, run.layout, seconds=FLOOD_S, say=run.say,
                              service_pid=service.pid if service else None)
    statuses = ", ".join(f"{n} x {status}" for status, n in sorted(flood.flood_statuses.items()))
    before, during = flood.honest_before, flood.honest_during
    asked = before.count + during.count + len(flood.honest_failures)
    note = (f"answers {statuses} (p50 {flood.flood_answers.p50_s} s, max {flood.flood_answers.max_s} s); "
            f"{flood.refusals_logged} refusals written to the access log; the granted "
            f"requester's request p50 {before.p50_s} s (max {before.max_s}) before, {during.p50_s} s (max "
            f"{during.max_s}) during the flood, {len(flood.honest_failures)} of {asked} failed; CPU over the "
            f"flood: {flood.flood_cpu_s} s by the flooding process, {flood.service_cpu_s} s by the data service "
            f"(of {flood.seconds * os.cpu_count():.0f} s the machine has)")
    if flood.honest_failures:
        note += f" ({flood.honest_failures[0]})"
    return FaultResult(
        fault="refusal flood from one requester",
        load=f"signed fetches naming decisions that do not exist, {flood.flooders} "
        f"threads, {flood.seconds:g} s", committed=0, failed=len(flood.honest_failures), lost=0, recovery_s=None,
        back_in_step=note, inputs_tried=flood.flood_requests,
        refusals=flood.flood_statuses.get("403", 0) + flood.flood_statuses.get("429", 0), escapes=flood.escapes)


def unauthorized_reads(run: FaultRun) -> FaultResult:
    """Every kind of unauthorized read (medfabric.bench.unauthorized_reads), UNAUTHORIZED_ROUNDS times each."""
    kinds = run_unauthorized_reads(run.topology, run.layout, rounds=UNAUTHORIZED_ROUNDS, say=run.say)
    loggable = [k for k in kinds if k.logged is not None]
    unlogged = [k for k in kinds if k.logged is None]
    notes = []
    escaped = [k for k in kinds if k.escapes]
    if escaped:
        notes.append("NOT REFUSED: " + ", ".join(f"{k.kind} {k.escapes} of {k.tried} ({k.first_error})"
                                                 for k in escaped))
    else:
        notes.append(f"all {len(kinds)} kinds refused every time")
    otherwise = [k for k in kinds if k.refused_otherwise]
    if otherwise:
        notes.append("refused for another reason: " + ", ".join(
            f"{k.kind} {k.refused_otherwise} of {k.tried} ({k.first_error})" for k in otherwise))
    short = [k for k in loggable if k.logged < k.tried]
    notes.append(f"denials logged {sum(k.logged for k in loggable)} of {sum(k.tried for k in loggable)}"
                 + (" (missing: " + ", ".join(f"{k.kind} {k.tried - k.logged}" for k in short) + ")" if short else ""))
    if unlogged:
        notes.append(", ".join(k.kind for k in unlogged) + ": refused by Fabric, where nothing can be logged")
    notes.append("kinds: " + "; ".join(f"{k.kind} ({k.refused_by})" for k in kinds))
    return FaultResult(
        fault=f"unauthorized reads, {len(kinds)} kinds", load=f"{UNAUTHORIZED_ROUNDS} of each, each on a fresh "
        "published record", committed=0, failed=0, lost=0, recovery_s=None, back_in_step="; ".join(notes),
        inputs_tried=sum(k.tried for k in kinds), refusals=sum(k.refused + k.refused_otherwise for k in kinds),
        escapes=sum(k.escapes for k in kinds))


def down_up(run: FaultRun) -> FaultResult:
    def stop_all() -> None:
        run.say("down + up: stopping the whole consortium under load")
        run.consortium.ops("down")

    load, submits, fault_at, _ = run.under_load(stop_all, down_s=0)
    return run.result("`down` + `up` mid-run", load, submits, fault_at, "every node restarted from its ledger")


FAULTS: dict[str, Callable[[FaultRun], FaultResult]] = {
    "leader-orderer": leader_orderer, "peer": peer, "local-peer": local_peer, "chaincode": chaincode,
    "data-service": data_service, "unauthorized-reads": unauthorized_reads, "refusal-flood": refusal_flood,
    "down-up": down_up,
}


def _error_kind(error: str) -> str:
    """An error's class and first words, record ids left out: alike errors counted together."""
    kind, _, message = error.partition(": ")
    message = _RECORD_NAMED.sub("record <id>", message)
    return f"{kind}: {' '.join(message.split()[:18])}"[:200]


def fuzz_row(report: dict[str, Any]) -> FaultResult:
    """The row of a hostile-input run of tests/fuzz/contracts.py (its --json report)."""
    transactions = report["transactions"]
    return FaultResult(
        fault=f"generated arguments, {len(transactions)} contract transactions (hypothesis, seed {report['seed']})",
        load=f"{report['per_transaction']} per transaction through the real chaincode runtime", committed=0,
        failed=0, lost=0, recovery_s=None,
        back_in_step=f"{report['total_accepted']} valid results; server "
                     f"{'up' if report['server_alive'] else 'DEAD'} after {report['seconds']:g} s",
        inputs_tried=report["total_tried"], refusals=report["total_refused"], escapes=report["total_escapes"])


class UnknownFault(ValueError):
    """A fault name that FAULTS does not have."""


class FaultsNotRun(RuntimeError):
    """Some faults could not be run (their rows say why); the report of the others is in `out`."""

    def __init__(self, message: str, out: Path):
        super().__init__(message)
        self.out = out


def run_reliability(root: Path, faults: list[str], say: Callable[[str], None] = print,
                    fuzz_report: Path | None = None) -> Path:
    """Bring a consortium up, make each fault in turn, write the report (with the row of `fuzz_report`, a
    tests/fuzz/contracts.py --json report, when given); the report folder. A fault whose run fails gets a row
    saying why, the others are run all the same, and FaultsNotRun is raised once the report is written."""
    unknown = sorted(set(faults) - set(FAULTS))
    if unknown:
        raise UnknownFault(f"unknown fault '{unknown[0]}' (known: {', '.join(FAULTS)})")
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    out = root / f"reliability-{stamp}"
    say(f"reliability: a consortium of its own at base port {BASE_PORT}, setting up")
    started = time.monotonic()
    results: list[FaultResult] = []
    with IsolatedConsortium(reliability_document(), out / "consortium", PROFILE) as consortium:
        tools = find_binaries(consortium.topology.fabric_version)
        run = FaultRun(consortium, tools, say)
        not_run: list[str] = []
        for name in faults:
            try:
                results.append(FAULTS[name](run))
            except Exception as error:  # noqa: BLE001 - one fault's failure is its row; the others still run
                reason = f"{type(error).__name__}: {' '.join(str(error).split())}"[:300]
                say(f"  {name}: the fault's run failed: {reason}")
                not_run.append(name)
                results.append(FaultResult(fault=f"{name}: NOT RUN", load="-", committed=0, failed=0, lost=0,
                                           recovery_s=None, back_in_step=f"the fault's run failed: {reason}"))
                continue
            say(f"  {results[-1].fault}: {results[-1].committed} committed, {results[-1].lost} lost, "
                f"recovery {results[-1].recovery_s} s")
        if consortium.layout.logs.is_dir():  # kept: the consortium is not
            shutil.copytree(consortium.layout.logs, out / "logs", dirs_exist_ok=True)
    if fuzz_report is not None:
        results.append(fuzz_row(json.loads(fuzz_report.read_text())))
    report = {"generated_at": stamp, "seconds": round(time.monotonic() - started, 1),
              "results": [asdict(r) for r in results]}
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / "report.md").write_text(report_markdown(results, report["seconds"]))
    if not_run:
        raise FaultsNotRun(f"{len(not_run)} of {len(faults)} faults could not be run ({', '.join(not_run)}): "
                           f"see {out / 'report.md'}", out)
    return out


def report_markdown(results: list[FaultResult], seconds: float) -> str:
    lines = [f"# Reliability: faults under load, hostile input (real Fabric, {seconds:g} s)", "",
             "| fault | load | tx committed | tx failed | tx lost | recovery (s) | inputs tried | refusals | escapes "
             "| back in step |",
             "|---|---|---|---|---|---|---|---|---|---|"]

    def cell(value: int | float | None) -> str:
        return "-" if value is None else f"{value:g}"

    for r in results:
        lines.append(f"| {r.fault} | {r.load} | {r.committed} | {r.failed} | {r.lost} | {cell(r.recovery_s)} | "
                     f"{cell(r.inputs_tried)} | {cell(r.refusals)} | {cell(r.escapes)} | {r.back_in_step} |")
    lines += ["", "Clients' errors by kind (failed submits; none of them is a lost transaction):", ""]
    for r in results:
        written = f" ({r.written_despite_error} written all the same)" if r.written_despite_error else ""
        lines.append(f"* {r.fault}{written}: " + ("; ".join(f"{n} x {e}" for e, n in r.errors.items()) or "none"))
    return "\n".join(lines) + "\n"
