"""`medfabric consensus`: JSON for scripts, one-line errors for bad node files and counts."""

from __future__ import annotations

import json

from medfabric.cli.main import cli
from medfabric.consensus.nodes import synthetic_nodes, write_nodes
from tests.cli_runner import cli_runner


def test_model_answers_the_spec_counts_in_json():
    result = cli_runner().invoke(cli, ["consensus", "model", "--nodes", "160", "--groups", "1,10", "--json"])

    assert result.exit_code == 0, result.output
    assert [row["total"] for row in json.loads(result.output)] == [50_880, 4_980]


def test_cluster_writes_groups_and_a_figure(tmp_path):
    nodes = write_nodes(synthetic_nodes(40, 4, seed=2), tmp_path / "nodes.csv")
    figure = tmp_path / "dendrogram.png"

    result = cli_runner().invoke(cli, ["consensus", "cluster", "--nodes", str(nodes), "--groups", "4", "--plot",
                                       str(figure), "--json"])

    assert result.exit_code == 0, result.output
    groups = json.loads(result.output)["groups"]
    assert len(groups) == 4 and sum(len(g["members"]) for g in groups) == 40
    assert all(g["duty_node"] in g["members"] for g in groups)
    assert figure.stat().st_size > 10_000


def test_a_node_file_without_the_feature_column_is_one_line(tmp_path):
    path = tmp_path / "nodes.csv"
    path.write_text("id,x\nn1,1\n")

    result = cli_runner().invoke(cli, ["consensus", "cluster", "--nodes", str(path), "--groups", "1"])

    assert result.exit_code != 0
    assert result.stderr.strip().splitlines() == [f"error: {path} has no column 'y' (it has: id, x)"]


def test_a_bad_range_is_named():
    result = cli_runner().invoke(cli, ["consensus", "model", "--nodes", "16..x"])

    assert result.exit_code != 0
    assert "--nodes must be a list like 1,4,8,10 or a range like 16..160, not '16..x'" in result.stderr
