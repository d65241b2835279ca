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


def test_a_bft_channel_needs_one_leader_for_all_and_no_view_change(topology, metrics):
    public = channel(topology, "public")

    def consenter(leader, current=0, following=0, committed=8):
        return {("consensus_BFT_leader_id", "public"): leader, ("consensus_BFT_committed_block_number", "public"): committed,
                ("consensus_smartbft_viewchange_current_view", "public"): current,
                ("consensus_smartbft_viewchange_next_view", "public"): following}

    for orderer in public.orderers:
        metrics[orderer.operations_address] = consenter(1)
    metrics[public.orderers[2].operations_address] = consenter(0)
    assert "do not follow one leader yet" in not_ready(topology, public)
    metrics[public.orderers[2].operations_address] = consenter(1, current=0, following=1)
    assert not_ready(topology, public) == f"{public.orderers[2].host_name}: view change in progress on public"
    metrics[public.orderers[2].operations_address] = consenter(1)
    for peer in public.peers:
        metrics[peer.operations_address] = {("ledger_blockchain_height", "public"): 9}
    assert not_ready(topology, public) is None


def test_waiting_names_the_channel_and_what_was_missing(topology, metrics):
    local = channel(topology, "hospital-b-local")
    with pytest.raises(ChannelNotReadyError, match=r"channel hospital-b-local not ready after 0\.2s: .*no Raft leader"):
        channel_readiness.wait_until_ready(topology, [local], timeout=0.2)
