"""The consortium description (network/topology.yaml) as typed, validated records.

Everything about the network that is not secret is derived from here: org
domains, node host names, ports, channel membership. Ops renders configs from
a `Topology`; the client uses it to find gateway peers and identities.

    >>> topo = load_topology("network/topology.yaml")
    >>> topo.channel("public").peers[0].address
    '127.0.0.1:7100'
    >>> load_topology(profile="low-latency").public_channel.ordering.batch_timeout_ms
    20

Tuning knobs (ordering batch sizes and intervals, SmartBFT options, the
peers' Gateway concurrency limit) have the values written in the file; a
named profile of its `profiles:` section overrides some of them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import yaml

CHAINCODE_NAME = "medfabric"  # the application chaincode, as network/topology.yaml deploys it
DEFAULT_TOPOLOGY = Path(__file__).resolve().parents[3] / "network" / "topology.yaml"

# Ports are offsets from base_port; each node owns a block of consecutive ports.
# Blocks are far enough apart that the default consortium (6 peers, 7 orderers)
# and ten times that fit without overlap.
PORT_PLAN = {
    "peer": (100, 10),  # first block offset, block size: listen, chaincode, operations
    "orderer": (400, 10),  # listen (also cluster), admin, operations
    # One block per chaincode (the application's, then the baseline's), one server per domain in each.
    "chaincode": (800, 50),
    "data_service": (900, 1),  # one off-chain data service per domain
}

MAX_LOCAL_ORDERERS = 9  # the most orderers one domain's local channel may have
_DOMAIN_ID = re.compile(r"^[a-z][a-z0-9-]{0,30}[a-z0-9]$")
_MSP_ID = re.compile(r"^[A-Za-z][A-Za-z0-9.-]{0,62}$")
_NODE_NAME = re.compile(r"^[a-z][a-z0-9-]{0,30}$")
_CHANNEL_NAME = re.compile(r"^[a-z][a-z0-9.-]{0,248}$")
_DURATION = re.compile(r"^(\d+)(ms|s)$")
ENDORSEMENT_RULES = ("MAJORITY", "ANY")  # the ImplicitMeta rules a channel's endorsement policy may use
# Fabric's _lifecycle rules for a chaincode name and version. The package label is
# "<name>_<version>", which then also matches Fabric's label rule ^[[:alnum:]][[:alnum:]_.+-]*$.
_CHAINCODE_NAME = re.compile(r"^[a-zA-Z0-9]+([-_][a-zA-Z0-9]+)*$")
_CHAINCODE_VERSION = re.compile(r"^[A-Za-z0-9_.+-]+$")
_CONSENSUS = ("raft", "bft")
_PROFILE_NAME = re.compile(r"^[a-z][a-z0-9-]{0,40}$")
DEFAULT_ORPHAN_GRACE_MS = 600_000  # data_services.orphan_grace when the topology sets none
DEFAULT_PROFILE = "default"  # the values written in the file, outside `profiles:`
# What a profile may set: the tuning knobs, by section.
_CHANNEL_KNOBS = ("batch_timeout", "max_message_count", "smartbft")
# SmartBFT's failure-detection timeouts, by topology name, with Fabric's defaults (sampleconfig configtx.yaml)
# and the option each renders to.
SMARTBFT_TIMEOUTS = {
    "request_forward_timeout": ("2s", "RequestForwardTimeout"),
    "request_complain_timeout": ("20s", "RequestComplainTimeout"),
    "request_auto_remove_timeout": ("180s", "RequestAutoRemoveTimeout"),
    "view_change_resend_interval": ("5s", "ViewChangeResendInterval"),
    "view_change_timeout": ("20s", "ViewChangeTimeout"),
    "leader_heartbeat_timeout": ("60s", "LeaderHeartbeatTimeout"),
    "collect_timeout": ("1s", "CollectTimeout"),
}
_SMARTBFT_KNOBS = ("request_pool_size", "incoming_message_buffer_size", "leader_heartbeat_count",
                   *SMARTBFT_TIMEOUTS)
_GATEWAY_KNOBS = ("concurrency",)


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
    local_orderers: int | None = None  # its local channel's orderer count, when not channels.local's

    @property
    def duty_peer(self) -> Peer:
        return self.peers[0]

    @property
    def local_channel(self) -> str:
        return f"{self.id}-local"


@dataclass(frozen=True)
class SmartBFTOptions:
    """The SmartBFT options worth tuning (the rest are fixed in ops' configtx rendering).

    The timeouts decide how fast a dead leader is replaced: a follower forwards a request it holds to the
    leader after request_forward_timeout, complains about the leader once the request is still not ordered
    after request_complain_timeout, and a view change that has not completed after view_change_timeout
    starts over. Without requests, a follower suspects the leader after leader_heartbeat_timeout without a
    heartbeat (the leader sends leader_heartbeat_count of them per timeout).
    """

    request_pool_size: int = 100_000  # requests a consenter holds before new submits wait
    incoming_message_buffer_size: int = 200  # consensus messages from other consenters held before processing
    leader_heartbeat_count: int = 10
    timeouts_ms: tuple[tuple[str, int], ...] = ()  # (name in SMARTBFT_TIMEOUTS, milliseconds), every name once

    def timeout_ms(self, name: str) -> int:
        values = dict(self.timeouts_ms)
        if name in values:
            return values[name]
        default = SMARTBFT_TIMEOUTS[name][0]
        return int(default[:-1]) * 1000


@dataclass(frozen=True)
class Ordering:
    consensus: str
    batch_timeout_ms: int  # raft: BatchTimeout; bft: also SmartBFT RequestBatchMaxInterval, the one it uses
    max_message_count: int  # BatchSize.MaxMessageCount (bft: also RequestBatchMaxCount)
    smartbft: SmartBFTOptions | None = None  # bft only


@dataclass(frozen=True)
class Channel:
    name: str
    kind: str  # "local" or "public"
    ordering: Ordering
    domains: tuple[Domain, ...]
    peers: tuple[Peer, ...]
    orderers: tuple[Orderer, ...]
    # The channel's default endorsement policy, ImplicitMeta over its orgs' Endorsement policies: MAJORITY
    # (no member's endorsement alone commits) or ANY (one member's does: for the malicious-member study only).
    endorsement: str = "MAJORITY"


@dataclass(frozen=True)
class Chaincode:
    """A chaincode deployed as a service on every channel, one server per domain.

    role "application" is medfabric's own (Python, medfabric-chaincode); role "baseline" is the same
    index-write contract in Node on Fabric's official shim, for benchmarks.
    """

    name: str
    version: str
    sequence: int
    role: str = "application"
    first_port: int = 0  # the server of the i-th domain listens on first_port + i

    @property
    def runtime(self) -> str:
        return "node" if self.role == "baseline" else "python"


@dataclass(frozen=True)
class Tuning:
    """The tuning knobs in force, and the profile they come from."""

    profile: str
    gateway_concurrency: int  # core.yaml peer.limits.concurrency.gatewayService


@dataclass(frozen=True)
class Topology:
    name: str
    fabric_version: str
    host: str
    base_port: int
    dns_suffix: str
    domains: tuple[Domain, ...]
    channels: tuple[Channel, ...]
    chaincode: Chaincode  # the application's chaincode
    source: Path | None = None
    baseline: Chaincode | None = None  # the Node baseline, when the topology deploys it
    tuning: Tuning = Tuning(DEFAULT_PROFILE, 500)
    profiles: tuple[str, ...] = ()  # the profile names the file defines
    orphan_grace_ms: int = DEFAULT_ORPHAN_GRACE_MS  # data_services.orphan_grace (a store not indexed by then goes)

    @property
    def chaincodes(self) -> tuple[Chaincode, ...]:
        """Every chaincode deployed on every channel: the application's first."""
        return (self.chaincode, self.baseline) if self.baseline else (self.chaincode,)

    def chaincode_port(self, chaincode: Chaincode, domain: Domain) -> int:
        """Where the domain's server of `chaincode` listens."""
        return chaincode.first_port + self.domains.index(domain)

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
            if self.baseline:
                ports[f"{domain.id}:chaincode:{self.baseline.name}"] = self.chaincode_port(self.baseline, domain)
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


def load_topology(path: str | Path | None = None, profile: str | None = None) -> Topology:
    """Read and validate a topology file (default: network/topology.yaml), with the tuning of `profile`
    (default: the values written outside `profiles:`)."""
    path = Path(path) if path else DEFAULT_TOPOLOGY
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise TopologyError(f"topology file not found: {path}") from None
    except yaml.YAMLError as exc:
        raise TopologyError(f"{path}: not valid YAML: {exc}".splitlines()[0]) from None
    try:
        return parse_topology(raw, source=path, profile=profile)
    except TopologyError as exc:
        raise TopologyError(f"{path.name}: {exc}") from None


def parse_topology(raw: Any, source: Path | None = None, profile: str | None = None) -> Topology:
    """Build a Topology from the YAML document's data, validating every field (those of every profile too);
    `profile` names the profile whose tuning applies (None or "default": the file's own values)."""
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
    baseline_doc = doc.optional_mapping("baseline")
    gateway_doc = doc.optional_mapping("peer_gateway")
    services_doc = doc.optional_mapping("data_services")
    orphan_grace_ms = DEFAULT_ORPHAN_GRACE_MS
    if services_doc is not None:
        orphan_grace_ms = services_doc.duration_ms("orphan_grace", default=f"{DEFAULT_ORPHAN_GRACE_MS}ms",
                                                   maximum_ms=86_400_000)
        services_doc.reject_unknown()
    profiles = _parse_profiles(doc.optional_mapping("profiles"))
    doc.reject_unknown()
    if profile not in (None, DEFAULT_PROFILE, *profiles):
        known = ", ".join([DEFAULT_PROFILE, *profiles])
        raise TopologyError(f"profiles: no profile '{profile}' (known: {known})")

    domains = _parse_domains(domain_entries, host, base_port, dns_suffix)
    _reject_duplicates([d.msp_id for d in domains], "domains[].msp_id")

    # Every profile is checked against the file's values, whichever is chosen: a typo fails early.
    chosen: dict[str, Any] = {}
    for profile_name, overlay in [(DEFAULT_PROFILE, None), *profiles.items()]:
        tuning = {
            "local": _parse_ordering(_layered(local_doc, overlay, "channels", "local"), default="raft"),
            "public": _parse_ordering(_layered(public_doc, overlay, "channels", "public"), default="bft"),
            "gateway": _parse_gateway(_layered(gateway_doc, overlay, "peer_gateway")),
        }
        if profile_name == (profile or DEFAULT_PROFILE):
            chosen = tuning
    local_ordering, public_ordering = chosen["local"], chosen["public"]
    orderers_per_domain = local_doc.integer("orderers_per_domain", minimum=1, maximum=MAX_LOCAL_ORDERERS, default=1)
    local_doc.reject_unknown()
    local_counts = [domain.local_orderers or orderers_per_domain for domain in domains]
    for index, (domain, count) in enumerate(zip(domains, local_counts)):
        if local_ordering.consensus == "bft" and count < 4:
            where = f"domains[{index}].orderers" if domain.local_orderers else "channels.local.orderers_per_domain"
            raise TopologyError(f"{where}: BFT needs at least 4 orderers to tolerate one fault")
    public_name = public_doc.text("name", pattern=_CHANNEL_NAME, default="public")
    public_orderer_count = public_doc.integer("orderers", minimum=1, maximum=31)
    public_endorsement = public_doc.text("endorsement", default="MAJORITY")
    if public_endorsement not in ENDORSEMENT_RULES:
        raise TopologyError(f"{public_doc.at('endorsement')}: must be one of {', '.join(ENDORSEMENT_RULES)}")
    public_doc.reject_unknown()
    if public_ordering.consensus == "bft" and public_orderer_count < 4:
        raise TopologyError(
            "channels.public.orderers: BFT needs at least 4 orderers to tolerate one fault"
        )

    orderer_index = iter(range(10_000))
    channels: list[Channel] = []
    for domain, count in zip(domains, local_counts):
        orderers = tuple(
            _orderer(f"{'raft' if local_ordering.consensus == 'raft' else 'group'}{i}", domain, domain.local_channel,
                     i + 1, next(orderer_index), host, base_port)
            for i in range(count)
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
            public_endorsement,
        )
    )

    chaincode = _parse_chaincode(chaincode_doc, "application", _chaincode_block(base_port, 0))
    baseline = None
    if baseline_doc is not None and baseline_doc.boolean("enabled", default=True):
        baseline = _parse_chaincode(baseline_doc, "baseline", _chaincode_block(base_port, 1))
        if baseline.name == chaincode.name:
            raise TopologyError(f"baseline.name: '{baseline.name}' is already the application chaincode's name")
    elif baseline_doc is not None:
        baseline_doc.ignore_rest()  # disabled: its other fields are kept for later, unchecked

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
        baseline=baseline,
        tuning=Tuning(profile or DEFAULT_PROFILE, chosen["gateway"]),
        profiles=tuple(profiles),
        orphan_grace_ms=orphan_grace_ms,
    )
    ports = topology.ports()
    if max(ports.values()) > 65535:
        raise TopologyError("base_port: too high, derived ports pass 65535")
    if len(set(ports.values())) != len(ports):
        raise TopologyError("domains: too many peers, orderers or domains, their derived port blocks overlap")
    return topology


def _chaincode_block(base_port: int, index: int) -> int:
    offset, size = PORT_PLAN["chaincode"]
    return base_port + offset + size * index


def _parse_chaincode(fields: "_Fields", role: str, first_port: int) -> Chaincode:
    chaincode = Chaincode(
        name=fields.text("name", pattern=_CHAINCODE_NAME),
        version=fields.text("version", pattern=_CHAINCODE_VERSION),
        sequence=fields.integer("sequence", minimum=1, maximum=1_000_000),
        role=role,
        first_port=first_port,
    )
    fields.reject_unknown()
    return chaincode


def _parse_profiles(fields: "_Fields | None") -> dict[str, "_Fields"]:
    """Each profile's mapping, checked to hold tuning knobs only."""
    if fields is None:
        return {}
    profiles: dict[str, _Fields] = {}
    for name in fields.keys():
        if not isinstance(name, str) or not _PROFILE_NAME.match(name) or name == DEFAULT_PROFILE:
            raise TopologyError(f"{fields.at(str(name))}: a profile name must match {_PROFILE_NAME.pattern} "
                                f"and not be '{DEFAULT_PROFILE}'")
        profile = fields.mapping(name)
        profile.only(("channels", "peer_gateway"), "a profile sets tuning knobs only")
        channels = profile.optional_mapping("channels")
        if channels is not None:
            channels.only(("local", "public"), "a profile tunes the local and public channels")
            for kind in ("local", "public"):
                section = channels.optional_mapping(kind)
                if section is not None:
                    section.only(_CHANNEL_KNOBS, "a profile sets only " + ", ".join(_CHANNEL_KNOBS))
                    smartbft = section.optional_mapping("smartbft")
                    if smartbft is not None:
                        smartbft.only(_SMARTBFT_KNOBS, "a profile sets only " + ", ".join(_SMARTBFT_KNOBS))
        gateway = profile.optional_mapping("peer_gateway")
        if gateway is not None:
            gateway.only(_GATEWAY_KNOBS, "a profile sets only " + ", ".join(_GATEWAY_KNOBS))
        profiles[name] = profile
    return profiles


def _layered(base: "_Fields | None", profile: "_Fields | None", *path: str) -> "_Fields":
    """The section at `path` with the profile's values over the file's (errors name where a value was read)."""
    overlay = profile
    for key in path:
        overlay = overlay.optional_mapping(key, mark=False) if overlay is not None else None
    return _Overlay(base if base is not None else _Fields({}, ".".join(path)), overlay)


def _parse_gateway(fields: "_Fields") -> int:
    return fields.integer("concurrency", minimum=1, maximum=100_000, default=500)


def _parse_domains(entries: list["_Fields"], host: str, base_port: int, dns_suffix: str) -> list[Domain]:
    domains: list[Domain] = []
    peer_index = 0
    for index, entry in enumerate(entries):
        domain_id = entry.text("id", pattern=_DOMAIN_ID)
        msp_id = entry.text("msp_id", pattern=_MSP_ID)
        peer_names = entry.names("peers", pattern=_NODE_NAME)
        users = entry.names("users", pattern=_NODE_NAME, default=())
        local_orderers = entry.integer("orderers", 1, MAX_LOCAL_ORDERERS) if entry.has("orderers") else None
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
                local_orderers=local_orderers,
            )
        )
    _reject_duplicates([d.id for d in domains], "domains[].id")
    return domains


def _parse_ordering(fields: "_Fields", default: str) -> Ordering:
    consensus = fields.text("consensus", default=default)
    if consensus not in _CONSENSUS:
        raise TopologyError(f"{fields.at('consensus')}: must be one of {', '.join(_CONSENSUS)}")
    timeout_ms = fields.duration_ms("batch_timeout", default="250ms", maximum_ms=60_000)
    count = fields.integer("max_message_count", minimum=1, maximum=100_000, default=100)
    smartbft_doc = fields.optional_mapping("smartbft")
    smartbft = None
    if consensus == "bft":
        smartbft_doc = smartbft_doc or _Fields({}, fields.at("smartbft"))
        smartbft = SmartBFTOptions(
            request_pool_size=smartbft_doc.integer("request_pool_size", minimum=1, maximum=10_000_000,
                                                   default=SmartBFTOptions.request_pool_size),
            incoming_message_buffer_size=smartbft_doc.integer(
                "incoming_message_buffer_size", minimum=1, maximum=1_000_000,
                default=SmartBFTOptions.incoming_message_buffer_size),
            leader_heartbeat_count=smartbft_doc.integer("leader_heartbeat_count", minimum=1, maximum=1000,
                                                        default=SmartBFTOptions.leader_heartbeat_count),
            timeouts_ms=tuple((name, smartbft_doc.duration_ms(name, default=default, maximum_ms=3_600_000))
                              for name, (default, _) in SMARTBFT_TIMEOUTS.items()),
        )
        smartbft_doc.reject_unknown()
        _check_smartbft_order(smartbft, smartbft_doc)
        if smartbft.request_pool_size < count:
            raise TopologyError(f"{smartbft_doc.at('request_pool_size')}: must hold at least one batch "
                                f"(max_message_count {count})")
    elif smartbft_doc is not None:
        raise TopologyError(f"{fields.at('smartbft')}: only for consensus bft")
    return Ordering(consensus, timeout_ms, count, smartbft)


def _check_smartbft_order(options: SmartBFTOptions, fields: "_Fields") -> None:
    """SmartBFT refuses a channel whose timeouts are out of order (its Configuration.Validate)."""
    for shorter, longer in (("request_forward_timeout", "request_complain_timeout"),
                            ("request_complain_timeout", "request_auto_remove_timeout"),
                            ("view_change_resend_interval", "view_change_timeout")):
        if options.timeout_ms(shorter) > options.timeout_ms(longer):
            raise TopologyError(f"{fields.at(shorter)}: must not be longer than {longer} "
                                f"({options.timeout_ms(longer)} ms)")


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

    def has(self, key: str) -> bool:
        return key in self._raw

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

    def duration_ms(self, key: str, default: str, maximum_ms: int) -> int:
        """A duration like 250ms or 2s, in milliseconds."""
        match = _DURATION.match(self.text(key, default=default))
        if not match:
            raise TopologyError(f"{self.at(key)}: must be a duration like 250ms or 2s")
        value = int(match.group(1)) * (1000 if match.group(2) == "s" else 1)
        if not 1 <= value <= maximum_ms:
            raise TopologyError(f"{self.at(key)}: must be between 1ms and {maximum_ms // 1000}s")
        return value

    def boolean(self, key: str, default: bool) -> bool:
        value = self._get(key, default)
        if not isinstance(value, bool):
            raise TopologyError(f"{self.at(key)}: must be true or false")
        return value

    def mapping(self, key: str) -> "_Fields":
        return _Fields(self._get(key, _REQUIRED), self.at(key))

    def optional_mapping(self, key: str, mark: bool = True) -> "_Fields | None":
        """The mapping at `key`, or None where there is none. (mark=False: reading it does not count as
        having read the key, for reject_unknown.)"""
        if mark:
            self._read.add(key)
        if self._raw.get(key) is None:
            return None
        return _Fields(self._raw[key], self.at(key))

    def keys(self) -> list[Any]:
        return list(self._raw)

    def only(self, allowed: Iterable[str], why: str) -> None:
        """TopologyError naming the first key that is not `allowed`."""
        unknown = sorted(str(key) for key in self._raw if key not in allowed)
        if unknown:
            raise TopologyError(f"{self.at(unknown[0])}: not allowed here ({why})")

    def ignore_rest(self) -> None:
        self._read.update(self._raw)

    def items(self, key: str) -> list["_Fields"]:
        value = self._get(key, _REQUIRED)
        if not isinstance(value, list):
            raise TopologyError(f"{self.at(key)}: must be a list")
        return [_Fields(item, f"{self.at(key)}[{i}]") for i, item in enumerate(value)]

    def reject_unknown(self) -> None:
        unknown = sorted(set(self._raw) - self._read)
        if unknown:
            raise TopologyError(f"{self.at(unknown[0])}: unknown field")


class _Overlay(_Fields):
    """A section read from a profile's values where it sets them, else from the file's."""

    def __init__(self, base: _Fields, overlay: _Fields | None):
        super().__init__(base._raw, base._path)
        self._base, self._overlay = base, overlay

    def _source(self, key: str) -> _Fields:
        if self._overlay is not None and self._overlay._raw.get(key) is not None:
            return self._overlay
        return self._base

    def at(self, key: str) -> str:
        return self._source(key).at(key)

    def _get(self, key: str, default: Any) -> Any:
        self._base._read.add(key)
        return self._source(key)._get(key, default)

    def optional_mapping(self, key: str, mark: bool = True) -> _Fields | None:
        self._base._read.add(key)
        base = self._base.optional_mapping(key)
        overlay = self._overlay.optional_mapping(key) if self._overlay is not None else None
        if base is None and overlay is None:
            return None
        return _Overlay(base if base is not None else _Fields({}, self._base.at(key)), overlay)

    def reject_unknown(self) -> None:
        self._base.reject_unknown()


_REQUIRED = object()
