"""The market's measurements: one scenario solved and checked, the two scenarios over random draws (the paper's
Fig. 2), and the decomposed solver timed against the centralised scipy solve of the same problem."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from medfabric.market import admm, checks, reference
from medfabric.market.problem import MarketProblem, random_problem

NASH_TOLERANCE = 1e-6
OPTIMUM_TOLERANCE = 1e-6


@dataclass(frozen=True)
class Solution:
    """A solved scenario with its checks: the Nash gain for competitive leaders, the gap to the centralised optimum
    for cooperative ones (None where it does not apply)."""

    result: admm.AdmmResult
    nash_gain: float | None
    optimum_gap: float | None
    followers_kkt: float

    def to_json(self, problem: MarketProblem) -> dict[str, Any]:
        outcome = self.result.outcome(problem)
        return {**outcome.to_json(), "scenario": self.result.scenario, "iterations": self.result.iterations,
                "converged": self.result.converged, "seconds": self.result.seconds,
                "primal_residual": self.result.primal[-1], "dual_residual": self.result.dual[-1],
                "nash_gain": self.nash_gain, "optimum_gap": self.optimum_gap, "followers_kkt": self.followers_kkt}


def solve_and_check(problem: MarketProblem, scenario: str, tolerance: float = admm.DEFAULT_TOLERANCE,
                    nash_grid: int = checks.NASH_GRID,
                    progress: Callable[[int, float, float], None] | None = None,
                    distributed: bool = False) -> Solution:
    """Solve `scenario` (in process, or one process per duty node) and run its check."""
    if distributed:
        from medfabric.market.distributed import solve_distributed

        result = solve_distributed(problem, scenario, tolerance, progress=progress)
    else:
        result = admm.solve(problem, scenario, tolerance, progress=progress)
    nash = optimum = None
    if scenario == "competitive":
        nash = checks.nash_gains(problem, result.prices, nash_grid).worst
    else:
        best = reference.cooperative_optimum(problem).total_profit
        optimum = checks.relative_gap(result.outcome(problem).total_profit, best)
    return Solution(result, nash, optimum, checks.followers_kkt(problem, result.prices))


@dataclass(frozen=True)
class DrawComparison:
    seed: int
    competitive_profit: float
    cooperative_profit: float
    competitive_utility: float
    cooperative_utility: float
    competitive_price: float
    cooperative_price: float
    nash_gain: float
    optimum_gap: float

    @property
    def holds(self) -> bool:
        """Cooperative profit above competitive and utility below it, both answers within their tolerance."""
        return (self.cooperative_profit > self.competitive_profit
                and self.cooperative_utility < self.competitive_utility
                and self.nash_gain <= NASH_TOLERANCE and self.optimum_gap <= OPTIMUM_TOLERANCE)


def compare(draws: int, users: int = 200, dns: int = 4, first_seed: int = 0, nash_grid: int = 1001,
            on_draw: Callable[[DrawComparison], None] | None = None) -> list[DrawComparison]:
    rows = []
    for seed in range(first_seed, first_seed + draws):
        problem = random_problem(users, dns, seed)
        competitive = solve_and_check(problem, "competitive", nash_grid=nash_grid)
        cooperative = solve_and_check(problem, "cooperative")
        a, b = competitive.result.outcome(problem), cooperative.result.outcome(problem)
        row = DrawComparison(seed, a.total_profit, b.total_profit, a.total_utility, b.total_utility,
                             float(a.prices.mean()), float(b.prices.mean()), competitive.nash_gain,
                             cooperative.optimum_gap)
        rows.append(row)
        if on_draw is not None:
            on_draw(row)
    return rows


def summary(rows: list[DrawComparison]) -> dict[str, Any]:
    def mean(name: str) -> float:
        return float(np.mean([getattr(row, name) for row in rows]))

    return {"draws": len(rows), "holds_in_every_draw": all(row.holds for row in rows),
            "means": {name: mean(name) for name in asdict(rows[0]) if name != "seed"},
            "rows": [asdict(row) for row in rows]}


@dataclass(frozen=True)
class BenchResult:
    users: int
    dns: int
    tolerance: float
    competitive_seconds: float
    competitive_iterations: int
    cooperative_seconds: float
    cooperative_iterations: int
    scipy_seconds: float
    scipy_iterations: int
    optimum_gap: float

    @property
    def speedup(self) -> float:
        return self.scipy_seconds / self.cooperative_seconds

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "speedup": self.speedup}


def bench(users: int = 10_000, dns: int = 10, tolerance: float = 1e-6, seed: int = 0) -> BenchResult:
    """Both scenarios by the decomposed solver and the joint optimum by scipy, on one problem, one after another."""
    problem = random_problem(users, dns, seed)
    competitive = admm.solve(problem, "competitive", tolerance)
    cooperative = admm.solve(problem, "cooperative", tolerance)
    started = time.perf_counter()
    optimum = reference.cooperative_optimum(problem)
    scipy_seconds = time.perf_counter() - started
    gap = checks.relative_gap(cooperative.outcome(problem).total_profit, optimum.total_profit)
    return BenchResult(users, dns, tolerance, competitive.seconds, competitive.iterations, cooperative.seconds,
                       cooperative.iterations, scipy_seconds, optimum.iterations, gap)
