"""FakePeer: the peer's side of the chaincode stream, over a real gRPC connection.

It dials the chaincode server as a Fabric peer does, answers REGISTER with REGISTERED and
READY, sends TRANSACTION messages carrying properly built signed proposals, and answers the
chaincode's requests from an in-memory world state. Writes of a transaction are committed
(with history) only when it completes with a success status, as after endorsement and commit.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import queue
import threading
from collections.abc import Iterable
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC, datetime

import grpc
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from fabric_protos.common import common_pb2
from fabric_protos.ledger.queryresult import kv_query_result_pb2
from fabric_protos.peer import (
    chaincode_event_pb2,
    chaincode_pb2,
    chaincode_shim_pb2,
    chaincode_shim_pb2_grpc,
    proposal_pb2,
    proposal_response_pb2,
)
from google.protobuf.timestamp_pb2 import Timestamp

Msg = chaincode_shim_pb2.ChaincodeMessage
CHANNEL = "public"
NAMESPACE = "medfabric"
DEFAULT_TIMESTAMP = datetime(2025, 3, 4, 5, 6, 7, 891000, tzinfo=UTC)
WAIT = 5.0  # seconds any single wait in the tests may take
MAX_MESSAGE_BYTES = 100 * 1024 * 1024


@dataclass
class TxResult:
    """How the chaincode answered one transaction, and what it wrote."""

    tx_id: str
    kind: str  # "COMPLETED" or "ERROR"
    status: int
    message: str
    payload: bytes
    event: chaincode_event_pb2.ChaincodeEvent | None
    writes: dict[tuple[str, str], bytes | None]  # (collection, key) -> value; None deletes

    def json(self):
        return json.loads(self.payload)


@dataclass
class _Transaction:
    future: Future
    timestamp: datetime
    commit: bool = True  # False for an evaluation: its writes are discarded
    writes: dict[tuple[str, str], bytes | None] = field(default_factory=dict)
    metadata_writes: dict[tuple[str, str], dict[str, bytes]] = field(default_factory=dict)


def _timestamp(moment: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


def build_signed_proposal(
    args: list[bytes],
    *,
    channel: str,
    creator: bytes,
    signer: ec.EllipticCurvePrivateKey,
    timestamp: datetime,
    transient: dict[str, bytes] | None = None,
    nonce: bytes | None = None,
) -> tuple[str, proposal_pb2.SignedProposal]:
    """A signed proposal as a client builds it; returns Fabric's tx id (sha256(nonce + creator)) with it."""
    nonce = nonce if nonce is not None else os.urandom(24)
    tx_id = hashlib.sha256(nonce + creator).hexdigest()
    extension = proposal_pb2.ChaincodeHeaderExtension(chaincode_id=chaincode_pb2.ChaincodeID(name=NAMESPACE))
    channel_header = common_pb2.ChannelHeader(
        type=common_pb2.HeaderType.ENDORSER_TRANSACTION,
        channel_id=channel,
        tx_id=tx_id,
        timestamp=_timestamp(timestamp),
        extension=extension.SerializeToString(),
    )
    header = common_pb2.Header(
        channel_header=channel_header.SerializeToString(),
        signature_header=common_pb2.SignatureHeader(creator=creator, nonce=nonce).SerializeToString(),
    )
    spec = chaincode_pb2.ChaincodeSpec(
        chaincode_id=chaincode_pb2.ChaincodeID(name=NAMESPACE),
        input=chaincode_pb2.ChaincodeInput(args=args),
    )
    payload = proposal_pb2.ChaincodeProposalPayload(
        input=chaincode_pb2.ChaincodeInvocationSpec(chaincode_spec=spec).SerializeToString(),
        TransientMap=transient or {},
    )
    proposal_bytes = proposal_pb2.Proposal(
        header=header.SerializeToString(), payload=payload.SerializeToString()
    ).SerializeToString()
    signature = signer.sign(proposal_bytes, ec.ECDSA(hashes.SHA256()))
    return tx_id, proposal_pb2.SignedProposal(proposal_bytes=proposal_bytes, signature=signature)


class FakePeer:
    """Acts as the peer for one Connect stream to the chaincode server at `target`."""

    def __init__(
        self,
        target: str,
        creator: bytes,
        signer: ec.EllipticCurvePrivateKey,
        *,
        credentials: grpc.ChannelCredentials | None = None,
        channel_options: Iterable[tuple[str, object]] = (),
        batch_size: int = 2,
        stream_timeout: float | None = 60,
        write_batch: int | None = None,
    ):
        options = [
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            *channel_options,
        ]
        self._channel = (
            grpc.secure_channel(target, credentials, options) if credentials else grpc.insecure_channel(target, options)
        )
        self.creator = creator
        self.signer = signer
        self.batch_size = batch_size
        self.stream_timeout = stream_timeout  # None: the stream lasts until close()
        # None: READY says nothing (each write its own request); else the peer takes WRITE_BATCH_STATE messages
        # of at most this many records (0: any number), as a Fabric >= 2.5 peer with useWriteBatch says
        self.write_batch = write_batch
        self.state: dict[tuple[str, str], bytes] = {}  # (collection, key); "" is the public state
        self.state_metadata: dict[tuple[str, str], dict[str, bytes]] = {}
        self.history: dict[str, list[kv_query_result_pb2.KeyModification]] = {}
        self.failures: dict[str, str] = {}  # request type name -> error text the peer answers with
        self.requests: list[str] = []  # type names of the requests received, in order
        self.registered: Future[str] = Future()
        self.keepalives: queue.SimpleQueue[Msg] = queue.SimpleQueue()
        self.protocol_errors: queue.SimpleQueue[Msg] = queue.SimpleQueue()
        self._outbound: queue.SimpleQueue[Msg | None] = queue.SimpleQueue()
        self._transactions: dict[tuple[str, str], _Transaction] = {}
        self._iterators: dict[str, list[bytes]] = {}
        self._iterator_ids = itertools.count(1)
        self._lock = threading.Lock()
        self._held: list[Msg] = []
        self._hold_until = 0
        self._stream = None
        self._reader: threading.Thread | None = None

    # Connection ----------------------------------------------------------------------------------

    def connect(self) -> str:
        """Open the stream and complete the handshake; returns the chaincode id the server registered.

        Raises grpc.RpcError when the stream cannot be opened.
        """
        self._stream = chaincode_shim_pb2_grpc.ChaincodeStub(self._channel).Connect(
            iter(self._outbound.get, None), timeout=self.stream_timeout
        )
        self._reader = threading.Thread(target=self._read, name="fake-peer-reader", daemon=True)
        self._reader.start()
        return self.registered.result(timeout=WAIT)

    def close(self) -> None:
        self._outbound.put(None)
        if self._stream is not None:
            self._stream.cancel()
        if self._reader is not None:
            self._reader.join(timeout=WAIT)
        self._channel.close()

    def send(self, msg: Msg) -> None:
        self._outbound.put(msg)

    def hold_replies_until(self, count: int) -> None:
        """Answer no request until `count` of them are waiting at once (then answer them all)."""
        with self._lock:
            self._hold_until = count

    # Transactions --------------------------------------------------------------------------------

    def submit(
        self,
        function: str,
        *args: str | bytes,
        channel: str = CHANNEL,
        creator: bytes | None = None,
        transient: dict[str, bytes] | None = None,
        timestamp: datetime = DEFAULT_TIMESTAMP,
        nonce: bytes | None = None,
        init: bool = False,
        with_proposal: bool = True,
        signer: ec.EllipticCurvePrivateKey | None = None,
        commit: bool = True,
    ) -> Future[TxResult]:
        """Send a TRANSACTION (or INIT); the future resolves when the chaincode answers it.

        `signer` signs the proposal instead of the peer's own key (pass the creator's);
        `commit=False` evaluates: the answer comes back, the writes are not committed.
        """
        arguments = [function.encode(), *(arg if isinstance(arg, bytes) else arg.encode() for arg in args)]
        tx_id, signed_proposal = build_signed_proposal(
            arguments,
            channel=channel,
            creator=creator if creator is not None else self.creator,
            signer=signer if signer is not None else self.signer,
            timestamp=timestamp,
            transient=transient,
            nonce=nonce,
        )
        future: Future[TxResult] = Future()
        with self._lock:
            self._transactions[(channel, tx_id)] = _Transaction(future, timestamp, commit)
        msg = Msg(
            type=Msg.INIT if init else Msg.TRANSACTION,
            txid=tx_id,
            channel_id=channel,
            payload=chaincode_pb2.ChaincodeInput(args=arguments, is_init=init).SerializeToString(),
        )
        if with_proposal:
            msg.proposal.CopyFrom(signed_proposal)
        self.send(msg)
        return future

    def invoke(self, function: str, *args: str | bytes, **options) -> TxResult:
        return self.submit(function, *args, **options).result(timeout=WAIT)

    # Incoming messages ---------------------------------------------------------------------------

    def _read(self) -> None:
        try:
            for msg in self._stream:
                self._receive(msg)
        except grpc.RpcError as error:  # cancelled by close(), or no connection
            if not self.registered.done():
                self.registered.set_exception(error)

    def _receive(self, msg: Msg) -> None:
        if msg.type == Msg.REGISTER:
            self.send(Msg(type=Msg.REGISTERED))
            params = b"" if self.write_batch is None else chaincode_pb2.ChaincodeAdditionalParams(
                use_write_batch=True, max_size_write_batch=self.write_batch).SerializeToString()
            self.send(Msg(type=Msg.READY, payload=params))
            self.registered.set_result(chaincode_pb2.ChaincodeID.FromString(msg.payload).name)
        elif msg.type == Msg.KEEPALIVE:
            self.keepalives.put(msg)
        elif msg.type in (Msg.COMPLETED, Msg.ERROR) and (msg.channel_id, msg.txid) in self._transactions:
            self._finish(msg)
        elif msg.type == Msg.ERROR:
            self.protocol_errors.put(msg)
        else:
            with self._lock:
                self.requests.append(Msg.Type.Name(msg.type))
                self._held.append(msg)
                if len(self._held) < self._hold_until:
                    return
                self._hold_until = 0
                held, self._held = self._held, []
            for request in held:
                self.send(self._answer(request))

    def _finish(self, msg: Msg) -> None:
        with self._lock:
            tx = self._transactions.pop((msg.channel_id, msg.txid))
        if msg.type == Msg.ERROR:
            result = TxResult(msg.txid, "ERROR", 500, msg.payload.decode(), b"", None, tx.writes)
        else:
            response = proposal_response_pb2.Response.FromString(msg.payload)
            event = msg.chaincode_event if msg.HasField("chaincode_event") else None
            result = TxResult(
                msg.txid, "COMPLETED", response.status, response.message, response.payload, event, tx.writes
            )
            if response.status < 400 and tx.commit:
                self._commit(msg.txid, tx)
        tx.future.set_result(result)

    def _commit(self, tx_id: str, tx: _Transaction) -> None:
        for (collection, key), value in tx.writes.items():
            if value is None:
                self.state.pop((collection, key), None)
            else:
                self.state[(collection, key)] = value
            if not collection:
                modification = kv_query_result_pb2.KeyModification(
                    tx_id=tx_id, value=value or b"", timestamp=_timestamp(tx.timestamp), is_delete=value is None
                )
                self.history.setdefault(key, []).insert(0, modification)  # newest first, as Fabric 2+
        self.state_metadata.update(tx.metadata_writes)

    # Answers to the chaincode's requests ---------------------------------------------------------

    def _answer(self, msg: Msg) -> Msg:
        name = Msg.Type.Name(msg.type)
        reply = Msg(type=Msg.RESPONSE, txid=msg.txid, channel_id=msg.channel_id)
        if name in self.failures:
            reply.type, reply.payload = Msg.ERROR, self.failures[name].encode()
            return reply
        with self._lock:
            tx = self._transactions.get((msg.channel_id, msg.txid))
        if tx is None:
            reply.type, reply.payload = Msg.ERROR, b"no such transaction"
            return reply
        reply.payload = getattr(self, f"_on_{name.lower()}")(msg.payload, tx)
        return reply

    def _on_get_state(self, payload: bytes, tx: _Transaction) -> bytes:
        request = chaincode_shim_pb2.GetState.FromString(payload)
        return self.state.get((request.collection, request.key), b"")

    def _on_get_private_data_hash(self, payload: bytes, tx: _Transaction) -> bytes:
        value = self._on_get_state(payload, tx)
        return hashlib.sha256(value).digest() if value else b""

    def _on_put_state(self, payload: bytes, tx: _Transaction) -> bytes:
        request = chaincode_shim_pb2.PutState.FromString(payload)
        tx.writes[(request.collection, request.key)] = request.value
        return b""

    def _on_del_state(self, payload: bytes, tx: _Transaction) -> bytes:
        request = chaincode_shim_pb2.DelState.FromString(payload)
        tx.writes[(request.collection, request.key)] = None
        return b""

    _on_purge_private_data = _on_del_state

    def _on_get_state_metadata(self, payload: bytes, tx: _Transaction) -> bytes:
        request = chaincode_shim_pb2.GetStateMetadata.FromString(payload)
        entries = self.state_metadata.get((request.collection, request.key), {})
        return chaincode_shim_pb2.StateMetadataResult(
            entries=[chaincode_shim_pb2.StateMetadata(metakey=k, value=v) for k, v in sorted(entries.items())]
        ).SerializeToString()

    def _on_put_state_metadata(self, payload: bytes, tx: _Transaction) -> bytes:
        request = chaincode_shim_pb2.PutStateMetadata.FromString(payload)
        entries = tx.metadata_writes.setdefault((request.collection, request.key), {})
        entries[request.metadata.metakey] = request.metadata.value
        return b""

    def _on_write_batch_state(self, payload: bytes, tx: _Transaction) -> bytes:
        """Each record as its own request would be, in order, as Fabric's HandleWriteBatch does."""
        batch = chaincode_shim_pb2.WriteBatchState.FromString(payload)
        if self.write_batch is None or (self.write_batch and len(batch.rec) > self.write_batch):
            raise ValueError(f"a write batch of {len(batch.rec)} records, over the peer's limit")
        record_type = chaincode_shim_pb2.WriteRecord
        for record in batch.rec:
            if record.type == record_type.PUT_STATE:
                self._on_put_state(chaincode_shim_pb2.PutState(
                    key=record.key, value=record.value, collection=record.collection).SerializeToString(), tx)
            elif record.type in (record_type.DEL_STATE, record_type.PURGE_PRIVATE_DATA):
                self._on_del_state(chaincode_shim_pb2.DelState(
                    key=record.key, collection=record.collection).SerializeToString(), tx)
            elif record.type == record_type.PUT_STATE_METADATA:
                self._on_put_state_metadata(chaincode_shim_pb2.PutStateMetadata(
                    key=record.key, collection=record.collection, metadata=record.metadata).SerializeToString(), tx)
            else:
                raise ValueError(f"a write record of type {record.type}")
        return b""

    def _on_get_state_by_range(self, payload: bytes, tx: _Transaction) -> bytes:
        request = chaincode_shim_pb2.GetStateByRange.FromString(payload)
        keys = sorted(
            key
            for collection, key in self.state
            if collection == request.collection
            and key >= request.startKey
            and (not request.endKey or key < request.endKey)
        )
        return self._open_query(request.collection, keys, request.metadata)

    def _on_get_query_result(self, payload: bytes, tx: _Transaction) -> bytes:
        """A tiny CouchDB: {"selector": {field: value, ...}} matches JSON values by equality."""
        request = chaincode_shim_pb2.GetQueryResult.FromString(payload)
        selector = json.loads(request.query)["selector"]

        def matches(value: bytes) -> bool:
            try:
                document = json.loads(value)
            except ValueError:
                return False
            return isinstance(document, dict) and all(document.get(k) == v for k, v in selector.items())

        keys = sorted(
            key
            for (collection, key), value in self.state.items()
            if collection == request.collection and matches(value)
        )
        return self._open_query(request.collection, keys, request.metadata)

    def _on_get_history_for_key(self, payload: bytes, tx: _Transaction) -> bytes:
        request = chaincode_shim_pb2.GetHistoryForKey.FromString(payload)
        return self._batch([m.SerializeToString() for m in self.history.get(request.key, [])], b"")

    def _on_query_state_next(self, payload: bytes, tx: _Transaction) -> bytes:
        request = chaincode_shim_pb2.QueryStateNext.FromString(payload)
        return self._next_batch(request.id, self._iterators.pop(request.id, []))

    def _on_query_state_close(self, payload: bytes, tx: _Transaction) -> bytes:
        request = chaincode_shim_pb2.QueryStateClose.FromString(payload)
        self._iterators.pop(request.id, None)
        return chaincode_shim_pb2.QueryResponse(id=request.id).SerializeToString()

    def _open_query(self, collection: str, keys: list[str], metadata: bytes) -> bytes:
        page_metadata = b""
        if metadata:
            query_metadata = chaincode_shim_pb2.QueryMetadata.FromString(metadata)
            if query_metadata.bookmark:
                keys = [key for key in keys if key >= query_metadata.bookmark]
            page, rest = keys[: query_metadata.pageSize], keys[query_metadata.pageSize :]
            keys = page
            page_metadata = chaincode_shim_pb2.QueryResponseMetadata(
                fetched_records_count=len(page), bookmark=rest[0] if rest else ""
            ).SerializeToString()
        results = [
            kv_query_result_pb2.KV(namespace=NAMESPACE, key=key, value=self.state[(collection, key)]) for key in keys
        ]
        return self._batch([result.SerializeToString() for result in results], page_metadata)

    def _batch(self, results: list[bytes], metadata: bytes) -> bytes:
        response = chaincode_shim_pb2.QueryResponse.FromString(
            self._next_batch(f"query-{next(self._iterator_ids)}", results)
        )
        response.metadata = metadata
        return response.SerializeToString()

    def _next_batch(self, query_id: str, results: list[bytes]) -> bytes:
        batch, rest = results[: self.batch_size], results[self.batch_size :]
        if rest:
            self._iterators[query_id] = rest
        return chaincode_shim_pb2.QueryResponse(
            results=[chaincode_shim_pb2.QueryResultBytes(resultBytes=result) for result in batch],
            has_more=bool(rest),
            id=query_id,
        ).SerializeToString()
