"""The consortium description: defaults, derived values, and validation errors."""

import copy

import pytest
import yaml

from medfabric.consortium.topology import (DEFAULT_TOPOLOGY, SmartBFTOptions, TopologyError, load_topology,
                                          parse_topology)


@pytest.fixture
def raw():
    return yaml.safe_load(DEFAULT_TOPOLOGY.read_text())


def test_default_consortium_shape():
    topo = load_topology()
    assert [d.id for d in topo.domains] == ["hospital-a", "hospital-b", "hospital-c"]
    assert all(len(d.peers) == 2 and d.peers[0].is_duty for d in topo.domains)
    local = [c for c in topo.channels if c.kind == "local"]
    assert [c.name for c in local] == ["hospital-a-local", "hospital-b-local", "hospital-c-local"]
    for channel in local:
        assert channel.ordering.consensus == "raft"
        assert len(channel.domains) == 1 and len(channel.orderers) == 1
        assert {p.domain_id for p in channel.peers} == {channel.domains[0].id}
    public = topo.public_channel
    assert public.ordering.consensus == "bft"
    assert [p.name for p in public.peers] == ["duty"] * 3
    assert [o.consenter_id for o in public.orderers] == [1, 2, 3, 4]
    assert [o.domain_id for o in public.orderers] == ["hospital-a", "hospital-b", "hospital-c", "hospital-a"]


def test_ports_are_derived_unique_and_on_loopback():
    topo = load_topology()
    ports = topo.ports()
    # per domain: a chaincode server per chaincode (medfabric, the medfabric-node baseline) and a data service
    assert len(ports) == len(set(ports.values())) == 6 * 3 + 7 * 3 + 3 * 3
    assert all(p.host == "127.0.0.1" for p in topo.peers)
    assert topo.domain("hospital-a").duty_peer.address == "127.0.0.1:7100"


def test_base_port_moves_every_port(raw):
    raw["base_port"] = 20000
    moved = parse_topology(raw).ports()
    default = load_topology().ports()
    assert {k: v - 13000 for k, v in moved.items()} == default


def test_durations_are_parsed(raw):
    raw["channels"]["public"]["batch_timeout"] = "2s"
    assert parse_topology(raw).public_channel.ordering.batch_timeout_ms == 2000


def test_the_orphan_grace_of_the_data_services_is_read_and_defaults_to_ten_minutes(raw):
    assert parse_topology(raw).orphan_grace_ms == 600_000
    raw["data_services"]["orphan_grace"] = "15s"
    assert parse_topology(raw).orphan_grace_ms == 15_000
    del raw["data_services"]
    assert parse_topology(raw).orphan_grace_ms == 600_000


def test_the_public_endorsement_rule_is_majority_unless_chosen(raw):
    assert {c.endorsement for c in parse_topology(raw).channels} == {"MAJORITY"}
    raw["channels"]["public"]["endorsement"] = "ANY"
    chosen = parse_topology(raw)
    assert [(c.kind, c.endorsement) for c in chosen.channels if c.kind == "public"] == [("public", "ANY")]
    assert {c.endorsement for c in chosen.channels if c.kind == "local"} == {"MAJORITY"}


@pytest.mark.parametrize(
    "mutate, field",
    [
        (lambda r: r.pop("base_port"), "base_port: is required"),
        (lambda r: r.update(base_port="7000"), "base_port: must be an integer"),
        (lambda r: r["domains"][1].update(id="Hospital_B"), "domains[1].id"),
        (lambda r: r["domains"][2].update(msp_id="HospitalAMSP"), "domains[].msp_id: 'HospitalAMSP' appears twice"),
        (lambda r: r["domains"][0].update(peers=[]), "domains[0].peers: at least one peer"),
        (lambda r: r["domains"][0].update(colour="red"), "domains[0].colour: unknown field"),
        (lambda r: r["channels"]["public"].update(orderers=3), "channels.public.orderers: BFT needs at least 4"),
        (lambda r: r["channels"]["local"].update(consensus="kafka"), "channels.local.consensus: must be one of"),
        (lambda r: r["channels"]["public"].update(endorsement="ALL"),
         "channels.public.endorsement: must be one of MAJORITY, ANY"),
        (lambda r: r["channels"]["local"].update(endorsement="ANY"), "channels.local.endorsement: unknown field"),
        (lambda r: r["channels"]["local"].update(batch_timeout="soon"), "channels.local.batch_timeout"),
        (lambda r: r["channels"]["public"].update(name="hospital-a-local"), "channels.public.name"),
        (lambda r: r.update(base_port=64900), "base_port: too high"),
        (lambda r: r.update(domains=[]), "domains: at least one domain"),
        (lambda r: r["data_services"].update(orphan_grace="10 min"), "data_services.orphan_grace: must be a duration"),
        (lambda r: r["data_services"].update(sweep="1s"), "data_services.sweep: unknown field"),
    ],
)
def test_invalid_topology_names_the_field(raw, mutate, field):
    broken = copy.deepcopy(raw)
    mutate(broken)
    with pytest.raises(TopologyError) as err:
        parse_topology(broken)
    assert field in str(err.value)


def test_too_many_peers_for_the_port_plan(raw):
    raw["domains"][0]["peers"] = [f"p{i}" for i in range(40)]
    with pytest.raises(TopologyError, match="port blocks overlap"):
        parse_topology(raw)


def test_load_errors_name_the_file(tmp_path):
    with pytest.raises(TopologyError, match="topology file not found"):
        load_topology(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(TopologyError, match="not valid YAML"):
        load_topology(bad)
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text("name: x\n")
    with pytest.raises(TopologyError, match=r"^wrong.yaml: fabric_version: is required"):
        load_topology(wrong)


def test_unknown_lookups_list_what_exists():
    topo = load_topology()
    with pytest.raises(TopologyError, match="known: hospital-a, hospital-b, hospital-c"):
        topo.domain("hospital-z")
    with pytest.raises(TopologyError, match="unknown channel 'nope'"):
        topo.channel("nope")


def test_chaincodes_are_the_application_then_the_baseline_each_with_its_port_block():
    topo = load_topology()
    assert [(c.name, c.role, c.runtime) for c in topo.chaincodes] == [
        ("medfabric", "application", "python"), ("medfabric-node", "baseline", "node")]
    assert topo.chaincodes[0] is topo.chaincode and topo.chaincodes[1] is topo.baseline
    for index, domain in enumerate(topo.domains):
        assert topo.chaincode_port(topo.chaincode, domain) == domain.chaincode_port == 7800 + index
        assert topo.chaincode_port(topo.baseline, domain) == 7850 + index
        assert topo.ports()[f"{domain.id}:chaincode:medfabric-node"] == 7850 + index


@pytest.mark.parametrize("disable", [lambda r: r.pop("baseline"), lambda r: r["baseline"].update(enabled=False)])
def test_the_baseline_is_optional(raw, disable):
    disable(raw)
    topo = parse_topology(raw)
    assert topo.baseline is None and topo.chaincodes == (topo.chaincode,)
    assert not any(key.endswith(":medfabric-node") for key in topo.ports())


def test_a_disabled_baseline_is_not_checked(raw):
    raw["baseline"].update(enabled=False, name="not a name")
    assert parse_topology(raw).baseline is None


def test_too_many_domains_for_the_port_plan(raw):
    raw["domains"] = [{"id": f"hospital-{i:02d}", "msp_id": f"H{i}MSP", "peers": ["duty"]} for i in range(51)]
    with pytest.raises(TopologyError, match="port blocks overlap"):
        parse_topology(raw)


def test_the_default_tuning_is_the_files_values():
    topo = load_topology()
    assert topo.tuning.profile == "default" and topo.tuning.gateway_concurrency == 500
    assert topo.profiles == ("low-latency", "high-throughput")
    local, public = topo.channels[0].ordering, topo.public_channel.ordering
    assert (local.batch_timeout_ms, local.max_message_count, local.smartbft) == (250, 100, None)
    assert (public.batch_timeout_ms, public.max_message_count) == (250, 100)
    assert (public.smartbft.request_pool_size, public.smartbft.incoming_message_buffer_size) == (100000, 200)
    # failover tuned under 10 s (the file), the rest Fabric's defaults
    timeouts = dict(public.smartbft.timeouts_ms)
    assert timeouts == {"request_forward_timeout": 1000, "request_complain_timeout": 4000,
                        "request_auto_remove_timeout": 180000, "view_change_resend_interval": 2000,
                        "view_change_timeout": 10000, "leader_heartbeat_timeout": 10000, "collect_timeout": 1000}
    assert public.smartbft.leader_heartbeat_count == 10
    assert load_topology(profile="default") == topo


def test_smartbft_timeouts_left_out_take_fabrics_defaults(raw):
    raw["channels"]["public"]["smartbft"] = {"view_change_timeout": "45s"}
    options = parse_topology(raw).public_channel.ordering.smartbft
    assert options.timeout_ms("view_change_timeout") == 45000
    assert options.timeout_ms("request_complain_timeout") == 20000  # Fabric's sampleconfig
    assert options.timeout_ms("request_auto_remove_timeout") == 180000
    assert SmartBFTOptions().timeout_ms("leader_heartbeat_timeout") == 60000


def test_profiles_override_only_the_knobs_they_set():
    default = load_topology()
    fast = load_topology(profile="low-latency")
    assert fast.tuning.profile == "low-latency" and fast.tuning.gateway_concurrency == 500
    for channel in fast.channels:
        assert (channel.ordering.batch_timeout_ms, channel.ordering.max_message_count) == (20, 10)
    assert fast.public_channel.ordering.smartbft == default.public_channel.ordering.smartbft
    wide = load_topology(profile="high-throughput")
    assert wide.tuning.gateway_concurrency == 2500
    assert [(c.ordering.batch_timeout_ms, c.ordering.max_message_count) for c in wide.channels] == [
        (100, 500)] * 3 + [(200, 500)]
    assert wide.public_channel.ordering.smartbft.incoming_message_buffer_size == 1000
    assert wide.public_channel.ordering.smartbft.request_pool_size == 100000  # not set: the file's value
    assert wide.public_channel.ordering.smartbft.timeout_ms("request_complain_timeout") == 20000
    assert wide.public_channel.ordering.smartbft.timeout_ms("request_forward_timeout") == 1000  # the file's
    # nothing but tuning differs
    assert wide.ports() == default.ports() and wide.chaincodes == default.chaincodes
    assert [c.ordering.consensus for c in wide.channels] == [c.ordering.consensus for c in default.channels]


def test_a_profile_may_tune_a_section_the_file_leaves_to_defaults(raw):
    raw.pop("peer_gateway")
    del raw["channels"]["public"]["smartbft"]
    raw["profiles"]["x"] = {"peer_gateway": {"concurrency": 7}, "channels": {"public": {"smartbft": {
        "request_pool_size": 4000}}}}
    assert parse_topology(raw).tuning.gateway_concurrency == 500
    tuned = parse_topology(raw, profile="x")
    assert tuned.tuning.gateway_concurrency == 7
    assert tuned.public_channel.ordering.smartbft.request_pool_size == 4000


@pytest.mark.parametrize(
    "mutate, profile, field",
    [
        (lambda r: r["profiles"]["low-latency"]["channels"]["local"].update(batch_timeout="soon"), None,
         "profiles.low-latency.channels.local.batch_timeout: must be a duration"),
        (lambda r: r["profiles"]["low-latency"]["channels"]["local"].update(consensus="bft"), None,
         "profiles.low-latency.channels.local.consensus: not allowed here"),
        (lambda r: r["profiles"]["low-latency"].update(base_port=1), None,
         "profiles.low-latency.base_port: not allowed here (a profile sets tuning knobs only)"),
        (lambda r: r["profiles"]["low-latency"]["channels"]["local"].update(smartbft={"request_pool_size": 9}),
         None, "profiles.low-latency.channels.local.smartbft: only for consensus bft"),
        (lambda r: r["profiles"]["high-throughput"]["channels"]["public"]["smartbft"].update(pool=1), None,
         "profiles.high-throughput.channels.public.smartbft.pool: not allowed here"),
        (lambda r: r["profiles"]["high-throughput"]["channels"]["public"]["smartbft"].update(
            request_pool_size=100), None,
         "profiles.high-throughput.channels.public.smartbft.request_pool_size: must hold at least one batch"),
        (lambda r: r["profiles"]["high-throughput"]["peer_gateway"].update(concurrency=0), None,
         "profiles.high-throughput.peer_gateway.concurrency: must be between 1 and 100000"),
        (lambda r: r["profiles"].update({"Fast": {}}), None, "profiles.Fast: a profile name must match"),
        (lambda r: r["profiles"].update({"default": {}}), None, "profiles.default: a profile name must match"),
        (lambda r: None, "turbo", "profiles: no profile 'turbo' (known: default, low-latency, high-throughput)"),
        (lambda r: r["channels"]["public"]["smartbft"].update(request_pool_siz=1), None,
         "channels.public.smartbft.request_pool_siz: unknown field"),
        (lambda r: r["channels"]["local"].update(smartbft={"request_pool_size": 500}), None,
         "channels.local.smartbft: only for consensus bft"),
        (lambda r: r["channels"]["public"]["smartbft"].update(request_forward_timeout="5s"), None,
         "channels.public.smartbft.request_forward_timeout: must not be longer than request_complain_timeout "
         "(4000 ms)"),
        (lambda r: r["channels"]["public"]["smartbft"].update(view_change_resend_interval="11s"), None,
         "channels.public.smartbft.view_change_resend_interval: must not be longer than view_change_timeout"),
        (lambda r: r["profiles"]["high-throughput"]["channels"]["public"]["smartbft"].update(
            request_complain_timeout="200s"), "high-throughput",
         "request_complain_timeout: must not be longer than request_auto_remove_timeout (180000 ms)"),
        (lambda r: r["channels"]["public"]["smartbft"].update(collect_timeout="2h"), None,
         "channels.public.smartbft.collect_timeout:"),
        (lambda r: r["channels"]["public"]["smartbft"].update(leader_heartbeat_count=0), None,
         "channels.public.smartbft.leader_heartbeat_count: must be between 1 and 1000"),
        (lambda r: r["peer_gateway"].update(concurrency="many"), None, "peer_gateway.concurrency: must be an integer"),
        (lambda r: r["baseline"].update(name="medfabric"), None, "baseline.name: 'medfabric' is already"),
        (lambda r: r["baseline"].update(enabled="yes"), None, "baseline.enabled: must be true or false"),
        (lambda r: r["baseline"].update(language="go"), None, "baseline.language: unknown field"),
    ],
)
def test_invalid_tuning_names_the_field(raw, mutate, profile, field):
    mutate(raw)
    with pytest.raises(TopologyError) as err:
        parse_topology(raw, profile=profile)
    assert field in str(err.value)


def test_load_with_an_unknown_profile_names_the_file(tmp_path):
    with pytest.raises(TopologyError, match=r"^topology.yaml: profiles: no profile 'nope'"):
        load_topology(profile="nope")


def test_every_profile_keeps_the_consortiums_name():
    assert {load_topology(profile=p).name for p in ("default", "low-latency", "high-throughput")} == {"medfabric"}
