"""Routes a transaction's function name to a contract method and turns every outcome into a Response."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from fabric_protos.peer import proposal_response_pb2

from .canonical import canonical_json
from .contract import Contract, TransactionContext, TransactionSpec, transactions_of
from .conversion import result_bytes
from .errors import INTERNAL_ERROR, OK, ChaincodeError, TransactionError, one_line
from .stub import ChaincodeStub

logger = logging.getLogger(__name__)

METADATA_FUNCTION = "org.hyperledger.fabric:GetMetadata"
METADATA_SCHEMA = "https://hyperledger.github.io/fabric-chaincode-node/main/api/contract-schema.json"


class ContractRouter:
    """Calls "contract:Transaction" functions; a bare "Transaction" goes to the first contract."""

    def __init__(self, contracts: Sequence[type[Contract]], *, title: str = "chaincode", version: str = ""):
        if not contracts:
            raise ValueError("a chaincode needs at least one contract")
        self._contracts: dict[str, dict[str, TransactionSpec]] = {}
        for contract_class in contracts:
            if contract_class.name in self._contracts:
                raise ValueError(f"two contracts are named {contract_class.name!r}")
            self._contracts[contract_class.name] = transactions_of(contract_class())
        self._default = next(iter(self._contracts))
        self._metadata = canonical_json(self._describe(title, version))

    def invoke(self, stub: ChaincodeStub) -> proposal_response_pb2.Response:
        """Run the function the stub's first argument names; any failure is status 500 with a one-line message."""
        args = stub.get_args()
        function = args[0].decode("utf-8", "replace") if args else ""
        try:
            if function == METADATA_FUNCTION:
                return proposal_response_pb2.Response(status=OK, payload=self._metadata)
            result = self._resolve(function).call(TransactionContext(stub), args[1:])
            return proposal_response_pb2.Response(status=OK, payload=result_bytes(result))
        except (TransactionError, ChaincodeError) as exc:
            logger.debug("%s refused: %s", function, type(exc).__name__)
            return _failure(str(exc))
        except Exception as exc:  # a contract bug: the client still gets an answer it can read
            debugging = logger.isEnabledFor(logging.DEBUG)
            logger.warning("%s failed with an unexpected %s", function, type(exc).__name__, exc_info=debugging)
            return _failure(f"{function} failed unexpectedly: {type(exc).__name__}: {exc}")

    def _resolve(self, function: str) -> TransactionSpec:
        contract_name, _, transaction_name = function.rpartition(":")
        contract_name = contract_name or self._default
        if not transaction_name:
            raise TransactionError("no transaction function named")
        transactions = self._contracts.get(contract_name)
        if transactions is None:
            raise TransactionError(f"unknown contract '{contract_name}'")
        if transaction_name not in transactions:
            raise TransactionError(f"contract '{contract_name}' has no transaction '{transaction_name}'")
        return transactions[transaction_name]

    def _describe(self, title: str, version: str) -> dict:
        components: dict[str, dict] = {}
        contracts = {
            name: {"name": name, "transactions": [spec.describe(components) for spec in transactions.values()]}
            for name, transactions in self._contracts.items()
        }
        return {
            "$schema": METADATA_SCHEMA,
            "info": {"title": title, "version": version},
            "contracts": contracts,
            "components": {"schemas": components},
        }


def _failure(message: str) -> proposal_response_pb2.Response:
    return proposal_response_pb2.Response(status=INTERNAL_ERROR, message=one_line(message) or "transaction failed")
