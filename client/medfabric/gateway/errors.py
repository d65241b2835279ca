"""Errors typed by the stage that failed, with what each peer or orderer said.

A caller can tell what to retry: an EndorseError never reached the orderers,
a SubmitError was not confirmed as ordered, a CommitStatusError left the
outcome unknown, and a CommitError committed as invalid.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterable

import grpc
from fabric_protos.gateway import gateway_pb2
from google.rpc import status_pb2

if TYPE_CHECKING:
    from .commit import Status

_STATUS_DETAILS_KEY = "grpc-status-details-bin"


@dataclass(frozen=True)
class ErrorDetail:
    """What one endorsing peer or ordering node answered."""

    address: str
    msp_id: str
    message: str


class GatewayError(Exception):
    """A failed Gateway call: its gRPC status and the per-node details.

        >>> error = GatewayError(
        ...     "failed to endorse transaction",
        ...     grpc_code=grpc.StatusCode.ABORTED,
        ...     details=[ErrorDetail("peer0.org1:7051", "Org1MSP", "chaincode response 500, asset1 exists")],
        ... )
        >>> print(error)
        ABORTED: failed to endorse transaction [peer0.org1:7051 (Org1MSP): chaincode response 500, asset1 exists]
    """

    def __init__(
        self,
        message: str,
        *,
        transaction_id: str | None = None,
        grpc_code: grpc.StatusCode | None = None,
        details: Iterable[ErrorDetail] = (),
    ):
        super().__init__(message)
        self.message = message
        self.transaction_id = transaction_id
        self.grpc_code = grpc_code
        self.details = tuple(details)

    @classmethod
    def from_rpc_error(cls, error: grpc.RpcError, transaction_id: str | None = None) -> GatewayError:
        """The error for a failed gRPC call, with the details from its status trailer."""
        code = error.code()
        return cls(
            error.details() or code.name,
            transaction_id=transaction_id,
            grpc_code=code,
            details=_error_details(error.trailing_metadata() or ()),
        )

    def __str__(self) -> str:
        text = f"{self.grpc_code.name}: {self.message}" if self.grpc_code else self.message
        if self.details:
            text += " [" + "; ".join(f"{d.address} ({d.msp_id}): {d.message}" for d in self.details) + "]"
        return " ".join(text.split())


class EndorseError(GatewayError):
    """The proposal was not endorsed; nothing reached the orderers."""


class SubmitError(GatewayError):
    """The endorsed transaction was not confirmed as accepted by the orderers."""


class CommitStatusError(GatewayError):
    """The commit status could not be obtained; the transaction may or may not have committed."""


class CommitError(GatewayError):
    """The transaction was ordered but committed as invalid; `status` says why."""

    def __init__(self, status: Status):
        super().__init__(
            f"transaction {status.transaction_id} failed to commit with status code "
            f"{status.code} ({status.code_name})",
            transaction_id=status.transaction_id,
        )
        self.status = status


def _error_details(metadata: Iterable[tuple[str, str | bytes]]) -> list[ErrorDetail]:
    """The gateway.ErrorDetail entries of a google.rpc.Status trailer."""
    details = []
    for key, value in metadata:
        if key != _STATUS_DETAILS_KEY:
            continue
        for packed in status_pb2.Status.FromString(value).details:
            detail = gateway_pb2.ErrorDetail()
            if packed.Unpack(detail):
                details.append(ErrorDetail(detail.address, detail.msp_id, detail.message))
    return details
