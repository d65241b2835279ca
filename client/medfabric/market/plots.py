"""Figures of the market (Agg backend: no display needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from medfabric.market.experiments import DrawComparison


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(figure: Any, path: Path) -> Path:
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    _pyplot().close(figure)
    return path


def plot_solution(solutions: dict[str, Any], path: Path) -> Path:
    """Per scenario: the price each duty node sets for each user (users sorted by l_i), and the residuals."""
    plt = _pyplot()
    figure, (prices_axis, residual_axis) = plt.subplots(1, 2, figsize=(11, 4))
    for scenario, (problem, solution) in solutions.items():
        order = problem.l.argsort()
        prices = solution.result.prices[order]
        for j in range(problem.dns):
            prices_axis.plot(problem.l[order], prices[:, j], ".", markersize=3,
                             label=f"{scenario}, DN {j + 1}" if problem.dns <= 4 else (scenario if j == 0 else None))
        residual_axis.semilogy(solution.result.primal, label=f"{scenario} primal")
        residual_axis.semilogy(solution.result.dual, "--", label=f"{scenario} dual")
    prices_axis.set_xlabel("user's initial capability l_i")
    prices_axis.set_ylabel("price p_ij")
    prices_axis.set_title("prices per duty node")
    prices_axis.legend(fontsize=7)
    residual_axis.set_xlabel("iteration")
    residual_axis.set_ylabel("residual")
    residual_axis.set_title("consensus residuals")
    residual_axis.legend(fontsize=7)
    return _save(figure, path)


def plot_comparison(rows: list[DrawComparison], path: Path) -> Path:
    """The paper's Fig. 2: total profit and total user utility per draw, both scenarios."""
    plt = _pyplot()
    seeds = [row.seed for row in rows]
    figure, (profit_axis, utility_axis) = plt.subplots(1, 2, figsize=(11, 4))
    profit_axis.plot(seeds, [r.competitive_profit for r in rows], "o-", label="competitive")
    profit_axis.plot(seeds, [r.cooperative_profit for r in rows], "s-", label="cooperative")
    profit_axis.set_title("total profit of the duty nodes")
    utility_axis.plot(seeds, [r.competitive_utility for r in rows], "o-", label="competitive")
    utility_axis.plot(seeds, [r.cooperative_utility for r in rows], "s-", label="cooperative")
    utility_axis.set_title("total utility of the data users")
    for axis in (profit_axis, utility_axis):
        axis.set_xlabel("draw (seed)")
        axis.legend()
    return _save(figure, path)
