"""Reading SmartBFT's counters from an orderer's metrics text, and the bench's topologies (no network)."""

from __future__ import annotations

from collections import Counter

import yaml

from medfabric.consensus.measure import DECIDED, SENT, tally
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


# What Fabric 3.1.5's orderers log at orderer.consensus.smartbft=debug (colour codes and signatures shortened).
DEBUG_LINES = [
    "DEBU [orderer.consensus.smartbft.consensus] ProcessMessages -> 2 got message from 1: <PrePrepare with view: 0, "
    "seq: 5, payload of 3120 bytes, header: CAU=> channel=group-2-local",
    "DEBU [orderer.consensus.smartbft.consensus] ProcessMessages -> 2 got message from 1: prepare:{seq:5  "
    'digest:"42"} channel=group-2-local',
    "DEBU [orderer.consensus.smartbft.consensus] ProcessMessages -> 2 got message from 3: prepare:{seq:5  "
    'digest:"42"} channel=group-2-local',
    "DEBU [orderer.consensus.smartbft.consensus] ProcessMessages -> 4 got message from 3: commit:{seq:4  "
    'digest:"4c"  signature:{signer:3  value:"0D"  msg:"0s"}  assist:true} channel=group-2-local',
    "DEBU [orderer.consensus.smartbft.consensus] ProcessMessages -> 4 got message from 1: commit:{seq:5  "
    'digest:"42"  signature:{signer:1  value:"0D"  msg:"0s"}} channel=group-2-local',
    "DEBU [orderer.consensus.smartbft.consensus] handleHeartBeat -> Received heartbeat from 1, last heartbeat was "
    "0s ago channel=group-2-local",
    "DEBU [orderer.consensus.smartbft.consensus] ProcessMessages -> 2 got message from 1: prepare:{seq:9  "
    'digest:"77"} channel=group-1-local',
]


def test_debug_lines_are_tallied_by_type_with_assists_and_the_leaders_messages_apart():
    assert tally(DEBUG_LINES, "group-2-local") == Counter(
        {"PrePrepare": 1, "prepare": 2, "commit": 1, "commit_assist": 1, "heartbeats_taken": 1, "from_leader": 3})


def test_without_a_preprepare_no_sender_is_taken_for_the_leader():
    assert tally(DEBUG_LINES[1:3], "group-2-local") == Counter({"prepare": 2})
