"""Fixtures shared by the test folders."""

from __future__ import annotations

import pytest

from medfabric.consortium.layout import NetworkLayout
from medfabric.consortium.topology import load_topology
from medfabric_ops.crypto_material import generate_crypto


@pytest.fixture(scope="session")
def crypto_layout(tmp_path_factory) -> NetworkLayout:
    """A crypto tree for the default topology (ports play no part in it), made once per test session."""
    layout = NetworkLayout(tmp_path_factory.mktemp("build"))
    generate_crypto(load_topology(), layout)
    return layout


@pytest.fixture(scope="session")
def fabric_defaults():
    """Fabric's own sampleconfig, found with the binaries ($FABRIC_BIN, or where `make setup` recorded them).

    Without it rendering cannot be tested: a failure in CI, which always has the binaries, a skip elsewhere."""
    from medfabric_ops.binaries import PINNED_VERSION, find_binaries
    from medfabric_ops.render import FabricDefaults

    from .requirements import required

    binaries = find_binaries(PINNED_VERSION)
    if binaries is None:
        required("Fabric's sampleconfig is not found: set FABRIC_BIN (the release's bin/, config/ beside it)")
    return FabricDefaults.load(binaries.config_dir)


@pytest.fixture(scope="session", autouse=True)
def domain_msps_binding():
    """Every chaincode server (in-process or a child) checks domains against the consortium's binding; the
    tests' identities are those of the default topology, so its binding is the one to serve."""
    import os

    from medfabric_chaincode.contracts.common import DOMAIN_MSPS_VARIABLE
    from medfabric_ops.lifecycle import domain_msps_json

    previous = os.environ.get(DOMAIN_MSPS_VARIABLE)
    os.environ[DOMAIN_MSPS_VARIABLE] = domain_msps_json(load_topology())
    yield
    if previous is None:
        os.environ.pop(DOMAIN_MSPS_VARIABLE, None)
    else:
        os.environ[DOMAIN_MSPS_VARIABLE] = previous
