"""One peer's Connect stream: registration, concurrent transactions, a single writer.

The peer opens the stream; the chaincode sends REGISTER with its package id
and waits for REGISTERED then READY. From then on the peer sends TRANSACTION
(or INIT) messages, the chaincode sends ledger requests for them and finally
COMPLETED or ERROR, and replies are matched to requests by (channel, tx id).
"""

from __future__ import annotations

import functools
import logging
import queue
import threading
from collections.abc import Iterator
from concurrent.futures import Executor, Future

import grpc
from fabric_protos.peer import chaincode_pb2, chaincode_shim_pb2
from google.protobuf.message import DecodeError

from .errors import ERROR_THRESHOLD, ChaincodeError
from .proposal import decode_signed_proposal
from .router import ContractRouter
from .stub import ChaincodeStub

Msg = chaincode_shim_pb2.ChaincodeMessage
logger = logging.getLogger(__name__)
_CLOSED = Msg()  # put in the outbox to end the response stream


class PeerSession:
    """Serves one Connect stream.

    A reader thread takes what the peer sends. Everything sent to the peer goes
    through one queue that feeds the gRPC response iterator, so exactly one
    thread writes the stream. Each transaction runs on a worker of `workers`
    and blocks only itself while it waits for the peer's reply.
    """

    def __init__(self, chaincode_id: str, router: ContractRouter, workers: Executor):
        self._chaincode_id = chaincode_id
        self._router = router
        self._workers = workers
        self._outbox: queue.SimpleQueue[Msg] = queue.SimpleQueue()
        self._waiting: dict[tuple[str, str], Future[Msg]] = {}
        self._lock = threading.Lock()
        self._state = "created"
        self._closed = False
        self._running = 0
        self._draining = False
        self._write_batch_size: int | None = None  # set by READY when the peer takes batched writes

    def serve(self, requests: Iterator[Msg], context: grpc.ServicerContext) -> Iterator[Msg]:
        """The messages for the peer, from REGISTER on, until either side ends the stream."""
        context.add_callback(self._close)
        registration = chaincode_pb2.ChaincodeID(name=self._chaincode_id).SerializeToString()
        self._outbox.put(Msg(type=Msg.REGISTER, payload=registration))
        threading.Thread(target=self._read, args=(requests,), name="chaincode-peer-reader", daemon=True).start()
        while (msg := self._outbox.get()) is not _CLOSED:
            yield msg

    def call(self, channel_id: str, tx_id: str, msg_type: int, payload: bytes) -> bytes:
        """Send one request of a transaction and wait for the peer: its RESPONSE payload, or ChaincodeError."""
        key = (channel_id, tx_id)
        reply: Future[Msg] = Future()
        with self._lock:
            if self._closed:
                raise ChaincodeError("the connection to the peer is closed")
            if key in self._waiting:
                raise ChaincodeError("the transaction already waits for a reply from the peer")
            self._waiting[key] = reply
        self._outbox.put(Msg(type=msg_type, payload=payload, txid=tx_id, channel_id=channel_id))
        msg = reply.result()
        if msg.type == Msg.RESPONSE:
            return msg.payload
        text = msg.payload.decode("utf-8", "replace") if msg.type == Msg.ERROR else f"unexpected {_name(msg)} reply"
        raise ChaincodeError(f"{Msg.Type.Name(msg_type)} failed: {text}")

    def drain(self) -> None:
        """Refuse new transactions and end the stream once the running ones have answered."""
        with self._lock:
            self._draining = True
            idle = self._running == 0
        if idle:
            self._close()

    def _read(self, requests: Iterator[Msg]) -> None:
        try:
            for msg in requests:
                self._receive(msg)
        except grpc.RpcError:
            pass  # the peer went away or the server is stopping: _close tells the waiting transactions
        finally:
            self._close()

    def _receive(self, msg: Msg) -> None:
        if msg.type == Msg.KEEPALIVE:
            self._outbox.put(msg)
        elif self._state == "ready":
            self._receive_when_ready(msg)
        elif (self._state, msg.type) == ("created", Msg.REGISTERED):
            self._state = "established"
        elif (self._state, msg.type) == ("established", Msg.READY):
            self._state = "ready"
            self._write_batch_size = _write_batch_size(msg.payload)
            logger.info("registered with the peer as %s%s", self._chaincode_id,
                        "" if self._write_batch_size is None else ", writes sent in batches")
        else:
            reason = f": {msg.payload.decode('utf-8', 'replace')}" if msg.type == Msg.ERROR else ""
            logger.warning("peer sent %s while %s%s; closing the stream", _name(msg), self._state, reason)
            self._close()

    def _receive_when_ready(self, msg: Msg) -> None:
        if msg.type in (Msg.RESPONSE, Msg.ERROR):
            with self._lock:
                reply = self._waiting.pop((msg.channel_id, msg.txid), None)
            if reply is None:
                logger.warning("peer sent %s for tx %s, which waits for no reply", _name(msg), msg.txid[:8])
            else:
                reply.set_result(msg)
        elif msg.type in (Msg.TRANSACTION, Msg.INIT):
            with self._lock:
                accepted = not self._draining
                if accepted:
                    self._running += 1
            if accepted:
                self._workers.submit(self._execute, msg)
            else:
                self._outbox.put(_error_reply(msg, "the chaincode server is stopping"))
        else:
            self._outbox.put(_error_reply(msg, f"cannot handle a {_name(msg)} message"))

    def _execute(self, msg: Msg) -> None:
        try:
            reply = self._transact(msg)
        except Exception as exc:  # a runtime fault must still answer the peer, or it waits until its timeout
            logger.warning("tx %s: runtime fault %s", msg.txid[:8], type(exc).__name__, exc_info=True)
            reply = _error_reply(msg, f"chaincode runtime fault: {type(exc).__name__}")
        self._outbox.put(reply)
        with self._lock:
            self._running -= 1
            drained = self._draining and self._running == 0
        if drained:
            self._close()

    def _transact(self, msg: Msg) -> Msg:
        try:
            chaincode_input = chaincode_pb2.ChaincodeInput.FromString(msg.payload)
            proposal = decode_signed_proposal(msg.proposal) if msg.HasField("proposal") else None
        except (DecodeError, ChaincodeError) as exc:
            return _error_reply(msg, f"malformed {_name(msg)} message: {exc}")
        call = functools.partial(self.call, msg.channel_id, msg.txid)
        stub = ChaincodeStub(call, msg.channel_id, msg.txid, list(chaincode_input.args), proposal,
                             self._write_batch_size)
        response = self._router.invoke(stub)
        logger.debug("tx %s: %s answered with status %d", msg.txid[:8], _name(msg), response.status)
        failed = response.status >= ERROR_THRESHOLD
        if failed and msg.type == Msg.INIT:
            return _error_reply(msg, response.message)
        if not failed:  # a failed transaction's writes count for nothing: they are not sent
            try:
                stub.finish_writes()
            except ChaincodeError as exc:
                return _error_reply(msg, str(exc))
        completed = Msg(
            type=Msg.COMPLETED, payload=response.SerializeToString(), txid=msg.txid, channel_id=msg.channel_id
        )
        if stub.event is not None and not failed:
            completed.chaincode_event.CopyFrom(stub.event)
        return completed

    def _close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            waiting, self._waiting = self._waiting, {}
        for reply in waiting.values():
            reply.set_exception(ChaincodeError("the connection to the peer closed"))
        self._outbox.put(_CLOSED)
        logger.info("peer stream closed")


def _write_batch_size(ready_payload: bytes) -> int | None:
    """From READY's ChaincodeAdditionalParams: the records per write batch (0: no limit), None if the peer wants
    each write on its own (older peers send no payload)."""
    try:
        params = chaincode_pb2.ChaincodeAdditionalParams.FromString(ready_payload)
    except DecodeError:
        return None
    return params.max_size_write_batch if params.use_write_batch else None


def _error_reply(msg: Msg, text: str) -> Msg:
    return Msg(type=Msg.ERROR, payload=text.encode("utf-8"), txid=msg.txid, channel_id=msg.channel_id)


def _name(msg: Msg) -> str:
    return Msg.Type.Name(msg.type) if msg.type in Msg.Type.values() else str(msg.type)
