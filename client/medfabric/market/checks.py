"""What must hold of a solution (SYSTEM.md section 3): the followers' KKT conditions, epsilon-Nash for competitive
leaders on a price grid, and the cooperative profit against the centralised optimum."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from medfabric.market import game
from medfabric.market.problem import MarketProblem
from medfabric.market.slack import PRICE_GAP

NASH_GRID = 2001
USERS_PER_CHUNK = 2048


@dataclass(frozen=True)
class NashCheck:
    """The largest relative gain any duty node finds by changing its own prices alone (on the grid)."""

    gains: np.ndarray  # (M,) relative gain of each duty node's best unilateral deviation
    grid: int

    @property
    def worst(self) -> float:
        return float(self.gains.max())


def nash_gains(problem: MarketProblem, prices: np.ndarray, grid: int = NASH_GRID) -> NashCheck:
    """Each duty node's best unilateral deviation on `grid` prices in [c_j, p_hat (1 - gap)], relative to its profit.

    Profit is separable over users, so the best deviation is, user by user, the best grid price against the
    others' fixed prices."""
    prices = game.check_prices(problem, prices)
    current = game.profits(problem, prices)
    slack = problem.p_hat - prices
    gains = np.zeros(problem.dns)
    for j in range(problem.dns):
        candidates = np.linspace(problem.costs[j], problem.p_hat * (1 - PRICE_GAP), grid)
        best = 0.0
        for begin in range(0, problem.users, USERS_PER_CHUNK):
            rows = slice(begin, begin + USERS_PER_CHUNK)
            others = slack[rows].sum(axis=1) - slack[rows, j]
            own = problem.p_hat - candidates[None, :]
            omega = own / (own + others[:, None])
            demand = np.clip(problem.lam[rows, None] / candidates[None, :] - problem.l[rows, None], 0, problem.d_max)
            best += (omega * (candidates[None, :] - problem.costs[j]) * demand).max(axis=1).sum()
        gains[j] = (best - current[j]) / current[j] if current[j] > 0 else best
    return NashCheck(gains, grid)


def followers_kkt(problem: MarketProblem, prices: np.ndarray) -> float:
    """The followers' largest KKT violation at their best response to `prices`."""
    return game.follower_kkt_residual(problem, prices, game.demand(problem, prices))


def relative_gap(value: float, reference: float) -> float:
    """How far `value` falls short of `reference`, relative to it (negative when it is better)."""
    return (reference - value) / abs(reference)
