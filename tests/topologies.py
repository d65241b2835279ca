"""network/topology.yaml moved to another port range, for tests and harnesses that start servers."""

from __future__ import annotations

import random
import socket
from pathlib import Path
from typing import Callable, Iterable

import yaml

from medfabric.consortium.topology import DEFAULT_TOPOLOGY, Topology, load_topology

ATTEMPTS = 20


def random_base_port() -> int:
    """A base port whose derived ports (base + 100 ... base + 999) stay below 61,000."""
    return random.randrange(20_000, 60_000, 1000)


def write_topology(path: Path, base_port: int, public: dict | None = None) -> Topology:
    """The default topology at `base_port`, its public channel's settings updated with `public`, written to `path`
    (topologies read the ports from their file)."""
    raw = yaml.safe_load(DEFAULT_TOPOLOGY.read_text())
    raw["channels"]["public"].update(public or {})
    path.write_text(yaml.safe_dump({**raw, "base_port": base_port}, sort_keys=False))
    return load_topology(path)


def ports_free(ports: Iterable[int]) -> bool:
    """Whether every port can be bound on 127.0.0.1 now."""
    for port in ports:
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                return False
    return True


def topology_with_free_ports(path: Path, ports_of: Callable[[Topology], Iterable[int]]) -> Topology:
    """The default topology, written to `path`, at a random base port where `ports_of` it are free."""
    for _attempt in range(ATTEMPTS):
        topology = write_topology(path, random_base_port())
        if ports_free(ports_of(topology)):
            return topology
    raise RuntimeError(f"no base port with free ports in {ATTEMPTS} attempts")


def duty_peer_ports(topology: Topology) -> list[int]:
    return [domain.duty_peer.listen_port for domain in topology.domains]
