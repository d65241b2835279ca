"""The decomposition with one process per duty node, over TCP on 127.0.0.1: the same answer as in process."""

from __future__ import annotations

import numpy as np
import pytest

from medfabric.market import admm, distributed
from medfabric.market.problem import MarketError, random_problem


@pytest.mark.parametrize("scenario", admm.SCENARIOS)
def test_one_process_per_duty_node_gives_the_in_process_answer(scenario):
    problem = random_problem(120, 3, seed=11)

    apart = distributed.solve_distributed(problem, scenario)
    together = admm.solve(problem, scenario)

    assert apart.converged and apart.iterations == together.iterations
    assert np.abs(apart.prices - together.prices).max() <= 1e-9
    assert apart.primal == together.primal


def test_frames_carry_named_float_arrays_and_nothing_else():
    message = {"s": np.arange(3.0), "primal": 1.5, "grid": np.ones((2, 2))}

    decoded = distributed.decode(distributed.encode(message))

    assert sorted(decoded) == ["grid", "primal", "s"]
    assert decoded["primal"].shape == () and float(decoded["primal"]) == 1.5
    assert np.array_equal(decoded["grid"], np.ones((2, 2)))
    with pytest.raises(MarketError, match="trailing bytes"):
        distributed.decode(distributed.encode(message) + b"\0")
