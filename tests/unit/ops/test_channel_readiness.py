"""When `up` counts a channel as ready: what the orderers' and peers' /metrics say."""

from __future__ import annotations

import http.server
import threading

import pytest

from medfabric.consortium.topology import load_topology
from medfabric_ops import channel_readiness
from medfabric_ops.channel_readiness import ChannelNotReadyError, not_ready, parse_metrics, read_metrics

RAFT_LEADER = """# HELP consensus_etcdraft_is_leader The leadership status of the current node
# TYPE consensus_etcdraft_is_leader gauge
consensus_etcdraft_is_leader{channel="hospital-a-local"} 1
consensus_etcdraft_committed_block_number{channel="hospital-a-local"} 6
"""


@pytest.fixture
def topology():
    return load_topology()


@pytest.fixture
def metrics(monkeypatch):
    """What each node's operations address answers: {address: {(name, channel): value}}."""
    answers: dict[str, dict] = {}
    monkeypatch.setattr(channel_readiness, "read_metrics", lambda address: answers.get(address, {}))
    return answers


def channel(topology, name):
    return next(c for c in topology.channels if c.name == name)


def test_prometheus_text_is_read_by_metric_and_channel():
    samples = parse_metrics(RAFT_LEADER + 'ledger_blockchain_height{channel="public"} 9\nother_metric 3\n')
    assert samples == {("consensus_etcdraft_is_leader", "hospital-a-local"): 1.0,
                       ("consensus_etcdraft_committed_block_number", "hospital-a-local"): 6.0,
                       ("ledger_blockchain_height", "public"): 9.0}


def test_metrics_are_fetched_over_http():
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = RAFT_LEADER.encode()
            self.send_response(200 if self.path == "/metrics" else 404)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        assert read_metrics(f"127.0.0.1:{server.server_port}")[("consensus_etcdraft_is_leader", "hospital-a-local")] == 1
    finally:
        server.shutdown()
    assert read_metrics(f"127.0.0.1:{server.server_port}") == {}  # nothing listens: nothing known


def test_a_raft_channel_is_ready_with_a_leader_and_its_peers_in_step(topology, metrics):
    local = channel(topology, "hospital-a-local")
    [orderer] = local.orderers
    assert not_ready(topology, local) == f"{orderer.host_name}: no Raft leader for hospital-a-local yet"
    metrics[orderer.operations_address] = parse_metrics(RAFT_LEADER)
    first, second = local.peers
    metrics[first.operations_address] = {("ledger_blockchain_height", "hospital-a-local"): 7}
    metrics[second.operations_address] = {("ledger_blockchain_height", "hospital-a-local"): 5}
    assert not_ready(topology, local) == f"{second.host_name} holds 5 of the 7 blocks of hospital-a-local"
    metrics[second.operations_address] = {("ledger_blockchain_height", "hospital-a-local"): 7}
    assert not_ready(topology, local) is None


def consenter(leader, current=0, following=0, committed=8):
    return {("consensus_BFT_leader_id", "public"): leader,
            ("consensus_BFT_committed_block_number", "public"): committed,
            ("consensus_smartbft_viewchange_current_view", "public"): current,
            ("consensus_smartbft_viewchange_next_view", "public"): following}


def test_a_bft_channel_needs_a_quorum_following_one_leader_outside_a_view_change(topology, metrics):
    public = channel(topology, "public")
    first, second, third, fourth = public.orderers
    for orderer in public.orderers:
        metrics[orderer.operations_address] = consenter(1)
    metrics[third.operations_address] = consenter(0)
    metrics[fourth.operations_address] = consenter(2)
    assert "do not follow one leader yet" in not_ready(topology, public)
    metrics[fourth.operations_address] = consenter(1, current=0, following=1)
    assert not_ready(topology, public) == f"{fourth.host_name}: view change in progress on public"
    metrics[third.operations_address] = consenter(1)
    for peer in public.peers:
        metrics[peer.operations_address] = {("ledger_blockchain_height", "public"): 9}
    assert not_ready(topology, public) is None  # 3 of 4 (SmartBFT's quorum) order


def test_a_consenter_alone_in_a_view_change_is_a_straggler_the_channel_orders_without(topology, metrics):
    public = channel(topology, "public")
    for orderer in public.orderers:
        metrics[orderer.operations_address] = consenter(2, current=1, following=1, committed=3608)
    metrics[public.orderers[0].operations_address] = consenter(2, current=1, following=2, committed=839)
    for peer in public.peers:
        metrics[peer.operations_address] = {("ledger_blockchain_height", "public"): 3609}

    assert not_ready(topology, public) is None  # its 839 blocks do not hold the peers back either
    assert channel_readiness.stragglers(topology, public) == [
        f"{public.orderers[0].host_name}: in a view change to view 2 of its own on public (the others follow "
        "leader 2); the channel orders without it"]
    assert channel_readiness.wait_until_ready(topology, [public], timeout=1) == \
        channel_readiness.stragglers(topology, public)


def test_a_consenter_with_no_leader_is_named_as_such(topology, metrics):
    public = channel(topology, "public")
    for orderer in public.orderers:
        metrics[orderer.operations_address] = consenter(3)
    metrics[public.orderers[1].operations_address] = consenter(0)
    for peer in public.peers:
        metrics[peer.operations_address] = {("ledger_blockchain_height", "public"): 9}
    assert channel_readiness.stragglers(topology, public) == [
        f"{public.orderers[1].host_name}: knows no leader on public, the others 3; the channel orders without it"]


@pytest.mark.parametrize("consenters, quorum", [(1, 1), (3, 2), (4, 3), (5, 4), (7, 5), (10, 7)])
def test_the_bft_quorum_is_smartbfts(consenters, quorum):
    assert channel_readiness.bft_quorum(consenters) == quorum


def test_waiting_names_the_channel_and_what_was_missing(topology, metrics):
    local = channel(topology, "hospital-b-local")
    with pytest.raises(ChannelNotReadyError, match=r"channel hospital-b-local not ready after 0\.2s: .*no Raft leader"):
        channel_readiness.wait_until_ready(topology, [local], timeout=0.2)


class FakeTime:
    """A clock that moves only when slept."""

    def __init__(self) -> None:
        self.now = 0.0

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def in_step_public(topology, metrics):
    public = channel(topology, "public")
    for orderer in public.orderers:
        metrics[orderer.operations_address] = consenter(2, current=1, following=1)
    for peer in public.peers:
        metrics[peer.operations_address] = {("ledger_blockchain_height", "public"): 9}
    return public


def test_a_rejoined_consenter_counts_in_step_once_it_has_stayed_so_past_a_heartbeat_timeout(topology, metrics):
    public = in_step_public(topology, metrics)
    time = FakeTime()
    restarted = []

    left = channel_readiness.settle_rejoined(public, {public.orderers[0].host_name}, restarted.append,
                                             clock=time.clock, sleep=time.sleep)

    assert left == [] and restarted == []
    heartbeat_s = public.ordering.smartbft.timeout_ms("leader_heartbeat_timeout") / 1000
    assert time.now >= heartbeat_s + channel_readiness.REJOIN_MARGIN_S  # it was watched that long


def test_a_rejoined_consenter_alone_in_a_view_change_is_restarted_until_it_follows(topology, metrics):
    public = in_step_public(topology, metrics)
    rejoined = public.orderers[0]
    metrics[rejoined.operations_address] = consenter(2, current=1, following=2)  # complained alone
    time = FakeTime()
    restarted = []

    def restart(host: str) -> None:
        restarted.append(host)
        metrics[rejoined.operations_address] = consenter(2, current=1, following=1)  # synced, follows

    left = channel_readiness.settle_rejoined(public, {rejoined.host_name}, restart, clock=time.clock,
                                             sleep=time.sleep)

    assert left == [] and restarted == [rejoined.host_name]


def test_a_rejoined_consenter_that_stays_out_is_named_after_its_restarts(topology, metrics):
    public = in_step_public(topology, metrics)
    rejoined = public.orderers[0]
    metrics[rejoined.operations_address] = consenter(2, current=1, following=2)
    time = FakeTime()
    restarted = []

    left = channel_readiness.settle_rejoined(public, {rejoined.host_name}, restarted.append,
                                             restarts=2, timeout=30, clock=time.clock, sleep=time.sleep)

    assert restarted == [rejoined.host_name] * 2
    assert left == [f"{rejoined.host_name}: in a view change to view 2 of its own on public (the others follow "
                    "leader 2); the channel orders without it"]
    assert time.now > 30


def test_no_rejoined_consenter_is_in_step_while_the_channel_has_no_quorum(topology, metrics):
    public = in_step_public(topology, metrics)
    for orderer in public.orderers[1:3]:
        metrics[orderer.operations_address] = consenter(2, current=1, following=2)  # a view change under way
    time = FakeTime()

    left = channel_readiness.settle_rejoined(public, {public.orderers[0].host_name}, lambda host: None,
                                             timeout=20, clock=time.clock, sleep=time.sleep)

    assert left == [f"{public.orderers[0].host_name}: not in step, {public.orderers[1].host_name}, "
                    f"{public.orderers[2].host_name}: view change in progress on public"]
