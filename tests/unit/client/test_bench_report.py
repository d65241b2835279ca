"""`medfabric bench report`: a run's results.json as a table and PNG plots, and one-line errors for runs that
cannot be read."""

from __future__ import annotations

import copy
import json
import os
import struct
from pathlib import Path

import pytest

from medfabric.bench import report as bench_report
from medfabric.bench.report import ReportError, load_results, results_table, write_plots
from medfabric.cli.main import cli

from ...cli_runner import cli_runner

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def round_entry(index, label, kind, goodput, p50, failed=0, expect_failures=False, caliper=55.0):
    return {
        "index": index, "label": label, "channel_kind": kind, "expect_failures": expect_failures,
        "settings": {"txNumber": 100}, "workers": 1,
        "submitted": 100, "succeeded": 100 - failed, "failed": failed,
        "start_ms": 1_700_000_000_000 + index * 10_000, "end_ms": 1_700_000_000_000 + index * 10_000 + 900,
        "duration_s": 0.9, "goodput_tps": goodput, "send_rate_tps": goodput * 1.1,
        "latency_ms": {"p50": p50, "p95": p50 * 2, "p99": p50 * 3, "max": p50 * 4, "mean": p50 * 1.2}
        if failed < 100 else None,
        "errors": [{"error": "refused", "count": failed}] if failed else [],
        "cpu": {"caliper": {"seconds": 0.5, "percent": caliper}, "peers": {"seconds": 1.0, "percent": 110.0}},
    }


RESULTS = {
    "schema": "medfabric-bench/1",
    "suite": "default",
    "profile": "low-latency",
    "tuning": {"channels": {}, "peer_gateway_concurrency": 500},
    "chaincodes": ["medfabric", "medfabric-node"],
    "started_at": "2030-01-01T12:00:00+00:00", "finished_at": "2030-01-01T12:01:00+00:00",
    "machine": {"cores": 2, "usable_cores": 2},
    "caliper": {"exit_code": 0, "cpu_seconds": 12.5, "report": "report.html"},
    "sample_interval_s": 0.5,
    "cpu": {},
    "rounds": [
        round_entry(0, "put-local", "local", 112.4, 210.0, caliper=61.5),
        round_entry(1, "get-local", "local", 443.0, 35.0),
        round_entry(2, "put-public", "public", 55.2, 480.0),
        round_entry(3, "put-baseline-local", "baseline", 123.1, 190.0),
        round_entry(4, "put-invalid-expect-failures", "local", 0.0, 0.0, failed=100, expect_failures=True),
    ],
    "passed": True,
    "problems": [],
}


@pytest.fixture
def run_dir(tmp_path):
    folder = tmp_path / "bench" / "20300101T120000Z-default"
    folder.mkdir(parents=True)
    (folder / "results.json").write_text(json.dumps(RESULTS))
    return folder


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_results_are_loaded_and_checked(run_dir):
    assert load_results(run_dir) == RESULTS


def test_plots_are_valid_pngs_with_a_panel_per_channel_kind(run_dir, tmp_path):
    paths = write_plots(load_results(run_dir), tmp_path / "plots")
    assert [p.name for p in paths] == ["throughput.png", "latency.png"]
    widths = []
    for path in paths:
        width, height = png_size(path)
        assert width > 300 and height > 200
        widths.append(width)
    one_kind = copy.deepcopy(RESULTS)
    one_kind["rounds"] = [r for r in one_kind["rounds"] if r["channel_kind"] == "public"]
    narrow = write_plots(one_kind, tmp_path / "one")
    assert png_size(narrow[0])[0] < widths[0]  # three panels (local, public, baseline) against one


def test_other_channel_kinds_get_a_panel_too(tmp_path):
    results = copy.deepcopy(RESULTS)
    results["rounds"][1]["channel_kind"] = "other"
    for path in write_plots(results, tmp_path):
        png_size(path)


def test_a_run_without_rounds_cannot_be_plotted(tmp_path):
    empty = dict(RESULTS, rounds=[])
    with pytest.raises(ReportError, match="no rounds to plot"):
        write_plots(empty, tmp_path)


def test_the_table_has_a_row_per_round_with_the_figures(run_dir):
    from rich.console import Console

    console = Console(width=200, record=True)
    console.print(results_table(load_results(run_dir)))
    text = console.export_text()
    assert "default — profile low-latency, 2 cores" in text
    for header in ("round", "channel kind", "goodput TPS", "send TPS", "p50 ms", "p95 ms", "p99 ms", "failed",
                   "Caliper CPU %"):
        assert header in text
    row = next(line for line in text.splitlines() if "0 put-local" in line).split()
    assert row == ["0", "put-local", "local", "112.4", "123.6", "210.0", "420.0", "630.0", "0/100", "61.5"]
    rejected = next(line for line in text.splitlines() if "put-invalid-expect-failures" in line).split()
    assert rejected[-2:] == ["100/100", "55.0"] and rejected[5:8] == ["-", "-", "-"]


def test_the_command_prints_the_table_and_writes_the_plots_into_the_run(run_dir):
    result = cli_runner().invoke(cli, ["bench", "report", "--run", str(run_dir)])
    assert result.exit_code == 0, result.output
    assert "put-baseline-local" in result.stdout and "baseline" in result.stdout
    assert result.stdout.strip().splitlines()[-1] == (
        f"plots: {run_dir / 'throughput.png'}, {run_dir / 'latency.png'}")
    for name in ("throughput.png", "latency.png"):
        png_size(run_dir / name)


def test_the_command_reads_the_latest_run_by_default_and_answers_json(run_dir, tmp_path, monkeypatch):
    bench_dir = run_dir.parent
    os.symlink(run_dir.name, bench_dir / "latest")
    out = tmp_path / "plots"
    monkeypatch.setenv("MEDFABRIC_BENCH_DIR", str(bench_dir))
    result = cli_runner().invoke(cli, ["bench", "report", "--json", "--out", str(out)])
    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout)
    assert answer["run"] == str(run_dir) and answer["results"] == RESULTS
    assert answer["plots"] == [str(out / "throughput.png"), str(out / "latency.png")]
    png_size(out / "latency.png")


def test_the_latest_run_is_found_beside_the_build_folder(run_dir, monkeypatch):
    monkeypatch.delenv("MEDFABRIC_BENCH_DIR", raising=False)
    build = run_dir.parent.parent / "network"
    monkeypatch.setenv("MEDFABRIC_BUILD_DIR", str(build))
    os.symlink(run_dir.name, run_dir.parent / "latest")
    result = cli_runner().invoke(cli, ["bench", "report", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["run"] == str(run_dir)


def one_line_error(result) -> str:
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert result.stdout == ""
    return lines[0]


def test_no_run_yet_is_a_one_line_error(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDFABRIC_BENCH_DIR", str(tmp_path / "nothing"))
    line = one_line_error(cli_runner().invoke(cli, ["bench", "report"]))
    assert line == f"error: no benchmark run in {tmp_path / 'nothing'} (run `make bench` first)"


def test_a_folder_without_results_is_a_one_line_error(tmp_path):
    line = one_line_error(cli_runner().invoke(cli, ["bench", "report", "--run", str(tmp_path)]))
    assert line == f"error: no results.json in {tmp_path} (is it a benchmark run folder?)"


@pytest.mark.parametrize("content, problem", [
    ('{"schema": "medfabric-bench/1", "rounds": [', "is not valid JSON (line 1): is the run complete?"),
    ("", "is not valid JSON"),
    ('{"rounds": []}', "is not a benchmark results file (schema medfabric-bench/1)"),
    ('[1, 2]', "is not a benchmark results file"),
    ('{"schema": "medfabric-bench/1", "rounds": {}}', "rounds must be a list"),
    ('{"schema": "medfabric-bench/1", "rounds": [7]}', "rounds[0] is not an object"),
])
def test_a_garbled_results_file_is_a_one_line_error(tmp_path, content, problem):
    (tmp_path / "results.json").write_text(content)
    line = one_line_error(cli_runner().invoke(cli, ["bench", "report", "--run", str(tmp_path)]))
    assert line.startswith(f"error: {tmp_path / 'results.json'}") and problem in line


@pytest.mark.parametrize("mutate, problem", [
    (lambda r: r.pop("label"), "rounds[1].label must be a string"),
    (lambda r: r.update(submitted="100"), "rounds[1].submitted must be a number"),
    (lambda r: r.update(failed=True), "rounds[1].failed must be a number"),
    (lambda r: r.update(goodput_tps="fast"), "rounds[1].goodput_tps must be a number or null"),
    (lambda r: r.update(latency_ms={"p50": 1}), "rounds[1].latency_ms must hold p50, p95 and p99"),
    (lambda r: r.update(cpu=[]), "rounds[1].cpu must be an object"),
])
def test_a_round_missing_a_figure_is_named(tmp_path, mutate, problem):
    results = copy.deepcopy(RESULTS)
    mutate(results["rounds"][1])
    (tmp_path / "results.json").write_text(json.dumps(results))
    with pytest.raises(ReportError) as refused:
        load_results(tmp_path)
    assert problem in str(refused.value)


def test_the_client_does_not_import_ops():
    source = Path(bench_report.__file__).read_text()
    assert "medfabric_ops" not in source
