"""A chaincode runtime for Hyperledger Fabric: the shim protocol and a contract API, served as a chaincode server.

    router = ContractRouter([MyContract])
    server = ChaincodeServer(load_server_config(os.environ), router)
    server.start()
"""

from .canonical import canonical_json, parse_json
from .config import ServerConfig, TlsConfig, load_server_config
from .contract import Contract, TransactionContext, transaction
from .conversion import load_json
from .errors import ChaincodeError, ConfigError, TransactionError
from .identity import ClientIdentity
from .iterators import KeyModification, KeyValue, PageInfo, QueryIterator
from .router import METADATA_FUNCTION, ContractRouter
from .server import ChaincodeServer
from .stub import ChaincodeStub

__all__ = [
    "METADATA_FUNCTION",
    "ChaincodeError",
    "ChaincodeServer",
    "ChaincodeStub",
    "ClientIdentity",
    "ConfigError",
    "Contract",
    "ContractRouter",
    "KeyModification",
    "KeyValue",
    "PageInfo",
    "QueryIterator",
    "ServerConfig",
    "TlsConfig",
    "TransactionContext",
    "TransactionError",
    "canonical_json",
    "load_json",
    "load_server_config",
    "parse_json",
    "transaction",
]
