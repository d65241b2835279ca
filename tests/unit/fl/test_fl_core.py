"""medfabric.fl without a ledger: canonical weights, the split, local rounds, and every aggregator's rule."""

from __future__ import annotations

import hashlib
import struct

import numpy as np
import pytest

from medfabric.fl import data, model, training, weights
from medfabric.fl.aggregators import (
    AggregationError, CoordinateMedian, FedAvg, Krum, ModelUpdate, TrimmedMean, aggregator
)

DOMAINS = ["hospital-a", "hospital-b", "hospital-c"]


@pytest.fixture(scope="module")
def split():
    return data.split(DOMAINS)


@pytest.fixture(scope="module")
def scaler(split):
    return model.Scaler.fit(split.shares["hospital-a"].features)


def update(domain: str, values, n: int = 10) -> ModelUpdate:
    return ModelUpdate(domain, np.asarray(values, dtype=np.float64), n)


def test_canonical_bytes_are_the_header_and_little_endian_float64():
    array = np.array([1.0, -0.5, 2.25])

    encoded = weights.to_bytes(array)

    assert encoded == b"MFW1" + struct.pack("<IQ", 1, 3) + struct.pack("<3d", 1.0, -0.5, 2.25)
    assert weights.weights_sha256(array) == hashlib.sha256(encoded).hexdigest()
    assert np.array_equal(weights.from_bytes(encoded), array)


@pytest.mark.parametrize(
    "bad, problem",
    [
        (b"XXXX" + bytes(20), "the MFW1 header is missing"),
        (b"MFW1" + struct.pack("<IQ", 1, 3) + bytes(16), "16 value bytes for shape (3,)"),
        (b"MFW1" + struct.pack("<IQ", 1, 1) + struct.pack("<d", float("nan")), "must be finite"),
    ],
)
def test_bytes_that_are_not_weights_are_named(bad, problem):
    with pytest.raises(weights.WeightsError, match=problem.replace("(", r"\(").replace(")", r"\)")):
        weights.from_bytes(bad)


def test_weights_that_cannot_be_written_are_refused():
    with pytest.raises(weights.WeightsError, match="float64"):
        weights.to_bytes(np.zeros(3, dtype=np.float32))
    with pytest.raises(weights.WeightsError, match="finite"):
        weights.to_bytes(np.array([np.inf]))


def test_the_split_is_seeded_stratified_non_iid_and_disjoint(split):
    again = data.split(DOMAINS)
    other = data.split(DOMAINS, seed=7)

    assert [again.shares[d].digest() for d in DOMAINS] == [split.shares[d].digest() for d in DOMAINS]
    assert again.test.digest() == split.test.digest() != other.test.digest()
    sizes = {d: len(split.shares[d]) for d in DOMAINS}
    assert sum(sizes.values()) + len(split.test) == 569 and min(sizes.values()) >= data.MIN_SHARE
    benign_shares = [split.shares[d].labels.mean() for d in DOMAINS]
    assert max(benign_shares) - min(benign_shares) > 0.2  # label skew: hospitals see different mixes
    assert abs(split.test.labels.mean() - 357 / 569) < 0.01  # the test set keeps the overall mix
    rows = {row.tobytes() for share in [split.test, *split.shares.values()] for row in share.features}
    assert len(rows) == 569  # no sample in two places


def test_a_share_saved_in_its_folder_loads_back_the_same(split, tmp_path):
    data.save_share(tmp_path / "hospital-b", split.shares["hospital-b"])

    assert data.load_share(tmp_path / "hospital-b").digest() == split.shares["hospital-b"].digest()
    with pytest.raises(FileNotFoundError, match="no training data at .*hospital-c"):
        data.load_share(tmp_path / "hospital-c")


def test_a_local_round_is_the_same_to_the_bit_and_improves_its_own_loss(split, scaler):
    start = model.initial_weights(30)
    first = training.local_round("hospital-b", split.shares["hospital-b"], scaler, start)
    second = training.local_round("hospital-b", split.shares["hospital-b"], scaler, start)

    assert weights.to_bytes(first.update.weights) == weights.to_bytes(second.update.weights)
    features = scaler.apply(split.shares["hospital-b"].features)
    assert first.loss < model.loss(start, features, split.shares["hospital-b"].labels)
    assert first.update.n_samples == len(split.shares["hospital-b"])


def test_the_federated_model_reaches_the_target_on_the_held_out_set(split, scaler):
    _, history = training.federated(split, aggregator("fedavg"), 30, scaler)

    assert history.accuracy[0] < 0.7 and max(history.accuracy) >= 0.95


def test_one_local_epoch_of_fedavg_is_centralised_gradient_descent(split, scaler):
    federated, _ = training.federated(split, FedAvg(), 5, scaler, epochs=1)
    pooled = split.pooled()
    central = model.initial_weights(30)
    for _ in range(5):
        central = model.train(central, scaler.apply(pooled.features), pooled.labels, training.DEFAULT_LEARNING_RATE, 1)

    assert np.allclose(federated, central, rtol=1e-12, atol=1e-14)


def test_fedavg_weighs_by_capped_counts_in_domain_order():
    updates = [update("hospital-b", [4.0, 0.0], 300), update("hospital-a", [1.0, 2.0], 100)]

    assert np.array_equal(FedAvg().aggregate(updates), 0.25 * np.array([1.0, 2.0]) + 0.75 * np.array([4.0, 0.0]))
    assert np.array_equal(FedAvg(max_samples=100).aggregate(updates), 0.5 * np.array([1.0, 2.0]) +
                          0.5 * np.array([4.0, 0.0]))


def test_the_robust_aggregators_ignore_one_outlier():
    honest = [update("hospital-a", [1.0, 1.0]), update("hospital-b", [1.2, 0.8]), update("hospital-d", [0.9, 1.1])]
    outlier = update("hospital-c", [1000.0, -1000.0], 10**6)
    updates = [*honest, outlier]

    middle = np.array([(1.0 + 1.2) / 2, (0.8 + 1.0) / 2])  # per coordinate, the outlier and the far end dropped
    assert np.array_equal(CoordinateMedian().aggregate(updates), middle)
    assert np.array_equal(TrimmedMean().aggregate(updates), middle)
    assert any(np.array_equal(Krum().aggregate(updates), u.weights) for u in honest)
    assert FedAvg().aggregate(updates)[0] > 900


def test_aggregation_does_not_depend_on_the_order_updates_arrive_in():
    rng = np.random.default_rng(1)
    updates = [update(f"hospital-{c}", rng.normal(size=31), int(n)) for c, n in zip("abcde", rng.integers(1, 99, 5))]

    for name in ("fedavg", "median", "trimmed-mean", "krum"):
        chosen = aggregator(name)
        assert weights.to_bytes(chosen.aggregate(updates)) == weights.to_bytes(chosen.aggregate(updates[::-1]))


@pytest.mark.parametrize(
    "updates, chosen, problem",
    [
        ([], FedAvg(), "needs at least 1 update, got 0"),
        ([update("hospital-a", [1.0]), update("hospital-a", [2.0])], FedAvg(), "two updates of one domain"),
        ([update("hospital-a", [1.0]), update("hospital-b", [1.0, 2.0])], FedAvg(), "not float64 of shape"),
        ([update("hospital-a", [np.nan])], CoordinateMedian(), "NaN or infinite"),
        ([update("hospital-a", [1.0], 0)], FedAvg(), "reports 0 samples"),
        ([update("hospital-a", [1.0]), update("hospital-b", [1.0])], TrimmedMean(), "needs at least 3 updates"),
    ],
)
def test_updates_an_aggregator_cannot_combine_are_named(updates, chosen, problem):
    with pytest.raises(AggregationError, match=problem):
        chosen.aggregate(updates)


def test_an_unknown_aggregator_lists_the_known_ones():
    with pytest.raises(AggregationError, match="no aggregator 'mean' \\(known: fedavg, median, trimmed-mean, krum\\)"):
        aggregator("mean")


@pytest.mark.parametrize("attack", training.ATTACKS)
def test_each_attack_changes_what_the_poisoned_hospital_reports(split, scaler, attack):
    start = model.initial_weights(30)
    honest = training.local_round("hospital-c", split.shares["hospital-c"], scaler, start)
    poisoned = training.local_round("hospital-c", split.shares["hospital-c"], scaler, start, attack=attack)

    if attack == "inflated":
        assert poisoned.update.n_samples == training.INFLATION * honest.update.n_samples
        assert np.array_equal(poisoned.update.weights, honest.update.weights)
    else:
        assert not np.allclose(poisoned.update.weights, honest.update.weights)
