"""The decoy contract: commit to sealed labels, the server's domain answers, the checker reveals; k / s >= t
releases the answer for the real input, anything less is "fail"; every step once, by whom it belongs to."""

from __future__ import annotations

import json

import pytest

from medfabric_chaincode.contracts import ALL_CONTRACTS
from medfabric_chaincode.contracts.decoy import commitment_of

from .actors import A_DOCTOR, B_DOCTOR, C_DOCTOR, caller, ok

SALT = "5a" * 16
LABELS = [1, 0, None, 1, 0, 1, 1, 0, 0, 1]  # real input at 2, nine decoys
REAL = 2


@pytest.fixture
def chain(connect):
    return connect(*ALL_CONTRACTS)


def commit(chain, creator=B_DOCTOR, labels=LABELS, real=REAL, salt=SALT, **changes):
    document = {"challenge_id": "ch-1", "server_domain": "hospital-a", "decoys": len(labels) - 1, "threshold": 0.8,
                "commitment": commitment_of(labels, real, salt), **changes}
    return chain.invoke("decoy:CommitChallenge", json.dumps(document), creator=creator)


def answer(chain, answers, creator=A_DOCTOR, **changes):
    document = {"challenge_id": "ch-1", "answers": answers, "inputs_sha256": "ab" * 32, **changes}
    return chain.invoke("decoy:SubmitAnswers", json.dumps(document), creator=creator)


def reveal(chain, creator=B_DOCTOR, labels=LABELS, real=REAL, salt=SALT):
    document = {"challenge_id": "ch-1", "labels": labels, "real_index": real, "salt": salt}
    return chain.invoke("decoy:Reveal", json.dumps(document), creator=creator)


def with_wrong(count: int, real_answer: int = 1) -> list[int]:
    """Answers that get `count` decoys wrong, and `real_answer` for the real input."""
    answers, wrong = [], 0
    for i, label in enumerate(LABELS):
        if i == REAL:
            answers.append(real_answer)
        elif wrong < count:
            answers.append(1 - label)
            wrong += 1
        else:
            answers.append(label)
    return answers


@pytest.mark.parametrize("wrong, status, released", [(0, "released", 1), (1, "released", 1), (2, "fail", None)])
def test_the_answer_for_the_real_input_is_released_only_at_k_over_s_at_least_t(chain, wrong, status, released):
    ok(commit(chain))
    ok(answer(chain, with_wrong(wrong)))

    concluded = ok(reveal(chain))

    assert (concluded["status"], concluded["correct"], concluded["released_answer"]) == (status, 9 - wrong, released)
    assert ok(chain.invoke("decoy:GetChallenge", "ch-1")) == concluded


def test_seven_of_ten_meets_a_threshold_of_point_seven(chain):
    # 0.7 * 10 is 7.000000000000001 in floating point: the contract compares k / s with t exactly
    labels = [0] * 10 + [None]
    ok(commit(chain, labels=labels, real=10, threshold=0.7))
    ok(answer(chain, [0] * 7 + [1] * 3 + [1]))

    assert ok(reveal(chain, labels=labels, real=10))["status"] == "released"


@pytest.mark.parametrize(
    "step, problem",
    [
        ("answer by another domain", "only an identity of domain hospital-a (HospitalAMSP) may answer challenge ch-1"),
        ("answer twice", "challenge ch-1 is already answered"),
        ("wrong number of answers", "invalid answers: field 'answers' must hold 10 answers, one per input"),
        ("reveal by another", "only the checker of challenge ch-1 reveals it"),
        ("reveal before the answers", "challenge ch-1 is committed: only an answered challenge is revealed"),
        ("labels changed", "the reveal does not open the commitment of challenge ch-1"),
        ("real index moved", "invalid reveal: field 'labels' must be null at real_index and a label everywhere else"),
        ("commit twice", "challenge ch-1 already exists"),
        ("unknown challenge", "challenge ch-9 not found"),
    ],
)
def test_each_step_belongs_to_one_party_once_and_writes_nothing_otherwise(chain, step, problem):
    ok(commit(chain))
    if step in ("answer twice", "reveal by another", "labels changed", "real index moved"):
        ok(answer(chain, with_wrong(0)))
    result = {
        "answer by another domain": lambda: answer(chain, with_wrong(0), creator=C_DOCTOR),
        "answer twice": lambda: answer(chain, with_wrong(0)),
        "wrong number of answers": lambda: answer(chain, [0, 1]),
        "reveal by another": lambda: reveal(chain, creator=caller("HospitalBMSP", "researcher", "researcher")),
        "reveal before the answers": lambda: reveal(chain),
        "labels changed": lambda: reveal(chain, labels=[0, 0, None, 1, 0, 1, 1, 0, 0, 1]),
        "real index moved": lambda: reveal(chain, real=3),
        "commit twice": lambda: commit(chain),
        "unknown challenge": lambda: chain.invoke("decoy:SubmitAnswers", json.dumps(
            {"challenge_id": "ch-9", "answers": [0, 1], "inputs_sha256": "ab" * 32}), creator=A_DOCTOR),
    }[step]()

    assert (result.status, result.writes) == (500, {})
    assert result.message.startswith(problem)
    if step == "answer by another domain":
        assert ok(chain.invoke("decoy:GetChallenge", "ch-1"))["status"] == "committed"


@pytest.mark.parametrize(
    "changes, problem",
    [
        ({"decoys": 0}, "field 'decoys' must be an integer from 1 to 1000"),
        ({"threshold": 0}, "field 'threshold' must be a number in (0, 1]"),
        ({"commitment": "xyz"}, "field 'commitment' must be 64 lowercase hex characters"),
    ],
)
def test_an_invalid_challenge_is_refused(chain, changes, problem):
    result = commit(chain, **changes)

    assert (result.status, result.message, result.writes) == (500, f"invalid challenge: {problem}", {})
