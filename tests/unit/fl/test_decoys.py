"""The decoy check's client side without a ledger: the sealed challenge, the commitment the contract opens, the
server's input rules, and that a server guessing which input is real does no better than chance."""

from __future__ import annotations

import numpy as np
import pytest

from medfabric.fl import data, model
from medfabric.fl.challenges import DecoyCheckError, guess_rate, new_challenge
from medfabric.fl.diagnosis import DiagnosisError, Diagnoser, inputs_sha256, parse_inputs
from medfabric_chaincode.contracts.decoy import commitment_of

DOMAINS = ["hospital-a", "hospital-b", "hospital-c"]


@pytest.fixture(scope="module")
def split():
    return data.split(DOMAINS)


def test_a_challenge_hides_x0_among_distinct_labelled_decoys(split):
    pool = split.test
    x0 = split.shares["hospital-b"].features[0]

    sealed = new_challenge(x0, pool, 9, np.random.default_rng(3))

    assert len(sealed.inputs) == len(sealed.labels) == 10
    assert sealed.labels[sealed.real_index] is None and sealed.inputs[sealed.real_index] == list(x0)
    decoys = [tuple(row) for i, row in enumerate(sealed.inputs) if i != sealed.real_index]
    assert len(set(decoys)) == 9
    rows = {tuple(row): label for row, label in zip(pool.features.tolist(), pool.labels.tolist())}
    assert all(rows[tuple(row)] == sealed.labels[i] for i, row in enumerate(sealed.inputs) if i != sealed.real_index)
    # the contract recomputes exactly this commitment from the reveal
    assert sealed.commitment == commitment_of(sealed.labels, sealed.real_index, sealed.salt)


def test_the_real_input_lands_anywhere(split):
    rng = np.random.default_rng(5)
    positions = {new_challenge(split.test.features[0], split.test, 9, rng).real_index for _ in range(200)}

    assert positions == set(range(10))


def test_too_many_decoys_or_a_wrong_input_size_is_one_line(split):
    small = data.Share(split.test.features[:3], split.test.labels[:3])
    with pytest.raises(DecoyCheckError, match="--decoys must be from 1 to 3"):
        new_challenge(split.test.features[0], small, 9)
    with pytest.raises(DecoyCheckError, match="the input must have 30 features"):
        new_challenge(np.zeros(29), split.test, 2)


def diagnoser(split) -> Diagnoser:
    scaler = model.Scaler.fit(split.shares["hospital-a"].features)
    pooled = split.pooled()
    weights = model.train(model.initial_weights(30), scaler.apply(pooled.features), pooled.labels, 0.1, 30)
    return Diagnoser("t", 1, weights, scaler, "00" * 32)


@pytest.mark.parametrize("guesser", ["most confident", "least confident", "farthest from the others"])
def test_a_server_guessing_the_real_input_does_no_better_than_chance(split, guesser):
    server = diagnoser(split)

    def guess(inputs: np.ndarray) -> int:
        p = model.probabilities(server.weights, server.scaler.apply(inputs))
        if guesser == "most confident":
            return int(np.argmax(np.abs(p - 0.5)))
        if guesser == "least confident":
            return int(np.argmin(np.abs(p - 0.5)))
        scaled = server.scaler.apply(inputs)
        return int(np.argmax(np.linalg.norm(scaled - scaled.mean(axis=0), axis=1)))

    rate = guess_rate(split.test, 9, 1000, guess, np.random.default_rng(11))

    assert abs(rate - 1 / 10) < 0.03  # 1,000 checks: chance is 0.1 with a standard deviation of 0.0095


@pytest.mark.parametrize(
    "document, problem",
    [
        ([], "the body must be a JSON object"),
        ({"inputs": []}, "'inputs' must be a list of 1 to 1001 inputs"),
        ({"inputs": [[1.0] * 29]}, "inputs[0] must be a list of 30 numbers"),
        ({"inputs": [[True] * 30]}, "inputs[0] must be a list of 30 numbers"),
        ({"inputs": [[1.0] * 30], "labels": [1]}, "unknown field 'labels'"),
        ({"inputs": [[1e308 * 10] * 30]}, "inputs must be finite numbers"),
    ],
)
def test_a_diagnosis_request_is_checked_naming_what_is_wrong(document, problem):
    with pytest.raises(DiagnosisError, match=problem.replace("[", r"\[").replace("]", r"\]")):
        parse_inputs(document, 30)


def test_the_inputs_hash_is_of_their_canonical_json():
    assert inputs_sha256([[1.0, 2.5]]) == inputs_sha256([[1.0, 2.5]]) != inputs_sha256([[2.5, 1.0]])
