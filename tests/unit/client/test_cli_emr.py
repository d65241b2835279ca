"""The `emr`, `audit`, `data-service` and `demo` commands on the fake Fabric and real data services.

The commands connect through medfabric.consortium.connection.connect_as, which the tests point at
the fake Fabric; everything else (topology file, crypto tree, data services) is real.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from medfabric.sharing import audit
from medfabric.cli.main import cli
from medfabric.crypto import canonical_json
from medfabric.sharing.synthetic import generate_patient_bundle

from ...cli_runner import cli_runner

OBSERVATION = generate_patient_bundle(11, "P-001", n_observations=1)[2]
NEW_COMMANDS = [("emr", "put"), ("emr", "get"), ("emr", "show"), ("emr", "find"), ("emr", "grant"), ("emr", "revoke"),
                ("emr", "erase"), ("emr", "request"), ("emr", "emergency"), ("audit", "log"), ("audit", "anchor"),
                ("audit", "verify"), ("data-service",), ("demo",)]


@pytest.fixture
def medfabric(consortium, monkeypatch):
    """medfabric(*args) -> the click result of the command on the test consortium."""
    monkeypatch.setenv("MEDFABRIC_BUILD_DIR", str(consortium.layout.root))
    monkeypatch.setattr("medfabric.consortium.connection.connect_as", consortium.fabric.connect_as)
    monkeypatch.setattr(audit, "SETTLE", timedelta(0))  # the fake commits at once: nothing left to settle

    def run(*args: str):
        return cli_runner().invoke(cli, ["--topology", str(consortium.topology_file), *args], catch_exceptions=False)

    return run


@pytest.fixture
def observation_file(tmp_path):
    path = tmp_path / "obs.json"
    path.write_text(json.dumps(OBSERVATION, indent=2))
    return path


def as_doctor(domain: str) -> list[str]:
    return ["--domain", domain, "--as", "doctor"]


def error_line(result) -> str:
    """The one line on stderr of a failed command."""
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def put(medfabric, observation_file, *extra: str) -> str:
    result = medfabric("emr", "put", *as_doctor("hospital-a"), "--patient", "P-001", "--file", str(observation_file),
                       "--json", *extra)
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)["record_id"]


def test_the_sharing_story_through_the_cli(medfabric, observation_file, tmp_path):
    record_id = put(medfabric, observation_file, "--publish")
    canonical = canonical_json(OBSERVATION)

    own = medfabric("emr", "get", record_id, *as_doctor("hospital-a"), "--out", str(tmp_path / "own.json"))
    assert own.exit_code == 0 and "hashes verified" in own.stdout
    assert (tmp_path / "own.json").read_bytes() == canonical
    found = json.loads(medfabric("emr", "find", "--patient", "P-001", *as_doctor("hospital-b"), "--json").stdout)
    assert [(e["record_id"], e["channels"]) for e in found] == [(record_id, ["public"])]

    request = ("emr", "request", record_id, "--from", "hospital-a", *as_doctor("hospital-b"))
    assert "denied on public: no grant" in error_line(medfabric(*request, "--out", str(tmp_path / "b.json")))
    granted = medfabric("emr", "grant", record_id, *as_doctor("hospital-a"), "--to", "hospital-b", "--user", "doctor",
                        "--purpose", "treatment", "--until", "2099-12-31")
    assert granted.exit_code == 0, granted.stderr
    grant_id = granted.stdout.split()[0]
    assert "until 2100-01-01T00:00:00.000Z" in granted.stdout
    assert medfabric(*request, "--out", str(tmp_path / "b.json")).exit_code == 0
    assert (tmp_path / "b.json").read_bytes() == canonical

    assert medfabric("emr", "revoke", grant_id, *as_doctor("hospital-a")).exit_code == 0
    assert f"grant {grant_id} revoked" in error_line(medfabric(*request, "--out", str(tmp_path / "b2.json")))
    emergency = medfabric("emr", "emergency", record_id, "--reason", "unconscious in the ER", *as_doctor("hospital-c"),
                          "--out", str(tmp_path / "c.json"))
    assert emergency.exit_code == 0 and "break-glass: unconscious in the ER" in emergency.stdout

    erased = medfabric("emr", "erase", record_id, *as_doctor("hospital-a"))
    assert erased.exit_code == 0 and "payload destroyed" in erased.stdout
    shown = json.loads(medfabric("emr", "show", record_id, *as_doctor("hospital-b"), "--channel", "public",
                                 "--json").stdout)
    assert shown["erased"] and not shown["location"]
    assert "was erased" in error_line(medfabric("emr", "get", record_id, *as_doctor("hospital-a"),
                                                "--out", str(tmp_path / "gone.json")))
    assert not (tmp_path / "gone.json").exists() and not (tmp_path / "b2.json").exists()

    logged = medfabric("audit", "log", "--record", record_id, "--channel", "public", *as_doctor("hospital-a"), "--json")
    actions = [entry["action"] for entry in json.loads(logged.stdout)]
    assert actions == ["write", "request", "denied", "grant", "request", "read", "deliver", "revoke", "request",
                       "denied", "break-glass", "deliver", "erase"]
    flagged = [entry["action"] for entry in json.loads(logged.stdout) if entry["flagged"]]
    assert flagged == ["break-glass", "deliver"]
    local = medfabric("audit", "log", "--record", record_id, "--channel", "hospital-a-local",
                      *as_doctor("hospital-a"), "--json")
    assert [(e["action"], e["flagged"]) for e in json.loads(local.stdout) if e["flagged"]] == [("deliver", True)]
    anchored = medfabric("audit", "anchor", *as_doctor("hospital-a"))
    assert anchored.exit_code == 0 and "anchored 7 entries of hospital-a-local" in anchored.stdout
    verified = medfabric("audit", "verify", *as_doctor("hospital-a"))
    assert verified.exit_code == 0 and "1 anchors of hospital-a-local verified (7 entries)" in verified.stdout


def test_verify_names_the_period_that_no_longer_matches_its_anchor(consortium, medfabric, observation_file):
    put(medfabric, observation_file)
    assert medfabric("audit", "anchor", "--domain", "hospital-a").exit_code == 0
    state = consortium.fabric.world_state("hospital-a-local")
    key = next(key for key in sorted(state) if key[1].startswith("\x00log\x00"))
    state[key] = canonical_json({**json.loads(state[key]), "outcome": "failure"})

    line = error_line(medfabric("audit", "verify", "--domain", "hospital-a"))
    assert f"hospital-a-local [{audit.FIRST_SINCE}, " in line and "does not match its anchor" in line
    as_json = medfabric("audit", "verify", "--domain", "hospital-a", "--json")
    assert as_json.exit_code == 1 and json.loads(as_json.stdout)["mismatch"]["since"] == audit.FIRST_SINCE


def test_malformed_fhir_is_one_line_naming_the_field_and_writes_nothing(consortium, medfabric, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**OBSERVATION, "status": 5}))

    line = error_line(medfabric("emr", "put", *as_doctor("hospital-a"), "--patient", "P-001", "--file", str(bad)))

    assert line.startswith(f"error: {bad}: invalid FHIR R5 Observation: Observation.status")
    assert_nothing_written(consortium)


def test_missing_file_is_one_line_and_writes_nothing(consortium, medfabric, tmp_path):
    line = error_line(medfabric("emr", "put", *as_doctor("hospital-a"), "--patient", "P-001",
                                "--file", str(tmp_path / "absent.json")))

    assert "absent.json" in line
    assert_nothing_written(consortium)


def test_unreachable_data_service_is_one_line_and_writes_nothing(consortium, medfabric, observation_file):
    consortium.stop_data_service("hospital-a")

    line = error_line(medfabric("emr", "put", *as_doctor("hospital-a"), "--patient", "P-001",
                                "--file", str(observation_file), "--publish"))

    assert "cannot reach the data service of hospital-a" in line
    assert_nothing_written(consortium)


def test_unknown_record_is_one_line_and_writes_no_file(medfabric, tmp_path):
    line = error_line(medfabric("emr", "get", "nope", *as_doctor("hospital-b"), "--out", str(tmp_path / "out.json")))

    assert "record nope not found" in line
    assert not (tmp_path / "out.json").exists()


def test_a_chaincode_refusal_is_one_line_with_the_peers_reason(medfabric):
    line = error_line(medfabric("emr", "show", "bad id!", *as_doctor("hospital-a")))

    assert "invalid argument: 'record_id' must be 1-128 characters" in line


@pytest.mark.parametrize("until, message", [("2099-12-31T12:00", "needs a time zone"), ("soon", "neither a date")])
def test_a_grant_end_must_be_a_date_or_a_zoned_time(medfabric, until, message):
    line = error_line(medfabric("emr", "grant", "rec-1", *as_doctor("hospital-a"), "--to", "hospital-b",
                                "--purpose", "treatment", "--until", until))

    assert message in line


def test_data_service_runs_the_services_main_with_the_same_settings(consortium, medfabric, monkeypatch):
    calls = []
    monkeypatch.setattr("medfabric.data_service.server.main", lambda argv: calls.append(argv) or 2)

    result = medfabric("data-service", "--domain", "hospital-b", "--port", "0")

    assert result.exit_code == 2
    assert calls == [["--domain", "hospital-b", "--identity", "data-service", "--port", "0",
                      "--topology", str(consortium.topology_file)]]


def test_demo_tells_the_whole_story(consortium, medfabric, monkeypatch):
    monkeypatch.setattr("medfabric.sharing.demo.connect_as", consortium.fabric.connect_as)

    result = medfabric("demo")

    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    for expected in ("indexed on hospital-a-local, public", "read it back", "without a grant: access to",
                     "granted it to hospital-b", "requested it again", "revoked the grant", "broke the glass",
                     "reading now: record", "public log of", "intact"):
        assert any(expected in line for line in lines), expected
    report = json.loads(medfabric("demo", "--json").stdout)
    assert [step["action"] for step in report["steps"]] == [
        "put", "own read", "request denied", "grant", "request delivered", "revoked", "break-glass", "erase",
        "audit log", "anchor"]
    assert report["steps"][-1]["verification"]["mismatch"] is None


@pytest.mark.parametrize("command", NEW_COMMANDS, ids=" ".join)
def test_every_command_explains_itself_with_an_example(medfabric, command):
    result = medfabric(*command, "--help")

    assert result.exit_code == 0 and f"Example: medfabric {' '.join(command)}" in result.stdout


def assert_nothing_written(consortium) -> None:
    for domain in consortium.topology.domains:
        assert consortium.stored_files(domain.id) == []
    for channel in consortium.topology.channels:
        assert consortium.index_keys(channel.name) == []
