"""A strict fake Fabric Gateway: a real gRPC server on 127.0.0.1 with TLS.

It checks every message the way a peer does, and more strictly, without
using the client code under test: signatures must verify with the client's
public key over the bytes a peer checks and be low-S; transaction ids must
be hex(SHA-256(nonce + creator)); creator, nonce length, header type,
epoch, channel, timestamp and chaincode id must be right; a submitted
payload must be the endorsed one; commit status and event requests must
carry the client's identity. Anything off fails the call with the reason,
and the reason is also kept in `rejections`, so a test can check that none
happened even where a client swallowed the error.

It answers Evaluate and Endorse with `result(invocation)` (a prepared
Envelope built as the Gateway builds it), CommitStatus with `commit_code`,
streams the events of the blocks added with add_block(), and can be told to
delay or fail the next call of a method, with per-node ErrorDetails.

    pki = make_pki()
    fake = FakeGateway(pki.msp_id, pki.client.cert_pem)
    with FakeGatewayServer(fake, pki) as server:
        ...  # connect to server.address, trusting pki.ca.cert_pem, as pki.server_name
    assert not fake.rejections

Only absolute imports of installed packages: it can be imported by path.
"""

from __future__ import annotations

import hashlib
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Callable, Iterator

import grpc
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID
from fabric_protos.common import common_pb2
from fabric_protos.gateway import gateway_pb2, gateway_pb2_grpc
from fabric_protos.msp import identities_pb2
from fabric_protos.peer import (
    chaincode_event_pb2,
    chaincode_pb2,
    proposal_pb2,
    proposal_response_pb2,
    transaction_pb2,
)
from google.protobuf.message import DecodeError
from google.rpc import status_pb2

CHANNEL = "mychannel"
CHAINCODE = "basic"
MSP_ID = "Org1MSP"
SERVER_NAME = "peer0.org1.example.com"
NONCE_LENGTH = 24
MAX_CLOCK_SKEW = timedelta(minutes=5)
_CURVE_ORDERS = {
    "secp256r1": 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551,
    "secp384r1": 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF581A0DB248B0A77AECEC196ACCC52973,
}


# --- certificates -----------------------------------------------------------


@dataclass(frozen=True)
class Credentials:
    private_key: ec.EllipticCurvePrivateKey
    certificate: x509.Certificate

    @property
    def cert_pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    @property
    def key_pem(self) -> bytes:
        return self.private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )


@dataclass(frozen=True)
class Pki:
    """A CA, the fake peer's TLS server certificate (for `server_name` only) and a client identity."""

    ca: Credentials
    server: Credentials
    client: Credentials
    server_name: str = SERVER_NAME
    msp_id: str = MSP_ID


def make_pki(client_curve: ec.EllipticCurve = ec.SECP256R1()) -> Pki:
    ca = issue("ca.org1.example.com", ca=True)
    return Pki(
        ca=ca,
        server=issue(SERVER_NAME, ca, dns_name=SERVER_NAME),
        client=issue("User1@org1.example.com", ca, curve=client_curve),
    )


def issue(
    common_name: str,
    issuer: Credentials | None = None,
    *,
    ca: bool = False,
    dns_name: str | None = None,
    curve: ec.EllipticCurve = ec.SECP256R1(),
) -> Credentials:
    """A certificate signed by `issuer` (self-signed without one)."""
    key = ec.generate_private_key(curve)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.now(timezone.utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.certificate.subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if dns_name:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(dns_name)]), critical=False)
    return Credentials(key, builder.sign(issuer.private_key if issuer else key, hashes.SHA256()))


# --- the fake -----------------------------------------------------------------


@dataclass(frozen=True)
class Invocation:
    """A proposal the fake accepted: `args[0]` is the transaction name."""

    method: str
    channel: str
    chaincode: str
    transaction_id: str
    args: tuple[bytes, ...]
    transient: dict[str, bytes]
    organizations: tuple[str, ...]


@dataclass(frozen=True)
class Failure:
    code: grpc.StatusCode
    message: str
    details: tuple[gateway_pb2.ErrorDetail, ...] = ()
    accepted: bool = False  # Submit only: the orderers took the transaction despite the error


class Rejected(Exception):
    def __init__(self, code: grpc.StatusCode, reason: str):
        super().__init__(reason)
        self.code = code


@dataclass
class _Endorsed:
    channel: str
    payload: bytes


@dataclass
class _Proposal:
    header: common_pb2.Header
    channel_header: common_pb2.ChannelHeader
    payload: proposal_pb2.ChaincodeProposalPayload
    invocation: Invocation


def default_result(invocation: Invocation) -> bytes:
    return b" ".join(invocation.args)


class FakeGateway(gateway_pb2_grpc.GatewayServicer):
    def __init__(self, msp_id: str, client_cert_pem: bytes, *, channels=(CHANNEL,), chaincodes=(CHAINCODE,)):
        self.creator = identities_pb2.SerializedIdentity(mspid=msp_id, id_bytes=client_cert_pem).SerializeToString()
        self._public_key = x509.load_pem_x509_certificate(client_cert_pem).public_key()
        self._curve_order = _CURVE_ORDERS[self._public_key.curve.name]
        self.channels = set(channels)
        self.chaincodes = set(chaincodes)
        self.result: Callable[[Invocation], bytes] = default_result
        self.commit_code = transaction_pb2.VALID
        self.invocations: list[Invocation] = []
        self.submitted: list[str] = []  # transaction ids the orderers took
        self.commit_status_requests: list[str] = []
        self.rejections: list[str] = []
        self._failures: dict[str, Failure] = {}
        self._delays: dict[str, float] = {}
        self._endorsed: dict[str, _Endorsed] = {}
        self._ledger = threading.Condition()
        self._blocks: list[list[chaincode_event_pb2.ChaincodeEvent]] = [[]]  # block 0: genesis
        self._committed_in: dict[str, int] = {}

    # --- what tests set up

    def fail_next(self, method: str, code: grpc.StatusCode, message: str, *, details=(), accepted=False) -> None:
        """The next call of `method` ("Endorse", "Submit", ...) fails, after its checks."""
        self._failures[method] = Failure(code, message, tuple(details), accepted)

    def delay(self, method: str, seconds: float) -> None:
        """Every call of `method` answers `seconds` late (or not at all if the client gave up)."""
        self._delays[method] = seconds

    def add_block(self, *events: chaincode_event_pb2.ChaincodeEvent) -> int:
        with self._ledger:
            self._blocks.append(list(events))
            self._ledger.notify_all()
            return len(self._blocks) - 1

    def take_rejections(self) -> list[str]:
        taken, self.rejections = self.rejections, []
        return taken

    # --- the Gateway service

    def Evaluate(self, request, context):
        return self._serve(context, self._evaluate, request)

    def Endorse(self, request, context):
        return self._serve(context, self._endorse, request)

    def Submit(self, request, context):
        return self._serve(context, self._submit, request)

    def CommitStatus(self, request, context):
        return self._serve(context, self._commit_status, request)

    def ChaincodeEvents(self, request, context):
        try:
            start_block, wanted = self._check_events_request(request)
            self._misbehave(context, "ChaincodeEvents")
        except Rejected as rejected:
            self._reject(context, rejected)
        yield from self._stream_events(context, start_block, wanted)

    def _serve(self, context, handler, request):
        try:
            return handler(request, context)
        except Rejected as rejected:
            self._reject(context, rejected)

    def _reject(self, context, rejected: Rejected):
        self.rejections.append(str(rejected))
        context.abort(rejected.code, f"fake gateway rejected: {rejected}")

    def _evaluate(self, request, context):
        proposal = self._check_proposal(
            "Evaluate", request.transaction_id, request.channel_id,
            request.proposed_transaction, request.target_organizations,
        )
        self._misbehave(context, "Evaluate")
        result = proposal_response_pb2.Response(status=200, payload=self.result(proposal.invocation))
        return gateway_pb2.EvaluateResponse(result=result)

    def _endorse(self, request, context):
        proposal = self._check_proposal(
            "Endorse", request.transaction_id, request.channel_id,
            request.proposed_transaction, request.endorsing_organizations,
        )
        self._misbehave(context, "Endorse")
        envelope = _prepared_transaction(proposal, self.result(proposal.invocation))
        self._endorsed[request.transaction_id] = _Endorsed(request.channel_id, envelope.payload)
        return gateway_pb2.EndorseResponse(prepared_transaction=envelope)

    def _submit(self, request, context):
        endorsed = self._endorsed.get(request.transaction_id)
        _require(endorsed is not None, f"transaction {request.transaction_id} was not endorsed here")
        _require(request.channel_id == endorsed.channel, f"submitted to channel {request.channel_id!r}, "
                                                         f"endorsed on {endorsed.channel!r}")
        envelope = request.prepared_transaction
        _require(envelope.payload == endorsed.payload, "submitted payload differs from the endorsed one")
        self._check_signature(envelope.payload, envelope.signature, "transaction")
        self._delay(context, "Submit")
        failure = self._failures.pop("Submit", None)
        if failure is None or failure.accepted:
            self._commit(request.transaction_id)
        if failure:
            self._abort(context, failure)
        return gateway_pb2.SubmitResponse()

    def _commit_status(self, signed, context):
        self._check_signature(signed.request, signed.signature, "commit status request")
        request = _parse(gateway_pb2.CommitStatusRequest, signed.request, "commit status request")
        self._check_identity(request.identity, "commit status request")
        self._check_channel(request.channel_id)
        self.commit_status_requests.append(request.transaction_id)
        self._misbehave(context, "CommitStatus")
        with self._ledger:  # a transaction the orderers never took never commits: wait for the client to give up
            while request.transaction_id not in self._committed_in and context.is_active():
                self._ledger.wait(0.05)
            block_number = self._committed_in.get(request.transaction_id)
        if block_number is None:
            context.abort(grpc.StatusCode.CANCELLED, "client gave up waiting for the commit")
        return gateway_pb2.CommitStatusResponse(result=self.commit_code, block_number=block_number)

    # --- checks

    def _check_proposal(self, method, transaction_id, channel_id, signed_proposal, organizations) -> _Proposal:
        self._check_signature(signed_proposal.proposal_bytes, signed_proposal.signature, "proposal")
        proposal = _parse(proposal_pb2.Proposal, signed_proposal.proposal_bytes, "proposal")
        header = _parse(common_pb2.Header, proposal.header, "header")
        channel_header = _parse(common_pb2.ChannelHeader, header.channel_header, "channel header")
        signature_header = _parse(common_pb2.SignatureHeader, header.signature_header, "signature header")
        _require(channel_header.type == common_pb2.HeaderType.ENDORSER_TRANSACTION,
                 f"header type {channel_header.type}, expected ENDORSER_TRANSACTION")
        _require(channel_header.epoch == 0, "epoch is not 0")
        _require(channel_header.channel_id == channel_id,
                 f"header channel {channel_header.channel_id!r} but request channel {channel_id!r}")
        self._check_channel(channel_id)
        sent_at = channel_header.timestamp.ToDatetime(tzinfo=timezone.utc)
        _require(abs(datetime.now(timezone.utc) - sent_at) < MAX_CLOCK_SKEW, f"timestamp {sent_at} is not now")
        self._check_identity(signature_header.creator, "proposal creator")
        _require(len(signature_header.nonce) == NONCE_LENGTH,
                 f"nonce of {len(signature_header.nonce)} bytes, expected {NONCE_LENGTH}")
        expected_id = hashlib.sha256(signature_header.nonce + signature_header.creator).hexdigest()
        _require(channel_header.tx_id == expected_id, f"tx id {channel_header.tx_id!r} is not sha256(nonce + creator)")
        _require(transaction_id == expected_id, f"request transaction id {transaction_id!r} differs from the header's")
        extension = _parse(proposal_pb2.ChaincodeHeaderExtension, channel_header.extension, "header extension")
        payload = _parse(proposal_pb2.ChaincodeProposalPayload, proposal.payload, "proposal payload")
        spec = _parse(chaincode_pb2.ChaincodeInvocationSpec, payload.input, "invocation spec").chaincode_spec
        chaincode = spec.chaincode_id.name
        _require(extension.chaincode_id.name == chaincode,
                 f"header chaincode {extension.chaincode_id.name!r} but invocation chaincode {chaincode!r}")
        _require(chaincode in self.chaincodes, f"no chaincode {chaincode!r} here")
        _require(len(spec.input.args) > 0, "no transaction name")
        invocation = Invocation(method, channel_id, chaincode, transaction_id, tuple(spec.input.args),
                                dict(payload.TransientMap), tuple(organizations))
        self.invocations.append(invocation)
        return _Proposal(header, channel_header, payload, invocation)

    def _check_events_request(self, signed) -> tuple[int, Callable[[chaincode_event_pb2.ChaincodeEvent], bool]]:
        """Where the stream starts, and which events of the requested chaincode to send, as a peer decides it."""
        self._check_signature(signed.request, signed.signature, "chaincode events request")
        request = _parse(gateway_pb2.ChaincodeEventsRequest, signed.request, "chaincode events request")
        self._check_identity(request.identity, "chaincode events request")
        self._check_channel(request.channel_id)
        position = request.start_position.WhichOneof("Type")
        _require(position in (None, "next_commit", "specified"), f"invalid start position type: {position}")
        after = request.after_transaction_id
        with self._ledger:
            start_block = request.start_position.specified.number if position == "specified" else len(self._blocks)
            blocks_with_after = [number for number, events in enumerate(self._blocks)
                                 if after and any(event.tx_id == after for event in events)]
        if blocks_with_after:
            start_block = blocks_with_after[0]
        passed_after = not after

        def wanted(event: chaincode_event_pb2.ChaincodeEvent) -> bool:
            nonlocal passed_after
            if not passed_after:
                passed_after = event.tx_id == after
                return False
            return event.chaincode_id == request.chaincode_id

        return start_block, wanted

    def _check_signature(self, message: bytes, signature: bytes, what: str) -> None:
        try:
            _, s = decode_dss_signature(signature)
        except ValueError:
            raise Rejected(grpc.StatusCode.PERMISSION_DENIED, f"{what} signature is not a DER ECDSA signature") from None
        if s > self._curve_order // 2:
            raise Rejected(grpc.StatusCode.PERMISSION_DENIED, f"{what} signature is high-S")
        try:
            self._public_key.verify(signature, message, ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            raise Rejected(grpc.StatusCode.PERMISSION_DENIED, f"{what} signature does not verify") from None

    def _check_identity(self, identity: bytes, what: str) -> None:
        if identity != self.creator:
            raise Rejected(grpc.StatusCode.PERMISSION_DENIED, f"{what} identity is not the client's")

    def _check_channel(self, channel_id: str) -> None:
        if channel_id not in self.channels:
            raise Rejected(grpc.StatusCode.NOT_FOUND, f"no channel {channel_id!r} here")

    # --- behaviour

    def _misbehave(self, context, method: str) -> None:
        self._delay(context, method)
        failure = self._failures.pop(method, None)
        if failure:
            self._abort(context, failure)

    def _delay(self, context, method: str) -> None:
        answer_at = time.monotonic() + self._delays.get(method, 0)
        while time.monotonic() < answer_at and context.is_active():
            time.sleep(0.01)
        if not context.is_active():
            context.abort(grpc.StatusCode.CANCELLED, "client gave up")

    def _abort(self, context, failure: Failure) -> None:
        if failure.details:
            status = status_pb2.Status(code=failure.code.value[0], message=failure.message)
            for detail in failure.details:
                status.details.add().Pack(detail)
            context.set_trailing_metadata((("grpc-status-details-bin", status.SerializeToString()),))
        context.abort(failure.code, failure.message)

    def _commit(self, transaction_id: str) -> None:
        with self._ledger:
            self.submitted.append(transaction_id)
            self._blocks.append([])
            self._committed_in[transaction_id] = len(self._blocks) - 1
            self._ledger.notify_all()

    def _stream_events(self, context, block_number: int, wanted) -> Iterator[gateway_pb2.ChaincodeEventsResponse]:
        while context.is_active():
            with self._ledger:
                if block_number >= len(self._blocks):
                    self._ledger.wait(0.05)
                    continue
                events = list(self._blocks[block_number])
            matching = [event for event in events if wanted(event)]
            if matching:
                yield gateway_pb2.ChaincodeEventsResponse(events=matching, block_number=block_number)
            block_number += 1


def _require(condition: bool, reason: str) -> None:
    if not condition:
        raise Rejected(grpc.StatusCode.INVALID_ARGUMENT, reason)


def _parse(message_type, data: bytes, what: str):
    try:
        return message_type.FromString(data)
    except DecodeError:
        raise Rejected(grpc.StatusCode.INVALID_ARGUMENT, f"malformed {what}") from None


def _prepared_transaction(proposal: _Proposal, result: bytes) -> common_pb2.Envelope:
    """The unsigned transaction envelope, assembled the way the Gateway assembles it (one endorsement)."""
    public_payload = proposal_pb2.ChaincodeProposalPayload(input=proposal.payload.input).SerializeToString()
    proposal_hash = hashlib.sha256(
        proposal.header.channel_header + proposal.header.signature_header + public_payload
    ).digest()
    chaincode_action = proposal_pb2.ChaincodeAction(
        response=proposal_response_pb2.Response(status=200, payload=result),
        chaincode_id=chaincode_pb2.ChaincodeID(name=proposal.invocation.chaincode),
    )
    response_payload = proposal_response_pb2.ProposalResponsePayload(
        proposal_hash=proposal_hash, extension=chaincode_action.SerializeToString()
    )
    action_payload = transaction_pb2.ChaincodeActionPayload(
        chaincode_proposal_payload=public_payload,
        action=transaction_pb2.ChaincodeEndorsedAction(proposal_response_payload=response_payload.SerializeToString()),
    )
    transaction = transaction_pb2.Transaction(actions=[transaction_pb2.TransactionAction(
        header=proposal.header.signature_header, payload=action_payload.SerializeToString()
    )])
    payload = common_pb2.Payload(header=proposal.header, data=transaction.SerializeToString())
    return common_pb2.Envelope(payload=payload.SerializeToString())


class FakeGatewayServer:
    """Serves a FakeGateway over TLS on 127.0.0.1, on a free port."""

    def __init__(self, fake: FakeGateway, pki: Pki):
        self._server = grpc.server(ThreadPoolExecutor(max_workers=16))
        gateway_pb2_grpc.add_GatewayServicer_to_server(fake, self._server)
        credentials = grpc.ssl_server_credentials([(pki.server.key_pem, pki.server.cert_pem)])
        self.port = self._server.add_secure_port("127.0.0.1:0", credentials)
        self.address = f"127.0.0.1:{self.port}"
        self._server.start()

    def stop(self) -> None:
        self._server.stop(grace=None).wait()

    def __enter__(self) -> FakeGatewayServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
