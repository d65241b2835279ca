"""The official Fabric Gateway client against our FakeGateway: does the fake judge as a peer does?

Our Python client (client/medfabric/gateway) is unit-tested against
tests/unit/gateway/fakegateway.py, which checks signatures, transaction ids and
headers the way a peer does. If the fake encoded a misunderstanding of the
protocol, client and fake could agree with each other and both be wrong. Here
Hyperledger's own Node client (npm @hyperledger/fabric-gateway 1.11.0 with
@grpc/grpc-js 1.14.3, pinned in node/package.json), driven by
node/gateway_client.mjs, talks to the same fake over TLS, so that:

* the fake is shown to accept what the official client sends (no rejection),
  and to reject it where a peer would (another key, identity, channel, chaincode);
* the official client is shown to read what the fake answers: results, commit
  statuses, events, and errors with per-peer details;
* what the official client sends is compared field by field with what our
  Python client sends for the same inputs. Only the values that must differ
  (nonce, timestamp, transaction id, signatures) are abstracted, into checked
  properties such as "sha256(nonce + creator)" or "valid low-S signature".
  Where the two clients differ on purpose or harmlessly, the difference is
  pinned in KNOWN_DIFFERENCES or in a test of its own, so a change on either
  side shows up here.

Needs node (and npm once): `npm ci` runs in node/ when the pinned packages are
not installed there; the module is skipped only when node is absent or that
install fails.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from fabric_protos.common import common_pb2
from fabric_protos.gateway import gateway_pb2
from fabric_protos.peer import chaincode_event_pb2, chaincode_pb2, proposal_pb2, transaction_pb2
from google.protobuf import json_format, unknown_fields
from google.protobuf.message import Message

from medfabric.gateway import ConnectOptions, InMemoryCheckpointer, connect
from medfabric.gateway.identity import X509Identity, ecdsa_signer

from ..unit.gateway.fakegateway import CHAINCODE, CHANNEL, FakeGateway, FakeGatewayServer, Pki, make_pki

pytestmark = pytest.mark.timeout(180)  # a first `npm ci` included

NODE_DIR = Path(__file__).parent / "node"
SCRIPT = NODE_DIR / "gateway_client.mjs"
PINNED = ("@hyperledger/fabric-gateway", "@grpc/grpc-js")
NPM_CI_TIMEOUT = 150  # seconds; 3-10 s with a warm npm cache
P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
VALID_SIGNATURE = "<valid low-S ECDSA of SHA-256>"
WAIT = 10.0  # seconds, for anything that should take milliseconds

# Where what the official client sends differs from what ours sends, by field path:
# (official, ours). Any other difference fails the comparison. See
# test_difference_chaincode_spec_type.
KNOWN_DIFFERENCES = {
    "proposed_transaction.proposal_bytes.payload.input.chaincode_spec.type": ("NODE", "UNDEFINED"),
}


# --- Node.js and the official client ------------------------------------------------------------


def _installed_version(package: str) -> str | None:
    manifest = NODE_DIR / "node_modules" / package / "package.json"
    return json.loads(manifest.read_text())["version"] if manifest.is_file() else None


def _installed_as_pinned() -> bool:
    pins = json.loads((NODE_DIR / "package.json").read_text())["dependencies"]
    return all(_installed_version(package) == pins[package] for package in PINNED)


def _install() -> str | None:
    """Installs the pinned packages if needed; returns why the module must be skipped, or None."""
    if shutil.which("node") is None:
        return "node is not installed: the official Fabric Gateway client cannot run"
    if _installed_as_pinned():
        return None
    npm = shutil.which("npm")
    if npm is None:
        return "npm is not installed (needed once, to install tests/conformance/node/node_modules)"
    started = time.monotonic()
    try:
        done = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"],
            cwd=NODE_DIR,
            capture_output=True,
            text=True,
            timeout=NPM_CI_TIMEOUT,
        )
    except subprocess.TimeoutExpired:
        return f"`npm ci` in tests/conformance/node took more than {NPM_CI_TIMEOUT} s"
    if done.returncode != 0 or not _installed_as_pinned():
        lines = (done.stderr or done.stdout).strip().splitlines()
        tail = " | ".join([line for line in lines if "npm error" in line][:3] or lines[-3:])
        return f"`npm ci` in tests/conformance/node failed ({done.returncode}): {tail}"
    print(f"npm ci in tests/conformance/node: {time.monotonic() - started:.1f} s", file=sys.stderr)
    return None


@pytest.fixture(scope="session")
def node() -> str:
    reason = _install()
    if reason:
        pytest.skip(reason)
    return shutil.which("node")


# --- The fake, served over TLS, and both clients ------------------------------------------------


class RecordingFakeGateway(FakeGateway):
    """The FakeGateway, also keeping every request as received (accepted or not) and each
    Endorse answer, for the field-by-field comparisons; its checks are untouched."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.received: dict[str, list] = defaultdict(list)
        self.endorsed: list[gateway_pb2.EndorseResponse] = []

    def Evaluate(self, request, context):
        self.received["Evaluate"].append(request)
        return super().Evaluate(request, context)

    def Endorse(self, request, context):
        self.received["Endorse"].append(request)
        response = super().Endorse(request, context)
        self.endorsed.append(response)
        return response

    def Submit(self, request, context):
        self.received["Submit"].append(request)
        return super().Submit(request, context)

    def CommitStatus(self, request, context):
        self.received["CommitStatus"].append(request)
        return super().CommitStatus(request, context)

    def ChaincodeEvents(self, request, context):
        self.received["ChaincodeEvents"].append(request)
        yield from super().ChaincodeEvents(request, context)

    def _check_events_request(self, signed):
        start = super()._check_events_request(signed)
        self.received["ChaincodeEvents started"].append(signed)  # its start block is now fixed
        return start

    def wait_for(self, what: str, count: int) -> None:
        deadline = time.monotonic() + WAIT
        while len(self.received[what]) < count:
            assert time.monotonic() < deadline, f"never got {count} {what!r}"
            time.sleep(0.01)


@pytest.fixture(scope="session")
def pki() -> Pki:
    return make_pki()


@pytest.fixture(scope="session")
def files(pki, tmp_path_factory) -> dict[str, str]:
    """PEM files for the Node script."""
    folder = tmp_path_factory.mktemp("official-client")
    contents = {
        "certPath": pki.client.cert_pem,
        "keyPath": pki.client.key_pem,
        "otherKeyPath": make_pki().client.key_pem,
        "tlsRootCertPath": pki.ca.cert_pem,
    }
    for name, data in contents.items():
        (folder / f"{name}.pem").write_bytes(data)
    return {name: str(folder / f"{name}.pem") for name in contents}


@pytest.fixture
def fake(pki):
    fake = RecordingFakeGateway(pki.msp_id, pki.client.cert_pem)
    yield fake
    assert fake.rejections == [], "the fake gateway rejected messages a client sent"


@pytest.fixture
def server(fake, pki):
    with FakeGatewayServer(fake, pki) as server:
        yield server


class OfficialClient:
    """Runs calls through the official client, one `node gateway_client.mjs` per run."""

    def __init__(self, node: str, config: dict):
        self._node = node
        self._config = config

    def start(self, calls: list[dict], **overrides) -> subprocess.Popen:
        config = {**self._config, "calls": calls, **overrides}
        return subprocess.Popen(
            [self._node, str(SCRIPT), json.dumps(config)],
            cwd=NODE_DIR,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    @staticmethod
    def results(process: subprocess.Popen) -> list[dict]:
        """One result per call: {"op", "ok": True, ...} or {"op", "ok": False, "error": {...}}."""
        try:
            stdout, stderr = process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            stdout, stderr = process.communicate()
            pytest.fail(f"gateway_client.mjs did not finish:\n{stderr}")
        if process.returncode != 0:
            pytest.fail(f"gateway_client.mjs exited {process.returncode}:\n{stderr}")
        return json.loads(stdout.strip().splitlines()[-1])["results"]

    def run(self, calls: list[dict], **overrides) -> list[dict]:
        results = self.results(self.start(calls, **overrides))
        assert [result["op"] for result in results] == [call["op"] for call in calls]
        return results


@pytest.fixture
def official(node, server, pki, files) -> OfficialClient:
    return OfficialClient(
        node,
        {
            "endpoint": server.address,
            "tlsRootCertPath": files["tlsRootCertPath"],
            "serverNameOverride": pki.server_name,
            "mspId": pki.msp_id,
            "certPath": files["certPath"],
            "keyPath": files["keyPath"],
            "channel": CHANNEL,
            "chaincode": CHAINCODE,
            "timeoutMs": 10_000,
        },
    )


@pytest.fixture
def ours(server, pki):
    """Our Python client, connected the same way to the same fake."""
    with connect(
        X509Identity(pki.msp_id, pki.client.cert_pem),
        ecdsa_signer(pki.client.private_key),
        endpoint=server.address,
        tls_root_cert=pki.ca.cert_pem,
        server_name_override=pki.server_name,
        options=ConnectOptions(commit_status_timeout=WAIT),
    ) as gateway:
        yield gateway


# --- Helpers ------------------------------------------------------------------------------------


def b64(data: bytes) -> dict:
    return {"base64": base64.b64encode(data).decode()}


def unb64(text: str) -> bytes:
    return base64.b64decode(text)


def ok(result: dict) -> dict:
    assert result["ok"], f"the official client's {result['op']} failed: {result['error']}"
    return result


def failed(result: dict) -> dict:
    assert not result["ok"], f"the official client's {result['op']} succeeded: {result}"
    return result["error"]


def code_of(status: grpc.StatusCode) -> int:
    return status.value[0]


def event(tx_id: str, name: str = "Created", chaincode: str = CHAINCODE):
    return chaincode_event_pb2.ChaincodeEvent(
        chaincode_id=chaincode, tx_id=tx_id, event_name=name, payload=tx_id.encode()
    )


def signature_problem(pki: Pki, signature: bytes, message: bytes) -> str | None:
    """Why a peer would refuse this signature of `message` by the client; None if it would not."""
    try:
        pki.client.private_key.public_key().verify(signature, message, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError):
        return "does not verify"
    return "is high-S" if decode_dss_signature(signature)[1] > P256_ORDER // 2 else None


def assert_signed(pki: Pki, signature: bytes, message: bytes) -> None:
    problem = signature_problem(pki, signature, message)
    assert problem is None, f"the signature {problem}"


def decode_proposal(signed: proposal_pb2.SignedProposal):
    proposal = proposal_pb2.Proposal.FromString(signed.proposal_bytes)
    header = common_pb2.Header.FromString(proposal.header)
    channel_header = common_pb2.ChannelHeader.FromString(header.channel_header)
    signature_header = common_pb2.SignatureHeader.FromString(header.signature_header)
    payload = proposal_pb2.ChaincodeProposalPayload.FromString(proposal.payload)
    spec = chaincode_pb2.ChaincodeInvocationSpec.FromString(payload.input).chaincode_spec
    return proposal, header, channel_header, signature_header, payload, spec


def assert_valid_proposal_request(pki: Pki, fake: FakeGateway, request) -> str:
    """What the fake checks, checked here again explicitly; returns the transaction id."""
    signed = request.proposed_transaction
    assert_signed(pki, signed.signature, signed.proposal_bytes)
    _, _, channel_header, signature_header, _, _ = decode_proposal(signed)
    assert signature_header.creator == fake.creator
    derived = hashlib.sha256(signature_header.nonce + signature_header.creator).hexdigest()
    assert channel_header.tx_id == derived == request.transaction_id
    return request.transaction_id


# --- Field-by-field structures, with the values that must differ abstracted ---------------------


def _assert_no_unknown_fields(message: Message) -> None:
    """Fields our protos do not know would escape the comparison: there must be none."""
    assert len(unknown_fields.UnknownFieldSet(message)) == 0, (
        f"{message.DESCRIPTOR.full_name} holds fields unknown to fabric-protos"
    )
    for descriptor, value in message.ListFields():
        if descriptor.message_type is None:
            continue
        if descriptor.message_type.GetOptions().map_entry:
            if descriptor.message_type.fields_by_name["value"].message_type is None:
                continue
            values = list(value.values())
        elif descriptor.label == descriptor.LABEL_REPEATED:
            values = list(value)
        else:
            values = [value]
        for nested in values:
            _assert_no_unknown_fields(nested)


def fields(message: Message) -> dict:
    """Every field, defaults included, so that a field set on one side only shows."""
    _assert_no_unknown_fields(message)
    return json_format.MessageToDict(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )


def _signature(pki: Pki, signature: bytes, message: bytes) -> str:
    problem = signature_problem(pki, signature, message)
    return f"<signature that {problem}>" if problem else VALID_SIGNATURE


def _timestamp(channel_header: common_pb2.ChannelHeader) -> str:
    if not channel_header.HasField("timestamp"):
        return "<absent>"
    age = time.time() - channel_header.timestamp.ToNanoseconds() / 1e9
    return "<now>" if -5 < age < 60 else f"<{age:.0f} s old>"


def signed_proposal_structure(pki: Pki, signed: proposal_pb2.SignedProposal) -> dict:
    proposal, header, channel_header, signature_header, payload, _ = decode_proposal(signed)
    nonce, creator = signature_header.nonce, signature_header.creator
    derived = hashlib.sha256(nonce + creator).hexdigest()
    extension = proposal_pb2.ChaincodeHeaderExtension.FromString(channel_header.extension)
    invocation = chaincode_pb2.ChaincodeInvocationSpec.FromString(payload.input)
    return {
        **fields(signed),
        "signature": _signature(pki, signed.signature, signed.proposal_bytes),
        "proposal_bytes": {
            **fields(proposal),
            "header": {
                **fields(header),
                "channel_header": {
                    **fields(channel_header),
                    "tx_id": "<sha256(nonce + creator)>"
                    if channel_header.tx_id == derived
                    else channel_header.tx_id,
                    "timestamp": _timestamp(channel_header),
                    "extension": fields(extension),
                },
                "signature_header": {**fields(signature_header), "nonce": f"<{len(nonce)} bytes>"},
            },
            "payload": {**fields(payload), "input": fields(invocation)},
        },
    }


def proposal_request_structure(pki: Pki, request) -> dict:
    """Of an EvaluateRequest or an EndorseRequest."""
    signed = request.proposed_transaction
    tx_id = decode_proposal(signed)[2].tx_id
    return {
        **fields(request),
        "transaction_id": "<channel header tx_id>"
        if request.transaction_id == tx_id
        else request.transaction_id,
        "proposed_transaction": signed_proposal_structure(pki, signed),
    }


def submit_request_structure(pki: Pki, request, endorsed: gateway_pb2.EndorseResponse) -> dict:
    envelope = request.prepared_transaction
    payload = common_pb2.Payload.FromString(envelope.payload)
    tx_id = common_pb2.ChannelHeader.FromString(payload.header.channel_header).tx_id
    as_endorsed = envelope.payload == endorsed.prepared_transaction.payload
    return {
        **fields(request),
        "transaction_id": "<endorsed tx_id>"
        if request.transaction_id == tx_id
        else request.transaction_id,
        "prepared_transaction": {
            **fields(envelope),
            "payload": "<as endorsed>" if as_endorsed else "<changed>",
            "signature": _signature(pki, envelope.signature, envelope.payload),
        },
    }


def signed_request_structure(pki: Pki, signed, request_type, tx_id: str | None = None) -> dict:
    """Of a SignedCommitStatusRequest or a SignedChaincodeEventsRequest."""
    request = fields(request_type.FromString(signed.request))
    if tx_id is not None and request.get("transaction_id") == tx_id:
        request["transaction_id"] = "<submitted tx_id>"
    return {
        **fields(signed),
        "request": request,
        "signature": _signature(pki, signed.signature, signed.request),
    }


def _flatten(value, path: str = "") -> dict[str, object]:
    if isinstance(value, dict):
        flat = {}
        for key, nested in value.items():
            flat.update(_flatten(nested, f"{path}.{key}" if path else key))
        return flat or {path: {}}
    return {path: value}


def differences(official: dict, ours: dict) -> dict[str, tuple[object, object]]:
    """Field path -> (official value, our value), for every field that differs."""
    a, b = _flatten(official), _flatten(ours)
    return {
        path: (a.get(path, "<absent>"), b.get(path, "<absent>"))
        for path in sorted(a.keys() | b.keys())
        if a.get(path, "<absent>") != b.get(path, "<absent>")
    }


# The same proposal inputs for both clients.
TRANSACTION = "CreateRecord"
ARGUMENTS = ["r1", b"\x00\xff binary \x80"]
TRANSIENT = {"record": b'{"diagnosis": "private"}', "key": b"\x01\x02\x03"}
ORGANIZATIONS = ["Org1MSP", "Org2MSP"]


def official_options(name: str = TRANSACTION) -> dict:
    return {
        "name": name,
        "args": [a if isinstance(a, str) else b64(a) for a in ARGUMENTS],
        "transient": {key: b64(value) for key, value in TRANSIENT.items()},
        "endorsingOrganizations": ORGANIZATIONS,
    }


def our_options() -> dict:
    return {"arguments": ARGUMENTS, "transient": TRANSIENT, "endorsing_organizations": ORGANIZATIONS}


def as_args(name: str, arguments) -> tuple[bytes, ...]:
    return (name.encode(), *(a if isinstance(a, bytes) else a.encode() for a in arguments))


# --- The fake accepts what the official client sends; the official client reads its answers ----


def test_evaluate_transaction(official, fake, pki):
    [result] = official.run([{"op": "evaluateTransaction", "name": "ReadRecord", "args": ["r1"]}])

    assert unb64(ok(result)["result"]) == b"ReadRecord r1"
    [request] = fake.received["Evaluate"]
    transaction_id = assert_valid_proposal_request(pki, fake, request)
    [invocation] = fake.invocations
    assert (invocation.method, invocation.channel, invocation.chaincode) == ("Evaluate", CHANNEL, CHAINCODE)
    assert (invocation.transaction_id, invocation.args) == (transaction_id, (b"ReadRecord", b"r1"))
    assert (invocation.transient, invocation.organizations) == ({}, ())
    assert fake.received["Endorse"] == [] and fake.submitted == []


def test_evaluate_with_transient_data_and_target_organizations(official, fake, pki):
    [result] = official.run([{"op": "evaluate", **official_options("ReadPrivate")}])

    assert unb64(ok(result)["result"]) == b" ".join(as_args("ReadPrivate", ARGUMENTS))
    [request] = fake.received["Evaluate"]
    assert_valid_proposal_request(pki, fake, request)
    assert list(request.target_organizations) == ORGANIZATIONS
    [invocation] = fake.invocations
    assert invocation.args == as_args("ReadPrivate", ARGUMENTS)
    assert (invocation.transient, invocation.organizations) == (TRANSIENT, tuple(ORGANIZATIONS))


def test_submit_with_transient_data_and_endorsing_organizations(official, fake, pki):
    [result] = official.run([{"op": "submit", **official_options()}])

    assert unb64(ok(result)["result"]) == b" ".join(as_args(TRANSACTION, ARGUMENTS))
    [endorse] = fake.received["Endorse"]
    transaction_id = assert_valid_proposal_request(pki, fake, endorse)
    assert list(endorse.endorsing_organizations) == ORGANIZATIONS
    [invocation] = fake.invocations
    assert (invocation.method, invocation.transient) == ("Endorse", TRANSIENT)
    assert invocation.organizations == tuple(ORGANIZATIONS)

    [submit] = fake.received["Submit"]
    assert (submit.transaction_id, submit.channel_id) == (transaction_id, CHANNEL)
    assert_signed(pki, submit.prepared_transaction.signature, submit.prepared_transaction.payload)
    assert fake.submitted == [transaction_id]

    [signed_status] = fake.received["CommitStatus"]
    assert_signed(pki, signed_status.signature, signed_status.request)
    status = gateway_pb2.CommitStatusRequest.FromString(signed_status.request)
    assert (status.transaction_id, status.channel_id, status.identity) == (
        transaction_id,
        CHANNEL,
        fake.creator,
    )


def test_contract_name_qualifies_the_transaction_name(official, fake):
    [result] = official.run(
        [{"op": "submitTransaction", "name": "CreateRecord", "args": ["r1"]}], contract="RecordContract"
    )

    assert unb64(ok(result)["result"]) == b"RecordContract:CreateRecord r1"
    assert fake.invocations[0].args == (b"RecordContract:CreateRecord", b"r1")


def test_submit_async_then_commit_status(official, fake):
    [result] = official.run([{"op": "submitAsync", "name": "CreateRecord", "args": ["r2"]}])

    assert unb64(ok(result)["result"]) == b"CreateRecord r2"
    [transaction_id] = fake.submitted
    assert result["transactionId"] == transaction_id == fake.invocations[0].transaction_id
    assert result["status"] == {
        "transactionId": transaction_id,
        "code": transaction_pb2.VALID,
        "successful": True,
        "blockNumber": 1,  # the first block after genesis
    }


def test_invalidated_transaction_reaches_the_official_client(official, fake):
    fake.commit_code = transaction_pb2.MVCC_READ_CONFLICT
    submitted, submitted_async = official.run(
        [
            {"op": "submitTransaction", "name": "UpdateRecord", "args": ["r1"]},
            {"op": "submitAsync", "name": "UpdateRecord", "args": ["r1"]},
        ]
    )

    error = failed(submitted)
    assert (error["name"], error["code"]) == ("CommitError", transaction_pb2.MVCC_READ_CONFLICT)
    assert error["transactionId"] == fake.submitted[0]
    status = ok(submitted_async)["status"]
    assert (status["code"], status["successful"], status["blockNumber"]) == (
        transaction_pb2.MVCC_READ_CONFLICT,
        False,
        2,
    )


def test_errors_with_details_reach_the_official_client(official, fake):
    """The fake's google.rpc.Status trailer is read by the official client as a peer's is."""
    details = [
        gateway_pb2.ErrorDetail(address="peer0.org2.example.com:9051", msp_id="Org2MSP", message="no record r9"),
        gateway_pb2.ErrorDetail(address="peer0.org3.example.com:11051", msp_id="Org3MSP", message="timeout"),
    ]
    fake.fail_next("Evaluate", grpc.StatusCode.NOT_FOUND, "evaluate call to endorser failed", details=details[:1])
    fake.fail_next("Endorse", grpc.StatusCode.ABORTED, "failed to endorse transaction", details=details)

    evaluated, endorsed = official.run(
        [
            {"op": "evaluateTransaction", "name": "ReadRecord", "args": ["r9"]},
            {"op": "submitTransaction", "name": "CreateRecord", "args": ["r9"]},
        ]
    )

    expected = [{"address": d.address, "mspId": d.msp_id, "message": d.message} for d in details]
    error = failed(evaluated)
    assert (error["name"], error["code"]) == ("GatewayError", code_of(grpc.StatusCode.NOT_FOUND))
    assert "evaluate call to endorser failed" in error["message"]
    assert error["details"] == expected[:1]
    error = failed(endorsed)
    assert (error["name"], error["code"]) == ("EndorseError", code_of(grpc.StatusCode.ABORTED))
    assert "failed to endorse transaction" in error["message"]
    assert error["details"] == expected
    assert error["transactionId"] == fake.invocations[1].transaction_id
    assert fake.received["Submit"] == []


@pytest.mark.parametrize("accepted", [False, True], ids=["not-ordered", "ordered-anyway"])
def test_submit_error_reaches_the_official_client(official, fake, accepted):
    fake.fail_next("Submit", grpc.StatusCode.UNAVAILABLE, "no orderer answered", accepted=accepted)

    [result] = official.run([{"op": "submitAsync", "name": "CreateRecord", "args": ["r1"]}])

    error = failed(result)
    assert (error["name"], error["code"]) == ("SubmitError", code_of(grpc.StatusCode.UNAVAILABLE))
    assert error["transactionId"] == fake.invocations[0].transaction_id
    assert fake.submitted == ([error["transactionId"]] if accepted else [])
    # Unlike ours (Transaction.submit), the official client does not ask for the commit
    # status after a failed Submit: even a transaction the orderers took is reported failed.
    assert fake.received["CommitStatus"] == []


def test_chaincode_events(official, fake, pki):
    fake.add_block(event("t1"), event("t2"), event("x1", chaincode="other"))  # block 1
    fake.add_block(event("t3", name="Updated"))  # block 2

    process = official.start(
        [
            {"op": "chaincodeEvents", "startBlock": 1, "count": 3},
            {"op": "chaincodeEvents", "startBlock": 0, "checkpoint": {"blockNumber": 1, "transactionId": "t1"},
             "count": 2},
            {"op": "chaincodeEvents", "count": 1},  # from the next commit
        ]
    )
    fake.wait_for("ChaincodeEvents started", 3)
    fake.add_block(event("t4"))  # block 3
    from_block, from_checkpoint, next_commit = OfficialClient.results(process)

    def summary(result):
        return [(e["blockNumber"], e["transactionId"], e["eventName"]) for e in ok(result)["events"]]

    assert ok(from_block)["events"][0] == {
        "blockNumber": 1,
        "transactionId": "t1",
        "chaincodeName": CHAINCODE,
        "eventName": "Created",
        "payload": base64.b64encode(b"t1").decode(),
    }
    assert summary(from_block) == [(1, "t1", "Created"), (1, "t2", "Created"), (2, "t3", "Updated")]
    assert summary(from_checkpoint) == [(1, "t2", "Created"), (2, "t3", "Updated")]
    assert summary(next_commit) == [(3, "t4", "Created")]

    requests = []
    for signed in fake.received["ChaincodeEvents"]:
        assert_signed(pki, signed.signature, signed.request)
        request = gateway_pb2.ChaincodeEventsRequest.FromString(signed.request)
        assert (request.channel_id, request.chaincode_id, request.identity) == (CHANNEL, CHAINCODE, fake.creator)
        requests.append(request)
    first, second, third = requests
    assert (first.start_position.specified.number, first.after_transaction_id) == (1, "")
    # The checkpoint wins over startBlock, and names the last transaction processed.
    assert (second.start_position.specified.number, second.after_transaction_id) == (1, "t1")
    assert (third.start_position.WhichOneof("Type"), third.after_transaction_id) == ("next_commit", "")


def test_offline_signing(official, fake):
    """Connected without a signer, the official client has each step's digest signed apart."""
    unsigned, offline = official.run(
        [
            {"op": "evaluateTransaction", "name": "ReadRecord"},
            {"op": "offlineSubmit", **official_options()},
        ],
        offline=True,
    )

    assert "No signing implementation" in failed(unsigned)["message"]
    assert unb64(ok(offline)["result"]) == b" ".join(as_args(TRANSACTION, ARGUMENTS))
    transaction_id = offline["transactionId"]
    assert [(i.method, i.transaction_id) for i in fake.invocations] == [("Endorse", transaction_id)]
    assert fake.invocations[0].transient == TRANSIENT
    assert fake.submitted == fake.commit_status_requests == [transaction_id]
    assert offline["status"] == {
        "transactionId": transaction_id,
        "code": transaction_pb2.VALID,
        "successful": True,
        "blockNumber": 1,
    }


def test_unsigned_proposals_pass_between_the_clients(official, fake, pki, ours):
    """Bytes and digests of unsigned proposals mean the same to both offline-signing APIs."""
    our_proposal = ours.get_network(CHANNEL).get_contract(CHAINCODE).new_proposal(
        "ReadRecord", arguments=["from python"]
    )

    from_node, signed_by_node = official.run(
        [
            {"op": "newProposal", "name": "ReadRecord", "args": ["from node"]},
            {"op": "evaluateProposalBytes", "bytes": b64(our_proposal.to_bytes())},
        ]
    )

    # Our unsigned proposal, signed and sent by the official client.
    assert unb64(ok(signed_by_node)["digest"]) == our_proposal.digest()
    assert signed_by_node["transactionId"] == our_proposal.transaction_id
    assert unb64(signed_by_node["result"]) == b"ReadRecord from python"
    # The official client's unsigned proposal, signed and sent by ours.
    node_bytes = unb64(ok(from_node)["bytes"])
    unsigned = ours.new_signed_proposal(node_bytes, b"")
    assert unsigned.digest() == unb64(from_node["digest"])
    assert unsigned.transaction_id == from_node["transactionId"]
    signature = ecdsa_signer(pki.client.private_key)(unsigned.digest())
    assert ours.new_signed_proposal(node_bytes, signature).evaluate() == b"ReadRecord from node"
    assert [i.transaction_id for i in fake.invocations] == [
        our_proposal.transaction_id,
        from_node["transactionId"],
    ]


# --- The fake refuses the official client where a peer would ------------------------------------


@pytest.mark.parametrize(
    ("overrides", "code", "reason"),
    [
        pytest.param(
            {"signWithKeyPath": "otherKeyPath"},
            grpc.StatusCode.PERMISSION_DENIED,
            "proposal signature does not verify",
            id="signed-with-another-key",
        ),
        pytest.param(
            {"mspId": "Org2MSP"},
            grpc.StatusCode.PERMISSION_DENIED,
            "proposal creator identity is not the client's",
            id="another-identity",
        ),
        pytest.param(
            {"channel": "billing"}, grpc.StatusCode.NOT_FOUND, "no channel 'billing' here", id="another-channel"
        ),
        pytest.param(
            {"chaincode": "ledger"},
            grpc.StatusCode.INVALID_ARGUMENT,
            "no chaincode 'ledger' here",
            id="another-chaincode",
        ),
    ],
)
def test_fake_refuses_a_wrong_official_client(official, fake, files, overrides, code, reason):
    if "signWithKeyPath" in overrides:
        overrides = {"signWithKeyPath": files[overrides["signWithKeyPath"]]}

    evaluated, submitted = official.run(
        [
            {"op": "evaluateTransaction", "name": "ReadRecord"},
            {"op": "submitTransaction", "name": "CreateRecord"},
        ],
        **overrides,
    )

    for result, name in ((evaluated, "GatewayError"), (submitted, "EndorseError")):
        error = failed(result)
        assert (error["name"], error["code"]) == (name, code_of(code))
        assert f"fake gateway rejected: {reason}" in error["message"]
    assert fake.take_rejections() == [reason, reason]
    assert len(fake.received["Evaluate"]) == len(fake.received["Endorse"]) == 1
    assert fake.invocations == [] and fake.submitted == []


def test_tls_server_name_is_checked(official, fake):
    [result] = official.run(
        [{"op": "evaluateTransaction", "name": "ReadRecord"}],
        serverNameOverride="peer1.org1.example.com",
        timeoutMs=3_000,
    )

    assert failed(result)["code"] == code_of(grpc.StatusCode.UNAVAILABLE)
    assert fake.received["Evaluate"] == []


# --- What the official client sends, field by field against what ours sends --------------------


def test_proposals_match_ours(official, fake, pki, ours):
    evaluated, submitted = official.run(
        [{"op": "evaluate", **official_options()}, {"op": "submitAsync", **official_options()}]
    )
    ok(evaluated), ok(submitted)
    contract = ours.get_network(CHANNEL).get_contract(CHAINCODE)
    contract.evaluate(TRANSACTION, **our_options())
    contract.submit_async(TRANSACTION, **our_options()).get_status()

    official_evaluate, our_evaluate = fake.received["Evaluate"]
    official_endorse, our_endorse = fake.received["Endorse"]
    official_submit, our_submit = fake.received["Submit"]
    official_endorsed, our_endorsed = fake.endorsed

    # The abstracted values are checked properties, not wildcards.
    signed = proposal_request_structure(pki, official_endorse)["proposed_transaction"]
    header = signed["proposal_bytes"]["header"]
    assert signed["signature"] == VALID_SIGNATURE
    assert header["channel_header"]["tx_id"] == "<sha256(nonce + creator)>"
    assert header["channel_header"]["timestamp"] == "<now>"
    assert header["signature_header"]["nonce"] == "<24 bytes>"

    evaluate_differences = differences(
        proposal_request_structure(pki, official_evaluate), proposal_request_structure(pki, our_evaluate)
    )
    assert evaluate_differences == KNOWN_DIFFERENCES
    endorse_differences = differences(
        proposal_request_structure(pki, official_endorse), proposal_request_structure(pki, our_endorse)
    )
    assert endorse_differences == KNOWN_DIFFERENCES

    official_structure = submit_request_structure(pki, official_submit, official_endorsed)
    assert official_structure["transaction_id"] == "<endorsed tx_id>"
    assert official_structure["prepared_transaction"]["payload"] == "<as endorsed>"
    assert official_structure["prepared_transaction"]["signature"] == VALID_SIGNATURE
    assert differences(official_structure, submit_request_structure(pki, our_submit, our_endorsed)) == {}


def test_difference_chaincode_spec_type(official, fake, ours):
    """The official Node client 1.11.0 sets ChaincodeSpec.type = NODE; ours leaves it unset.

    Node sets NODE whatever language the chaincode is written in; the Go
    client (hyperledger/fabric-gateway main) leaves the type unset, as ours
    does. Peers run the chaincode their definition names and ignore this
    field, and the fake does not look at it. If either side changes,
    KNOWN_DIFFERENCES must be revisited.
    """
    ok(official.run([{"op": "evaluateTransaction", "name": "ReadRecord"}])[0])
    ours.get_network(CHANNEL).get_contract(CHAINCODE).evaluate_transaction("ReadRecord")

    official_spec, our_spec = (decode_proposal(r.proposed_transaction)[5] for r in fake.received["Evaluate"])
    assert official_spec.type == chaincode_pb2.ChaincodeSpec.NODE
    assert our_spec.type == chaincode_pb2.ChaincodeSpec.UNDEFINED
    assert official_spec.chaincode_id == our_spec.chaincode_id
    assert list(official_spec.input.args) == list(our_spec.input.args) == [b"ReadRecord"]


def test_commit_status_requests_match_ours(official, fake, pki, ours):
    ok(official.run([{"op": "submitAsync", "name": "CreateRecord", "args": ["r1"]}])[0])
    contract = ours.get_network(CHANNEL).get_contract(CHAINCODE)
    contract.submit_async("CreateRecord", arguments=["r1"]).get_status()

    official_tx, our_tx = fake.submitted
    official_request, our_request = fake.received["CommitStatus"]
    request_type = gateway_pb2.CommitStatusRequest
    official_structure = signed_request_structure(pki, official_request, request_type, official_tx)
    assert official_structure["request"]["transaction_id"] == "<submitted tx_id>"
    assert official_structure["signature"] == VALID_SIGNATURE
    our_structure = signed_request_structure(pki, our_request, request_type, our_tx)
    assert differences(official_structure, our_structure) == {}


@dataclass(frozen=True)
class EventsCase:
    official: dict  # the chaincodeEvents call's options
    start_block: int | None = None
    checkpoint: tuple[int, str | None] | None = None  # block number, transaction id


@pytest.mark.parametrize(
    "case",
    [
        pytest.param(EventsCase({"startBlock": 1}, start_block=1), id="start-block"),
        pytest.param(EventsCase({}), id="next-commit"),
        pytest.param(
            EventsCase(
                {"startBlock": 0, "checkpoint": {"blockNumber": 1, "transactionId": "t1"}},
                start_block=0,
                checkpoint=(1, "t1"),
            ),
            id="transaction-checkpoint",
        ),
        pytest.param(
            EventsCase(
                {"startBlock": 1, "checkpoint": {"blockNumber": 2, "transactionId": ""}},
                start_block=1,
                checkpoint=(2, None),
            ),
            id="block-checkpoint",
        ),
    ],
)
def test_chaincode_events_requests_match_ours(official, fake, pki, ours, case):
    fake.add_block(event("t1"), event("t2"))  # block 1
    fake.add_block(event("t3"))  # block 2

    process = official.start([{"op": "chaincodeEvents", "count": 1, **case.official}])
    fake.wait_for("ChaincodeEvents started", 1)
    fake.add_block(event("n1"))  # for the next-commit case
    ok(OfficialClient.results(process)[0])

    checkpointer = None
    if case.checkpoint:
        checkpointer = InMemoryCheckpointer()
        checkpointer.checkpoint_transaction(*case.checkpoint)
    request = ours.get_network(CHANNEL).new_chaincode_events_request(
        CHAINCODE, start_block=case.start_block, checkpoint=checkpointer
    )
    with request.get_events(timeout=WAIT) as events:
        fake.wait_for("ChaincodeEvents started", 2)
        fake.add_block(event("p1"))
        next(events)

    official_request, our_request = fake.received["ChaincodeEvents"]
    request_type = gateway_pb2.ChaincodeEventsRequest
    official_structure = signed_request_structure(pki, official_request, request_type)
    assert official_structure["signature"] == VALID_SIGNATURE
    our_structure = signed_request_structure(pki, our_request, request_type)
    assert differences(official_structure, our_structure) == {}
