"""Message counts per phase: the spec's formulas on known values."""

from __future__ import annotations

import pytest

from medfabric.consensus import model
from medfabric.consensus.nodes import ConsensusError


def test_flat_pbft_over_160_nodes_sends_2n_n_minus_1_messages():
    counts = model.flat(160)

    assert (counts.pre_prepare, counts.prepare, counts.commit) == (159, 159**2, 160 * 159)
    assert counts.total == 2 * 160 * 159 == 50_880


def test_ahc_pbft_over_160_nodes_in_10_groups():
    counts = model.clustered(160, 10)

    assert (counts.pre_prepare, counts.prepare, counts.commit, counts.inter) == (150, 10 * 15**2, 160 * 15, 2 * 10 * 9)
    assert counts.total == 4_980
    assert model.zeta(160, 10) == pytest.approx(160 / 10**0.5)
    assert model.zeta(16, 10) == 10


@pytest.mark.parametrize("nodes, groups", [(160, 4), (160, 8), (100, 8), (17, 4)])
def test_clustered_counts_follow_the_group_sizes(nodes, groups):
    sizes = model.equal_sizes(nodes, groups)
    counts = model.clustered(nodes, groups)

    assert max(sizes) - min(sizes) <= 1 and sum(sizes) == nodes
    assert counts.pre_prepare == nodes - groups
    assert counts.prepare == sum((n - 1) ** 2 for n in sizes)
    assert counts.commit == sum(n * (n - 1) for n in sizes)
    if nodes % groups == 0:
        assert counts.prepare == groups * (nodes // groups - 1) ** 2
        assert counts.commit == nodes * (nodes // groups - 1)


def test_one_group_is_flat_pbft():
    assert model.clustered(50, 1).total == model.flat(50).total


@pytest.mark.parametrize("call", [lambda: model.flat(0), lambda: model.clustered(3, 4),
                                  lambda: model.clustered(10, 2, [3, 3])])
def test_impossible_counts_are_refused(call):
    with pytest.raises(ConsensusError):
        call()
