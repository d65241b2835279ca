"""Chaincode events: a signed request, and the stream of events it opens."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterator

import grpc
from fabric_protos.gateway import gateway_pb2
from fabric_protos.orderer import ab_pb2

from .errors import GatewayError
from .signing import Signable

if TYPE_CHECKING:
    from .checkpointers import Checkpoint
    from .client import GatewayClient
    from .signing import SigningIdentity


@dataclass(frozen=True)
class ChaincodeEvent:
    """An event a transaction function emitted, delivered once its transaction committed valid."""

    block_number: int
    transaction_id: str
    chaincode_name: str
    event_name: str
    payload: bytes


class ChaincodeEvents:
    """Events in commit order; iterating blocks until the next one. close() ends the stream.

        >>> with network.get_chaincode_events("basic", start_block=0) as events:
        ...     event = next(events)
        >>> event.event_name
        'AssetCreated'

    A failure of the stream is raised while iterating, as GatewayError.
    """

    def __init__(self, responses: Iterator[gateway_pb2.ChaincodeEventsResponse]):
        self._responses = responses  # a gRPC response stream
        self._closed = False
        self._events = self._read()

    def __iter__(self) -> ChaincodeEvents:
        return self

    def __next__(self) -> ChaincodeEvent:
        return next(self._events)

    def close(self) -> None:
        self._closed = True
        self._responses.cancel()

    def __enter__(self) -> ChaincodeEvents:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _read(self) -> Iterator[ChaincodeEvent]:
        try:
            for response in self._responses:
                for event in response.events:
                    yield ChaincodeEvent(
                        response.block_number, event.tx_id, event.chaincode_id, event.event_name, event.payload
                    )
        except grpc.RpcError as error:
            if not (self._closed and error.code() == grpc.StatusCode.CANCELLED):
                raise GatewayError.from_rpc_error(error) from error


class ChaincodeEventsRequest(Signable):
    """A request for the events of one chaincode; signable for offline signing."""

    def __init__(
        self,
        client: GatewayClient,
        signing_identity: SigningIdentity,
        signed_request: gateway_pb2.SignedChaincodeEventsRequest,
    ):
        super().__init__(signing_identity, signed_request, signed_request, "request")
        self._client = client
        self._signed_request = signed_request

    def get_events(self, *, timeout: float | None = None) -> ChaincodeEvents:
        self._sign()
        return ChaincodeEvents(self._client.chaincode_events(self._signed_request, timeout))


def build_chaincode_events_request(
    client: GatewayClient,
    signing_identity: SigningIdentity,
    channel_name: str,
    chaincode_name: str,
    start_block: int | None = None,
    checkpoint: Checkpoint | None = None,
) -> ChaincodeEventsRequest:
    """Events from the checkpoint if it holds a position, else from `start_block`, else from the next commit."""
    after_transaction_id = ""
    if checkpoint is not None and checkpoint.block_number is not None:
        start = ab_pb2.SeekPosition(specified=ab_pb2.SeekSpecified(number=checkpoint.block_number))
        after_transaction_id = checkpoint.transaction_id or ""
    elif start_block is not None:
        start = ab_pb2.SeekPosition(specified=ab_pb2.SeekSpecified(number=start_block))
    else:
        start = ab_pb2.SeekPosition(next_commit=ab_pb2.SeekNextCommit())
    request = gateway_pb2.ChaincodeEventsRequest(
        channel_id=channel_name,
        chaincode_id=chaincode_name,
        identity=signing_identity.creator,
        start_position=start,
        after_transaction_id=after_transaction_id,
    )
    signed_request = gateway_pb2.SignedChaincodeEventsRequest(request=request.SerializeToString())
    return ChaincodeEventsRequest(client, signing_identity, signed_request)
