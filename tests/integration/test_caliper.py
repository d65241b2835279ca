"""Caliper against the real consortium: the smoke suite produces results, and a round whose transactions the
contract rejects every time fails the run.

Needs, beyond the consortium of conftest.py: node, Caliper installed in caliper/ (`make bench-deps`), and the
suites caliper/benchmarks/smoke.yaml and smoke-reject.yaml (a round the contract rejects, not labelled
-expect-failures). Without them: a failure in CI (which installs them), a skip elsewhere, saying which is missing.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from medfabric.consortium.layout import PROJECT_ROOT, latest_bench_run

from ..requirements import required

pytestmark = pytest.mark.integration

CALIPER_DIR = PROJECT_ROOT / "caliper"
SUITES = ("smoke", "smoke-reject")
BENCH_TIMEOUT = 900


@pytest.fixture(scope="module")
def caliper():
    if shutil.which("node") is None:
        required("node is not installed: Caliper cannot run")
    if not (CALIPER_DIR / "node_modules" / ".bin" / "caliper").exists():
        required("Caliper is not installed in caliper/ (`make bench-deps`)")
    missing = [suite for suite in SUITES if not (CALIPER_DIR / "benchmarks" / f"{suite}.yaml").is_file()]
    if missing:
        required(f"no caliper/benchmarks/{missing[0]}.yaml")
    return CALIPER_DIR


@pytest.fixture
def bench(caliper, consortium, tmp_path):
    """Run `medfabric network bench` on the test consortium, its runs kept under tmp_path; (result, bench dir)."""
    topology, _layout, env = consortium
    bench_dir = tmp_path / "bench"
    run_env = dict(env, MEDFABRIC_BENCH_DIR=str(bench_dir))

    def run(*args: str) -> subprocess.CompletedProcess:
        done = subprocess.run([sys.executable, "-m", "medfabric_ops", "bench", *args, "--topology",
                               str(topology.source)], env=run_env, capture_output=True, text=True,
                              timeout=BENCH_TIMEOUT)
        if done.returncode != 0 and "is not deployed" in done.stderr:
            required(done.stderr.strip().splitlines()[-1])  # the Node baseline could not be deployed here
        return done

    return run, bench_dir, run_env


def test_the_smoke_suite_produces_results(bench):
    run, bench_dir, env = bench
    done = run("--suite", "smoke", "--json")
    assert done.returncode == 0, f"{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    results = json.loads(done.stdout)
    assert results["schema"] == "medfabric-bench/1" and results["suite"] == "smoke" and results["passed"]
    assert results["caliper"]["exit_code"] == 0 and results["caliper"]["cpu_seconds"] > 0
    assert results["rounds"], "the smoke suite ran no round"
    for entry in results["rounds"]:
        assert entry["submitted"] > 0, entry["label"]
        if not entry["expect_failures"]:
            assert entry["failed"] == 0 and entry["succeeded"] == entry["submitted"], entry["errors"]
            assert entry["goodput_tps"] > 0 and entry["latency_ms"]["p50"] > 0
        assert entry["cpu"]["caliper"]["seconds"] > 0 and entry["cpu"]["peers"]["seconds"] > 0
    run_dir = latest_bench_run(bench_dir)
    assert json.loads((run_dir / "results.json").read_text()) == results
    assert (run_dir / "report.html").is_file() and any((run_dir / "records").iterdir())

    report = subprocess.run([sys.executable, "-m", "medfabric.cli", "bench", "report", "--json"], env=env,
                            capture_output=True, text=True, timeout=120)
    assert report.returncode == 0, report.stderr
    plots = json.loads(report.stdout)["plots"]
    assert [os.path.basename(p) for p in plots] == ["throughput.png", "latency.png"]
    assert all(open(p, "rb").read(8) == b"\x89PNG\r\n\x1a\n" for p in plots)


def test_a_round_the_contract_rejects_fails_the_run(bench):
    run, bench_dir, _env = bench
    done = run("--suite", "smoke-reject")
    assert done.returncode == 1, done.stdout[-2000:]
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("error: round ") and "transactions failed" in last, done.stderr[-3000:]
    results = json.loads((latest_bench_run(bench_dir) / "results.json").read_text())
    assert results["passed"] is False and results["caliper"]["exit_code"] == 0  # Caliper itself says 0
    rejected = [r for r in results["rounds"] if r["failed"] and not r["expect_failures"]]
    assert rejected and all(r["succeeded"] == 0 and r["failed"] == r["submitted"] > 0 for r in rejected)
