"""A Fabric Gateway client, shaped like the official ones (hyperledger/fabric-gateway).

    >>> from medfabric.gateway import connect
    >>> from medfabric.gateway.identity import load_msp_identity
    >>> identity, signer = load_msp_identity(msp_dir, "Org1MSP")
    >>> with connect(identity, signer, endpoint=endpoint, tls_root_cert=tls_root_cert,
    ...              server_name_override=server_name) as gateway:
    ...     contract = gateway.get_network("mychannel").get_contract("basic")
    ...     created = contract.submit_transaction("CreateAsset", "asset1", "blue")
    ...     found = contract.evaluate_transaction("ReadAsset", "asset1")

Submitting endorses a proposal, sends the endorsed transaction to the
orderers and waits for its commit; each stage fails with its own error
(EndorseError, SubmitError, CommitStatusError, CommitError), all
GatewayErrors carrying the transaction id and what each peer said.
"""

from .checkpointers import Checkpoint, FileCheckpointer, InMemoryCheckpointer
from .commit import Commit, Status, SubmittedTransaction
from .contract import Contract
from .errors import (
    CommitError,
    CommitStatusError,
    EndorseError,
    ErrorDetail,
    GatewayError,
    SubmitError,
)
from .events import ChaincodeEvent, ChaincodeEvents, ChaincodeEventsRequest
from .gateway import Gateway, connect
from .network import Network
from .options import ConnectOptions
from .proposal import Proposal
from .proposal_builder import ProposalOptions
from .transaction import Transaction

__all__ = [
    "ChaincodeEvent",
    "ChaincodeEvents",
    "ChaincodeEventsRequest",
    "Checkpoint",
    "Commit",
    "CommitError",
    "CommitStatusError",
    "Contract",
    "ConnectOptions",
    "EndorseError",
    "ErrorDetail",
    "FileCheckpointer",
    "Gateway",
    "GatewayError",
    "InMemoryCheckpointer",
    "Network",
    "Proposal",
    "ProposalOptions",
    "Status",
    "SubmitError",
    "SubmittedTransaction",
    "Transaction",
    "connect",
]
