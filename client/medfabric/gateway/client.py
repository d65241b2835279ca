"""The Gateway gRPC service, with default deadlines and errors typed by stage."""

from __future__ import annotations

from typing import Callable, Iterator, TypeVar

import grpc
from fabric_protos.gateway import gateway_pb2, gateway_pb2_grpc

from .errors import CommitStatusError, EndorseError, GatewayError, SubmitError
from .options import ConnectOptions

_Response = TypeVar("_Response")


class GatewayClient:
    """Calls the Gateway service; `timeout=None` means the connection's default for that call."""

    def __init__(self, channel: grpc.Channel, options: ConnectOptions):
        self._stub = gateway_pb2_grpc.GatewayStub(channel)
        self._options = options

    def evaluate(
        self, request: gateway_pb2.EvaluateRequest, timeout: float | None = None
    ) -> gateway_pb2.EvaluateResponse:
        return _call(self._stub.Evaluate, request, timeout, self._options.evaluate_timeout,
                     GatewayError, request.transaction_id)

    def endorse(
        self, request: gateway_pb2.EndorseRequest, timeout: float | None = None
    ) -> gateway_pb2.EndorseResponse:
        return _call(self._stub.Endorse, request, timeout, self._options.endorse_timeout,
                     EndorseError, request.transaction_id)

    def submit(
        self, request: gateway_pb2.SubmitRequest, timeout: float | None = None
    ) -> gateway_pb2.SubmitResponse:
        return _call(self._stub.Submit, request, timeout, self._options.submit_timeout,
                     SubmitError, request.transaction_id)

    def commit_status(
        self, request: gateway_pb2.SignedCommitStatusRequest, timeout: float | None = None
    ) -> gateway_pb2.CommitStatusResponse:
        transaction_id = gateway_pb2.CommitStatusRequest.FromString(request.request).transaction_id
        return _call(self._stub.CommitStatus, request, timeout, self._options.commit_status_timeout,
                     CommitStatusError, transaction_id)

    def chaincode_events(
        self, request: gateway_pb2.SignedChaincodeEventsRequest, timeout: float | None = None
    ) -> Iterator[gateway_pb2.ChaincodeEventsResponse]:
        """The response stream; it raises grpc.RpcError while being read, and has cancel()."""
        timeout = _or_default(timeout, self._options.chaincode_events_timeout)
        return self._stub.ChaincodeEvents(request, timeout=timeout)


def _call(
    method: Callable[..., _Response],
    request: object,
    timeout: float | None,
    default_timeout: float | None,
    error_type: type[GatewayError],
    transaction_id: str,
) -> _Response:
    try:
        return method(request, timeout=_or_default(timeout, default_timeout))
    except grpc.RpcError as error:
        raise error_type.from_rpc_error(error, transaction_id) from error


def _or_default(timeout: float | None, default_timeout: float | None) -> float | None:
    return default_timeout if timeout is None else timeout
