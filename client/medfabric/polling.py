"""Waiting for what another peer committed to reach ours: ask again, with a growing pause, for a while."""

from __future__ import annotations

import time
from typing import Callable, TypeVar

T = TypeVar("T")


def awaited(lookup: Callable[[], T | None], wait: float, clock: Callable[[], float] = time.monotonic,
            sleep: Callable[[float], None] = time.sleep) -> T | None:
    """lookup() until it finds something or `wait` seconds have passed, pausing 0.05 s, doubling up to 0.5 s."""
    deadline = clock() + wait
    pause = 0.05
    while (found := lookup()) is None and clock() < deadline:
        sleep(min(pause, max(0.0, deadline - clock())))
        pause = min(pause * 2, 0.5)
    return found
