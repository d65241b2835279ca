"""A fair share of the data service's worker threads: at most `per_client` requests of one TLS client at a time.

A request's work (statement checks, ledger reads, the access-log commit of a delivery) runs on a shared pool of
worker threads. Some of that work waits: a fetch naming a decision the service's peer does not have yet is
asked again for up to three seconds (medfabric.data_service.ledger_access), so a client sending such fetches
in a loop held three seconds of a worker each, filled the pool, and every other client's requests queued
behind its (measured: a granted reader's request 0.2 -> 1.1 s under a 48-thread flood). With a share, a
client's requests past `per_client` wait for one of its own to finish, in the event loop, holding no worker;
the others go on.

    >>> share = FairShare(per_client=4)
    >>> async with share.slot(peer):
    ...     reply = await run_in_threadpool(handle, body, peer)
"""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import AsyncIterator, Hashable

PER_CLIENT = 8


@dataclass
class _Client:
    slots: asyncio.Semaphore
    requests: int = field(default=0)  # in a slot or waiting for one


class FairShare:
    """One semaphore of `per_client` slots per client key, kept while any of its requests is in or waiting."""

    def __init__(self, per_client: int = PER_CLIENT):
        if per_client < 1:
            raise ValueError("a fair share needs at least one slot per client")
        self.per_client = per_client
        self._slots: dict[Hashable, _Client] = {}

    @asynccontextmanager
    async def slot(self, client: Hashable) -> AsyncIterator[None]:
        """Hold one of `client`'s slots (waiting for one if all are taken) for the block's duration."""
        held = self._slots.setdefault(client, _Client(asyncio.Semaphore(self.per_client)))
        held.requests += 1
        try:
            async with held.slots:
                yield
        finally:
            held.requests -= 1
            if not held.requests:
                del self._slots[client]

    def clients(self) -> int:
        """How many clients have a request in or waiting."""
        return len(self._slots)
