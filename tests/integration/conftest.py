"""A real consortium for the integration tests: started once, stopped at the end.

The network runs from a private build folder and its own port range, so it
never touches a consortium the developer has running. It is real Fabric:
peers, orderers (Raft and SmartBFT), the Python chaincode servers and the data
services, as `up` starts them, from the binaries `setup` finds (FABRIC_BIN,
the recorded or cached copy, a build, the release tarball). There is no
stand-in: when the consortium cannot start, every test that needs it fails in
CI (CI set) and is skipped elsewhere, with the reason ops gave.

When a test fails, the tail of the log of every node that is no longer
running is added to its report, so a node that died says why.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest

from medfabric.consortium.layout import NetworkLayout
from medfabric.consortium.topology import Topology, load_topology

from ..requirements import required
from ..topologies import write_topology

INTEGRATION_BASE_PORT = 17000
LOG_TAIL_LINES = 30


@dataclass(frozen=True)
class Network:
    """The running consortium the tests act in."""

    topology: Topology
    layout: NetworkLayout
    env: dict[str, str]

    def __iter__(self):  # (topology, layout, env), as the tests unpack it
        return iter((self.topology, self.layout, self.env))


_started: list[Network] = []  # the consortium once up, for the failure reports


def _ops(args: list[str], env: dict[str, str], timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "medfabric_ops", *args],
        env=env, capture_output=True, text=True, timeout=timeout,
    )


@pytest.fixture(scope="session")
def consortium(tmp_path_factory) -> Iterator[Network]:
    """(topology, layout, env) of a running real consortium: peers, orderers, channels, chaincode, data services."""
    yield from running_consortium(tmp_path_factory.mktemp("consortium"), INTEGRATION_BASE_PORT)


def running_consortium(workdir: Path, base_port: int, public: dict | None = None) -> Iterator[Network]:
    """Set up and start the default consortium at `base_port` (its public channel changed by `public`) in
    `workdir`; yield it; clean it away."""
    topology_file = workdir / "topology.yaml"
    write_topology(topology_file, base_port, public)
    env = dict(os.environ, MEDFABRIC_BUILD_DIR=str(workdir / "build"), MEDFABRIC_TOPOLOGY=str(topology_file))
    setup = _ops(["setup", "--topology", str(topology_file)], env, timeout=1200)
    if setup.returncode != 0:
        reason = (setup.stderr.strip().splitlines() or ["setup failed with no output"])[-1]
        required(f"the real consortium cannot start, integration tests not run: {reason}")
    network = None
    try:
        up = _ops(["up", "--topology", str(topology_file)], env, timeout=600)
        if up.returncode != 0:
            pytest.fail(f"`medfabric network up` failed (exit {up.returncode}):\n{up.stdout[-3000:]}\n"
                        f"{up.stderr[-5000:]}", pytrace=False)
        network = Network(load_topology(topology_file), NetworkLayout(workdir / "build"), env)
        _started.append(network)
        yield network
    finally:
        if network in _started:
            _started.remove(network)
        cleaned = _ops(["clean", "--topology", str(topology_file)], env, timeout=300)
        if cleaned.returncode != 0:  # a consortium left running would hold its ports for the next run
            pytest.fail(f"`medfabric network clean` failed: {cleaned.stderr.strip()[-2000:]}", pytrace=False)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" and report.failed:
        for network in _started:
            for name, tail in _dead_node_logs(network):
                report.sections.append((f"log of {name} (not running)", "\n".join(tail)))


def _dead_node_logs(network: Network) -> list[tuple[str, list[str]]]:
    """(name, last log lines) of every process `up` started that is no longer alive."""
    from medfabric_ops.process import Supervisor

    supervisor = Supervisor(network.layout)
    return [(status.name, supervisor.log_tail(status.name, LOG_TAIL_LINES))
            for status in supervisor.status() if not status.alive]


@pytest.fixture
def ops(consortium):
    """Run an ops CLI command against the test consortium."""
    topology, _layout, env = consortium

    def run(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
        return _ops([*args, "--topology", str(topology.source)], env, timeout)

    return run


@pytest.fixture
def medfabric_cli(consortium):
    """Run the `medfabric` CLI against the test consortium."""
    _topology, _layout, env = consortium

    def run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "medfabric.cli", *args],
            env=env, capture_output=True, text=True, timeout=timeout,
        )

    return run
