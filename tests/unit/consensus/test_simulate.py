"""The message-level simulation: its queues against a plain loop, its message counts against the model, and the
growth of latency with N, flat against clustered."""

from __future__ import annotations

import numpy as np
import pytest

from medfabric.consensus import simulate
from medfabric.consensus.nodes import ConsensusError


def test_the_shared_fifo_matches_a_plain_loop():
    rng = np.random.default_rng(0)
    enter = np.sort(rng.uniform(0, 1, 200))

    fast = simulate._fifo(enter, 0.01, free_at=0.3)

    free, slow = 0.3, []
    for moment in enter:
        free = max(free, moment) + 0.01
        slow.append(free)
    assert np.allclose(fast, slow)


def test_the_receivers_queues_match_a_plain_loop():
    rng = np.random.default_rng(1)
    dst = rng.integers(0, 5, 300)
    arrival = rng.uniform(0, 1, 300)
    free_at = rng.uniform(0, 0.5, 5)

    fast = simulate._per_receiver_fifo(dst, arrival, 0.004, free_at)

    slow = np.empty(300)
    for node in range(5):
        free = free_at[node]
        for index in np.flatnonzero(dst == node)[np.argsort(arrival[dst == node], kind="stable")]:
            free = max(free, arrival[index]) + 0.004
            slow[index] = free
    assert np.allclose(fast, slow)


@pytest.mark.parametrize("nodes, groups", [(16, 1), (64, 1), (64, 4), (100, 8), (160, 10)])
def test_the_simulation_sends_what_the_model_counts(nodes, groups):
    result = simulate.run_instance(nodes, groups, simulate.Settings(), np.random.default_rng(2))

    assert result.messages == simulate.expected_messages(nodes, groups)
    assert np.isfinite(result.latency_s) and result.latency_s > 0


def test_latency_grows_about_quadratically_flat_and_far_more_slowly_clustered():
    points, _seconds = simulate.sweep([40, 80, 160], [1, 10], repetitions=3, seed=0)
    latency = {(p.nodes, p.groups): p.latency_mean for p in points}

    assert latency[(160, 1)] / latency[(80, 1)] > 3.0  # doubling N: ~4x for O(N^2)
    assert latency[(160, 10)] < latency[(160, 1)] / 5


def test_silent_nodes_up_to_f_are_tolerated_and_more_are_refused():
    rng = np.random.default_rng(3)
    honest = simulate.run_instance(64, 4, simulate.Settings(), rng)
    faulty = simulate.run_instance(64, 4, simulate.Settings(faulty=5), rng)

    assert np.isfinite(faulty.latency_s) and faulty.messages < honest.messages
    with pytest.raises(ConsensusError, match="faulty must be at most f = 5 for a group of 16, not 6"):
        simulate.run_instance(64, 4, simulate.Settings(faulty=6), rng)


def test_a_sweep_is_the_same_for_the_same_seed():
    first, _ = simulate.sweep([32], [1, 4], repetitions=4, seed=9)
    again, _ = simulate.sweep([32], [1, 4], repetitions=4, seed=9)

    assert [p.to_json() for p in first] == [p.to_json() for p in again]
