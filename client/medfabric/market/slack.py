"""A duty node's side of the game in its slack variable x_ij = p_hat - p_ij, vectorised over (users, duty nodes).

With d(p) the followers' best response and h(p) = (p - c) d(p) the profit per unit of service probability,

    q(x) = x h(p_hat - x)        so that   Pi_j = sum_i q_ij(x_ij) / s_i,   s_i = sum_k x_ik.

The solvers' one-dimensional steps maximise q-based objectives over [x_min, x_max]: x_min > 0 because a user that
every duty node prices at p_hat is served by no one (the supremum there is not attained), x_max = p_hat - c_j.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from medfabric.market.problem import MarketProblem

# The highest price a duty node posts is p_hat (1 - PRICE_GAP): at p_hat itself the user is served by no one.
PRICE_GAP = 1e-6


@dataclass(frozen=True)
class SlackTerms:
    """q, q' and q'' at x (arrays of the same shape)."""

    value: np.ndarray
    first: np.ndarray
    second: np.ndarray


@dataclass(frozen=True)
class DutyNodeData:
    """What one duty node (or a block of them) knows: its costs, the users' public parameters and the caps."""

    p_hat: float
    d_max: float
    costs: np.ndarray  # (M_local,)
    l: np.ndarray  # (N,)
    lam: np.ndarray  # (N,)

    @classmethod
    def of(cls, problem: MarketProblem, columns: slice | list[int] | None = None) -> DutyNodeData:
        costs = problem.costs if columns is None else problem.costs[columns]
        return cls(problem.p_hat, problem.d_max, np.atleast_1d(costs), problem.l, problem.lam)

    @property
    def x_min(self) -> float:
        return self.p_hat * PRICE_GAP

    @property
    def x_max(self) -> np.ndarray:
        return (self.p_hat - self.costs)[None, :]

    def start(self) -> np.ndarray:
        """A starting slack inside each user's buying range: the price halfway between cost and the price at
        which the user stops buying (or the cost, for a user who buys nothing even there)."""
        top = np.minimum(self.p_hat * (1 - PRICE_GAP), (self.lam / self.l)[:, None])
        price = np.where(top > self.costs[None, :], 0.5 * (self.costs[None, :] + top), self.costs[None, :])
        return self.p_hat - price

    def value(self, x: np.ndarray) -> np.ndarray:
        """q(x) alone (the solvers' line searches need no derivatives)."""
        p = self.p_hat - x
        return x * (p - self.costs[None, :]) * np.clip(self.lam[:, None] / p - self.l[:, None], 0.0, self.d_max)

    def terms(self, x: np.ndarray) -> SlackTerms:
        p = self.p_hat - x
        lam, l, c = self.lam[:, None], self.l[:, None], self.costs[None, :]
        raw = lam / p - l
        d = np.clip(raw, 0.0, self.d_max)
        sloped = (raw > 0) & (raw < self.d_max)
        d1 = np.where(sloped, -lam / p**2, 0.0)
        d2 = np.where(sloped, 2 * lam / p**3, 0.0)
        h = (p - c) * d
        h1 = d + (p - c) * d1
        h2 = 2 * d1 + (p - c) * d2
        return SlackTerms(x * h, h - x * h1, -2 * h1 + x * h2)


# objective(x, True) -> (value, first derivative, second derivative); objective(x, False) -> (value,)
Objective = Callable[[np.ndarray, bool], tuple[np.ndarray, ...]]


def maximise(objective: Objective, lo: float | np.ndarray, hi: float | np.ndarray, start: np.ndarray,
             newton_steps: int = 4, grid: int = 0, backtracks: int = 12) -> np.ndarray:
    """Elementwise argmax of a one-dimensional objective on [lo, hi]: `grid` evenly spaced candidates and the start,
    the best of them polished by projected Newton steps (a bounded ascent step where the objective is not
    concave), halved until they do not lose value."""
    lo, hi = np.broadcast_to(lo, start.shape), np.broadcast_to(hi, start.shape)
    best = np.clip(start, lo, hi)
    best_value = objective(best, False)[0]
    for fraction in np.linspace(0.0, 1.0, grid) if grid else ():
        candidate = lo + fraction * (hi - lo)
        value = objective(candidate, False)[0]
        better = value > best_value
        best, best_value = np.where(better, candidate, best), np.where(better, value, best_value)
    reach = 0.1 * np.where(np.isfinite(hi), hi - lo, np.maximum(np.abs(best), 1.0))
    for _ in range(newton_steps):
        _, first, second = objective(best, True)
        concave = second < 0
        step = np.where(concave, -first / np.where(concave, second, -1.0), np.sign(first) * reach)
        pending = np.ones(best.shape, dtype=bool)
        for _halving in range(backtracks):
            candidate = np.clip(best + step, lo, hi)
            value = objective(candidate, False)[0]
            accept = pending & (value >= best_value)
            best, best_value = np.where(accept, candidate, best), np.where(accept, value, best_value)
            pending &= ~accept
            if not pending.any():
                break
            step = step / 2
    return best

