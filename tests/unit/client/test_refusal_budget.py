"""RefusalBudget: a burst, then a rate, per requester; what was not logged is counted and handed to the next log.
RefusalGate: a TLS client's refused requests spend its tokens; without any it waits, the others do not."""

from __future__ import annotations

import pytest

from medfabric.data_service.refusal_budget import RefusalBudget, RefusalGate


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_then_one_per_interval_and_the_count_of_the_rest():
    clock = Clock()
    budget = RefusalBudget(burst=3, rate_per_s=0.5, clock=clock)

    assert [budget.admit("a") for _ in range(5)] == [0, 0, 0, None, None]
    clock.now += 1.0  # half a token
    assert budget.admit("a") is None
    clock.now += 1.0
    assert budget.admit("a") == 3  # the three refusals not logged since the last logged one
    assert budget.admit("a") is None


def test_requesters_have_their_own_budgets():
    budget = RefusalBudget(burst=1, rate_per_s=1, clock=Clock())

    assert (budget.admit(("MSP", "x509::a")), budget.admit(("MSP", "x509::a"))) == (0, None)
    assert budget.admit(("MSP", "x509::b")) == 0
    assert budget.admit(None) == 0  # the unverified callers' shared budget


def test_a_bucket_refills_only_to_the_burst():
    clock = Clock()
    budget = RefusalBudget(burst=2, rate_per_s=10, clock=clock)
    budget.admit("a")
    clock.now += 3600

    assert [budget.admit("a") for _ in range(3)] == [0, 0, None]


def test_memory_stays_bounded_by_forgetting_refilled_buckets():
    clock = Clock()
    budget = RefusalBudget(burst=1, rate_per_s=1, clock=clock, max_requesters=3)
    for key in "abc":
        budget.admit(key)
    budget.admit("a")  # over budget: "a" owes a count and is kept
    clock.now += 10

    assert budget.admit("d") == 0
    assert set(budget._buckets._buckets) == {"a", "d"}
    assert budget.admit("a") == 1


@pytest.mark.parametrize("burst, rate", [(0, 1.0), (1, 0.0)])
def test_a_budget_needs_a_burst_and_a_rate(burst, rate):
    with pytest.raises(ValueError, match="burst >= 1 and a positive rate"):
        RefusalBudget(burst=burst, rate_per_s=rate)


def test_a_gate_serves_a_clients_burst_of_refusals_then_makes_it_wait_alone():
    clock = Clock()
    gate = RefusalGate(burst=3, rate_per_s=2, clock=clock)

    waits = []
    for _ in range(4):
        waits.append(gate.wait_s("flood"))
        gate.refused("flood")
    assert waits == [0, 0, 0, 0.5]  # the fourth came with no token left: half a second to the next one
    assert gate.wait_s("other") == 0
    clock.now += 0.5
    assert gate.wait_s("flood") == 0


def test_requests_a_gate_does_not_refuse_cost_nothing():
    gate = RefusalGate(burst=1, rate_per_s=1, clock=Clock())

    assert [gate.wait_s("client") for _ in range(100)] == [0] * 100
    gate.refused("client")
    assert gate.wait_s("client") == 1.0
