"""Node files, AHC groups and duty nodes: deterministic, tie-safe, balanced on request, robust to a few liars."""

from __future__ import annotations

import numpy as np
import pytest

from medfabric.consensus.clustering import cluster, honest_agreement
from medfabric.consensus.nodes import ConsensusError, NodeSet, read_nodes, region_of, synthetic_nodes, write_nodes
from medfabric.consensus.robustness import robustness


def write(tmp_path, text: str):
    path = tmp_path / "nodes.csv"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    "text, message",
    [
        ("id,x\nn1,1\n", "has no column 'y' (it has: id, x)"),
        ("id,x,y\nn1,1,nan\n", "line 2: y must be finite, not nan"),
        ("id,x,y\nn1,1,2\nn2,a,2\n", "line 3: x is not a number: 'a'"),
        ("id,x,y\nn1,1,2\nn1,3,4\n", "node id n1 appears more than once"),
        ("id,x,y\n", "has no nodes"),
        ("id,x,y\n,1,2\n", "line 2: the id is empty"),
    ],
)
def test_a_bad_node_file_gets_one_line_naming_the_problem(tmp_path, text, message):
    with pytest.raises(ConsensusError) as error:
        read_nodes(write(tmp_path, text))
    assert message in str(error.value) and "\n" not in str(error.value)


def test_fewer_nodes_than_groups_is_refused(tmp_path):
    nodes = read_nodes(write(tmp_path, "id,x,y\nn1,0,0\nn2,1,1\n"))

    with pytest.raises(ConsensusError, match="4 groups need at least 4 nodes; there are 2"):
        cluster(nodes, 4)


def test_the_same_nodes_in_another_order_give_the_same_groups(tmp_path):
    nodes = synthetic_nodes(60, 4, seed=3)
    path = write_nodes(nodes, tmp_path / "a.csv")
    lines = path.read_text().splitlines()
    shuffled = write(tmp_path, "\n".join([lines[0], *reversed(lines[1:])]) + "\n")

    first, again = cluster(read_nodes(path), 4), cluster(read_nodes(shuffled), 4)

    assert np.array_equal(first.labels, again.labels) and first.duty == again.duty
    assert first.labels[0] == 0  # groups are numbered by their smallest node id


def test_ties_are_broken_by_node_order():
    features = np.asarray([[0.0, 0.0], [0.0, 0.0], [10.0, 0.0], [10.0, 0.0], [0.0, 10.0], [0.0, 10.0]])
    nodes = NodeSet(tuple(f"n{i}" for i in range(6)), features, ("x", "y"))

    grouping = cluster(nodes, 3, "average")

    assert grouping.labels.tolist() == [0, 0, 1, 1, 2, 2]
    assert grouping.duty == (0, 2, 4)  # equal medoids: the smaller id


def test_balanced_groups_differ_by_at_most_one_node_and_the_duty_node_is_the_medoid():
    nodes = synthetic_nodes(50, 3, seed=1)

    grouping = cluster(nodes, 4, balanced=True)

    assert max(grouping.sizes()) - min(grouping.sizes()) <= 1 and sum(grouping.sizes()) == 50
    for group, duty in enumerate(grouping.duty):
        members = grouping.members(group)
        totals = [np.linalg.norm(nodes.features[members] - nodes.features[m], axis=1).sum() for m in members]
        assert members[int(np.argmin(totals))] == duty


def test_ahc_recovers_the_regions_and_a_few_liars_do_not_move_the_honest_nodes():
    truth = region_of(synthetic_nodes(160, 4, seed=1), 4)

    assert honest_agreement(cluster(synthetic_nodes(160, 4, seed=1), 4), truth) > 0.9
    ward = next(row for row in robustness(160, 4, liars=8, seed=1) if row.method == "ward")
    assert ward.agreement_with > 0.9 and abs(ward.agreement_with - ward.agreement_without) < 0.05
