"""`medfabric market`: the duty nodes' prices as a Stackelberg game (medfabric.market does the work)."""

from __future__ import annotations

from pathlib import Path

import click

from medfabric.cli.context import CliContext, emit
from medfabric.errors import MedfabricError
from medfabric.market import DEFAULT_TOLERANCE, SCENARIOS

json_option = click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")


@click.group()
def market() -> None:
    """Cross-domain data market: duty nodes price EMRs, data users choose how much to buy."""


@market.command("solve")
@click.option("--scenario", type=click.Choice(SCENARIOS), required=True)
@click.option("--users", type=click.IntRange(1), default=200, show_default=True, help="N (a random draw).")
@click.option("--dns", type=click.IntRange(1), default=4, show_default=True, help="M (a random draw).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the random draw.")
@click.option("--problem", "problem_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help='Your own instance: {"p_hat", "d_max", "costs": [M], "l": [N], "lambda": [N]}.')
@click.option("--tolerance", type=click.FloatRange(0, min_open=True), default=DEFAULT_TOLERANCE,
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
    from medfabric.market.experiments import solve_and_check
    from medfabric.market.problem import from_json, random_problem

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

    from medfabric.market.experiments import compare as run_compare
    from medfabric.market.experiments import summary

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
    from medfabric.market.experiments import bench as run_bench

    result = run_bench(users, dns, tolerance)
    emit(result.to_json(), as_json,
         f"N = {users}, M = {dns}, tolerance {tolerance:g}: competitive {result.competitive_seconds:.3f} s "
         f"({result.competitive_iterations} iterations), cooperative {result.cooperative_seconds:.3f} s "
         f"({result.cooperative_iterations}); scipy L-BFGS-B {result.scipy_seconds:.3f} s "
         f"({result.scipy_iterations}): speed-up {result.speedup:.1f}x, gap {result.optimum_gap:.1e}")





# -- on the public channel ----------------------------------------------------------------------------------------


def _who(value: str) -> tuple[str, str]:
    """`user@domain` -> (user, domain)."""
    user, at, domain = value.rpartition("@")
    if not at or not user or not domain:
        raise click.BadParameter(f"must be user@domain, e.g. doctor@hospital-b, not {value!r}")
    return user, domain


as_option = click.option("--as", "who", required=True, help="The acting identity, user@domain (e.g. doctor@hospital-b).")


def _ledger(session):
    from medfabric.market.ledger import MarketLedger

    return MarketLedger(session.gateway.get_network(session.public_channel), session.topology.chaincode.name)


@market.command("post")
@click.option("--domain", required=True, help="The duty node's domain; posted by its Admin.")
@click.option("--scenario", type=click.Choice(SCENARIOS), default="competitive", show_default=True)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the buyers' l and lambda.")
@json_option
@click.pass_obj
def post(obj: CliContext, domain: str, scenario: str, seed: int, as_json: bool) -> None:
    """Solve the consortium's game and post the domain's prices as its next price list version.

    Example: medfabric market post --domain hospital-a --scenario cooperative
    """
    from medfabric.market import ledger as market_ledger

    consortium = market_ledger.consortium_market(obj.topology, seed)
    with obj.session(domain, "Admin") as session:
        posted = market_ledger.post(_ledger(session), consortium, domain, scenario)
    prices = sorted(posted["prices"].values())
    emit(posted, as_json, f"{domain} price list version {posted['version']}: {len(prices)} buyers, "
                          f"{market_ledger.money(prices[0]):.6f} to {market_ledger.money(prices[-1]):.6f} per unit "
                          f"({scenario}), D_max {posted['d_max']:g}")


@market.command("prices")
@click.option("--domain", required=True, help="Whose price list.")
@click.option("--version", type=click.IntRange(0), default=0, show_default=True, help="0: the latest.")
@as_option
@json_option
@click.pass_obj
def prices(obj: CliContext, domain: str, version: int, who: str, as_json: bool) -> None:
    """A domain's posted price list."""
    from medfabric.market.ledger import money

    user, home = _who(who)
    with obj.session(home, user) as session:
        posted = _ledger(session).prices(domain, version)
    lines = [f"{buyer}  {money(price):.6f}" for buyer, price in sorted(posted["prices"].items())]
    emit(posted, as_json, f"{domain} version {posted['version']} (posted {posted['posted']}):\n" + "\n".join(lines))


@market.command("credit")
@click.option("--domain", required=True, help="The buyer's domain; credited by its Admin.")
@click.option("--user", required=True, help="The user of that domain to credit.")
@click.option("--amount", type=click.FloatRange(0, min_open=True), required=True)
@json_option
@click.pass_obj
def credit(obj: CliContext, domain: str, user: str, amount: float, as_json: bool) -> None:
    """Credit a user of a domain (as the domain's Admin)."""
    from medfabric.market.ledger import money

    if user not in obj.topology.domain(domain).users:
        raise MedfabricError(f"domain {domain} has no user '{user}' (known: {', '.join(obj.topology.domain(domain).users)})")
    with obj.session(domain, "Admin") as session:
        balance = _ledger(session).credit(user, amount)
    emit(balance, as_json, f"{user}@{domain}: balance {money(balance['amount']):.6f}")


@market.command("balance")
@as_option
@json_option
@click.pass_obj
def balance(obj: CliContext, who: str, as_json: bool) -> None:
    """The acting identity's balance."""
    from medfabric.market.ledger import money

    user, domain = _who(who)
    with obj.session(domain, user) as session:
        found = _ledger(session).balance(user)
    emit(found, as_json, f"{who}: balance {money(found['amount']):.6f}")


@market.command("buy")
@click.argument("record_ids", nargs=-1, required=True)
@as_option
@click.option("--quantity", type=click.FloatRange(0, min_open=True), default=1.0, show_default=True)
@click.option("--days", type=click.IntRange(1, 366), default=30, show_default=True, help="How long the purchase opens the records.")
@click.option("--price", type=click.FloatRange(0, min_open=True), help="Price per unit (default: the posted one).")
@click.option("--version", type=click.IntRange(1), help="Price list version (default: the latest).")
@json_option
@click.pass_obj
def buy(obj: CliContext, record_ids: tuple[str, ...], who: str, quantity: float, days: int, price: float | None,
        version: int | None, as_json: bool) -> None:
    """Buy published records of one domain at its posted price; then `emr request --purpose purchase` reads them.

    Example: medfabric market buy rec-1 --as doctor@hospital-b --quantity 10
    """
    from datetime import timedelta

    from medfabric.market.ledger import buyer_key, money, purchase_request

    user, domain = _who(who)
    with obj.session(domain, user) as session:
        sellers = set()
        for record_id in record_ids:
            entry = session.index(session.public_channel).find(record_id)
            if entry is None:
                raise MedfabricError(f"record {record_id} is not published on {session.public_channel}")
            sellers.add(entry["domain"])
        if len(sellers) != 1:
            raise MedfabricError(f"one purchase buys records of one domain, not of {', '.join(sorted(sellers))}")
        ledger = _ledger(session)
        document = purchase_request(ledger, sellers.pop(), buyer_key(session.domain, user), list(record_ids),
                                    quantity, price, version, timedelta(days=days))
        answer, tx_id = ledger.buy(document)
    answer = {**answer, "tx_id": tx_id, "price": document["price"], "version": document["version"]}
    if answer["accepted"]:
        emit(answer, as_json, f"{answer['purchase_id']}: {len(record_ids)} record(s) of {document['domain']} for "
                              f"{money(answer['cost']):.6f} ({quantity:g} x {document['price']:.6f}, version "
                              f"{document['version']}); read them with --purpose purchase")
        return
    emit(answer, as_json, f"refused: {answer['reason']} (logged as {answer['log_id']})")
    raise SystemExit(1)
