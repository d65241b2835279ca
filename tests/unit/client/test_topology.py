"""The consortium description: defaults, derived values, and validation errors."""

import copy

import pytest
import yaml

from medfabric.topology import DEFAULT_TOPOLOGY, TopologyError, load_topology, parse_topology


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
    assert len(ports) == len(set(ports.values())) == 6 * 3 + 7 * 3 + 3 * 2
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
        (lambda r: r["channels"]["local"].update(batch_timeout="soon"), "channels.local.batch_timeout"),
        (lambda r: r["channels"]["public"].update(name="hospital-a-local"), "channels.public.name"),
        (lambda r: r.update(base_port=64900), "base_port: too high"),
        (lambda r: r.update(domains=[]), "domains: at least one domain"),
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
