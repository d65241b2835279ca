"""Chaincodes served from other processes: FakeFabric's routing by chaincode name, the fake Gateway serving the
Node baseline beside medfabric, and the dry run's command line (the dry run itself takes minutes: not here;
tests/unit/ops/test_bench_with_caliper.py runs Caliper against the same pieces)."""

from __future__ import annotations

import json

import grpc
import pytest

from medfabric.consortium.connection import connect_as
from medfabric.gateway import EndorseError, GatewayError
from medfabric.consortium.topology import load_topology

from ..unit.client import fake_fabric
from ..unit.client.fake_fabric import FakeFabric
from . import dry_run
from .chaincode_servers import ChaincodeUnavailable, baseline_missing, node_baseline, python_chaincode

pytestmark = pytest.mark.timeout(120)

CHANNEL = "hospital-a-local"
BASELINE = "medfabric-node"


@pytest.fixture(scope="module")
def node():
    missing = baseline_missing()
    if missing:
        pytest.skip(f"the Node baseline cannot run here: {missing}")
    with node_baseline() as server:
        yield server


def entry(record_id: str) -> str:
    return json.dumps({
        "record_id": record_id, "patient": "patient-1", "domain": "hospital-a", "resource_type": "Observation",
        "ciphertext_sha256": "0" * 64, "plaintext_sha256": "1" * 64, "size": 10,
        "location": f"medfabric://hospital-a/store/{record_id}",
    })


def index_keys(fabric: FakeFabric, chaincode: str | None = None) -> set[str]:
    return {key.split("\x00")[2] for _, key in fabric.world_state(CHANNEL, chaincode) if key.startswith("\x00emr\x00")}


def test_fake_fabric_routes_each_transaction_to_the_chaincode_it_names(layout, node):
    fabric = FakeFabric(load_topology(), layout, chaincodes={BASELINE: node.address})
    try:
        assert fabric.chaincodes[BASELINE] == node.address and list(fabric.chaincodes)[0] == "medfabric"
        with fabric.connect_as("hospital-a", "doctor") as gateway:
            network = gateway.get_network(CHANNEL)
            network.get_contract(BASELINE, "emr_index").submit_transaction("PutRecord", entry("on-node"))
            network.get_contract("medfabric", "emr_index").submit_transaction("PutRecord", entry("on-python"))
            got = json.loads(network.get_contract(BASELINE, "emr_index").evaluate_transaction("GetRecord", "on-node"))
            assert got["record_id"] == "on-node"
            with pytest.raises(EndorseError) as refused:  # the Node chaincode's own answer, through the fake peer
                network.get_contract(BASELINE, "emr_index").submit_transaction("PutRecord", entry("on-node"))
            assert "record on-node already exists" in refused.value.details[0].message
            with pytest.raises(GatewayError) as unknown:
                network.get_contract("no-such-chaincode").evaluate_transaction("emr_index:GetRecord", "on-node")
            assert unknown.value.grpc_code == grpc.StatusCode.NOT_FOUND
        assert index_keys(fabric, BASELINE) == {"on-node"}  # each chaincode its own namespace
        assert index_keys(fabric) == index_keys(fabric, "medfabric") == {"on-python"}
        # Blocks are the channel's: both chaincodes' transactions count.
        assert fabric.execute(fabric.connect_as("hospital-a", "doctor").caller, CHANNEL, BASELINE,
                              "emr_index:PutRecord", [entry("third")], commit=True)[1] == 3
    finally:
        fabric.close()


def test_the_application_chaincode_can_be_served_by_its_own_process(layout):
    with python_chaincode() as python:
        fabric = FakeFabric(load_topology(), layout, chaincodes={"medfabric": python.address})
        try:
            assert fabric._server is None and fabric.chaincodes == {"medfabric": python.address}
            with fabric.connect_as("hospital-a", "doctor") as gateway:
                contract = gateway.get_network(CHANNEL).get_contract("medfabric", "emr_index")
                contract.submit_transaction("PutRecord", entry("in-process-of-its-own"))
            assert index_keys(fabric) == {"in-process-of-its-own"}
        finally:
            fabric.close()
    assert python.process.poll() is not None  # stopped on exit


def test_the_chaincode_streams_have_no_deadline(layout):
    """FakePeer's stream ends after 60 s by default; a FakeFabric serving a benchmark for minutes must keep it."""
    fabric = fake_fabric.FakeFabric(load_topology(), layout)
    try:
        assert {peer.stream_timeout for channel in fabric._channels.values() for peer in channel.peers} == {None}
        assert {peer._stream.time_remaining() for channel in fabric._channels.values() for peer in channel.peers} \
            == {None}
    finally:
        fabric.close()


def test_a_chaincode_server_that_never_listens_is_reported_with_its_output(tmp_path, monkeypatch):
    from . import chaincode_servers

    monkeypatch.setattr(chaincode_servers, "node_chaincode_command",
                        lambda directory, address, chaincode_id: ["sh", "-c", "echo cannot start; exit 3"])
    monkeypatch.setattr(chaincode_servers, "baseline_missing", lambda: None)
    with pytest.raises(ChaincodeUnavailable, match=r"exited with status 3; its last output:\ncannot start"):
        with node_baseline(log=tmp_path / "node.log"):
            pass
    assert (tmp_path / "node.log").read_text() == "cannot start\n"


def test_without_node_modules_the_baseline_is_refused_saying_why(monkeypatch):
    from . import chaincode_servers

    monkeypatch.setattr(chaincode_servers, "baseline_missing", lambda: "node is not installed")
    with pytest.raises(ChaincodeUnavailable, match="the Node baseline cannot run here: node is not installed"):
        with node_baseline():
            pass


def test_the_gateway_serves_the_baseline_beside_medfabric_to_a_real_gateway_client(layout, node, tmp_path):
    topology, server = dry_run.serve(tmp_path / "topology.yaml", layout, {BASELINE: node.address})
    try:
        with connect_as("hospital-a", "doctor", topology=topology, layout=layout) as gateway:
            network = gateway.get_network(CHANNEL)
            submitted = network.get_contract(BASELINE, "emr_index").submit_async("PutRecord", arguments=[
                entry("through-the-gateway")])
            status = submitted.get_status()
            assert status.successful
            got = network.get_contract(BASELINE, "emr_index").evaluate_transaction("GetRecord", "through-the-gateway")
            assert json.loads(got)["record_id"] == "through-the-gateway"
            with network.get_chaincode_events(BASELINE, start_block=status.block_number) as events:
                event = next(events)
            assert (event.chaincode_name, event.event_name, event.transaction_id) == (
                BASELINE, "RecordPut", submitted.transaction_id)
            assert json.loads(event.payload)["record_id"] == "through-the-gateway"
        assert index_keys(server.fabric, BASELINE) == {"through-the-gateway"}
        assert index_keys(server.fabric) == set()
    finally:
        server.stop()


def test_the_dry_run_refuses_an_unknown_suite_before_starting_anything(capsys):
    assert dry_run.main(["--suite", "no-such-suite", "--bench-dir", "/nonexistent/never-made"]) == 2
    assert "no suite 'no-such-suite'" in capsys.readouterr().err


def test_the_dry_run_reports_cpu_per_process_group_per_round():
    results = {"rounds": [{"index": 0, "label": "write-node", "channel_kind": "baseline",
                           "cpu": {"caliper": {"percent": 51.25}, "chaincode-node": {"percent": 7.0}}}]}
    assert dry_run.cpu_rows(results) == [["0 write-node", "baseline", "51.2", "-", "-", "7.0"]]
    assert "THE FIGURES ARE NOT FABRIC'S" in dry_run.__doc__ and "not Fabric's" in dry_run.NOT_FABRIC
