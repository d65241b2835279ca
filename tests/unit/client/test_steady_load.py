"""Recovery time of a steady load around a fault, from its submits' end times (no network)."""

from medfabric.bench.steady import Submit, recovery_seconds


def submits(ends):
    return [Submit(f"r{i}", end - 0.1, end, True) for i, end in enumerate(ends)]


def test_the_rate_is_back_at_the_end_of_the_first_second_with_half_the_rate_before():
    before = [i / 10 for i in range(0, 100)]  # 10 per second up to t = 10
    after = [15 + i / 10 for i in range(0, 50)]  # nothing from 10 to 15, then 10 per second again
    assert recovery_seconds(submits(before + after), fault_at=10.0) == 5.5


def test_a_rate_that_never_comes_back_is_none_and_failures_do_not_count():
    load = submits([i / 10 for i in range(0, 100)]) + [Submit("x", 11, 12 + i / 10, False) for i in range(50)]
    assert recovery_seconds(load, fault_at=10.0) is None


def test_no_load_before_the_fault_is_none():
    assert recovery_seconds(submits([20.0, 21.0]), fault_at=10.0) is None
