"""An in-process Fabric for the client tests: the real contracts on the real chaincode runtime, a world state per channel.

FakeFabric serves ContractRouter(ALL_CONTRACTS) from a ChaincodeServer and drives it
with one FakePeer (tests/unit/chaincode/fakepeer.py) per channel of the topology.
`fabric.connect_as(domain, user)` answers like medfabric.consortium.connection.connect_as with
a gateway of the same shape (get_network -> get_contract -> evaluate_transaction,
submit_transaction, submit_async) whose proposals carry the user's own certificate
from a generated crypto tree as creator, signed with the user's key: MSP ids,
client ids and certificate attributes are the ones a real network would see. As on
Fabric:

* a channel orders its transactions one at a time; an evaluation's writes are discarded;
* transaction times come from `fabric.clock`: the wall clock plus an offset a test advances, never going back;
* a caller whose MSP is not a member of the channel is refused (PERMISSION_DENIED);
* a failing transaction raises EndorseError (submit) or GatewayError (evaluate) with the peer's detail;
* `fabric.refuse(channel, function)` plays an ordering service that stopped answering for that function.

Other chaincodes run beside it where their servers are given by address, as a peer's chaincode-as-a-service
definition gives them: `FakeFabric(topology, layout, chaincodes={"medfabric-node": "127.0.0.1:9999"})` dials
that (plaintext) server with one FakePeer per channel, each chaincode with its own world state (its namespace),
and `execute(..., chaincode=...)` runs a transaction on the chaincode it names. Naming the application chaincode
there serves it from that address instead of from a server in this process.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Iterable, Mapping

import grpc
from cryptography.hazmat.primitives.asymmetric import ec
from fabric_protos.peer import transaction_pb2

from medfabric.gateway import CommitError, EndorseError, ErrorDetail, GatewayError, Status, SubmitError
from medfabric.consortium.layout import NetworkLayout
from medfabric.consortium.service_identity import ServiceIdentity
from medfabric.consortium.topology import Channel, Domain, Topology
from medfabric_chaincode.contracts import ALL_CONTRACTS
from medfabric_chaincode.runtime import ChaincodeServer, ContractRouter, ServerConfig

from ..chaincode.fakepeer import FakePeer, TxResult

PACKAGE_ID = "medfabric_0.1:fake"


class LedgerClock:
    """Transaction times: the wall clock plus `advance`d seconds, at least 1 ms after the previous one."""

    def __init__(self) -> None:
        self._offset = timedelta(0)
        self._last = datetime.min.replace(tzinfo=UTC)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            self._last = max(datetime.now(UTC) + self._offset, self._last + timedelta(milliseconds=1))
            return self._last

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._offset += timedelta(seconds=seconds)


@dataclass(frozen=True)
class Caller:
    """A user of a domain as its proposals show it."""

    domain: Domain
    user: str
    creator: bytes  # msp.SerializedIdentity with the user's certificate
    key: ec.EllipticCurvePrivateKey = field(repr=False)


@dataclass
class _Channel:
    channel: Channel
    peer: FakePeer  # of the application chaincode
    lock: threading.Lock = field(default_factory=threading.Lock)
    blocks: int = 0
    others: dict[str, FakePeer] = field(default_factory=dict)  # chaincode name -> its peer, for other chaincodes

    @property
    def peers(self) -> list[FakePeer]:
        return [self.peer, *self.others.values()]

    @property
    def members(self) -> set[str]:
        return {domain.msp_id for domain in self.channel.domains}


class FakeFabric:
    """Every channel of `topology`, the real chaincode on each; identities from the crypto tree in `layout`.

    `chaincodes`: chaincode name -> address of its chaincode server (plaintext), for chaincodes served elsewhere
    (the application chaincode's name among them: that server instead of one in this process)."""

    def __init__(self, topology: Topology, layout: NetworkLayout, chaincodes: Mapping[str, str] | None = None):
        self.topology = topology
        self.layout = layout
        self.clock = LedgerClock()
        addresses = dict(chaincodes or {})
        application = topology.chaincode.name
        self._server: ChaincodeServer | None = None
        if application not in addresses:
            self._server = ChaincodeServer(ServerConfig("127.0.0.1:0", PACKAGE_ID, tls=None),
                                           ContractRouter(ALL_CONTRACTS))
            addresses[application] = f"127.0.0.1:{self._server.start()}"
        self.chaincodes = {application: addresses.pop(application), **addresses}  # name -> server address
        peer_key = ec.generate_private_key(ec.SECP256R1())  # signs nothing: every proposal is signed by its caller
        self._channels = {
            channel.name: _Channel(channel, FakePeer(self.chaincodes[application], b"", peer_key, stream_timeout=None),
                                   others={name: FakePeer(address, b"", peer_key, stream_timeout=None)
                                           for name, address in self.chaincodes.items() if name != application})
            for channel in topology.channels
        }
        self._refused: set[tuple[str, str]] = set()
        self._refused_evaluations: set[tuple[str, str]] = set()
        try:
            for channel in self._channels.values():
                for peer in channel.peers:
                    peer.connect()
        except BaseException:
            self.close()
            raise

    def connect_as(self, domain_id: str, user: str = "Admin", **_options: object) -> FakeGateway:
        """A gateway for `user` of the domain, like medfabric.consortium.connection.connect_as (same arguments)."""
        domain = self.topology.domain(domain_id)
        credentials = ServiceIdentity.load(self.layout.user_msp(domain, user), domain.msp_id)
        return FakeGateway(self, Caller(domain, user, credentials.identity.serialize(), credentials.private_key))

    def refuse(self, channel: str, function: str, *, evaluations: bool = False) -> None:
        """From now on, submitting `function` ("contract:Name") on `channel` fails as if no orderer answered;
        with `evaluations`, evaluating it fails too, as if no peer answered."""
        self._refused.add((channel, function))
        if evaluations:
            self._refused_evaluations.add((channel, function))

    def world_state(self, channel: str, chaincode: str | None = None) -> dict[tuple[str, str], bytes]:
        """The channel's committed state of the chaincode (default: the application's), (collection, key) ->
        value: change it to play an attacker with disk access."""
        return self._peer(self._channels[channel], chaincode or self.topology.chaincode.name).state

    def close(self) -> None:
        for channel in self._channels.values():
            for peer in channel.peers:
                peer.close()
        if self._server is not None:
            self._server.stop(0)

    def _peer(self, channel: _Channel, chaincode: str) -> FakePeer | None:
        return channel.peer if chaincode == self.topology.chaincode.name else channel.others.get(chaincode)

    def execute(self, caller: Caller, channel_name: str, chaincode: str, function: str,
                arguments: Iterable[str | bytes], *, commit: bool, **proposal: object) -> tuple[TxResult, int]:
        """Run one transaction as the caller; its result and the block it committed in (0 for an evaluation).

        `proposal` may give the client's own nonce, timestamp and transient data (FakePeer.invoke's options), so
        that the chaincode sees the client's transaction id; by default the peer makes them, at `clock` time."""
        refused = EndorseError if commit else GatewayError
        channel = self._channels.get(channel_name)
        if channel is None:
            raise refused(f"channel '{channel_name}' not found", grpc_code=grpc.StatusCode.NOT_FOUND)
        if caller.domain.msp_id not in channel.members:
            raise refused(f"access denied: channel [{channel_name}] creator org [{caller.domain.msp_id}]",
                          grpc_code=grpc.StatusCode.PERMISSION_DENIED)
        peer = self._peer(channel, chaincode)
        if peer is None:
            raise refused(f"chaincode {chaincode} is not defined on channel {channel_name}",
                          grpc_code=grpc.StatusCode.NOT_FOUND)
        if commit and (channel_name, function) in self._refused:
            raise SubmitError("no orderer answered", grpc_code=grpc.StatusCode.UNAVAILABLE)
        if not commit and (channel_name, function) in self._refused_evaluations:
            raise EndorseError("no peer answered", grpc_code=grpc.StatusCode.UNAVAILABLE)
        with channel.lock:
            options = {"timestamp": self.clock.now(), **proposal}
            result = peer.invoke(
                function, *arguments, channel=channel_name, creator=caller.creator, signer=caller.key,
                commit=commit, **options,
            )
            failed = result.kind != "COMPLETED" or result.status >= 400
            if commit and not failed:
                channel.blocks += 1
        if failed:
            detail = ErrorDetail(caller.domain.duty_peer.address, caller.domain.msp_id,
                                 f"chaincode response {result.status}, {result.message}")
            if commit:
                raise EndorseError("failed to endorse transaction, see attached details for more info",
                                   transaction_id=result.tx_id, grpc_code=grpc.StatusCode.ABORTED, details=[detail])
            raise GatewayError(f"evaluate call to endorser returned error: {detail.message}",
                               grpc_code=grpc.StatusCode.UNKNOWN, details=[detail])
        return result, channel.blocks if commit else 0


class FakeGateway:
    """One caller's connection; a context manager, like medfabric.gateway.Gateway."""

    def __init__(self, fabric: FakeFabric, caller: Caller):
        self.fabric = fabric
        self.caller = caller

    def get_network(self, name: str) -> FakeNetwork:
        return FakeNetwork(self, name)

    def close(self) -> None:
        """Nothing to close: the fabric is in process."""

    def __enter__(self) -> FakeGateway:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


@dataclass(frozen=True)
class FakeNetwork:
    gateway: FakeGateway
    name: str

    def get_contract(self, chaincode_name: str, contract_name: str | None = None) -> FakeContract:
        return FakeContract(self.gateway, self.name, chaincode_name, contract_name)


@dataclass(frozen=True)
class FakeSubmitted:
    """A committed transaction, shaped like medfabric.gateway.SubmittedTransaction."""

    transaction_id: str
    result: bytes
    status: Status

    def get_status(self) -> Status:
        return self.status


@dataclass(frozen=True)
class FakeContract:
    gateway: FakeGateway
    channel: str
    chaincode_name: str
    contract_name: str | None

    def evaluate_transaction(self, name: str, *args: str | bytes) -> bytes:
        result, _ = self._run(name, args, commit=False)
        return result.payload

    def submit_transaction(self, name: str, *args: str | bytes) -> bytes:
        return self.submit_async(name, arguments=args).result

    def submit_async(self, name: str, arguments: Iterable[str | bytes] = ()) -> FakeSubmitted:
        result, block = self._run(name, arguments, commit=True)
        return FakeSubmitted(result.tx_id, result.payload, Status(result.tx_id, transaction_pb2.VALID, block))

    def submit_committed(self, name: str, arguments: Iterable[str | bytes] = ()) -> FakeSubmitted:
        submitted = self.submit_async(name, arguments)
        if not submitted.get_status().successful:
            raise CommitError(submitted.get_status())
        return submitted

    def _run(self, name: str, arguments: Iterable[str | bytes], *, commit: bool) -> tuple[TxResult, int]:
        function = f"{self.contract_name}:{name}" if self.contract_name else name
        return self.gateway.fabric.execute(self.gateway.caller, self.channel, self.chaincode_name, function,
                                           arguments, commit=commit)
