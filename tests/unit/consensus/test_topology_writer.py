"""`consensus cluster --out`: a topology `up` reads, with a BFT orderer set per group and the duty nodes' set."""

from __future__ import annotations

import pytest
import yaml

from medfabric.consensus.clustering import cluster
from medfabric.consensus.nodes import ConsensusError, synthetic_nodes
from medfabric.consensus.topology_writer import topology_document, write_topology
from medfabric.consortium.topology import TopologyError, load_topology, parse_topology


def test_sixteen_nodes_in_four_groups_become_four_bft_local_channels_and_a_public_duty_set(tmp_path):
    grouping = cluster(synthetic_nodes(16, 4, seed=0), 4, balanced=True)

    topology = load_topology(write_topology(grouping, tmp_path / "topology.yaml", base_port=27000))

    assert [d.id for d in topology.domains] == ["group-1", "group-2", "group-3", "group-4"]
    local = [c for c in topology.channels if c.kind == "local"]
    assert all(c.ordering.consensus == "bft" and len(c.orderers) == 4 for c in local)
    public = topology.public_channel
    assert public.ordering.consensus == "bft" and len(public.orderers) == 4
    assert len({o.listen_port for c in topology.channels for o in c.orderers}) == 20
    assert "group-1: duty node" in (tmp_path / "topology.yaml").read_text()


def test_groups_of_unequal_size_get_orderer_sets_of_their_own_size(tmp_path):
    grouping = cluster(synthetic_nodes(18, 4, seed=0), 4, balanced=True)
    assert sorted(grouping.sizes()) == [4, 4, 5, 5]

    topology = load_topology(write_topology(grouping, tmp_path / "topology.yaml", base_port=27000))

    local = {c.domains[0].id: len(c.orderers) for c in topology.channels if c.kind == "local"}
    assert local == {f"group-{g + 1}": size for g, size in enumerate(grouping.sizes())}
    assert len({o.listen_port for o in topology.orderers}) == 18 + 4


@pytest.mark.parametrize("nodes, groups, balanced, message", [
    (12, 4, True, "needs 4 to 9 nodes: group-1 has 3, group-2 has 3, group-3 has 3, group-4 has 3"),
    (12, 3, True, "needs at least 4 groups, not 3"),
])
def test_groups_that_fabric_cannot_order_are_refused(nodes, groups, balanced, message):
    with pytest.raises(ConsensusError, match=message):
        topology_document(cluster(synthetic_nodes(nodes, groups, seed=0), groups, balanced=balanced))


def test_a_local_bft_channel_needs_four_orderers():
    document = topology_document(cluster(synthetic_nodes(16, 4, seed=0), 4, balanced=True))
    document["channels"]["local"]["orderers_per_domain"] = 3

    with pytest.raises(TopologyError, match="BFT needs at least 4 orderers"):
        parse_topology(yaml.safe_load(yaml.safe_dump(document)))


def test_one_groups_own_orderer_count_is_checked_and_named():
    document = topology_document(cluster(synthetic_nodes(16, 4, seed=0), 4, balanced=True))
    document["domains"][2]["orderers"] = 3

    with pytest.raises(TopologyError, match=r"^domains\[2\]\.orderers: BFT needs at least 4 orderers"):
        parse_topology(yaml.safe_load(yaml.safe_dump(document)))
