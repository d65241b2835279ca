"""Docker mode: the consortium as the services of docker-compose.yaml, driven as native mode drives processes.

`up` runs native mode's sequence (network.bring_up) with two parts swapped:
the nodes are compose services, started with `docker compose up -d`, and
configtxgen and the peer CLI run in the hyperledger/fabric-tools image of the
topology's Fabric version. A tools container joins the network namespace of
the compose `network` service, where 127.0.0.1:<port> reaches each node as on
the host, and mounts the build folder at its own absolute path, so the
addresses and paths that render, channel and lifecycle compute hold inside it
unchanged. Readiness is checked from the host, on the published ports.

    >>> check_docker()
    {'compose': '2.29.1', 'engine': '27.3.1'}
    >>> project = ComposeProject(PROJECT_ROOT / "docker-compose.yaml", topology.name)
    >>> up(topology, NetworkLayout.default(), project, progress=print)
    >>> down(project)  # containers stopped; the ledgers stay in build/network/data
"""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import yaml

from medfabric.consortium.layout import NetworkLayout
from medfabric.consortium.topology import Topology

from . import compose, network
from .binaries import SAMPLECONFIG_FILES, command_name, fabric_cache, holds_sampleconfig, run_tool
from .data_services import data_service_name, ready_probe
from .render import FabricDefaults
from .process import Probe, ProcessStatus, all_of, http_ok, poll_until, tls_handshake

TOOLS_IMAGE = "hyperledger/fabric-tools"
IMAGE_CONFIG_DIR = "/etc/hyperledger/fabric"  # FABRIC_CFG_PATH of Fabric's images: the release's sampleconfig
OFFLINE_COMMANDS = frozenset({"configtxgen"})  # reads and writes files only, so it runs before any node
FORWARDED_SETTINGS = ("CORE_", "ORDERER_", "FABRIC_CFG_PATH", "FABRIC_LOGGING_SPEC")
LOG_LINES = 20


class DockerError(RuntimeError):
    """Docker is missing, or a docker command or container failed: one line, then the output worth showing."""

    def __init__(self, summary: str, details: Sequence[str] = ()):
        super().__init__("\n".join([summary, *(f"  {line}" for line in details)]))


def check_docker() -> dict[str, str]:
    """The versions of the Compose plugin and of the engine; DockerError naming what to install or start."""
    if shutil.which("docker") is None:
        raise DockerError("the docker client is not installed: install Docker Engine "
                          "(https://docs.docker.com/engine/install/) or Docker Desktop, or use MODE=native")
    compose_version = _run_docker("compose", "version", "--short")
    if compose_version.returncode != 0:
        raise DockerError("docker compose is not installed: install the Docker Compose v2 plugin "
                          "(package docker-compose-plugin, https://docs.docker.com/compose/install/)")
    engine = _run_docker("info", "--format", "{{.ServerVersion}}")
    if engine.returncode != 0:
        raise DockerError(f"the Docker engine is not reachable ({_last_line(engine.stderr)}): start it "
                          "(`sudo systemctl start docker`, or Docker Desktop) and make sure your user may use it")
    return {"compose": compose_version.stdout.strip(), "engine": engine.stdout.strip()}


@dataclass(frozen=True)
class ComposeProject:
    """docker-compose.yaml and the project name its containers run under (the topology's name)."""

    file: Path
    name: str

    def compose(self, *args: str) -> str:
        """Run `docker compose <args>` on this project; its stdout."""
        return _docker("compose", "-f", str(self.file), "-p", self.name, *args)

    def states(self) -> dict[str, str]:
        """The state ("running", "exited", ...) of each service's container, for the containers that exist."""
        containers = parse_ps(self.compose("ps", "--all", "--format", "json"))
        return {container["Service"]: container["State"] for container in containers}

    def service(self, name: str) -> dict[str, Any]:
        """The definition of a service in the compose file."""
        return yaml.safe_load(self.file.read_text())["services"][name]

    def failure(self, service: str, problem: str) -> DockerError:
        """DockerError saying the service's problem, with the last lines of its log."""
        try:
            tail = self.compose("logs", "--no-color", "--no-log-prefix", "--tail", str(LOG_LINES), service)
        except DockerError:
            tail = ""
        return DockerError(f"{service} {problem}; last lines of `docker compose logs {service}`:",
                           tail.splitlines() or ["(no log)"])


@dataclass(frozen=True)
class DockerFabricTools:
    """configtxgen and the peer CLI in the fabric-tools image, inside the nodes' network namespace."""

    image: str
    network_container: str
    build_dir: Path  # mounted at this same path: every path under it is valid in the container

    @classmethod
    def for_project(cls, topology: Topology, layout: NetworkLayout, project: ComposeProject) -> DockerFabricTools:
        network_service = project.service(compose.NETWORK_SERVICE)
        return cls(f"{TOOLS_IMAGE}:{topology.fabric_version}", network_service["container_name"],
                   layout.root.absolute())

    def run(self, command: str, *args: str | Path, env: Mapping[str, str],
            timeout: float = 120.0, target: str = "") -> str:
        """Run a Fabric command in a new tools container; its stdout, or FabricCommandError.

        Only Fabric settings of `env` enter the container, by name (`-e NAME`): their values reach the
        docker client through its environment, never through its command line.
        """
        words = [str(arg) for arg in args]
        settings = sorted(name for name in env if name.startswith(FORWARDED_SETTINGS))
        self._check_visible([env[name] for name in settings] + words)
        network_mode = "none" if command in OFFLINE_COMMANDS else f"container:{self.network_container}"
        argv = ["docker", "run", "--rm", "--network", network_mode,
                "-v", f"{self.build_dir}:{self.build_dir}", "-w", str(self.build_dir),
                *(flag for name in settings for flag in ("-e", name)), self.image, command, *words]
        return run_tool(argv, command_name(command, words), env, timeout, target)

    def sampleconfig(self, config_dir: Path) -> Path:
        """`config_dir` holding Fabric's sampleconfig, copied out of the image (its FABRIC_CFG_PATH) once."""
        if holds_sampleconfig(config_dir):
            return config_dir
        config_dir.mkdir(parents=True, exist_ok=True)
        for name in SAMPLECONFIG_FILES:
            text = _docker("run", "--rm", "--network", "none", "--entrypoint", "cat", self.image,
                           f"{IMAGE_CONFIG_DIR}/{name}")
            partial = config_dir / f".{name}.partial"
            partial.write_text(text)
            partial.replace(config_dir / name)
        return config_dir

    def pull_if_missing(self) -> None:
        """Pull the image unless it is here, so that no command's timeout has to cover a download."""
        if _run_docker("image", "inspect", self.image).returncode != 0:
            _docker("pull", self.image)

    def _check_visible(self, values: list[str]) -> None:
        outside = [value for value in values
                   if value.startswith("/") and not Path(value).is_relative_to(self.build_dir)]
        if outside:
            raise DockerError(f"{outside[0]} is outside {self.build_dir}, the only folder the tools container sees")


class ComposeNodes:
    """The nodes as compose services, ready by the same probes as native nodes on their published ports.

    docker-proxy accepts a TCP connection on a published port before the container
    serves it, so the admin endpoint is probed with a TLS handshake, not a bare connect.
    """

    def __init__(self, project: ComposeProject, topology: Topology, layout: NetworkLayout):
        self._project, self._topology, self._layout = project, topology, layout

    def start_orderers(self) -> None:
        self._start_and_wait({
            o.host_name: all_of(http_ok(f"http://{o.operations_address}/healthz"), tls_handshake(o.host, o.admin_port))
            for o in self._topology.orderers
        })

    def restart_orderer(self, host_name: str) -> None:
        orderer = next(o for o in self._topology.orderers if o.host_name == host_name)
        self._project.compose("restart", host_name)
        self._wait_ready(host_name, all_of(http_ok(f"http://{orderer.operations_address}/healthz"),
                                           tls_handshake(orderer.host, orderer.admin_port)))

    def start_peers(self) -> None:
        self._start_and_wait({
            p.host_name: all_of(http_ok(f"http://{p.operations_address}/healthz"), tls_handshake(p.host, p.listen_port))
            for p in self._topology.peers
        })

    def start_chaincode_servers(self, package_ids: Mapping[str, Mapping[str, str]]) -> None:
        """Build and start the chaincode services, which must run the packages the peers install."""
        services = {compose.chaincode_service_name(domain, chaincode): package_ids[chaincode.name][domain.id]
                    for chaincode in self._topology.chaincodes for domain in self._topology.domains}
        for service, expected in services.items():
            runs = self._project.service(service)["environment"]["CHAINCODE_ID"]
            if runs != expected:
                raise DockerError(f"{self._project.file} runs {service} as {runs}, but its peers install "
                                  f"{expected}: render it again")
        self._project.compose("up", "-d", "--build", *services)
        states = self._project.states()
        for service in services:
            if states.get(service) != "running":
                raise self._project.failure(service, f"is {states.get(service, 'missing')} after `docker compose up`")

    def start_data_services(self) -> None:
        """Start the data services (the chaincode image, built by start_chaincode_servers); ready once
        GET /identity answers over TLS on their published ports."""
        self._start_and_wait({
            data_service_name(d): ready_probe(self._topology, self._layout, d) for d in self._topology.domains
        })

    def _start_and_wait(self, probes: dict[str, Probe]) -> None:
        self._project.compose("up", "-d", compose.NETWORK_SERVICE, *probes)
        for service, ready in probes.items():
            self._wait_ready(service, ready)

    def _wait_ready(self, service: str, healthy: Probe) -> None:
        def ready() -> bool:
            if healthy():
                return True
            if self._project.states().get(service) != "running":
                raise self._project.failure(service, "exited before it was ready")
            return False

        if not poll_until(ready, network.READY_TIMEOUT):
            raise self._project.failure(service, f"was not ready after {network.READY_TIMEOUT:g}s")


def up(topology: Topology, layout: NetworkLayout, project: ComposeProject,
       progress: Callable[[str], None] | None = None, with_baseline: bool = True,
       cache_root: Path | None = None) -> list[network.StepTiming]:
    """Bring the consortium up as containers and deploy the chaincodes; the time each step took.

    The compose file is written from the topology first (with every service, so it stays the one
    `render` writes). Like native mode, `up` keeps what runs and skips what is done. `with_baseline=False`
    starts and deploys no Node baseline chaincode. Node configuration starts from Fabric's sampleconfig of
    the tools image, cached in `cache_root`.
    """
    _check_build_folder(layout, project)
    step = network.StepClock(progress)
    with step("compose file and tools image"):
        document = compose.render_compose(topology)
        if not project.file.exists() or project.file.read_text() != document:
            project.file.write_text(document)
        tools = DockerFabricTools.for_project(topology, layout, project)
        tools.pull_if_missing()
        config_dir = (cache_root or fabric_cache()) / topology.fabric_version / "config"
        defaults = FabricDefaults.load(tools.sampleconfig(config_dir))
    deployed = topology if with_baseline else network.without_baseline(topology)
    return network.bring_up(deployed, layout, tools, defaults, ComposeNodes(project, deployed, layout), step)


def down(project: ComposeProject) -> list[str]:
    """Stop the containers, keeping them and the ledgers (bind-mounted from the build folder); the services stopped."""
    running = [service for service, state in project.states().items() if state == "running"]
    if running:
        project.compose("stop")
    return running


def clean(topology: Topology, layout: NetworkLayout, project: ComposeProject) -> None:
    """Remove the containers, then delete everything generated, as native mode's clean does."""
    network.check_deletable(layout)
    if project.file.exists():
        project.compose("down")
    _empty_node_data(topology, layout)
    network.clean(layout)


def status(topology: Topology, layout: NetworkLayout, project: ComposeProject) -> dict[str, Any]:
    """network.status with the containers as the processes, and the peer CLI in the tools image."""
    tools = DockerFabricTools.for_project(topology, layout, project)
    return network.status(topology, layout, tools, processes=container_statuses(project))


def container_statuses(project: ComposeProject) -> list[ProcessStatus]:
    """Every container of the project as a process: alive while it runs; no pid, memory or uptime."""
    return [ProcessStatus(service, None, state == "running", None, None)
            for service, state in project.states().items()]


def parse_ps(stdout: str) -> list[dict[str, Any]]:
    """`docker compose ps --format json`: one object per line, or one JSON array (Compose before 2.21)."""
    text = stdout.strip()
    try:
        if text.startswith("["):
            return json.loads(text)
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    except ValueError:
        raise DockerError(f"unexpected `docker compose ps` output: {text[:200]}") from None


def _check_build_folder(layout: NetworkLayout, project: ComposeProject) -> None:
    """The compose file mounts build/network beside it, so that must be the build folder."""
    expected = project.file.parent / compose.HOST_LAYOUT.root
    if layout.root.resolve() != expected.resolve():
        raise DockerError(f"docker mode keeps the network in {expected}, which {project.file.name} mounts, "
                          f"not in {layout.root}: unset MEDFABRIC_BUILD_DIR")


def _empty_node_data(topology: Topology, layout: NetworkLayout) -> None:
    """Empty the nodes' and data services' data folders from a container: they wrote them as the containers'
    root user, whose files the host user may not delete. Only those folders are mounted."""
    names = [node.host_name for node in (*topology.orderers, *topology.peers)]
    names += [data_service_name(domain) for domain in topology.domains]
    folders = [layout.node_data(name).absolute() for name in names]
    existing = [str(folder) for folder in folders if folder.exists()]
    if existing:
        mounts = [flag for folder in existing for flag in ("-v", f"{folder}:{folder}")]
        image = f"{TOOLS_IMAGE}:{topology.fabric_version}"
        _docker("run", "--rm", "--network", "none", *mounts, image, "find", *existing, "-mindepth", "1", "-delete")


def _docker(*args: str) -> str:
    """Run `docker <args>`; its stdout, or DockerError with the end of its stderr."""
    done = _run_docker(*args)
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        raise DockerError(f"`{shlex.join(['docker', *args])}` failed (exit {done.returncode}): "
                          f"{_last_line(done.stderr)}", lines[-LOG_LINES:-1])
    return done.stdout


def _run_docker(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], capture_output=True, text=True)


def _last_line(stderr: str) -> str:
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    return lines[-1] if lines else "no error output"
