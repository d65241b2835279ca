"""ContractGatewayServer: real Gateway clients, over TLS, against the real contracts.

A topology like network/topology.yaml at a free base port and a crypto tree made
for the test; our Python client (medfabric.consortium.connection.connect_as) and the
official Node client (@hyperledger/fabric-gateway, as Caliper uses it, driven by
tests/conformance/node/gateway_client.mjs) submit and read EMR index entries
through the duty peers' addresses, and are refused as a peer would refuse them.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature
from fabric_protos.peer import transaction_pb2

from medfabric.consortium.connection import connect_as
from medfabric.sharing.emr_index import EmrIndex
from medfabric.gateway import EndorseError, Gateway, GatewayError, SubmitError, connect
from medfabric.gateway.identity import Identity, Signer, X509Identity, ecdsa_signer, load_msp_identity
from medfabric.consortium.layout import NetworkLayout
from medfabric.consortium.topology import Domain, Peer, Topology

from ..topologies import random_base_port, write_topology
from ..conformance.test_official_gateway_client import OfficialClient, _install
from ..unit.gateway.fakegateway import issue
from .gateway_server import ENDORSE_FAILED, ContractGatewayServer

pytestmark = pytest.mark.timeout(180)  # a first `npm ci` of the official client included (3-10 s when cached)

PROJECT_ROOT = Path(__file__).resolve().parents[2]
PORT_ATTEMPTS = 20
CHAINCODE = "medfabric"
P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


# --- the consortium -----------------------------------------------------------------------------


@dataclass
class Served:
    topology: Topology
    layout: NetworkLayout
    server: ContractGatewayServer

    def connect(self, domain_id: str, user: str = "doctor") -> Gateway:
        """`user` of the domain, through its duty peer, as the application connects."""
        return connect_as(domain_id, user, topology=self.topology, layout=self.layout)

    def connect_with(self, identity: Identity, signer: Signer, domain_id: str = "hospital-a") -> Gateway:
        """Any identity and signer, through the domain's duty peer."""
        domain = self.topology.domain(domain_id)
        return connect(identity, signer, endpoint=domain.duty_peer.address,
                       tls_root_cert=self.layout.peer_tls_ca(domain).read_bytes(),
                       server_name_override=domain.duty_peer.host_name)

    def log_tx_ids(self, channel: str, record_id: str) -> list[str]:
        """The transaction ids of the record's access-log entries, from the channel's world state."""
        entries = [json.loads(value) for (_, key), value in self.server.fabric.world_state(channel).items()
                   if key.startswith("\x00log\x00")]
        return [entry["tx_id"] for entry in entries if entry.get("record_id") == record_id]


@pytest.fixture(scope="module")
def served(layout, tmp_path_factory) -> Served:
    folder = tmp_path_factory.mktemp("caliper-topology")
    for _ in range(PORT_ATTEMPTS):
        topology = write_topology(folder / "topology.yaml", random_base_port())
        server = ContractGatewayServer(topology, layout)
        try:
            server.start()
        except OSError:
            continue
        break
    else:
        pytest.fail(f"no free duty peer ports in {PORT_ATTEMPTS} attempts")
    yield Served(topology, layout, server)
    server.stop()


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def entry(record_id: str, domain: str = "hospital-a") -> dict:
    return {
        "record_id": record_id,
        "patient": f"patient-{record_id}",
        "domain": domain,
        "resource_type": "Observation",
        "ciphertext_sha256": hashlib.sha256(b"ciphertext " + record_id.encode()).hexdigest(),
        "plaintext_sha256": hashlib.sha256(b"plaintext " + record_id.encode()).hexdigest(),
        "size": 42,
        "location": f"https://{domain}.example/blobs/{record_id}",
    }


def as_json(record: dict) -> str:
    return json.dumps(record, sort_keys=True, separators=(",", ":"))


# --- our Python client --------------------------------------------------------------------------


def test_python_client_puts_and_reads_a_record(served):
    record_id = new_id("py")
    with served.connect("hospital-a") as gateway:
        index = EmrIndex(gateway.get_network("public"))
        stored = index.put(entry(record_id))
        assert (stored["record_id"], stored["owner_msp"], stored["version"]) == (record_id, "HospitalAMSP", 1)
        assert index.get(record_id) == stored
    with served.connect("hospital-b") as gateway:  # another domain, through its own duty peer
        assert EmrIndex(gateway.get_network("public")).get(record_id) == stored


def test_the_chaincode_sees_the_clients_transaction_id(served):
    record_id = new_id("txid")
    with served.connect("hospital-c", "researcher") as gateway:
        contract = gateway.get_network("public").get_contract(CHAINCODE, "emr_index")
        submitted = contract.submit_async("PutRecord", arguments=[as_json(entry(record_id, "hospital-c"))])
        status = submitted.get_status()
    assert status.code == transaction_pb2.VALID
    assert status.transaction_id == submitted.transaction_id
    assert status.block_number == served.server.block_of(submitted.transaction_id) > 0
    assert served.log_tx_ids("public", record_id) == [submitted.transaction_id]


def test_each_domain_has_its_local_channel(served):
    record_id = new_id("local")
    with served.connect("hospital-a", "Admin") as gateway:
        index = EmrIndex(gateway.get_network("hospital-a-local"))
        index.put(entry(record_id))
        assert index.get(record_id)["owner_msp"] == "HospitalAMSP"
    with served.connect_with(*_identity(served, "hospital-b", "doctor"), domain_id="hospital-a") as gateway:
        with pytest.raises(GatewayError) as refused:  # hospital-a's peer, but not hospital-b's channel
            EmrIndex(gateway.get_network("hospital-a-local")).get(record_id)
    assert refused.value.grpc_code == grpc.StatusCode.PERMISSION_DENIED
    with served.connect("hospital-b") as gateway:
        with pytest.raises(GatewayError) as refused:  # hospital-b's duty peer has not joined it
            EmrIndex(gateway.get_network("hospital-a-local")).get(record_id)
    assert refused.value.grpc_code == grpc.StatusCode.NOT_FOUND


def test_concurrent_submissions_commit_in_blocks_of_their_own(served):
    def put(number: int) -> int:
        domain_id = ("hospital-a", "hospital-b", "hospital-c")[number % 3]
        with served.connect(domain_id) as gateway:
            contract = gateway.get_network("public").get_contract(CHAINCODE, "emr_index")
            submitted = contract.submit_async("PutRecord", arguments=[as_json(entry(new_id("many"), domain_id))])
            assert submitted.get_status().successful
            return submitted.get_status().block_number

    with ThreadPoolExecutor(max_workers=12) as pool:
        blocks = list(pool.map(put, range(24)))
    assert len(set(blocks)) == 24


# --- refusals -----------------------------------------------------------------------------------


def test_a_chaincode_rejection_is_an_endorse_error_with_the_peers_detail(served):
    record_id = new_id("twice")
    with served.connect("hospital-a") as gateway:
        index = EmrIndex(gateway.get_network("public"))
        index.put(entry(record_id))
        with pytest.raises(EndorseError) as refused:
            index.put(entry(record_id))
        with pytest.raises(GatewayError) as missing:
            index.get("no-such-record")
    error = refused.value
    assert (error.grpc_code, error.message) == (grpc.StatusCode.ABORTED, ENDORSE_FAILED)
    assert [detail.msp_id for detail in error.details] == ["HospitalAMSP"]
    assert f"record {record_id} already exists" in error.details[0].message
    assert error.transaction_id and served.server.block_of(error.transaction_id) is None
    assert missing.value.grpc_code == grpc.StatusCode.UNKNOWN
    assert "record no-such-record not found" in missing.value.details[0].message


def _identity(served: Served, domain_id: str, user: str) -> tuple[X509Identity, Signer]:
    domain = served.topology.domain(domain_id)
    return load_msp_identity(served.layout.user_msp(domain, user), domain.msp_id)


def _other_signature(signer: Signer) -> Signer:
    """A valid signature by the right key, of other bytes."""
    return lambda digest: signer(hashlib.sha256(digest).digest())


def _high_s(signer: Signer) -> Signer:
    """The same signature with s replaced by n - s: valid ECDSA, but Fabric accepts low-S only."""
    def sign(digest: bytes) -> bytes:
        r, s = decode_dss_signature(signer(digest))
        return encode_dss_signature(r, P256_ORDER - s)
    return sign


def _foreign_ca_identity(msp_id: str) -> tuple[X509Identity, Signer]:
    """A client certificate claiming `msp_id`, issued by a CA of no one's."""
    ca = issue("ca.hospital-a.medfabric.local", ca=True)
    client = issue("doctor@hospital-a.medfabric.local", ca)
    return X509Identity(msp_id, client.cert_pem), ecdsa_signer(client.private_key)


def _refusals(served: Served) -> dict[str, tuple[X509Identity, Signer, str]]:
    """Who submits, signing how, and what the refusal says."""
    doctor, doctor_signer = _identity(served, "hospital-a", "doctor")
    domain: Domain = served.topology.domain("hospital-a")
    duty: Peer = domain.duty_peer
    peer_identity, peer_signer = load_msp_identity(served.layout.peer_dir(domain, duty) / "msp", domain.msp_id)
    orderer_admin, orderer_signer = load_msp_identity(served.layout.orderer_admin_dir(domain) / "msp",
                                                      domain.orderer_msp_id)
    return {
        "MSP outside the consortium": (X509Identity("IntruderMSP", doctor.certificate_pem), doctor_signer,
                                       "MSP 'IntruderMSP' is not a member of the consortium"),
        "orderer organisation": (orderer_admin, orderer_signer, "is not a member of the consortium"),
        "certificate of another CA": (*_foreign_ca_identity("HospitalAMSP"), "is not issued by the CA of HospitalAMSP"),
        "certificate of another member": (X509Identity("HospitalBMSP", doctor.certificate_pem), doctor_signer,
                                          "is not issued by the CA of HospitalBMSP"),
        "altered signature": (doctor, _other_signature(doctor_signer), "signature does not verify"),
        "high-S signature": (doctor, _high_s(doctor_signer), "high-S"),
        "peer identity": (peer_identity, peer_signer, "is a peer identity, which may not propose transactions"),
    }


@pytest.mark.parametrize("case", ["MSP outside the consortium", "orderer organisation", "certificate of another CA",
                                  "certificate of another member", "altered signature", "high-S signature",
                                  "peer identity"])
def test_a_creator_the_msps_refuse_is_denied(served, case):
    identity, signer, reason = _refusals(served)[case]
    record_id = new_id("denied")
    with served.connect_with(identity, signer) as gateway:
        contract = gateway.get_network("public").get_contract(CHAINCODE, "emr_index")
        with pytest.raises(EndorseError) as submitting:
            contract.submit_transaction("PutRecord", as_json(entry(record_id)))
        with pytest.raises(GatewayError) as evaluating:
            contract.evaluate_transaction("GetRecord", record_id)
    for refused in (submitting.value, evaluating.value):
        assert refused.grpc_code == grpc.StatusCode.PERMISSION_DENIED
        assert reason in refused.message
    with served.connect("hospital-a") as gateway:
        assert EmrIndex(gateway.get_network("public")).find(record_id) is None


def test_a_transaction_signed_by_another_key_is_not_submitted(served):
    """The proposal is signed right, the endorsed transaction is not: Submit refuses it."""
    doctor, doctor_signer = _identity(served, "hospital-a", "doctor")
    signatures = iter([doctor_signer, _other_signature(doctor_signer)])
    with served.connect_with(doctor, lambda digest: next(signatures)(digest)) as gateway:
        contract = gateway.get_network("public").get_contract(CHAINCODE, "emr_index")
        with pytest.raises(SubmitError) as refused:
            contract.submit_transaction("PutRecord", as_json(entry(new_id("unsigned"))))
    assert refused.value.grpc_code == grpc.StatusCode.PERMISSION_DENIED
    assert "transaction signature does not verify" in refused.value.message


# --- the official Node client, as Caliper uses it -------------------------------------------------


@pytest.fixture(scope="module")
def node() -> str:
    """node, with the pinned official client installed in tests/conformance/node (`npm ci` there if needed)."""
    reason = _install()
    if reason:
        pytest.skip(reason)
    return shutil.which("node")


def _official(node: str, served: Served, domain_id: str, user: str) -> OfficialClient:
    """The official client as `user` of the domain, at its duty peer, trusting the peer TLS CA and checking the
    address (127.0.0.1) against the certificate, as Caliper's network configuration connects."""
    domain = served.topology.domain(domain_id)
    msp = served.layout.user_msp(domain, user)
    return OfficialClient(node, {
        "endpoint": domain.duty_peer.address,
        "tlsRootCertPath": str(served.layout.peer_tls_ca(domain)),
        "mspId": domain.msp_id,
        "certPath": str(next((msp / "signcerts").glob("*.pem"))),
        "keyPath": str(msp / "keystore" / "priv_sk"),
        "channel": "public",
        "chaincode": CHAINCODE,
        "contract": "emr_index",
        "timeoutMs": 10_000,
    })


def _ok(result: dict) -> dict:
    assert result["ok"], f"the official client's {result['op']} failed: {result['error']}"
    return result


def _record(result: dict) -> dict:
    return json.loads(base64.b64decode(_ok(result)["result"]))


def test_official_node_client_submits_and_reads_as_two_domains(node, served):
    record_a, record_b = new_id("node-a"), new_id("node-b")
    put_a, read_a, again_a = _official(node, served, "hospital-a", "doctor").run([
        {"op": "submitAsync", "name": "PutRecord", "args": [as_json(entry(record_a))]},
        {"op": "evaluateTransaction", "name": "GetRecord", "args": [record_a]},
        {"op": "submitTransaction", "name": "PutRecord", "args": [as_json(entry(record_a))]},
    ])
    status = _ok(put_a)["status"]
    assert status["successful"] and status["code"] == transaction_pb2.VALID
    assert status["transactionId"] == put_a["transactionId"]
    assert status["blockNumber"] == served.server.block_of(put_a["transactionId"])
    assert served.log_tx_ids("public", record_a) == [put_a["transactionId"]]
    assert _record(read_a)["owner_msp"] == "HospitalAMSP"
    error = again_a["error"]
    assert not again_a["ok"] and error["name"] == "EndorseError"
    assert (error["code"], error["message"]) == (grpc.StatusCode.ABORTED.value[0], f"10 ABORTED: {ENDORSE_FAILED}")
    assert f"record {record_a} already exists" in error["details"][0]["message"]

    put_b, read_both_a, read_both_b, events = _official(node, served, "hospital-b", "doctor").run([
        {"op": "submitTransaction", "name": "PutRecord", "args": [as_json(entry(record_b, "hospital-b"))]},
        {"op": "evaluateTransaction", "name": "GetRecord", "args": [record_a]},
        {"op": "evaluateTransaction", "name": "GetRecord", "args": [record_b]},
        {"op": "chaincodeEvents", "startBlock": status["blockNumber"], "count": 1},
    ])
    assert _record(put_b)["owner_msp"] == "HospitalBMSP"
    assert _record(read_both_a) == _record(read_a)
    assert _record(read_both_b) == _record(put_b)
    [event] = _ok(events)["events"]
    assert (event["transactionId"], event["eventName"], event["blockNumber"]) == (
        put_a["transactionId"], "RecordPut", status["blockNumber"])


# --- the command line ---------------------------------------------------------------------------


def test_command_line_serves_until_sigterm(layout, tmp_path):
    environment = {**os.environ, "MEDFABRIC_BUILD_DIR": str(layout.root)}
    for _ in range(PORT_ATTEMPTS):
        topology = write_topology(tmp_path / "topology.yaml", random_base_port())
        process = subprocess.Popen(
            [sys.executable, "-m", "tests.caliper.gateway_server", "--topology", str(tmp_path / "topology.yaml")],
            cwd=PROJECT_ROOT, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        line = process.stdout.readline()
        if line.startswith("ready: "):
            break
        _, stderr = process.communicate(timeout=10)
        assert "cannot listen" in stderr, f"the server did not start:\n{line}{stderr}"
    else:
        pytest.fail(f"no free duty peer ports in {PORT_ATTEMPTS} attempts")
    try:
        assert json.loads(line.removeprefix("ready: ")) == {
            domain.duty_peer.host_name: domain.duty_peer.address for domain in topology.domains}
        record_id = new_id("cli")
        with connect_as("hospital-c", "Admin", topology=topology, layout=layout) as gateway:
            index = EmrIndex(gateway.get_network("hospital-c-local"))
            assert index.put(entry(record_id, "hospital-c")) == index.get(record_id)
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=10)
    assert process.returncode == 0, stderr
    counts = json.loads(stderr.strip().splitlines()[-1].removeprefix("stopped: "))
    assert counts == {"Endorse": 1, "Submit": 1, "CommitStatus": 1, "Evaluate": 1}
