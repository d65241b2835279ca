"""The benchmark runner with the real Caliper 0.6, the project's workloads and the rendered network configuration,
against the Gateway of tests/caliper/gateway_server.py (the real contracts on a fake Fabric, no binaries).

What only a real consortium can give is left out: the supervisor's processes (the consortium check is skipped, and
the CPU groups are this test process, which runs the fake Gateway and the Python chaincode, and the Node baseline's
server). The Node baseline (medfabric-node, caliper/baseline on fabric-shim) runs in its own process behind the fake
Gateway where node and caliper/baseline/node_modules are installed; its test is skipped otherwise.
Skipped without node, Caliper in caliper/node_modules (`make bench-deps`) or the smoke suite.
"""

from __future__ import annotations

import contextlib
import os
import shutil

import pytest
import yaml

from medfabric.consortium.layout import PROJECT_ROOT, NetworkLayout, latest_bench_run
from medfabric_ops import bench, network
from medfabric_ops.crypto_material import generate_crypto

from ...topologies import duty_peer_ports, topology_with_free_ports

CALIPER_DIR = PROJECT_ROOT / "caliper"

# Every transaction refused by the contract: caliper/benchmarks/smoke-reject.yaml (hospital-a's doctor indexes a
# record of hospital-b). Not labelled -expect-failures, so the run must fail.
REJECT_SUITE = "smoke-reject"
# Refused before the contract: hospital-b's doctor on hospital-a's local channel, which hospital-b has not joined.
OUTSIDER_SUITE = {"test": {"name": "outsider", "workers": {"number": 1}, "rounds": [{
    "label": "index-write-outsider",
    "txNumber": 4,
    "rateControl": {"type": "fixed-rate", "opts": {"tps": 10}},
    "workload": {"module": "workloads/index-write.js",
                 "arguments": {"channel": "hospital-a-local", "contractId": "medfabric",
                               "invoker": "doctor@hospital-b"}},
}]}}
# The Node baseline behind the fake Gateway, one round (Caliper spends ~10 s on each): PutRecord submitted as the
# round initialises (a failure fails the round), then GetRecord evaluated and recorded, on hospital-a-local.
NODE_SUITE = {"test": {"name": "node-baseline", "workers": {"number": 1}, "rounds": [{
    "label": "index-read-node",
    "txNumber": 6,
    "rateControl": {"type": "fixed-rate", "opts": {"tps": 20}},
    "workload": {"module": "workloads/index-read.js",
                 "arguments": {"channel": "hospital-a-local", "contractId": "medfabric-node",
                               "invoker": "doctor@hospital-a", "records": 3, "idPrefix": "node"}},
}]}}


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """(topology, layout, workspace, server, node): the fake Gateway on the duty peers' addresses (with the Node
    baseline, whose server is `node`, where it can run; else node is None), and a Caliper workspace with the project's
    workloads and node_modules, its smoke suite, REJECT_SUITE, OUTSIDER_SUITE and NODE_SUITE."""
    if shutil.which("node") is None:
        pytest.skip("node is not installed")
    if not (CALIPER_DIR / "node_modules" / ".bin" / "caliper").exists():
        pytest.skip("Caliper is not installed in caliper/ (`make bench-deps`)")
    if not (CALIPER_DIR / "benchmarks" / "smoke.yaml").is_file() or not (CALIPER_DIR / "workloads").is_dir():
        pytest.skip("no caliper/benchmarks/smoke.yaml")
    gateway_server = pytest.importorskip("tests.caliper.gateway_server")
    chaincode_servers = pytest.importorskip("tests.caliper.chaincode_servers")

    root = tmp_path_factory.mktemp("bench-caliper")
    topology = topology_with_free_ports(root / "topology.yaml", duty_peer_ports)
    layout = NetworkLayout(root / "build" / "network")
    generate_crypto(topology, layout)

    workspace = root / "caliper"
    (workspace / "benchmarks").mkdir(parents=True)
    for name in ("node_modules", "workloads", "package.json"):
        (workspace / name).symlink_to(CALIPER_DIR / name)
    for suite in ("smoke", REJECT_SUITE):
        (workspace / "benchmarks" / f"{suite}.yaml").symlink_to(CALIPER_DIR / "benchmarks" / f"{suite}.yaml")
    (workspace / "benchmarks" / "outsider.yaml").write_text(yaml.safe_dump(OUTSIDER_SUITE, sort_keys=False))
    (workspace / "benchmarks" / "node-baseline.yaml").write_text(yaml.safe_dump(NODE_SUITE, sort_keys=False))

    with contextlib.ExitStack() as stack:
        node = None
        if chaincode_servers.baseline_missing() is None:
            node = stack.enter_context(chaincode_servers.node_baseline(log=root / "node-baseline.log"))
        chaincodes = {topology.baseline.name: node.address} if node else {}
        server = stack.enter_context(gateway_server.ContractGatewayServer(topology, layout, chaincodes=chaincodes))
        yield topology, layout, workspace, server, node


@pytest.fixture
def run(served, monkeypatch, tmp_path):
    topology, layout, workspace, server, node = served
    monkeypatch.setattr(bench, "deployed_topology", lambda t, l: t if node else network.without_baseline(t))
    groups = {"gateway": [os.getpid()], **({"chaincode-node": [node.pid]} if node else {})}
    monkeypatch.setattr(bench, "consortium_groups", lambda t, l: lambda: groups)
    monkeypatch.delenv("MEDFABRIC_BENCH_RECORDS", raising=False)

    def run_suite(suite: str) -> bench.BenchRun:
        return bench.run_bench(topology, layout, suite=suite, caliper_dir=workspace, bench_dir=tmp_path / "bench",
                               sample_interval=0.25, progress_interval=2)

    return run_suite, server, node


def test_caliper_runs_the_smoke_suite_through_the_rendered_config_and_the_records_give_the_figures(run):
    run_suite, server, _node = run
    before = server.counts().get("Submit", 0)
    result = run_suite("smoke")
    assert result.problems == [], (result.run_dir / "caliper.log").read_text()[-3000:]
    results = result.results
    assert results["passed"] and results["caliper"]["exit_code"] == 0
    assert results["caliper"]["cpu_seconds"] > 0.2  # Caliper's manager and worker start Node: never free
    [smoke] = results["rounds"]
    assert smoke["channel_kind"] == "local" and smoke["workers"] == 1
    assert smoke["submitted"] == smoke["succeeded"] == server.counts()["Submit"] - before > 0
    assert smoke["goodput_tps"] > 0 and 0 < smoke["latency_ms"]["p50"] <= smoke["latency_ms"]["p99"]
    assert smoke["cpu"]["caliper"]["seconds"] > 0
    assert latest_bench_run(result.run_dir.parent) == result.run_dir
    assert (result.run_dir / "report.html").stat().st_size > 0


@pytest.mark.parametrize("suite, label", [(REJECT_SUITE, "smoke-index-write-rejected"),
                                          ("outsider", "index-write-outsider")])
def test_a_round_whose_every_transaction_is_refused_fails_the_run_though_caliper_exits_0(run, suite, label):
    run_suite, _server, _node = run
    result = run_suite(suite)
    assert result.results["caliper"]["exit_code"] == 0
    [rejected] = result.results["rounds"]
    assert rejected["submitted"] == rejected["failed"] == 4 and rejected["succeeded"] == 0
    assert rejected["latency_ms"] is None and rejected["errors"]
    assert len(result.problems) == 1
    assert result.problems[0].startswith(f"round 0 ({label}): 4 of 4 transactions failed (first: ")


def test_baseline_rounds_run_on_the_node_chaincode_through_the_fake_gateway(run):
    run_suite, server, node = run
    if node is None:
        pytest.skip(f"the Node baseline cannot run here: {bench.baseline_unavailable()}")
    fabric = server.fabric
    python_keys = set(fabric.world_state("hospital-a-local"))
    result = run_suite("node-baseline")
    assert result.problems == [], (result.run_dir / "caliper.log").read_text()[-3000:]
    [read] = result.results["rounds"]
    assert read["channel_kind"] == "baseline"
    assert read["submitted"] == read["succeeded"] == 6 and read["latency_ms"]["p50"] > 0  # every record came back
    assert set(read["cpu"]) == {"caliper", "gateway", "chaincode-node"}
    assert result.results["cpu"]["chaincode-node"]["seconds"] > 0  # the Node process ran the transactions
    # The 3 records were written by the Node chaincode, in its own namespace; medfabric's state is untouched.
    node_records = [key for _, key in fabric.world_state("hospital-a-local", "medfabric-node")
                    if key.startswith("\x00emr\x00node-")]
    assert len(node_records) == 3
    assert set(fabric.world_state("hospital-a-local")) == python_keys
