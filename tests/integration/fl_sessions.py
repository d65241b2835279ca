"""Sessions on the test consortium for the federated-learning tests, with every domain's share of the data."""

from __future__ import annotations

from contextlib import ExitStack

from medfabric.consortium.connection import connect_as
from medfabric.fl import flow
from medfabric.sharing.session import Session


def session_of(consortium, stack: ExitStack, domain: str, user: str = flow.FL_USER) -> Session:
    """`user` of `domain`, its Gateway closed with `stack`."""
    topology, layout, _env = consortium
    gateway = stack.enter_context(connect_as(domain, user, topology=topology, layout=layout))
    return Session(topology, layout, topology.domain(domain), user, gateway)


def participants(consortium, stack: ExitStack) -> dict[str, Session]:
    """The FL participant of every domain, each domain's share written into its folder (the first publishes)."""
    topology, layout, _env = consortium
    domains = [domain.id for domain in topology.domains]
    flow.prepare_data(layout, domains, domains[0])
    return {domain: session_of(consortium, stack, domain) for domain in domains}
