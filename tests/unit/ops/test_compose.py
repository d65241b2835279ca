"""docker-compose.yaml: rendered from the topology, the same nodes as native mode
in one network namespace, in-container paths that are mounted, and valid
against the Compose Specification."""

from __future__ import annotations

import copy
import dataclasses
import json
import tomllib
from pathlib import Path, PurePosixPath
from typing import Any, Iterator

import pytest
import yaml

from medfabric.consortium.layout import PROJECT_ROOT, NetworkLayout
from medfabric.consortium.topology import DEFAULT_TOPOLOGY, load_topology
from medfabric_ops.compose import (
    CHAINCODE_IMAGE,
    CONTAINER_BASELINE_DIR,
    CONTAINER_BUILDER_DIR,
    CONTAINER_LAYOUT,
    NODE_IMAGE,
    chaincode_service_name,
    published_ports,
    render_compose,
)
from medfabric_ops.lifecycle import node_chaincode_command
from medfabric_ops.render.chaincode_package import package_id
from medfabric_ops.render.core_yaml import CCAAS_BUILDER_DIR
from medfabric_ops.render.files import environment

from .test_render_network import flatten

COMPOSE_FILE = PROJECT_ROOT / "docker-compose.yaml"
# The Compose Specification's JSON schema as the dclint linter ships it (tests/node, `make node-deps`).
COMPOSE_SCHEMA = PROJECT_ROOT / "tests" / "node" / "node_modules" / "dclint" / "schemas" / "compose.schema.json"


@pytest.fixture(scope="module")
def topology():
    return load_topology()


@pytest.fixture(scope="module")
def services(topology) -> dict[str, Any]:
    return yaml.safe_load(render_compose(topology))["services"]


@pytest.fixture(scope="module")
def host_layout(rendered_layout) -> NetworkLayout:
    return rendered_layout


def node_services(topology) -> list[str]:
    return [node.host_name for node in (*topology.orderers, *topology.peers)]


def data_services(topology) -> list[str]:
    return [f"data-service.{domain.org_domain}" for domain in topology.domains]


def env_paths(value: str) -> Iterator[str]:
    """Paths in an environment value: a path, a "[a,b]" list of paths, or the builders' JSON."""
    if value.startswith("[{"):
        yield from (builder["path"] for builder in json.loads(value))
    else:
        yield from (item for item in value.strip("[]").split(",") if item.startswith("/"))


def mounts(service: dict[str, Any]) -> dict[str, str]:
    """Container path -> host path (relative to the project root) of each bind mount."""
    return {volume.split(":")[1]: volume.split(":")[0] for volume in service.get("volumes", [])}


def mount_of(service: dict[str, Any], path: PurePosixPath) -> tuple[str, str, bool] | None:
    """(container path, host path, read-only) of the bind mount that holds `path`, if one does."""
    for volume in service.get("volumes", []):
        host, container, *mode = volume.split(":")
        if path == PurePosixPath(container) or PurePosixPath(container) in path.parents:
            return container, host, mode == ["ro"]
    return None


def test_the_committed_file_is_the_one_rendered_from_the_topology(topology):
    assert COMPOSE_FILE.read_text() == render_compose(topology), \
        "docker-compose.yaml is stale: run `medfabric network render`"


def test_services_are_the_nodes_the_chaincode_servers_the_data_services_and_the_network(topology, services):
    chaincode = [chaincode_service_name(domain, c) for c in topology.chaincodes for domain in topology.domains]
    assert set(services) == {"network", *node_services(topology), *chaincode, *data_services(topology)}
    for name in (*node_services(topology), *chaincode, *data_services(topology)):
        assert services[name]["container_name"] == name
        assert services[name]["network_mode"] == "service:network"
    for orderer in topology.orderers:
        assert services[orderer.host_name]["image"] == "hyperledger/fabric-orderer:3.1.5"
    for peer in topology.peers:
        assert services[peer.host_name]["image"] == "hyperledger/fabric-peer:3.1.5"


def test_published_ports_are_the_node_ports_bound_to_loopback_only(topology, services):
    ports = services["network"]["ports"]
    assert all(port.startswith("127.0.0.1:") for port in ports)
    pairs = [port.split(":")[1:] for port in ports]
    assert all(host == container for host, container in pairs)
    expected = {p for peer in topology.peers for p in (peer.listen_port, peer.operations_port)}
    expected |= {p for o in topology.orderers for p in (o.listen_port, o.admin_port, o.operations_port)}
    expected |= {domain.data_service_port for domain in topology.domains}
    assert sorted(int(host) for host, _ in pairs) == sorted(expected) == published_ports(topology)
    assert [name for name, service in services.items() if "ports" in service] == ["network"]


def test_environment_paths_are_in_container_mounted_and_exist_after_render(topology, services, host_layout):
    container_root = PurePosixPath(str(CONTAINER_LAYOUT.root))
    checked = 0
    for name in node_services(topology):
        service = services[name]
        mounted = mounts(service)
        for container, host in mounted.items():
            assert host.startswith(("./build/network/", "./ops/medfabric_ops/builders"))
            if container.startswith(str(container_root)):
                assert host == f"./build/network/{PurePosixPath(container).relative_to(container_root)}"
        for value in service["environment"].values():
            for path in env_paths(value):
                target = next((t for t in mounted if path == t or path.startswith(t + "/")), None)
                assert target, f"{name}: {path} is not mounted"
                if path.startswith(str(CONTAINER_BUILDER_DIR)):
                    on_host = CCAAS_BUILDER_DIR / PurePosixPath(path).relative_to(CONTAINER_BUILDER_DIR)
                else:
                    on_host = host_layout.root / PurePosixPath(path).relative_to(container_root)
                assert on_host.exists() or host_layout.root / "data" in on_host.parents, path
                checked += 1
    assert checked >= 7 * len(node_services(topology))  # a peer names 7 paths, an orderer more


def test_environment_variables_name_keys_of_the_nodes_config_files(topology, services, host_layout):
    for peer in topology.peers:
        core = yaml.safe_load((host_layout.node_config(peer.host_name) / "core.yaml").read_text())
        keys = set(environment("CORE", flatten(core)))
        env = services[peer.host_name]["environment"]
        assert {name for name in env if name.startswith("CORE_")} <= keys
        assert env["CORE_VM_ENDPOINT"] == ""
        assert env["FABRIC_CFG_PATH"] == str(CONTAINER_LAYOUT.node_config(peer.host_name))
    for orderer in topology.orderers:
        config = yaml.safe_load((host_layout.node_config(orderer.host_name) / "orderer.yaml").read_text())
        keys = set(environment("ORDERER", flatten(config)))
        env = services[orderer.host_name]["environment"]
        assert {name for name in env if name.startswith("ORDERER_")} <= keys
        assert env["ORDERER_ADMIN_LISTENADDRESS"] == f"0.0.0.0:{orderer.admin_port}"


def test_chaincode_servers_run_under_their_domains_package_id(topology, services):
    for domain in topology.domains:
        service = services[chaincode_service_name(domain)]
        assert service["environment"]["CHAINCODE_ID"] == package_id(topology, domain)
        assert service["environment"]["CHAINCODE_SERVER_ADDRESS"] == f"127.0.0.1:{domain.chaincode_port}"
        assert service["build"] == {"context": ".", "dockerfile": "chaincode/Dockerfile"}


BINDING = '{"hospital-a":"HospitalAMSP","hospital-b":"HospitalBMSP","hospital-c":"HospitalCMSP"}'


def test_every_chaincode_server_checks_domains_against_the_topologys_binding(topology):
    from medfabric_chaincode.contracts.common import DOMAIN_MSPS_VARIABLE, domain_msps
    from medfabric_ops.lifecycle import DOMAIN_MSPS_VARIABLE as RENDERED_VARIABLE

    assert RENDERED_VARIABLE == DOMAIN_MSPS_VARIABLE
    assert domain_msps({DOMAIN_MSPS_VARIABLE: BINDING}) == {d.id: d.msp_id for d in topology.domains}
    services = yaml.safe_load(render_compose(topology))["services"]
    servers = [s for name, s in services.items() if name.startswith("chaincode")]
    assert len(servers) == 2 * len(topology.domains)
    assert all(server["environment"][DOMAIN_MSPS_VARIABLE] == BINDING for server in servers)


def test_baseline_servers_run_fabric_chaincode_node_in_the_node_image_on_the_mounted_baseline(topology, services):
    for index, domain in enumerate(topology.domains):
        service = services[chaincode_service_name(domain, topology.baseline)]
        assert chaincode_service_name(domain, topology.baseline) == f"chaincode-medfabric-node.{domain.org_domain}"
        address, chaincode_id = f"127.0.0.1:{7850 + index}", package_id(topology, domain, topology.baseline)
        assert service["image"] == NODE_IMAGE == "node:20-alpine" and "build" not in service
        assert service["environment"] == {"CHAINCODE_SERVER_ADDRESS": address, "CHAINCODE_ID": chaincode_id,
                                          "MEDFABRIC_DOMAIN_MSPS": BINDING}
        assert service["command"] == node_chaincode_command(CONTAINER_BASELINE_DIR, address, chaincode_id)
        assert service["command"][:3] == [
            "node", "/opt/medfabric/caliper/baseline/node_modules/.bin/fabric-chaincode-node", "server"]
        assert mounts(service) == {"/opt/medfabric/caliper/baseline": "./caliper/baseline"}
        assert service["volumes"][0].endswith(":ro") and service["working_dir"] == str(CONTAINER_BASELINE_DIR)
        assert service["user"] == "node" and service["network_mode"] == "service:network"
        assert (PROJECT_ROOT / "caliper" / "baseline").is_dir()


def test_a_topology_without_baseline_has_no_node_services(topology):
    services = yaml.safe_load(render_compose(dataclasses.replace(topology, baseline=None)))["services"]
    assert not any("medfabric-node" in name for name in services)


@pytest.mark.parametrize("profile", ["low-latency", "high-throughput"])
def test_the_compose_file_is_the_same_for_every_profile(profile):
    assert render_compose(load_topology(profile=profile)) == COMPOSE_FILE.read_text()


def test_data_services_run_the_module_in_the_chaincode_image(topology, services):
    for domain, name in zip(topology.domains, data_services(topology), strict=True):
        service = services[name]
        assert service["image"] == f"{CHAINCODE_IMAGE}:{topology.chaincode.version}"
        assert service["image"] == services[chaincode_service_name(domain)]["image"]
        assert "build" not in service  # the chaincode services build the image, once
        assert service["entrypoint"] == ["python", "-m", "medfabric.data_service"]
        assert service["command"] == ["--domain", domain.id, "--listen", "0.0.0.0"]
        assert service["user"] == "root"  # the image's user, nobody, could not read the admin's key (0600)


def test_data_services_find_the_mounted_layout_and_topology(topology, services, host_layout):
    container_root = PurePosixPath(str(CONTAINER_LAYOUT.root))
    for domain, name in zip(topology.domains, data_services(topology), strict=True):
        service = services[name]
        env = service["environment"]
        assert set(env) == {"MEDFABRIC_BUILD_DIR", "MEDFABRIC_TOPOLOGY"}
        assert env["MEDFABRIC_BUILD_DIR"] == str(container_root)
        topology_file = PurePosixPath(env["MEDFABRIC_TOPOLOGY"])
        container, host, read_only = mount_of(service, topology_file)
        assert host == "./network" and read_only
        on_host = PROJECT_ROOT / host / topology_file.relative_to(container)
        assert on_host == DEFAULT_TOPOLOGY and on_host.is_file()
        # What the service reads as its domain's admin, what it checks requesters against, where it stores.
        container_layout = NetworkLayout(Path(env["MEDFABRIC_BUILD_DIR"]))
        reads = [container_layout.user_msp(domain, "Admin") / "keystore", container_layout.peer_tls_ca(domain),
                 *(container_layout.peer_org(member) / "msp" / "cacerts" for member in topology.domains)]
        store = PurePosixPath(container_layout.node_data(name))
        for path in map(PurePosixPath, reads):
            container, host, read_only = mount_of(service, path)
            assert read_only and host == f"./build/network/{PurePosixPath(container).relative_to(container_root)}"
            assert (host_layout.root / path.relative_to(container_root)).exists(), path
        assert mount_of(service, store) == (str(store), f"./build/network/data/{name}", False)
        assert mount_of(service, container_root / "data" / topology.peers[0].host_name) is None


def test_the_chaincode_image_installs_the_project_and_runs_the_server_unprivileged():
    dockerfile = (PROJECT_ROOT / "chaincode" / "Dockerfile").read_text().splitlines()
    instructions = [line for line in dockerfile if line and not line.startswith("#")]
    assert instructions[0] == "FROM python:3.11-slim"
    copied = {word for line in instructions if line.startswith("COPY") for word in line.split()[1:-1]}
    assert copied == {"pyproject.toml", "README.md", "chaincode", "client", "ops"}
    assert any(line.startswith("RUN pip install") for line in instructions)
    assert "USER nobody" in instructions
    assert instructions[-1] == 'ENTRYPOINT ["medfabric-chaincode"]'
    scripts = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert "medfabric-chaincode" in scripts


def test_the_file_follows_the_compose_specification(topology):
    if not COMPOSE_SCHEMA.is_file():
        pytest.skip(f"the Compose Specification schema is not installed ({COMPOSE_SCHEMA.relative_to(PROJECT_ROOT)}:"
                    " `make node-deps` installs it)")
    import jsonschema

    validator = jsonschema.Draft7Validator(json.loads(COMPOSE_SCHEMA.read_text()))
    document = yaml.safe_load(render_compose(topology))
    assert [error.message for error in validator.iter_errors(document)] == []
    broken = copy.deepcopy(document)
    broken["services"]["network"]["ports"] = "127.0.0.1:7100:7100"  # must be a list
    broken["services"][topology.peers[0].host_name]["network_mod"] = "host"  # no such key
    assert len(list(validator.iter_errors(broken))) == 2

