"""`medfabric fl` and `medfabric diagnose` refuse bad input in one line, before anything reaches a network."""

from __future__ import annotations

import pytest

from medfabric.cli.main import cli

from ...cli_runner import cli_runner


@pytest.fixture
def run(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDFABRIC_BUILD_DIR", str(tmp_path / "build"))
    return lambda *args: cli_runner().invoke(cli, list(args), catch_exceptions=False)


def error_line(result) -> str:
    assert result.exit_code != 0
    lines = result.stderr.strip().splitlines()
    assert lines, result.output
    return lines[-1]


@pytest.mark.parametrize(
    "args, problem",
    [
        (["fl", "task", "create", "--domains", "hospital-a,hospital-z"], "hospital-z"),
        (["fl", "task", "create", "--domains", "hospital-a", "--aggregator", "mean"], "'mean' is not one of"),
        (["fl", "task", "create", "--domains", "hospital-a", "--rounds", "0"], "--rounds"),
        (["fl", "task", "create", "--domains", "hospital-a", "--target-accuracy", "1.5"], "--target-accuracy"),
        (["fl", "train", "--task", "T", "--domain", "hospital-a", "--attack", "nice"], "'nice' is not one of"),
        (["diagnose", "check", "--server", "https://127.0.0.1:1", "--server-domain", "hospital-a", "--input",
          "absent.json", "--domain", "hospital-b"], "absent.json"),
        (["diagnose", "check", "--server", "https://127.0.0.1:1", "--server-domain", "hospital-a", "--input",
          "x.json", "--domain", "hospital-b", "--threshold", "0"], "--threshold"),
    ],
)
def test_bad_input_is_one_line_naming_it(run, args, problem):
    assert problem in error_line(run(*args))


def test_a_diagnose_check_input_that_is_not_numbers_is_named(run, tmp_path):
    bad = tmp_path / "x0.json"
    bad.write_text('{"not": "a list"')

    assert error_line(run("diagnose", "check", "--server", "https://127.0.0.1:1", "--server-domain", "hospital-a",
                          "--input", str(bad), "--domain", "hospital-b")).startswith(f"error: {bad}: not a JSON list")
