"""The crypto tree the harness tests serve identities from: the session's (tests/conftest.py)."""

from __future__ import annotations

import pytest

from medfabric.consortium.layout import NetworkLayout


@pytest.fixture(scope="session")
def layout(crypto_layout: NetworkLayout) -> NetworkLayout:
    return crypto_layout
