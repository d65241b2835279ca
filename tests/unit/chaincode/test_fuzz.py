"""Hostile input, a short run: every contract transaction through the real runtime (tests/fuzz/contracts.py).

The full run is `python -m tests.fuzz.contracts --per-transaction 10000 --seed 13`; this one takes 30 argument sets
per transaction, the valid one first, with a fixed seed.
"""

from __future__ import annotations

import pytest

from tests.fuzz import contracts as fuzz

EXAMPLES = 30
SEED = 20250304


@pytest.fixture(scope="module")
def report() -> dict:
    return fuzz.run(EXAMPLES, SEED)


def test_every_production_transaction_is_fuzzed(report):
    tried = {f"{t['contract']}:{t['transaction']}": t["tried"] for t in report["transactions"]}

    assert tried == {tx.function: EXAMPLES for tx in fuzz.production_transactions()}
    assert report["transactions_without_valid_arguments"] == []


def test_the_valid_call_of_every_transaction_is_accepted_and_hostile_ones_are_refused(report):
    for t in report["transactions"]:
        name = f"{t['contract']}:{t['transaction']}"
        assert t["valid_accepted"], name
        assert t["accepted"] >= 1 and t["refused"] >= 1, name
    assert report["total_refused"] > report["total_accepted"] > 0


def test_no_input_escapes_and_the_server_stays_up(report):
    escapes = [f"{t['contract']}:{t['transaction']} {shown}"
               for t in report["transactions"] for shown in t["examples_of_escapes"]]

    assert report["server_alive"]
    assert report["total_escapes"] == 0, "\n".join(escapes)
    assert not fuzz.failed(report)


def test_the_same_seed_generates_the_same_inputs():
    transactions = {tx.function: tx for tx in fuzz.production_transactions()}
    tx = transactions["emr_index:PutRecord"]
    world = fuzz.World({"grant": "ab" * 32, "decision": "cd" * 32, "purchase": "ef" * 32},
                       {tx.function: fuzz.Template("A_DOCTOR", ({"record_id": "rec-1", "size": 1},))})
    generators = fuzz.Generators(world, ["A_DOCTOR", "B_DOCTOR"])

    def draw(seed: int) -> list[fuzz.Case]:
        drawn: list[fuzz.Case] = []

        def record(case: fuzz.Case) -> None:
            drawn.append(case)

        test = fuzz.given(generators.cases(tx, world.templates[tx.function]))(record)
        test = fuzz.settings(max_examples=20, database=None, deadline=None, phases=(fuzz.Phase.generate,),
                             suppress_health_check=list(fuzz.HealthCheck))(test)
        fuzz.hypothesis_seed(seed)(test)()
        return drawn

    assert draw(7) == draw(7)
    assert draw(7) != draw(8)
