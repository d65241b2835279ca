"""What every `medfabric` command shares: the consortium it acts in, a session as a domain's user, flags, output."""

from __future__ import annotations

import json
from contextlib import contextmanager
from typing import Any, Callable, Iterator

import click

from medfabric.consortium.layout import NetworkLayout
from medfabric.sharing.session import Session
from medfabric.consortium.topology import Topology, load_topology


class CliContext:
    """The topology (loaded on first use) and the layout of the generated material."""

    def __init__(self, topology_path: str | None):
        self.topology_path = topology_path
        self._topology: Topology | None = None

    @property
    def topology(self) -> Topology:
        if self._topology is None:
            self._topology = load_topology(self.topology_path)
        return self._topology

    @property
    def layout(self) -> NetworkLayout:
        return NetworkLayout.default()

    def channel_name(self, domain_id: str, channel: str) -> str:
        """'local' means the domain's own channel; anything else is a channel name."""
        if channel == "local":
            return self.topology.domain(domain_id).local_channel
        return self.topology.channel(channel).name

    @contextmanager
    def session(self, domain_id: str, user: str) -> Iterator[Session]:
        """`user` of the domain connected through the domain's duty peer."""
        from medfabric.consortium.connection import connect_as

        domain = self.topology.domain(domain_id)
        with connect_as(domain.id, user, topology=self.topology, layout=self.layout) as gateway:
            yield Session(self.topology, self.layout, domain, user, gateway)


def emit(data: Any, as_json: bool, human: str) -> None:
    if as_json:
        click.echo(json.dumps(data, indent=2, sort_keys=True))
    else:
        click.echo(human)


def identity_options(func: Callable) -> Callable:
    """--domain, --as and --json: who acts, and how to answer."""
    func = click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")(func)
    func = click.option("--as", "user", default="Admin", show_default=True, help="User of the domain.")(func)
    return click.option("--domain", required=True, help="Domain to act from, e.g. hospital-a.")(func)


def channel_option(func: Callable) -> Callable:
    return click.option(
        "--channel", default="local", show_default=True,
        help="'local' (the domain's own channel), 'public', or a channel name.",
    )(func)
