"""The game's equations (SYSTEM.md section 3), vectorised over users and duty nodes: prices are (N, M) arrays.

    (1) omega_ij = (p_hat - p_ij) / sum_k (p_hat - p_ik)       the chance user i is served by duty node j
    (2) u_i      = sum_j omega_ij [lambda_i ln(l_i + d_ij) - p_ij d_ij]
    (3) Pi_j     = sum_i omega_ij (p_ij - c_j) d_ij

with the follower's best response d_ij = clip(lambda_i / p_ij - l_i, 0, d_max). A user priced at p_hat by every
duty node is served by none: its omegas are 0 (no demand, no profit, no utility beyond its own l_i).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from medfabric.market.problem import MarketError, MarketProblem


def check_prices(problem: MarketProblem, prices: np.ndarray) -> np.ndarray:
    prices = np.asarray(prices, dtype=np.float64)
    if prices.shape != (problem.users, problem.dns):
        raise MarketError(f"prices must be {problem.users} x {problem.dns}, not {prices.shape}")
    if not np.all(np.isfinite(prices)) or np.any(prices < problem.costs - 1e-12) or np.any(prices > problem.p_hat):
        raise MarketError("prices must lie in [c_j, p_hat]")
    return prices


def demand(problem: MarketProblem, prices: np.ndarray) -> np.ndarray:
    """The followers' best response: d_ij = clip(lambda_i / p_ij - l_i, 0, d_max)."""
    return np.clip(problem.lam[:, None] / prices - problem.l[:, None], 0.0, problem.d_max)


def service_probabilities(problem: MarketProblem, prices: np.ndarray) -> np.ndarray:
    """Equation (1); rows of a user no duty node serves (every price at p_hat) are 0."""
    slack = problem.p_hat - prices
    total = slack.sum(axis=1, keepdims=True)
    return np.divide(slack, total, out=np.zeros_like(slack), where=total > 0)


def utilities(problem: MarketProblem, prices: np.ndarray, quantities: np.ndarray | None = None) -> np.ndarray:
    """Equation (2), per user."""
    d = demand(problem, prices) if quantities is None else quantities
    omega = service_probabilities(problem, prices)
    return (omega * (problem.lam[:, None] * np.log(problem.l[:, None] + d) - prices * d)).sum(axis=1)


def profits(problem: MarketProblem, prices: np.ndarray) -> np.ndarray:
    """Equation (3), per duty node."""
    omega = service_probabilities(problem, prices)
    return (omega * (prices - problem.costs[None, :]) * demand(problem, prices)).sum(axis=0)


@dataclass(frozen=True)
class Outcome:
    prices: np.ndarray  # (N, M)
    demand: np.ndarray  # (N, M): what each user buys if served by each duty node
    profit: np.ndarray  # (M,)
    utility: np.ndarray  # (N,)

    @property
    def total_profit(self) -> float:
        return float(self.profit.sum())

    @property
    def total_utility(self) -> float:
        return float(self.utility.sum())

    def to_json(self) -> dict[str, Any]:
        return {"prices": self.prices.tolist(), "demand": self.demand.tolist(), "profit": self.profit.tolist(),
                "utility": self.utility.tolist(), "total_profit": self.total_profit,
                "total_utility": self.total_utility, "mean_price": float(self.prices.mean())}


def outcome(problem: MarketProblem, prices: np.ndarray) -> Outcome:
    prices = check_prices(problem, prices)
    return Outcome(prices, demand(problem, prices), profits(problem, prices), utilities(problem, prices))


def follower_kkt_residual(problem: MarketProblem, prices: np.ndarray, quantities: np.ndarray) -> float:
    """The largest violation of the followers' KKT conditions for max lambda ln(l + d) - p d on [0, d_max]:
    at an interior d the gradient is 0, at d = 0 it is <= 0, at d = d_max it is >= 0."""
    gradient = problem.lam[:, None] / (problem.l[:, None] + quantities) - prices
    at_zero = quantities <= 0
    at_cap = quantities >= problem.d_max
    interior = ~(at_zero | at_cap)
    violations = np.concatenate([np.abs(gradient[interior]), np.maximum(gradient[at_zero], 0),
                                 np.maximum(-gradient[at_cap], 0)])
    return float(violations.max()) if violations.size else 0.0
