"""`medfabric market`: answers for scripts and one-line errors for bad instances."""

from __future__ import annotations

import json

from medfabric.cli.main import cli
from medfabric.market.problem import random_problem
from tests.cli_runner import cli_runner


def test_solve_answers_a_users_own_instance_in_json(tmp_path):
    instance = tmp_path / "instance.json"
    instance.write_text(json.dumps(random_problem(30, 2, seed=4).to_json()))

    result = cli_runner().invoke(cli, ["market", "solve", "--scenario", "cooperative", "--problem", str(instance),
                                       "--json"])

    assert result.exit_code == 0, result.output
    answer = json.loads(result.output)
    assert len(answer["prices"]) == 30 and len(answer["prices"][0]) == 2
    assert len(answer["demand"]) == 30 and len(answer["profit"]) == 2 and len(answer["utility"]) == 30
    assert answer["converged"] and answer["optimum_gap"] <= 1e-6
    assert abs(sum(answer["profit"]) - answer["total_profit"]) < 1e-6


def test_solve_refuses_a_bad_instance_in_one_line(tmp_path):
    document = random_problem(5, 2, seed=1).to_json()
    document["costs"] = [1.0, 6.0]
    instance = tmp_path / "instance.json"
    instance.write_text(json.dumps(document))

    result = cli_runner().invoke(cli, ["market", "solve", "--scenario", "competitive", "--problem", str(instance)])

    assert result.exit_code != 0
    assert result.stderr.strip().splitlines() == ["error: costs[1] must be in (0, p_hat = 5), not 6"]


def test_compare_writes_fig2_and_says_the_headline_holds(tmp_path):
    figure = tmp_path / "fig2.png"

    result = cli_runner().invoke(cli, ["market", "compare", "--draws", "2", "--users", "40", "--plot", str(figure),
                                       "--json"])

    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["draws"] == 2 and report["holds_in_every_draw"]
    assert figure.stat().st_size > 10_000
