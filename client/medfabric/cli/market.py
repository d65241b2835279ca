"""`medfabric market`: the duty nodes' prices as a Stackelberg game (medfabric.market does the work)."""

from __future__ import annotations

from pathlib import Path

import click

from medfabric.cli.context import emit
from medfabric.market import admm
from medfabric.market.experiments import bench as run_bench
from medfabric.market.experiments import compare as run_compare
from medfabric.market.experiments import solve_and_check, summary
from medfabric.market.problem import from_json, random_problem

json_option = click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")


@click.group()
def market() -> None:
    """Cross-domain data market: duty nodes price EMRs, data users choose how much to buy."""


@market.command("solve")
@click.option("--scenario", type=click.Choice(admm.SCENARIOS), required=True)
@click.option("--users", type=click.IntRange(1), default=200, show_default=True, help="N (a random draw).")
@click.option("--dns", type=click.IntRange(1), default=4, show_default=True, help="M (a random draw).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the random draw.")
@click.option("--problem", "problem_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help='Your own instance: {"p_hat", "d_max", "costs": [M], "l": [N], "lambda": [N]}.')
@click.option("--tolerance", type=click.FloatRange(0, min_open=True), default=admm.DEFAULT_TOLERANCE,
              show_default=True, help="Primal and dual residuals to stop at.")
@click.option("--distributed", is_flag=True,
              help="Each duty node's step in its own process, over TCP on 127.0.0.1 (the same answer).")
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path), help="PNG of the prices and residuals.")
@json_option
def solve(scenario: str, users: int, dns: int, seed: int, problem_file: Path | None, tolerance: float,
          distributed: bool, plot: Path | None, as_json: bool) -> None:
    """Solve one scenario and check it (epsilon-Nash for competitive, the scipy optimum for cooperative).

    Example: medfabric market solve --scenario competitive --users 1000 --dns 3 --json
    """
    problem = from_json(problem_file.read_text()) if problem_file else random_problem(users, dns, seed)
    solution = solve_and_check(problem, scenario, tolerance, distributed=distributed)
    if plot:
        from medfabric.market.plots import plot_solution

        plot_solution({scenario: (problem, solution)}, plot)
    answer = solution.to_json(problem)
    check = (f"nash gain {solution.nash_gain:.1e}" if solution.nash_gain is not None
             else f"gap to the scipy optimum {solution.optimum_gap:.1e}")
    emit(answer, as_json,
         f"{scenario}: {problem.users} users, {problem.dns} duty nodes; mean price {answer['mean_price']:.4f}, "
         f"total profit {answer['total_profit']:.2f}, total utility {answer['total_utility']:.2f}; "
         f"{solution.result.iterations} iterations{'' if solution.result.converged else ' (NOT converged)'}, "
         f"{solution.result.seconds:.3f} s{' in ' + str(problem.dns) + ' processes' if distributed else ''}; {check}")
    if not solution.result.converged:
        raise SystemExit(1)


@market.command("compare")
@click.option("--draws", type=click.IntRange(1), default=50, show_default=True)
@click.option("--users", type=click.IntRange(1), default=200, show_default=True)
@click.option("--dns", type=click.IntRange(1), default=4, show_default=True)
@click.option("--seed", "first_seed", type=int, default=0, show_default=True, help="Seed of the first draw.")
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path), help="PNG of profit and utility per draw.")
@json_option
def compare(draws: int, users: int, dns: int, first_seed: int, plot: Path | None, as_json: bool) -> None:
    """Competitive against cooperative leaders over random draws (the paper's Fig. 2).

    Example: medfabric market compare --draws 50 --plot fig2.png
    """
    from rich.progress import Progress

    with Progress(disable=as_json) as progress:
        bar = progress.add_task("draws", total=draws)
        rows = run_compare(draws, users, dns, first_seed, on_draw=lambda _row: progress.advance(bar))
    if plot:
        from medfabric.market.plots import plot_comparison

        plot_comparison(rows, plot)
    report = summary(rows)
    means = report["means"]
    emit(report, as_json,
         f"{draws} draws of N = {users}, M = {dns}: mean price {means['competitive_price']:.3f} competitive, "
         f"{means['cooperative_price']:.3f} cooperative; profit {means['competitive_profit']:.0f} vs "
         f"{means['cooperative_profit']:.0f}; utility {means['competitive_utility']:.0f} vs "
         f"{means['cooperative_utility']:.0f}; cooperative earns more and leaves users less in "
         f"{sum(row.holds for row in rows)}/{draws} draws (worst nash gain "
         f"{max(row.nash_gain for row in rows):.1e}, worst gap {max(row.optimum_gap for row in rows):.1e})")
    if not report["holds_in_every_draw"]:
        raise SystemExit(1)


@market.command("bench")
@click.option("--users", type=click.IntRange(1), default=10_000, show_default=True)
@click.option("--dns", type=click.IntRange(1), default=10, show_default=True)
@click.option("--tolerance", type=click.FloatRange(0, min_open=True), default=1e-6, show_default=True)
@json_option
def bench(users: int, dns: int, tolerance: float, as_json: bool) -> None:
    """Time the decomposed solver against scipy's centralised solve of the same problem, side by side."""
    result = run_bench(users, dns, tolerance)
    emit(result.to_json(), as_json,
         f"N = {users}, M = {dns}, tolerance {tolerance:g}: competitive {result.competitive_seconds:.3f} s "
         f"({result.competitive_iterations} iterations), cooperative {result.cooperative_seconds:.3f} s "
         f"({result.cooperative_iterations}); scipy L-BFGS-B {result.scipy_seconds:.3f} s "
         f"({result.scipy_iterations}): speed-up {result.speedup:.1f}x, gap {result.optimum_gap:.1e}")



