"""Caliper benchmarks of the running consortium (`medfabric network bench`, `make bench`).

A run checks that the consortium runs, renders Caliper's network configuration
for the chaincodes that are deployed, launches Caliper (manager and forked
workers, local Node processes) on a suite of caliper/benchmarks, and while it
runs samples the CPU time of every process of the consortium (the
supervisor's pid files) and of Caliper's own process tree from /proc. Caliper
reports neither percentiles nor successful transactions per second, and
counts failed transactions in its throughput, so the figures come from the
workloads' own records instead: one JSONL file per round and worker,
``round-<roundIndex>-<label>-worker-<workerIndex>.jsonl`` in the folder
$MEDFABRIC_BENCH_RECORDS names (the label with every run of characters other
than A-Z a-z 0-9 . _ - made one "_"; ``round-<roundIndex>-worker-<workerIndex>.jsonl``
where a workload could not find it), one line per transaction
``{"start_ms": ..., "end_ms": ..., "ok": true|false, "error": "..."}``
(epoch milliseconds; error optional).

A round whose label ends with ``-expect-failures`` declares its failures
expected (a rejection test): they are reported and do not fail the run.
Any other round fails the run if a transaction failed; every round fails it
if it left no record; and so does Caliper exiting non-zero.

    >>> run = run_bench(topology, layout, suite="smoke", progress=print)
    >>> run.results["rounds"][0]["goodput_tps"], run.problems
    (112.4, [])

Each run gets its own folder, build/bench/<UTC time>-<suite>/ (results.json,
Caliper's report.html and log, the records, the benchmark configuration
that ran); build/bench/latest points at the newest.
"""

from __future__ import annotations

import json
import os
import platform
import re
import resource
import shutil
import signal
import subprocess
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from statistics import fmean
from typing import Any, Callable, Iterable, Mapping, Sequence

import yaml

from medfabric.consortium.layout import LATEST_RUN, PROJECT_ROOT, NetworkLayout, default_bench_dir
from medfabric.bench.loadtest import percentile
from medfabric.consortium.topology import Topology

from . import network, render
from .data_services import data_service_name
from .lifecycle import baseline_unavailable, chaincode_process_name
from .process import Supervisor, tls_handshake

CALIPER_DIR = PROJECT_ROOT / "caliper"  # Caliper's workspace: package.json, benchmarks/, workloads/
RECORDS_ENV = "MEDFABRIC_BENCH_RECORDS"
EXPECT_FAILURES = "-expect-failures"  # a round label ending so declares its failures expected
RECORD_FILE = re.compile(r"^round-(\d+)(?:-(.+))?-worker-(\d+)\.jsonl$")
RECORD_FIELDS = {"start_ms", "end_ms", "ok", "error"}
SCHEMA = "medfabric-bench/1"
SAMPLE_INTERVAL = 0.5  # seconds between CPU samples
PROGRESS_INTERVAL = 5.0  # seconds between progress lines
FIRST_ERRORS = 5  # distinct error messages kept per round
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class BenchError(RuntimeError):
    """The benchmark cannot run, or ran and failed: one line."""


# -- the suite -------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PlannedRound:
    index: int
    label: str
    channel_kind: str  # local, public or baseline (the Node chaincode, on either kind); other if unknown
    expect_failures: bool
    settings: dict[str, Any]  # what Caliper was told: txNumber or txDuration, rateControl, workers


def suite_file(suite: str, caliper_dir: Path = CALIPER_DIR) -> Path:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", suite):
        raise BenchError(f"'{suite}' is not a suite name (a file name in {caliper_dir / 'benchmarks'}, without .yaml)")
    path = caliper_dir / "benchmarks" / f"{suite}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in (caliper_dir / "benchmarks").glob("*.yaml"))
        raise BenchError(f"no suite '{suite}' ({path} does not exist; known: {', '.join(known) or 'none'})")
    return path


def load_suite(path: Path) -> dict[str, Any]:
    """The benchmark configuration; BenchError unless it has a test.rounds list of labelled rounds."""
    try:
        document = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise BenchError(f"{path}: cannot be read as YAML: {str(exc).splitlines()[0]}") from None
    rounds = (document.get("test") or {}).get("rounds") if isinstance(document, dict) else None
    if not isinstance(rounds, list) or not rounds:
        raise BenchError(f"{path}: no test.rounds list")
    for index, entry in enumerate(rounds):
        if not isinstance(entry, dict) or not isinstance(entry.get("label"), str) or not entry["label"]:
            raise BenchError(f"{path}: test.rounds[{index}] has no label")
    return document


def plan_rounds(document: Mapping[str, Any], topology: Topology) -> list[PlannedRound]:
    test = document["test"]
    workers = (test.get("workers") or {}).get("number")
    planned = []
    for index, entry in enumerate(test["rounds"]):
        settings = {key: entry[key] for key in ("txNumber", "txDuration", "rateControl") if key in entry}
        settings["workers"] = workers
        planned.append(PlannedRound(index, entry["label"], channel_kind(entry, topology),
                                    entry["label"].endswith(EXPECT_FAILURES), settings))
    return planned


def channel_kind(entry: Mapping[str, Any], topology: Topology) -> str:
    """The kind of channel a round uses, from its workload arguments (contractId, channel), else its label.

    "baseline" for the Node chaincode on any channel: it is what the Python chaincode is compared with.
    """
    arguments = (entry.get("workload") or {}).get("arguments") or {}
    contract = str(arguments.get("contractId") or arguments.get("contract") or arguments.get("chaincode") or "")
    contract, _at, contract_channel = contract.partition("@")
    if topology.baseline and contract == topology.baseline.name:
        return "baseline"
    channel = str(arguments.get("channel") or arguments.get("channelName") or arguments.get("channelKind")
                  or contract_channel)
    if channel in ("public", topology.public_channel.name):
        return "public"
    if channel == "local" or channel in {c.name for c in topology.channels if c.kind == "local"}:
        return "local"
    words = set(re.split(r"[^a-z0-9]+", str(entry.get("label", "")).lower()))
    for kind, markers in (("baseline", {"baseline", "node"}), ("public", {"public", "bft"}),
                          ("local", {"local", "raft"})):
        if words & markers:
            return kind
    return "other"


# -- the workloads' records ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Record:
    start_ms: float
    end_ms: float
    ok: bool
    error: str | None = None


def file_label(label: str) -> str:
    """A round label as the workloads write it in record file names."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", label)


@dataclass
class RoundRecords:
    label: str | None  # as in the file names (file_label), None where the workloads did not know it
    workers: set[int] = field(default_factory=set)
    records: list[Record] = field(default_factory=list)


def read_records(folder: Path) -> dict[int, RoundRecords]:
    """Every record in the folder by round index; BenchError naming the file (and line) of anything that is
    not in the records' format."""
    rounds: dict[int, RoundRecords] = {}
    for path in sorted(folder.iterdir()) if folder.is_dir() else []:
        match = RECORD_FILE.match(path.name)
        if not match or not path.is_file():
            raise BenchError(f"{path}: not a record file (round-<index>-<label>-worker-<index>.jsonl)")
        index, label, worker = int(match.group(1)), match.group(2), int(match.group(3))
        entry = rounds.setdefault(index, RoundRecords(label))
        if entry.label is None:
            entry.label = label
        elif label is not None and entry.label != label:
            raise BenchError(f"{path}: round {index} is labelled '{entry.label}' in other record files")
        entry.workers.add(worker)
        entry.records.extend(parse_record_file(path))
    return rounds


def parse_record_file(path: Path) -> list[Record]:
    """The records of one file: a JSON object per line, the last line ended by a newline."""
    text = path.read_text(encoding="utf-8", errors="strict")
    if text and not text.endswith("\n"):
        raise BenchError(f"{path}: the last line is incomplete (no newline at the end)")
    return [_record(line, f"{path}:{number}") for number, line in enumerate(text.splitlines(), start=1)]


def _record(line: str, where: str) -> Record:
    try:
        doc = json.loads(line)
    except ValueError:
        raise BenchError(f"{where}: not a JSON object") from None
    if not isinstance(doc, dict):
        raise BenchError(f"{where}: not a JSON object")
    unknown = sorted(set(doc) - RECORD_FIELDS)
    if unknown:
        raise BenchError(f"{where}: unexpected field '{unknown[0]}' (a record holds start_ms, end_ms, ok, error)")
    for key in ("start_ms", "end_ms"):
        if not isinstance(doc.get(key), (int, float)) or isinstance(doc.get(key), bool) or doc[key] < 0:
            raise BenchError(f"{where}: {key} must be a non-negative number of milliseconds")
    if doc["end_ms"] < doc["start_ms"]:
        raise BenchError(f"{where}: end_ms is before start_ms")
    if not isinstance(doc.get("ok"), bool):
        raise BenchError(f"{where}: ok must be true or false")
    if "error" in doc and not isinstance(doc["error"], str):
        raise BenchError(f"{where}: error must be a string")
    return Record(float(doc["start_ms"]), float(doc["end_ms"]), doc["ok"], doc.get("error"))


# -- CPU time --------------------------------------------------------------------------------------------------

def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time the process has used (/proc/<pid>/stat), None if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # fields 14 and 15: utime, stime
    except (OSError, IndexError, ValueError):
        return None


def process_tree(root: int) -> list[int]:
    """`root` and every process descended from it."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rpartition(")")[2].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(entry.name))
    tree, pending = [], [root]
    while pending:
        pid = pending.pop()
        tree.append(pid)
        pending.extend(children.get(pid, []))
    return tree


class CpuSampler:
    """Samples the CPU time of groups of processes at a fixed interval, in a thread.

    A group's figure is the sum, over every process ever seen in it, of the last CPU time read: it never
    goes down when a process ends (the time it used after its last sample is lost, at most one interval).
    """

    def __init__(self, groups: Callable[[], Mapping[str, Iterable[int]]], interval: float = SAMPLE_INTERVAL,
                 clock: Callable[[], float] = time.time):
        self._groups, self._interval, self._clock = groups, interval, clock
        self._last: dict[tuple[str, int], float] = {}
        self.samples: list[tuple[float, dict[str, float]]] = []  # (epoch ms, cumulative seconds by group)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cpu-sampler", daemon=True)

    def sample(self) -> None:
        now = self._clock() * 1000
        totals: dict[str, float] = {}
        for group, pids in self._groups().items():
            totals.setdefault(group, 0.0)
            for pid in pids:
                seconds = cpu_seconds(pid)
                if seconds is not None:
                    key = (group, pid)
                    self._last[key] = max(seconds, self._last.get(key, 0.0))
        for (group, _pid), seconds in self._last.items():
            totals[group] = totals.get(group, 0.0) + seconds
        self.samples.append((now, totals))

    def start(self) -> None:
        self.sample()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self.sample()

    def latest(self, group: str) -> float:
        return self.samples[-1][1].get(group, 0.0) if self.samples else 0.0


def cpu_in_window(samples: Sequence[tuple[float, Mapping[str, float]]], start_ms: float,
                  end_ms: float) -> dict[str, dict[str, float]]:
    """CPU seconds each group used between two instants (interpolated between samples), and as a percentage
    of one core over the window."""
    if not samples:
        return {}
    groups = sorted({group for _t, totals in samples for group in totals})
    seconds_long = max((end_ms - start_ms) / 1000, 1e-9)
    usage = {}
    for group in groups:
        used = max(0.0, _at(samples, group, end_ms) - _at(samples, group, start_ms))
        usage[group] = {"seconds": round(used, 3), "percent": round(100 * used / seconds_long, 1)}
    return usage


def _at(samples: Sequence[tuple[float, Mapping[str, float]]], group: str, instant: float) -> float:
    """A group's cumulative CPU seconds at an instant, linear between the samples around it."""
    before = [(t, totals.get(group, 0.0)) for t, totals in samples if t <= instant]
    after = [(t, totals.get(group, 0.0)) for t, totals in samples if t >= instant]
    if not before:
        return after[0][1]
    if not after:
        return before[-1][1]
    (t0, v0), (t1, v1) = before[-1], after[0]
    return v0 if t1 == t0 else v0 + (v1 - v0) * (instant - t0) / (t1 - t0)


def consortium_groups(topology: Topology, layout: NetworkLayout) -> Callable[[], dict[str, list[int]]]:
    """The consortium's running processes by group: peers, orderers, chaincode servers per runtime, data
    services (others the supervisor knows: "other")."""
    group_of = {orderer.host_name: "orderers" for orderer in topology.orderers}
    group_of.update({peer.host_name: "peers" for peer in topology.peers})
    for chaincode in topology.chaincodes:
        group_of.update({chaincode_process_name(domain, chaincode): f"chaincode-{chaincode.runtime}"
                         for domain in topology.domains})
    group_of.update({data_service_name(domain): "data-services" for domain in topology.domains})
    supervisor = Supervisor(layout)

    def groups() -> dict[str, list[int]]:
        found: dict[str, list[int]] = {group: [] for group in group_of.values()}
        for process in supervisor.status():
            if process.alive and process.pid:
                found.setdefault(group_of.get(process.name, "other"), []).append(process.pid)
        return found

    return groups


# -- the run ---------------------------------------------------------------------------------------------------

@dataclass
class BenchRun:
    run_dir: Path
    results: dict[str, Any]
    problems: list[str]


def running_profile(layout: NetworkLayout, asked: str | None) -> str | None:
    """The profile the consortium's channels were created with; BenchError if `asked` is another."""
    record = network.read_tuning_record(layout)
    profile = record.get("profile") if record else None
    if asked is not None and profile is not None and asked != profile:
        raise BenchError(f"the consortium runs profile '{profile}', not '{asked}': `make clean` and "
                         f"`make up PROFILE={asked}` first")
    return profile or asked


def deployed_topology(topology: Topology, layout: NetworkLayout) -> Topology:
    """The topology as it runs: BenchError unless every process of the consortium is alive and every duty
    peer serves; without the baseline chaincode when none of its servers run."""
    alive = {process.name for process in Supervisor(layout).status() if process.alive}
    if topology.baseline:
        servers = {chaincode_process_name(domain, topology.baseline) for domain in topology.domains}
        if not servers & alive:
            topology = network.without_baseline(topology)
    expected = network.process_names(topology)
    missing = [name for name in expected if name not in alive]
    if len(missing) == len(expected):
        raise BenchError(f"the consortium is not running (no process of it in {layout.run}; bench measures "
                         f"native mode): `make up` first")
    if missing:
        raise BenchError(f"the consortium is not fully running ({len(missing)} of {len(expected)} processes "
                         f"down, {missing[0]} first): `make up` again")
    for domain in topology.domains:
        peer = domain.duty_peer
        if not tls_handshake(peer.host, peer.listen_port)():
            raise BenchError(f"{peer.host_name} does not answer on {peer.address}")
    return topology


def caliper_command(caliper_dir: Path, network_config: Path, bench_config: str, report: Path) -> list[str]:
    """`caliper launch manager` as `npx caliper` runs it from the workspace's node_modules (never a download).
    Caliper cannot create channels or deploy: always --caliper-flow-only-test."""
    return ["node", str(caliper_dir / "node_modules" / ".bin" / "caliper"), "launch", "manager",
            "--caliper-workspace", str(caliper_dir),
            "--caliper-networkconfig", str(network_config),
            "--caliper-benchconfig", bench_config,
            "--caliper-flow-only-test",
            "--caliper-report-path", str(report)]


def caliper_unavailable(caliper_dir: Path = CALIPER_DIR) -> str | None:
    if shutil.which("node") is None:
        return "node is not installed: Caliper needs Node.js 20"
    if not (caliper_dir / "node_modules" / ".bin" / "caliper").exists():
        return f"Caliper is not installed in {caliper_dir}: `npm ci` there (or `make bench-deps`)"
    return None


def new_run_dir(bench_dir: Path, suite: str, now: datetime | None = None) -> Path:
    """bench_dir/<UTC time>-<suite>, created (a -2, -3... suffix if that second is taken)."""
    stamp = (now or datetime.now(timezone.utc)).strftime("%Y%m%dT%H%M%SZ")
    bench_dir.mkdir(parents=True, exist_ok=True)
    for attempt in range(1, 1000):
        run_dir = bench_dir / (f"{stamp}-{suite}" if attempt == 1 else f"{stamp}-{suite}-{attempt}")
        try:
            run_dir.mkdir()
            return run_dir
        except FileExistsError:
            continue
    raise BenchError(f"cannot create a run folder in {bench_dir}")


def point_latest(bench_dir: Path, run_dir: Path) -> None:
    """bench_dir/latest -> run_dir (a relative symbolic link, replaced atomically)."""
    link = bench_dir / LATEST_RUN
    partial = bench_dir / f".{LATEST_RUN}.{os.getpid()}"
    partial.unlink(missing_ok=True)
    os.symlink(run_dir.name, partial)
    os.replace(partial, link)


def run_bench(topology: Topology, layout: NetworkLayout, suite: str = "default", rounds: int | None = None,
              progress: Callable[[str], None] | None = None, caliper_dir: Path = CALIPER_DIR,
              bench_dir: Path | None = None, sample_interval: float = SAMPLE_INTERVAL,
              progress_interval: float = PROGRESS_INTERVAL) -> BenchRun:
    """Run a suite against the running consortium; its results (also in <run dir>/results.json) and the
    problems that fail it (empty if it passed). BenchError if it cannot run at all."""
    say = progress or (lambda line: None)
    path = suite_file(suite, caliper_dir)
    document = load_suite(path)
    if rounds is not None:
        if not 1 <= rounds <= len(document["test"]["rounds"]):
            raise BenchError(f"--rounds {rounds}: suite '{suite}' has {len(document['test']['rounds'])} rounds")
        document["test"]["rounds"] = document["test"]["rounds"][:rounds]
    unavailable = caliper_unavailable(caliper_dir)
    if unavailable:
        raise BenchError(unavailable)
    deployed = deployed_topology(topology, layout)
    planned = plan_rounds(document, topology)
    if topology.baseline and not deployed.baseline and any(r.channel_kind == "baseline" for r in planned):
        why = baseline_unavailable() or "its servers are not running"
        raise BenchError(f"suite '{suite}' has baseline rounds, but {topology.baseline.name} is not deployed "
                         f"({why})")
    render.render_caliper_network(deployed, layout)

    bench_dir = bench_dir or default_bench_dir(layout.root)
    run_dir = new_run_dir(bench_dir, suite)
    records_dir = run_dir / "records"
    records_dir.mkdir()
    ran_config = run_dir / "benchmark.yaml"  # what ran, kept with the results
    ran_config.write_text(yaml.safe_dump(document, sort_keys=False))
    bench_config = str(ran_config) if rounds is not None else f"benchmarks/{path.name}"
    command = caliper_command(caliper_dir, layout.caliper_network_config, bench_config, run_dir / "report.html")
    say(f"bench {suite}: {len(planned)} rounds, profile {deployed.tuning.profile}, results in {run_dir}")

    started = datetime.now(timezone.utc)
    children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    env = dict(os.environ, **{RECORDS_ENV: str(records_dir)})
    with open(run_dir / "caliper.log", "wb") as log:
        caliper = subprocess.Popen(command, cwd=caliper_dir, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    consortium = consortium_groups(deployed, layout)
    sampler = CpuSampler(lambda: {**consortium(), "caliper": process_tree(caliper.pid)}, sample_interval)
    sampler.start()
    try:
        exit_code = _wait(caliper, sampler, records_dir, suite, say, progress_interval)
    except BaseException:
        _stop_group(caliper)
        raise
    finally:
        sampler.stop()
    finished = datetime.now(timezone.utc)
    children_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    # Caliper's whole tree: what it and the descendants it reaped used (RUSAGE_CHILDREN), or what was sampled,
    # whichever is more: a worker still exiting when the manager ends is reaped by init, not by it.
    reaped = (children_after.ru_utime + children_after.ru_stime
              - children_before.ru_utime - children_before.ru_stime)
    caliper_cpu = max(reaped, sampler.latest("caliper") - sampler.samples[0][1].get("caliper", 0.0))

    problems: list[str] = []
    if exit_code != 0:
        problems.append(f"Caliper exited with status {exit_code} (see {run_dir / 'caliper.log'})")
    recorded = read_records(records_dir)
    problems += [f"{records_dir} has records of round {index}, which the suite does not have"
                 for index in sorted(set(recorded) - {r.index for r in planned})]
    problems += [f"round {r.index}: its records are labelled '{recorded[r.index].label}', not '{r.label}'"
                 for r in planned if r.index in recorded
                 and recorded[r.index].label not in (None, file_label(r.label))]
    round_results = []
    for planned_round in planned:
        result = round_result(planned_round, recorded.get(planned_round.index), sampler.samples)
        round_results.append(result)
        problems += round_problems(result)
    results = {
        "schema": SCHEMA,
        "suite": suite,
        "profile": deployed.tuning.profile,
        "tuning": tuning_facts(deployed),
        "chaincodes": [chaincode.name for chaincode in deployed.chaincodes],
        "started_at": started.isoformat(timespec="seconds"),
        "finished_at": finished.isoformat(timespec="seconds"),
        "machine": machine_facts(),
        "caliper": {"command": command, "exit_code": exit_code, "cpu_seconds": round(caliper_cpu, 3),
                    "report": "report.html", "log": "caliper.log", "benchmark": ran_config.name},
        "sample_interval_s": sample_interval,
        "cpu": cpu_in_window(sampler.samples, started.timestamp() * 1000, finished.timestamp() * 1000),
        "rounds": round_results,
        "passed": not problems,
        "problems": problems,
    }
    (run_dir / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    point_latest(bench_dir, run_dir)
    return BenchRun(run_dir, results, problems)


def _wait(caliper: subprocess.Popen, sampler: CpuSampler, records_dir: Path, suite: str,
          say: Callable[[str], None], interval: float) -> int:
    """Wait for Caliper to exit, saying every `interval` seconds how far it got; its exit status."""
    started = last_said = time.monotonic()
    last_cpu = (started, 0.0)
    while caliper.poll() is None:
        time.sleep(min(0.2, interval))
        now = time.monotonic()
        if now - last_said >= interval:
            last_said = now
            cpu = sampler.latest("caliper")
            share = 100 * (cpu - last_cpu[1]) / max(now - last_cpu[0], 1e-9)
            last_cpu = (now, cpu)
            done, failed, files = _count_records(records_dir)
            say(f"bench {suite}: {now - started:.0f} s, {done} transactions recorded ({failed} failed) "
                f"in {files} files, Caliper {share:.0f}% of a core")
    return caliper.returncode


def _count_records(records_dir: Path) -> tuple[int, int, int]:
    """Transactions recorded so far, how many failed, and in how many files (a rough count for progress)."""
    done = failed = files = 0
    for path in records_dir.glob("*.jsonl"):
        try:
            text = path.read_text(errors="replace")
        except OSError:
            continue
        files += 1
        lines = text.splitlines()
        done += len(lines)
        failed += sum('"ok":false' in line.replace(" ", "") for line in lines)
    return done, failed, files


def _stop_group(caliper: subprocess.Popen) -> None:
    """Stop the Caliper process group we started (interrupted run)."""
    if caliper.poll() is None:
        try:
            os.killpg(caliper.pid, signal.SIGTERM)
            caliper.wait(timeout=10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(caliper.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


# -- the figures -----------------------------------------------------------------------------------------------

def round_result(planned: PlannedRound, recorded: RoundRecords | None,
                 samples: Sequence[tuple[float, Mapping[str, float]]]) -> dict[str, Any]:
    """One round's figures from its records: counts, goodput, send rate, latency of successful transactions,
    the most frequent errors and the CPU each process group used during the round."""
    records = recorded.records if recorded else []
    succeeded = [r for r in records if r.ok]
    result: dict[str, Any] = {
        "index": planned.index,
        "label": planned.label,
        "channel_kind": planned.channel_kind,
        "expect_failures": planned.expect_failures,
        "settings": planned.settings,
        "workers": len(recorded.workers) if recorded else 0,
        "submitted": len(records),
        "succeeded": len(succeeded),
        "failed": len(records) - len(succeeded),
        "start_ms": None, "end_ms": None, "duration_s": None,
        "goodput_tps": None, "send_rate_tps": None,
        "latency_ms": None,
        "errors": [],
        "cpu": {},
    }
    if not records:
        return result
    start, end = min(r.start_ms for r in records), max(r.end_ms for r in records)
    duration = (end - start) / 1000
    last_send = max(r.start_ms for r in records)
    send_span = (last_send - start) / 1000 or duration
    result.update(start_ms=start, end_ms=end, duration_s=round(duration, 3),
                  goodput_tps=round(len(succeeded) / duration, 2) if duration > 0 else None,
                  send_rate_tps=round(len(records) / send_span, 2) if send_span > 0 else None)
    if succeeded:
        latencies = [r.end_ms - r.start_ms for r in succeeded]
        result["latency_ms"] = {
            "p50": round(percentile(latencies, 0.50), 1), "p95": round(percentile(latencies, 0.95), 1),
            "p99": round(percentile(latencies, 0.99), 1), "max": round(max(latencies), 1),
            "mean": round(fmean(latencies), 1),
        }
    errors = Counter(r.error or "(no error message)" for r in records if not r.ok)
    result["errors"] = [{"error": error, "count": count} for error, count in errors.most_common(FIRST_ERRORS)]
    result["cpu"] = cpu_in_window(samples, start, end)
    return result


def round_problems(result: Mapping[str, Any]) -> list[str]:
    """What fails the run in this round: no records, or failures it did not declare expected."""
    name = f"round {result['index']} ({result['label']})"
    if not result["submitted"]:
        return [f"{name} has no records"]
    if result["failed"] and not result["expect_failures"]:
        first = result["errors"][0]["error"] if result["errors"] else "no error message"
        return [f"{name}: {result['failed']} of {result['submitted']} transactions failed (first: {first})"]
    return []


def tuning_facts(topology: Topology) -> dict[str, Any]:
    channels = {}
    for kind in ("local", "public"):
        ordering = next(c.ordering for c in topology.channels if c.kind == kind)
        channels[kind] = {"consensus": ordering.consensus, "batch_timeout_ms": ordering.batch_timeout_ms,
                          "max_message_count": ordering.max_message_count}
        if ordering.smartbft:
            options = ordering.smartbft
            channels[kind]["smartbft"] = {"request_pool_size": options.request_pool_size,
                                          "incoming_message_buffer_size": options.incoming_message_buffer_size,
                                          "leader_heartbeat_count": options.leader_heartbeat_count,
                                          **{f"{name}_ms": ms for name, ms in options.timeouts_ms}}
    return {"channels": channels, "peer_gateway_concurrency": topology.tuning.gateway_concurrency}


def machine_facts() -> dict[str, Any]:
    facts: dict[str, Any] = {
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "load_average": [round(value, 2) for value in os.getloadavg()],
    }
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                facts["memory_mib"] = int(line.split()[1]) // 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        facts["node"] = subprocess.run(["node", "--version"], capture_output=True, text=True,
                                       timeout=10).stdout.strip() or None
    except (OSError, subprocess.TimeoutExpired):
        facts["node"] = None
    return facts


def summary_lines(results: Mapping[str, Any]) -> list[str]:
    """One line per round, for people."""
    lines = []
    for r in results["rounds"]:
        latency = r["latency_ms"] or {}
        caliper = (r["cpu"].get("caliper") or {}).get("percent")
        lines.append(
            f"round {r['index']} {r['label']} [{r['channel_kind']}]: {r['succeeded']}/{r['submitted']} ok, "
            f"goodput {_figure(r['goodput_tps'])} TPS, send rate {_figure(r['send_rate_tps'])} TPS, "
            f"p50/p95/p99 {_figure(latency.get('p50'))}/{_figure(latency.get('p95'))}/"
            f"{_figure(latency.get('p99'))} ms, Caliper {_figure(caliper)}% CPU")
    return lines


def _figure(value: Any) -> str:
    return "-" if value is None else f"{value:g}" if isinstance(value, float) else str(value)

