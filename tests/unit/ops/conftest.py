"""Fixtures shared by the ops tests: the default topology and a layout under tmp_path."""

import pytest

from medfabric.layout import NetworkLayout
from medfabric.topology import load_topology


@pytest.fixture
def topology():
    return load_topology()


@pytest.fixture
def layout(tmp_path):
    return NetworkLayout(tmp_path / "network")
