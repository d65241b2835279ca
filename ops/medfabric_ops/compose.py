"""docker-compose.yaml: the same consortium on Fabric's official images.

Same nodes, names, ports and configuration as native mode. Channel
configuration, gossip endpoints and chaincode packages name nodes by
``127.0.0.1:<port>``, so every container joins one network namespace, held by
the ``network`` service: there, as on the host, ``127.0.0.1:<port>`` reaches
the node that owns the port, and the genesis blocks, packages and TLS
certificates of native mode work unchanged. The ``network`` service sits on
the ``medfabric`` network and publishes every node port on the host's
127.0.0.1 only; inside the namespace servers listen on all interfaces so
that published ports reach them.

Each node mounts its org's crypto folder, its own config folder and its own
data folder from ``build/network`` (run ``medfabric network render`` first),
and gets the environment of native mode with in-container paths.

Each domain's data service runs ``python -m medfabric.data_service`` in the
chaincode image, as root like the Fabric nodes, since it reads the domain
admin's key (mode 0600, the host user's). It mounts the peer orgs' crypto
read-only, its store (its data folder) read-write, and the project's
``network/`` folder read-only for the topology it is told to read.

The Node baseline chaincode's servers (when the topology has it) run Fabric's
``fabric-chaincode-node`` in the official Node image, on the project's
``caliper/baseline`` mounted read-only with its node_modules (``npm ci``
there first).
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Any, Callable

import yaml

from medfabric.consortium.layout import PROJECT_ROOT, NetworkLayout
from medfabric.consortium.topology import DEFAULT_TOPOLOGY, Chaincode, Domain, Orderer, Peer, Topology

from .data_services import MODULE as DATA_SERVICE_MODULE
from .data_services import data_service_args, data_service_env, data_service_name
from .lifecycle import (
    BASELINE_DIR,
    DOMAIN_MSPS_VARIABLE,
    chaincode_process_name,
    domain_msps_json,
    node_chaincode_command,
)
from .render.chaincode_package import package_id
from .render.core_yaml import CCAAS_BUILDER_DIR, external_builders, peer_env
from .render.files import environment
from .render.orderer_yaml import orderer_env

HEADER = (
    "# Generated from network/topology.yaml by `medfabric network render` — do not edit.\n"
    "# Needs the material of `medfabric network render` in build/network.\n"
)
HOST_LAYOUT = NetworkLayout(Path("build/network"))  # relative to the project root, where the file lives
CONTAINER_LAYOUT = NetworkLayout(Path("/var/hyperledger/medfabric"))
CONTAINER_BUILDER_DIR = PurePosixPath("/opt/medfabric/ccaas-builder")
HOST_TOPOLOGY_DIR = DEFAULT_TOPOLOGY.parent.relative_to(PROJECT_ROOT)  # network/
CONTAINER_TOPOLOGY = PurePosixPath("/opt/medfabric") / HOST_TOPOLOGY_DIR.as_posix() / DEFAULT_TOPOLOGY.name
NETWORK_SERVICE = "network"
NETWORK_NAME = "medfabric"
CHAINCODE_IMAGE = "medfabric-chaincode"
NODE_IMAGE = "node:20-alpine"  # the official Node image, for the baseline chaincode
HOST_BASELINE_DIR = BASELINE_DIR.relative_to(PROJECT_ROOT)  # caliper/baseline
CONTAINER_BASELINE_DIR = PurePosixPath("/opt/medfabric") / HOST_BASELINE_DIR.as_posix()


def render_compose(topology: Topology) -> str:
    """The docker-compose.yaml document for the topology."""
    services: dict[str, Any] = {NETWORK_SERVICE: _network_service(topology)}
    services.update({o.host_name: _orderer_service(topology, o) for o in topology.orderers})
    services.update({p.host_name: _peer_service(topology, p) for p in topology.peers})
    services.update({chaincode_service_name(d): _chaincode_service(topology, d) for d in topology.domains})
    if topology.baseline:
        services.update({chaincode_service_name(d, topology.baseline): _baseline_service(topology, d)
                         for d in topology.domains})
    services.update({data_service_name(d): _data_service(topology, d) for d in topology.domains})
    document = {
        "name": topology.name,
        "services": services,
        "networks": {NETWORK_NAME: {"name": NETWORK_NAME}},
    }
    return HEADER + yaml.safe_dump(document, sort_keys=False, width=120)


def chaincode_service_name(domain: Domain, chaincode: Chaincode | None = None) -> str:
    """The service (and container) of the domain's server of the chaincode: its native process name."""
    return chaincode_process_name(domain, chaincode)


def published_ports(topology: Topology) -> list[int]:
    """The ports reachable from the host: peer and orderer endpoints, admin and operations, data services."""
    ports = [domain.data_service_port for domain in topology.domains]
    for peer in topology.peers:
        ports += [peer.listen_port, peer.operations_port]
    for orderer in topology.orderers:
        ports += [orderer.listen_port, orderer.admin_port, orderer.operations_port]
    return sorted(ports)


def _network_service(topology: Topology) -> dict[str, Any]:
    """Holds the network namespace the nodes share; it runs nothing but an idle process."""
    return {
        "image": f"hyperledger/fabric-peer:{topology.fabric_version}",
        "container_name": f"{topology.name}-network",
        "command": ["sleep", "infinity"],
        "init": True,
        "networks": [NETWORK_NAME],
        "ports": [f"127.0.0.1:{port}:{port}" for port in published_ports(topology)],
    }


def _orderer_service(topology: Topology, orderer: Orderer) -> dict[str, Any]:
    domain = topology.orderer_domain(orderer)
    env = orderer_env(topology, CONTAINER_LAYOUT, orderer) | {
        "ORDERER_GENERAL_LISTENADDRESS": "0.0.0.0",
        "ORDERER_ADMIN_LISTENADDRESS": f"0.0.0.0:{orderer.admin_port}",
        "ORDERER_OPERATIONS_LISTENADDRESS": f"0.0.0.0:{orderer.operations_port}",
    }
    volumes = [_mount(lambda layout: layout.orderer_org(domain), read_only=True), *_node_volumes(orderer.host_name)]
    return _node_service(f"hyperledger/fabric-orderer:{topology.fabric_version}", orderer.host_name, env, volumes)


def _peer_service(topology: Topology, peer: Peer) -> dict[str, Any]:
    domain = topology.domain(peer.domain_id)
    builders = {"chaincode.externalBuilders": external_builders(CONTAINER_BUILDER_DIR)}
    env = peer_env(topology, CONTAINER_LAYOUT, peer) | environment("CORE", builders) | {
        "CORE_VM_ENDPOINT": "",
        "CORE_PEER_LISTENADDRESS": f"0.0.0.0:{peer.listen_port}",
        "CORE_OPERATIONS_LISTENADDRESS": f"0.0.0.0:{peer.operations_port}",
    }
    volumes = [
        _mount(lambda layout: layout.peer_org(domain), read_only=True),
        *_node_volumes(peer.host_name),
        f"./{CCAAS_BUILDER_DIR.relative_to(PROJECT_ROOT).as_posix()}:{CONTAINER_BUILDER_DIR}:ro",
    ]
    return _node_service(f"hyperledger/fabric-peer:{topology.fabric_version}", peer.host_name, env, volumes)


def _chaincode_service(topology: Topology, domain: Domain) -> dict[str, Any]:
    return {
        "build": {"context": ".", "dockerfile": "chaincode/Dockerfile"},
        "image": f"{CHAINCODE_IMAGE}:{topology.chaincode.version}",
        "container_name": chaincode_service_name(domain),
        "network_mode": f"service:{NETWORK_SERVICE}",
        "environment": {
            "CHAINCODE_SERVER_ADDRESS": f"{topology.host}:{domain.chaincode_port}",
            "CHAINCODE_ID": package_id(topology, domain),
            "CHAINCODE_TLS_DISABLED": "true",
            DOMAIN_MSPS_VARIABLE: domain_msps_json(topology),
        },
    }


def _baseline_service(topology: Topology, domain: Domain) -> dict[str, Any]:
    """The domain's server of the Node baseline: fabric-chaincode-node on caliper/baseline, in the Node image.
    The package id and address are in its command; the environment repeats them for readers (docker mode
    checks the id against the package the peers install)."""
    chaincode = topology.baseline
    address = f"{topology.host}:{topology.chaincode_port(chaincode, domain)}"
    chaincode_id = package_id(topology, domain, chaincode)
    return {  # keys in the order dclint prefers
        "image": NODE_IMAGE,
        "container_name": chaincode_service_name(domain, chaincode),
        "volumes": [f"./{HOST_BASELINE_DIR.as_posix()}:{CONTAINER_BASELINE_DIR}:ro"],
        "environment": {"CHAINCODE_SERVER_ADDRESS": address, "CHAINCODE_ID": chaincode_id,
                        DOMAIN_MSPS_VARIABLE: domain_msps_json(topology)},
        "network_mode": f"service:{NETWORK_SERVICE}",
        "command": node_chaincode_command(CONTAINER_BASELINE_DIR, address, chaincode_id),
        "user": "node",
        "working_dir": str(CONTAINER_BASELINE_DIR),
    }


def _data_service(topology: Topology, domain: Domain) -> dict[str, Any]:
    name = data_service_name(domain)
    return {  # keys in the order dclint prefers
        "image": f"{CHAINCODE_IMAGE}:{topology.chaincode.version}",  # built by the chaincode services
        "container_name": name,
        "volumes": [
            # every peer org: it checks requesters against each member's CA, acts as its domain's admin
            _mount(lambda layout: layout.peer_org(domain).parent, read_only=True),
            _mount(lambda layout: layout.node_data(name), read_only=False),
            f"./{HOST_TOPOLOGY_DIR.as_posix()}:{CONTAINER_TOPOLOGY.parent}:ro",
        ],
        "environment": data_service_env(PurePosixPath(CONTAINER_LAYOUT.root), CONTAINER_TOPOLOGY),
        "network_mode": f"service:{NETWORK_SERVICE}",
        # Published ports reach a container on its network address, not its loopback.
        "command": [*data_service_args(domain), "--listen", "0.0.0.0"],
        "entrypoint": ["python", "-m", DATA_SERVICE_MODULE],
        "user": "root",
    }


def _node_service(image: str, host_name: str, env: dict[str, str], volumes: list[str]) -> dict[str, Any]:
    return {
        "image": image,
        "container_name": host_name,
        "network_mode": f"service:{NETWORK_SERVICE}",
        "environment": env,
        "volumes": volumes,
    }


def _node_volumes(host_name: str) -> list[str]:
    """The node's own config folder (read-only) and data folder."""
    return [
        _mount(lambda layout: layout.node_config(host_name), read_only=True),
        _mount(lambda layout: layout.node_data(host_name), read_only=False),
    ]


def _mount(path_in: Callable[[NetworkLayout], Path], read_only: bool) -> str:
    """A bind mount of a build/network path onto the same path of the in-container layout."""
    volume = f"./{path_in(HOST_LAYOUT).as_posix()}:{path_in(CONTAINER_LAYOUT).as_posix()}"
    return volume + (":ro" if read_only else "")
