"""The `medfabric` command.

Nouns are groups (`emr`, and `network` from the ops package, loaded as a
plugin so the client never imports ops); the same flags everywhere
(`--domain`, `--as`, `--channel`, `--json`); errors are one line on stderr
with a non-zero exit.
"""

from __future__ import annotations

import json
import sys
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import click

from .errors import MedfabricError
from .gateway import GatewayError
from .layout import NetworkLayout
from .topology import Topology, TopologyError, load_topology

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


class CliContext:
    def __init__(self, topology_path: str | None):
        self._topology_path = topology_path
        self._topology: Topology | None = None

    @property
    def topology(self) -> Topology:
        if self._topology is None:
            self._topology = load_topology(self._topology_path)
        return self._topology

    @property
    def layout(self) -> NetworkLayout:
        return NetworkLayout.default()

    def channel_name(self, domain_id: str, channel: str) -> str:
        """'local' means the domain's own channel; anything else is a channel name."""
        if channel == "local":
            return self.topology.domain(domain_id).local_channel
        return self.topology.channel(channel).name


def emit(data: Any, as_json: bool, human: str) -> None:
    if as_json:
        click.echo(json.dumps(data, indent=2, sort_keys=True))
    else:
        click.echo(human)


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

    Example: medfabric emr get rec-1 --domain hospital-b --channel public
    """
    ctx.obj = CliContext(topology)


def _connection_options(func):
    func = click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")(func)
    func = click.option(
        "--channel", default="local", show_default=True,
        help="'local' (the domain's own channel), 'public', or a channel name.",
    )(func)
    func = click.option("--as", "user", default="Admin", show_default=True, help="User of the domain.")(func)
    func = click.option("--domain", required=True, help="Domain to act from, e.g. hospital-a.")(func)
    return func


@cli.group()
def emr() -> None:
    """EMR index entries: put, get, find."""


@emr.command("put")
@_connection_options
@click.option("--file", "record_file", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Index entry as JSON.")
@click.pass_obj
def emr_put(obj: CliContext, domain: str, user: str, channel: str, as_json: bool, record_file: Path) -> None:
    """Record an EMR index entry.

    Example: medfabric emr put --domain hospital-a --channel public --file entry.json
    """
    from .connection import connect_as
    from .emr_index import EmrIndex

    try:
        entry = json.loads(record_file.read_text())
    except json.JSONDecodeError as exc:
        raise MedfabricError(f"{record_file}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    channel_name = obj.channel_name(domain, channel)
    with connect_as(domain, user, topology=obj.topology, layout=obj.layout) as gateway:
        stored = EmrIndex(gateway.get_network(channel_name)).put(entry)
    emit(stored, as_json, f"recorded {stored['record_id']} on {channel_name} (version {stored['version']})")


@emr.command("get")
@click.argument("record_id")
@_connection_options
@click.pass_obj
def emr_get(obj: CliContext, record_id: str, domain: str, user: str, channel: str, as_json: bool) -> None:
    """Read an EMR index entry.

    Example: medfabric emr get rec-1 --domain hospital-b --channel public
    """
    from .connection import connect_as
    from .emr_index import EmrIndex

    channel_name = obj.channel_name(domain, channel)
    with connect_as(domain, user, topology=obj.topology, layout=obj.layout) as gateway:
        record = EmrIndex(gateway.get_network(channel_name)).get(record_id)
    emit(record, as_json, json.dumps(record, indent=2, sort_keys=True))


@emr.command("find")
@click.option("--patient", required=True, help="Patient pseudonym.")
@_connection_options
@click.pass_obj
def emr_find(obj: CliContext, patient: str, domain: str, user: str, channel: str, as_json: bool) -> None:
    """List a patient's index entries on a channel."""
    from .connection import connect_as
    from .emr_index import EmrIndex

    channel_name = obj.channel_name(domain, channel)
    records: list[dict] = []
    with connect_as(domain, user, topology=obj.topology, layout=obj.layout) as gateway:
        index = EmrIndex(gateway.get_network(channel_name))
        bookmark = ""
        while True:
            page = index.list_by_patient(patient, page_size=100, bookmark=bookmark)
            records.extend(page["records"])
            bookmark = page.get("bookmark", "")
            if not bookmark or not page["records"]:
                break
    lines = [f"{r['record_id']}  {r['resource_type']:<18} {r['domain']}  v{r['version']}" for r in records]
    emit(records, as_json, "\n".join(lines) or f"no records for patient {patient} on {channel_name}")


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
def demo(obj: CliContext, as_json: bool) -> None:
    """Run the first sharing scenario on a running consortium."""
    from .demo import run_demo

    report = run_demo(obj.topology, obj.layout, echo=None if as_json else click.echo)
    if as_json:
        emit(report, True, "")


@cli.group()
def bench() -> None:
    """Load tests through the Gateway client (Caliper suites: `make bench`)."""


@bench.command("put")
@_connection_options
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

    from .loadtest import run_put_load

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


def _load_plugins() -> None:
    for entry in entry_points(group=PLUGIN_GROUP):
        if entry.name not in cli.commands:
            cli.add_command(entry.load(), entry.name)


def main() -> None:
    _load_plugins()
    cli(prog_name="medfabric")


if __name__ == "__main__":
    main()
