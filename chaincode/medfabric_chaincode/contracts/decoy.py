"""decoy: checking a diagnosis server's accuracy without telling it which input matters (SYSTEM.md section 6).

A checker mixes its real input x0 with s decoys whose labels it knows, shuffles
them, and first commits to the sealed labels: SHA-256 of the canonical JSON
{"labels": [...], "real_index": i, "salt": hex}, labels in input order with
null at the real input's place. The server's domain then records its answers
to the s + 1 inputs (and the SHA-256 of the inputs it answered). The checker
reveals; the contract checks the commitment, counts the k decoys answered
right, and if k / s >= t releases the server's answer for x0, else concludes
"fail". Every step is judged here, from the transaction's own data. State:

    ("decoy", challenge_id)   -> the challenge, canonical JSON, updated by each step
"""

from __future__ import annotations

import hashlib
import re
from fractions import Fraction
from dataclasses import dataclass, replace

from ..runtime import ChaincodeStub, Contract, TransactionContext, TransactionError, canonical_json, load_json, transaction
from .common import (
    DOMAIN_RULE, ID_RULE, SHA256_RULE, Rule, check_argument, check_fields, integer_in, invalid_field, iso_millis,
    number_in, parse_document, require_domain, text
)

CHALLENGE_KEY = "decoy"
MAX_DECOYS = 1000
MAX_LABEL = 1_000_000  # labels are class numbers 0..MAX_LABEL
CHALLENGE_CONCLUDED_EVENT = "DecoyChallengeConcluded"

_SALT = re.compile(r"[0-9a-f]{32,128}")


def _label_list(allow_null: bool) -> Rule:
    def valid(value) -> bool:
        return isinstance(value, list) and 2 <= len(value) <= MAX_DECOYS + 1 and all(
            (allow_null and label is None) or integer_in(0, MAX_LABEL)[0](label) for label in value)
    return valid, f"must be a list of 2 to {MAX_DECOYS + 1} class labels (integers 0 to {MAX_LABEL})"


_COMMIT_RULES: dict[str, Rule] = {
    "challenge_id": ID_RULE,
    "server_domain": DOMAIN_RULE,
    "decoys": integer_in(1, MAX_DECOYS),
    "threshold": number_in(0, 1),
    "commitment": SHA256_RULE,
}
_ANSWER_RULES: dict[str, Rule] = {
    "challenge_id": ID_RULE,
    "answers": _label_list(allow_null=False),
    "inputs_sha256": SHA256_RULE,
}
_REVEAL_RULES: dict[str, Rule] = {
    "challenge_id": ID_RULE,
    "labels": _label_list(allow_null=True),
    "real_index": integer_in(0, MAX_DECOYS),
    "salt": (text(_SALT), "must be 32-128 lowercase hex characters"),
}


@dataclass(frozen=True)
class DecoyChallenge:
    challenge_id: str
    server_domain: str
    decoys: int  # s
    threshold: float  # t
    commitment: str
    checker_msp: str
    checker_id: str
    committed_at: str
    status: str  # "committed", "answered", then "released" or "fail"
    answers: list[int] | None = None
    inputs_sha256: str | None = None
    server_msp: str | None = None
    answered_at: str | None = None
    correct: int | None = None  # k: decoys answered right, once revealed
    released_answer: int | None = None  # the server's answer for x0, when k / s >= t
    revealed_at: str | None = None


def commitment_of(labels: list[int | None], real_index: int, salt: str) -> str:
    """What a checker commits to, and what Reveal recomputes."""
    return hashlib.sha256(canonical_json({"labels": labels, "real_index": real_index, "salt": salt})).hexdigest()


class DecoyContract(Contract):
    """Commit, answer, reveal: a diagnosis server's accuracy on decoys decides whether its answer is released."""

    name = "decoy"

    @transaction
    def CommitChallenge(self, ctx: TransactionContext, challenge_json: str) -> DecoyChallenge:
        """Record a challenge and the commitment to its sealed labels. Roles: any member (the checker)."""
        document = parse_document(challenge_json, "challenge")
        check_fields(document, _COMMIT_RULES, "challenge")
        stub, identity = ctx.stub, ctx.client_identity
        key = stub.create_composite_key(CHALLENGE_KEY, [document["challenge_id"]])
        if stub.get_state(key) is not None:
            raise TransactionError(f"challenge {document['challenge_id']} already exists")
        challenge = DecoyChallenge(
            challenge_id=document["challenge_id"], server_domain=document["server_domain"],
            decoys=document["decoys"], threshold=float(document["threshold"]), commitment=document["commitment"],
            checker_msp=identity.msp_id, checker_id=identity.get_id(),
            committed_at=iso_millis(stub.get_tx_timestamp()), status="committed",
        )
        stub.put_state(key, canonical_json(challenge))
        return challenge

    @transaction
    def SubmitAnswers(self, ctx: TransactionContext, answers_json: str) -> DecoyChallenge:
        """The server's answers to the challenge's s + 1 inputs, once. Roles: an identity of the server's domain."""
        document = parse_document(answers_json, "answers")
        check_fields(document, _ANSWER_RULES, "answers")
        stub = ctx.stub
        challenge = _load(stub, document["challenge_id"])
        require_domain(ctx.client_identity, challenge.server_domain,
                       f"answer challenge {challenge.challenge_id}")
        if challenge.status != "committed":
            raise TransactionError(f"challenge {challenge.challenge_id} is already answered")
        if len(document["answers"]) != challenge.decoys + 1:
            invalid_field("answers", "answers", f"must hold {challenge.decoys + 1} answers, one per input")
        answered = replace(challenge, status="answered", answers=list(document["answers"]),
                           inputs_sha256=document["inputs_sha256"], server_msp=ctx.client_identity.msp_id,
                           answered_at=iso_millis(stub.get_tx_timestamp()))
        _save(stub, answered)
        return answered

    @transaction
    def Reveal(self, ctx: TransactionContext, reveal_json: str) -> DecoyChallenge:
        """Open the commitment; the contract counts k and releases the answer for x0 if k / s >= t, else "fail".

        Roles: the checker (the identity that committed)."""
        document = parse_document(reveal_json, "reveal")
        check_fields(document, _REVEAL_RULES, "reveal")
        stub, identity = ctx.stub, ctx.client_identity
        challenge = _load(stub, document["challenge_id"])
        if (identity.msp_id, identity.get_id()) != (challenge.checker_msp, challenge.checker_id):
            raise TransactionError(f"only the checker of challenge {challenge.challenge_id} reveals it")
        if challenge.status != "answered":
            raise TransactionError(f"challenge {challenge.challenge_id} is {challenge.status}: only an answered "
                                   "challenge is revealed")
        labels, real = document["labels"], document["real_index"]
        if len(labels) != challenge.decoys + 1 or real >= len(labels):
            invalid_field("reveal", "labels", f"must hold {challenge.decoys + 1} labels, the real input's null")
        if labels[real] is not None or any(label is None for i, label in enumerate(labels) if i != real):
            invalid_field("reveal", "labels", "must be null at real_index and a label everywhere else")
        if commitment_of(labels, real, document["salt"]) != challenge.commitment:
            raise TransactionError(f"the reveal does not open the commitment of challenge {challenge.challenge_id}")
        correct = sum(1 for i, label in enumerate(labels) if i != real and challenge.answers[i] == label)
        passed = Fraction(correct, challenge.decoys) >= Fraction(challenge.threshold)  # exact: no 0.7 * 10 > 7
        concluded = replace(challenge, status="released" if passed else "fail", correct=correct,
                            released_answer=challenge.answers[real] if passed else None,
                            revealed_at=iso_millis(stub.get_tx_timestamp()))
        _save(stub, concluded)
        stub.set_event(CHALLENGE_CONCLUDED_EVENT, canonical_json(
            {"challenge_id": concluded.challenge_id, "status": concluded.status, "correct": correct}))
        return concluded

    @transaction(evaluate=True)
    def GetChallenge(self, ctx: TransactionContext, challenge_id: str) -> DecoyChallenge:
        check_argument("challenge_id", challenge_id, ID_RULE)
        return _load(ctx.stub, challenge_id)


def _load(stub: ChaincodeStub, challenge_id: str) -> DecoyChallenge:
    data = stub.get_state(stub.create_composite_key(CHALLENGE_KEY, [challenge_id]))
    if data is None:
        raise TransactionError(f"challenge {challenge_id} not found")
    return load_json(DecoyChallenge, data, "challenge")


def _save(stub: ChaincodeStub, challenge: DecoyChallenge) -> None:
    stub.put_state(stub.create_composite_key(CHALLENGE_KEY, [challenge.challenge_id]), canonical_json(challenge))
