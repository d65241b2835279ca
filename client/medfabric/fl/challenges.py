"""The decoy contract from the client side, and the checker's half of the protocol (SYSTEM.md section 6).

The checker mixes its real input x0 with s decoys of known label, at a position the server never learns; it
commits to the sealed labels (SHA-256 of the canonical JSON {labels, real_index, salt}, null at the real
input), sends every input to the server, waits for the server's answers on the ledger, and reveals: the
contract counts the decoys answered right and releases the answer for x0 only if k / s >= t.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import secrets
import ssl
from dataclasses import dataclass
from typing import Any, Callable
from urllib.parse import urlsplit

import numpy as np

from medfabric.consortium.topology import CHAINCODE_NAME
from medfabric.crypto import canonical_json
from medfabric.errors import MedfabricError
from medfabric.fl.data import Share
from medfabric.http_json import exchange
from medfabric.gateway import Network
from medfabric.polling import awaited
from medfabric.sharing.session import Session

DECOY_CONTRACT = "decoy"
ANSWER_WAIT = 10.0  # seconds for the server's answers to reach the checker's peer
TIMEOUT_S = 30


class DecoyCheckError(MedfabricError):
    """A decoy check that cannot go on; one line naming why."""


class DecoyChallenges:
    """The decoy contract of one channel."""

    def __init__(self, network: Network, chaincode_name: str = CHAINCODE_NAME):
        self._contract = network.get_contract(chaincode_name, DECOY_CONTRACT)

    def commit(self, challenge: dict[str, Any]) -> dict[str, Any]:
        return json.loads(self._contract.submit_transaction("CommitChallenge", json.dumps(challenge)))

    def answer(self, challenge_id: str, answers: list[int], inputs_sha256: str) -> str:
        """Record the server's answers; the transaction id."""
        return self._contract.submit_committed("SubmitAnswers", arguments=[json.dumps(
            {"challenge_id": challenge_id, "answers": answers, "inputs_sha256": inputs_sha256})]).transaction_id

    def reveal(self, reveal: dict[str, Any]) -> dict[str, Any]:
        return json.loads(self._contract.submit_transaction("Reveal", json.dumps(reveal)))

    def get(self, challenge_id: str) -> dict[str, Any]:
        return json.loads(self._contract.evaluate_transaction("GetChallenge", challenge_id))


@dataclass(frozen=True)
class SealedChallenge:
    """What the checker keeps to itself until it reveals."""

    inputs: list[list[float]]
    labels: list[int | None]  # null at the real input
    real_index: int
    salt: str

    @property
    def commitment(self) -> str:
        return hashlib.sha256(canonical_json(
            {"labels": self.labels, "real_index": self.real_index, "salt": self.salt})).hexdigest()


def new_challenge(x0: np.ndarray, pool: Share, decoys: int, rng: np.random.Generator | None = None
                  ) -> SealedChallenge:
    """x0 among `decoys` inputs of `pool` (distinct, labels known), at a random position; a random salt."""
    if decoys < 1 or decoys > len(pool):
        raise DecoyCheckError(f"--decoys must be from 1 to {len(pool)} (the labelled inputs at hand)")
    if x0.shape != (pool.features.shape[1],):
        raise DecoyCheckError(f"the input must have {pool.features.shape[1]} features, not {x0.shape}")
    rng = rng or np.random.default_rng(secrets.randbits(128))
    chosen = rng.choice(len(pool), size=decoys, replace=False)
    real_index = int(rng.integers(0, decoys + 1))
    rows = [pool.features[i] for i in chosen]
    labels: list[int | None] = [int(pool.labels[i]) for i in chosen]
    rows.insert(real_index, x0)
    labels.insert(real_index, None)
    salt = secrets.token_hex(16)  # never from a seeded generator: it is what keeps the sealed labels sealed
    return SealedChallenge([[float(v) for v in row] for row in rows], labels, real_index, salt)


def post_inputs(server_url: str, ca_pem: bytes, body: dict[str, Any]) -> dict[str, Any]:
    """POST /diagnose over TLS, the server's certificate checked against `ca_pem`."""
    where = urlsplit(server_url)
    if where.scheme != "https" or not where.hostname:
        raise DecoyCheckError(f"the server URL must be https://host:port, not {server_url!r}")
    context = ssl.create_default_context(cadata=ca_pem.decode())
    connection = http.client.HTTPSConnection(where.hostname, where.port or 443, timeout=TIMEOUT_S, context=context)
    try:
        status, answer = exchange(connection, "POST", "/diagnose", body)
    except OSError as error:
        raise DecoyCheckError(f"cannot reach the diagnosis server at {where.netloc}: {error}") from None
    if answer is None:
        raise DecoyCheckError(f"the diagnosis server answered {status} without a JSON object")
    if status >= 400:
        raise DecoyCheckError(f"the diagnosis server refused: {answer.get('error', 'no reason given')} "
                              f"(HTTP {status})")
    return answer


def check(session: Session, server_url: str, server_domain: str, x0: np.ndarray, pool: Share, decoys: int,
          threshold: float, rng: np.random.Generator | None = None,
          send: Callable[[str, bytes, dict[str, Any]], dict[str, Any]] = post_inputs) -> dict[str, Any]:
    """Run one decoy check of the server of `server_domain` as the session's user; the concluded challenge."""
    if not 0 < threshold <= 1:
        raise DecoyCheckError(f"--threshold must be in (0, 1], not {threshold}")
    server = session.topology.domain(server_domain)
    sealed = new_challenge(x0, pool, decoys, rng)
    challenges = DecoyChallenges(session.gateway.get_network(session.public_channel), session.topology.chaincode.name)
    challenge_id = f"decoy-{secrets.token_hex(8)}"
    challenges.commit({"challenge_id": challenge_id, "server_domain": server.id, "decoys": decoys,
                       "threshold": threshold, "commitment": sealed.commitment})
    reply = send(server_url, session.layout.peer_tls_ca(server).read_bytes(),
                 {"challenge_id": challenge_id, "inputs": sealed.inputs})
    expected = hashlib.sha256(canonical_json(sealed.inputs)).hexdigest()
    if reply.get("inputs_sha256") != expected:
        raise DecoyCheckError("the server answered other inputs than those sent")

    def answered() -> dict[str, Any] | None:
        found = challenges.get(challenge_id)
        return found if found["status"] != "committed" else None

    if awaited(answered, ANSWER_WAIT) is None:
        raise DecoyCheckError(f"the server's answers to {challenge_id} did not reach this peer within "
                              f"{ANSWER_WAIT:g} s")
    concluded = challenges.reveal({"challenge_id": challenge_id, "labels": sealed.labels,
                                   "real_index": sealed.real_index, "salt": sealed.salt})
    return {**concluded, "accuracy_on_decoys": concluded["correct"] / decoys}


def guess_rate(pool: Share, decoys: int, trials: int, guess: Callable[[np.ndarray], int],
               rng: np.random.Generator) -> float:
    """How often a server that tries to tell the real input from the decoys finds it, over `trials` checks with
    x0 drawn from the same pool as the decoys (no ledger: the server's side of the protocol only)."""
    hits = 0
    for _ in range(trials):
        real = int(rng.integers(0, len(pool)))
        rest = Share(np.delete(pool.features, real, axis=0), np.delete(pool.labels, real))
        sealed = new_challenge(pool.features[real], rest, decoys, rng)
        hits += int(guess(np.asarray(sealed.inputs)) == sealed.real_index)
    return hits / trials
