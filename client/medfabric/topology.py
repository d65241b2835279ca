"""The consortium description (network/topology.yaml) as typed, validated records.

Everything about the network that is not secret is derived from here: org
domains, node host names, ports, channel membership. Ops renders configs from
a `Topology`; the client uses it to find gateway peers and identities.

    >>> topo = load_topology("network/topology.yaml")
    >>> topo.channel("public").peers[0].address
    '127.0.0.1:7100'
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import yaml

DEFAULT_TOPOLOGY = Path(__file__).resolve().parents[2] / "network" / "topology.yaml"

# Ports are offsets from base_port; each node owns a block of consecutive ports.
# Blocks are far enough apart that the default consortium (6 peers, 7 orderers)
# and ten times that fit without overlap.
PORT_PLAN = {
    "peer": (100, 10),  # first block offset, block size: listen, chaincode, operations
    "orderer": (400, 10),  # listen (also cluster), admin, operations
    "chaincode": (800, 1),  # one chaincode server per domain
    "data_service": (900, 1),  # one off-chain data service per domain
}

_DOMAIN_ID = re.compile(r"^[a-z][a-z0-9-]{0,30}[a-z0-9]$")
_MSP_ID = re.compile(r"^[A-Za-z][A-Za-z0-9.-]{0,62}$")
_NODE_NAME = re.compile(r"^[a-z][a-z0-9-]{0,30}$")
_CHANNEL_NAME = re.compile(r"^[a-z][a-z0-9.-]{0,248}$")
_DURATION = re.compile(r"^(\d+)(ms|s)$")
# Fabric's _lifecycle rules for a chaincode name and version. The package label is
# "<name>_<version>", which then also matches Fabric's label rule ^[[:alnum:]][[:alnum:]_.+-]*$.
_CHAINCODE_NAME = re.compile(r"^[a-zA-Z0-9]+([-_][a-zA-Z0-9]+)*$")
_CHAINCODE_VERSION = re.compile(r"^[A-Za-z0-9_.+-]+$")
_CONSENSUS = ("raft", "bft")


class TopologyError(ValueError):
    """The topology file is invalid; the message names the offending field."""


@dataclass(frozen=True)
class Peer:
    name: str
    domain_id: str
    host_name: str
    is_duty: bool
    listen_port: int
    chaincode_port: int
    operations_port: int
    host: str

    @property
    def address(self) -> str:
        return f"{self.host}:{self.listen_port}"

    @property
    def operations_address(self) -> str:
        return f"{self.host}:{self.operations_port}"


@dataclass(frozen=True)
class Orderer:
    name: str
    domain_id: str
    host_name: str
    channel: str
    consenter_id: int  # 1-based id within its channel (SmartBFT needs one)
    listen_port: int
    admin_port: int
    operations_port: int
    host: str

    @property
    def address(self) -> str:
        return f"{self.host}:{self.listen_port}"

    @property
    def admin_address(self) -> str:
        return f"{self.host}:{self.admin_port}"

    @property
    def operations_address(self) -> str:
        return f"{self.host}:{self.operations_port}"


@dataclass(frozen=True)
class Domain:
    """A hospital domain: one peer org and one orderer org."""

    id: str
    msp_id: str
    org_domain: str
    orderer_msp_id: str
    orderer_org_domain: str
    peers: tuple[Peer, ...]
    users: tuple[str, ...]
    chaincode_port: int
    data_service_port: int

    @property
    def duty_peer(self) -> Peer:
        return self.peers[0]

    @property
    def local_channel(self) -> str:
        return f"{self.id}-local"


@dataclass(frozen=True)
class Ordering:
    consensus: str
    batch_timeout_ms: int
    max_message_count: int


@dataclass(frozen=True)
class Channel:
    name: str
    kind: str  # "local" or "public"
    ordering: Ordering
    domains: tuple[Domain, ...]
    peers: tuple[Peer, ...]
    orderers: tuple[Orderer, ...]


@dataclass(frozen=True)
class Chaincode:
    name: str
    version: str
    sequence: int


@dataclass(frozen=True)
class Topology:
    name: str
    fabric_version: str
    host: str
    base_port: int
    dns_suffix: str
    domains: tuple[Domain, ...]
    channels: tuple[Channel, ...]
    chaincode: Chaincode
    source: Path | None = None

    def domain(self, domain_id: str) -> Domain:
        for domain in self.domains:
            if domain.id == domain_id:
                return domain
        known = ", ".join(d.id for d in self.domains)
        raise TopologyError(f"unknown domain '{domain_id}' (known: {known})")

    def channel(self, name: str) -> Channel:
        for channel in self.channels:
            if channel.name == name:
                return channel
        known = ", ".join(c.name for c in self.channels)
        raise TopologyError(f"unknown channel '{name}' (known: {known})")

    @property
    def public_channel(self) -> Channel:
        return next(c for c in self.channels if c.kind == "public")

    @property
    def peers(self) -> tuple[Peer, ...]:
        return tuple(p for d in self.domains for p in d.peers)

    @property
    def orderers(self) -> tuple[Orderer, ...]:
        return tuple(o for c in self.channels for o in c.orderers)

    def orderer_domain(self, orderer: Orderer) -> Domain:
        return self.domain(orderer.domain_id)

    def channels_of(self, peer: Peer) -> tuple[Channel, ...]:
        return tuple(c for c in self.channels if peer in c.peers)

    def ports(self) -> dict[str, int]:
        """Every port the consortium binds, keyed by 'node:purpose'."""
        ports: dict[str, int] = {}
        for domain in self.domains:
            ports[f"{domain.id}:chaincode"] = domain.chaincode_port
            ports[f"{domain.id}:data-service"] = domain.data_service_port
            for peer in domain.peers:
                ports[f"{peer.host_name}:listen"] = peer.listen_port
                ports[f"{peer.host_name}:chaincode"] = peer.chaincode_port
                ports[f"{peer.host_name}:operations"] = peer.operations_port
        for orderer in self.orderers:
            ports[f"{orderer.host_name}:listen"] = orderer.listen_port
            ports[f"{orderer.host_name}:admin"] = orderer.admin_port
            ports[f"{orderer.host_name}:operations"] = orderer.operations_port
        return ports


def load_topology(path: str | Path | None = None) -> Topology:
    """Read and validate a topology file (default: network/topology.yaml)."""
    path = Path(path) if path else DEFAULT_TOPOLOGY
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise TopologyError(f"topology file not found: {path}") from None
    except yaml.YAMLError as exc:
        raise TopologyError(f"{path}: not valid YAML: {exc}".splitlines()[0]) from None
    try:
        return parse_topology(raw, source=path)
    except TopologyError as exc:
        raise TopologyError(f"{path.name}: {exc}") from None


def parse_topology(raw: Any, source: Path | None = None) -> Topology:
    """Build a Topology from the YAML document's data, validating every field."""
    doc = _Fields(raw, "")
    name = doc.text("name", pattern=_NODE_NAME)
    fabric_version = doc.text("fabric_version", pattern=re.compile(r"^3\.\d+\.\d+$"))
    host = doc.text("host", default="127.0.0.1")
    base_port = doc.integer("base_port", minimum=1024, maximum=65000)
    dns_suffix = doc.text("dns_suffix", pattern=re.compile(r"^[a-z0-9.-]+$"))

    domain_entries = doc.items("domains")
    if not domain_entries:
        raise TopologyError("domains: at least one domain is required")
    channels_doc = doc.mapping("channels")
    local_doc = channels_doc.mapping("local")
    public_doc = channels_doc.mapping("public")
    chaincode_doc = doc.mapping("chaincode")
    doc.reject_unknown()

    domains = _parse_domains(domain_entries, host, base_port, dns_suffix)
    _reject_duplicates([d.msp_id for d in domains], "domains[].msp_id")

    local_ordering = _parse_ordering(local_doc, default="raft")
    orderers_per_domain = local_doc.integer("orderers_per_domain", minimum=1, maximum=9, default=1)
    local_doc.reject_unknown()
    public_name = public_doc.text("name", pattern=_CHANNEL_NAME, default="public")
    public_ordering = _parse_ordering(public_doc, default="bft")
    public_orderer_count = public_doc.integer("orderers", minimum=1, maximum=31)
    public_doc.reject_unknown()
    if public_ordering.consensus == "bft" and public_orderer_count < 4:
        raise TopologyError(
            "channels.public.orderers: BFT needs at least 4 orderers to tolerate one fault"
        )

    orderer_index = iter(range(10_000))
    channels: list[Channel] = []
    for domain in domains:
        orderers = tuple(
            _orderer(f"raft{i}", domain, domain.local_channel, i + 1, next(orderer_index), host, base_port)
            for i in range(orderers_per_domain)
        )
        channels.append(
            Channel(domain.local_channel, "local", local_ordering, (domain,), domain.peers, orderers)
        )
    if public_name in {c.name for c in channels}:
        raise TopologyError(f"channels.public.name: '{public_name}' is already a local channel name")
    public_orderers = tuple(
        _orderer(
            f"bft{i}", domains[i % len(domains)], public_name, i + 1, next(orderer_index), host, base_port
        )
        for i in range(public_orderer_count)
    )
    channels.append(
        Channel(
            public_name,
            "public",
            public_ordering,
            tuple(domains),
            tuple(d.duty_peer for d in domains),
            public_orderers,
        )
    )

    chaincode = Chaincode(
        name=chaincode_doc.text("name", pattern=_CHAINCODE_NAME),
        version=chaincode_doc.text("version", pattern=_CHAINCODE_VERSION),
        sequence=chaincode_doc.integer("sequence", minimum=1, maximum=1_000_000),
    )
    chaincode_doc.reject_unknown()

    topology = Topology(
        name=name,
        fabric_version=fabric_version,
        host=host,
        base_port=base_port,
        dns_suffix=dns_suffix,
        domains=tuple(domains),
        channels=tuple(channels),
        chaincode=chaincode,
        source=source,
    )
    ports = topology.ports()
    if max(ports.values()) > 65535:
        raise TopologyError("base_port: too high, derived ports pass 65535")
    if len(set(ports.values())) != len(ports):
        raise TopologyError("domains: too many peers or orderers, their derived port blocks overlap")
    return topology


def _parse_domains(entries: list["_Fields"], host: str, base_port: int, dns_suffix: str) -> list[Domain]:
    domains: list[Domain] = []
    peer_index = 0
    for index, entry in enumerate(entries):
        domain_id = entry.text("id", pattern=_DOMAIN_ID)
        msp_id = entry.text("msp_id", pattern=_MSP_ID)
        peer_names = entry.names("peers", pattern=_NODE_NAME)
        users = entry.names("users", pattern=_NODE_NAME, default=())
        entry.reject_unknown()
        if not peer_names:
            raise TopologyError(f"domains[{index}].peers: at least one peer (the duty node) is required")
        org_domain = f"{domain_id}.{dns_suffix}"
        peers = []
        for position, peer_name in enumerate(peer_names):
            first = base_port + PORT_PLAN["peer"][0] + PORT_PLAN["peer"][1] * peer_index
            peers.append(
                Peer(
                    name=peer_name,
                    domain_id=domain_id,
                    host_name=f"{peer_name}.{org_domain}",
                    is_duty=position == 0,
                    listen_port=first,
                    chaincode_port=first + 1,
                    operations_port=first + 2,
                    host=host,
                )
            )
            peer_index += 1
        domains.append(
            Domain(
                id=domain_id,
                msp_id=msp_id,
                org_domain=org_domain,
                orderer_msp_id=f"{msp_id[:-3] if msp_id.endswith('MSP') else msp_id}OrdererMSP",
                orderer_org_domain=f"orderer.{org_domain}",
                peers=tuple(peers),
                users=tuple(users),
                chaincode_port=base_port + PORT_PLAN["chaincode"][0] + index,
                data_service_port=base_port + PORT_PLAN["data_service"][0] + index,
            )
        )
    _reject_duplicates([d.id for d in domains], "domains[].id")
    return domains


def _parse_ordering(fields: "_Fields", default: str) -> Ordering:
    consensus = fields.text("consensus", default=default)
    if consensus not in _CONSENSUS:
        raise TopologyError(f"{fields.at('consensus')}: must be one of {', '.join(_CONSENSUS)}")
    timeout = fields.text("batch_timeout", default="250ms")
    match = _DURATION.match(timeout)
    if not match:
        raise TopologyError(f"{fields.at('batch_timeout')}: must be a duration like 250ms or 2s")
    timeout_ms = int(match.group(1)) * (1000 if match.group(2) == "s" else 1)
    if not 1 <= timeout_ms <= 60_000:
        raise TopologyError(f"{fields.at('batch_timeout')}: must be between 1ms and 60s")
    count = fields.integer("max_message_count", minimum=1, maximum=100_000, default=100)
    return Ordering(consensus, timeout_ms, count)


def _orderer(name: str, domain: Domain, channel: str, consenter_id: int, index: int, host: str, base_port: int) -> Orderer:
    first = base_port + PORT_PLAN["orderer"][0] + PORT_PLAN["orderer"][1] * index
    return Orderer(
        name=name,
        domain_id=domain.id,
        host_name=f"{name}.{domain.orderer_org_domain}",
        channel=channel,
        consenter_id=consenter_id,
        listen_port=first,
        admin_port=first + 1,
        operations_port=first + 2,
        host=host,
    )


def _reject_duplicates(values: Iterable[str], field: str) -> None:
    seen: set[str] = set()
    for value in values:
        if value in seen:
            raise TopologyError(f"{field}: '{value}' appears twice")
        seen.add(value)


class _Fields:
    """A mapping from the YAML document, read field by field with error paths."""

    def __init__(self, raw: Any, path: str):
        if not isinstance(raw, dict):
            raise TopologyError(f"{path or 'document'}: must be a mapping")
        self._raw = raw
        self._path = path
        self._read: set[str] = set()

    def at(self, key: str) -> str:
        return f"{self._path}.{key}" if self._path else key

    def _get(self, key: str, default: Any) -> Any:
        self._read.add(key)
        if key not in self._raw or self._raw[key] is None:
            if default is _REQUIRED:
                raise TopologyError(f"{self.at(key)}: is required")
            return default
        return self._raw[key]

    def text(self, key: str, pattern: re.Pattern | None = None, default: Any = None) -> str:
        value = self._get(key, _REQUIRED if default is None else default)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str) or not value:
            raise TopologyError(f"{self.at(key)}: must be a non-empty string")
        if pattern and not pattern.match(value):
            raise TopologyError(f"{self.at(key)}: '{value}' does not match {pattern.pattern}")
        return value

    def integer(self, key: str, minimum: int, maximum: int, default: Any = None) -> int:
        value = self._get(key, _REQUIRED if default is None else default)
        if not isinstance(value, int) or isinstance(value, bool):
            raise TopologyError(f"{self.at(key)}: must be an integer")
        if not minimum <= value <= maximum:
            raise TopologyError(f"{self.at(key)}: must be between {minimum} and {maximum}, got {value}")
        return value

    def names(self, key: str, pattern: re.Pattern, default: Any = None) -> tuple[str, ...]:
        value = self._get(key, _REQUIRED if default is None else default)
        if not isinstance(value, (list, tuple)):
            raise TopologyError(f"{self.at(key)}: must be a list")
        for i, item in enumerate(value):
            if not isinstance(item, str) or not pattern.match(item):
                raise TopologyError(f"{self.at(key)}[{i}]: '{item}' does not match {pattern.pattern}")
        _reject_duplicates(value, self.at(key))
        return tuple(value)

    def mapping(self, key: str) -> "_Fields":
        return _Fields(self._get(key, _REQUIRED), self.at(key))

    def items(self, key: str) -> list["_Fields"]:
        value = self._get(key, _REQUIRED)
        if not isinstance(value, list):
            raise TopologyError(f"{self.at(key)}: must be a list")
        return [_Fields(item, f"{self.at(key)}[{i}]") for i, item in enumerate(value)]

    def reject_unknown(self) -> None:
        unknown = sorted(set(self._raw) - self._read)
        if unknown:
            raise TopologyError(f"{self.at(unknown[0])}: unknown field")


_REQUIRED = object()
