"""The decomposed solver against what must hold of its answers (SYSTEM.md section 3)."""

from __future__ import annotations

import numpy as np
import pytest

from medfabric.market import admm, checks, reference
from medfabric.market.problem import MarketError, market_problem, random_problem


@pytest.fixture(scope="module")
def problem():
    return random_problem(80, 3, seed=7)


def test_the_competitive_answer_is_an_epsilon_nash_equilibrium(problem):
    result = admm.solve(problem, "competitive")

    assert result.converged and result.primal[-1] < 1e-9 and result.dual[-1] < 1e-9
    assert checks.nash_gains(problem, result.prices, grid=801).worst <= 1e-6
    assert checks.followers_kkt(problem, result.prices) < 1e-9


def test_a_price_off_the_equilibrium_is_caught_by_the_nash_check(problem):
    prices = admm.solve(problem, "competitive").prices.copy()
    prices[:, 1] = np.minimum(prices[:, 1] * 1.2, problem.p_hat * 0.99)

    assert checks.nash_gains(problem, prices, grid=801).gains[1] > 1e-3


def test_the_cooperative_answer_matches_the_centralised_optimum(problem):
    result = admm.solve(problem, "cooperative")
    optimum = reference.cooperative_optimum(problem)

    assert result.converged
    assert checks.relative_gap(result.outcome(problem).total_profit, optimum.total_profit) <= 1e-6


def test_with_equal_costs_the_joint_price_is_each_users_monopoly_price(problem):
    prices = admm.solve(problem, "cooperative").prices
    monopoly = np.clip(np.sqrt(problem.lam * problem.costs[0] / problem.l), problem.costs[0], problem.p_hat)

    assert np.allclose(prices, monopoly[:, None], atol=1e-6)


def test_unequal_costs_still_reach_the_centralised_optimum():
    base = random_problem(60, 3, seed=3)
    problem = market_problem(base.p_hat, base.d_max, [0.5, 1.0, 2.0], base.l, base.lam)

    result = admm.solve(problem, "cooperative")
    optimum = reference.cooperative_optimum(problem)

    assert checks.relative_gap(result.outcome(problem).total_profit, optimum.total_profit) <= 1e-6
    competitive = admm.solve(problem, "competitive")
    assert checks.nash_gains(problem, competitive.prices, grid=801).worst <= 1e-6
    assert np.all(competitive.prices[:, 0] < competitive.prices[:, 2])


@pytest.mark.parametrize("seed", range(5))
def test_cooperating_leaders_earn_more_and_leave_users_less(seed):
    problem = random_problem(200, 4, seed=seed)

    competitive = admm.solve(problem, "competitive").outcome(problem)
    cooperative = admm.solve(problem, "cooperative").outcome(problem)

    assert cooperative.total_profit > competitive.total_profit
    assert cooperative.total_utility < competitive.total_utility
    assert 1.9 < competitive.prices.mean() < 2.1


def test_nodes_in_blocks_step_exactly_as_separate_nodes(problem):
    for scenario in admm.SCENARIOS:
        one_each = admm.coordinate(problem, scenario, admm.make_nodes(problem, scenario, [[0], [1], [2]]))
        together = admm.coordinate(problem, scenario, admm.make_nodes(problem, scenario, [[0, 1, 2]]))

        assert np.array_equal(one_each.prices, together.prices)


def test_one_duty_node_prices_at_its_monopoly_price_in_both_scenarios():
    problem = random_problem(40, 1, seed=2)

    competitive, cooperative = (admm.solve(problem, scenario).prices for scenario in admm.SCENARIOS)

    assert np.array_equal(competitive, cooperative)
    assert checks.nash_gains(problem, competitive, grid=801).worst <= 1e-6


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda p: admm.solve(p, "collusive"), "scenario must be one of competitive, cooperative, not 'collusive'"),
        (lambda p: admm.solve(p, "competitive", rho=0), "rho must be positive, not 0"),
        (lambda p: admm.solve(p, "competitive", tolerance=-1), "tolerance must be positive, not -1"),
        (lambda p: admm.node_columns(p.dns, 4), "nodes must be between 1 and the number of duty nodes (3), not 4"),
    ],
)
def test_bad_solver_settings_are_named(problem, call, message):
    with pytest.raises(MarketError) as error:
        call(problem)
    assert str(error.value) == message


def test_a_solve_that_runs_out_of_iterations_says_so(problem):
    result = admm.solve(problem, "competitive", max_iterations=3)

    assert not result.converged and result.iterations == 3 and len(result.primal) == 3
