"""The connection of one client identity to a Fabric Gateway peer."""

from __future__ import annotations

import grpc
from fabric_protos.gateway import gateway_pb2

from .identity import Identity, Signer
from .client import GatewayClient
from .commit import Commit
from .events import ChaincodeEventsRequest
from .network import Network
from .options import ConnectOptions
from .proposal import Proposal
from .signing import SigningIdentity
from .transaction import Transaction

MAX_MESSAGE_BYTES = 100 * 1024 * 1024


def connect(
    identity: Identity,
    signer: Signer | None = None,
    channel: grpc.Channel | None = None,
    *,
    endpoint: str | None = None,
    tls_root_cert: bytes | None = None,
    server_name_override: str | None = None,
    options: ConnectOptions = ConnectOptions(),
) -> Gateway:
    """Connect `identity` to a Gateway, over a gRPC `channel` or to an `endpoint`.

    A given channel is borrowed: it stays open when the Gateway closes, so
    several identities can share one. With an `endpoint` ("host:port") the
    Gateway opens its own channel, with TLS when `tls_root_cert` (PEM) is
    given, and closes it when it closes. `server_name_override` is the name
    the peer's TLS certificate carries when it differs from the host.
    Without a signer, sign offline with the new_signed_* methods.

        >>> with connect(identity, signer, endpoint=endpoint, tls_root_cert=tls_root_cert,
        ...              server_name_override=server_name) as gateway:
        ...     contract = gateway.get_network("mychannel").get_contract("basic")
        ...     result = contract.evaluate_transaction("ReadAsset", "asset1")
    """
    if (channel is None) == (endpoint is None):
        raise ValueError("connect needs either a gRPC channel or an endpoint, not both")
    if channel is not None:
        if tls_root_cert is not None or server_name_override is not None:
            raise ValueError("tls_root_cert and server_name_override apply only with an endpoint")
        return Gateway(channel, identity, signer, options, owns_channel=False)
    return Gateway(_open_channel(endpoint, tls_root_cert, server_name_override), identity, signer, options,
                   owns_channel=True)


def _open_channel(endpoint: str, tls_root_cert: bytes | None, server_name_override: str | None) -> grpc.Channel:
    grpc_options = [
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ]
    if tls_root_cert is None:
        if server_name_override is not None:
            raise ValueError("server_name_override needs TLS: give tls_root_cert")
        return grpc.insecure_channel(endpoint, grpc_options)
    if server_name_override is not None:
        grpc_options.append(("grpc.ssl_target_name_override", server_name_override))
    credentials = grpc.ssl_channel_credentials(root_certificates=tls_root_cert)
    return grpc.secure_channel(endpoint, credentials, grpc_options)


class Gateway:
    """A client identity connected to a Gateway peer; a context manager that closes it.

    The new_signed_* methods rebuild a message from its to_bytes() and a
    signature made elsewhere (offline signing):

        >>> unsigned = contract.new_proposal("ReadAsset", arguments=["asset1"])
        >>> proposal = gateway.new_signed_proposal(unsigned.to_bytes(), signer(unsigned.digest()))
        >>> result = proposal.evaluate()
    """

    def __init__(
        self,
        channel: grpc.Channel,
        identity: Identity,
        signer: Signer | None,
        options: ConnectOptions,
        *,
        owns_channel: bool,
    ):
        self._channel = channel
        self._owns_channel = owns_channel
        self._client = GatewayClient(channel, options)
        self._signing_identity = SigningIdentity(identity, signer)

    @property
    def identity(self) -> Identity:
        return self._signing_identity.identity

    def get_network(self, name: str) -> Network:
        return Network(self._client, self._signing_identity, name)

    def new_signed_proposal(self, proposal_bytes: bytes, signature: bytes) -> Proposal:
        proposed = gateway_pb2.ProposedTransaction.FromString(proposal_bytes)
        proposed.proposal.signature = signature
        return Proposal(self._client, self._signing_identity, proposed)

    def new_signed_transaction(self, transaction_bytes: bytes, signature: bytes) -> Transaction:
        prepared = gateway_pb2.PreparedTransaction.FromString(transaction_bytes)
        prepared.envelope.signature = signature
        return Transaction(self._client, self._signing_identity, prepared)

    def new_signed_commit(self, commit_bytes: bytes, signature: bytes) -> Commit:
        signed_request = gateway_pb2.SignedCommitStatusRequest.FromString(commit_bytes)
        signed_request.signature = signature
        return Commit(self._client, self._signing_identity, signed_request)

    def new_signed_chaincode_events_request(self, request_bytes: bytes, signature: bytes) -> ChaincodeEventsRequest:
        signed_request = gateway_pb2.SignedChaincodeEventsRequest.FromString(request_bytes)
        signed_request.signature = signature
        return ChaincodeEventsRequest(self._client, self._signing_identity, signed_request)

    def close(self) -> None:
        """Close the gRPC channel if this Gateway opened it."""
        if self._owns_channel:
            self._channel.close()

    def __enter__(self) -> Gateway:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
