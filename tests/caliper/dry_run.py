"""Dry run of a Caliper suite without Fabric: the real Caliper, workloads and runner against a fake Gateway.

    python -m tests.caliper.dry_run --suite NAME [--rounds N] [--json] [--bench-dir DIR]

THE FIGURES ARE NOT FABRIC'S. They measure Caliper 0.6 (manager and worker, with the
official @hyperledger/fabric-gateway client) + the fake Gateway of
tests/caliper/gateway_server.py (this process: TLS gRPC, signature and policy checks, an
in-memory ledger that runs one transaction at a time per channel and commits it at
endorsement) + the real chaincode runtimes (our Python runtime and the Node baseline on
Fabric's fabric-shim, each in a process of its own). There is no peer, no orderer, no
consensus (Raft or SmartBFT), no block cutting, no validation and no ledger on disk:
"local" and "public" rounds differ only by channel name, and a round's latency has none of
a real network's ordering delay. Use them to check that the suites, workloads and runner
work end to end, and to compare the two chaincode runtimes behind the same front end;
never quote them as the consortium's throughput or latency (`make bench` measures that).

What it does: a topology like network/topology.yaml at a free base port and its crypto
material in a temporary folder (deleted at the end); the Python chaincode server
(`--python-chaincode process`, the default; `in-process` runs it inside this process, as
FakeFabric does by default) and the Node baseline server (skipped, and the topology
without it, when node or caliper/baseline/node_modules is missing: a suite with baseline
rounds then cannot run); the fake Gateway on every duty peer's address with both
chaincodes on every channel; then medfabric_ops.bench.run_bench with the project's
caliper/ workspace, as `make bench` runs it, except that the consortium check is skipped
and the CPU is sampled for the process groups "fake-gateway" (this process),
"chaincode-python" and "chaincode-node" beside "caliper". It prints the runner's progress,
then `medfabric bench report`'s table (and its plots, in the run folder), a table of CPU
per process group per round, and the run folder, which is kept under --bench-dir (default:
a new temporary folder, printed). The run folder also holds dry-run.json (what served the
run, the fake Gateway's call counts) and the chaincode servers' logs.

Exit status: 0 when the run passed, 1 when run_bench reports problems (a failed
transaction in a round not labelled -expect-failures, a round without records, Caliper
exiting non-zero), 2 when it cannot run at all. With --json, the results (results.json of
the run, plus "run_dir" and "plots") go to stdout and everything else to stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable, Mapping
from unittest import mock


from medfabric.bench.report import ReportError, results_table, write_plots
from medfabric.consortium.layout import NetworkLayout
from medfabric.consortium.topology import DEFAULT_TOPOLOGY, Topology, load_topology
from medfabric_ops import bench, network
from medfabric_ops.crypto_material import generate_crypto

from ..topologies import random_base_port, write_topology
from .chaincode_servers import ChaincodeProcess, ChaincodeUnavailable, baseline_missing, node_baseline, python_chaincode
from .gateway_server import ContractGatewayServer

PORT_ATTEMPTS = 20
NOT_FABRIC = ("dry run: Caliper + fake Gateway + real chaincode runtimes; no peer, orderer or consensus: "
              "these figures are not Fabric's")
GROUPS = ("caliper", "fake-gateway", "chaincode-python", "chaincode-node")


class DryRunError(RuntimeError):
    """The dry run cannot start: one line."""


def serve(topology_file: Path, layout: NetworkLayout,
          chaincodes: Mapping[str, str]) -> tuple[Topology, ContractGatewayServer]:
    """The fake Gateway on the duty peers of network/topology.yaml at the first free base port tried."""
    for _attempt in range(PORT_ATTEMPTS):
        topology = write_topology(topology_file, random_base_port())
        server = ContractGatewayServer(topology, layout, chaincodes=chaincodes)
        try:
            server.start()
        except OSError:
            continue
        return topology, server
    raise DryRunError(f"no free base port for the duty peers in {PORT_ATTEMPTS} attempts")


def cpu_groups(python: ChaincodeProcess | None, node: ChaincodeProcess | None) -> dict[str, list[int]]:
    """The process groups whose CPU the runner samples beside Caliper's."""
    groups = {"fake-gateway": [os.getpid()]}
    if python is not None:
        groups["chaincode-python"] = [python.pid]
    if node is not None:
        groups["chaincode-node"] = [node.pid]
    return groups


def run(suite: str, rounds: int | None, bench_dir: Path, say: Callable[[str], None],
        python_in_process: bool = False) -> bench.BenchRun:
    """Start the chaincode servers and the fake Gateway, run the suite with ops' runner, stop them all."""
    unavailable = bench.caliper_unavailable()
    if unavailable:
        raise DryRunError(unavailable)
    bench.load_suite(bench.suite_file(suite))  # a wrong name or file fails before anything starts
    consortium = load_topology(DEFAULT_TOPOLOGY)
    application, baseline = consortium.chaincode, consortium.baseline
    work = Path(tempfile.mkdtemp(prefix="medfabric-dry-run-network-"))
    try:
        layout = NetworkLayout(work / "build" / "network")
        generate_crypto(consortium, layout)  # ports play no part in the material
        with contextlib.ExitStack() as stack:
            chaincodes: dict[str, str] = {}
            python = node = None
            if not python_in_process:
                python = stack.enter_context(python_chaincode(f"{application.name}_{application.version}:fake",
                                                              log=work / "chaincode-python.log"))
                chaincodes[application.name] = python.address
            missing = "the topology has none" if baseline is None else baseline_missing()
            if missing:
                say(f"dry run: without the Node baseline ({missing})")
            else:
                node = stack.enter_context(node_baseline(f"{baseline.name}_{baseline.version}:fake",
                                                         log=work / "chaincode-node.log"))
                chaincodes[baseline.name] = node.address
            topology, server = serve(work / "topology.yaml", layout, chaincodes)
            stack.callback(server.stop)
            say(f"dry run: fake Gateway on {', '.join(server.addresses.values())}; chaincodes "
                + ", ".join(f"{name} at {address}" for name, address in server.fabric.chaincodes.items())
                + (f" ({application.name}'s server in this process)" if python_in_process else ""))
            groups = cpu_groups(python, node)
            deployed = topology if node is not None else network.without_baseline(topology)
            with mock.patch.object(bench, "deployed_topology", lambda t, l: deployed), \
                    mock.patch.object(bench, "consortium_groups", lambda t, l: lambda: groups):
                result = bench.run_bench(topology, layout, suite=suite, rounds=rounds, progress=say,
                                         bench_dir=bench_dir)
            counts = server.counts()
        for name in ("chaincode-python.log", "chaincode-node.log"):
            if (work / name).is_file():
                shutil.copy(work / name, result.run_dir / name)
        (result.run_dir / "dry-run.json").write_text(json.dumps({
            "note": NOT_FABRIC,
            "chaincodes": {application.name: ("in the fake Gateway's process" if python_in_process
                                              else f"own process, {python.address}"),
                           **({baseline.name: f"own process, {node.address}" if node is not None
                               else f"not run: {missing}"} if baseline else {})},
            "cpu_groups": sorted(groups),
            "gateway_calls": counts,
        }, indent=2) + "\n")
        return result
    finally:
        shutil.rmtree(work, ignore_errors=True)  # a folder made above, under the temporary directory


def cpu_rows(results: Mapping[str, Any]) -> list[list[str]]:
    """Per round, the CPU (% of one core over the round) of each process group."""
    rows = []
    for entry in results["rounds"]:
        cpu = entry.get("cpu") or {}
        rows.append([f"{entry['index']} {entry['label']}", entry["channel_kind"],
                     *(_percent((cpu.get(group) or {}).get("percent")) for group in GROUPS)])
    return rows


def _percent(value: Any) -> str:
    return "-" if value is None else f"{value:.1f}"


def show(result: bench.BenchRun, out) -> list[Path]:
    """The report's table, the CPU table and the problems, on `out`; the plots written in the run folder."""
    from rich.console import Console
    from rich.table import Table

    console = Console(file=out, width=160, highlight=False)
    console.print(results_table(result.results))
    cpu = Table(title="CPU, % of one core during each round", box=None)
    for column in ("round", "channel kind", *GROUPS):
        cpu.add_column(column, justify="left" if column in ("round", "channel kind") else "right")
    for row in cpu_rows(result.results):
        cpu.add_row(*row)
    console.print(cpu)
    try:
        plots = write_plots(result.results, result.run_dir)
    except ReportError as error:
        print(f"no plots: {error}", file=out)
        plots = []
    for problem in result.problems:
        print(f"problem: {problem}", file=out)
    print(NOT_FABRIC, file=out)
    print(f"run folder: {result.run_dir} ({'passed' if not result.problems else 'FAILED'})", file=out, flush=True)
    return plots


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.caliper.dry_run",
        description="Run a Caliper suite of caliper/benchmarks against the fake Gateway (real contracts, real "
                    "chaincode runtimes, no Fabric). The figures measure Caliper + fake Gateway + chaincode "
                    "runtimes, not Fabric.")
    parser.add_argument("--suite", required=True, help="a suite of caliper/benchmarks, without .yaml")
    parser.add_argument("--rounds", type=int, metavar="N", help="run only the first N rounds")
    parser.add_argument("--json", action="store_true", help="the results as JSON on stdout, the rest on stderr")
    parser.add_argument("--bench-dir", type=Path, help="where the run folder goes (default: a new temporary folder)")
    parser.add_argument("--python-chaincode", choices=("process", "in-process"), default="process",
                        help="the Python chaincode in a process of its own (default), or in the fake Gateway's")
    args = parser.parse_args(argv)
    os.environ.setdefault("GRPC_VERBOSITY", "NONE")
    out = sys.stderr if args.json else sys.stdout

    def say(line: str) -> None:
        print(line, file=out, flush=True)

    bench_dir = (args.bench_dir or Path(tempfile.mkdtemp(prefix="medfabric-dry-run-"))).resolve()
    say(f"dry run of suite {args.suite}: run folder under {bench_dir}")
    say(NOT_FABRIC)
    try:
        result = run(args.suite, args.rounds, bench_dir, say, python_in_process=args.python_chaincode == "in-process")
    except (DryRunError, bench.BenchError, ChaincodeUnavailable) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    plots = show(result, out)
    if args.json:
        print(json.dumps({**result.results, "run_dir": str(result.run_dir), "plots": [str(p) for p in plots]},
                         indent=2))
    return 1 if result.problems else 0


if __name__ == "__main__":
    sys.exit(main())
