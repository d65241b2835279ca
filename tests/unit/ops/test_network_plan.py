"""What `up` asks of Fabric, in what order, and what it skips when the work is done.

Fabric is replaced by FakeFabric: the peer CLI and configtxgen (as
FabricBinaries), the orderers' channel participation API (as OSNAdmin) and
the process supervisor, all sharing one small model of the consortium's
state. Rendering and crypto generation are faked too; the environments and
chaincode packages are the real ones.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
import itertools
import json
import sys
import tarfile
from collections import defaultdict
from pathlib import Path

import pytest

from medfabric.consortium.layout import NetworkLayout
from medfabric.consortium.topology import load_topology
from medfabric_ops import channel as channel_module
from medfabric_ops import crypto_material, data_services, lifecycle, network, render
from medfabric_ops.binaries import FabricCommandError
from medfabric_ops.data_services import DataServiceError, start_data_service
from medfabric_ops.lifecycle import DeployError
from medfabric_ops.osnadmin import ChannelInfo, ChannelNotFound
from medfabric_ops.process import ProcessStatus

STEPS = [
    "crypto material", "configuration", "chaincode packages", "genesis blocks", "start orderers", "join orderers",
    "start peers", "join peers", "channels ready", "start chaincode servers", "install chaincode", "approve and commit chaincode",
    "start data services",
]
UNAVAILABLE = "Error: failed to send transaction: got unexpected status: SERVICE_UNAVAILABLE -- no Raft leader"


def flag(args: list[str], name: str) -> str:
    return args[args.index(name) + 1]


def flags(args: list[str], name: str) -> list[str]:
    return [args[i + 1] for i, arg in enumerate(args) if arg == name]


class FakeFabric:
    """The consortium's state, changed only by the commands `up` issues; `events` lists those commands."""

    config_dir = Path("/fabric/config")  # the sampleconfig, read by the patched FabricDefaults.load

    def __init__(self, topology):
        self.topology = topology
        self.events: list[tuple] = []
        self.running: set[str] = set()
        self.orderer_channels: dict[str, set[str]] = defaultdict(set)
        self.peer_channels: dict[str, set[str]] = defaultdict(set)
        self.installed: dict[str, set[str]] = defaultdict(set)
        self.approved: dict[tuple[str, str], set[str]] = defaultdict(set)  # (channel, chaincode) -> MSP ids
        self.committed: dict[str, dict[str, int]] = defaultdict(dict)  # channel -> chaincode -> sequence
        self.refusals_left = 0  # SERVICE_UNAVAILABLE answers to give before accepting transactions
        self.failing_command: str | None = None
        self.installs_as: str | None = None  # package id Fabric computes, if not the expected one
        self.host_of = {peer.address: peer.host_name for peer in topology.peers}

    def kinds(self) -> list[str]:
        return [event[0] for event in self.events]

    # -- FabricBinaries ----------------------------------------------------
    def path(self, command: str) -> Path:
        return Path("/fabric/bin") / command

    def run(self, command, *args, env, timeout=120.0, target=""):
        args = [str(arg) for arg in args]
        if command == "configtxgen":
            channel = flag(args, "-channelID")
            Path(flag(args, "-outputBlock")).write_text(channel)
            self.events.append(("configtxgen", channel, flag(args, "-profile"), flag(args, "-configPath")))
            return ""
        assert command == "peer"
        host, msp = self.host_of[env["CORE_PEER_ADDRESS"]], env["CORE_PEER_LOCALMSPID"]
        words = " ".join(arg for arg in args if not arg.startswith("-"))
        if self.failing_command and words.startswith(self.failing_command):
            raise FabricCommandError(f"peer {self.failing_command}", "exit 1", "Error: boom", host)
        if args[:2] == ["channel", "list"]:
            return "Channels peers has joined: \n" + "".join(f"{c}\n" for c in sorted(self.peer_channels[host]))
        if args[:2] == ["channel", "join"]:
            channel = Path(flag(args, "-b")).read_text()
            self.peer_channels[host].add(channel)
            self.events.append(("peer join", host, channel))
            return ""
        if args[:2] == ["channel", "getinfo"]:
            height = 1 if flag(args, "-c") in self.peer_channels[host] else 0
            return f'Blockchain info: {{"height":{height},"currentBlockHash":"abc="}}\n' if height else \
                'Blockchain info: {"currentBlockHash":null}\n'
        lifecycle = args[2]
        if lifecycle == "queryinstalled":
            ids = sorted(self.installed[host])
            return json.dumps({"installed_chaincodes": [{"package_id": i, "label": i.split(":")[0]} for i in ids]}
                              if ids else {})
        if lifecycle == "install":
            package = Path(args[3])
            self.installed[host].add(self.installs_as or fabric_package_id(package.read_bytes()))
            self.events.append(("install", host, package))
            return ""
        channel = flag(args, "--channelID")
        if lifecycle == "querycommitted":
            if not self.committed.get(channel):
                return "{}"
            return json.dumps({"chaincode_definitions": [
                {"name": name, "sequence": sequence} for name, sequence in self.committed[channel].items()]})
        name = flag(args, "--name")
        if lifecycle == "checkcommitreadiness":
            members = [d.msp_id for d in self.topology.channel(channel).domains]
            return json.dumps({"approvals": {m: m in self.approved[channel, name] for m in members}})
        if self.refusals_left:
            self.refusals_left -= 1
            raise FabricCommandError(f"peer lifecycle chaincode {lifecycle}", "exit 1", UNAVAILABLE, host)
        if lifecycle == "approveformyorg":
            self.approved[channel, name].add(msp)
            self.events.append(("approve", channel, msp, args))
            return ""
        if lifecycle == "commit":
            assert self.approved[channel, name] == {d.msp_id for d in self.topology.channel(channel).domains}
            self.committed[channel][name] = int(flag(args, "--sequence"))
            self.events.append(("commit", channel, msp, args))
            return ""
        raise AssertionError(f"unexpected command: peer {' '.join(args)}")

    # -- Supervisor --------------------------------------------------------
    def supervisor(self, layout):
        return _FakeSupervisor(self)

    # -- OSNAdmin ----------------------------------------------------------
    def osnadmin_class(self):
        fabric = self

        class FakeOSNAdmin:
            def __init__(self, host_name):
                self.host_name = host_name

            @classmethod
            def for_orderer(cls, topology, layout, orderer):
                return cls(orderer.host_name)

            def info(self, channel):
                if channel not in fabric.orderer_channels[self.host_name]:
                    raise ChannelNotFound("channel does not exist", 404)
                return ChannelInfo(channel, "active", "consenter", 1)

            def join(self, channel, block):
                assert block == channel.encode()
                fabric.orderer_channels[self.host_name].add(channel)
                fabric.events.append(("orderer join", self.host_name, channel))
                return self.info(channel)

        return FakeOSNAdmin


def fabric_package_id(package: bytes) -> str:
    """The id a peer gives a package: the label in its metadata.json, a colon, the SHA-256 of its bytes."""
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(package))) as tar:
        label = json.load(tar.extractfile("metadata.json"))["label"]
    return f"{label}:{hashlib.sha256(package).hexdigest()}"


def chaincode_servers(topology) -> list[str]:
    """The chaincode servers `up` starts, in order: the application's of every domain, then the baseline's."""
    return [*(f"chaincode.{d.org_domain}" for d in topology.domains),
            *(f"chaincode-medfabric-node.{d.org_domain}" for d in topology.domains if topology.baseline)]


class _FakeSupervisor:
    def __init__(self, fabric: FakeFabric):
        self._fabric = fabric

    def start(self, name, argv, env, cwd):
        if name not in self._fabric.running:
            self._fabric.running.add(name)
            self._fabric.events.append(("start", name, list(argv), dict(env), cwd))
        return 4242

    def stop(self, name, timeout=10.0):
        self._fabric.running.discard(name)
        self._fabric.events.append(("stop", name))
        return True

    def wait_ready(self, name, probe, timeout):
        assert name in self._fabric.running, f"waited for {name}, which was never started"
        self._fabric.events.append(("ready", name, probe))

    def status(self):
        return [ProcessStatus(name, 4242, True, 2**20, 1.0) for name in sorted(self._fabric.running)]


@pytest.fixture
def fabric(topology, monkeypatch):
    fabric = FakeFabric(topology)
    monkeypatch.setattr(crypto_material, "generate_crypto", lambda *args: fabric.events.append(("crypto",)))
    monkeypatch.setattr(render, "render_network", lambda *args: fabric.events.append(("render",)))
    monkeypatch.setattr(render.FabricDefaults, "load", classmethod(lambda cls, path: cls({}, {}, path)))
    monkeypatch.setattr(network, "wait_until_ready", lambda *args: fabric.events.append(("channels ready",)))
    monkeypatch.setattr(network, "Supervisor", fabric.supervisor)
    monkeypatch.setattr(channel_module, "OSNAdmin", fabric.osnadmin_class())
    monkeypatch.setattr(network, "OSNAdmin", fabric.osnadmin_class())
    # What the data services' readiness is probed with (over TLS with the crypto this fake never writes).
    monkeypatch.setattr(network, "ready_probe",
                        lambda topology, _layout, domain: f"GET {data_services.service_url(topology, domain)}/identity")
    return fabric


def run_up(topology, layout, fabric):
    announced = []
    timings = network.up(topology, layout, fabric, progress=announced.append)
    return announced, timings


def positions(fabric, kind, names=None):
    return [i for i, event in enumerate(fabric.events) if event[0] == kind and (names is None or event[1] in names)]


def test_up_takes_the_steps_in_order_and_times_each(topology, layout, fabric):
    announced, timings = run_up(topology, layout, fabric)
    assert announced == STEPS
    assert [t.name for t in timings] == STEPS and all(t.seconds >= 0 for t in timings)

    orderers = {o.host_name for o in topology.orderers}
    peers = {p.host_name for p in topology.peers}
    servers = set(chaincode_servers(topology))
    data_services = {f"data-service.{d.org_domain}" for d in topology.domains}
    order = [
        positions(fabric, "crypto"), positions(fabric, "render"), positions(fabric, "configtxgen"),
        positions(fabric, "start", orderers), positions(fabric, "ready", orderers), positions(fabric, "orderer join"),
        positions(fabric, "start", peers), positions(fabric, "ready", peers), positions(fabric, "peer join"),
        positions(fabric, "start", servers), positions(fabric, "ready", servers),
        positions(fabric, "install"), positions(fabric, "approve") + positions(fabric, "commit"),
        positions(fabric, "start", data_services), positions(fabric, "ready", data_services),
    ]
    assert all(order), "a step issued nothing"
    for earlier, later in itertools.pairwise(order):
        assert max(earlier) < min(later)
    for channel in topology.channels:  # channels are deployed concurrently, each in lifecycle order
        for chaincode in topology.chaincodes:
            approvals = [i for i, e in enumerate(fabric.events)
                         if e[0] == "approve" and e[1] == channel.name and flag(e[3], "--name") == chaincode.name]
            [commit] = [i for i, e in enumerate(fabric.events)
                        if e[0] == "commit" and e[1] == channel.name and flag(e[3], "--name") == chaincode.name]
            assert max(approvals) < commit


def test_every_channel_gets_its_genesis_block_and_its_own_members(topology, layout, fabric):
    run_up(topology, layout, fabric)
    assert sorted(e[1:] for e in fabric.events if e[0] == "configtxgen") == sorted(
        (c.name, c.name, str(layout.configtx_dir)) for c in topology.channels)
    for channel in topology.channels:
        assert {e[1] for e in fabric.events if e[0] == "orderer join" and e[2] == channel.name} == {
            o.host_name for o in channel.orderers}
        assert {e[1] for e in fabric.events if e[0] == "peer join" and e[2] == channel.name} == {
            p.host_name for p in channel.peers}
    public = topology.public_channel
    assert {e[1] for e in fabric.events if e[0] == "peer join" and e[2] == public.name} == {
        d.duty_peer.host_name for d in topology.domains}


def test_nodes_start_with_their_rendered_environment(topology, layout, fabric):
    run_up(topology, layout, fabric)
    starts = {e[1]: (e[2], e[3]) for e in fabric.events if e[0] == "start"}
    peer = topology.peers[0]
    argv, env = starts[peer.host_name]
    assert argv == ["/fabric/bin/peer", "node", "start"]
    assert {k: env[k] for k in render.peer_env(topology, layout, peer)} == render.peer_env(topology, layout, peer)
    orderer = topology.orderers[0]
    argv, env = starts[orderer.host_name]
    assert argv == ["/fabric/bin/orderer"] and env["FABRIC_CFG_PATH"] == str(layout.node_config(orderer.host_name))


def test_each_domain_runs_a_chaincode_server_under_its_package_id(topology, layout, fabric):
    run_up(topology, layout, fabric)
    starts = {e[1]: (e[2], e[3]) for e in fabric.events if e[0] == "start"}
    for domain in topology.domains:
        argv, env = starts[f"chaincode.{domain.org_domain}"]
        assert argv[0].endswith("medfabric-chaincode")
        assert env["CHAINCODE_SERVER_ADDRESS"] == f"127.0.0.1:{domain.chaincode_port}"
        assert env["CHAINCODE_ID"] == render.chaincode_package(topology, layout, domain)[1]
        assert env["CHAINCODE_TLS_DISABLED"] == "true"
        assert json.loads(env["MEDFABRIC_DOMAIN_MSPS"]) == {d.id: d.msp_id for d in topology.domains}


def test_each_domain_runs_its_data_service_on_the_same_layout_and_topology(topology, layout, fabric, monkeypatch):
    run_up(topology, layout, fabric)
    starts = {e[1]: e[2:] for e in fabric.events if e[0] == "start"}
    ready = {e[1]: e[2] for e in fabric.events if e[0] == "ready"}
    for domain in topology.domains:
        name = f"data-service.{domain.org_domain}"
        argv, env, cwd = starts[name]
        assert argv == [sys.executable, "-m", "medfabric.data_service", "--domain", domain.id]
        assert env["MEDFABRIC_BUILD_DIR"] == str(layout.root)
        assert env["MEDFABRIC_TOPOLOGY"] == str(topology.source)
        assert cwd == layout.node_data(name)
        assert ready[name] == f"GET https://127.0.0.1:{domain.data_service_port}/identity"


def test_a_data_service_gets_absolute_paths_as_it_runs_in_its_own_folder(topology, tmp_path, fabric, monkeypatch):
    monkeypatch.chdir(tmp_path)
    domain = topology.domains[1]
    relative = dataclasses.replace(topology, source=Path("topologies/consortium.yaml"))
    start_data_service(fabric.supervisor(None), relative, NetworkLayout(Path("build")), domain)
    [(_kind, name, _argv, env, cwd)] = fabric.events
    assert name == f"data-service.{domain.org_domain}"
    assert env["MEDFABRIC_BUILD_DIR"] == str(tmp_path / "build")
    assert env["MEDFABRIC_TOPOLOGY"] == str(tmp_path / "topologies" / "consortium.yaml")
    assert cwd == Path("build") / "data" / name


def test_a_topology_not_read_from_a_file_cannot_be_given_to_the_data_services(topology, layout, fabric):
    with pytest.raises(DataServiceError, match="not loaded from one"):
        run_up(dataclasses.replace(topology, source=None), layout, fabric)
    assert not [e for e in fabric.events if e[0] == "start" and e[1].startswith("data-service.")]


def test_the_chaincodes_are_installed_approved_and_committed_as_the_lifecycle_requires(topology, layout, fabric):
    run_up(topology, layout, fabric)
    installs = [e for e in fabric.events if e[0] == "install"]
    assert sorted(e[1] for e in installs) == sorted(p.host_name for p in topology.peers for _ in topology.chaincodes)
    for _kind, host, package in installs:
        domain = next(d for d in topology.domains if host.endswith(d.org_domain))
        assert package in {layout.chaincode_package(domain), layout.chaincode_package(domain, "medfabric-node")}

    for chaincode in topology.chaincodes:
        for channel in topology.channels:
            approvals = [e for e in fabric.events
                         if e[0] == "approve" and e[1] == channel.name and flag(e[3], "--name") == chaincode.name]
            assert sorted(e[2] for e in approvals) == sorted(d.msp_id for d in channel.domains)
            orderer = channel.orderers[0]
            for _kind, _channel, msp, args in approvals:
                domain = next(d for d in channel.domains if d.msp_id == msp)
                assert flag(args, "--package-id") == render.chaincode_package(topology, layout, domain, chaincode)[1]
                assert (flag(args, "--version"), flag(args, "--sequence")) == (
                    chaincode.version, str(chaincode.sequence))
                assert flag(args, "--orderer") == orderer.address
                assert flag(args, "--ordererTLSHostnameOverride") == orderer.host_name
                assert "--tls" in args
                assert flag(args, "--cafile") == str(layout.orderer_tls_ca(topology.orderer_domain(orderer)))
            [(_kind, _channel, _msp, args)] = [
                e for e in fabric.events
                if e[0] == "commit" and e[1] == channel.name and flag(e[3], "--name") == chaincode.name]
            endorsers = {p.address: p for p in channel.peers}
            addresses = flags(args, "--peerAddresses")
            assert sorted(endorsers[a].domain_id for a in addresses) == sorted(d.id for d in channel.domains)
            assert flags(args, "--tlsRootCertFiles") == [
                str(layout.peer_tls_ca(topology.domain(endorsers[a].domain_id))) for a in addresses]
    assert dict(fabric.committed) == {c.name: {"medfabric": 1, "medfabric-node": 1} for c in topology.channels}


def test_each_domain_runs_a_node_baseline_server_under_its_package_id(topology, layout, fabric):
    run_up(topology, layout, fabric)
    starts = {e[1]: (e[2], e[3], e[4]) for e in fabric.events if e[0] == "start"}
    for index, domain in enumerate(topology.domains):
        argv, env, cwd = starts[f"chaincode-medfabric-node.{domain.org_domain}"]
        package_id = render.chaincode_package(topology, layout, domain, topology.baseline)[1]
        assert package_id.startswith("medfabric-node_0.1:")
        assert argv == lifecycle.node_chaincode_command(lifecycle.BASELINE_DIR, f"127.0.0.1:{7850 + index}",
                                                        package_id)
        assert argv[:3] == ["node", str(lifecycle.BASELINE_DIR / "node_modules/.bin/fabric-chaincode-node"),
                            "server"]
        assert flag(argv, "--chaincode-address") == f"127.0.0.1:{7850 + index}"
        assert flag(argv, "--chaincode-id") == package_id
        assert flag(argv, "--module-path") == str(lifecycle.BASELINE_DIR)
        assert not any(key.startswith("CORE_") for key in env)
        assert cwd == layout.node_data(f"chaincode-medfabric-node.{domain.org_domain}")
    ready = [e[1] for e in fabric.events if e[0] == "ready"]
    assert set(chaincode_servers(topology)) <= set(ready)


def test_up_without_the_baseline_deploys_the_application_chaincode_only(topology, layout, fabric):
    network.up(topology, layout, fabric, with_baseline=False)
    started = [e[1] for e in fabric.events if e[0] == "start"]
    assert not any("medfabric-node" in name for name in started)
    assert not any("medfabric-node" in str(e[2]) for e in fabric.events if e[0] == "install")
    assert dict(fabric.committed) == {c.name: {"medfabric": 1} for c in topology.channels}
    # and a topology without the baseline section does the same
    fabric.events.clear()
    network.up(network.without_baseline(topology), layout, fabric)
    assert {"start", "install", "approve", "commit"}.isdisjoint(fabric.kinds())


def test_the_baseline_can_be_added_to_a_running_consortium(topology, layout, fabric):
    network.up(topology, layout, fabric, with_baseline=False)
    fabric.events.clear()
    run_up(topology, layout, fabric)
    assert [e[1] for e in fabric.events if e[0] == "start"] == [
        f"chaincode-medfabric-node.{d.org_domain}" for d in topology.domains]
    assert {flag(e[3], "--name") for e in fabric.events if e[0] in ("approve", "commit")} == {"medfabric-node"}
    assert "configtxgen" not in fabric.kinds()


def test_a_consenter_stuck_in_a_view_change_of_its_own_is_restarted(topology, layout, fabric, monkeypatch):
    stuck = topology.public_channel.orderers[0].host_name
    answers = [[f"{stuck}: in a view change to view 2 of its own on public (the others follow leader 2); the "
                "channel orders without it",
                f"{topology.public_channel.orderers[1].host_name}: knows no leader on public, the others 2; ..."],
               []]
    monkeypatch.setattr(network, "wait_until_ready", lambda *args: answers.pop(0))

    announced, _timings = run_up(topology, layout, fabric)

    assert "restart stuck consenters" in announced and answers == []
    restarted = [event for event in fabric.events if event[0] in ("stop", "start") and event[1] == stuck]
    assert [event[0] for event in restarted] == ["start", "stop", "start"]  # started by up, then restarted once
    assert not [e for e in fabric.events if e[0] == "stop" and e[1] != stuck]  # the one merely syncing is kept


def test_up_twice_changes_nothing(topology, layout, fabric):
    run_up(topology, layout, fabric)
    fabric.events.clear()
    run_up(topology, layout, fabric)
    changes = {"configtxgen", "start", "orderer join", "peer join", "install", "approve", "commit"}
    assert changes.isdisjoint(fabric.kinds())
    assert [e[1] for e in fabric.events if e[0] == "ready"][-len(topology.domains):] == [
        f"data-service.{d.org_domain}" for d in topology.domains]  # kept, and found ready again


def test_up_after_down_restarts_the_processes_and_nothing_else(topology, layout, fabric):
    run_up(topology, layout, fabric)
    fabric.running.clear()  # down: processes gone, ledgers and blocks kept
    fabric.events.clear()
    run_up(topology, layout, fabric)
    assert [e[1] for e in fabric.events if e[0] == "start"] == network.process_names(topology)
    assert {"configtxgen", "orderer join", "peer join", "install", "approve", "commit"}.isdisjoint(fabric.kinds())


def test_a_half_done_deployment_is_completed(topology, layout, fabric):
    public = topology.public_channel
    first = public.domains[0]
    fabric.approved[public.name, "medfabric"].add(first.msp_id)
    fabric.installed[first.duty_peer.host_name].add(render.chaincode_package(topology, layout, first)[1])
    run_up(topology, layout, fabric)
    approvals = [e for e in fabric.events if e[0] == "approve" and e[1] == public.name]
    assert sorted(e[2] for e in approvals if flag(e[3], "--name") == "medfabric") == sorted(
        d.msp_id for d in public.domains[1:])
    assert sorted(e[2] for e in approvals if flag(e[3], "--name") == "medfabric-node") == sorted(
        d.msp_id for d in public.domains)
    installed = [e[2] for e in fabric.events if e[0] == "install" and e[1] == first.duty_peer.host_name]
    assert installed == [layout.chaincode_package(first, "medfabric-node")]
    assert fabric.committed[public.name] == {"medfabric": 1, "medfabric-node": 1}


def test_transactions_wait_while_the_ordering_service_has_no_leader(topology, layout, fabric):
    fabric.refusals_left = 2
    run_up(topology, layout, fabric)
    assert fabric.refusals_left == 0
    assert set(fabric.committed) == {c.name for c in topology.channels}


def test_other_failures_are_not_retried(topology, layout, fabric):
    fabric.failing_command = "lifecycle chaincode approveformyorg"
    with pytest.raises(FabricCommandError, match=r"approveformyorg.*Error: boom"):
        run_up(topology, layout, fabric)
    assert "approve" not in fabric.kinds()


def test_an_installed_package_under_an_unexpected_id_stops_the_deployment(topology, layout, fabric):
    fabric.installs_as = "medfabric_0.1:somethingelse"
    with pytest.raises(DeployError, match=r"under another id than the expected medfabric_0\.1:"):
        run_up(topology, layout, fabric)
    assert "approve" not in fabric.kinds()


def test_status_reports_processes_orderers_peers_and_chaincode(topology, layout, fabric):
    run_up(topology, layout, fabric)
    report = network.status(topology, layout, fabric)
    assert len(report["processes"]) == len(network.process_names(topology))
    assert all(p["alive"] for p in report["processes"])
    public = report["channels"][topology.public_channel.name]
    assert public["orderers"][topology.public_channel.orderers[0].host_name] == {
        "status": "active", "consensus_relation": "consenter", "height": 1}
    assert public["peers"] == {d.duty_peer.host_name: {"height": 1} for d in topology.domains}
    assert public["chaincode"] == {c.name: c.sequence for c in topology.chaincodes}


def test_status_without_binaries_or_processes_says_why_facts_are_missing(topology, layout, fabric):
    report = network.status(topology, layout, None)
    local = report["channels"][topology.domains[0].local_channel]
    assert report["processes"] == []
    assert set(map(json.dumps, local["orderers"].values())) == {'{"error": "not running"}'}
    assert local["chaincode"] == {"error": "no member peer to ask"}
    fabric.running.update(p.host_name for p in topology.peers)
    local = network.status(topology, layout, None)["channels"][topology.domains[0].local_channel]
    assert set(map(json.dumps, local["peers"].values())) == {'{"error": "no Fabric binaries to ask with"}'}


def test_process_names_are_orderers_then_peers_then_chaincode_servers_then_data_services(topology):
    names = network.process_names(topology)
    assert names == [
        *(o.host_name for o in topology.orderers), *(p.host_name for p in topology.peers),
        *(f"chaincode.{d.org_domain}" for d in topology.domains),
        *(f"chaincode-medfabric-node.{d.org_domain}" for d in topology.domains),
        *(f"data-service.{d.org_domain}" for d in topology.domains),
    ]
    assert not any("medfabric-node" in name for name in network.process_names(network.without_baseline(topology)))


def test_clean_deletes_the_build_folder(layout):
    (layout.logs).mkdir(parents=True)
    (layout.log_file("node")).write_text("x")
    network.clean(layout)
    assert not layout.root.exists()


def test_clean_refuses_to_delete_the_project_or_a_folder_above_it(tmp_path, monkeypatch):
    # Never aimed at the real project: were the guard broken, only this temporary copy would go.
    project = tmp_path / "project"
    build = project / "build" / "network"
    build.mkdir(parents=True)
    (project / "pyproject.toml").write_text("")
    monkeypatch.setattr(network, "PROJECT_ROOT", project)
    for root in (project, tmp_path):
        with pytest.raises(network.NetworkError, match="refusing to delete"):
            network.clean(NetworkLayout(root))
    assert (project / "pyproject.toml").exists()
    network.clean(NetworkLayout(build))
    assert not build.exists() and (project / "pyproject.toml").exists()


def test_clean_refuses_a_project_subfolder_or_a_folder_with_foreign_files(tmp_path, monkeypatch):
    # A temporary stand-in project: were the guard broken, only these files would go.
    project = tmp_path / "project"
    sources = project / "ops"
    sources.mkdir(parents=True)
    (sources / "module.py").write_text("")
    monkeypatch.setattr(network, "PROJECT_ROOT", project)
    with pytest.raises(network.NetworkError, match="not a build folder"):
        network.clean(NetworkLayout(sources))
    elsewhere = tmp_path / "documents"
    (elsewhere / "logs").mkdir(parents=True)
    (elsewhere / "thesis.tex").write_text("")
    with pytest.raises(network.NetworkError, match="it holds thesis.tex"):
        network.clean(NetworkLayout(elsewhere))
    assert (sources / "module.py").exists() and (elsewhere / "thesis.tex").exists()
    (elsewhere / "thesis.tex").unlink()
    (elsewhere / "connection-hospital-a.json").write_text("{}")
    NetworkLayout(elsewhere).fl_data("hospital-a").mkdir(parents=True)  # generated as well: FL training shares
    network.clean(NetworkLayout(elsewhere))
    assert not elsewhere.exists()


def test_the_channels_remember_the_profile_and_ordering_settings_they_were_created_with(topology, layout, fabric):
    fast = load_topology(profile="low-latency")
    run_up(fast, layout, fabric)
    record = json.loads(layout.tuning_record.read_text())
    assert record["profile"] == "low-latency"
    assert record["channels"][topology.public_channel.name] == {
        "consensus": "bft", "batch_timeout_ms": 20, "max_message_count": 10,
        "smartbft": {"request_pool_size": 100000, "incoming_message_buffer_size": 200,
                     "leader_heartbeat_count": 10,
                     "timeouts_ms": [["request_forward_timeout", 1000], ["request_complain_timeout", 4000],
                                     ["request_auto_remove_timeout", 180000], ["view_change_resend_interval", 2000],
                                     ["view_change_timeout", 10000], ["leader_heartbeat_timeout", 10000],
                                     ["collect_timeout", 1000]]}}
    assert record["channels"]["hospital-a-local"]["smartbft"] is None
    assert network.read_tuning_record(layout) == record
    fabric.events.clear()
    run_up(fast, layout, fabric)  # the same profile again: nothing to do
    assert "start" not in fabric.kinds()


def test_up_with_another_profile_on_existing_channels_is_refused_before_anything_starts(topology, layout, fabric):
    run_up(topology, layout, fabric)
    fabric.running.clear()  # down
    fabric.events.clear()
    with pytest.raises(network.NetworkError, match=r"created with profile 'default' and this is profile "
                                                   r"'high-throughput' \(channel hospital-a-local's ordering settings differ\); .*"
                                                   r"--profile default .*clean"):
        run_up(load_topology(profile="high-throughput"), layout, fabric)
    assert "start" not in fabric.kinds()


def test_edited_ordering_settings_on_existing_channels_are_refused(topology, layout, fabric):
    run_up(topology, layout, fabric)
    local = dataclasses.replace(topology.channels[0].ordering, batch_timeout_ms=5)
    edited = dataclasses.replace(topology, channels=(dataclasses.replace(topology.channels[0], ordering=local),
                                                     *topology.channels[1:]))
    with pytest.raises(network.NetworkError, match=r"channel hospital-a-local in .* was created with other ordering "
                                                   r"settings than profile 'default' gives now .*make clean"):
        run_up(edited, layout, fabric)


def test_channels_without_a_record_are_taken_as_they_are(topology, layout, fabric):
    run_up(topology, layout, fabric)
    layout.tuning_record.unlink()  # made before profiles were recorded
    run_up(load_topology(profile="low-latency"), layout, fabric)
    assert not layout.tuning_record.exists()  # no channel was created: nothing known to record


def test_a_profile_that_changes_no_ordering_setting_is_still_refused_on_existing_channels(topology, layout, fabric):
    run_up(topology, layout, fabric)
    renamed = dataclasses.replace(topology, tuning=dataclasses.replace(topology.tuning, profile="same-batches"))
    with pytest.raises(network.NetworkError, match=r"profile 'same-batches' \(the profile differs\)"):
        run_up(renamed, layout, fabric)
