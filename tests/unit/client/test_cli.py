"""The `medfabric` command: one-line errors, non-zero exits, the ops plugin."""

from __future__ import annotations

import json

import pytest

from medfabric.cli.main import _load_plugins, cli, one_line
from medfabric.gateway import ErrorDetail, GatewayError

from ...cli_runner import cli_runner


@pytest.fixture
def run(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDFABRIC_BUILD_DIR", str(tmp_path / "build"))
    _load_plugins()

    def invoke(*args: str):
        return cli_runner().invoke(cli, list(args), catch_exceptions=False)

    return invoke


def _error_line(result) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_network_group_comes_from_the_ops_plugin(run):
    result = run("--help")
    assert result.exit_code == 0
    assert "network" in result.output and "emr" in result.output


def test_missing_record_file_is_one_line(run, tmp_path):
    result = run("emr", "put", "--domain", "hospital-a", "--patient", "P-1", "--file", str(tmp_path / "absent.json"))
    assert result.exit_code == 1
    assert "absent.json" in _error_line(result)


def test_invalid_json_names_the_file_and_line(run, tmp_path):
    bad = tmp_path / "obs.json"
    bad.write_text('{"resourceType": "Observation",\n  oops}')
    result = run("emr", "put", "--domain", "hospital-a", "--patient", "P-1", "--file", str(bad))
    assert result.exit_code == 1
    assert _error_line(result).startswith(f"error: {bad}: not JSON") and "line 2" in result.stderr


def test_unknown_domain_lists_the_known_ones(run, tmp_path):
    observation = tmp_path / "obs.json"
    observation.write_text(json.dumps({"resourceType": "Observation", "status": "final", "code": {"text": "x"}}))
    result = run("emr", "put", "--domain", "hospital-z", "--patient", "P-1", "--file", str(observation))
    assert result.exit_code == 1
    assert "unknown domain 'hospital-z'" in _error_line(result)


def test_unknown_user_and_missing_identity_say_what_to_do(run, tmp_path):
    out = str(tmp_path / "out.json")
    result = run("emr", "get", "rec-1", "--domain", "hospital-a", "--as", "janitor", "--out", out)
    assert result.exit_code == 1
    assert "no user 'janitor'" in _error_line(result)
    result = run("emr", "get", "rec-1", "--domain", "hospital-a", "--as", "doctor", "--out", out)
    assert result.exit_code == 1
    assert "run 'make up' first" in _error_line(result)


def test_unknown_channel_is_refused_before_connecting(run):
    result = run("emr", "show", "rec-1", "--domain", "hospital-a", "--channel", "nope")
    assert result.exit_code == 1
    assert "unknown channel 'nope'" in _error_line(result)


def test_one_line_appends_each_peer_message_once():
    error = GatewayError(
        "endorse failed",
        details=(ErrorDetail("127.0.0.1:7100", "HospitalAMSP", "invalid record:\nfield 'size'"),),
    )
    text = one_line(error)
    assert "\n" not in text
    assert text.count("field 'size'") == 1
