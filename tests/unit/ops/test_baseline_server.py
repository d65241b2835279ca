"""The Node baseline's server as `up` starts it: the real fabric-chaincode-node on caliper/baseline, under the
supervisor (skipped without node or caliper/baseline/node_modules)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from medfabric_ops import lifecycle
from medfabric_ops.lifecycle import BASELINE_DIR, baseline_unavailable, node_chaincode_command, start_chaincode_server
from medfabric_ops.process import Supervisor, tcp_open


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_the_baseline_server_starts_listens_and_is_recognised_by_the_supervisor(topology, layout, monkeypatch):
    missing = baseline_unavailable()
    if missing:
        pytest.skip(f"the Node baseline cannot run here: {missing}")
    port = free_port()
    domain = topology.domains[0]
    baseline = topology.baseline
    monkeypatch.setattr(type(topology), "chaincode_port", lambda self, chaincode, d: port)
    supervisor = Supervisor(layout)
    name = lifecycle.chaincode_process_name(domain, baseline)
    pid = start_chaincode_server(supervisor, topology, layout, domain, "medfabric-node_0.1:" + "0" * 64, baseline)
    try:
        supervisor.wait_ready(name, tcp_open("127.0.0.1", port), 30)
        assert supervisor.is_running(name)
        assert start_chaincode_server(supervisor, topology, layout, domain, "ignored", baseline) == pid  # kept
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[:-1]
        assert [a.decode() for a in argv[1:]] == node_chaincode_command(
            BASELINE_DIR, f"127.0.0.1:{port}", "medfabric-node_0.1:" + "0" * 64)[1:]
    finally:
        assert supervisor.stop(name)
    assert not supervisor.is_running(name)


def test_without_node_modules_the_reason_names_the_folder_and_the_fix(tmp_path):
    reason = baseline_unavailable(needs_node=False, baseline_dir=tmp_path / "baseline")
    assert reason == f"{tmp_path / 'baseline'}/node_modules is not installed (`npm ci` there, or `make baseline-deps`)"


def test_without_node_the_reason_says_so(monkeypatch):
    monkeypatch.setattr(lifecycle.shutil, "which", lambda command: None)
    assert baseline_unavailable() == "node is not installed (Node.js 20 runs it)"
    assert baseline_unavailable(needs_node=False) in (None, "caliper/baseline/node_modules is not installed "
                                                            "(`npm ci` there, or `make baseline-deps`)")
