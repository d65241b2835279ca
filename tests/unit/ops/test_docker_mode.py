"""Docker mode, against a fake `docker` on PATH that records every call and answers as told.

No Docker engine is needed: the fake answers `docker info`, `docker compose
version`, `docker compose ps --format json` and the rest from answers the test
gives. Fabric itself is the FakeFabric of test_network_plan. Everything lives
in tmp_path: the compose file, the build folder, the fake's records.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import sys
from pathlib import Path

import pytest
import yaml

from medfabric.consortium.layout import NetworkLayout
from medfabric_ops import channel as channel_module
from medfabric_ops import cli, compose, crypto_material, docker_mode, network, render
from medfabric_ops.binaries import SAMPLECONFIG_FILES, FabricCommandError
from medfabric_ops.docker_mode import ComposeNodes, ComposeProject, DockerError, DockerFabricTools
from medfabric_ops.process import child_env

from .test_binaries import write_script
from .test_cli import assert_one_line_error, invoke
from .test_network_plan import STEPS, FakeFabric

NO_ENGINE = "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?"


class FakeDocker:
    """A `docker` executable that appends each call (argv, Fabric settings of its environment) to calls.jsonl
    and answers from answers.json, keyed like "info", "compose ps", "image inspect" or "run"."""

    def __init__(self, bin_dir: Path):
        self.calls_file = bin_dir / "calls.jsonl"
        self.answers_file = bin_dir / "answers.json"
        self.answers: dict[str, dict] = {}
        write_script(bin_dir / "docker", f"""#!{sys.executable}
import json, os, sys
argv = sys.argv[1:]
settings = {{k: v for k, v in os.environ.items() if k.startswith(("CORE_", "ORDERER_", "FABRIC_", "SECRET"))}}
with open({str(self.calls_file)!r}, "a") as log:
    log.write(json.dumps({{"argv": argv, "env": settings}}) + "\\n")
if argv[0] == "compose":
    rest = argv[5:] if argv[1] == "-f" else argv[1:]
    key = "compose " + rest[0]
elif argv[0] == "image":
    key = "image " + argv[1]
else:
    key = argv[0]
defaults = {{"compose version": {{"stdout": "2.29.1\\n"}}, "info": {{"stdout": "27.3.1\\n"}},
            "image inspect": {{"exit": 1, "stderr": "Error: No such image"}}}}
answer = json.load(open({str(self.answers_file)!r})).get(key) or defaults.get(key, {{}})
sys.stdout.write(answer.get("stdout", ""))
sys.stderr.write(answer.get("stderr", ""))
sys.exit(answer.get("exit", 0))
""")
        self._save()

    def answer(self, key: str, stdout: str = "", stderr: str = "", exit_code: int = 0) -> None:
        self.answers[key] = {"stdout": stdout, "stderr": stderr, "exit": exit_code}
        self._save()

    def answer_states(self, states: dict[str, str], as_array: bool = False) -> None:
        """What `docker compose ps --all --format json` prints for containers in these states."""
        containers = [{"Name": service, "Service": service, "State": state, "Project": "medfabric"}
                      for service, state in states.items()]
        if as_array:
            self.answer("compose ps", json.dumps(containers))
        else:
            self.answer("compose ps", "".join(json.dumps(container) + "\n" for container in containers))

    def calls(self) -> list[dict]:
        return [json.loads(line) for line in self.calls_file.read_text().splitlines()] if self.calls_file.exists() \
            else []

    def argvs(self) -> list[list[str]]:
        return [call["argv"] for call in self.calls()]

    def _save(self) -> None:
        self.answers_file.write_text(json.dumps(self.answers))


@pytest.fixture
def docker(tmp_path, monkeypatch):
    bin_dir = tmp_path / "docker-bin"
    fake = FakeDocker(bin_dir)
    monkeypatch.setenv("PATH", str(bin_dir))
    return fake


@pytest.fixture
def layout(tmp_path):
    return NetworkLayout(tmp_path / "build" / "network")  # where the compose file beside it mounts it from


@pytest.fixture
def project(tmp_path, topology):
    return ComposeProject(tmp_path / "docker-compose.yaml", topology.name)


def fabric_cache_with_sampleconfig(cache_root: Path, version: str) -> Path:
    """A binaries cache that already holds the tools image's sampleconfig, so `up` copies nothing out."""
    config_dir = cache_root / version / "config"
    config_dir.mkdir(parents=True)
    for name in SAMPLECONFIG_FILES:
        (config_dir / name).write_text(f"{name.split('.')[0]}: {{}}\n")
    return cache_root


def test_the_sampleconfig_is_copied_out_of_the_tools_image_once(tmp_path, docker):
    tools = DockerFabricTools("hyperledger/fabric-tools:3.1.5", "medfabric-network", tmp_path)
    docker.answer("run", stdout="peer: {id: jdoe}\n")
    config_dir = tools.sampleconfig(tmp_path / "cache" / "config")
    assert sorted(p.name for p in config_dir.iterdir()) == sorted(SAMPLECONFIG_FILES)
    assert (config_dir / "core.yaml").read_text() == "peer: {id: jdoe}\n"
    assert [argv[:7] for argv in docker.argvs()] == [
        ["run", "--rm", "--network", "none", "--entrypoint", "cat", "hyperledger/fabric-tools:3.1.5"]] * 3
    assert [argv[7] for argv in docker.argvs()] == [f"/etc/hyperledger/fabric/{n}" for n in SAMPLECONFIG_FILES]
    tools.sampleconfig(config_dir)
    assert len(docker.calls()) == 3  # there already: nothing copied again


def compose_document(topology, layout, network_container="medfabric-network") -> str:
    """The parts of docker-compose.yaml docker mode reads: the network service and the chaincode ids."""
    services = {compose.NETWORK_SERVICE: {"container_name": network_container}}
    for chaincode in topology.chaincodes:
        for domain in topology.domains:
            package_id = render.chaincode_package(topology, layout, domain, chaincode)[1]
            services[compose.chaincode_service_name(domain, chaincode)] = {"environment": {"CHAINCODE_ID": package_id}}
    return yaml.safe_dump({"name": topology.name, "services": services})


def chaincode_services(topology) -> list[str]:
    return [compose.chaincode_service_name(d, c) for c in topology.chaincodes for d in topology.domains]


def all_services(topology) -> list[str]:
    return [compose.NETWORK_SERVICE, *(o.host_name for o in topology.orderers), *(p.host_name for p in topology.peers),
            *chaincode_services(topology), *(f"data-service.{d.org_domain}" for d in topology.domains)]


def compose_argv(project, *args) -> list[str]:
    return ["compose", "-f", str(project.file), "-p", project.name, *args]


# -- the tools container ---------------------------------------------------------------------------------------

def test_fabric_commands_run_in_the_tools_image_of_the_topology_inside_the_nodes_namespace(
        docker, topology, layout, project):
    project.file.write_text(compose_document(topology, layout, network_container="consortium-net"))
    tools = DockerFabricTools.for_project(dataclasses.replace(topology, fabric_version="3.1.9"), layout, project)
    block = layout.genesis_block("public")
    settings = {"CORE_PEER_ADDRESS": "127.0.0.1:7100", "CORE_PEER_LOCALMSPID": "HospitalAMSP",
                "CORE_PEER_MSPCONFIGPATH": str(layout.root / "crypto" / "msp"),
                "FABRIC_CFG_PATH": str(layout.node_config("duty.a"))}
    docker.answer("run", stdout="joined\n")

    out = tools.run("peer", "channel", "join", "-b", block, env=child_env(settings) | {"SECRET_TOKEN": "hunter2"})

    assert out == "joined\n"
    [call] = docker.calls()
    root = str(layout.root)
    assert call["argv"] == [
        "run", "--rm", "--network", "container:consortium-net", "-v", f"{root}:{root}", "-w", root,
        "-e", "CORE_PEER_ADDRESS", "-e", "CORE_PEER_LOCALMSPID", "-e", "CORE_PEER_MSPCONFIGPATH",
        "-e", "FABRIC_CFG_PATH", "hyperledger/fabric-tools:3.1.9", "peer", "channel", "join", "-b", str(block),
    ]
    assert call["env"] | settings == call["env"]  # the values reach docker through its environment
    assert not any("=" in arg or "hunter2" in arg for arg in call["argv"])


def test_configtxgen_runs_without_a_network_so_before_any_container(docker, layout):
    tools = DockerFabricTools("hyperledger/fabric-tools:3.1.5", "medfabric-network", layout.root)
    tools.run("configtxgen", "-profile", "public", "-outputBlock", layout.genesis_block("public"),
              "-configPath", layout.configtx_dir, env=child_env({}))
    [argv] = docker.argvs()
    assert argv[:4] == ["run", "--rm", "--network", "none"]
    assert argv[argv.index("hyperledger/fabric-tools:3.1.5") + 1:][:3] == ["configtxgen", "-profile", "public"]


def test_a_failing_tools_command_is_one_line_then_its_stderr(docker, layout):
    docker.answer("run", stderr="Error: proposal failed (err: access denied)\n", exit_code=1)
    tools = DockerFabricTools("hyperledger/fabric-tools:3.1.5", "medfabric-network", layout.root)
    with pytest.raises(FabricCommandError) as error:
        tools.run("peer", "channel", "list", env=child_env({}), target="duty.hospital-a")
    assert str(error.value).splitlines()[0] == (
        "`peer channel list` on duty.hospital-a failed (exit 1): Error: proposal failed (err: access denied)")


def test_a_path_the_tools_container_cannot_see_is_refused_before_docker_runs(docker, tmp_path, layout):
    tools = DockerFabricTools("hyperledger/fabric-tools:3.1.5", "medfabric-network", layout.root)
    with pytest.raises(DockerError, match=r"/etc/fabric is outside .*build/network, the only folder"):
        tools.run("peer", "channel", "list", env={"FABRIC_CFG_PATH": "/etc/fabric"})
    assert docker.calls() == []


# -- up ---------------------------------------------------------------------------------------------------------

@pytest.fixture
def fabric(topology, layout, project, docker, monkeypatch):
    """FakeFabric behind the tools containers; docker calls and readiness probes join its event list."""
    fabric = FakeFabric(topology)
    monkeypatch.setattr(crypto_material, "generate_crypto", lambda *args: fabric.events.append(("crypto",)))
    monkeypatch.setattr(render, "render_network", lambda *args: fabric.events.append(("render",)))
    monkeypatch.setattr(network, "wait_until_ready", lambda *args: fabric.events.append(("channels ready",)))
    cached = fabric_cache_with_sampleconfig(layout.root.parent / "fabric-cache", topology.fabric_version)
    monkeypatch.setenv("MEDFABRIC_FABRIC_CACHE", str(cached))
    monkeypatch.setattr(channel_module, "OSNAdmin", fabric.osnadmin_class())
    monkeypatch.setattr(compose, "render_compose", lambda topo: compose_document(topo, layout))
    monkeypatch.setattr(DockerFabricTools, "run", lambda self, command, *args, **kw: fabric.run(command, *args, **kw))
    run_docker = docker_mode._run_docker
    monkeypatch.setattr(docker_mode, "_run_docker",
                        lambda *args: fabric.events.append(("docker", list(args))) or run_docker(*args))

    def probe(url):
        return lambda: fabric.events.append(("probe", url)) or True

    def handshake(host, port):
        return lambda: fabric.events.append(("probe", f"tls://{host}:{port}")) or True

    monkeypatch.setattr(docker_mode, "http_ok", probe)
    monkeypatch.setattr(docker_mode, "tls_handshake", handshake)
    monkeypatch.setattr(docker_mode, "ready_probe", lambda _topology, _layout, domain: probe(
        f"https://127.0.0.1:{domain.data_service_port}/identity"))
    docker.answer_states(dict.fromkeys(all_services(topology), "running"))
    return fabric


def test_up_takes_the_native_steps_with_services_and_tools_containers(topology, layout, project, fabric):
    announced = []
    timings = docker_mode.up(topology, layout, project, progress=announced.append)

    assert announced == ["compose file and tools image", *STEPS] == [t.name for t in timings]
    assert project.file.read_text() == compose_document(topology, layout)
    events = fabric.events

    def at(predicate) -> list[int]:
        return [i for i, event in enumerate(events) if predicate(event)]

    def compose_up(*services) -> list[int]:
        return at(lambda e: e[0] == "docker" and e[1] == compose_argv(project, "up", "-d", *services))

    orderers, peers = topology.orderers, topology.peers
    chaincode = chaincode_services(topology)
    data_services = [f"data-service.{d.org_domain}" for d in topology.domains]
    healthz = "http://127.0.0.1:{}/healthz".format
    identity = "https://127.0.0.1:{}/identity".format
    order = [
        at(lambda e: e == ("docker", ["pull", "hyperledger/fabric-tools:3.1.5"])),
        at(lambda e: e[0] == "crypto"),
        at(lambda e: e[0] == "configtxgen"),
        compose_up(compose.NETWORK_SERVICE, *(o.host_name for o in orderers)),
        at(lambda e: e[0] == "probe" and e[1] in {healthz(o.operations_port) for o in orderers}),
        at(lambda e: e[0] == "orderer join"),
        compose_up(compose.NETWORK_SERVICE, *(p.host_name for p in peers)),
        at(lambda e: e[0] == "probe" and e[1] in {healthz(p.operations_port) for p in peers}),
        at(lambda e: e[0] == "peer join"),
        compose_up("--build", *chaincode),
        at(lambda e: e[0] == "install"),
        at(lambda e: e[0] in ("approve", "commit")),
        compose_up(compose.NETWORK_SERVICE, *data_services),
        at(lambda e: e[0] == "probe" and e[1] in {identity(d.data_service_port) for d in topology.domains}),
    ]
    assert all(order), "a step issued nothing"
    for earlier, later in itertools.pairwise(order):
        assert max(earlier) < min(later)
    probed = [e[1] for e in events if e[0] == "probe"]
    # Served, not merely published: /healthz, then a TLS handshake on the admin (orderer) or gRPC (peer) port.
    assert probed == [
        *(probe for o in orderers for probe in (healthz(o.operations_port), f"tls://127.0.0.1:{o.admin_port}")),
        *(probe for p in peers for probe in (healthz(p.operations_port), f"tls://127.0.0.1:{p.listen_port}")),
        *(identity(d.data_service_port) for d in topology.domains),
    ]


def test_up_twice_starts_nothing_new_and_pulls_the_tools_image_once(topology, layout, project, fabric, docker):
    docker_mode.up(topology, layout, project)
    docker.answer("image inspect", stdout="[{}]")  # pulled by the first up
    fabric.events.clear()
    docker_mode.up(topology, layout, project)
    kinds = {event[0] for event in fabric.events}
    assert {"configtxgen", "orderer join", "peer join", "install", "approve", "commit"}.isdisjoint(kinds)
    assert not [e for e in fabric.events if e[0] == "docker" and e[1][0] == "pull"]


def test_up_refuses_a_build_folder_the_project_file_does_not_mount(docker, topology, tmp_path, project):
    with pytest.raises(DockerError, match=r"docker mode keeps the network in .*: unset MEDFABRIC_BUILD_DIR"):
        docker_mode.up(topology, NetworkLayout(tmp_path / "elsewhere"), project)
    assert docker.calls() == [] and not project.file.exists()


def test_a_node_that_exits_before_it_is_ready_is_named_with_its_container_log(
        docker, topology, layout, project, monkeypatch):
    project.file.write_text(compose_document(topology, layout))
    orderer = topology.orderers[0]
    probed = []
    monkeypatch.setattr(docker_mode, "http_ok", lambda url: lambda: probed.append(url) and False)
    docker.answer_states({compose.NETWORK_SERVICE: "running", orderer.host_name: "exited"})
    docker.answer("compose logs", stdout="2025 INFO starting\npanic: open /var/hyperledger/msp: no such file\n")
    with pytest.raises(DockerError) as error:
        ComposeNodes(project, topology, layout).start_orderers()
    assert str(error.value).splitlines() == [
        f"{orderer.host_name} exited before it was ready; last lines of `docker compose logs {orderer.host_name}`:",
        "  2025 INFO starting",
        "  panic: open /var/hyperledger/msp: no such file",
    ]
    assert probed == [f"http://127.0.0.1:{orderer.operations_port}/healthz"]
    assert compose_argv(project, "logs", "--no-color", "--no-log-prefix", "--tail", "20", orderer.host_name) in \
        docker.argvs()


def test_a_data_service_that_exits_before_it_serves_is_named_with_its_container_log(
        docker, topology, layout, project, monkeypatch):
    project.file.write_text(compose_document(topology, layout))
    domain = topology.domains[0]
    name = f"data-service.{domain.org_domain}"
    probed = []
    monkeypatch.setattr(docker_mode, "ready_probe", lambda _t, _l, d: lambda: probed.append(d.id) and False)
    docker.answer_states({compose.NETWORK_SERVICE: "running", name: "exited"})
    docker.answer("compose logs", stdout="python -m medfabric.data_service: no identity for Admin@hospital-a\n")
    with pytest.raises(DockerError) as error:
        ComposeNodes(project, topology, layout).start_data_services()
    assert str(error.value).splitlines() == [
        f"{name} exited before it was ready; last lines of `docker compose logs {name}`:",
        "  python -m medfabric.data_service: no identity for Admin@hospital-a",
    ]
    assert probed == [domain.id]
    assert docker.argvs()[0] == compose_argv(
        project, "up", "-d", compose.NETWORK_SERVICE, *(f"data-service.{d.org_domain}" for d in topology.domains))


def test_chaincode_services_must_run_the_packages_the_peers_install(docker, topology, layout, project):
    project.file.write_text(compose_document(topology, layout))
    domain = topology.domains[0]
    with pytest.raises(DockerError, match=rf"runs chaincode\.{domain.org_domain} as .*, but its peers install other"):
        ComposeNodes(project, topology, layout).start_chaincode_servers(
            {c.name: {d.id: "other" for d in topology.domains} for c in topology.chaincodes})
    assert docker.calls() == []


# -- down, clean, status ------------------------------------------------------------------------------------------

def test_down_stops_the_containers_and_keeps_the_ledgers(docker, topology, layout, project):
    ledger = layout.node_data(topology.peers[0].host_name) / "ledgersData" / "chains" / "blockfile_000000"
    ledger.parent.mkdir(parents=True)
    ledger.write_text("blocks")
    project.file.write_text(compose_document(topology, layout))
    docker.answer_states({compose.NETWORK_SERVICE: "running", topology.peers[0].host_name: "running",
                          topology.peers[1].host_name: "exited"})

    assert docker_mode.down(project) == [compose.NETWORK_SERVICE, topology.peers[0].host_name]

    assert docker.argvs() == [compose_argv(project, "ps", "--all", "--format", "json"), compose_argv(project, "stop")]
    assert ledger.read_text() == "blocks"


def test_down_with_nothing_running_stops_nothing(docker, topology, layout, project):
    project.file.write_text(compose_document(topology, layout))
    assert docker_mode.down(project) == []
    assert [argv[5] for argv in docker.argvs()] == ["ps"]


def test_clean_removes_the_containers_then_empties_node_data_from_a_container_then_the_build_folder(
        docker, topology, layout, project):
    project.file.write_text(compose_document(topology, layout))
    peer, orderer = topology.peers[0], topology.orderers[0]
    data_service = f"data-service.{topology.domains[0].org_domain}"  # its store is written as root too
    for name in (peer.host_name, orderer.host_name, data_service):
        (layout.node_data(name) / "ledger").mkdir(parents=True)
    (layout.logs).mkdir(parents=True)

    docker_mode.clean(topology, layout, project)

    down, empty = docker.argvs()
    assert down == compose_argv(project, "down")
    data = [str(layout.node_data(name)) for name in (orderer.host_name, peer.host_name, data_service)]
    assert empty == ["run", "--rm", "--network", "none", *(flag for d in data for flag in ("-v", f"{d}:{d}")),
                     "hyperledger/fabric-tools:3.1.5", "find", *data, "-mindepth", "1", "-delete"]
    assert not layout.root.exists() and project.file.exists()


def test_clean_refuses_the_project_folder_before_any_docker_call(docker, tmp_path, topology, monkeypatch):
    # Never aimed at the real project: were the guard broken, only this temporary copy would go.
    fake_project = tmp_path / "project"
    misplaced = NetworkLayout(fake_project)
    misplaced.node_data(topology.peers[0].host_name).mkdir(parents=True)
    (fake_project / "pyproject.toml").write_text("")
    (fake_project / "docker-compose.yaml").write_text(compose_document(topology, misplaced))
    monkeypatch.setattr(network, "PROJECT_ROOT", fake_project)
    with pytest.raises(network.NetworkError, match="refusing to delete"):
        docker_mode.clean(topology, misplaced, ComposeProject(fake_project / "docker-compose.yaml", topology.name))
    assert docker.calls() == [] and (fake_project / "pyproject.toml").exists()


@pytest.mark.parametrize("as_array", [False, True], ids=["json-lines", "json-array"])
def test_containers_are_the_processes_whatever_form_ps_prints(docker, project, as_array):
    docker.answer_states({"network": "running", "bft0.orderer.a": "running", "duty.a": "exited"}, as_array)
    statuses = docker_mode.container_statuses(project)
    assert [(s.name, s.pid, s.alive, s.rss_bytes, s.uptime_seconds) for s in statuses] == [
        ("network", None, True, None, None), ("bft0.orderer.a", None, True, None, None),
        ("duty.a", None, False, None, None)]


@pytest.mark.parametrize("stdout", ["", "[]\n"])
def test_no_containers_in_either_form(docker, project, stdout):
    docker.answer("compose ps", stdout)
    assert docker_mode.container_statuses(project) == []


def test_garbled_ps_output_is_a_one_line_error(docker, project):
    docker.answer("compose ps", "Name  State\nnetwork  running\n")
    with pytest.raises(DockerError, match=r"unexpected `docker compose ps` output: Name  State"):
        docker_mode.container_statuses(project)


def test_status_asks_only_running_containers(docker, topology, layout, project):
    project.file.write_text(compose_document(topology, layout))
    docker.answer_states(dict.fromkeys(all_services(topology), "exited"))
    report = docker_mode.status(topology, layout, project)
    assert {p["name"] for p in report["processes"]} == set(all_services(topology))
    assert not any(p["alive"] for p in report["processes"])
    public = report["channels"][topology.public_channel.name]
    assert set(map(json.dumps, [*public["orderers"].values(), *public["peers"].values()])) == {
        '{"error": "not running"}'}
    assert [argv[5] for argv in docker.argvs()] == ["ps"]  # no tools container for a stopped consortium


# -- Docker itself, and the CLI -----------------------------------------------------------------------------------

@pytest.fixture
def build_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDFABRIC_BUILD_DIR", str(tmp_path / "build" / "network"))
    monkeypatch.delenv("FABRIC_BIN", raising=False)
    monkeypatch.delenv("MEDFABRIC_TOPOLOGY", raising=False)
    monkeypatch.delenv("MEDFABRIC_MODE", raising=False)
    monkeypatch.setattr(cli, "COMPOSE_FILE", tmp_path / "docker-compose.yaml")
    return tmp_path / "build" / "network"


def test_setup_in_docker_mode_needs_no_fabric_binaries_and_reports_docker(docker, build_dir):
    result = invoke("setup", "--mode", "docker", "--json")
    assert result.exit_code == 0, result.stderr
    caliper_config = build_dir / "config" / "caliper" / "network.yaml"
    assert json.loads(result.stdout) == {
        "mode": "docker", "compose": "2.29.1", "engine": "27.3.1",
        "images": [f"hyperledger/fabric-{node}:3.1.5" for node in ("orderer", "peer", "tools")],
        "caliper_network_config": str(caliper_config)}
    assert yaml.safe_load(caliper_config.read_text())["version"] == "2.0.0"
    assert docker.argvs() == [["compose", "version", "--short"], ["info", "--format", "{{.ServerVersion}}"]]


def test_the_mode_can_come_from_medfabric_mode(docker, build_dir):
    result = invoke("setup", env={"MEDFABRIC_MODE": "docker"})
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("Docker engine 27.3.1, Compose 2.29.1: Fabric 3.1.5 runs from ")


def test_no_docker_client_is_a_one_line_error(tmp_path, build_dir, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert_one_line_error(invoke("up", "--mode", "docker"), "the docker client is not installed: install Docker")


def test_a_missing_v2_plugin_is_a_one_line_error(docker, build_dir):
    docker.answer("compose version", stderr="unknown flag: --short\n", exit_code=125)
    assert_one_line_error(invoke("setup", "--mode", "docker"),
                          "docker compose is not installed: install the Docker Compose v2 plugin")


def test_no_engine_is_a_one_line_error_saying_why(docker, build_dir):
    docker.answer("info", stderr=f"{NO_ENGINE}\n", exit_code=1)
    assert_one_line_error(invoke("status", "--mode", "docker"),
                          f"the Docker engine is not reachable ({NO_ENGINE}): start it")


def test_up_in_docker_mode_uses_the_project_file_and_the_topology_name(
        docker, build_dir, topology, monkeypatch):
    calls = []

    def fake_up(topo, layout, project, progress, with_baseline):
        calls.append((topo.name, layout.root, project, with_baseline))
        return [network.StepTiming("start orderers", 0.5)]

    monkeypatch.setattr(docker_mode, "up", fake_up)
    monkeypatch.setattr(cli, "baseline_unavailable", lambda needs_node: None)
    result = invoke("up", "--mode", "docker")
    assert result.exit_code == 0, result.stderr
    assert calls == [(topology.name, build_dir, ComposeProject(cli.COMPOSE_FILE, topology.name), True)]


def test_up_in_docker_mode_needs_the_baselines_node_modules_but_no_node(docker, build_dir, monkeypatch):
    asked, calls = [], []
    monkeypatch.setattr(docker_mode, "up", lambda *args, progress, with_baseline: calls.append(with_baseline) or [
        network.StepTiming("start peers", 0.1)])
    monkeypatch.setattr(cli, "baseline_unavailable", lambda needs_node: asked.append(needs_node) or
                        "caliper/baseline/node_modules is not installed (`npm ci` there, or `make baseline-deps`)")
    result = invoke("up", "--mode", "docker")
    assert result.exit_code == 0, result.stderr
    assert asked == [False] and calls == [False]
    assert result.stderr.splitlines()[0] == (
        "skipping the medfabric-node baseline chaincode: caliper/baseline/node_modules is not installed "
        "(`npm ci` there, or `make baseline-deps`)")


def test_down_in_docker_mode_counts_the_containers_it_stopped(docker, build_dir, topology, layout):
    cli.COMPOSE_FILE.write_text(compose_document(topology, layout))
    docker.answer_states({compose.NETWORK_SERVICE: "running", topology.peers[0].host_name: "running"})
    result = invoke("down", "--mode", "docker")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == "stopped 2 containers"
