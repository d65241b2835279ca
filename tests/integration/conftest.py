"""A real consortium for the integration tests: started once, stopped at the end.

The network runs from a private build folder and its own port range, so it
never touches a consortium the developer has running. Without Fabric binaries
(FABRIC_BIN, the .fabric cache, or a successful build from the Go module) the
tests are skipped with the reason ops gave.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import yaml

from medfabric.layout import NetworkLayout
from medfabric.topology import DEFAULT_TOPOLOGY, load_topology

INTEGRATION_BASE_PORT = 17000


def _ops(args: list[str], env: dict[str, str], timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "medfabric_ops", *args],
        env=env, capture_output=True, text=True, timeout=timeout,
    )


@pytest.fixture(scope="session")
def consortium(tmp_path_factory):
    """(topology, layout, env) of a running consortium."""
    workdir = tmp_path_factory.mktemp("consortium")
    raw = yaml.safe_load(DEFAULT_TOPOLOGY.read_text())
    raw["base_port"] = INTEGRATION_BASE_PORT
    topology_file = workdir / "topology.yaml"
    topology_file.write_text(yaml.safe_dump(raw))
    env = dict(os.environ, MEDFABRIC_BUILD_DIR=str(workdir / "build"), MEDFABRIC_TOPOLOGY=str(topology_file))

    setup = _ops(["setup", "--topology", str(topology_file)], env, timeout=1200)
    if setup.returncode != 0:
        reason = (setup.stderr.strip().splitlines() or ["no output"])[-1]
        pytest.skip(f"Fabric binaries unavailable, integration tests not run: {reason}")

    up = _ops(["up", "--topology", str(topology_file)], env, timeout=600)
    try:
        assert up.returncode == 0, f"network up failed:\n{up.stdout[-3000:]}\n{up.stderr[-3000:]}"
        yield load_topology(topology_file), NetworkLayout(workdir / "build"), env
    finally:
        _ops(["clean", "--topology", str(topology_file)], env, timeout=300)


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
