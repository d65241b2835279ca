"""What tests do when something they need is missing: fail in CI (CI set), where it must be there; skip elsewhere."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def required(reason: str) -> NoReturn:
    """Fail the test (CI) or skip it (a developer's machine), saying what is missing."""
    if os.environ.get("CI"):
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)
