"""The `medfabric` command.

Nouns are groups (`emr`, `audit`, and `network` from the ops package, loaded
as a plugin so the client never imports ops); the same flags everywhere
(`--domain`, `--as`, `--json`, and `--channel` where a channel is chosen);
errors are one line on stderr with a non-zero exit.
"""

from __future__ import annotations

import sys
from importlib.metadata import entry_points
from typing import Any

import click

from medfabric.bench.report import report as bench_report
from medfabric.cli.audit import audit
from medfabric.cli.context import CliContext, channel_option, emit, identity_options
from medfabric.cli.diagnose import diagnose
from medfabric.cli.emr import emr
from medfabric.cli.fl import fl
from medfabric.cli.market import market
from medfabric.cli.consensus import consensus
from medfabric.errors import MedfabricError
from medfabric.gateway import GatewayError
from medfabric.consortium.service_identity import SERVICE_USER
from medfabric.consortium.topology import TopologyError

PLUGIN_GROUP = "medfabric.cli"
_USER_ERRORS = (MedfabricError, TopologyError, GatewayError, OSError, ValueError)


class _OneLineErrors(click.Group):
    """Turns expected failures into one line on stderr and exit status 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except _USER_ERRORS as exc:
            click.echo(f"error: {one_line(exc)}", err=True)
            sys.exit(1)


def one_line(exc: BaseException) -> str:
    """The first line of an error's message, with Gateway per-peer details appended."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    for detail in getattr(exc, "details", None) or ():
        message = " ".join(getattr(detail, "message", "").split())
        if message and message not in " ".join(text.split()):
            text += f" [{getattr(detail, 'address', '?')}: {message}]"
    return text


@click.group(cls=_OneLineErrors, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--topology",
    envvar="MEDFABRIC_TOPOLOGY",
    type=click.Path(dir_okay=False),
    default=None,
    help="Consortium description (default: network/topology.yaml).",
)
@click.pass_context
def cli(ctx: click.Context, topology: str | None) -> None:
    """Share EMRs over a Hyperledger Fabric consortium.

    Example: medfabric emr get rec-1 --domain hospital-b --as doctor --out obs.json
    """
    ctx.obj = CliContext(topology)


cli.add_command(emr)
cli.add_command(fl)
cli.add_command(market)
cli.add_command(consensus)
cli.add_command(diagnose)
cli.add_command(audit)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
def demo(obj: CliContext, as_json: bool) -> None:
    """Run the sharing scenario across the consortium's domains on a running consortium.

    Example: medfabric demo
    """
    from medfabric.sharing.demo import run_demo

    report = run_demo(obj.topology, obj.layout, echo=None if as_json else click.echo)
    if as_json:
        emit(report, True, "")


@cli.group()
def bench() -> None:
    """Load tests through the Gateway client (Caliper suites: `make bench`)."""


@bench.command("put")
@channel_option
@identity_options
@click.option("--count", default=1000, show_default=True, type=click.IntRange(1, 1_000_000),
              help="PutRecord transactions to submit.")
@click.option("--concurrency", default=32, show_default=True, type=click.IntRange(1, 512),
              help="Concurrent submitting tasks.")
@click.pass_obj
def bench_put(obj: CliContext, domain: str, user: str, channel: str, as_json: bool,
              count: int, concurrency: int) -> None:
    """Submit COUNT PutRecord transactions concurrently, read each back, report TPS and latency.

    Example: medfabric bench put --domain hospital-a --as doctor --channel public --count 1000
    """
    from rich.progress import Progress

    from medfabric.bench.loadtest import run_put_load

    channel_name = obj.channel_name(domain, channel)
    with Progress(transient=True, disable=as_json) as progress:
        task = progress.add_task(f"PutRecord on {channel_name}", total=count)
        result = run_put_load(
            obj.topology, obj.layout, domain_id=domain, channel=channel_name, count=count,
            concurrency=concurrency, user=user, progress=lambda: progress.advance(task),
        )
    emit(result.as_dict(), as_json,
         f"{result.committed}/{result.count} committed, {result.read_back} read back, {result.failed} failed; "
         f"{result.tps} TPS, p50 {result.latency_p50_ms} ms, p99 {result.latency_p99_ms} ms "
         f"({result.concurrency} concurrent, {result.seconds} s)")
    if result.failed or result.read_back != result.count:
        sys.exit(1)


bench.add_command(bench_report)


@cli.command("data-service")
@click.option("--domain", required=True, help="The domain whose records the service keeps.")
@click.option("--as", "user", default=SERVICE_USER, show_default=True,
              help="The domain user the service acts as; its key opens the data keys.")
@click.option("--port", type=int, help="Port (default: the domain's, from the topology).")
@click.option("--store", type=click.Path(file_okay=False), help="Store folder (default: in the build folder).")
@click.pass_obj
def data_service(obj: CliContext, domain: str, user: str, port: int | None, store: str | None) -> None:
    """Serve the domain's sealed EMR payloads until SIGTERM or SIGINT (exit 2: cannot start).

    Example: medfabric data-service --domain hospital-a
    """
    from medfabric.data_service.server import main as serve

    arguments = ["--domain", domain, "--identity", user]
    for flag, value in (("--port", port), ("--store", store), ("--topology", obj.topology_path)):
        if value is not None:
            arguments += [flag, str(value)]
    sys.exit(serve(arguments))


def _load_plugins() -> None:
    for entry in entry_points(group=PLUGIN_GROUP):
        if entry.name not in cli.commands:
            cli.add_command(entry.load(), entry.name)


def main() -> None:
    _load_plugins()
    cli(prog_name="medfabric")


if __name__ == "__main__":
    main()
