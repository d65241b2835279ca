"""Rendered configuration: channel profiles, core.yaml, orderer.yaml, the nodes'
environments and the connection profiles, checked against the topology, the
crypto material and Fabric's own configuration keys."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml
from cryptography import x509
from cryptography.x509.oid import NameOID

from medfabric.consortium.layout import NetworkLayout
from medfabric.consortium.topology import DEFAULT_TOPOLOGY, SMARTBFT_TIMEOUTS, load_topology, parse_topology
from medfabric_ops import render
from medfabric_ops.crypto_material import generate_crypto
from medfabric_ops.render import core_yaml as core_yaml_module
from medfabric_ops.render import orderer_yaml as orderer_yaml_module
from medfabric_ops.render.core_yaml import CCAAS_BUILDER_DIR
from medfabric_ops.render.fabric_defaults import SampleConfigError, leaves, overlay
from medfabric_ops.render.files import HEADER, environment

# Every key of the orderer's config struct, TopLevel in Fabric v3's
# orderer/common/localconfig/config.go; the orderer unmarshals orderer.yaml
# exactly and refuses a file with any other key. General.BCCSP is bccsp's
# FactoryOpts; Consensus is free-form there, and etcdraft reads these keys of it
# (orderer/consensus/etcdraft Config), smartbft only WALDir.
ORDERER_CONFIG_KEYS = set("""
General.ListenAddress General.ListenPort
General.TLS.Enabled General.TLS.PrivateKey General.TLS.Certificate General.TLS.RootCAs
General.TLS.ClientAuthRequired General.TLS.ClientRootCAs General.TLS.TLSHandshakeTimeShift
General.Cluster.ListenAddress General.Cluster.ListenPort General.Cluster.ServerCertificate
General.Cluster.ServerPrivateKey General.Cluster.ClientCertificate General.Cluster.ClientPrivateKey
General.Cluster.RootCAs General.Cluster.DialTimeout General.Cluster.RPCTimeout General.Cluster.ReplicationBufferSize
General.Cluster.ReplicationPullTimeout General.Cluster.ReplicationRetryTimeout General.Cluster.ReplicationMaxRetries
General.Cluster.ReplicationPolicy General.Cluster.SendBufferSize General.Cluster.CertExpirationWarningThreshold
General.Cluster.TLSHandshakeTimeShift
General.Keepalive.ServerMinInterval General.Keepalive.ServerInterval General.Keepalive.ServerTimeout
General.Backoff.BaseDelay General.Backoff.Multiplier General.Backoff.MaxDelay
General.ConnectionTimeout General.GenesisMethod General.GenesisFile General.BootstrapMethod General.BootstrapFile
General.Profile.Enabled General.Profile.Address General.LocalMSPDir General.LocalMSPID
General.BCCSP.Default General.BCCSP.SW.Hash General.BCCSP.SW.Security General.BCCSP.SW.FileKeyStore.KeyStore
General.BCCSP.PKCS11.Library General.BCCSP.PKCS11.Label General.BCCSP.PKCS11.Pin General.BCCSP.PKCS11.Hash
General.BCCSP.PKCS11.Security General.BCCSP.PKCS11.FileKeyStore.KeyStore
General.Authentication.TimeWindow General.Authentication.NoExpirationChecks
General.MaxRecvMsgSize General.MaxSendMsgSize General.Throttling.Rate General.Throttling.InactivityTimeout
FileLedger.Location FileLedger.Prefix
Debug.BroadcastTraceDir Debug.DeliverTraceDir
Consensus.WALDir Consensus.SnapDir Consensus.EvictionSuspicion Consensus.TickIntervalOverride
Operations.ListenAddress
Operations.TLS.Enabled Operations.TLS.PrivateKey Operations.TLS.Certificate Operations.TLS.RootCAs
Operations.TLS.ClientAuthRequired Operations.TLS.ClientRootCAs Operations.TLS.TLSHandshakeTimeShift
Metrics.Provider Metrics.Statsd.Network Metrics.Statsd.Address Metrics.Statsd.WriteInterval Metrics.Statsd.Prefix
ChannelParticipation.Enabled ChannelParticipation.MaxRequestBodySize
Admin.ListenAddress
Admin.TLS.Enabled Admin.TLS.PrivateKey Admin.TLS.Certificate Admin.TLS.RootCAs
Admin.TLS.ClientAuthRequired Admin.TLS.ClientRootCAs Admin.TLS.TLSHandshakeTimeShift
""".split())

# configtx.yaml is unmarshalled exactly too (internal/configtxgen/genesisconfig/config.go).
CONFIGTX_PROFILE_KEYS = {"Consortium", "Application", "Orderer", "Consortiums", "Capabilities", "Policies"}
CONFIGTX_ORDERER_KEYS = {"OrdererType", "Addresses", "BatchTimeout", "BatchSize", "Kafka", "ConsenterMapping",
                         "EtcdRaft", "SmartBFT", "Organizations", "MaxChannels", "Capabilities", "Policies"}
CONFIGTX_ORG_KEYS = {"Name", "ID", "MSPDir", "MSPType", "Policies", "AnchorPeers", "OrdererEndpoints",
                     "AdminPrincipal", "SkipAsForeign"}
CONSENTER_MAPPING_KEYS = {"ID", "Host", "Port", "MSPID", "Identity", "ClientTLSCert", "ServerTLSCert"}
# smartbft.Options of fabric-protos (orderer/smartbft/configuration.proto)
SMARTBFT_OPTION_KEYS = {
    "RequestBatchMaxCount", "RequestBatchMaxBytes", "RequestBatchMaxInterval", "IncomingMessageBufferSize",
    "RequestPoolSize", "RequestForwardTimeout", "RequestComplainTimeout", "RequestAutoRemoveTimeout",
    "ViewChangeResendInterval", "ViewChangeTimeout", "LeaderHeartbeatTimeout", "LeaderHeartbeatCount",
    "CollectTimeout", "SyncOnStart", "SpeedUpViewChange", "LeaderRotation", "DecisionsPerLeader",
    "RequestMaxBytes", "RequestPoolSubmitTimeout",
}


@pytest.fixture(scope="module")
def topology():
    return load_topology()


@pytest.fixture(scope="module")
def layout(topology, tmp_path_factory, fabric_defaults):
    layout = NetworkLayout(tmp_path_factory.mktemp("rendered") / "network")
    generate_crypto(topology, layout)
    render.render_network(topology, layout, fabric_defaults)
    return layout


def read_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def configtx(layout: NetworkLayout) -> dict[str, Any]:
    return read_yaml(layout.configtx_dir / "configtx.yaml")


def core_yaml(layout: NetworkLayout, peer) -> dict[str, Any]:
    return read_yaml(layout.node_config(peer.host_name) / "core.yaml")


def orderer_yaml(layout: NetworkLayout, orderer) -> dict[str, Any]:
    return read_yaml(layout.node_config(orderer.host_name) / "orderer.yaml")


def flatten(document: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"a": {"b": 1}} -> {"a.b": 1}"""
    flat: dict[str, Any] = {}
    for key, value in document.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)


def env_paths(env: dict[str, str]) -> Iterator[str]:
    """The paths in environment values, including those in "[a,b]" lists."""
    for value in env.values():
        for item in value.strip("[]").split(","):
            if item.startswith("/"):
                yield item


def snapshot(*roots: Path) -> dict[str, tuple[bytes, int, int]]:
    return {str(path): (path.read_bytes(), path.stat().st_ino, path.stat().st_mtime_ns)
            for root in roots for path in sorted(root.rglob("*") if root.is_dir() else [root]) if path.is_file()}


def test_there_is_one_profile_per_channel_with_exactly_its_orgs_and_endpoints(topology, layout):
    profiles = configtx(layout)["Profiles"]
    assert list(profiles) == [channel.name for channel in topology.channels]
    for channel in topology.channels:
        profile = profiles[channel.name]
        assert set(profile) <= CONFIGTX_PROFILE_KEYS and set(profile["Orderer"]) <= CONFIGTX_ORDERER_KEYS
        application_orgs = profile["Application"]["Organizations"]
        assert [org["ID"] for org in application_orgs] == [domain.msp_id for domain in channel.domains]
        for org, domain in zip(application_orgs, channel.domains):
            assert set(org) <= CONFIGTX_ORG_KEYS
            assert org["MSPDir"] == str(layout.peer_org(domain) / "msp")
            assert org["AnchorPeers"] == [{"Host": "127.0.0.1", "Port": domain.duty_peer.listen_port}]
        owners = {orderer.domain_id for orderer in channel.orderers}
        orderer_orgs = profile["Orderer"]["Organizations"]
        assert [org["ID"] for org in orderer_orgs] == [d.orderer_msp_id for d in topology.domains if d.id in owners]
        for org in orderer_orgs:
            domain = next(d for d in topology.domains if d.orderer_msp_id == org["ID"])
            assert org["MSPDir"] == str(layout.orderer_org(domain) / "msp")
            assert org["OrdererEndpoints"] == [o.address for o in channel.orderers if o.domain_id == domain.id]
            assert "Addresses" not in profile["Orderer"]
    local = profiles["hospital-b-local"]
    assert [org["ID"] for org in local["Application"]["Organizations"]] == ["HospitalBMSP"]
    assert [org["ID"] for org in local["Orderer"]["Organizations"]] == ["HospitalBOrdererMSP"]


def test_top_level_organizations_list_every_org_for_print_org(topology, layout):
    orgs = {org["ID"]: org for org in configtx(layout)["Organizations"]}
    assert set(orgs) == {d.msp_id for d in topology.domains} | {d.orderer_msp_id for d in topology.domains}
    for domain in topology.domains:
        assert orgs[domain.orderer_msp_id]["OrdererEndpoints"] == [
            o.address for o in topology.orderers if o.domain_id == domain.id]


def test_local_channels_are_raft_among_their_domains_orderers(topology, layout):
    profiles = configtx(layout)["Profiles"]
    for channel in (c for c in topology.channels if c.kind == "local"):
        orderer = profiles[channel.name]["Orderer"]
        assert orderer["OrdererType"] == "etcdraft"
        consenters = orderer["EtcdRaft"]["Consenters"]
        assert [(c["Host"], c["Port"]) for c in consenters] == [(o.host, o.listen_port) for o in channel.orderers]
        for consenter, node in zip(consenters, channel.orderers):
            server_crt = layout.orderer_dir(topology.orderer_domain(node), node) / "tls" / "server.crt"
            assert consenter["ClientTLSCert"] == consenter["ServerTLSCert"] == str(server_crt)


def test_the_public_channel_is_bft_with_consenter_ids_and_enrollment_identities(topology, layout):
    channel = topology.public_channel
    orderer = configtx(layout)["Profiles"][channel.name]["Orderer"]
    assert orderer["OrdererType"] == "BFT"
    mapping = orderer["ConsenterMapping"]
    assert [c["ID"] for c in mapping] == list(range(1, len(channel.orderers) + 1))
    for consenter, node in zip(mapping, channel.orderers):
        assert set(consenter) == CONSENTER_MAPPING_KEYS
        domain = topology.orderer_domain(node)
        assert (consenter["Host"], consenter["Port"], consenter["MSPID"]) == (
            node.host, node.listen_port, domain.orderer_msp_id)
        identity = x509.load_pem_x509_certificate(Path(consenter["Identity"]).read_bytes())
        signcerts = list((layout.orderer_dir(domain, node) / "msp" / "signcerts").iterdir())
        assert [Path(consenter["Identity"])] == signcerts  # the enrollment certificate it signs blocks with
        assert identity.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == node.host_name
        assert identity.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)[0].value == "orderer"
        assert consenter["ClientTLSCert"] == consenter["ServerTLSCert"] == str(
            layout.orderer_dir(domain, node) / "tls" / "server.crt")
    smartbft = orderer["SmartBFT"]
    assert set(smartbft) <= SMARTBFT_OPTION_KEYS
    assert smartbft["RequestBatchMaxCount"] == orderer["BatchSize"]["MaxMessageCount"] == \
        channel.ordering.max_message_count
    assert smartbft["RequestBatchMaxBytes"] == orderer["BatchSize"]["AbsoluteMaxBytes"]
    assert smartbft["RequestBatchMaxInterval"] == f"{channel.ordering.batch_timeout_ms}ms"
    assert {"RequestPoolSize", "ViewChangeTimeout", "LeaderHeartbeatTimeout", "CollectTimeout"} <= set(smartbft)


@pytest.mark.parametrize("profile, local, public, smartbft, gateway", [
    ("default", ("250ms", 100), ("250ms", 100), (100000, 200), 500),
    ("low-latency", ("20ms", 10), ("20ms", 10), (100000, 200), 500),
    ("high-throughput", ("100ms", 500), ("200ms", 500), (100000, 1000), 2500),
])
def test_a_profiles_tuning_reaches_configtx_and_core_yaml(tmp_path, fabric_defaults, profile, local, public, smartbft,
                                                          gateway):
    topology = load_topology(profile=profile)
    layout = NetworkLayout(tmp_path / "network")
    render.render_network(topology, layout, fabric_defaults)
    profiles = configtx(layout)["Profiles"]
    for channel in topology.channels:
        orderer = profiles[channel.name]["Orderer"]
        batch = (orderer["BatchTimeout"], orderer["BatchSize"]["MaxMessageCount"])
        assert batch == (local if channel.kind == "local" else public)
        assert ("SmartBFT" in orderer) == (channel.kind == "public")
    options = profiles["public"]["Orderer"]["SmartBFT"]
    assert set(options) <= SMARTBFT_OPTION_KEYS
    assert (options["RequestBatchMaxInterval"], options["RequestBatchMaxCount"]) == public
    assert (options["RequestPoolSize"], options["IncomingMessageBufferSize"]) == smartbft
    bft = topology.public_channel.ordering.smartbft
    assert options["LeaderHeartbeatCount"] == bft.leader_heartbeat_count
    for name, (_, option) in SMARTBFT_TIMEOUTS.items():
        assert _duration(options[option]) == bft.timeout_ms(name) / 1000
    # Fabric's SmartBFT config.Validate: forward < complain < auto-remove, resend < view change
    seconds = {key: _duration(options[key]) for key in ("RequestForwardTimeout", "RequestComplainTimeout",
                                                         "RequestAutoRemoveTimeout", "ViewChangeResendInterval",
                                                         "ViewChangeTimeout")}
    assert seconds["RequestForwardTimeout"] <= seconds["RequestComplainTimeout"] <= seconds["RequestAutoRemoveTimeout"]
    assert seconds["ViewChangeResendInterval"] <= seconds["ViewChangeTimeout"]
    assert options["RequestBatchMaxCount"] <= options["RequestBatchMaxBytes"]
    for peer in topology.peers:
        assert flatten(core_yaml(layout, peer))["peer.limits.concurrency.gatewayService"] == gateway


def _duration(text: str) -> float:
    """Go's time.ParseDuration for the forms written here: 20s, 3m0s, 250ms."""
    total = 0.0
    for number, unit in re.findall(r"(\d+)(ms|s|m|h)", text):
        total += int(number) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[unit]
    return total


def test_policies_capabilities_and_batching_follow_the_topology(tmp_path, fabric_defaults):
    raw = yaml.safe_load(DEFAULT_TOPOLOGY.read_text())
    raw["channels"]["local"].update(batch_timeout="2s", max_message_count=7)
    raw["channels"]["public"].update(batch_timeout="20ms", max_message_count=300, endorsement="ANY")
    topology = parse_topology(raw)
    layout = NetworkLayout(tmp_path / "network")
    render.render_network(topology, layout, fabric_defaults)
    document = configtx(layout)
    profiles = document["Profiles"]
    for channel in topology.channels:
        profile = profiles[channel.name]
        batch = (profile["Orderer"]["BatchTimeout"], profile["Orderer"]["BatchSize"]["MaxMessageCount"])
        assert batch == (("2000ms", 7) if channel.kind == "local" else ("20ms", 300))
        assert profile["Capabilities"] == {"V3_0": True}
        assert profile["Orderer"]["Capabilities"] == {"V2_0": True}
        assert profile["Application"]["Capabilities"] == {"V2_5": True}
        assert profile["Policies"]["Admins"] == {"Type": "ImplicitMeta", "Rule": "MAJORITY Admins"}
        policies = profile["Application"]["Policies"]
        assert policies["LifecycleEndorsement"] == {"Type": "ImplicitMeta", "Rule": "MAJORITY Endorsement"}
        rule = "ANY" if channel.kind == "public" else "MAJORITY"  # chaincode endorsement only: lifecycle stays
        assert policies["Endorsement"] == {"Type": "ImplicitMeta", "Rule": f"{rule} Endorsement"}
        assert profile["Orderer"]["Policies"]["BlockValidation"]["Rule"] == "ANY Writers"
    assert profiles["public"]["Orderer"]["SmartBFT"]["RequestBatchMaxCount"] == 300
    org = next(o for o in document["Organizations"] if o["ID"] == "HospitalAMSP")
    assert {name: (policy["Type"], policy["Rule"]) for name, policy in org["Policies"].items()} == {
        "Readers": ("Signature", "OR('HospitalAMSP.admin', 'HospitalAMSP.peer', 'HospitalAMSP.client')"),
        "Writers": ("Signature", "OR('HospitalAMSP.admin', 'HospitalAMSP.client')"),
        "Admins": ("Signature", "OR('HospitalAMSP.admin')"),
        "Endorsement": ("Signature", "OR('HospitalAMSP.peer')"),
    }
    orderer_org = next(o for o in document["Organizations"] if o["ID"] == "HospitalAOrdererMSP")
    assert orderer_org["Policies"]["Writers"]["Rule"] == "OR('HospitalAOrdererMSP.member')"
    assert orderer_org["Policies"]["Admins"]["Rule"] == "OR('HospitalAOrdererMSP.admin')"


def test_nodes_listen_on_the_topology_ports(topology, layout):
    for peer in topology.peers:
        core = flatten(core_yaml(layout, peer))
        assert core["peer.listenAddress"] == core["peer.address"] == f"127.0.0.1:{peer.listen_port}"
        assert core["peer.chaincodeListenAddress"] == f"127.0.0.1:{peer.chaincode_port}"
        assert core["operations.listenAddress"] == f"127.0.0.1:{peer.operations_port}"
        assert core["peer.gossip.endpoint"] == core["peer.gossip.externalEndpoint"] == peer.address
        assert core["peer.gossip.bootstrap"] == topology.domain(peer.domain_id).duty_peer.address
    for orderer in topology.orderers:
        config = flatten(orderer_yaml(layout, orderer))
        assert (config["General.ListenAddress"], config["General.ListenPort"]) == ("127.0.0.1", orderer.listen_port)
        assert config["Admin.ListenAddress"] == f"127.0.0.1:{orderer.admin_port}"
        assert config["Operations.ListenAddress"] == f"127.0.0.1:{orderer.operations_port}"
        # the cluster shares the general listener
        assert not any(value for key, value in config.items() if key.startswith("General.Cluster.Listen"))


def test_no_port_is_bound_twice(topology, layout):
    addresses = []
    for peer in topology.peers:
        core = flatten(core_yaml(layout, peer))
        addresses += [core["peer.listenAddress"], core["peer.chaincodeListenAddress"], core["operations.listenAddress"]]
    for orderer in topology.orderers:
        config = flatten(orderer_yaml(layout, orderer))
        addresses += [f"{config['General.ListenAddress']}:{config['General.ListenPort']}",
                      config["Admin.ListenAddress"], config["Operations.ListenAddress"]]
    addresses += [f"127.0.0.1:{domain.chaincode_port}" for domain in topology.domains]
    ports = [int(address.rsplit(":", 1)[1]) for address in addresses]
    assert len(ports) == len(set(ports)) == 3 * len(topology.peers) + 3 * len(topology.orderers) + 3


def test_orderer_yaml_has_only_keys_of_the_orderers_config_struct(topology, layout):
    for orderer in topology.orderers:
        config = flatten(orderer_yaml(layout, orderer))
        assert set(config) <= ORDERER_CONFIG_KEYS, set(config) - ORDERER_CONFIG_KEYS
        assert "General.BootstrapMethod" not in config  # v3: no system channel, nothing to bootstrap from
        assert config["ChannelParticipation.Enabled"] is True
        assert config["Admin.TLS.Enabled"] is config["Admin.TLS.ClientAuthRequired"] is True
        assert config["Admin.TLS.ClientRootCAs"] == [str(layout.orderer_tls_ca(topology.orderer_domain(orderer)))]
        assert config["General.LocalMSPID"] == topology.orderer_domain(orderer).orderer_msp_id
        assert config["FileLedger.Location"] == str(layout.node_data(orderer.host_name))
        assert config["Consensus.WALDir"].startswith(str(layout.node_data(orderer.host_name)) + "/")
        assert config["Metrics.Provider"] == "prometheus"


@pytest.mark.parametrize("module, kind", [(core_yaml_module, "core"), (orderer_yaml_module, "orderer")])
def test_every_node_file_is_fabrics_own_with_only_the_changes_we_give_reasons_for(topology, layout, fabric_defaults,
                                                                                 module, kind):
    fabric = leaves(getattr(fabric_defaults, kind))
    nodes = topology.peers if kind == "core" else topology.orderers
    for node in nodes:
        rendered = flatten(read_yaml(layout.node_config(node.host_name) / f"{kind}.yaml"))
        own = set(module.node_settings(topology, layout, node))
        assert set(fabric) - set(rendered) == set()  # no key of Fabric's falls to a zero value
        assert set(rendered) - set(fabric) <= set(module.ADDED)
        changed = {key for key, value in rendered.items() if key not in fabric or fabric[key] != value}
        assert changed - own - set(module.SHARED) == set()
    for key, change in module.SHARED.items():
        assert len(change.why) > 20 and change.value != fabric[key], key  # a reason, and a real change
    assert all(len(why) > 20 for why in module.ADDED.values())
    assert not set(module.SHARED) & own


def test_a_setting_fabric_does_not_have_is_refused(fabric_defaults):
    with pytest.raises(SampleConfigError, match=r"peer\.gossip\.reconectInterval: not a key of Fabric's sampleconfig"):
        overlay(fabric_defaults.core, {"peer.gossip.reconectInterval": "2s"})
    with pytest.raises(SampleConfigError, match=r"General\.Clustre\.RootCAs: Fabric's sampleconfig has no section"):
        overlay(fabric_defaults.orderer, {"General.Clustre.RootCAs": []})
    assert overlay(fabric_defaults.core, {"peer.x": 1}, added={"peer.x": "why"})["peer"]["x"] == 1


def test_no_rendered_listener_binds_beyond_loopback(topology, layout):
    for node, kind in [(p, "core") for p in topology.peers] + [(o, "orderer") for o in topology.orderers]:
        text = (layout.node_config(node.host_name) / f"{kind}.yaml").read_text()
        assert "0.0.0.0" not in text, node.host_name


def test_core_yaml_runs_a_peer_without_docker_and_with_our_builder(topology, layout):
    for peer in topology.peers:
        core = flatten(core_yaml(layout, peer))
        assert core["vm.endpoint"] == ""
        [builder] = core["chaincode.externalBuilders"]
        assert Path(builder["path"]) == CCAAS_BUILDER_DIR
        assert all(os.access(CCAAS_BUILDER_DIR / "bin" / step, os.X_OK) for step in ("detect", "build", "release"))
        assert core["peer.localMspId"] == topology.domain(peer.domain_id).msp_id
        assert core["peer.fileSystemPath"] == str(layout.node_data(peer.host_name))
        assert core["ledger.state.stateDatabase"] == "goleveldb"
        assert core["peer.gossip.reconnectInterval"] == "2s"
        assert core["peer.gossip.publishStateInfoInterval"] == core["peer.gossip.requestStateInfoInterval"] == "1s"
        assert core["peer.limits.concurrency.gatewayService"] == 500
        assert (core["peer.BCCSP.Default"], core["peer.BCCSP.SW.Hash"], core["peer.BCCSP.SW.Security"]) == (
            "SW", "SHA2", 256)
        assert core["peer.tls.enabled"] is True and core["metrics.provider"] == "prometheus"
        assert core["chaincode.system._lifecycle"] == core["chaincode.system.cscc"] == "enable"
        assert core["ledger.history.enableHistoryDatabase"] is True


def test_rendered_files_say_they_are_generated(topology, layout):
    files = [layout.configtx_dir / "configtx.yaml"]
    files += [layout.node_config(node.host_name) / name for node, name in
              [(p, "core.yaml") for p in topology.peers] + [(o, "orderer.yaml") for o in topology.orderers]]
    assert all(path.read_text().startswith(HEADER) for path in files)
    assert all(json.loads(layout.connection_profile(d).read_text())["description"] in HEADER for d in topology.domains)


def test_every_path_named_by_rendered_files_environments_and_profiles_exists(topology, layout):
    named: list[str] = list(strings(configtx(layout)))
    for peer in topology.peers:
        named += strings(core_yaml(layout, peer))
        named += env_paths(render.peer_env(topology, layout, peer))
        named += env_paths(render.admin_cli_env(topology, layout, topology.domain(peer.domain_id), peer))
    for orderer in topology.orderers:
        named += strings(orderer_yaml(layout, orderer))
        named += env_paths(render.orderer_env(topology, layout, orderer))
    for domain in topology.domains:
        named += strings(render.connection_profile(topology, layout, domain))
    paths = {Path(value) for value in named if value.startswith("/")}
    runtime = layout.root / "data"
    assert len(paths) > 100
    missing = [path for path in paths if not path.exists() and runtime not in path.parents]
    assert missing == []
    assert any(runtime in path.parents for path in paths)  # runtime data is named, and made by the nodes


def test_every_environment_variable_names_a_key_of_its_config_file_with_the_same_value(topology, layout):
    def check(env: dict[str, str], prefix: str, config: dict[str, Any]) -> dict[str, tuple[str, str]]:
        """The env's settings, each with the value its config file has; all must name a key of the file."""
        as_env = environment(prefix, flatten(config))
        settings = {name: value for name, value in env.items() if not name.startswith("FABRIC_")}
        assert settings and set(settings) <= set(as_env), set(settings) - set(as_env)
        assert set(env) - set(settings) == {"FABRIC_CFG_PATH", "FABRIC_LOGGING_SPEC"}
        return {name: (value, as_env[name]) for name, value in settings.items()}

    for peer in topology.peers:
        config = core_yaml(layout, peer)
        env = render.peer_env(topology, layout, peer)
        assert all(ours == theirs for ours, theirs in check(env, "CORE", config).values())
        assert env["FABRIC_CFG_PATH"] == str(layout.node_config(peer.host_name))
        check(render.admin_cli_env(topology, layout, topology.domain(peer.domain_id), peer), "CORE", config)
    for orderer in topology.orderers:
        env = render.orderer_env(topology, layout, orderer)
        assert all(ours == theirs for ours, theirs in check(env, "ORDERER", orderer_yaml(layout, orderer)).values())
        assert env["ORDERER_GENERAL_TLS_ROOTCAS"].startswith("[/") and env["ORDERER_GENERAL_TLS_ROOTCAS"].endswith("]")
    builders = [{"name": "x", "path": "/b"}]
    assert environment("CORE", {"chaincode.externalBuilders": builders, "peer.tls.enabled": True}) == {
        "CORE_CHAINCODE_EXTERNALBUILDERS": '[{"name": "x", "path": "/b"}]', "CORE_PEER_TLS_ENABLED": "true"}


def test_the_peer_cli_acts_as_the_org_admin_against_the_peer(topology, layout):
    domain = topology.domain("hospital-c")
    peer = domain.peers[1]
    env = render.admin_cli_env(topology, layout, domain, peer)
    assert env["CORE_PEER_LOCALMSPID"] == "HospitalCMSP"
    assert env["CORE_PEER_MSPCONFIGPATH"] == str(layout.user_msp(domain, "Admin"))
    assert env["CORE_PEER_ADDRESS"] == peer.address
    assert env["CORE_PEER_TLS_ENABLED"] == "true"
    assert env["CORE_PEER_TLS_ROOTCERT_FILE"] == str(layout.peer_tls_ca(domain))
    assert (Path(env["FABRIC_CFG_PATH"]) / "core.yaml").is_file()


def test_each_domain_has_a_connection_profile_of_its_peers(topology, layout):
    for domain in topology.domains:
        profile = json.loads(layout.connection_profile(domain).read_text())
        assert profile == render.connection_profile(topology, layout, domain)
        assert profile["client"]["organization"] == domain.msp_id
        assert profile["organizations"][domain.msp_id]["peers"] == [p.host_name for p in domain.peers]
        for peer in domain.peers:
            entry = profile["peers"][peer.host_name]
            assert entry["url"] == f"grpcs://{peer.address}"
            assert entry["tlsCACerts"]["path"] == str(layout.peer_tls_ca(domain))
            assert entry["grpcOptions"]["ssl-target-name-override"] == peer.host_name


def test_a_second_render_rewrites_nothing(topology, layout, fabric_defaults):
    rendered = [layout.config, layout.root / "chaincode", *(layout.connection_profile(d) for d in topology.domains)]
    before = snapshot(*rendered)
    # configtx.yaml, Caliper's network.yaml, a config per node, per domain a package per chaincode and a profile
    assert len(before) == 2 + len(topology.peers) + len(topology.orderers) + (
        len(topology.chaincodes) + 1) * len(topology.domains)
    render.render_network(topology, layout, fabric_defaults)
    assert snapshot(*rendered) == before
