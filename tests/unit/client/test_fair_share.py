"""A fair share of the worker threads: a client's requests past its share wait for its own, not for others'."""

from __future__ import annotations

import asyncio

import pytest

from medfabric.data_service.fair_share import FairShare


def test_a_client_past_its_share_waits_while_another_client_goes_on():
    async def scenario() -> list[str]:
        share = FairShare(per_client=2)
        release = asyncio.Event()
        order: list[str] = []

        async def request(client: str, name: str, hold: bool) -> None:
            async with share.slot(client):
                order.append(f"{name} in")
                if hold:
                    await release.wait()

        flood = [asyncio.create_task(request("flooder", f"f{n}", hold=True)) for n in range(5)]
        await asyncio.sleep(0.01)
        await request("honest", "h", hold=False)  # not held up by the flooder's five
        in_before_release = list(order)
        release.set()
        await asyncio.gather(*flood)
        assert share.clients() == 0  # nothing kept once every request is done
        return in_before_release

    order = asyncio.run(scenario())

    assert order == ["f0 in", "f1 in", "h in"]  # the flooder's 2 slots taken, its 3 others waiting


def test_a_share_needs_a_slot():
    with pytest.raises(ValueError, match="at least one slot"):
        FairShare(per_client=0)
