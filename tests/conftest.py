"""Fixtures shared by the test folders."""

from __future__ import annotations

import pytest

from medfabric.layout import NetworkLayout
from medfabric.topology import load_topology
from medfabric_ops.crypto_material import generate_crypto


@pytest.fixture(scope="session")
def crypto_layout(tmp_path_factory) -> NetworkLayout:
    """A crypto tree for the default topology (ports play no part in it), made once per test session."""
    layout = NetworkLayout(tmp_path_factory.mktemp("build"))
    generate_crypto(load_topology(), layout)
    return layout
