"""The stub a transaction uses to read and write the ledger through the peer that sent it.

Every read is one request to the peer, answered before the next is sent. An
ERROR reply raises ChaincodeError in the contract: a refused read is never
mistaken for data. Writes (put, delete, purge, metadata) are requests of their
own too, unless the peer said at registration that it takes them in batches
(Fabric >= 2.5's WRITE_BATCH_STATE, core.yaml chaincode.runtimeParams): then
they are kept, the last per key, and sent at the end of the transaction
(`finish_writes`), at most `write_batch_size` records a message. Reads never
see a transaction's own writes on Fabric, so batching changes no answer; a
refused write then fails the transaction at its end instead of at the call.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TypeVar

from fabric_protos.peer import chaincode_event_pb2, chaincode_shim_pb2, transaction_pb2
from google.protobuf.message import Message

from . import keys
from .errors import ChaincodeError
from .iterators import KeyModification, KeyValue, PageInfo, PeerCall, QueryIterator, key_modification, key_value
from .proposal import ProposalFacts

Msg = chaincode_shim_pb2.ChaincodeMessage
T = TypeVar("T")
VALIDATION_PARAMETER = transaction_pb2.MetaDataKeys.Name(transaction_pb2.VALIDATION_PARAMETER)
_MAX_PAGE_SIZE = 2**31 - 1  # QueryMetadata.pageSize is an int32


class ChaincodeStub:
    """Ledger access and proposal details for one transaction."""

    def __init__(self, call: PeerCall, channel_id: str, tx_id: str, args: list[bytes], proposal: ProposalFacts | None,
                 write_batch_size: int | None = None):
        """`write_batch_size`: None sends each write as it is made; else the records per WRITE_BATCH_STATE
        message (0: all in one)."""
        self._call = call
        self._batch_size = write_batch_size
        self._batch: dict[tuple[str, str, str | None], chaincode_shim_pb2.WriteRecord] = {}
        self._channel_id = channel_id
        self._tx_id = tx_id
        self._args = args
        self._proposal = proposal
        self.event: chaincode_event_pb2.ChaincodeEvent | None = None

    # The transaction and its proposal

    def get_args(self) -> list[bytes]:
        """The function name followed by its arguments, as the client sent them."""
        return list(self._args)

    def get_tx_id(self) -> str:
        return self._tx_id

    def get_channel_id(self) -> str:
        return self._channel_id

    def get_creator(self) -> bytes:
        """The serialized identity (msp.SerializedIdentity) that signed the proposal."""
        return self._facts().creator

    def get_transient(self) -> dict[str, bytes]:
        """Transient data of the proposal: given to the chaincode, never written to the ledger."""
        return dict(self._facts().transient)

    def get_binding(self) -> bytes:
        """SHA-256 of nonce, creator and epoch: ties data the client signed elsewhere to this proposal."""
        return self._facts().binding

    def get_tx_timestamp(self) -> datetime:
        """The client's timestamp from the proposal's channel header, identical on every endorsing peer."""
        return self._facts().timestamp

    def set_event(self, name: str, payload: bytes = b"") -> None:
        """The chaincode event of this transaction (one per transaction: a later call replaces it)."""
        if not name:
            raise ChaincodeError("the event name must not be empty")
        self.event = chaincode_event_pb2.ChaincodeEvent(event_name=name, payload=payload)

    # Public state

    def get_state(self, key: str) -> bytes | None:
        """The committed value of a key, None when it has none."""
        return self._get_state("", key)

    def put_state(self, key: str, value: bytes) -> None:
        """Write a key; an empty value is a delete for the peer."""
        self._put_state("", key, value)

    def del_state(self, key: str) -> None:
        """Delete a key."""
        self._delete(Msg.DEL_STATE, "", key)

    def get_state_by_range(self, start: str, end: str) -> QueryIterator[KeyValue]:
        """Simple keys from `start` (inclusive; "" for the first) to `end` (exclusive; "" for no bound)."""
        return self._range("", *keys.simple_key_range(start, end))[0]

    def get_state_by_range_with_pagination(
        self, start: str, end: str, page_size: int, bookmark: str = ""
    ) -> tuple[QueryIterator[KeyValue], PageInfo]:
        """One page of a range; the PageInfo bookmark starts the next page. Read-only transactions only."""
        return self._range("", *keys.simple_key_range(start, end), page=(page_size, bookmark))

    @staticmethod
    def create_composite_key(object_type: str, attributes: list[str]) -> str:
        return keys.create_composite_key(object_type, attributes)

    @staticmethod
    def split_composite_key(key: str) -> tuple[str, list[str]]:
        return keys.split_composite_key(key)

    def get_state_by_partial_composite_key(self, object_type: str, attributes: list[str]) -> QueryIterator[KeyValue]:
        """Every composite key of `object_type` whose first attributes are `attributes`, in key order."""
        return self._range("", *keys.partial_key_range(object_type, attributes))[0]

    def get_state_by_partial_composite_key_with_pagination(
        self, object_type: str, attributes: list[str], page_size: int, bookmark: str = ""
    ) -> tuple[QueryIterator[KeyValue], PageInfo]:
        """One page of a partial composite key query. Read-only transactions only."""
        return self._range("", *keys.partial_key_range(object_type, attributes), page=(page_size, bookmark))

    def get_query_result(self, query: str) -> QueryIterator[KeyValue]:
        """A rich (CouchDB selector) query over public state."""
        return self._rich_query("", query)[0]

    def get_query_result_with_pagination(
        self, query: str, page_size: int, bookmark: str = ""
    ) -> tuple[QueryIterator[KeyValue], PageInfo]:
        """One page of a rich query. Read-only transactions only."""
        return self._rich_query("", query, page=(page_size, bookmark))

    def get_history_for_key(self, key: str) -> QueryIterator[KeyModification]:
        """Every committed change of a key, newest first."""
        reply = self._request(Msg.GET_HISTORY_FOR_KEY, chaincode_shim_pb2.GetHistoryForKey(key=_checked(key)))
        return self._iterator(reply, key_modification)[0]

    # Private data

    def get_private_data(self, collection: str, key: str) -> bytes | None:
        """The value of a key in a private data collection, None when it has none."""
        return self._get_state(_collection(collection), key)

    def get_private_data_hash(self, collection: str, key: str) -> bytes | None:
        """SHA-256 of a private value; readable by members of the channel outside the collection too."""
        request = chaincode_shim_pb2.GetState(key=_checked(key), collection=_collection(collection))
        return self._request(Msg.GET_PRIVATE_DATA_HASH, request) or None

    def put_private_data(self, collection: str, key: str, value: bytes) -> None:
        """Write a key of a collection; pass the value in transient data so that it stays off the proposal."""
        self._put_state(_collection(collection), key, value)

    def del_private_data(self, collection: str, key: str) -> None:
        """Delete a key of a collection; its history stays on the peers of the collection."""
        self._delete(Msg.DEL_STATE, _collection(collection), key)

    def purge_private_data(self, collection: str, key: str) -> None:
        """Delete a private value and its history from every peer of the collection."""
        self._delete(Msg.PURGE_PRIVATE_DATA, _collection(collection), key)

    def get_private_data_by_range(self, collection: str, start: str, end: str) -> QueryIterator[KeyValue]:
        """Simple keys of a collection in a range, as get_state_by_range."""
        return self._range(_collection(collection), *keys.simple_key_range(start, end))[0]

    # State metadata and state-based endorsement ("" is the public state, else a collection)

    def get_state_metadata(self, key: str, collection: str = "") -> dict[str, bytes]:
        """The metadata entries of a key, by metadata key."""
        request = chaincode_shim_pb2.GetStateMetadata(key=_checked(key), collection=collection)
        result = chaincode_shim_pb2.StateMetadataResult.FromString(self._request(Msg.GET_STATE_METADATA, request))
        return {entry.metakey: entry.value for entry in result.entries}

    def set_state_metadata(self, key: str, metakey: str, value: bytes, collection: str = "") -> None:
        """Set one metadata entry of a key."""
        entry = chaincode_shim_pb2.StateMetadata(metakey=metakey, value=value)
        if self._batched(chaincode_shim_pb2.WriteRecord(
                key=_checked(key), collection=collection, metadata=entry,
                type=chaincode_shim_pb2.WriteRecord.PUT_STATE_METADATA), metakey):
            return
        request = chaincode_shim_pb2.PutStateMetadata(key=key, collection=collection, metadata=entry)
        self._request(Msg.PUT_STATE_METADATA, request)

    def get_state_validation_parameter(self, key: str, collection: str = "") -> bytes | None:
        """The key's endorsement policy (a serialized SignaturePolicyEnvelope), None when it has none."""
        return self.get_state_metadata(key, collection).get(VALIDATION_PARAMETER)

    def set_state_validation_parameter(self, key: str, policy: bytes, collection: str = "") -> None:
        """Require this endorsement policy for later changes of the key (state-based endorsement)."""
        self.set_state_metadata(key, VALIDATION_PARAMETER, policy, collection)

    # Requests

    def _facts(self) -> ProposalFacts:
        if self._proposal is None:
            raise ChaincodeError("the peer sent this transaction without a signed proposal")
        return self._proposal

    def _request(self, msg_type: int, request: Message) -> bytes:
        return self._call(msg_type, request.SerializeToString())

    def _get_state(self, collection: str, key: str) -> bytes | None:
        request = chaincode_shim_pb2.GetState(key=_checked(key), collection=collection)
        return self._request(Msg.GET_STATE, request) or None

    def _put_state(self, collection: str, key: str, value: bytes) -> None:
        if self._batched(chaincode_shim_pb2.WriteRecord(
                key=_checked(key), value=value, collection=collection, type=chaincode_shim_pb2.WriteRecord.PUT_STATE)):
            return
        self._request(Msg.PUT_STATE, chaincode_shim_pb2.PutState(key=key, value=value, collection=collection))

    def _delete(self, msg_type: int, collection: str, key: str) -> None:
        """DEL_STATE or PURGE_PRIVATE_DATA of a key."""
        record_type = chaincode_shim_pb2.WriteRecord.Type.Value(Msg.Type.Name(msg_type))
        if self._batched(chaincode_shim_pb2.WriteRecord(key=_checked(key), collection=collection, type=record_type)):
            return
        self._request(msg_type, chaincode_shim_pb2.DelState(key=key, collection=collection))

    def _batched(self, record: chaincode_shim_pb2.WriteRecord, metakey: str | None = None) -> bool:
        """Keep `record` for the batch (a later write of the same key, or metadata entry, replaces it); False when
        writes are sent one by one."""
        if self._batch_size is None:
            return False
        self._batch[(record.collection, record.key, metakey)] = record
        return True

    def finish_writes(self) -> None:
        """Send the batched writes (WRITE_BATCH_STATE); ChaincodeError if the peer refuses one."""
        records, self._batch = list(self._batch.values()), {}
        size = self._batch_size or len(records)
        for start in range(0, len(records), size or 1):
            batch = chaincode_shim_pb2.WriteBatchState(rec=records[start:start + size])
            self._request(Msg.WRITE_BATCH_STATE, batch)

    def _range(
        self, collection: str, start: str, end: str, page: tuple[int, str] | None = None
    ) -> tuple[QueryIterator[KeyValue], PageInfo]:
        request = chaincode_shim_pb2.GetStateByRange(
            startKey=start, endKey=end, collection=collection, metadata=_query_metadata(page)
        )
        return self._iterator(self._request(Msg.GET_STATE_BY_RANGE, request), key_value)

    def _rich_query(
        self, collection: str, query: str, page: tuple[int, str] | None = None
    ) -> tuple[QueryIterator[KeyValue], PageInfo]:
        request = chaincode_shim_pb2.GetQueryResult(query=query, collection=collection, metadata=_query_metadata(page))
        return self._iterator(self._request(Msg.GET_QUERY_RESULT, request), key_value)

    def _iterator(self, reply: bytes, decode: Callable[[bytes], T]) -> tuple[QueryIterator[T], PageInfo]:
        response = chaincode_shim_pb2.QueryResponse.FromString(reply)
        metadata = chaincode_shim_pb2.QueryResponseMetadata.FromString(response.metadata)
        return QueryIterator(self._call, response, decode), PageInfo(metadata.fetched_records_count, metadata.bookmark)


def _checked(key: str) -> str:
    if not key:
        raise ChaincodeError("the key must not be empty")
    return key


def _collection(name: str) -> str:
    if not name:
        raise ChaincodeError("the private data collection must be named")
    return name


def _query_metadata(page: tuple[int, str] | None) -> bytes:
    if page is None:
        return b""
    page_size, bookmark = page
    if not 0 < page_size <= _MAX_PAGE_SIZE:
        raise ChaincodeError(f"page size must be between 1 and {_MAX_PAGE_SIZE}, not {page_size}")
    return chaincode_shim_pb2.QueryMetadata(pageSize=page_size, bookmark=bookmark).SerializeToString()
