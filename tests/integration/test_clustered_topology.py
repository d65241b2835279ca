"""The topology `medfabric consensus cluster --out` writes comes up with `up` and commits on every channel: 18
nodes in 4 balanced AHC groups (5, 4, 5, 4), a BFT orderer set of each group's size on its local channel, the 4
duty nodes' set on public."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from medfabric.consortium.topology import load_topology

from ..requirements import required

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900, func_only=True)]

BASE_PORT = 19000


def run(module: str, *args: str, env: dict, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", module, *args], env=env, capture_output=True, text=True,
                          timeout=timeout)


def test_the_clustered_topology_comes_up_and_commits_on_every_channel(tmp_path):
    env = dict(os.environ, MEDFABRIC_BUILD_DIR=str(tmp_path / "build"))
    nodes, topology_file = tmp_path / "nodes.csv", tmp_path / "topology.yaml"
    assert run("medfabric.cli", "consensus", "nodes", "--count", "18", "--regions", "4", "--out", str(nodes),
               env=env).returncode == 0
    written = run("medfabric.cli", "consensus", "cluster", "--nodes", str(nodes), "--groups", "4", "--balanced",
                  "--out", str(topology_file), "--base-port", str(BASE_PORT), "--json", env=env)
    assert written.returncode == 0, written.stderr
    assert [len(group["members"]) for group in json.loads(written.stdout)["groups"]] == [5, 4, 5, 4]
    env["MEDFABRIC_TOPOLOGY"] = str(topology_file)
    topology = load_topology(topology_file)
    assert [len(c.orderers) for c in topology.channels] == [5, 4, 5, 4, 4]

    setup = run("medfabric_ops", "setup", "--topology", str(topology_file), env=env, timeout=1200)
    if setup.returncode != 0:
        required(f"the clustered consortium cannot be set up: {setup.stderr.strip()[-500:]}")
    try:
        up = run("medfabric_ops", "up", "--topology", str(topology_file), env=env)
        assert up.returncode == 0, up.stdout[-2000:] + up.stderr[-3000:]
        for channel in topology.channels:
            assert channel.ordering.consensus == "bft"
            domain = channel.domains[0].id
            put = run("medfabric.cli", "bench", "put", "--domain", domain, "--as", "doctor", "--channel",
                      channel.name, "--count", "10", "--concurrency", "2", "--json", env=env)
            assert put.returncode == 0, put.stderr
            assert json.loads(put.stdout)["committed"] == 10, channel.name
    finally:
        cleaned = run("medfabric_ops", "clean", "--topology", str(topology_file), env=env, timeout=300)
        assert cleaned.returncode == 0, cleaned.stderr
