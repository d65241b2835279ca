"""ContractGatewayServer: the Fabric Gateway gRPC service of the consortium's peers, over the real contracts.

For clients that speak the real Fabric Gateway protocol (Hyperledger Caliper
with @hyperledger/fabric-gateway, our own client in client/medfabric/gateway)
where no Fabric binaries can run. Each domain's duty peer (or every peer) is
served at its topology address (127.0.0.1:<listen port>) with TLS, using that
peer's server certificate from the crypto tree, so a client configured with
the domain's peer TLS CA (and the peer's host name or 127.0.0.1) connects as it
would to the real peer. Behind every address is one FakeFabric
(tests/unit/client/fake_fabric.py): every channel of the topology with the real
contracts on the real chaincode runtime, and any other chaincode whose server
is given by address (`chaincodes={"medfabric-node": address}`: the Node
baseline of caliper/baseline, started by tests/caliper/chaincode_servers.py).

Like a peer, for each request it:

* reads the creator (msp.SerializedIdentity) of the SignedProposal, of the
  Envelope (Submit), or of the signed CommitStatus / ChaincodeEvents request;
* refuses an MSP that is no peer organisation of the topology, a certificate not
  issued by that MSP's CA in the crypto tree (or expired), one without exactly one
  NodeOU role, and a signature that is not a low-S ECDSA signature of SHA-256 of
  the signed bytes by the certificate's key (PERMISSION_DENIED);
* applies the channel policies of ops/medfabric_ops/render/configtx.py: proposals
  and submissions need an admin or client identity (Writers), commit status and
  events an admin, peer or client (Readers), of a member organisation of the channel;
* refuses a proposal whose transaction id is not sha256(nonce + creator), and a
  channel the served peer has not joined (NOT_FOUND);
* runs the transaction with FakeFabric.execute as that caller, on the proposal's
  channel and chaincode, "contract:Function" and arguments from its
  ChaincodeInvocationSpec; the chaincode sees the client's transaction id, nonce,
  timestamp and transient data (FakeFabric.execute passes them to its peer).

It answers Evaluate with the chaincode's response; Endorse by running and
committing the transaction at once (FakeFabric applies writes as it executes)
in a block of its own, answering the prepared transaction Envelope as the
Gateway assembles it (the result, the chaincode event, an endorsement signed by
the duty peer of every member organisation of the channel); Submit by checking
the Envelope is the endorsed one, signed by its creator; CommitStatus with VALID
and the block number (waiting, as a peer does, for a transaction it does not
know); ChaincodeEvents with the events of those blocks. Failures carry the codes,
messages and per-peer ErrorDetails of FakeFabric, which follow the Gateway's:
Endorse ABORTED "failed to endorse transaction, see attached details for more
info", Evaluate UNKNOWN "evaluate call to endorser returned error: ...".

Unlike a real network: the transaction commits at endorsement, so an endorsed
transaction that is never submitted (or whose Submit is refused) has committed
anyway; one transaction per block, no MVCC conflicts, no read-write sets in the
Envelope; the chaincode sees a proposal rebuilt by the fake peer (same creator,
nonce, transaction id, timestamp and transient data, signed by the user's key
from the crypto tree), not the client's bytes; target and endorsing organisations
are ignored; refusals of the peer's checks (identity, signature, policy) come as
PERMISSION_DENIED rather than inside an endorsement error; only the application
chaincode of the topology runs, and the chaincodes given with their servers'
addresses (every one on every channel).

    >>> with ContractGatewayServer(topology, layout) as server:
    ...     with connect_as("hospital-a", "doctor", topology=topology, layout=layout) as gateway:
    ...         ...

    python -m tests.caliper.gateway_server --topology FILE [--node-baseline]   # build dir: $MEDFABRIC_BUILD_DIR

prints one line "ready: {host name: address, ...}" when it serves, and serves until SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import logging
import signal
import sys
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Callable, Iterable, Iterator, Mapping

import grpc
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
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

from medfabric.gateway import ErrorDetail, GatewayError
from medfabric.consortium.layout import NetworkLayout
from medfabric.consortium.service_identity import SERVICE_USER, ServiceIdentity
from medfabric.consortium.topology import Channel, Domain, Peer, Topology, load_topology
from medfabric_ops.crypto_material import NODE_OUS, generate_crypto

from ..unit.chaincode.fakepeer import TxResult
from ..unit.client.fake_fabric import Caller, FakeFabric

log = logging.getLogger("medfabric.caliper.gateway")

WRITER_ROLES = ("admin", "client")  # the channels' Writers policy: who may propose and submit
READER_ROLES = ("admin", "peer", "client")  # Readers: who may ask commit statuses and read events
ENDORSE_FAILED = "failed to endorse transaction, see attached details for more info"
MAX_MESSAGE_BYTES = 100 * 1024 * 1024
POLL = 0.05  # seconds between looks at the client's deadline while waiting for a block
_CURVE_ORDERS = {
    "secp256r1": 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551,
    "secp384r1": 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF581A0DB248B0A77AECEC196ACCC52973,
}


class Refused(Exception):
    """A request answered with a gRPC error: its code, message and per-peer details."""

    def __init__(self, code: grpc.StatusCode, message: str, details: Iterable[ErrorDetail] = ()):
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = tuple(details)

    @classmethod
    def from_gateway_error(cls, error: GatewayError) -> Refused:
        return cls(error.grpc_code or grpc.StatusCode.UNKNOWN, error.message, error.details)


def _denied(message: str) -> Refused:
    return Refused(grpc.StatusCode.PERMISSION_DENIED, f"access denied: {message}")


# --- identities -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Member:
    """A creator the consortium's MSPs accept: who it is for FakeFabric, its NodeOU role, its public key."""

    caller: Caller
    role: str  # one of NODE_OUS
    public_key: ec.EllipticCurvePublicKey = field(repr=False)
    not_after: datetime

    @property
    def name(self) -> str:
        return f"{self.caller.user}@{self.caller.domain.id}"

    @property
    def msp_id(self) -> str:
        return self.caller.domain.msp_id

    def verify(self, signature: bytes, message: bytes, what: str) -> None:
        """As a peer's MSP does: a DER, low-S ECDSA signature of SHA-256(message) by the certificate's key."""
        try:
            _, s = decode_dss_signature(signature)
        except ValueError:
            raise _denied(f"the {what} signature of {self.name} is not a DER ECDSA signature") from None
        if s > _CURVE_ORDERS[self.public_key.curve.name] // 2:
            raise _denied(f"the {what} signature of {self.name} is high-S (Fabric accepts low-S only)")
        try:
            self.public_key.verify(signature, message, ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            raise _denied(f"the {what} signature does not verify with the certificate of {self.name}") from None

    def require(self, roles: tuple[str, ...], channel: Channel, action: str) -> None:
        """The channel's policy: a member organisation of the channel, in one of `roles`."""
        if self.msp_id not in {domain.msp_id for domain in channel.domains}:
            raise _denied(f"channel [{channel.name}] creator org [{self.msp_id}]")
        if self.role not in roles:
            raise _denied(f"channel [{channel.name}] creator org [{self.msp_id}]: "
                          f"{self.name} is a {self.role} identity, which may not {action}")


class Identities:
    """The peer organisations' MSPs as the crypto tree defines them: which creators they accept, and who those are."""

    def __init__(self, topology: Topology, layout: NetworkLayout):
        self._domains = {domain.msp_id: domain for domain in topology.domains}
        self._cas = {
            domain.msp_id: [x509.load_pem_x509_certificate(path.read_bytes())
                            for path in sorted((layout.peer_org(domain) / "msp" / "cacerts").glob("*.pem"))]
            for domain in topology.domains
        }
        # The users of the crypto tree, by certificate: the chaincode's copy of a proposal is signed with their key.
        self._users: dict[bytes, tuple[str, ec.EllipticCurvePrivateKey]] = {}
        for domain in topology.domains:
            for user in ("Admin", *domain.users, SERVICE_USER):
                msp = layout.user_msp(domain, user)
                if msp.is_dir():
                    credentials = ServiceIdentity.load(msp, domain.msp_id)
                    certificate = x509.load_pem_x509_certificate(credentials.identity.certificate_pem)
                    self._users[certificate.fingerprint(hashes.SHA256())] = (user, credentials.private_key)
        self._members: dict[bytes, Member] = {}
        self._lock = threading.Lock()

    def member(self, creator: bytes) -> Member:
        """The member whose serialized identity `creator` is; Refused (PERMISSION_DENIED) if the MSPs refuse it."""
        with self._lock:
            member = self._members.get(creator)
        if member is None:
            member = self._resolve(creator)
            with self._lock:
                self._members[creator] = member
        if datetime.now(UTC) > member.not_after:
            raise _denied(f"the certificate of {member.name} has expired")
        return member

    def _resolve(self, creator: bytes) -> Member:
        try:
            identity = identities_pb2.SerializedIdentity.FromString(creator)
        except DecodeError:
            raise _denied("the creator is malformed (not an msp.SerializedIdentity)") from None
        domain = self._domains.get(identity.mspid)
        if domain is None:
            raise _denied(f"MSP {identity.mspid!r} is not a member of the consortium")
        try:
            certificate = x509.load_pem_x509_certificate(identity.id_bytes)
        except ValueError:
            raise _denied(f"the identity of {identity.mspid} is not a PEM X.509 certificate") from None
        subject = certificate.subject.rfc4514_string()
        if not any(_issued_by(certificate, ca) for ca in self._cas[domain.msp_id]):
            raise _denied(f"the certificate of {subject} is not issued by the CA of {domain.msp_id}")
        now = datetime.now(UTC)
        if not certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
            raise _denied(f"the certificate of {subject} is not valid now")
        public_key = certificate.public_key()
        if not isinstance(public_key, ec.EllipticCurvePublicKey) or public_key.curve.name not in _CURVE_ORDERS:
            raise _denied(f"the certificate of {subject} holds no P-256 or P-384 key")
        units = {attribute.value for attribute in certificate.subject.get_attributes_for_oid(
            NameOID.ORGANIZATIONAL_UNIT_NAME)}
        roles = sorted(units & set(NODE_OUS))
        if len(roles) != 1:
            raise _denied(f"the certificate of {subject} must have one NodeOU of {', '.join(NODE_OUS)}, "
                          f"not {roles or 'none'}")
        known = self._users.get(certificate.fingerprint(hashes.SHA256()))
        if known is None:  # issued by the CA, but not in the crypto tree: the chaincode's copy is signed by any key
            names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
            known = (str(names[0].value) if names else subject, ec.generate_private_key(ec.SECP256R1()))
        user, key = known
        return Member(Caller(domain, user, creator, key), roles[0], public_key, certificate.not_valid_after_utc)


def _issued_by(certificate: x509.Certificate, ca: x509.Certificate) -> bool:
    try:
        certificate.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


@dataclass(frozen=True)
class Endorser:
    """A peer's enrollment identity, signing endorsements."""

    identity: bytes  # msp.SerializedIdentity
    sign: Callable[[bytes], bytes] = field(repr=False)  # a low-S DER signature of a SHA-256 digest

    @classmethod
    def load(cls, layout: NetworkLayout, domain: Domain, peer: Peer) -> Endorser:
        credentials = ServiceIdentity.load(layout.peer_dir(domain, peer) / "msp", domain.msp_id)
        return cls(credentials.identity.serialize(), credentials.signer)

    def endorse(self, response_payload: bytes) -> proposal_response_pb2.Endorsement:
        signature = self.sign(hashlib.sha256(response_payload + self.identity).digest())
        return proposal_response_pb2.Endorsement(endorser=self.identity, signature=signature)


# --- proposals and transactions -------------------------------------------------------------------


@dataclass(frozen=True)
class Proposal:
    """What the Gateway and the chaincode read from a client's signed proposal."""

    header: common_pb2.Header
    payload: proposal_pb2.ChaincodeProposalPayload
    tx_id: str
    channel: str
    chaincode: str
    args: tuple[bytes, ...]  # args[0]: "contract:Function"
    creator: bytes
    nonce: bytes
    timestamp: datetime
    transient: dict[str, bytes]

    @property
    def function(self) -> str:
        return self.args[0].decode("utf-8", "replace")


def parse_proposal(signed: proposal_pb2.SignedProposal) -> Proposal:
    """The proposal; Refused (INVALID_ARGUMENT) when it cannot be read or its transaction id is not
    sha256(nonce + creator)."""
    proposal = _parse(proposal_pb2.Proposal, signed.proposal_bytes, "proposal")
    header = _parse(common_pb2.Header, proposal.header, "proposal header")
    channel_header = _parse(common_pb2.ChannelHeader, header.channel_header, "channel header")
    signature_header = _parse(common_pb2.SignatureHeader, header.signature_header, "signature header")
    payload = _parse(proposal_pb2.ChaincodeProposalPayload, proposal.payload, "proposal payload")
    spec = _parse(chaincode_pb2.ChaincodeInvocationSpec, payload.input, "chaincode invocation spec").chaincode_spec
    if channel_header.type != common_pb2.HeaderType.ENDORSER_TRANSACTION:
        raise _malformed(f"invalid header type {channel_header.type}, expected ENDORSER_TRANSACTION")
    expected = hashlib.sha256(signature_header.nonce + signature_header.creator).hexdigest()
    if channel_header.tx_id != expected:
        raise _malformed(f"invalid txid. got [{channel_header.tx_id}], expected [{expected}]")
    if not spec.chaincode_id.name:
        raise _malformed("no chaincode name")
    if not spec.input.args:
        raise _malformed("no transaction name")
    return Proposal(
        header=header,
        payload=payload,
        tx_id=channel_header.tx_id,
        channel=channel_header.channel_id,
        chaincode=spec.chaincode_id.name,
        args=tuple(spec.input.args),
        creator=signature_header.creator,
        nonce=signature_header.nonce,
        timestamp=channel_header.timestamp.ToDatetime(tzinfo=UTC),
        transient=dict(payload.TransientMap),
    )


def _parse(message_type, data: bytes, what: str):
    try:
        return message_type.FromString(data)
    except DecodeError:
        raise _malformed(f"malformed {what}") from None


def _malformed(reason: str) -> Refused:
    return Refused(grpc.StatusCode.INVALID_ARGUMENT, f"failed to unpack transaction proposal: {reason}")


def chaincode_event(proposal: Proposal, result: TxResult) -> chaincode_event_pb2.ChaincodeEvent | None:
    """The transaction's event as a block carries it (the peer adds chaincode and transaction id)."""
    if result.event is None:
        return None
    return chaincode_event_pb2.ChaincodeEvent(chaincode_id=proposal.chaincode, tx_id=proposal.tx_id,
                                              event_name=result.event.event_name, payload=result.event.payload)


def prepared_transaction(proposal: Proposal, result: TxResult, chaincode_id: chaincode_pb2.ChaincodeID,
                         endorsers: Iterable[Endorser]) -> common_pb2.Envelope:
    """The unsigned transaction Envelope, assembled as the Gateway assembles it from the endorsements."""
    public_payload = proposal_pb2.ChaincodeProposalPayload(input=proposal.payload.input).SerializeToString()
    proposal_hash = hashlib.sha256(
        proposal.header.channel_header + proposal.header.signature_header + public_payload
    ).digest()
    event = chaincode_event(proposal, result)
    action = proposal_pb2.ChaincodeAction(
        response=proposal_response_pb2.Response(status=result.status, message=result.message, payload=result.payload),
        chaincode_id=chaincode_id,
        events=event.SerializeToString() if event is not None else b"",
    )
    response_payload = proposal_response_pb2.ProposalResponsePayload(
        proposal_hash=proposal_hash, extension=action.SerializeToString()
    ).SerializeToString()
    action_payload = transaction_pb2.ChaincodeActionPayload(
        chaincode_proposal_payload=public_payload,
        action=transaction_pb2.ChaincodeEndorsedAction(
            proposal_response_payload=response_payload,
            endorsements=[endorser.endorse(response_payload) for endorser in endorsers],
        ),
    )
    transaction = transaction_pb2.Transaction(actions=[transaction_pb2.TransactionAction(
        header=proposal.header.signature_header, payload=action_payload.SerializeToString()
    )])
    payload = common_pb2.Payload(header=proposal.header, data=transaction.SerializeToString())
    return common_pb2.Envelope(payload=payload.SerializeToString())


@dataclass
class _Committed:
    """A transaction endorsed, hence committed, here."""

    channel: str
    payload: bytes  # of the prepared Envelope: what Submit must carry
    block: int
    submitted: bool = False


@dataclass(frozen=True)
class _Block:
    tx_id: str
    events: tuple[chaincode_event_pb2.ChaincodeEvent, ...]


# --- the server -----------------------------------------------------------------------------------


class ContractGatewayServer:
    """The Gateway service of each domain's duty peer (or of `peers`), at its address with its TLS
    certificate, over one FakeFabric of the topology (made at start, or `fabric`, which stays open).
    `chaincodes` (name -> address of its chaincode server) go to the FakeFabric made at start: chaincodes
    served beside the application's, such as the Node baseline.

    Thread-safe: calls are served concurrently; each channel runs its transactions one at a time."""

    def __init__(self, topology: Topology, layout: NetworkLayout, *, peers: Iterable[Peer] | None = None,
                 fabric: FakeFabric | None = None, max_workers: int = 64,
                 chaincodes: Mapping[str, str] | None = None):
        if fabric is not None and chaincodes:
            raise ValueError("give the chaincodes to the FakeFabric, or no fabric")
        self.topology = topology
        self.layout = layout
        self.peers = tuple(peers) if peers is not None else tuple(domain.duty_peer for domain in topology.domains)
        self.fabric = fabric
        self._owns_fabric = fabric is None
        self._max_workers = max_workers
        self.identities = Identities(topology, layout)
        self._channels = {channel.name: channel for channel in topology.channels}
        endorsers = {domain.id: Endorser.load(layout, domain, domain.duty_peer) for domain in topology.domains}
        self._endorsers = {channel.name: [endorsers[domain.id] for domain in channel.domains]
                           for channel in topology.channels}
        self._chaincodes = dict(chaincodes or {})
        self._versions = {chaincode.name: chaincode.version for chaincode in topology.chaincodes}
        self._ledger = threading.Condition()
        self._committed: dict[str, _Committed] = {}  # transaction id ->
        self._endorsing: set[str] = set()  # transaction ids being endorsed
        self._blocks: dict[str, dict[int, _Block]] = {channel.name: {} for channel in topology.channels}
        self._counts: Counter[str] = Counter()
        self._servers: list[grpc.Server] = []
        self._stopped = False

    # --- lifecycle

    def start(self) -> ContractGatewayServer:
        """Serve every peer; OSError when an address is taken."""
        if self.fabric is None:
            self.fabric = FakeFabric(self.topology, self.layout, chaincodes=self._chaincodes)
        try:
            for peer in self.peers:
                self._servers.append(self._serve(peer))
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self, grace: float | None = None) -> None:
        """Stop serving (calls in flight are cancelled after `grace` seconds) and close the fabric if it is ours."""
        with self._ledger:
            self._stopped = True
            self._ledger.notify_all()
        for server in self._servers:
            server.stop(grace).wait()
        self._servers.clear()
        if self._owns_fabric and self.fabric is not None:
            self.fabric.close()
            self.fabric = None

    def __enter__(self) -> ContractGatewayServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def addresses(self) -> dict[str, str]:
        """Peer host name -> the address served for it."""
        return {peer.host_name: peer.address for peer in self.peers}

    def counts(self) -> dict[str, int]:
        """Calls answered by method ("Endorse") and refused ("Endorse refused")."""
        with self._ledger:
            return dict(self._counts)

    def block_of(self, tx_id: str) -> int | None:
        """The block a transaction committed in, if it did here."""
        with self._ledger:
            committed = self._committed.get(tx_id)
            return committed.block if committed else None

    def _serve(self, peer: Peer) -> grpc.Server:
        domain = self.topology.domain(peer.domain_id)
        tls = self.layout.peer_dir(domain, peer) / "tls"
        server = grpc.server(
            ThreadPoolExecutor(max_workers=self._max_workers, thread_name_prefix=f"gateway-{peer.host_name}"),
            options=[("grpc.so_reuseport", 0),  # a taken port fails instead of being shared
                     ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
                     ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES)],
        )
        gateway_pb2_grpc.add_GatewayServicer_to_server(PeerGateway(self, peer), server)
        key_and_certificate = ((tls / "server.key").read_bytes(), (tls / "server.crt").read_bytes())
        credentials = grpc.ssl_server_credentials([key_and_certificate])
        try:
            port = server.add_secure_port(peer.address, credentials)
        except RuntimeError:
            port = 0
        if port == 0:
            raise OSError(f"cannot listen on {peer.address} for {peer.host_name}")
        server.start()
        return server

    # --- the Gateway's methods, as served by `peer`

    def evaluate(self, peer: Peer, request: gateway_pb2.EvaluateRequest, context) -> gateway_pb2.EvaluateResponse:
        proposal = parse_proposal(request.proposed_transaction)
        member = self._proposer(peer, proposal, request.proposed_transaction)
        result, _ = self._execute(member, proposal, commit=False)
        response = proposal_response_pb2.Response(status=result.status, message=result.message, payload=result.payload)
        return gateway_pb2.EvaluateResponse(result=response)

    def endorse(self, peer: Peer, request: gateway_pb2.EndorseRequest, context) -> gateway_pb2.EndorseResponse:
        proposal = parse_proposal(request.proposed_transaction)
        member = self._proposer(peer, proposal, request.proposed_transaction)
        with self._ledger:
            if proposal.tx_id in self._committed or proposal.tx_id in self._endorsing:
                detail = ErrorDetail(peer.address, self.topology.domain(peer.domain_id).msp_id,
                                     f"duplicate transaction found [{proposal.tx_id}]. Creator [{member.name}]")
                raise Refused(grpc.StatusCode.ABORTED, ENDORSE_FAILED, [detail])
            self._endorsing.add(proposal.tx_id)
        try:
            result, block = self._execute(member, proposal, commit=True)
            chaincode_id = chaincode_pb2.ChaincodeID(name=proposal.chaincode,
                                                     version=self._versions.get(proposal.chaincode, ""))
            envelope = prepared_transaction(proposal, result, chaincode_id, self._endorsers[proposal.channel])
            event = chaincode_event(proposal, result)
        except BaseException:
            with self._ledger:
                self._endorsing.discard(proposal.tx_id)
            raise
        with self._ledger:
            self._endorsing.discard(proposal.tx_id)
            self._committed[proposal.tx_id] = _Committed(proposal.channel, envelope.payload, block)
            self._blocks[proposal.channel][block] = _Block(proposal.tx_id, (event,) if event is not None else ())
            self._ledger.notify_all()
        return gateway_pb2.EndorseResponse(prepared_transaction=envelope)

    def submit(self, peer: Peer, request: gateway_pb2.SubmitRequest, context) -> gateway_pb2.SubmitResponse:
        envelope = request.prepared_transaction
        payload = _parse(common_pb2.Payload, envelope.payload, "transaction payload")
        channel_header = _parse(common_pb2.ChannelHeader, payload.header.channel_header, "channel header")
        signature_header = _parse(common_pb2.SignatureHeader, payload.header.signature_header, "signature header")
        channel = self._joined(peer, channel_header.channel_id)
        member = self.identities.member(signature_header.creator)
        member.verify(envelope.signature, envelope.payload, "transaction")
        member.require(WRITER_ROLES, channel, "submit transactions")
        with self._ledger:
            committed = self._committed.get(channel_header.tx_id)
            if committed is None or committed.channel != channel.name or committed.payload != envelope.payload:
                why = "was not endorsed here" if committed is None else "is not the transaction endorsed here"
                raise Refused(grpc.StatusCode.FAILED_PRECONDITION,  # refused before ordering, as the client can tell
                              f"transaction {channel_header.tx_id} {why}")
            committed.submitted = True
        return gateway_pb2.SubmitResponse()

    def commit_status(self, peer: Peer, signed: gateway_pb2.SignedCommitStatusRequest,
                      context) -> gateway_pb2.CommitStatusResponse:
        request = _parse(gateway_pb2.CommitStatusRequest, signed.request, "commit status request")
        channel = self._joined(peer, request.channel_id)
        member = self.identities.member(request.identity)
        member.verify(signed.signature, signed.request, "commit status request")
        member.require(READER_ROLES, channel, "read commit statuses")
        with self._ledger:  # a transaction not (yet) committed: wait for it, or for the client to give up
            while not self._stopped and context.is_active():
                committed = self._committed.get(request.transaction_id)
                if committed is not None and committed.channel == channel.name:
                    return gateway_pb2.CommitStatusResponse(result=transaction_pb2.VALID, block_number=committed.block)
                self._ledger.wait(POLL)
        raise Refused(grpc.StatusCode.CANCELLED if not self._stopped else grpc.StatusCode.UNAVAILABLE,
                      f"transaction {request.transaction_id} has not committed")

    def chaincode_events(self, peer: Peer, signed: gateway_pb2.SignedChaincodeEventsRequest,
                         context) -> Iterator[gateway_pb2.ChaincodeEventsResponse]:
        request = _parse(gateway_pb2.ChaincodeEventsRequest, signed.request, "chaincode events request")
        channel = self._joined(peer, request.channel_id)
        member = self.identities.member(request.identity)
        member.verify(signed.signature, signed.request, "chaincode events request")
        member.require(READER_ROLES, channel, "read events")
        position = request.start_position.WhichOneof("Type")
        if position not in (None, "next_commit", "specified"):
            raise Refused(grpc.StatusCode.INVALID_ARGUMENT, f"invalid start position type: {position}")
        blocks = self._blocks[channel.name]
        with self._ledger:
            number = request.start_position.specified.number if position == "specified" else max(blocks, default=0) + 1
        skip_through = request.after_transaction_id  # in the start block: events up to this transaction's are skipped
        while True:
            with self._ledger:
                while number not in blocks and not self._stopped and context.is_active():
                    self._ledger.wait(POLL)
                block = blocks.get(number)
            if block is None:
                return
            if skip_through and block.tx_id == skip_through:
                events = []
            else:
                events = [event for event in block.events if event.chaincode_id == request.chaincode_id]
            skip_through = ""
            if events:
                yield gateway_pb2.ChaincodeEventsResponse(events=events, block_number=number)
            number += 1

    # --- checks and execution

    def _joined(self, peer: Peer, channel_name: str) -> Channel:
        channel = self._channels.get(channel_name)
        if channel is None or peer not in channel.peers:
            raise Refused(grpc.StatusCode.NOT_FOUND, f"channel '{channel_name}' not found")
        return channel

    def _proposer(self, peer: Peer, proposal: Proposal, signed: proposal_pb2.SignedProposal) -> Member:
        channel = self._joined(peer, proposal.channel)
        member = self.identities.member(proposal.creator)
        member.verify(signed.signature, signed.proposal_bytes, "proposal")
        member.require(WRITER_ROLES, channel, "propose transactions")
        return member

    def _execute(self, member: Member, proposal: Proposal, *, commit: bool) -> tuple[TxResult, int]:
        try:
            result, block = self.fabric.execute(
                member.caller, proposal.channel, proposal.chaincode, proposal.function, proposal.args[1:],
                commit=commit, nonce=proposal.nonce, timestamp=proposal.timestamp, transient=proposal.transient,
            )
        except GatewayError as error:
            raise Refused.from_gateway_error(error) from None
        if result.tx_id != proposal.tx_id:
            raise Refused(grpc.StatusCode.INTERNAL,
                          f"the chaincode ran transaction {result.tx_id}, not the client's {proposal.tx_id}")
        return result, block

    def _count(self, what: str) -> None:
        with self._ledger:
            self._counts[what] += 1


class PeerGateway(gateway_pb2_grpc.GatewayServicer):
    """The Gateway service of one peer: the server's methods, their refusals turned into gRPC errors."""

    def __init__(self, server: ContractGatewayServer, peer: Peer):
        self._server = server
        self.peer = peer

    def Evaluate(self, request, context):
        return self._call("Evaluate", self._server.evaluate, request, context)

    def Endorse(self, request, context):
        return self._call("Endorse", self._server.endorse, request, context)

    def Submit(self, request, context):
        return self._call("Submit", self._server.submit, request, context)

    def CommitStatus(self, request, context):
        return self._call("CommitStatus", self._server.commit_status, request, context)

    def ChaincodeEvents(self, request, context):
        try:
            yield from self._server.chaincode_events(self.peer, request, context)
        except Refused as refused:
            self._refuse(context, "ChaincodeEvents", refused)
        except Exception as error:  # noqa: BLE001 - answered, and logged with its trace
            self._fail(context, "ChaincodeEvents", error)

    def _call(self, method: str, handler, request, context):
        try:
            response = handler(self.peer, request, context)
        except Refused as refused:
            self._refuse(context, method, refused)
        except Exception as error:  # noqa: BLE001
            self._fail(context, method, error)
        self._server._count(method)
        return response

    def _refuse(self, context, method: str, refused: Refused) -> None:
        self._server._count(f"{method} refused")
        log.info("%s at %s refused: %s: %s%s", method, self.peer.host_name, refused.code.name, refused.message,
                 "".join(f" [{detail.address} ({detail.msp_id}): {detail.message}]" for detail in refused.details))
        if refused.details:
            status = status_pb2.Status(code=refused.code.value[0], message=refused.message)
            for detail in refused.details:
                status.details.add().Pack(gateway_pb2.ErrorDetail(
                    address=detail.address, msp_id=detail.msp_id, message=detail.message))
            context.set_trailing_metadata((("grpc-status-details-bin", status.SerializeToString()),))
        context.abort(refused.code, refused.message)

    def _fail(self, context, method: str, error: Exception) -> None:
        self._server._count(f"{method} failed")
        log.exception("%s at %s failed", method, self.peer.host_name)
        context.abort(grpc.StatusCode.INTERNAL, f"{method} failed in the contract gateway: {error!r}")


# --- command line ---------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.caliper.gateway_server",
        description="Serve the Fabric Gateway of the topology's peers over the real contracts (no Fabric needed). "
                    "Prints one line 'ready: {host name: address}' when serving; stops on SIGTERM or SIGINT.",
    )
    parser.add_argument("--topology", type=Path, help="the topology file (default: network/topology.yaml)")
    parser.add_argument("--build-dir", type=Path,
                        help="where the crypto tree is (default: $MEDFABRIC_BUILD_DIR, else build/network)")
    parser.add_argument("--generate-crypto", action="store_true",
                        help="first add the crypto material the build dir lacks (existing material is kept)")
    parser.add_argument("--all-peers", action="store_true", help="serve every peer, not only the duty peers")
    parser.add_argument("--node-baseline", action="store_true",
                        help="also serve the topology's Node baseline chaincode (caliper/baseline, started here)")
    parser.add_argument("--verbose", "-v", action="store_true", help="log every refused call on stderr")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    if args.verbose:
        log.setLevel(logging.INFO)

    topology = load_topology(args.topology)
    layout = NetworkLayout(args.build_dir.resolve()) if args.build_dir else NetworkLayout.default()
    if args.generate_crypto:
        generate_crypto(topology, layout)
    missing = [str(layout.peer_tls_ca(domain)) for domain in topology.domains
               if not layout.peer_tls_ca(domain).is_file()]
    if missing:
        print(f"error: no crypto material in {layout.crypto} (missing {missing[0]}): generate it first, "
              "or pass --generate-crypto", file=sys.stderr)
        return 2

    if args.node_baseline and topology.baseline is None:
        print("error: --node-baseline: the topology has no baseline chaincode", file=sys.stderr)
        return 2

    stop = threading.Event()
    for signal_number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signal_number, lambda *_: stop.set())
    peers = topology.peers if args.all_peers else None
    with contextlib.ExitStack() as stack:
        chaincodes = {}
        if args.node_baseline:
            from .chaincode_servers import ChaincodeUnavailable, node_baseline

            try:
                chaincode_id = f"{topology.baseline.name}_{topology.baseline.version}:fake"
                baseline = stack.enter_context(node_baseline(chaincode_id))
            except ChaincodeUnavailable as error:
                print(f"error: {error}", file=sys.stderr)
                return 1
            chaincodes[topology.baseline.name] = baseline.address
        server = ContractGatewayServer(topology, layout, peers=peers, chaincodes=chaincodes)
        try:
            server.start()
        except OSError as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
        try:
            print(f"ready: {json.dumps(server.addresses)}", flush=True)
            while not stop.wait(0.5):
                pass
        finally:
            counts = server.counts()
            server.stop()
            print(f"stopped: {json.dumps(counts, sort_keys=True)}", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
