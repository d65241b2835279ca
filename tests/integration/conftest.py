"""A real consortium for the integration tests: started once, stopped at the end.

The network runs from a private build folder and its own port range, so it
never touches a consortium the developer has running. Without Fabric binaries
(FABRIC_BIN, the .fabric cache, or a successful build from the Go module) the
tests that need peers and orderers (the `consortium` fixture) are skipped with
the reason ops gave.

Tests that take the `consortium_or_rehearsal` fixture (EMR sharing, access
rules, the demo) then run as a REHEARSAL instead, and say so in pytest's
summary: the Gateway of
tests/caliper/gateway_server.py (TLS on each duty peer's address, identities,
signatures and channel membership checked as a peer does, the real contracts
on the real chaincode runtime) stands in for the peers and orderers, and each
domain's real data service runs as `up` starts it. What a rehearsal cannot
show: ordering, consensus, block propagation between peers, endorsement
policies. MEDFABRIC_INTEGRATION=rehearsal forces it; =real refuses it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest

from medfabric.layout import NetworkLayout
from medfabric.topology import Topology, load_topology

from ..processes import stop_process
from ..topologies import topology_with_free_ports, write_topology

INTEGRATION_BASE_PORT = 17000
PROJECT_ROOT = Path(__file__).resolve().parents[2]
REHEARSAL_READY_S = 60


@dataclass(frozen=True)
class Network:
    """The consortium the tests act in: the real one, or a rehearsal (`unavailable`: why the real one is not)."""

    topology: Topology
    layout: NetworkLayout
    env: dict[str, str]
    rehearsal: bool
    unavailable: str | None = None

    def __iter__(self):  # (topology, layout, env), as the tests unpack it
        return iter((self.topology, self.layout, self.env))


_rehearsals: list[str] = []  # why each rehearsal ran, for the terminal summary


def _ops(args: list[str], env: dict[str, str], timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "medfabric_ops", *args],
        env=env, capture_output=True, text=True, timeout=timeout,
    )


def _env(workdir: Path, topology_file: Path) -> dict[str, str]:
    return dict(os.environ, MEDFABRIC_BUILD_DIR=str(workdir / "build"), MEDFABRIC_TOPOLOGY=str(topology_file))


@pytest.fixture(scope="session")
def network(tmp_path_factory) -> Iterator[Network]:
    """The real consortium when it can be started, else a rehearsal (see the module's docstring)."""
    wanted = os.environ.get("MEDFABRIC_INTEGRATION", "")
    workdir = tmp_path_factory.mktemp("consortium")
    topology_file = workdir / "topology.yaml"
    write_topology(topology_file, INTEGRATION_BASE_PORT)
    env = _env(workdir, topology_file)
    reason = "MEDFABRIC_INTEGRATION=rehearsal"
    if wanted != "rehearsal":
        setup = _ops(["setup", "--topology", str(topology_file)], env, timeout=1200)
        if setup.returncode == 0:
            up = _ops(["up", "--topology", str(topology_file)], env, timeout=600)
            try:
                assert up.returncode == 0, f"network up failed:\n{up.stdout[-3000:]}\n{up.stderr[-3000:]}"
                yield Network(load_topology(topology_file), NetworkLayout(workdir / "build"), env, rehearsal=False)
            finally:
                _ops(["clean", "--topology", str(topology_file)], env, timeout=300)
            return
        reason = (setup.stderr.strip().splitlines() or ["no output"])[-1]
        if wanted == "real":
            pytest.skip(f"Fabric binaries unavailable, integration tests not run: {reason}")
    with _rehearsal(tmp_path_factory.mktemp("rehearsal")) as (topology, layout, rehearsal_env):
        _rehearsals.append(reason)
        yield Network(topology, layout, rehearsal_env, rehearsal=True, unavailable=reason)


@pytest.fixture(scope="session")
def consortium(network: Network) -> Network:
    """(topology, layout, env) of a running real consortium: peers, orderers, channels, chaincode, data services."""
    if network.rehearsal:
        pytest.skip(f"Fabric binaries unavailable, integration tests not run: {network.unavailable}")
    return network


@pytest.fixture(scope="session")
def consortium_or_rehearsal(network: Network) -> Network:
    """(topology, layout, env) of the real consortium, or of the rehearsal."""
    return network


class _Rehearsal:
    """The fake Gateway (a child process) and the data services (the supervisor's, as `up` starts them)."""

    def __init__(self, workdir: Path):
        from medfabric_ops.crypto_material import generate_crypto

        self.topology_file = workdir / "topology.yaml"
        self.topology = topology_with_free_ports(self.topology_file, lambda topology: [
            port for domain in topology.domains for port in (domain.duty_peer.listen_port, domain.data_service_port)])
        self.layout = NetworkLayout(workdir / "build")
        self.env = _env(workdir, self.topology_file)
        generate_crypto(self.topology, self.layout)
        self.log = workdir / "gateway.log"
        self.gateway: subprocess.Popen | None = None

    def start(self) -> None:
        from medfabric_ops.data_services import data_service_name, identity_url, start_data_service
        from medfabric_ops.process import Supervisor, http_ok

        with open(self.log, "wb") as log:
            self.gateway = subprocess.Popen(
                [sys.executable, "-m", "tests.caliper.gateway_server", "--topology", str(self.topology_file)],
                cwd=PROJECT_ROOT, env=self.env, stdout=subprocess.PIPE, stderr=log,
            )
        ready = self.gateway.stdout.readline().decode()
        if not ready.startswith("ready:"):
            raise RuntimeError(f"the rehearsal Gateway did not start: {self.log.read_text()[-2000:]}")
        supervisor = Supervisor(self.layout)
        for domain in self.topology.domains:
            start_data_service(supervisor, self.topology, self.layout, domain)
        for domain in self.topology.domains:
            supervisor.wait_ready(data_service_name(domain), http_ok(identity_url(self.topology, domain)),
                                  REHEARSAL_READY_S)

    def stop(self) -> None:
        from medfabric_ops.process import Supervisor

        Supervisor(self.layout).stop_all()
        if self.gateway is not None:
            stop_process(self.gateway)


@contextmanager
def _rehearsal(workdir: Path) -> Iterator[tuple[Topology, NetworkLayout, dict[str, str]]]:
    """(topology, layout, env) of a started rehearsal, stopped on exit."""
    rehearsal = _Rehearsal(workdir)
    try:
        rehearsal.start()
        yield rehearsal.topology, rehearsal.layout, rehearsal.env
    finally:
        rehearsal.stop()


def pytest_terminal_summary(terminalreporter) -> None:
    for reason in _rehearsals:
        terminalreporter.write_line(
            "integration: the EMR sharing tests ran as a REHEARSAL (fake Gateway over the real contracts, real data "
            f"services; no Fabric peers or orderers), because the real consortium is unavailable: {reason}")


@pytest.fixture
def ops(consortium):
    """Run an ops CLI command against the test consortium."""
    topology, _layout, env = consortium

    def run(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
        return _ops([*args, "--topology", str(topology.source)], env, timeout)

    return run


@pytest.fixture
def medfabric_cli(consortium_or_rehearsal):
    """Run the `medfabric` CLI against the test consortium (the real one, or the rehearsal)."""
    _topology, _layout, env = consortium_or_rehearsal

    def run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "medfabric.cli", *args],
            env=env, capture_output=True, text=True, timeout=timeout,
        )

    return run
