"""The consortium as native processes: up, down, clean, status.

    >>> timings = up(topology, layout, locate_binaries(topology.fabric_version), progress=print)
    >>> status(topology, layout)["processes"][0]["alive"]
    True
    >>> down(layout)

Every step of `up` is idempotent: running processes are kept, and joined
channels and installed, approved or committed chaincode are skipped, so `up`
twice is harmless and `up` after `down` resumes with the ledgers intact. The
tuning profile is recorded when the channels are created (their genesis
blocks fix the ordering settings); `up` with another profile on existing
channels is refused.
`bring_up` is the sequence itself, for any way of running the Fabric tools
and the nodes: docker_mode runs it with containers.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Protocol, TypeVar

from medfabric.consortium.layout import FL_DATA, PROJECT_ROOT, NetworkLayout, read_tuning_record
from medfabric.consortium.topology import Channel, Orderer, Peer, Topology

from . import crypto_material, render
from .binaries import FabricBinaries, FabricCommandError, FabricTools
from .channel_readiness import alive_consenters, settle_rejoined, stuck_in_view_change, wait_until_ready
from .channel import PeerAdmin, create_genesis_block, join_orderers, join_peers
from .data_services import data_service_name, ready_probe, start_data_service
from .lifecycle import chaincode_process_name, committed_sequences, deploy, install, start_chaincode_server
from .osnadmin import OSNAdmin, OSNAdminError
from .process import Probe, ProcessStatus, Supervisor, all_of, child_env, http_ok, tcp_open, tls_handshake
from .render.files import write_json

READY_TIMEOUT = 60.0
_log = logging.getLogger(__name__)
STOP_TIMEOUT = 15.0

Item = TypeVar("Item")
Result = TypeVar("Result")


class NetworkError(RuntimeError):
    """The network cannot be handled as asked."""


@dataclass(frozen=True)
class StepTiming:
    name: str
    seconds: float


class Nodes(Protocol):
    """Starts the consortium's nodes, each method returning once they are ready; running nodes are kept."""

    def start_orderers(self) -> None: ...

    def start_peers(self) -> None: ...

    def start_chaincode_servers(self, package_ids: Mapping[str, Mapping[str, str]]) -> None:
        """Start each chaincode's server of each domain: package_ids[chaincode name][domain id]."""

    def start_data_services(self) -> None: ...

    def restart_orderer(self, host_name: str) -> None:
        """Stop the orderer and start it again; returns once it is ready."""


class NativeNodes:
    """The nodes as processes of the Fabric binaries (and of medfabric-chaincode and medfabric.data_service),
    under the supervisor."""

    def __init__(self, topology: Topology, layout: NetworkLayout, binaries: FabricBinaries):
        self._topology, self._layout, self._binaries = topology, layout, binaries
        self._supervisor = Supervisor(layout)

    def start_orderers(self) -> None:
        for orderer in self._topology.orderers:
            env = child_env(render.orderer_env(self._topology, self._layout, orderer))
            self._supervisor.start(orderer.host_name, [str(self._binaries.path("orderer"))], env,
                                   cwd=self._layout.node_data(orderer.host_name))
        for orderer in self._topology.orderers:
            self._supervisor.wait_ready(orderer.host_name, orderer_ready(orderer), READY_TIMEOUT)

    def restart_orderer(self, host_name: str) -> None:
        self._supervisor.stop(host_name)
        self.start_orderers()

    def start_peers(self) -> None:
        for peer in self._topology.peers:
            env = child_env(render.peer_env(self._topology, self._layout, peer))
            self._supervisor.start(peer.host_name, [str(self._binaries.path("peer")), "node", "start"], env,
                                   cwd=self._layout.node_data(peer.host_name))
        for peer in self._topology.peers:
            self._supervisor.wait_ready(peer.host_name, peer_ready(peer), READY_TIMEOUT)

    def start_chaincode_servers(self, package_ids: Mapping[str, Mapping[str, str]]) -> None:
        servers = [(chaincode, domain) for chaincode in self._topology.chaincodes for domain in self._topology.domains]
        for chaincode, domain in servers:
            start_chaincode_server(self._supervisor, self._topology, self._layout, domain,
                                   package_ids[chaincode.name][domain.id], chaincode)
        for chaincode, domain in servers:
            port = self._topology.chaincode_port(chaincode, domain)
            self._supervisor.wait_ready(chaincode_process_name(domain, chaincode), tcp_open(self._topology.host, port),
                                        READY_TIMEOUT)

    def start_data_services(self) -> None:
        for domain in self._topology.domains:
            start_data_service(self._supervisor, self._topology, self._layout, domain)
        for domain in self._topology.domains:
            self._supervisor.wait_ready(data_service_name(domain),
                                        ready_probe(self._topology, self._layout, domain), READY_TIMEOUT)


def orderer_ready(orderer: Orderer) -> Probe:
    """/healthz answers and the channel participation (admin) endpoint accepts connections.

    The orderer serves /healthz from the start, but opens its admin endpoint only once it has
    loaded every channel it holds; joining before that meets a refused connection.
    """
    return all_of(http_ok(f"http://{orderer.operations_address}/healthz"),
                  tcp_open(orderer.host, orderer.admin_port))


def peer_ready(peer: Peer) -> Probe:
    """/healthz answers and the peer's gRPC endpoint completes a TLS handshake.

    The peer serves /healthz from the start, but serves gRPC only once its channels are loaded;
    the peer CLI gives up on a refused or silent endpoint after peer.client.connTimeout.
    """
    return all_of(http_ok(f"http://{peer.operations_address}/healthz"), tls_handshake(peer.host, peer.listen_port))


def up(topology: Topology, layout: NetworkLayout, binaries: FabricBinaries,
       progress: Callable[[str], None] | None = None, with_baseline: bool = True) -> list[StepTiming]:
    """Bring every node up as a native process, deploy the chaincodes on every channel, then start the data
    services; the time each step took.

    `progress` is called with each step's name as it starts. `with_baseline=False` leaves the topology's
    Node baseline chaincode out (where node cannot run it).
    """
    topology = topology if with_baseline else without_baseline(topology)
    defaults = render.FabricDefaults.load(binaries.config_dir)
    return bring_up(topology, layout, binaries, defaults, NativeNodes(topology, layout, binaries),
                    StepClock(progress))


def without_baseline(topology: Topology) -> Topology:
    """The topology with its application chaincode only."""
    return dataclasses.replace(topology, baseline=None)


def bring_up(topology: Topology, layout: NetworkLayout, tools: FabricTools, defaults: render.FabricDefaults,
             nodes: Nodes, step: StepClock) -> list[StepTiming]:
    """Material, channels and chaincode with `tools`, node configuration over Fabric's `defaults`, the nodes
    and data services started by `nodes`; every step timed by `step`."""
    with step("crypto material"):
        crypto_material.generate_crypto(topology, layout)  # adds what is missing, never replaces a key
    with step("configuration"):
        render.render_network(topology, layout, defaults)
    with step("chaincode packages"):
        packages = {chaincode.name: {domain.id: render.chaincode_package(topology, layout, domain, chaincode)
                                     for domain in topology.domains}
                    for chaincode in topology.chaincodes}
        package_ids = {name: {domain_id: package_id for domain_id, (_path, package_id) in by_domain.items()}
                       for name, by_domain in packages.items()}
    with step("genesis blocks"):
        check_tuning(topology, layout)
        created = [channel for channel in topology.channels if create_genesis_block(tools, layout, channel)]
        record_tuning(topology, layout, created)
    bft_channels = [channel for channel in topology.channels if channel.ordering.consensus == "bft"]
    running_before = {channel.name: alive_consenters(channel) for channel in bft_channels}
    with step("start orderers"):
        nodes.start_orderers()
    with step("join orderers"):
        _concurrently(lambda channel: join_orderers(topology, layout, channel), topology.channels)
    with step("start peers"):
        nodes.start_peers()
    with step("join peers"):
        _concurrently(lambda channel: join_peers(tools, topology, layout, channel), topology.channels)
    with step("channels ready"):
        # a restarted Raft orderer refuses transactions until it has elected itself, and a peer refused
        # meanwhile retries its delivery later and later: ready means ordering and in step
        stuck = stuck_in_view_change(wait_until_ready(topology, topology.channels, READY_TIMEOUT) or [])
    if stuck:
        # seen on SmartBFT: a consenter that complained alone about the leader (it lagged, or had just been
        # restarted) stays in a view change of its own, out of the quorum, for good
        with step("restart stuck consenters"):
            for host_name in stuck:
                nodes.restart_orderer(host_name)
            wait_until_ready(topology, topology.channels, READY_TIMEOUT)
    with step("start chaincode servers"):
        nodes.start_chaincode_servers(package_ids)
    with step("install chaincode"):
        def install_all(peer: Peer) -> None:
            admin = PeerAdmin(tools, topology, layout, peer)
            for chaincode in topology.chaincodes:
                install(admin, *packages[chaincode.name][peer.domain_id])

        _concurrently(install_all, [peer for peer in topology.peers if topology.channels_of(peer)])
    with step("approve and commit chaincode"):
        def deploy_all(channel: Channel) -> None:
            for chaincode in topology.chaincodes:
                deploy(tools, topology, layout, channel, package_ids[chaincode.name], chaincode)

        _concurrently(deploy_all, topology.channels)
    with step("start data services"):
        nodes.start_data_services()  # they decide access with the chaincode, so once it is committed
    # last: the channel orders without them meanwhile, and every other node is back before this wait
    for channel in bft_channels:
        consenters = {orderer.host_name for orderer in channel.orderers}
        rejoined = (consenters - running_before[channel.name]) | (consenters & set(stuck))
        if rejoined and rejoined != consenters:  # started again into a channel that went on without them
            with step(f"rejoined consenters in step ({channel.name})"):
                for line in settle_rejoined(channel, rejoined, nodes.restart_orderer):
                    _log.warning(line)
    return step.timings


def process_names(topology: Topology) -> list[str]:
    """The name of every process `up` starts, in start order (they name the logs too)."""
    return ([orderer.host_name for orderer in topology.orderers] + [peer.host_name for peer in topology.peers]
            + [chaincode_process_name(domain, chaincode) for chaincode in topology.chaincodes
               for domain in topology.domains]
            + [data_service_name(domain) for domain in topology.domains])


def ordering_settings(topology: Topology) -> dict[str, Any]:
    """Per channel, the ordering settings its genesis block fixes, as the tuning record holds them (JSON)."""
    return json.loads(json.dumps({channel.name: dataclasses.asdict(channel.ordering)
                                  for channel in topology.channels}))


def check_tuning(topology: Topology, layout: NetworkLayout) -> None:
    """NetworkError if channels that exist were created with another profile or other ordering settings:
    a genesis block fixes them, so the consortium would not run what was asked."""
    record = read_tuning_record(layout)
    existing = [channel.name for channel in topology.channels if layout.genesis_block(channel.name).exists()]
    if record is None or not existing:
        return
    recorded = record.get("channels") or {}
    wanted = ordering_settings(topology)
    changed = [name for name in existing if name in recorded and recorded[name] != wanted[name]]
    if record.get("profile") != topology.tuning.profile or changed:
        if record.get("profile") == topology.tuning.profile:
            raise NetworkError(
                f"channel {changed[0]} in {layout.root} was created with other ordering settings than profile "
                f"'{topology.tuning.profile}' gives now (the topology changed since); ordering settings are fixed "
                "when a channel is created: `medfabric network clean` (make clean) first")
        what = f"channel {changed[0]}'s ordering settings differ" if changed else "the profile differs"
        raise NetworkError(
            f"the channels in {layout.root} were created with profile '{record.get('profile')}' and this is "
            f"profile '{topology.tuning.profile}' ({what}); ordering settings are fixed when a channel is "
            f"created: use --profile {record.get('profile')} (make up PROFILE={record.get('profile')}), or "
            f"`medfabric network clean` (make clean) first")


def record_tuning(topology: Topology, layout: NetworkLayout, created: list[Channel]) -> None:
    """Remember the ordering settings of the channels just created (and the profile they came with)."""
    if not created:
        return
    record = read_tuning_record(layout) or {}
    channels = {**(record.get("channels") or {}),
                **{name: facts for name, facts in ordering_settings(topology).items()
                   if name in {channel.name for channel in created}}}
    write_json(layout.tuning_record, {"profile": topology.tuning.profile, "channels": channels})


def down(layout: NetworkLayout, timeout: float = STOP_TIMEOUT) -> list[str]:
    """Stop every process we started, the last started first; their names. Data is kept."""
    return Supervisor(layout).stop_all(timeout)


def clean(layout: NetworkLayout) -> None:
    """down, then delete everything generated (crypto, configuration, ledgers, logs)."""
    check_deletable(layout)
    down(layout)
    if layout.root.exists():
        shutil.rmtree(layout.root.resolve())


# What a build folder holds; `clean` deletes nothing that holds anything else.
BUILD_FOLDER_ENTRIES = frozenset({"crypto", "config", "channel-artifacts", "chaincode", "data", "logs", "run", FL_DATA})


def check_deletable(layout: NetworkLayout) -> None:
    """NetworkError unless the layout's root is a build folder that may be deleted.

    Inside the project only build/ and below qualify; anywhere else the folder
    must hold nothing but what `up` generates, so a mistyped MEDFABRIC_BUILD_DIR
    can never take a source tree or a home folder with it.
    """
    root = layout.root.resolve()
    refusal = f"refusing to delete {root}: it is not a build folder"
    if root in (Path.home(), PROJECT_ROOT, *PROJECT_ROOT.parents):
        raise NetworkError(refusal)
    if root.is_relative_to(PROJECT_ROOT) and not root.is_relative_to(PROJECT_ROOT / "build"):
        raise NetworkError(refusal)
    if root.is_dir():
        foreign = sorted(
            entry.name for entry in root.iterdir()
            if entry.name not in BUILD_FOLDER_ENTRIES
            and not (entry.name.startswith("connection-") and entry.name.endswith(".json"))
        )
        if foreign:
            raise NetworkError(f"{refusal} (it holds {', '.join(foreign[:3])})")


def status(topology: Topology, layout: NetworkLayout, tools: FabricTools | None = None,
           processes: list[ProcessStatus] | None = None) -> dict[str, Any]:
    """Every process, and per channel each orderer's status, each peer's height and the committed chaincode.

    `processes` are the supervisor's unless given (docker mode gives the containers). Ledger facts come
    from running nodes only; peer facts need `tools` (the peer CLI).
    """
    if processes is None:
        processes = Supervisor(layout).status()
    running = {process.name for process in processes if process.alive}
    channels = _concurrently(lambda channel: _channel_status(topology, layout, tools, channel, running),
                             topology.channels)
    return {
        "processes": [asdict(process) for process in processes],
        "channels": {channel.name: facts for channel, facts in zip(topology.channels, channels, strict=True)},
    }


def _channel_status(topology: Topology, layout: NetworkLayout, tools: FabricTools | None,
                    channel: Channel, running: set[str]) -> dict[str, Any]:
    def unavailable(host_name: str, needs_peer_cli: bool = False) -> str | None:
        if host_name not in running:
            return "not running"
        if needs_peer_cli and tools is None:
            return "no Fabric binaries to ask with"
        return None

    orderers = {
        orderer.host_name: _ask(unavailable(orderer.host_name), _orderer_facts, topology, layout, orderer, channel.name)
        for orderer in channel.orderers
    }
    peers: dict[str, Any] = {}
    running_member: PeerAdmin | None = None  # to ask for the committed chaincode
    for peer in channel.peers:
        missing = unavailable(peer.host_name, needs_peer_cli=True)
        admin = PeerAdmin(tools, topology, layout, peer) if missing is None else None
        peers[peer.host_name] = _ask(missing, _peer_facts, admin, channel.name)
        running_member = running_member or admin
    chaincode = _ask(None if running_member else "no member peer to ask", committed_sequences, running_member,
                     channel.name)
    return {"orderers": orderers, "peers": peers, "chaincode": chaincode}


def _orderer_facts(topology: Topology, layout: NetworkLayout, orderer: Orderer, channel: str) -> dict[str, Any]:
    info = OSNAdmin.for_orderer(topology, layout, orderer).info(channel)
    return {"status": info.status, "consensus_relation": info.consensus_relation, "height": info.height}


def _peer_facts(admin: PeerAdmin, channel: str) -> dict[str, Any]:
    return {"height": admin.height(channel)}


def _ask(unavailable: str | None, query: Callable[..., Any], *args: Any) -> Any:
    """query(*args), or {"error": why there is no answer}."""
    if unavailable:
        return {"error": unavailable}
    try:
        return query(*args)
    except (FabricCommandError, OSNAdminError, OSError) as exc:
        return {"error": str(exc).splitlines()[0]}


def _concurrently(action: Callable[[Item], Result], items: Iterable[Item]) -> list[Result]:
    """`action` on every item in threads; the results in order, or the first failure once all are done."""
    with ThreadPoolExecutor(max_workers=8) as pool:
        futures = [pool.submit(action, item) for item in items]
    return [future.result() for future in futures]


class StepClock:
    """Times the steps of `up` and announces each one."""

    def __init__(self, progress: Callable[[str], None] | None):
        self.timings: list[StepTiming] = []
        self._progress = progress

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        if self._progress:
            self._progress(name)
        started = time.perf_counter()
        yield
        self.timings.append(StepTiming(name, round(time.perf_counter() - started, 3)))
