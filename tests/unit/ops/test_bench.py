"""The benchmark runner: the workloads' records, the figures per round, CPU sampling, and whole runs against a
stand-in for Caliper (tests/unit/ops/fake_caliper.py) and a consortium whose processes are this test's."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest
import yaml

from medfabric.consortium.layout import NetworkLayout, latest_bench_run
from medfabric.bench.loadtest import percentile
from medfabric.consortium.topology import load_topology
from medfabric_ops import bench, cli, network
from medfabric_ops.bench import (
    BenchError,
    CpuSampler,
    PlannedRound,
    Record,
    RoundRecords,
    channel_kind,
    cpu_in_window,
    cpu_seconds,
    parse_record_file,
    process_tree,
    read_records,
    round_problems,
    round_result,
)
from medfabric_ops.process import ProcessStatus

from ...cli_runner import cli_runner

FAKE_CALIPER = Path(__file__).parent / "fake_caliper.py"


@pytest.fixture(scope="module")
def topology():
    return load_topology()


def write_records(folder: Path, name: str, *lines: dict | str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text("".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines))
    return path


# -- records ---------------------------------------------------------------------------------------------------

def test_records_are_read_per_round_and_worker(tmp_path):
    write_records(tmp_path, "round-0-put-local-worker-0.jsonl",
                  {"start_ms": 1000, "end_ms": 1050, "ok": True},
                  {"start_ms": 1010, "end_ms": 1090.5, "ok": False, "error": "MVCC_READ_CONFLICT"})
    write_records(tmp_path, "round-0-put-local-worker-1.jsonl", {"start_ms": 1020, "end_ms": 1030, "ok": True})
    write_records(tmp_path, "round-1-get-public-expect-failures-worker-0.jsonl")  # a worker with nothing to do
    rounds = read_records(tmp_path)
    assert set(rounds) == {0, 1}
    assert rounds[0].label == "put-local" and rounds[0].workers == {0, 1}
    assert rounds[0].records == [Record(1000, 1050, True), Record(1010, 1090.5, False, "MVCC_READ_CONFLICT"),
                                 Record(1020, 1030, True)]
    assert rounds[1].label == "get-public-expect-failures" and rounds[1].records == []
    assert read_records(tmp_path / "missing") == {}


@pytest.mark.parametrize("line, problem", [
    ("not json", ":1: not a JSON object"),
    ("[1, 2]", ":1: not a JSON object"),
    ('{"start_ms": 1, "end_ms": 2, "ok": true, "tx": "abc"}', "unexpected field 'tx'"),
    ('{"start_ms": 1, "end_ms": 2}', ":1: ok must be true or false"),
    ('{"start_ms": 1, "end_ms": 2, "ok": "yes"}', "ok must be true or false"),
    ('{"start_ms": "1", "end_ms": 2, "ok": true}', "start_ms must be a non-negative number"),
    ('{"start_ms": true, "end_ms": 2, "ok": true}', "start_ms must be a non-negative number"),
    ('{"end_ms": 2, "ok": true}', "start_ms must be a non-negative number"),
    ('{"start_ms": 5, "end_ms": 2, "ok": true}', "end_ms is before start_ms"),
    ('{"start_ms": 1, "end_ms": 2, "ok": false, "error": 42}', "error must be a string"),
    ("", ":1: not a JSON object"),
])
def test_anything_outside_the_record_format_is_refused_naming_file_and_line(tmp_path, line, problem):
    path = write_records(tmp_path, "round-0-x-worker-0.jsonl", line)
    with pytest.raises(BenchError) as refused:
        parse_record_file(path)
    assert problem in str(refused.value) and str(path) in str(refused.value)


def test_a_record_file_cut_in_the_middle_of_a_line_is_refused(tmp_path):
    path = tmp_path / "round-0-x-worker-0.jsonl"
    path.write_text('{"start_ms": 1, "end_ms": 2, "ok": true}\n{"start_ms": 3, "en')
    with pytest.raises(BenchError, match="the last line is incomplete"):
        parse_record_file(path)


def test_record_files_without_a_label_count_for_their_round(tmp_path):
    write_records(tmp_path, "round-0-worker-0.jsonl", {"start_ms": 1, "end_ms": 2, "ok": True})
    write_records(tmp_path, "round-0-put_local_x-worker-1.jsonl", {"start_ms": 1, "end_ms": 3, "ok": True})
    write_records(tmp_path, "round-1-worker-0.jsonl", {"start_ms": 1, "end_ms": 3, "ok": False, "error": "x"})
    rounds = read_records(tmp_path)
    assert (rounds[0].label, rounds[0].workers, len(rounds[0].records)) == ("put_local_x", {0, 1}, 2)
    assert (rounds[1].label, len(rounds[1].records)) == (None, 1)


def test_labels_are_compared_as_the_workloads_write_them_in_file_names():
    assert bench.file_label("put local (x)") == "put_local_x_"
    assert bench.file_label("smoke-index-write-local") == "smoke-index-write-local"
    assert bench.file_label("a.b_c-d") == "a.b_c-d"


@pytest.mark.parametrize("name", ["round-0-x.jsonl", "round-a-x-worker-0.jsonl", "round-0-x-worker-0.json",
                                  "round--worker-0.jsonl", "notes.txt"])
def test_a_file_not_named_as_records_are_is_refused(tmp_path, name):
    write_records(tmp_path, name, {"start_ms": 1, "end_ms": 2, "ok": True})
    with pytest.raises(BenchError, match="not a record file"):
        read_records(tmp_path)


def test_a_round_labelled_differently_by_two_workers_is_refused(tmp_path):
    write_records(tmp_path, "round-0-put-worker-0.jsonl", {"start_ms": 1, "end_ms": 2, "ok": True})
    write_records(tmp_path, "round-0-get-worker-1.jsonl", {"start_ms": 1, "end_ms": 2, "ok": True})
    with pytest.raises(BenchError, match="round 0 is labelled 'get' in other record files"):
        read_records(tmp_path)


# -- the suite -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("entry, kind", [
    ({"label": "x", "workload": {"arguments": {"contractId": "medfabric-node", "channel": "public"}}}, "baseline"),
    ({"label": "x", "workload": {"arguments": {"contractId": "medfabric-node@hospital-a-local"}}}, "baseline"),
    ({"label": "x", "workload": {"arguments": {"contractId": "medfabric", "channel": "public"}}}, "public"),
    ({"label": "x", "workload": {"arguments": {"contractId": "medfabric@public"}}}, "public"),
    ({"label": "x", "workload": {"arguments": {"channel": "hospital-b-local"}}}, "local"),
    ({"label": "x", "workload": {"arguments": {"channelKind": "local"}}}, "local"),
    ({"label": "put-baseline-public"}, "baseline"),
    ({"label": "put-public"}, "public"),
    ({"label": "get-local-warmup"}, "local"),
    ({"label": "mystery"}, "other"),
])
def test_a_rounds_channel_kind_comes_from_its_arguments_else_its_label(topology, entry, kind):
    assert channel_kind(entry, topology) == kind


def test_the_plan_keeps_labels_settings_and_expected_failures(topology):
    document = {"test": {"workers": {"number": 2}, "rounds": [
        {"label": "put-local", "txNumber": 100, "rateControl": {"type": "fixed-load", "opts": {"transactionLoad": 8}},
         "workload": {"module": "workloads/put.js", "arguments": {"channel": "local"}}},
        {"label": "put-invalid-expect-failures", "txDuration": 5},
    ]}}
    planned = bench.plan_rounds(document, topology)
    assert planned == [
        PlannedRound(0, "put-local", "local", False, {
            "txNumber": 100, "rateControl": {"type": "fixed-load", "opts": {"transactionLoad": 8}}, "workers": 2}),
        PlannedRound(1, "put-invalid-expect-failures", "other", True, {"txDuration": 5, "workers": 2}),
    ]


@pytest.mark.parametrize("text, problem", [
    ("test: {rounds: []}", "no test.rounds list"),
    ("[1, 2]", "no test.rounds list"),
    ("test: {rounds: [{txNumber: 5}]}", "test.rounds[0] has no label"),
    ("test: {rounds: [", "cannot be read as YAML"),
])
def test_a_suite_without_labelled_rounds_is_refused(tmp_path, text, problem):
    path = tmp_path / "suite.yaml"
    path.write_text(text)
    with pytest.raises(BenchError, match=problem.replace("[", r"\[").replace("]", r"\]")):
        bench.load_suite(path)


def test_an_unknown_suite_names_the_known_ones(tmp_path):
    (tmp_path / "benchmarks").mkdir()
    (tmp_path / "benchmarks" / "smoke.yaml").write_text("test: {}")
    with pytest.raises(BenchError, match=r"no suite 'nightly' .*known: smoke\)"):
        bench.suite_file("nightly", tmp_path)
    with pytest.raises(BenchError, match="is not a suite name"):
        bench.suite_file("../etc/passwd", tmp_path)
    assert bench.suite_file("smoke", tmp_path) == tmp_path / "benchmarks" / "smoke.yaml"


# -- the figures -----------------------------------------------------------------------------------------------

def test_a_rounds_figures_come_from_its_records():
    records = [Record(1000 + 10 * i, 1000 + 10 * i + 20 + i, True) for i in range(100)]
    records += [Record(1500, 1510, False, "endorsement failed"), Record(1600, 1610, False, "endorsement failed"),
                Record(1700, 1705, False, None)]
    planned = PlannedRound(3, "put-public", "public", False, {"txNumber": 103})
    samples = [(900.0, {"peers": 0.0, "caliper": 1.0}), (2900.0, {"peers": 2.0, "caliper": 1.5})]
    result = round_result(planned, RoundRecords("put-public", {0, 1}, records), samples)
    assert (result["index"], result["label"], result["channel_kind"], result["workers"]) == (3, "put-public",
                                                                                               "public", 2)
    assert (result["submitted"], result["succeeded"], result["failed"]) == (103, 100, 3)
    end = max(r.end_ms for r in records)
    assert (result["start_ms"], result["end_ms"]) == (1000, end)
    assert result["duration_s"] == pytest.approx((end - 1000) / 1000, abs=1e-3)
    assert result["goodput_tps"] == pytest.approx(100 / ((end - 1000) / 1000), abs=0.01)  # successes only
    assert result["send_rate_tps"] == pytest.approx(103 / 0.99, abs=0.01)  # sends between first and last send
    latencies = [20 + i for i in range(100)]
    assert result["latency_ms"] == {
        "p50": percentile(latencies, 0.5), "p95": percentile(latencies, 0.95), "p99": percentile(latencies, 0.99),
        "max": 119, "mean": 69.5}
    assert result["latency_ms"]["p50"] == 69 and result["latency_ms"]["p99"] == 118
    assert result["errors"] == [{"error": "endorsement failed", "count": 2},
                                {"error": "(no error message)", "count": 1}]
    seconds = (end - 1000) / 1000
    assert result["cpu"]["peers"]["seconds"] == pytest.approx(seconds / 2 * 2, abs=0.01)  # 1 s of CPU per second
    assert result["cpu"]["peers"]["percent"] == pytest.approx(100, abs=0.5)
    assert result["cpu"]["caliper"]["percent"] == pytest.approx(25, abs=0.5)
    assert round_problems(result) == ["round 3 (put-public): 3 of 103 transactions failed (first: endorsement failed)"]


def test_failures_in_a_round_that_expects_them_are_no_problem_but_no_records_are():
    records = [Record(0, 5, False, "index entry refused")] * 4
    expected = round_result(PlannedRound(0, "put-invalid-expect-failures", "local", True, {}),
                            RoundRecords("put-invalid-expect-failures", {0}, records), [])
    assert (expected["failed"], expected["succeeded"], expected["latency_ms"], expected["goodput_tps"]) == (
        4, 0, None, 0.0)
    assert round_problems(expected) == []
    empty = round_result(PlannedRound(1, "get-public", "public", False, {}), None, [])
    assert (empty["submitted"], empty["workers"], empty["goodput_tps"], empty["cpu"]) == (0, 0, None, {})
    assert round_problems(empty) == ["round 1 (get-public) has no records"]
    expected_but_empty = round_result(PlannedRound(2, "x-expect-failures", "local", True, {}), None, [])
    assert round_problems(expected_but_empty) == ["round 2 (x-expect-failures) has no records"]


def test_a_single_transaction_round_has_a_send_rate_over_its_duration():
    result = round_result(PlannedRound(0, "one", "local", False, {}), RoundRecords("one", {0}, [Record(0, 250, True)]),
                          [])
    assert (result["goodput_tps"], result["send_rate_tps"], result["latency_ms"]["p99"]) == (4.0, 4.0, 250)


def test_cpu_in_a_window_is_interpolated_between_samples_and_clamped_outside_them():
    samples = [(1000.0, {"peers": 10.0}), (2000.0, {"peers": 11.0}), (3000.0, {"peers": 13.0, "caliper": 1.0})]
    usage = cpu_in_window(samples, 1500, 2500)  # 0.5 s of the first second, 1 s of the second
    assert usage["peers"] == {"seconds": 1.5, "percent": 150.0}
    assert usage["caliper"] == {"seconds": 0.5, "percent": 50.0}  # unknown until it appeared: 0
    assert cpu_in_window(samples, 0, 5000)["peers"] == {"seconds": 3.0, "percent": 60.0}
    assert cpu_in_window([], 0, 1) == {}


# -- CPU time of processes -------------------------------------------------------------------------------------

def test_the_cpu_time_of_a_process_and_its_descendants_is_read_from_proc():
    burner = subprocess.Popen([sys.executable, "-c", "import time\nt = time.process_time()\n"
                               "while time.process_time() - t < 0.3: pass\ntime.sleep(30)"])
    try:
        assert burner.pid in process_tree(os.getpid())
        assert process_tree(burner.pid) == [burner.pid]
        deadline = time.monotonic() + 10
        while (cpu_seconds(burner.pid) or 0) < 0.25 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert 0.25 <= cpu_seconds(burner.pid) < 5
    finally:
        burner.kill()
        burner.wait()
    assert cpu_seconds(burner.pid) is None


def test_a_group_never_loses_the_cpu_time_of_a_process_that_ended():
    readings = {101: 1.0, 102: 2.0}
    pids = {"peers": [101, 102]}
    clock = iter(range(1000, 10_000)).__next__
    sampler = CpuSampler(lambda: pids, clock=lambda: clock())
    original = bench.cpu_seconds
    try:
        bench.cpu_seconds = lambda pid: readings.get(pid)
        sampler.sample()
        readings.update({101: 1.5, 102: None})  # 102 has ended
        del readings[102]
        sampler.sample()
        pids["peers"] = [101]
        sampler.sample()
    finally:
        bench.cpu_seconds = original
    assert [totals["peers"] for _t, totals in sampler.samples] == [3.0, 3.5, 3.5]
    assert sampler.latest("peers") == 3.5 and sampler.latest("nothing") == 0.0


def test_the_sampler_samples_in_a_thread_until_stopped():
    sampler = CpuSampler(lambda: {"tests": [os.getpid()]}, interval=0.02)
    sampler.start()
    time.sleep(0.2)
    sampler.stop()
    count = len(sampler.samples)
    assert count >= 4
    assert [t for t, _totals in sampler.samples] == sorted(t for t, _totals in sampler.samples)
    time.sleep(0.05)
    assert len(sampler.samples) == count


# -- whole runs ------------------------------------------------------------------------------------------------

SUITE = {
    "test": {
        "name": "smoke",
        "workers": {"number": 1},
        "rounds": [
            {"label": "put-local", "txNumber": 20, "rateControl": {"type": "fixed-load", "opts": {"transactionLoad": 4}},
             "workload": {"module": "workloads/put-index.js", "arguments": {"contractId": "medfabric",
                                                                          "channel": "hospital-a-local"}}},
            {"label": "put-baseline-public", "txNumber": 20,
             "workload": {"module": "workloads/put-index.js", "arguments": {"contractId": "medfabric-node",
                                                                          "channel": "public"}}},
        ],
    },
}


class FakeConsortium:
    """Supervisor status with every process of the topology alive, all of them this test process."""

    def __init__(self, names):
        self.names = list(names)

    def __call__(self, layout):
        return self

    def status(self):
        return [ProcessStatus(name, os.getpid(), True, 2**20, 1.0) for name in self.names]


@pytest.fixture
def workspace(tmp_path, monkeypatch, topology):
    """A Caliper workspace with the suite, a consortium that runs, and Caliper replaced by fake_caliper.py."""
    caliper_dir = tmp_path / "caliper"
    (caliper_dir / "benchmarks").mkdir(parents=True)
    (caliper_dir / "benchmarks" / "smoke.yaml").write_text(yaml.safe_dump(SUITE, sort_keys=False))
    real_command = bench.caliper_command
    monkeypatch.setattr(bench, "caliper_command", lambda *args: [sys.executable, str(FAKE_CALIPER),
                                                                 *real_command(*args)[2:]])
    monkeypatch.setattr(bench, "caliper_unavailable", lambda caliper_dir: None)
    monkeypatch.setattr(bench, "Supervisor", FakeConsortium(network.process_names(topology)))
    monkeypatch.setattr(bench, "tls_handshake", lambda host, port: lambda: True)
    monkeypatch.setenv("FAKE_CALIPER_ARGS", str(tmp_path / "caliper-args.json"))
    monkeypatch.delenv("MEDFABRIC_BENCH_DIR", raising=False)
    return caliper_dir


def fake_caliper(monkeypatch, **plan):
    plan.setdefault("rounds", [{"label": "put-local", "ok": 20}, {"label": "put-baseline-public", "ok": 20}])
    monkeypatch.setenv("FAKE_CALIPER", json.dumps(plan))


def run(topology, tmp_path, workspace, **kwargs):
    layout = NetworkLayout(tmp_path / "build" / "network")
    lines = []
    result = bench.run_bench(topology, layout, suite="smoke", progress=lines.append, caliper_dir=workspace,
                             sample_interval=0.05, progress_interval=0.1, **kwargs)
    return result, lines, layout


def test_a_run_writes_results_the_report_and_the_records_in_its_own_folder(topology, tmp_path, workspace,
                                                                            monkeypatch):
    fake_caliper(monkeypatch, burn_s=0.4)
    result, lines, layout = run(topology, tmp_path, workspace)
    assert result.problems == []
    run_dir = result.run_dir
    assert run_dir.parent == tmp_path / "build" / "bench"
    assert run_dir.name.endswith("-smoke") and datetime.strptime(run_dir.name[:16], "%Y%m%dT%H%M%SZ")
    assert latest_bench_run(tmp_path / "build" / "bench") == run_dir
    assert os.readlink(run_dir.parent / "latest") == run_dir.name  # relative: the folder can move
    assert (run_dir / "report.html").read_text() == "<html>fake report</html>"
    assert sorted(p.name for p in (run_dir / "records").iterdir()) == [
        "round-0-put-local-worker-0.jsonl", "round-1-put-baseline-public-worker-0.jsonl"]
    assert json.loads((run_dir / "results.json").read_text()) == result.results

    called = json.loads((tmp_path / "caliper-args.json").read_text())
    argv = called["argv"]
    assert argv[:2] == ["launch", "manager"] and "--caliper-flow-only-test" in argv
    assert argv[argv.index("--caliper-workspace") + 1] == str(workspace) and called["cwd"] == str(workspace)
    assert argv[argv.index("--caliper-benchconfig") + 1] == "benchmarks/smoke.yaml"
    assert argv[argv.index("--caliper-networkconfig") + 1] == str(layout.caliper_network_config)
    assert argv[argv.index("--caliper-report-path") + 1] == str(run_dir / "report.html")
    network_config = yaml.safe_load(layout.caliper_network_config.read_text())
    assert [c["id"] for c in network_config["channels"][0]["contracts"]] == ["medfabric", "medfabric-node"]

    results = result.results
    assert results["schema"] == "medfabric-bench/1" and results["suite"] == "smoke" and results["passed"]
    assert results["profile"] == "default" and results["chaincodes"] == ["medfabric", "medfabric-node"]
    assert results["tuning"] == {
        "channels": {"local": {"consensus": "raft", "batch_timeout_ms": 250, "max_message_count": 100},
                     "public": {"consensus": "bft", "batch_timeout_ms": 250, "max_message_count": 100,
                                "smartbft": {"request_pool_size": 100000, "incoming_message_buffer_size": 200,
                                             "leader_heartbeat_count": 10, "request_forward_timeout_ms": 1000,
                                             "request_complain_timeout_ms": 4000,
                                             "request_auto_remove_timeout_ms": 180000,
                                             "view_change_resend_interval_ms": 2000,
                                             "view_change_timeout_ms": 10000, "leader_heartbeat_timeout_ms": 10000,
                                             "collect_timeout_ms": 1000}}},
        "peer_gateway_concurrency": 500}
    assert results["machine"]["cores"] == os.cpu_count() and results["machine"]["usable_cores"] >= 1
    assert results["caliper"]["exit_code"] == 0 and results["caliper"]["report"] == "report.html"
    assert results["caliper"]["cpu_seconds"] >= 0.35  # the manager and its forked worker, all reaped
    assert results["cpu"]["caliper"]["seconds"] >= 0.2  # sampled from /proc while it ran
    assert {"peers", "orderers", "chaincode-python", "chaincode-node", "data-services"} <= set(results["cpu"])
    local, baseline = results["rounds"]
    assert (local["label"], local["channel_kind"], local["submitted"], local["succeeded"]) == (
        "put-local", "local", 20, 20)
    assert (baseline["channel_kind"], baseline["workers"]) == ("baseline", 1)
    assert local["settings"]["txNumber"] == 20 and local["latency_ms"]["p50"] > 0 and local["goodput_tps"] > 0
    assert set(local["cpu"]) >= {"caliper", "peers"}
    assert lines[0].startswith("bench smoke: 2 rounds, profile default, results in ")
    assert any("transactions recorded" in line and "Caliper" in line for line in lines[1:])
    assert bench.summary_lines(results)[0].startswith("round 0 put-local [local]: 20/20 ok, goodput ")


def test_caliper_failing_fails_the_run(topology, tmp_path, workspace, monkeypatch):
    fake_caliper(monkeypatch, exit=3)
    result, _lines, _layout = run(topology, tmp_path, workspace)
    assert result.problems == [f"Caliper exited with status 3 (see {result.run_dir / 'caliper.log'})"]
    assert result.results["passed"] is False and result.results["caliper"]["exit_code"] == 3


def test_a_round_with_unexpected_failures_or_no_records_fails_the_run(topology, tmp_path, workspace, monkeypatch):
    fake_caliper(monkeypatch, rounds=[{"label": "put-local", "ok": 5, "failed": 2, "error": "chaincode refused"},
                                      {"label": "put-baseline-public"}])
    result, _lines, _layout = run(topology, tmp_path, workspace)
    assert result.problems == [
        "round 0 (put-local): 2 of 7 transactions failed (first: chaincode refused)",
        "round 1 (put-baseline-public) has no records",
    ]
    assert (tmp_path / "build" / "bench" / "latest").resolve() == result.run_dir  # results are kept anyway


def test_a_round_may_declare_its_failures_expected(topology, tmp_path, workspace, monkeypatch):
    suite = json.loads(json.dumps(SUITE))
    suite["test"]["rounds"][1]["label"] = "put-invalid-expect-failures"
    (workspace / "benchmarks" / "smoke.yaml").write_text(yaml.safe_dump(suite))
    fake_caliper(monkeypatch, rounds=[{"label": "put-local", "ok": 3},
                                      {"label": "put-invalid-expect-failures", "failed": 6, "error": "refused"}])
    result, _lines, _layout = run(topology, tmp_path, workspace)
    assert result.problems == []
    rejected = result.results["rounds"][1]
    assert (rejected["expect_failures"], rejected["failed"], rejected["succeeded"]) == (True, 6, 0)


def test_labels_with_other_characters_match_their_file_names(topology, tmp_path, workspace, monkeypatch):
    suite = json.loads(json.dumps(SUITE))
    suite["test"]["rounds"][0]["label"] = "put local (warm-up)"
    (workspace / "benchmarks" / "smoke.yaml").write_text(yaml.safe_dump(suite))
    fake_caliper(monkeypatch, rounds=[{"label": "put_local_warm-up_", "ok": 3},
                                      {"label": "put-baseline-public", "ok": 3}])
    result, _lines, _layout = run(topology, tmp_path, workspace)
    assert result.problems == [] and result.results["rounds"][0]["label"] == "put local (warm-up)"


def test_records_of_a_round_the_suite_does_not_have_fail_the_run(topology, tmp_path, workspace, monkeypatch):
    fake_caliper(monkeypatch, rounds=[{"label": "put-local", "ok": 1}, {"label": "renamed", "ok": 1},
                                      {"label": "extra", "ok": 1}])
    result, _lines, _layout = run(topology, tmp_path, workspace)
    assert result.problems == [
        f"{result.run_dir / 'records'} has records of round 2, which the suite does not have",
        "round 1: its records are labelled 'renamed', not 'put-baseline-public'",
    ]


def test_rounds_limits_the_run_to_the_first_rounds_with_a_copy_of_the_suite(topology, tmp_path, workspace,
                                                                            monkeypatch):
    fake_caliper(monkeypatch, rounds=[{"label": "put-local", "ok": 2}])
    result, _lines, _layout = run(topology, tmp_path, workspace, rounds=1)
    assert result.problems == [] and [r["label"] for r in result.results["rounds"]] == ["put-local"]
    argv = json.loads((tmp_path / "caliper-args.json").read_text())["argv"]
    ran = Path(argv[argv.index("--caliper-benchconfig") + 1])
    assert ran == result.run_dir / "benchmark.yaml"
    assert [r["label"] for r in yaml.safe_load(ran.read_text())["test"]["rounds"]] == ["put-local"]
    with pytest.raises(BenchError, match="--rounds 3: suite 'smoke' has 2 rounds"):
        run(topology, tmp_path, workspace, rounds=3)


def test_a_consortium_that_is_not_running_is_refused_before_caliper_starts(topology, tmp_path, workspace,
                                                                           monkeypatch):
    fake_caliper(monkeypatch)
    monkeypatch.setattr(bench, "Supervisor", FakeConsortium([]))
    with pytest.raises(BenchError, match=r"the consortium is not running .*`make up` first"):
        run(topology, tmp_path, workspace)
    names = network.process_names(topology)
    monkeypatch.setattr(bench, "Supervisor", FakeConsortium(names[1:]))
    with pytest.raises(BenchError, match=rf"not fully running \(1 of {len(names)} processes down, {names[0]} first"):
        run(topology, tmp_path, workspace)
    monkeypatch.setattr(bench, "Supervisor", FakeConsortium(names))
    monkeypatch.setattr(bench, "tls_handshake", lambda host, port: lambda: False)
    with pytest.raises(BenchError, match="duty.hospital-a.medfabric.local does not answer on 127.0.0.1:7100"):
        run(topology, tmp_path, workspace)
    assert not (tmp_path / "caliper-args.json").exists()


def test_without_baseline_servers_the_config_lists_medfabric_only_and_baseline_rounds_are_refused(
        topology, tmp_path, workspace, monkeypatch):
    fake_caliper(monkeypatch, rounds=[{"label": "put-local", "ok": 2}])
    names = [n for n in network.process_names(topology) if "medfabric-node" not in n]
    monkeypatch.setattr(bench, "Supervisor", FakeConsortium(names))
    with pytest.raises(BenchError, match="suite 'smoke' has baseline rounds, but medfabric-node is not deployed"):
        run(topology, tmp_path, workspace)
    result, _lines, layout = run(topology, tmp_path, workspace, rounds=1)
    assert result.results["chaincodes"] == ["medfabric"]
    config = yaml.safe_load(layout.caliper_network_config.read_text())
    assert all([c["id"] for c in channel["contracts"]] == ["medfabric"] for channel in config["channels"])


def test_caliper_not_installed_is_a_one_line_reason(tmp_path):
    (tmp_path / "node_modules").mkdir()
    reason = bench.caliper_unavailable(tmp_path)
    assert reason in (f"Caliper is not installed in {tmp_path}: `npm ci` there (or `make bench-deps`)",
                      "node is not installed: Caliper needs Node.js 20")


def test_the_caliper_command_is_the_workspaces_own_launch_manager(tmp_path):
    command = bench.caliper_command(tmp_path / "caliper", tmp_path / "network.yaml", "benchmarks/smoke.yaml",
                                    tmp_path / "run" / "report.html")
    assert command == [
        "node", str(tmp_path / "caliper" / "node_modules" / ".bin" / "caliper"), "launch", "manager",
        "--caliper-workspace", str(tmp_path / "caliper"),
        "--caliper-networkconfig", str(tmp_path / "network.yaml"),
        "--caliper-benchconfig", "benchmarks/smoke.yaml", "--caliper-flow-only-test",
        "--caliper-report-path", str(tmp_path / "run" / "report.html")]


def test_run_folders_are_unique_per_second_and_suite(tmp_path):
    now = datetime(2030, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    first = bench.new_run_dir(tmp_path, "smoke", now)
    second = bench.new_run_dir(tmp_path, "smoke", now)
    assert (first.name, second.name) == ("20300102T030405Z-smoke", "20300102T030405Z-smoke-2")
    bench.point_latest(tmp_path, first)
    bench.point_latest(tmp_path, second)
    assert latest_bench_run(tmp_path) == second


def test_no_run_yet_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no benchmark run in .* \\(run `make bench` first\\)"):
        latest_bench_run(tmp_path)


def test_the_profile_the_channels_were_created_with_is_the_one_reported(tmp_path, topology):
    layout = NetworkLayout(tmp_path / "network")
    assert bench.running_profile(layout, None) is None
    assert bench.running_profile(layout, "low-latency") == "low-latency"
    layout.tuning_record.parent.mkdir(parents=True)
    layout.tuning_record.write_text(json.dumps({"profile": "high-throughput", "channels": {}}))
    assert bench.running_profile(layout, None) == "high-throughput"
    assert bench.running_profile(layout, "high-throughput") == "high-throughput"
    with pytest.raises(BenchError, match="runs profile 'high-throughput', not 'low-latency': `make clean` and "
                                         "`make up PROFILE=low-latency` first"):
        bench.running_profile(layout, "low-latency")


# -- the command -----------------------------------------------------------------------------------------------

@pytest.fixture
def cli_env(tmp_path, monkeypatch, workspace):
    monkeypatch.setenv("MEDFABRIC_BUILD_DIR", str(tmp_path / "build" / "network"))
    monkeypatch.delenv("MEDFABRIC_TOPOLOGY", raising=False)
    monkeypatch.delenv("MEDFABRIC_PROFILE", raising=False)
    monkeypatch.setattr(bench, "CALIPER_DIR", workspace)
    original = bench.run_bench
    monkeypatch.setattr(cli, "run_bench", lambda *args, **kwargs: original(
        *args, caliper_dir=workspace, sample_interval=0.05, progress_interval=0.1, **kwargs))
    return tmp_path


def test_bench_json_prints_the_results(cli_env, monkeypatch):
    fake_caliper(monkeypatch)
    result = cli_runner().invoke(cli.network, ["bench", "--suite", "smoke", "--json"])
    assert result.exit_code == 0, result.output
    results = json.loads(result.stdout)
    assert results["passed"] and [r["label"] for r in results["rounds"]] == ["put-local", "put-baseline-public"]
    assert result.stderr.startswith("bench smoke: 2 rounds")  # progress goes to stderr


def test_bench_prints_a_line_per_round_then_where_the_results_are(cli_env, monkeypatch):
    fake_caliper(monkeypatch, rounds=[{"label": "put-local", "ok": 20}])
    result = cli_runner().invoke(cli.network, ["bench", "--suite", "smoke", "--rounds", "1"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith("round 0 put-local [local]: 20/20 ok") and len(lines) == 2
    assert lines[1].startswith("results: ") and lines[1].endswith("results.json (`medfabric bench report`)")


def test_a_failed_run_exits_1_with_one_line_after_the_results(cli_env, monkeypatch):
    fake_caliper(monkeypatch, rounds=[{"label": "put-local", "failed": 20, "error": "invalid entry"},
                                      {"label": "put-baseline-public", "ok": 1}])
    result = cli_runner().invoke(cli.network, ["bench", "--suite", "smoke", "--json"])
    assert result.exit_code == 1
    assert json.loads(result.stdout)["passed"] is False
    assert result.stderr.splitlines()[-1] == (
        "error: round 0 (put-local): 20 of 20 transactions failed (first: invalid entry)")


def test_bench_with_a_profile_the_consortium_does_not_run_is_a_one_line_error(cli_env, monkeypatch):
    layout = NetworkLayout(cli_env / "build" / "network")
    layout.tuning_record.parent.mkdir(parents=True)
    layout.tuning_record.write_text(json.dumps({"profile": "default", "channels": {}}))
    result = cli_runner().invoke(cli.network, ["bench", "--suite", "smoke", "--profile", "low-latency"])
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        "error: the consortium runs profile 'default', not 'low-latency': `make clean` and "
        "`make up PROFILE=low-latency` first")
