"""The reliability run's pure parts: its consortium, error grouping, the report, and refusing unknown faults.
The faults themselves run on real Fabric (`make reliability`)."""

from __future__ import annotations

import pytest

from medfabric.consortium.layout import NetworkLayout
from medfabric.consortium.topology import load_topology
from medfabric_ops import reliability
from medfabric_ops.reliability import FaultResult, report_markdown, run_reliability


def test_the_consortium_is_the_default_one_at_its_own_ports(tmp_path):
    path = tmp_path / "topology.yaml"
    import yaml

    path.write_text(yaml.safe_dump(reliability.reliability_document()))
    topology = load_topology(path)

    assert topology.base_port == 28000
    assert [d.id for d in topology.domains] == [d.id for d in load_topology().domains]
    assert len(topology.public_channel.orderers) == 4 and topology.public_channel.ordering.consensus == "bft"


def test_alike_errors_are_counted_together():
    first = reliability._error_kind("EndorseError: chaincode chaincode.hospital-a unavailable (attempt 1)")
    again = reliability._error_kind("EndorseError: chaincode chaincode.hospital-a unavailable (attempt 1)")

    assert first == again == "EndorseError: chaincode chaincode.hospital-a unavailable (attempt 1)"
    assert len(reliability._error_kind("E: " + "word " * 100)) <= 200
    assert reliability._error_kind("DataServiceError: storing record puts-1-000261 failed") == \
        reliability._error_kind("DataServiceError: storing record puts-1-000262 failed") == \
        "DataServiceError: storing record <id> failed"


def test_the_report_has_a_row_per_fault_and_the_errors_below():
    results = [
        FaultResult("kill the leader", "PutRecord on public, 16 clients", 782, 3, 0, 24.1, "caught up",
                    {"CommitError: timeout": 3}),
        FaultResult("down + up", "PutRecord on public, 16 clients", 500, 40, 0, None, "restarted", {}, 2),
    ]

    text = report_markdown(results, 321.5)

    rows = [line for line in text.splitlines() if line.startswith("| ") and "---" not in line]
    assert rows[0].startswith("| fault | load | tx committed | tx failed | tx lost | recovery (s) | inputs tried | "
                              "refusals | escapes |")
    assert rows[1:] == [
        "| kill the leader | PutRecord on public, 16 clients | 782 | 3 | 0 | 24.1 | - | - | - | caught up |",
        "| down + up | PutRecord on public, 16 clients | 500 | 40 | 0 | - | - | - | - | restarted |",
    ]
    assert "* kill the leader: 3 x CommitError: timeout" in text
    assert "* down + up (2 written all the same): none" in text


def test_an_unknown_fault_is_refused_before_anything_starts(tmp_path):
    known = "leader-orderer, peer, local-peer, chaincode, data-service, unauthorized-reads, refusal-flood, down-up"
    with pytest.raises(ValueError, match=f"unknown fault 'meteor' \\(known: {known}\\)"):
        run_reliability(tmp_path, ["peer", "meteor"], say=lambda line: None)
    assert list(tmp_path.iterdir()) == []


def test_a_fault_whose_run_fails_gets_its_row_and_the_others_still_run(tmp_path, monkeypatch):
    class NoConsortium:  # the faults below touch no node
        topology, layout = load_topology(), NetworkLayout(tmp_path / "no-consortium")

        def __init__(self, *args):
            pass

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    def crashes(run):
        raise KeyError("no such orderer")

    def passes(run):
        return FaultResult("kill nothing", "none", 10, 0, 0, 1.0, "in step")

    monkeypatch.setattr(reliability, "IsolatedConsortium", NoConsortium)
    monkeypatch.setattr(reliability, "find_binaries", lambda version: None)
    monkeypatch.setattr(reliability, "FAULTS", {"crashes": crashes, "passes": passes})
    said = []

    with pytest.raises(reliability.FaultsNotRun, match=r"1 of 2 faults could not be run \(crashes\)") as failed:
        run_reliability(tmp_path, ["crashes", "passes"], say=said.append)

    text = (failed.value.out / "report.md").read_text()
    assert "| crashes: NOT RUN | - | 0 | 0 | 0 | - | - | - | - | the fault's run failed: KeyError: 'no such orderer' |" \
        in text
    assert "| kill nothing | none | 10 | 0 | 0 | 1 |" in text
    assert "  crashes: the fault's run failed: KeyError: 'no such orderer'" in said


def test_a_hostile_row_shows_what_was_tried_refused_and_escaped():
    flood = FaultResult("refusal flood from one requester", "signed fetches naming no decision, 4 threads, 20 s",
                        0, 0, 0, None, "answers 60 x 403, 2900 x 429", inputs_tried=2960, refusals=2960, escapes=0)

    [row] = [line for line in report_markdown([flood], 30).splitlines() if line.startswith("| refusal")]

    assert row == ("| refusal flood from one requester | signed fetches naming no decision, 4 threads, 20 s | 0 | 0 | "
                   "0 | - | 2960 | 2960 | 0 | answers 60 x 403, 2900 x 429 |")


def test_the_fuzz_report_becomes_a_row():
    report = {"seed": 13, "per_transaction": 1000, "seconds": 104.2, "server_alive": True, "total_tried": 35000,
              "total_accepted": 3300, "total_refused": 31700, "total_escapes": 0,
              "transactions": [{"contract": "emr_index", "transaction": "PutRecord"}] * 35}

    row = reliability.fuzz_row(report)

    assert row.fault == "generated arguments, 35 contract transactions (hypothesis, seed 13)"
    assert (row.inputs_tried, row.refusals, row.escapes) == (35000, 31700, 0)
    assert row.back_in_step == "3300 valid results; server up after 104.2 s"
