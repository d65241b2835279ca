"""The market's instance checks and equations (1)-(3), without a solver."""

from __future__ import annotations

import json

import numpy as np
import pytest

from medfabric.market import game
from medfabric.market.problem import MarketError, from_json, market_problem, random_problem


@pytest.fixture
def problem():
    return random_problem(50, 3, seed=1)


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"costs": [1.0, -1.0]}, "costs[1] must be in (0, p_hat = 5), not -1"),
        ({"costs": [0.0]}, "costs[0] must be in (0, p_hat = 5), not 0"),
        ({"costs": [5.0]}, "costs[0] must be in (0, p_hat = 5), not 5"),
        ({"l": [], "lam": []}, "l must be a non-empty list of numbers"),
        ({"l": [1.0, float("nan")], "lam": [1.0, 2.0]}, "l[1] must be a finite number, not nan"),
        ({"d_max": 0}, "d_max must be positive, not 0"),
        ({"p_hat": -1}, "p_hat must be positive, not -1"),
        ({"lam": [1.0, 0.0]}, "lambda[1] must be positive, not 0"),
        ({"lam": [1.0]}, "l and lambda must have one value per user: 2 and 1"),
    ],
)
def test_bad_parameters_are_named_in_one_line(changes, message):
    arguments = {"p_hat": 5.0, "d_max": 10.0, "costs": [1.0, 2.0], "l": [1.0, 2.0], "lam": [40.0, 50.0], **changes}
    with pytest.raises(MarketError) as error:
        market_problem(**arguments)
    assert str(error.value) == message


def test_a_problem_reads_from_its_json(problem):
    again = from_json(json.dumps(problem.to_json()))

    assert again.to_json() == problem.to_json()
    with pytest.raises(MarketError, match="the problem has no lambda"):
        from_json(json.dumps({k: v for k, v in problem.to_json().items() if k != "lambda"}))


def test_service_probabilities_sum_to_one_and_fall_with_the_price(problem):
    prices = np.tile([2.0, 3.0, 4.0], (problem.users, 1))

    omega = game.service_probabilities(problem, prices)

    assert np.allclose(omega.sum(axis=1), 1.0)
    assert np.all(omega[:, 0] > omega[:, 1]) and np.all(omega[:, 1] > omega[:, 2])
    assert np.allclose(omega[0], np.array([3.0, 2.0, 1.0]) / 6.0)


def test_a_user_priced_at_the_cap_everywhere_is_served_by_no_one(problem):
    prices = np.full((problem.users, problem.dns), 2.0)
    prices[0] = problem.p_hat

    assert np.all(game.service_probabilities(problem, prices)[0] == 0)
    assert np.all(np.isfinite(game.profits(problem, prices)))


def test_the_follower_response_is_the_closed_form_and_satisfies_kkt(problem):
    prices = np.full((problem.users, problem.dns), 2.5)
    d = game.demand(problem, prices)

    assert np.allclose(d[:, 0], np.clip(problem.lam / 2.5 - problem.l, 0, problem.d_max))
    assert game.follower_kkt_residual(problem, prices, d) < 1e-12
    assert game.follower_kkt_residual(problem, prices, d * 0.9 + 0.01) > 1e-3


def test_equal_prices_split_users_evenly_and_profit_is_margin_times_demand(problem):
    prices = np.full((problem.users, problem.dns), 2.5)
    result = game.outcome(problem, prices)

    expected = (2.5 - 1.0) * np.clip(problem.lam / 2.5 - problem.l, 0, problem.d_max).sum() / problem.dns
    assert np.allclose(result.profit, expected)
    assert result.total_utility == pytest.approx(float(game.utilities(problem, prices).sum()))
