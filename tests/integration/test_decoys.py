"""Decoy checks of a real diagnosis server (HTTPS, uvicorn) on the real consortium: an honest server passes and
its answer for x0 is released; one that answers at random fails at s = 9, t = 0.8; the ledger takes answers only
from the challenged domain."""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import threading
import time
from contextlib import ExitStack, contextmanager

import numpy as np
import pytest
import uvicorn

from medfabric.consortium.service_identity import DIAGNOSIS_USER
from medfabric.fl import data, flow
from medfabric.fl.challenges import DecoyChallenges, DecoyCheckError, check
from medfabric.fl.diagnosis import create_app, honest, load_diagnoser, random_answers, tls_files
from medfabric.sharing.session import Session

from .fl_sessions import participants, session_of

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def world(consortium):
    """A completed task, the diagnosis user of its publisher and a doctor of another domain."""
    _topology, layout, _env = consortium
    with ExitStack() as stack:
        researchers = participants(consortium, stack)
        domains = list(researchers)
        task = flow.create_task(researchers[domains[0]], flow.TaskSpec(f"dx-{time.time_ns()}", domains,
                                                                       rounds=5, target_accuracy=0.95))
        flow.run(researchers, task["task_id"])
        yield {"task": task, "server": session_of(consortium, stack, domains[0], DIAGNOSIS_USER),
               "checker": session_of(consortium, stack, domains[1], "doctor"),
               "test": data.load_share(layout.fl_data(domains[0]) / flow.TEST_SHARE),
               "pool": data.load_share(layout.fl_data(domains[1]))}


@contextmanager
def serving(session: Session, app):
    """`app` over TLS with the session's diagnosis certificate, on a free port of 127.0.0.1; its URL."""
    certificate, key = tls_files(session)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, ssl_certfile=str(certificate),
                                           ssl_keyfile=str(key), log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        yield f"https://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def served_app(world, answering=honest):
    server = world["server"]
    challenges = DecoyChallenges(server.gateway.get_network(server.public_channel))
    diagnoser = load_diagnoser(server, world["task"]["task_id"])
    return diagnoser, create_app(diagnoser, challenges, answering)


def test_an_honest_server_passes_and_its_answer_for_x0_is_released(world):
    diagnoser, app = served_app(world)
    x0 = world["test"].features[7]
    with serving(world["server"], app) as url:
        result = check(world["checker"], url, world["server"].domain.id, x0, world["pool"], 9, 0.8,
                       rng=np.random.default_rng(1))

    assert result["status"] == "released" and result["correct"] >= 8
    assert result["released_answer"] == diagnoser.answer(x0[None, :])[0]
    assert (result["server_msp"], result["checker_msp"]) == ("HospitalAMSP", "HospitalBMSP")


def test_a_server_answering_at_random_fails_at_nine_decoys_and_point_eight(world):
    _diagnoser, app = served_app(world, random_answers(seed=3))
    with serving(world["server"], app) as url:
        result = check(world["checker"], url, world["server"].domain.id, world["test"].features[7], world["pool"],
                       9, 0.8, rng=np.random.default_rng(2))

    assert (result["status"], result["released_answer"]) == ("fail", None)
    assert result["correct"] < 8


def post(url: str, ca_pem: bytes, body) -> tuple[int, dict]:
    host, port = url.removeprefix("https://").split(":")
    connection = http.client.HTTPSConnection(host, int(port), timeout=20,
                                             context=ssl.create_default_context(cadata=ca_pem.decode()))
    try:
        connection.request("POST", "/diagnose", body=json.dumps(body))
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def test_bad_input_is_one_line_and_a_challenge_of_another_domain_is_refused_by_the_ledger(world):
    _diagnoser, app = served_app(world)
    server, checker = world["server"], world["checker"]
    ca_pem = server.layout.peer_tls_ca(server.domain).read_bytes()
    challenges = DecoyChallenges(checker.gateway.get_network(checker.public_channel))
    others = f"other-{time.time_ns()}"
    challenges.commit({"challenge_id": others, "server_domain": "hospital-c", "decoys": 1, "threshold": 1,
                       "commitment": "ab" * 32})
    with serving(server, app) as url:
        bad = post(url, ca_pem, {"inputs": [[1.0] * 3]})
        refused = post(url, ca_pem, {"inputs": [[1.0] * 30, [2.0] * 30], "challenge_id": others})
        with pytest.raises(DecoyCheckError, match="the server URL must be https"):
            check(checker, url.replace("https", "http"), server.domain.id, world["test"].features[0], world["pool"],
                  2, 0.5)

    assert bad == (400, {"error": "inputs[0] must be a list of 30 numbers"})
    assert refused[0] == 409
    assert "only an identity of domain hospital-c (HospitalCMSP) may answer challenge" in refused[1]["error"]
    assert challenges.get(others)["status"] == "committed"
