"""Iterators over query results, fetching further batches from the peer as they are consumed."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Generic, TypeVar

from fabric_protos.ledger.queryresult import kv_query_result_pb2
from fabric_protos.peer import chaincode_shim_pb2

Msg = chaincode_shim_pb2.ChaincodeMessage
T = TypeVar("T")
# Sends one request of this transaction to the peer and returns the RESPONSE payload.
PeerCall = Callable[[int, bytes], bytes]


@dataclass(frozen=True)
class KeyValue:
    key: str
    value: bytes


@dataclass(frozen=True)
class KeyModification:
    tx_id: str
    value: bytes
    timestamp: datetime
    is_delete: bool


@dataclass(frozen=True)
class PageInfo:
    """What a paginated query returned: how many records, and where the next page starts ("" after the last)."""

    fetched_records_count: int
    bookmark: str


def key_value(data: bytes) -> KeyValue:
    result = kv_query_result_pb2.KV.FromString(data)
    return KeyValue(result.key, result.value)


def key_modification(data: bytes) -> KeyModification:
    result = kv_query_result_pb2.KeyModification.FromString(data)
    return KeyModification(result.tx_id, result.value, result.timestamp.ToDatetime(tzinfo=UTC), result.is_delete)


class QueryIterator(Generic[T]):
    """Results of one query in the order the peer returns them; use it in a `with` block, or call close()."""

    def __init__(self, call: PeerCall, response: chaincode_shim_pb2.QueryResponse, decode: Callable[[bytes], T]):
        self._call = call
        self._response = response
        self._decode = decode
        self._position = 0

    def __iter__(self) -> Iterator[T]:
        return self

    def __next__(self) -> T:
        if self._position == len(self._response.results) and self._response.has_more:
            self._response = self._request(Msg.QUERY_STATE_NEXT, chaincode_shim_pb2.QueryStateNext)
            self._position = 0
        if self._position == len(self._response.results):
            raise StopIteration
        result = self._response.results[self._position]
        self._position += 1
        return self._decode(result.resultBytes)

    def close(self) -> None:
        """Release the peer's iterator; after the last batch the peer has released it already."""
        if self._response.has_more:
            self._request(Msg.QUERY_STATE_CLOSE, chaincode_shim_pb2.QueryStateClose)
            self._response = chaincode_shim_pb2.QueryResponse(id=self._response.id)

    def __enter__(self) -> QueryIterator[T]:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _request(self, msg_type: int, request_type: type) -> chaincode_shim_pb2.QueryResponse:
        reply = self._call(msg_type, request_type(id=self._response.id).SerializeToString())
        return chaincode_shim_pb2.QueryResponse.FromString(reply)
