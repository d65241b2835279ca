"""Reading SmartBFT's counters from an orderer's metrics text, and the bench's topologies (no network)."""

from __future__ import annotations

import yaml

from medfabric.consensus.measure import DECIDED, SENT
from medfabric.prometheus import parse_samples as parse_metrics
from medfabric.consortium.topology import parse_topology
from medfabric_ops.consensus_bench import clustered_document, flat_document, smartbft_per_block

METRICS = """# HELP cluster_comm_msg_send_time The time it takes to send a message in seconds.
# TYPE cluster_comm_msg_send_time histogram
cluster_comm_msg_send_time_bucket{channel="public",host="127.0.0.1:7440",le="0.005"} 71
cluster_comm_msg_send_time_count{channel="public",host="127.0.0.1:7440"} 71
cluster_comm_msg_send_time_count{channel="public",host="127.0.0.1:7450"} 69
consensus_smartbft_view_decisions{channel="public"} 43
consensus_smartbft_view_decisions{channel="hospital-a-local"} 2
"""


def test_samples_are_read_with_their_labels():
    samples = parse_metrics(METRICS)

    sent = [(labels["host"], value) for name, labels, value in samples if name == SENT]
    assert sent == [("127.0.0.1:7440", 71.0), ("127.0.0.1:7450", 69.0)]
    decided = {labels["channel"]: value for name, labels, value in samples if name == DECIDED}
    assert decided == {"public": 43.0, "hospital-a-local": 2.0}


def test_smartbft_sends_the_pbft_count_plus_the_leaders_prepare():
    assert smartbft_per_block(4) == 3 + 12 + 12
    assert smartbft_per_block(10) == 9 + 90 + 90


def test_the_bench_topologies_are_valid():
    flat = parse_topology(yaml.safe_load(yaml.safe_dump(flat_document(10))))
    clustered = parse_topology(yaml.safe_load(yaml.safe_dump(clustered_document())))

    assert len(flat.public_channel.orderers) == 10 and flat.base_port == 27000
    assert [len(c.orderers) for c in clustered.channels] == [4, 4, 4, 4, 4]
    assert all(c.ordering.consensus == "bft" for c in clustered.channels)
