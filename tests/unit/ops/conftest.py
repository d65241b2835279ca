"""Fixtures shared by the ops tests: the default topology and a layout under tmp_path."""

import pytest

from medfabric.consortium.layout import NetworkLayout
from medfabric.consortium.topology import load_topology


@pytest.fixture
def topology():
    return load_topology()


@pytest.fixture
def layout(tmp_path):
    return NetworkLayout(tmp_path / "network")


@pytest.fixture(scope="session")
def rendered_layout(tmp_path_factory, fabric_defaults) -> NetworkLayout:
    """What `medfabric network render` leaves in build/network for the default topology, in a temporary folder."""
    from medfabric_ops import render
    from medfabric_ops.crypto_material import generate_crypto

    topology = load_topology()
    layout = NetworkLayout(tmp_path_factory.mktemp("rendered") / "network")
    generate_crypto(topology, layout)
    render.render_network(topology, layout, fabric_defaults)
    return layout
