"""The `network` commands: output, JSON, and errors as one line on stderr with a non-zero exit."""

from __future__ import annotations

import json
import runpy
import sys
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest
import yaml

from medfabric.consortium.layout import NetworkLayout
from medfabric.consortium.topology import DEFAULT_TOPOLOGY
from medfabric_ops import cli
from medfabric_ops.network import StepTiming
from medfabric_ops.process import ProcessError

from .test_binaries import fake_release
from ...cli_runner import cli_runner

PLUGIN = EntryPoint("network", "medfabric_ops.cli:network", "medfabric.cli")  # as pyproject.toml declares it


@pytest.fixture
def build_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDFABRIC_BUILD_DIR", str(tmp_path / "network"))
    monkeypatch.delenv("FABRIC_BIN", raising=False)
    monkeypatch.setenv("MEDFABRIC_FABRIC_CACHE", str(tmp_path / "fabric-cache"))  # setup records what it found
    monkeypatch.delenv("MEDFABRIC_TOPOLOGY", raising=False)
    monkeypatch.delenv("MEDFABRIC_PROFILE", raising=False)
    monkeypatch.delenv("MEDFABRIC_BENCH_DIR", raising=False)
    # whether this machine could run the Node baseline must not change what the tests see
    monkeypatch.setattr(cli, "baseline_unavailable", lambda needs_node: None)
    return tmp_path / "network"


@pytest.fixture
def release(tmp_path, fabric_defaults) -> Path:
    """A fake release's bin/ beside a copy of Fabric's real sampleconfig: what `render` starts from."""
    bin_dir = fake_release(tmp_path / "release" / "bin")
    for name in ("core.yaml", "orderer.yaml"):
        (bin_dir.parent / "config" / name).write_bytes((fabric_defaults.source / name).read_bytes())
    return bin_dir


def invoke(*args: str, env: dict | None = None):
    return cli_runner().invoke(cli.network, list(args), env=env)


def assert_one_line_error(result, *fragments: str) -> None:
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0]
    assert result.stdout == ""


def test_the_group_offers_the_life_cycle_commands():
    assert set(cli.network.commands) == {"setup", "render", "up", "down", "status", "clean", "logs", "bench",
                                         "bench-consensus", "reliability"}


def test_a_missing_topology_is_a_one_line_error(build_dir, tmp_path):
    assert_one_line_error(invoke("status", "--topology", str(tmp_path / "nope.yaml")), "topology file not found")


def test_setup_with_an_incomplete_fabric_bin_is_a_one_line_error(build_dir, tmp_path):
    release = fake_release(tmp_path / "bin", commands=("peer",))
    result = invoke("setup", env={"FABRIC_BIN": str(release)})
    assert_one_line_error(result, "has no executable orderer, configtxgen, osnadmin")


def test_setup_reports_what_it_found(build_dir, tmp_path):
    release = fake_release(tmp_path / "bin")
    result = invoke("setup", env={"FABRIC_BIN": str(release)})
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == (
        f"Fabric 3.1.5: peer, orderer, configtxgen, osnadmin in {release} (from $FABRIC_BIN, recorded for later "
        f"commands)")
    later = json.loads(invoke("setup", "--json").stdout)  # without FABRIC_BIN: where the first setup found them
    assert (later["source"], later["bin_dir"], later["config_dir"]) == (
        "recorded", str(release), str(release.parent / "config"))
    report = json.loads(invoke("setup", "--json", env={"FABRIC_BIN": str(release)}).stdout)
    assert report["source"] == "FABRIC_BIN" and report["commands"]["configtxgen"] == str(release / "configtxgen")


def test_up_reports_each_step_time(build_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(cli.native, "up", lambda topology, layout, binaries, progress, with_baseline: [
        StepTiming("start orderers", 0.5), StepTiming("join peers", 1.25)])
    release = fake_release(tmp_path / "bin")
    result = invoke("up", "--json", env={"FABRIC_BIN": str(release)})
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["steps"] == [{"name": "start orderers", "seconds": 0.5}, {"name": "join peers", "seconds": 1.25}]
    assert report["total_seconds"] >= 0
    human = invoke("up", env={"FABRIC_BIN": str(release)}).stdout.splitlines()
    assert human[0].split() == ["start", "orderers", "0.50", "s"] and human[-1].startswith("consortium up in ")


def test_a_node_that_dies_during_up_is_named_with_its_log_tail(build_dir, tmp_path, monkeypatch):
    def crash(topology, layout, binaries, progress, with_baseline):
        raise ProcessError("duty.hospital-a.medfabric.local", "exited before it was ready",
                           Path("/logs/duty.log"), ["panic: listen tcp 127.0.0.1:7100: bind: address already in use"])

    monkeypatch.setattr(cli.native, "up", crash)
    result = invoke("up", env={"FABRIC_BIN": str(fake_release(tmp_path / "bin"))})
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "error: duty.hospital-a.medfabric.local exited before it was ready; last lines of /logs/duty.log:",
        "  panic: listen tcp 127.0.0.1:7100: bind: address already in use",
    ]


def test_down_with_nothing_running(build_dir):
    result = invoke("down", "--json")
    assert result.exit_code == 0 and json.loads(result.stdout) == {"stopped": []}
    assert invoke("down").stdout.strip() == "nothing was running"


def test_logs_of_an_unknown_node_is_a_one_line_error(build_dir):
    assert_one_line_error(invoke("logs", "nosuchnode"), "'nosuchnode' is no node of the topology")


def test_logs_resolve_a_name_prefix_and_show_the_last_lines(build_dir):
    layout = NetworkLayout(build_dir)
    layout.logs.mkdir(parents=True)
    bft0 = "bft0.orderer.hospital-a.medfabric.local"
    layout.log_file(bft0).write_text("one\ntwo\nthree\n")
    result = invoke("logs", "bft0", "-n", "2")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines() == ["two", "three"]
    layout.log_file("raft0.orderer.hospital-a.medfabric.local").write_text("raft\n")
    assert invoke("logs", "-n", "1").stdout.splitlines() == [
        "raft0.orderer.hospital-a.medfabric.local | raft", f"{bft0} | three"]
    assert_one_line_error(invoke("logs", "duty"), "'duty' matches duty.hospital-a")


def test_status_json_lists_processes_and_channels(build_dir):
    result = invoke("status", "--json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["processes"] == [] and "public" in report["channels"]


def test_the_medfabric_command_runs_the_group_as_its_network_plugin(build_dir, tmp_path, monkeypatch):
    from medfabric.cli import main as client_cli

    monkeypatch.setattr(client_cli, "entry_points", lambda group: [PLUGIN] if group == PLUGIN.group else [])
    monkeypatch.setattr(client_cli.cli, "commands", dict(client_cli.cli.commands))
    client_cli._load_plugins()
    assert client_cli.cli.commands["network"] is cli.network
    result = cli_runner().invoke(client_cli.cli, ["network", "status", "--topology", str(tmp_path / "nope.yaml")])
    assert_one_line_error(result, "topology file not found")


def test_python_m_medfabric_ops_runs_the_same_group(monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["python -m medfabric_ops", "--help"])
    with pytest.raises(SystemExit) as done:
        runpy.run_module("medfabric_ops", run_name="__main__")
    assert done.value.code == 0
    assert "status" in capsys.readouterr().out


def test_render_without_binaries_says_to_run_setup(build_dir):
    assert_one_line_error(invoke("render"), "Fabric's sampleconfig", "run `make setup` (or set FABRIC_BIN) first")


def test_render_writes_crypto_configs_and_compose_without_starting_anything(build_dir, tmp_path, monkeypatch,
                                                                             release):
    compose_file = tmp_path / "docker-compose.yaml"
    monkeypatch.setattr(cli, "COMPOSE_FILE", compose_file)
    result = invoke("render", "--json", env={"FABRIC_BIN": str(release)})
    assert result.exit_code == 0, result.output
    layout = NetworkLayout(build_dir)
    topology = cli.load_topology(None)
    domain = topology.domains[0]
    assert (layout.user_msp(domain, "doctor") / "signcerts").is_dir()
    assert (layout.node_config(domain.duty_peer.host_name) / "core.yaml").is_file()
    assert compose_file.read_text().startswith("# Generated from network/topology.yaml")
    assert not layout.run.exists() or not any(layout.run.iterdir())


def test_render_applies_a_profile_and_writes_the_caliper_network_config(build_dir, tmp_path, monkeypatch, release):
    compose_file = tmp_path / "docker-compose.yaml"
    monkeypatch.setattr(cli, "COMPOSE_FILE", compose_file)
    result = invoke("render", "--profile", "high-throughput", "--json", env={"FABRIC_BIN": str(release)})
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    layout = NetworkLayout(build_dir)
    assert report["profile"] == "high-throughput"
    assert report["caliper_network_config"] == str(layout.caliper_network_config)
    assert yaml.safe_load(layout.caliper_network_config.read_text())["version"] == "2.0.0"
    topology = cli.load_topology(None)
    core = yaml.safe_load((layout.node_config(topology.peers[0].host_name) / "core.yaml").read_text())
    assert core["peer"]["limits"]["concurrency"]["gatewayService"] == 2500
    configtx = yaml.safe_load((layout.configtx_dir / "configtx.yaml").read_text())
    assert configtx["Profiles"]["public"]["Orderer"]["SmartBFT"]["RequestBatchMaxInterval"] == "200ms"
    # the compose file does not depend on the profile: the committed one stays valid
    assert compose_file.read_text() == (cli.PROJECT_ROOT / "docker-compose.yaml").read_text()


def test_an_unknown_profile_is_a_one_line_error(build_dir):
    for command in ("setup", "render", "up"):
        assert_one_line_error(invoke(command, "--profile", "turbo"),
                              "profiles: no profile 'turbo' (known: default, low-latency, high-throughput)")


def test_the_profile_can_come_from_medfabric_profile(build_dir, tmp_path, monkeypatch, release):
    monkeypatch.setattr(cli, "COMPOSE_FILE", tmp_path / "docker-compose.yaml")
    result = invoke("render", "--json", env={"MEDFABRIC_PROFILE": "low-latency", "FABRIC_BIN": str(release)})
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["profile"] == "low-latency"


def test_setup_reports_the_profile_and_writes_the_caliper_network_config(build_dir, tmp_path):
    release = fake_release(tmp_path / "bin")
    result = invoke("setup", "--profile", "low-latency", "--json", env={"FABRIC_BIN": str(release)})
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["profile"] == "low-latency"
    assert NetworkLayout(build_dir).caliper_network_config.is_file()


def test_up_passes_the_profile_and_deploys_the_baseline_where_it_can_run(build_dir, tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(cli.native, "up", lambda topology, layout, binaries, progress, with_baseline: calls.append(
        (topology.tuning.profile, with_baseline)) or [StepTiming("start peers", 0.1)])
    monkeypatch.setattr(cli, "baseline_unavailable", lambda needs_node: None)
    release = fake_release(tmp_path / "bin")
    result = invoke("up", "--profile", "low-latency", env={"FABRIC_BIN": str(release)})
    assert result.exit_code == 0, result.stderr
    assert calls == [("low-latency", True)] and "skipping" not in result.stderr


def test_up_without_node_skips_the_baseline_saying_so_in_one_line(build_dir, tmp_path, monkeypatch):
    calls, asked = [], []
    monkeypatch.setattr(cli.native, "up", lambda topology, layout, binaries, progress, with_baseline: calls.append(
        with_baseline) or [StepTiming("start peers", 0.1)])
    monkeypatch.setattr(cli, "baseline_unavailable", lambda needs_node: asked.append(needs_node) or
                        "node is not installed (Node.js 20 runs it)")
    result = invoke("up", env={"FABRIC_BIN": str(fake_release(tmp_path / "bin"))})
    assert result.exit_code == 0, result.stderr
    assert calls == [False] and asked == [True]
    assert result.stderr.splitlines() == [
        "skipping the medfabric-node baseline chaincode: node is not installed (Node.js 20 runs it)"]


def test_up_of_a_topology_without_baseline_does_not_look_for_node(build_dir, tmp_path, monkeypatch):
    raw = yaml.safe_load(DEFAULT_TOPOLOGY.read_text())
    raw["baseline"]["enabled"] = False
    topology_file = tmp_path / "topology.yaml"
    topology_file.write_text(yaml.safe_dump(raw))
    calls = []
    monkeypatch.setattr(cli.native, "up", lambda topology, layout, binaries, progress, with_baseline: calls.append(
        (topology.baseline, with_baseline)) or [StepTiming("start peers", 0.1)])
    monkeypatch.setattr(cli, "baseline_unavailable", lambda needs_node: pytest.fail("looked for node"))
    result = invoke("up", "--topology", str(topology_file), env={"FABRIC_BIN": str(fake_release(tmp_path / "bin"))})
    assert result.exit_code == 0, result.stderr
    assert calls == [(None, True)] and result.stderr == ""
