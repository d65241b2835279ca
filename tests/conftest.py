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
    import os

    from medfabric_ops.binaries import PINNED_VERSION, find_binaries
    from medfabric_ops.render import FabricDefaults

    binaries = find_binaries(PINNED_VERSION)
    if binaries is None:
        reason = "Fabric's sampleconfig is not found: set FABRIC_BIN (the release's bin/, config/ beside it)"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    return FabricDefaults.load(binaries.config_dir)
