"""The official Node chaincode shim, driven by our FakePeer: does the fake behave like a peer?

tests/unit/chaincode/fakepeer.py plays the peer for our Python runtime. Here the same FakePeer
drives Hyperledger's own Node shim (npm fabric-shim + fabric-contract-api 2.5.8, pinned in
chaincode_node/package.json) run as a chaincode server (CCaaS: `fabric-chaincode-node server`)
with chaincode_node/probe_contract.js, a mirror of tests/unit/chaincode/probe_contract.py.
What the official shim accepts from the fake, and how it answers, is evidence that the fake
speaks the protocol as a peer does.

Three parts:
* the official shim against the fake peer, scenario by scenario;
* `test_same_answers_as_our_runtime`: the same invocations sent to the Node chaincode and to
  our runtime (each behind its own FakePeer) must be answered alike;
* `test_difference_*`: where the two differ on the wire, both answers are pinned side by side,
  so that a change on either side shows up here.

Needs node (and npm once): `npm ci` runs in chaincode_node/ when node_modules is missing; the
module is skipped only when node is absent or that install fails.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from concurrent.futures import wait
from pathlib import Path

import pytest
from cryptography.x509.oid import NameOID
from fabric_protos.peer import chaincode_shim_pb2

from ..processes import stop_process
from ..unit.chaincode.fakepeer import CHANNEL, DEFAULT_TIMESTAMP, WAIT, FakePeer, TxResult
from ..unit.chaincode.pki import USER_NAME, Credential, issue, name, serialized_identity

pytestmark = pytest.mark.timeout(60)
Msg = chaincode_shim_pb2.ChaincodeMessage

NODE_DIR = Path(__file__).parent / "chaincode_node"
CHAINCODE_ID = "probe_1.0:0123abcd"
MSP_ID = "HospitalAMSP"
STARTUP_SECONDS = 20.0
PINNED = {"fabric-shim": "2.5.8", "fabric-contract-api": "2.5.8", "class-transformer": "0.4.0"}
ISO_TIMESTAMP = DEFAULT_TIMESTAMP.isoformat()  # "2025-03-04T05:06:07.891000+00:00"
SUBJECT = {  # the user's DN as each side writes it in ClientIdentity's id
    "node": "/C=US/ST=North Carolina/O=Hyperledger/OU=client/OU=hospital-a/CN=doctor1",
    "runtime": "CN=doctor1,OU=client+OU=hospital-a,O=Hyperledger,ST=North Carolina,C=US",
}
ISSUER = {"node": "/C=US/O=hospital-a/CN=ca", "runtime": "CN=ca,O=hospital-a,C=US"}


# The Node chaincode server -----------------------------------------------------------------------


def _install(node_dir: Path = NODE_DIR) -> str | None:
    """Installs the pinned packages of `node_dir` if needed; returns why the module must be skipped, or None."""
    if shutil.which("node") is None:
        return "node is not installed"
    if (node_dir / "node_modules").is_dir():
        return None
    where = node_dir.relative_to(Path(__file__).parents[2])
    npm = shutil.which("npm")
    if npm is None:
        return f"npm is not installed (needed once, to install {where}/node_modules)"
    try:
        done = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"], cwd=node_dir, capture_output=True, text=True, timeout=300
        )
    except subprocess.TimeoutExpired:
        return f"`npm ci` in {where} took more than 300 s"
    if done.returncode != 0:
        shutil.rmtree(node_dir / "node_modules", ignore_errors=True)  # let the next run try again
        lines = (done.stderr or done.stdout).strip().splitlines()
        tail = " | ".join([line for line in lines if "npm error" in line][:3] or lines[-3:])
        return f"`npm ci` in {where} failed ({done.returncode}): {tail}"
    return None


@pytest.fixture(scope="module")
def node_installed() -> None:
    reason = _install()
    if reason:
        pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class NodeChaincode:
    """`fabric-chaincode-node server` of the package in `node_dir` (probe_contract.js by default), plaintext, on a
    free local port."""

    def __init__(self, log_path: Path, node_dir: Path = NODE_DIR, chaincode_id: str = CHAINCODE_ID):
        self.log_path = log_path
        self.port = _free_port()
        # yargs reads CORE_* variables as options (TLS files among them): start from a clean slate.
        env = {key: value for key, value in os.environ.items() if not key.startswith("CORE_")}
        env["CORE_CHAINCODE_LOGGING_LEVEL"] = "info"
        command = [
            shutil.which("node") or "node",
            str(node_dir / "node_modules" / "fabric-shim" / "cli.js"),
            "server",
            "--chaincode-address",
            f"127.0.0.1:{self.port}",
            "--chaincode-id",
            chaincode_id,
        ]
        with open(log_path, "wb") as log:
            # cwd: --module-path defaults to it, and package.json "main" names the contract module.
            self.process = subprocess.Popen(command, cwd=node_dir, env=env, stdout=log, stderr=subprocess.STDOUT)
        self._wait_until_listening()

    def _wait_until_listening(self) -> None:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            if self.process.poll() is not None:
                pytest.fail(f"the Node chaincode server exited with {self.process.returncode}:\n{self.log()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    pytest.fail(f"the Node chaincode server did not listen within {STARTUP_SECONDS:g} s:\n{self.log()}")
                time.sleep(0.05)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        stop_process(self.process, 5)


@pytest.fixture(scope="module")
def node_server(node_installed, tmp_path_factory) -> Iterator[NodeChaincode]:
    server = NodeChaincode(tmp_path_factory.mktemp("node-chaincode") / "server.log")
    yield server
    server.stop()


# Identities and peers ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def user() -> Credential:
    """A Fabric CA style user: several OUs and a `role` attribute (pki.USER_NAME)."""
    ca = issue(
        name((NameOID.COUNTRY_NAME, "US"), (NameOID.ORGANIZATION_NAME, "hospital-a"), (NameOID.COMMON_NAME, "ca")),
        ca=True,
    )
    return issue(USER_NAME, ca, attributes={"role": "doctor", "hf.EnrollmentID": "doctor1"})


def _connect(port: int, user: Credential) -> FakePeer:
    fake = FakePeer(f"127.0.0.1:{port}", serialized_identity(MSP_ID, user), user.key)
    fake.connect()
    return fake


@pytest.fixture
def peer(node_server: NodeChaincode, user: Credential) -> Iterator[FakePeer]:
    """A FakePeer on its own stream to the Node chaincode server."""
    fake = _connect(node_server.port, user)
    yield fake
    fake.close()
    assert node_server.process.poll() is None, f"the Node chaincode server died:\n{node_server.log()}"


@pytest.fixture(scope="module")
def runtime_port() -> Iterator[int]:
    """Our Python runtime serving the Python probe contract, as tests/unit/chaincode starts it."""
    from medfabric_chaincode.runtime import ChaincodeServer, ContractRouter, ServerConfig

    from ..unit.chaincode.probe_contract import ProbeContract

    config = ServerConfig(address="127.0.0.1:0", chaincode_id=CHAINCODE_ID, tls=None)
    server = ChaincodeServer(config, ContractRouter([ProbeContract]))
    port = server.start()
    yield port
    server.stop(0)


@pytest.fixture
def runtime_peer(runtime_port: int, user: Credential) -> Iterator[FakePeer]:
    fake = _connect(runtime_port, user)
    yield fake
    fake.close()


def _fill(peer: FakePeer, keys: list[str]) -> None:
    for key in keys:
        peer.state[("", key)] = key.upper().encode()


def _shape(result: TxResult) -> tuple:
    return result.kind, result.status, result.message, result.payload


def _event(result: TxResult) -> tuple | None:
    event = result.event
    return None if event is None else (event.event_name, event.payload, event.tx_id, event.chaincode_id)


# The packages ------------------------------------------------------------------------------------


def test_the_pinned_packages_are_installed(node_installed):
    installed = {
        package: json.loads((NODE_DIR / "node_modules" / package / "package.json").read_text())["version"]
        for package in PINNED
    }
    assert installed == PINNED


# The official shim against the fake peer ---------------------------------------------------------


def test_handshake_registers_the_chaincode_id(peer):
    assert peer.registered.result(timeout=WAIT) == CHAINCODE_ID
    result = peer.invoke("Echo", "héllo")  # the first contract is the default one
    assert (*_shape(result), result.event) == ("COMPLETED", 200, "", "héllo".encode(), None)
    assert peer.invoke("probe:Echo", "prefixed").payload == b"prefixed"


def test_twenty_concurrent_transactions_share_one_stream(peer):
    for index in range(18):
        peer.state[("", f"key{index}")] = f"value{index}".encode()
    # The peer answers no request until all twenty wait: only transactions run concurrently pass.
    peer.hold_replies_until(20)
    pending = [peer.submit("Get", f"key{index}") for index in range(18)]
    # The same tx id on two channels is two transactions (both sides key them by channel + tx id).
    twins = [peer.submit("Get", "key0", channel=channel, nonce=b"twin" * 6) for channel in (CHANNEL, "other")]
    assert not wait(pending + twins, timeout=WAIT).not_done
    assert [future.result().payload for future in pending] == [f"value{index}".encode() for index in range(18)]
    assert [_shape(twin.result()) for twin in twins] == [("COMPLETED", 200, "", b"value0")] * 2
    assert twins[0].result().tx_id == twins[1].result().tx_id
    assert peer.requests == ["GET_STATE"] * 20


def test_a_slow_transaction_does_not_hold_up_others(peer):
    slow = peer.submit("Wait")  # one second
    assert peer.invoke("Echo", "quick").payload == b"quick"
    assert not slow.done()
    assert slow.result(timeout=WAIT).payload == b"released"


def test_put_get_delete_round_trip(peer):
    value = bytes(range(256))  # every byte value: the fake must pass bytes through untouched
    put = peer.invoke("Put", "patient-1", value)
    assert (put.status, put.payload, put.writes) == (200, b"", {("", "patient-1"): value})
    assert peer.state[("", "patient-1")] == value
    assert base64.b64decode(peer.invoke("GetBase64", "patient-1").payload) == value
    delete = peer.invoke("Delete", "patient-1")
    assert (delete.status, delete.writes) == (200, {("", "patient-1"): None})
    assert ("", "patient-1") not in peer.state
    assert _shape(peer.invoke("Get", "patient-1")) == ("COMPLETED", 200, "", b"")  # missing reads as empty
    assert peer.requests == ["PUT_STATE", "GET_STATE", "DEL_STATE", "GET_STATE"]


def test_range_query_spans_several_batches_in_key_order(peer):
    _fill(peer, ["b", "a", "d", "c", "e", "f"])
    assert peer.invoke("Range", "b", "f").json() == ["b=B", "c=C", "d=D", "e=E"]
    # Batches of two (the fake's batch size): b c | d e; the shim fetches the second, then closes.
    assert peer.requests == ["GET_STATE_BY_RANGE", "QUERY_STATE_NEXT", "QUERY_STATE_CLOSE"]


def test_an_iterator_closed_early(peer):
    _fill(peer, ["a", "b", "c", "d", "e"])
    assert peer.invoke("RangeFirst", "", "").payload == b"a"
    assert peer.requests == ["GET_STATE_BY_RANGE", "QUERY_STATE_CLOSE"]
    assert peer.invoke("Range", "", "").json() == ["a=A", "b=B", "c=C", "d=D", "e=E"]  # nothing left behind


def test_open_range_skips_composite_keys(peer):
    _fill(peer, ["a", "z"])
    peer.state[("", "\x00obj\x00x\x00")] = b"composite"
    # The shim sends "\x01" for an empty start key; the fake's key order must keep U+0000 keys out.
    assert peer.invoke("Range", "", "").json() == ["a=A", "z=Z"]


def test_range_pagination_follows_bookmarks(peer):
    _fill(peer, ["k1", "k2", "k3", "k4", "k5"])
    first = peer.invoke("RangePage", "k1", "", "2", "").json()
    assert first == {"entries": ["k1=K1", "k2=K2"], "count": 2, "bookmark": "k3"}
    second = peer.invoke("RangePage", "k1", "", "2", first["bookmark"]).json()
    assert second == {"entries": ["k3=K3", "k4=K4"], "count": 2, "bookmark": "k5"}
    last = peer.invoke("RangePage", "k1", "", "2", second["bookmark"]).json()
    assert last == {"entries": ["k5=K5"], "count": 1, "bookmark": ""}
    # A page larger than the fake's batch: the shim takes the metadata from the first response.
    assert peer.invoke("RangePage", "k2", "", "3", "").json() == {
        "entries": ["k2=K2", "k3=K3", "k4=K4"],
        "count": 3,
        "bookmark": "k5",
    }


def test_composite_keys_and_partial_queries(peer):
    put = peer.invoke("PutComposite", "visit", '["p1","2025-01-02"]', "v1")
    assert put.payload == b"\x00visit\x00p1\x002025-01-02\x00"
    peer.invoke("PutComposite", "visit", '["p1","2025-02-03"]', "v2")
    peer.invoke("PutComposite", "visit", '["p10","2025-01-01"]', "other patient")
    peer.invoke("PutComposite", "visits", '["p1","x"]', "other type")
    assert peer.invoke("Partial", "visit", '["p1"]').json() == [["p1", "2025-01-02"], ["p1", "2025-02-03"]]
    # The end key is the prefix + U+10FFFF, sent as UTF-8: the fake must order it after every key.
    assert len(peer.invoke("Partial", "visit", "[]").json()) == 3
    page = peer.invoke("PartialPage", "visit", '["p1"]', "1", "").json()
    assert page == {
        "entries": ["\x00visit\x00p1\x002025-01-02\x00=v1"],
        "bookmark": "\x00visit\x00p1\x002025-02-03\x00",
        "count": 1,
    }
    assert peer.invoke("PartialPage", "visit", '["p1"]', "1", page["bookmark"]).json() == {
        "entries": ["\x00visit\x00p1\x002025-02-03\x00=v2"],
        "bookmark": "",
        "count": 1,
    }


def test_rich_queries(peer):
    peer.state[("", "r1")] = b'{"kind":"lab","n":1}'
    peer.state[("", "r2")] = b'{"kind":"scan"}'
    peer.state[("", "r3")] = b'{"kind":"lab"}'
    selector = '{"selector":{"kind":"lab"}}'
    assert peer.invoke("Query", selector).json() == ['r1={"kind":"lab","n":1}', 'r3={"kind":"lab"}']
    assert peer.invoke("QueryPage", selector, "1", "").json() == {
        "entries": ['r1={"kind":"lab","n":1}'],
        "bookmark": "r3",
        "count": 1,
    }
    assert peer.requests == ["GET_QUERY_RESULT", "QUERY_STATE_CLOSE", "GET_QUERY_RESULT", "QUERY_STATE_CLOSE"]


def test_history_for_key(peer):
    first = peer.invoke("Put", "h", "one")
    second = peer.invoke("Put", "h", "two")
    deleted = peer.invoke("Delete", "h")
    assert peer.invoke("History", "h").json() == [  # newest first
        {"tx_id": deleted.tx_id, "value": "", "is_delete": True, "at": ISO_TIMESTAMP},
        {"tx_id": second.tx_id, "value": "two", "is_delete": False, "at": ISO_TIMESTAMP},
        {"tx_id": first.tx_id, "value": "one", "is_delete": False, "at": ISO_TIMESTAMP},
    ]
    # Three entries in batches of two; the shim closes the iterator it has read to the end.
    assert peer.requests[-3:] == ["GET_HISTORY_FOR_KEY", "QUERY_STATE_NEXT", "QUERY_STATE_CLOSE"]


def test_private_data(peer):
    put = peer.invoke("PutPrivate", "hospitalA", "p-1", transient={"value": b"blood type 0+"})
    assert put.writes == {("hospitalA", "p-1"): b"blood type 0+"}
    assert ("", "p-1") not in peer.state
    assert peer.invoke("GetPrivate", "hospitalA", "p-1").payload == b"blood type 0+"
    digest = hashlib.sha256(b"blood type 0+").hexdigest()
    assert peer.invoke("PrivateHash", "hospitalA", "p-1").payload == digest.encode()
    assert peer.invoke("PrivateRange", "hospitalA", "", "").json() == ["p-1=blood type 0+"]
    assert peer.invoke("DeletePrivate", "hospitalA", "p-1").writes == {("hospitalA", "p-1"): None}
    assert peer.invoke("PurgePrivate", "hospitalA", "p-1").writes == {("hospitalA", "p-1"): None}
    assert peer.requests == [
        "PUT_STATE",
        "GET_STATE",
        "GET_PRIVATE_DATA_HASH",
        "GET_STATE_BY_RANGE",
        "QUERY_STATE_CLOSE",
        "DEL_STATE",
        "PURGE_PRIVATE_DATA",
    ]


def test_state_based_endorsement_policy(peer):
    assert peer.invoke("GetEndorsement", "asset").payload == b""
    assert peer.invoke("SetEndorsement", "asset", b"\x0a\x06policy").status == 200
    assert peer.state_metadata[("", "asset")] == {"VALIDATION_PARAMETER": b"\x0a\x06policy"}
    assert peer.invoke("GetEndorsement", "asset").payload == b"\x0a\x06policy"
    assert peer.requests == ["GET_STATE_METADATA", "PUT_STATE_METADATA", "GET_STATE_METADATA"]


def test_transaction_facts_come_from_the_proposal(peer):
    nonce = bytes(range(24))
    result = peer.invoke("Proposal", nonce=nonce, channel="hospital-a-local", transient={"b": b"2", "a": b"1"})
    assert result.json() == {
        "tx_id": hashlib.sha256(nonce + peer.creator).hexdigest(),
        "channel_id": "hospital-a-local",
        "timestamp": ISO_TIMESTAMP,
        "binding": hashlib.sha256(nonce + peer.creator + bytes(8)).hexdigest(),  # epoch 0, little endian
        "creator": peer.creator.hex(),
        "transient": ["a", "b"],
        "args": ["Proposal"],
    }
    assert result.tx_id == hashlib.sha256(nonce + peer.creator).hexdigest()


def test_creator_identity(peer):
    assert peer.invoke("Identity", "role").json() == {
        "msp_id": MSP_ID,
        "id": f"x509::{SUBJECT['node']}::{ISSUER['node']}",
        "attribute": "doctor",
    }


def test_event_is_put_in_the_completed_message(peer):
    result = peer.invoke("Emit", "RecordShared", "false")
    assert (result.kind, result.status, result.writes) == ("COMPLETED", 200, {("", "emitted"): b"RecordShared"})
    # Name and payload only: the peer fills in tx_id and chaincode_id (core/chaincode/chaincode_support.go).
    assert _event(result) == ("RecordShared", b"payload", "", "")


def test_contract_errors_are_completed_with_status_500(peer):
    assert _shape(peer.invoke("Fail", "refusal")) == ("COMPLETED", 500, "refused:\n  first line\n  second line", b"")
    unexpected = peer.invoke("Fail", "crash")
    assert unexpected.kind == "COMPLETED" and unexpected.status == 500
    assert unexpected.message.startswith("Cannot read properties of null")
    assert peer.invoke("Nope").message == "You've asked to invoke a function that does not exist: Nope"
    assert peer.invoke("ghost:Tx").message == "Contract name is not known: ghost"
    assert peer.invoke("Echo").message == "Expected 1 parameters, but 0 have been supplied"


def test_error_from_the_peer_fails_the_transaction(peer):
    peer.state[("", "k")] = b"kept"
    peer.failures["GET_STATE_BY_RANGE"] = "range queries are disabled"
    assert _shape(peer.invoke("Range", "a", "z")) == ("COMPLETED", 500, "range queries are disabled", b"")
    peer.failures["PUT_STATE"] = "read-only peer"
    assert _shape(peer.invoke("Put", "k", "new")) == ("COMPLETED", 500, "read-only peer", b"")
    assert peer.state[("", "k")] == b"kept"


def test_init_is_answered_like_a_transaction(peer):
    assert _shape(peer.invoke("Echo", "init ok", init=True)) == ("COMPLETED", 200, "", b"init ok")
    # Even a failed INIT is a COMPLETED with status 500 (see test_difference_failed_init).
    assert _shape(peer.invoke("Fail", "refusal", init=True)) == (
        "COMPLETED",
        500,
        "refused:\n  first line\n  second line",
        b"",
    )


def test_get_metadata(peer):
    result = peer.invoke("org.hyperledger.fabric:GetMetadata")
    assert result.status == 200
    metadata = result.json()
    assert set(metadata) == {"$schema", "contracts", "info", "components"}
    assert set(metadata["contracts"]) == {"probe", "org.hyperledger.fabric"}
    probe = metadata["contracts"]["probe"]
    assert probe["contractInstance"] == {"name": "probe", "default": True}
    put = next(t for t in probe["transactions"] if t["name"] == "Put")
    assert put["tags"] == ["SUBMIT", "submitTx"]
    assert [(p["name"], p["schema"]) for p in put["parameters"]] == [
        ("arg0", {"type": "string"}),
        ("arg1", {"type": "string"}),
    ]
    assert metadata["info"] == {"version": "0.0.0", "title": "medfabric-chaincode-shim-conformance"}


def test_malformed_transaction_payload_is_answered_with_error(peer):
    peer.send(Msg(type=Msg.TRANSACTION, txid="tx-bad-input", channel_id=CHANNEL, payload=b"\xff\xff\xff"))
    reply = peer.protocol_errors.get(timeout=WAIT)
    # The Node shim sends the undecodable payload back as the error text.
    assert (reply.type, reply.txid, reply.channel_id) == (Msg.ERROR, "tx-bad-input", CHANNEL)
    assert reply.payload == b"\xff\xff\xff"
    assert peer.invoke("Echo", "still serving").payload == b"still serving"


def test_keepalive_ends_the_node_chaincode(node_installed, user, tmp_path):
    """fabric-shim 2.5.8 does not know KEEPALIVE: in the ready state it logs and exits with status 1.

    The Go shim and our runtime echo it. A peer sends KEEPALIVE only with chaincode.keepalive > 0
    (core.yaml's default, 0, sends none) and ignores what comes back; the fake peer sends none itself.
    """
    server = NodeChaincode(tmp_path / "server.log")
    try:
        fake = _connect(server.port, user)
        try:
            assert fake.invoke("Echo", "before").payload == b"before"
            fake.send(Msg(type=Msg.KEEPALIVE, payload=b"ping"))
            assert server.process.wait(timeout=WAIT) == 1
            assert fake.keepalives.empty()
            assert "Received unknown message from the peer. Exiting." in server.log()
        finally:
            fake.close()
    finally:
        server.stop()


# The same invocations, sent to the Node chaincode and to our runtime ---------------------------


def _nonce(label: str) -> bytes:
    return hashlib.sha256(label.encode()).digest()[:24]  # the same tx ids on both sides


def _answers(peer: FakePeer, setup: Callable[[FakePeer], None], steps: list[tuple]) -> list[tuple]:
    setup(peer)
    answers = []
    for index, (args, options) in enumerate(steps):
        result = peer.invoke(*args, nonce=_nonce(f"{args}-{index}"), **options)
        try:
            payload = json.loads(result.payload)  # our runtime writes canonical JSON, Node insertion order
        except ValueError:
            payload = result.payload
        answers.append((result.kind, result.status, result.message, payload, _event(result), result.writes))
    return answers


def _seed(peer: FakePeer) -> None:
    _fill(peer, ["a", "b", "c", "d", "e", "k1", "k2", "k3"])
    peer.state[("", "r1")] = b'{"kind":"lab"}'
    peer.state[("", "r2")] = b'{"kind":"scan"}'
    peer.state[("", "\x00visit\x00p1\x00d1\x00")] = b"v1"
    peer.state[("", "\x00visit\x00p1\x00d2\x00")] = b"v2"
    peer.state[("", "\x00visit\x00p2\x00d1\x00")] = b"v3"


def _no_setup(peer: FakePeer) -> None:
    pass


SAME_SCENARIOS = {
    "echo": (_no_setup, [(("Echo", "héllo"), {})]),
    "put-get-delete": (
        _no_setup,
        [(("Put", "k", "v"), {}), (("Get", "k"), {}), (("Delete", "k"), {}), (("Get", "k"), {})],
    ),
    "range": (_seed, [(("Range", "", ""), {}), (("Range", "b", "d"), {}), (("RangeFirst", "c", ""), {})]),
    "range-pages": (
        _seed,
        [(("RangePage", "a", "k9", "3", ""), {}), (("RangePage", "a", "k9", "3", "d"), {})],
    ),
    "composite": (
        _seed,
        [
            (("PutComposite", "visit", '["p3","d1"]', "v4"), {}),
            (("Partial", "visit", '["p1"]'), {}),
            (("Partial", "visit", "[]"), {}),
            (("PartialPage", "visit", "[]", "2", ""), {}),
        ],
    ),
    "rich-query": (
        _seed,
        [(("Query", '{"selector":{"kind":"lab"}}'), {}), (("QueryPage", '{"selector":{}}', "1", ""), {})],
    ),
    "history": (
        _no_setup,
        [(("Put", "h", "one"), {}), (("Put", "h", "two"), {}), (("Delete", "h"), {}), (("History", "h"), {})],
    ),
    "private-data": (
        _no_setup,
        [
            (("PutPrivate", "c1", "p-1"), {"transient": {"value": b"secret"}}),
            (("GetPrivate", "c1", "p-1"), {}),
            (("PrivateHash", "c1", "p-1"), {}),
            (("PrivateRange", "c1", "", ""), {}),
            (("DeletePrivate", "c1", "p-1"), {}),
            (("PurgePrivate", "c1", "p-1"), {}),
        ],
    ),
    "endorsement-policy": (
        _no_setup,
        [(("GetEndorsement", "k"), {}), (("SetEndorsement", "k", "policy"), {}), (("GetEndorsement", "k"), {})],
    ),
    "proposal": (_no_setup, [(("Proposal",), {"channel": "other", "transient": {"b": b"2", "a": b"1"}})]),
    "event": (_no_setup, [(("Emit", "RecordShared", "false"), {})]),
}


@pytest.mark.parametrize("scenario", SAME_SCENARIOS)
def test_same_answers_as_our_runtime(scenario, peer, runtime_peer):
    setup, steps = SAME_SCENARIOS[scenario]
    node, ours = _answers(peer, setup, steps), _answers(runtime_peer, setup, steps)
    assert node == ours
    assert all(answer[:2] == ("COMPLETED", 200) for answer in node)


# Where the official shim and our runtime differ on the wire -------------------------------------


def test_difference_failed_init(peer, runtime_peer):
    node, ours = (p.invoke("Fail", "refusal", init=True) for p in (peer, runtime_peer))
    assert _shape(node) == ("COMPLETED", 500, "refused:\n  first line\n  second line", b"")
    assert _shape(ours) == ("ERROR", 500, "refused: first line second line", b"")  # as the Go shim: ERROR


def test_difference_multi_line_error_message(peer, runtime_peer):
    node, ours = (p.invoke("Fail", "refusal") for p in (peer, runtime_peer))
    assert _shape(node) == ("COMPLETED", 500, "refused:\n  first line\n  second line", b"")
    assert _shape(ours) == ("COMPLETED", 500, "refused: first line second line", b"")  # made one line


def test_difference_error_from_the_peer(peer, runtime_peer):
    for fake in (peer, runtime_peer):
        fake.failures["GET_STATE"] = "ledger unavailable"
    node, ours = (fake.invoke("Get", "k") for fake in (peer, runtime_peer))
    assert _shape(node) == ("COMPLETED", 500, "ledger unavailable", b"")
    assert _shape(ours) == ("COMPLETED", 500, "GET_STATE failed: ledger unavailable", b"")


def test_difference_event_of_a_failed_transaction(peer, runtime_peer):
    node, ours = (p.invoke("Emit", "RecordShared", "true") for p in (peer, runtime_peer))
    assert _shape(node) == _shape(ours) == ("COMPLETED", 500, "refused after setting the event", b"")
    assert _event(node) == ("RecordShared", b"payload", "", "")  # the official shims send it (the peer drops it)
    assert _event(ours) is None
    for fake, result in ((peer, node), (runtime_peer, ours)):  # written, but not committed
        assert result.writes == {("", "emitted"): b"RecordShared"}
        assert ("", "emitted") not in fake.state


def test_difference_error_texts(peer, runtime_peer):
    def texts(fake: FakePeer) -> list[str]:
        return [fake.invoke(*args).message for args in (("Fail", "crash"), ("Nope",), ("ghost:Tx",), ("Echo",))]

    node, ours = texts(peer), texts(runtime_peer)
    assert node[0].startswith("Cannot read properties of null")
    assert node[1:] == [
        "You've asked to invoke a function that does not exist: Nope",
        "Contract name is not known: ghost",
        "Expected 1 parameters, but 0 have been supplied",
    ]
    assert ours == [
        "Fail failed unexpectedly: ZeroDivisionError: division by zero",
        "contract 'probe' has no transaction 'Nope'",
        "unknown contract 'ghost'",
        "Echo takes 1 argument(s), not 0",
    ]


def test_difference_client_identity_id(peer, runtime_peer):
    node, ours = (p.invoke("Identity", "role").json() for p in (peer, runtime_peer))
    assert node == {"msp_id": MSP_ID, "id": f"x509::{SUBJECT['node']}::{ISSUER['node']}", "attribute": "doctor"}
    assert ours == {"msp_id": MSP_ID, "id": f"x509::{SUBJECT['runtime']}::{ISSUER['runtime']}", "attribute": "doctor"}


def test_difference_closing_exhausted_iterators(peer, runtime_peer):
    for fake in (peer, runtime_peer):
        _fill(fake, ["a", "b", "c"])
        fake.invoke("Range", "", "")
        fake.invoke("RangePage", "", "", "2", "")
    assert peer.requests == [
        "GET_STATE_BY_RANGE",
        "QUERY_STATE_NEXT",
        "QUERY_STATE_CLOSE",
        "GET_STATE_BY_RANGE",
        "QUERY_STATE_CLOSE",
    ]
    # Ours sends no QUERY_STATE_CLOSE once the peer said has_more=false: the peer has closed it then.
    assert runtime_peer.requests == ["GET_STATE_BY_RANGE", "QUERY_STATE_NEXT", "GET_STATE_BY_RANGE"]


def test_difference_malformed_payload(peer, runtime_peer):
    for fake in (peer, runtime_peer):
        fake.send(Msg(type=Msg.TRANSACTION, txid="tx-bad-input", channel_id=CHANNEL, payload=b"\xff\xff\xff"))
    node, ours = (fake.protocol_errors.get(timeout=WAIT) for fake in (peer, runtime_peer))
    assert (node.type, node.txid, node.payload) == (Msg.ERROR, "tx-bad-input", b"\xff\xff\xff")
    assert (ours.type, ours.txid) == (Msg.ERROR, "tx-bad-input")
    assert ours.payload.startswith(b"malformed TRANSACTION message")


def test_difference_keepalive(runtime_peer):
    runtime_peer.send(Msg(type=Msg.KEEPALIVE, payload=b"ping"))
    echoed = runtime_peer.keepalives.get(timeout=WAIT)  # the Node shim exits: test_keepalive_ends_the_node_chaincode
    assert (echoed.type, echoed.payload) == (Msg.KEEPALIVE, b"ping")
