"""`medfabric network ...` (and `python -m medfabric_ops ...`): the consortium's life cycle.

The client's `medfabric` command loads the `network` group from the
entry-point group "medfabric.cli", so the client never imports ops. Errors
are one line on stderr and a non-zero exit; a failing node or Fabric command
adds the last lines of its log below that line.
"""

from __future__ import annotations

import json
import sys
import time
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any, Callable, Iterator

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from medfabric.consortium.layout import PROJECT_ROOT, NetworkLayout
from medfabric.consortium.topology import Topology, TopologyError, load_topology

from . import compose, crypto_material, docker_mode, render
from . import network as native
from .bench import BenchError, run_bench, running_profile, summary_lines
from .binaries import (
    FABRIC_COMMANDS,
    BinariesError,
    FabricBinaries,
    FabricCommandError,
    find_binaries,
    locate_binaries,
    record_binaries,
)
from .channel import ChannelError
from .channel_readiness import ChannelNotReadyError
from .crypto_material import CryptoMaterialError
from .data_services import DataServiceError
from .docker_mode import ComposeProject, DockerError
from .lifecycle import DeployError, baseline_unavailable
from .osnadmin import OSNAdminError
from .process import ProcessError, Supervisor

_EXPECTED_ERRORS = (TopologyError, BinariesError, render.SampleConfigError, CryptoMaterialError,
                    FabricCommandError, ProcessError, OSNAdminError, ChannelError, ChannelNotReadyError, DeployError,
                    DockerError, DataServiceError, native.NetworkError, BenchError, OSError)
_ERRORS_WITH_LOG_TAIL = (ProcessError, FabricCommandError, DockerError)
_SOURCES = {"FABRIC_BIN": "from $FABRIC_BIN, recorded for later commands", "recorded": "where setup found them",
            "cache": "cached", "build": "built from ops/fabric", "release": "from the official release tarball"}
COMPOSE_FILE = PROJECT_ROOT / "docker-compose.yaml"  # its volumes are relative to the project root


class _OneLineErrors(click.Group):
    """Expected failures become one line on stderr (plus a log tail where there is one) and exit status 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except _EXPECTED_ERRORS as exc:
            summary, *tail = str(exc).strip().splitlines() or [type(exc).__name__]
            click.echo(f"error: {summary}", err=True)
            if isinstance(exc, _ERRORS_WITH_LOG_TAIL) and tail:
                click.echo("\n".join(tail), err=True)
            sys.exit(1)


def _topology_option(command: Callable) -> Callable:
    return click.option(
        "--topology", "topology_path", envvar="MEDFABRIC_TOPOLOGY", type=click.Path(dir_okay=False),
        default=None, help="Consortium description (default: network/topology.yaml).",
    )(command)


def _json_option(command: Callable) -> Callable:
    return click.option("--json", "as_json", is_flag=True, help="Machine-readable output on stdout.")(command)


def _profile_option(command: Callable) -> Callable:
    return click.option(
        "--profile", envvar="MEDFABRIC_PROFILE", default=None, metavar="NAME",
        help="Tuning profile of the topology's `profiles:` (low-latency, high-throughput; default: the file's "
             "values); env MEDFABRIC_PROFILE.",
    )(command)


def _mode_option(command: Callable) -> Callable:
    return click.option(
        "--mode", envvar="MEDFABRIC_MODE", type=click.Choice(["native", "docker"]), default="native",
        show_default=True, help="Fabric as native processes, or as Docker containers (docker compose); "
                                "env MEDFABRIC_MODE.",
    )(command)


@click.group(cls=_OneLineErrors, context_settings={"help_option_names": ["-h", "--help"]})
def network() -> None:
    """Run the MedFabric consortium: set up, bring up, inspect, take down.

    Example: medfabric network up && medfabric network status
    """


@network.command()
@_topology_option
@_mode_option
@_profile_option
@_json_option
def setup(topology_path: str | None, mode: str, profile: str | None, as_json: bool) -> None:
    """Find the Fabric binaries and sampleconfig ($FABRIC_BIN, then the cached copy), else build them from the
    pinned Go module or download the official release, and record where they are; in docker mode,
    check that Docker and its Compose plugin are there instead. Writes Caliper's network configuration.

    Example: FABRIC_BIN=~/fabric-3.1.5/bin medfabric network setup
    """
    topology, layout = load_topology(topology_path, profile), NetworkLayout.default()
    if mode == "docker":
        versions = docker_mode.check_docker()
        render.render_caliper_network(topology, layout)
        images = [f"hyperledger/fabric-{node}:{topology.fabric_version}" for node in ("orderer", "peer", "tools")]
        _emit({"mode": "docker", **versions, "images": images,
               "caliper_network_config": str(layout.caliper_network_config)}, as_json,
              f"Docker engine {versions['engine']}, Compose {versions['compose']}: "
              f"Fabric {topology.fabric_version} runs from {', '.join(images)}")
        return
    binaries = _binaries(topology)
    render.render_caliper_network(topology, layout)
    report = {
        "version": binaries.version,
        "source": binaries.source,
        "bin_dir": str(binaries.bin_dir),
        "config_dir": str(binaries.config_dir),
        "commands": {command: str(binaries.path(command)) for command in FABRIC_COMMANDS},
        "profile": topology.tuning.profile,
        "caliper_network_config": str(layout.caliper_network_config),
    }
    _emit(report, as_json, f"Fabric {binaries.version}: {', '.join(FABRIC_COMMANDS)} in {binaries.bin_dir} "
                           f"({_SOURCES[binaries.source]})")


@network.command("render")
@_topology_option
@_profile_option
@_json_option
def render_command(topology_path: str | None, profile: str | None, as_json: bool) -> None:
    """Write crypto material, the nodes' configuration (with the profile's tuning), Caliper's network
    configuration and docker-compose.yaml; nothing is started.

    Example: medfabric network render --profile low-latency
    """
    topology, layout = load_topology(topology_path, profile), NetworkLayout.default()
    binaries = find_binaries(topology.fabric_version)
    if binaries is None:
        raise BinariesError("render starts every node's configuration from Fabric's sampleconfig, found with the "
                            "binaries: run `make setup` (or set FABRIC_BIN) first")
    crypto_material.generate_crypto(topology, layout)  # the rendered files name these paths
    render.render_network(topology, layout, render.FabricDefaults.load(binaries.config_dir))
    COMPOSE_FILE.write_text(compose.render_compose(topology))  # the same for every profile
    report = {"config_dir": str(layout.root), "compose_file": str(COMPOSE_FILE), "profile": topology.tuning.profile,
              "caliper_network_config": str(layout.caliper_network_config)}
    _emit(report, as_json, f"configuration (profile {topology.tuning.profile}) written under {layout.root}, "
                           f"compose file {COMPOSE_FILE}")


@network.command()
@_topology_option
@_mode_option
@_profile_option
@_json_option
def up(topology_path: str | None, mode: str, profile: str | None, as_json: bool) -> None:
    """Start every node, create and join the channels, deploy the chaincodes (the Node baseline too where
    node and caliper/baseline/node_modules are there), start the data services. Running nodes are kept.

    Example: medfabric network up --profile high-throughput
    """
    topology, layout = load_topology(topology_path, profile), NetworkLayout.default()
    # what the mode needs first: without Docker or the binaries, that is the one line to say
    needs = _docker_project(topology) if mode == "docker" else _binaries(topology)
    with_baseline = True
    if topology.baseline:
        missing = baseline_unavailable(needs_node=mode != "docker")
        if missing:
            click.echo(f"skipping the {topology.baseline.name} baseline chaincode: {missing}", err=True)
            with_baseline = False
    if mode == "docker":
        bring_up = partial(docker_mode.up, topology, layout, needs, with_baseline=with_baseline)
    else:
        bring_up = partial(native.up, topology, layout, needs, with_baseline=with_baseline)
    started = time.perf_counter()
    with _spinner("starting the consortium") as announce:
        timings = bring_up(progress=announce)
    total = round(time.perf_counter() - started, 3)
    report = {"steps": [{"name": t.name, "seconds": t.seconds} for t in timings], "total_seconds": total}
    width = max(len(t.name) for t in timings)
    lines = [f"  {t.name:<{width}}  {t.seconds:6.2f} s" for t in timings]
    _emit(report, as_json, "\n".join([*lines, f"consortium up in {total:.1f} s"]))


@network.command()
@_topology_option
@_mode_option
@_json_option
def down(topology_path: str | None, mode: str, as_json: bool) -> None:
    """Stop every node we started; ledgers and keys are kept for the next `up`.

    Example: medfabric network down
    """
    if mode == "docker":
        stopped, what = docker_mode.down(_docker_project(load_topology(topology_path))), "containers"
    else:
        stopped, what = native.down(NetworkLayout.default()), "processes"
    _emit({"stopped": stopped}, as_json, f"stopped {len(stopped)} {what}" if stopped else "nothing was running")


@network.command()
@_topology_option
@_mode_option
@_json_option
def clean(topology_path: str | None, mode: str, as_json: bool) -> None:
    """Stop every node and delete all generated material: keys, configuration, ledgers, logs.

    Example: medfabric network clean
    """
    layout = NetworkLayout.default()
    if mode == "docker":
        topology = load_topology(topology_path)
        docker_mode.clean(topology, layout, _docker_project(topology))
    else:
        native.clean(layout)
    _emit({"removed": str(layout.root)}, as_json, f"removed {layout.root}")


@network.command()
@_topology_option
@_mode_option
@_json_option
def status(topology_path: str | None, mode: str, as_json: bool) -> None:
    """Every process or container (pid, memory, uptime), and per channel the nodes' heights and the chaincode.

    Example: medfabric network status --json
    """
    topology, layout = load_topology(topology_path), NetworkLayout.default()
    if mode == "docker":
        report = docker_mode.status(topology, layout, _docker_project(topology))
    else:
        try:
            binaries = find_binaries(topology.fabric_version)
        except BinariesError:
            binaries = None  # processes are still reported; peers cannot be asked
        report = native.status(topology, layout, binaries)
    if as_json:
        click.echo(json.dumps(report, indent=2, sort_keys=True))
    else:
        _print_status(report)


@network.command()
@click.argument("node", required=False)
@click.option("-n", "--lines", default=20, show_default=True, help="Lines of each log to show.")
@click.option("--follow", "-f", is_flag=True, help="Keep printing what is appended.")
@_topology_option
def logs(node: str | None, lines: int, follow: bool, topology_path: str | None) -> None:
    """Show the end of a node's log (every log without NODE). NODE may be the start of a name.

    Example: medfabric network logs bft0 -n 50 --follow
    """
    layout = NetworkLayout.default()
    names = _log_names(node, load_topology(topology_path), layout)
    supervisor = Supervisor(layout)
    prefix = (lambda name: f"{name} | ") if len(names) > 1 else (lambda name: "")
    for name in names:
        for line in supervisor.log_tail(name, lines):
            click.echo(f"{prefix(name)}{line}")
    if follow:
        _follow({name: layout.log_file(name) for name in names}, prefix)


@network.command("bench-consensus")
@click.option("--transactions", type=click.IntRange(1), default=300, show_default=True,
              help="PutRecord transactions per BFT channel.")
@click.option("--concurrency", type=click.IntRange(1, 512), default=16, show_default=True)
@click.option("--idle", "idle_s", type=click.FloatRange(0), default=10.0, show_default=True,
              help="Seconds idle before the load, for the heartbeat rate.")
@click.option("--flat", "flat_sizes", default="4,7,10,16", show_default=True, help="Flat consenter counts.")
def bench_consensus(transactions: int, concurrency: int, idle_s: float, flat_sizes: str) -> None:
    """Real SmartBFT, flat (K orderers on one channel) against AHC-clustered (4 groups of 4 and the duty set):
    messages per block from the orderers' metrics, latency and throughput under the same load. Each case comes up
    at base port 27000 in its own folder and is cleaned away; the report is in build/bench/consensus-<time>/.
    """
    from medfabric_ops.consensus_bench import run as run_consensus_bench

    sizes = tuple(int(size) for size in flat_sizes.split(",") if size.strip())
    out = run_consensus_bench(transactions=transactions, concurrency=concurrency, idle_s=idle_s, flat_sizes=sizes,
                              say=lambda line: click.echo(line, err=True))
    click.echo(f"report: {out / 'report.md'}")


@network.command("reliability")
@click.option("--fault", "faults", multiple=True, metavar="NAME",
              help="Only these (leader-orderer, peer, local-peer, chaincode, data-service, unauthorized-reads, "
                   "refusal-flood, down-up); default: all, in that order.")
@click.option("--fuzz-report", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Add the row of this hostile-input report (python -m tests.fuzz.contracts --json --report).")
@_json_option
def reliability(faults: tuple[str, ...], fuzz_report: Path | None, as_json: bool) -> None:
    """Faults under a steady load on a consortium of its own (base port 28000, cleaned away after): the public
    leader orderer, a public and a local peer, a chaincode server, a data service mid-put, a refusal flood, the
    whole consortium down and up. Prints the table of committed, lost, recovery time, catch-up and, for hostile
    input, tried, refused and escaped; the report is in build/network/bench/reliability-<time>/."""
    from medfabric_ops.reliability import FAULTS, FaultsNotRun, UnknownFault, run_reliability

    chosen = list(faults) or list(FAULTS)
    failure = None
    try:
        out = run_reliability(NetworkLayout.default().root / "bench", chosen,
                              say=lambda line: click.echo(line, err=True), fuzz_report=fuzz_report)
    except UnknownFault as error:
        raise click.UsageError(str(error)) from None
    except FaultsNotRun as error:
        out, failure = error.out, error
    if as_json:
        click.echo((out / "report.json").read_text(), nl=False)
    else:
        click.echo((out / "report.md").read_text(), nl=False)
        click.echo(f"report: {out / 'report.md'}")
    if failure is not None:
        raise click.ClickException(str(failure))


@network.command()
@click.option("--suite", default="default", show_default=True, help="The suite: caliper/benchmarks/SUITE.yaml.")
@click.option("--rounds", type=click.IntRange(min=1), default=None, help="Run only the suite's first N rounds.")
@click.option("--profile", envvar="MEDFABRIC_PROFILE", default=None, metavar="NAME",
              help="Check that the consortium runs this tuning profile (default: report the one it runs).")
@_topology_option
@_json_option
def bench(suite: str, rounds: int | None, profile: str | None, topology_path: str | None, as_json: bool) -> None:
    """Run a Caliper suite against the running (native) consortium: per round goodput, send rate, latency
    percentiles and the CPU of every process group, Caliper's included, in build/bench/<time>-<suite>/
    results.json. Fails if Caliper fails, a round has no records, or a round has failures it did not declare
    expected (label ending in -expect-failures).

    Example: medfabric network bench --suite smoke --json
    """
    layout = NetworkLayout.default()
    topology = load_topology(topology_path, running_profile(layout, profile))
    progress = (lambda line: click.echo(line, err=True))
    run = run_bench(topology, layout, suite=suite, rounds=rounds, progress=progress)
    lines = [*summary_lines(run.results), f"results: {run.run_dir / 'results.json'} (`medfabric bench report`)"]
    _emit(run.results, as_json, "\n".join(lines))
    if run.problems:
        raise BenchError(run.problems[0] + (f" (and {len(run.problems) - 1} more problems)"
                                            if len(run.problems) > 1 else ""))


def _docker_project(topology: Topology) -> ComposeProject:
    """The topology's compose project, once Docker is known to be usable."""
    docker_mode.check_docker()
    return ComposeProject(COMPOSE_FILE, topology.name)


def _binaries(topology: Topology) -> FabricBinaries:
    """The binaries as `locate_binaries` finds them (a build or download with a spinner), recorded for later."""
    found = find_binaries(topology.fabric_version)
    if not found:
        with _spinner(f"building or downloading Fabric {topology.fabric_version} (about 2 minutes)"):
            found = locate_binaries(topology.fabric_version)
    record_binaries(found)
    return found


def _log_names(node: str | None, topology: Topology, layout: NetworkLayout) -> list[str]:
    """The processes whose logs to show: all, the one named NODE, or the one whose name starts with it."""
    logged = {path.name.removesuffix(".log") for path in layout.logs.glob("*.log")}
    known = native.process_names(topology) + sorted(logged - set(native.process_names(topology)))
    if node is None:
        names = [name for name in known if name in logged]
        if not names:
            raise native.NetworkError(f"no logs yet in {layout.logs}")
        return names
    matches = [name for name in known if name == node] or [name for name in known if name.startswith(node)]
    if len(matches) != 1:
        problem = "matches " + ", ".join(matches) if matches else "is no node of the topology"
        raise native.NetworkError(f"'{node}' {problem}")
    if matches[0] not in logged:
        raise native.NetworkError(f"{matches[0]} has no log yet in {layout.logs}")
    return matches


def _follow(files: dict[str, Path], prefix: Callable[[str], str]) -> None:
    """Print lines appended to the files until interrupted."""
    offsets = {name: path.stat().st_size for name, path in files.items()}
    try:
        while True:
            for name, path in files.items():
                with open(path, "rb") as log:
                    log.seek(offsets[name])
                    chunk = log.read()
                complete = chunk[: chunk.rfind(b"\n") + 1]
                offsets[name] += len(complete)
                for line in complete.decode(errors="replace").splitlines():
                    click.echo(f"{prefix(name)}{line}")
            time.sleep(0.25)
    except KeyboardInterrupt:
        pass


@contextmanager
def _spinner(message: str) -> Iterator[Callable[[str], None]]:
    """A spinner on stderr (terminals only); yields a function that changes its text."""
    console = Console(stderr=True)
    if not console.is_terminal:
        yield lambda text: None
        return
    with console.status(message) as spinner:
        yield lambda text: spinner.update(f"{text}…")


def _emit(report: dict[str, Any], as_json: bool, human: str) -> None:
    click.echo(json.dumps(report, indent=2, sort_keys=True) if as_json else human)


def _print_status(report: dict[str, Any]) -> None:
    console = Console()
    processes = Table("process", "pid", "alive", "RSS MiB", "uptime s", box=None)
    for process in report["processes"]:
        rss = process["rss_bytes"]
        processes.add_row(process["name"], str(process["pid"] or "-"), "yes" if process["alive"] else "NO",
                          f"{rss / 2**20:.0f}" if rss else "-", str(process["uptime_seconds"] or "-"))
    console.print(processes if report["processes"] else "no processes started")
    for channel, facts in report["channels"].items():
        console.print(f"\n[bold]{escape(channel)}[/bold]  chaincode: {_fact(facts['chaincode'])}")
        for node, answer in {**facts["orderers"], **facts["peers"]}.items():
            console.print(f"  {escape(node)}: {_fact(answer)}")


def _fact(answer: dict[str, Any]) -> str:
    if "error" in answer:
        return f"[red]{escape(answer['error'])}[/red]"
    return escape(", ".join(f"{key} {value}" for key, value in answer.items())) or "none"
