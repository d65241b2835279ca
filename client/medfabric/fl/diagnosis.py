"""A diagnosis server: a task's global model over HTTPS, answering decoy challenges on the ledger.

Starlette on uvicorn with TLS (the domain's `diagnosis` user's server certificate, issued by the domain's TLS
CA); it acts on the ledger as that user. The model is the task's latest global weights, fetched from the
publisher's data service and checked against the ledger's hash.

    GET  /model      {"task_id", "round", "model_sha256"}
    POST /diagnose   {"inputs": [[n numbers], ...], "challenge_id"?: id}
                     -> {"answers": [0 | 1, ...], "model_sha256", "inputs_sha256"[, "answers_tx"]}

With a challenge_id the answers are first recorded (decoy:SubmitAnswers) as the server's domain: the checker
then reveals, and the contract judges. Errors are {"error": one line} with 400 (bad input), 409 (the ledger
refused the answers) or 503 (the ledger could not be asked). The log names method, path and status only.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from medfabric.crypto import canonical_json
from medfabric.fl import flow, model, weights
from medfabric.fl.challenges import DecoyChallenges
from medfabric.gateway import GatewayError
from medfabric.sharing.session import Session

MAX_BODY_BYTES = 4 * 1024 * 1024
MAX_INPUTS = 1001
_log = logging.getLogger(__name__)

Answering = Callable[["Diagnoser", np.ndarray], list[int]]


class DiagnosisError(flow.FlError):
    """A diagnosis server that cannot start or a request it cannot answer; one line."""


@dataclass(frozen=True)
class Diagnoser:
    """A global model ready to answer: weights, the task's scaler, and the hash the ledger records for them."""

    task_id: str
    round: int
    weights: np.ndarray
    scaler: model.Scaler
    model_sha256: str

    @property
    def features(self) -> int:
        return len(self.scaler.mean)

    def answer(self, inputs: np.ndarray) -> list[int]:
        """The class of each input: 1 (benign) when P(1 | x) >= 0.5."""
        probabilities = model.probabilities(self.weights, self.scaler.apply(inputs))
        return [int(p >= 0.5) for p in probabilities]


def load_diagnoser(session: Session, task_id: str) -> Diagnoser:
    """The task's latest global model, fetched and checked against the ledger."""
    task = flow.find_task(session, task_id)
    aggregated = len(flow.fl_tasks(session).aggregations(task_id))
    if aggregated == 0:
        raise DiagnosisError(f"task {task_id} has no aggregated model yet")
    values = flow.global_weights(session, task, aggregated)
    return Diagnoser(task_id, aggregated, values, flow.scaler_of(task), weights.weights_sha256(values))


def honest(diagnoser: Diagnoser, inputs: np.ndarray) -> list[int]:
    return diagnoser.answer(inputs)


def random_answers(seed: int) -> Answering:
    """A server that answers at random (seeded): what the decoy check is there to catch."""
    rng = np.random.default_rng(seed)
    return lambda diagnoser, inputs: [int(v) for v in rng.integers(0, 2, size=len(inputs))]


def parse_inputs(document: Any, features: int) -> np.ndarray:
    """The inputs of a request as an (n, features) float64 array; DiagnosisError naming what is wrong."""
    if not isinstance(document, dict):
        raise DiagnosisError("the body must be a JSON object")
    unknown = sorted(set(document) - {"inputs", "challenge_id"})
    if unknown:
        raise DiagnosisError(f"unknown field '{unknown[0]}'")
    rows = document.get("inputs")
    if not isinstance(rows, list) or not 1 <= len(rows) <= MAX_INPUTS:
        raise DiagnosisError(f"'inputs' must be a list of 1 to {MAX_INPUTS} inputs")
    for index, row in enumerate(rows):
        if not isinstance(row, list) or len(row) != features or not all(
                isinstance(v, int | float) and not isinstance(v, bool) for v in row):
            raise DiagnosisError(f"inputs[{index}] must be a list of {features} numbers")
    array = np.asarray(rows, dtype=np.float64)
    if not np.all(np.isfinite(array)):
        raise DiagnosisError("inputs must be finite numbers")
    return array


def inputs_sha256(rows: list[list[float]]) -> str:
    """What a server records it answered, and what the checker recomputes: SHA-256 of the canonical JSON."""
    return hashlib.sha256(canonical_json(rows)).hexdigest()


def create_app(diagnoser: Diagnoser, challenges: DecoyChallenges | None, answering: Answering = honest) -> Starlette:
    """The server's routes; `challenges` records answers on the ledger (None: plain diagnoses only)."""

    async def describe(_request: Request) -> JSONResponse:
        return JSONResponse({"task_id": diagnoser.task_id, "round": diagnoser.round,
                             "model_sha256": diagnoser.model_sha256})

    async def diagnose(request: Request) -> JSONResponse:
        body = await request.body()
        if len(body) > MAX_BODY_BYTES:
            return _error(413, f"the body is over {MAX_BODY_BYTES} bytes")
        try:
            document = json.loads(body)
            inputs = parse_inputs(document, diagnoser.features)
        except DiagnosisError as error:
            return _error(400, str(error))
        except ValueError:
            return _error(400, "the body is not JSON")
        answers = answering(diagnoser, inputs)
        reply = {"answers": answers, "model_sha256": diagnoser.model_sha256,
                 "inputs_sha256": inputs_sha256(document["inputs"])}
        challenge_id = document.get("challenge_id")
        if challenge_id is not None:
            if challenges is None:
                return _error(400, "this server answers no decoy challenges")
            try:
                recorded = await run_in_threadpool(challenges.answer, str(challenge_id), answers,
                                                   reply["inputs_sha256"])
            except GatewayError as error:
                refused = "chaincode response" in str(error)
                message = " ".join(str(error).split())[:300]
                return _error(409 if refused else 503, f"the ledger {'refused' if refused else 'could not take'} "
                                                       f"the answers: {message}")
            reply["answers_tx"] = recorded
        return JSONResponse(reply)

    return Starlette(routes=[Route("/model", describe, methods=["GET"]),
                             Route("/diagnose", diagnose, methods=["POST"])])


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def tls_files(session: Session) -> tuple[Path, Path]:
    """The diagnosis user's TLS server certificate and key."""
    folder = session.layout.user_dir(session.domain, session.user) / "tls"
    certificate, key = folder / "server.crt", folder / "server.key"
    if not certificate.is_file() or not key.is_file():
        raise DiagnosisError(f"no TLS server certificate for {session.user} of {session.domain.id} in {folder}: "
                             "run `make setup` (it issues one to each domain's diagnosis user)")
    return certificate, key
