"""A contract that exercises one stub call per transaction, for the runtime tests."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from medfabric_chaincode.runtime import Contract, TransactionContext, TransactionError, transaction

GATE = threading.Event()  # Wait blocks until a test sets it
GATE_TIMEOUT = 5.0


@dataclass(frozen=True)
class Item:
    name: str
    count: int
    tags: list[str]
    note: str | None = None


def _keys(iterator) -> list[str]:
    with iterator:
        return [f"{entry.key}={entry.value.decode()}" for entry in iterator]


def _page(result) -> dict[str, Any]:
    iterator, page = result
    return {"entries": _keys(iterator), "bookmark": page.bookmark, "count": page.fetched_records_count}


class ProbeContract(Contract):
    name = "probe"

    @transaction
    def Put(self, ctx: TransactionContext, key: str, value: str) -> None:
        ctx.stub.put_state(key, value.encode())

    @transaction(evaluate=True)
    def Get(self, ctx: TransactionContext, key: str) -> bytes:
        return ctx.stub.get_state(key) or b""

    @transaction
    def Delete(self, ctx: TransactionContext, key: str) -> None:
        ctx.stub.del_state(key)

    @transaction(evaluate=True)
    def Range(self, ctx: TransactionContext, start: str, end: str) -> list[str]:
        return _keys(ctx.stub.get_state_by_range(start, end))

    @transaction(evaluate=True)
    def RangeFirst(self, ctx: TransactionContext, start: str, end: str) -> str:
        with ctx.stub.get_state_by_range(start, end) as entries:
            return next(entries).key

    @transaction(evaluate=True)
    def RangePage(self, ctx: TransactionContext, start: str, end: str, page_size: int, bookmark: str) -> dict:
        return _page(ctx.stub.get_state_by_range_with_pagination(start, end, page_size, bookmark))

    @transaction
    def PutComposite(self, ctx: TransactionContext, object_type: str, attributes: list[str], value: str) -> str:
        key = ctx.stub.create_composite_key(object_type, attributes)
        ctx.stub.put_state(key, value.encode())
        return key

    @transaction(evaluate=True)
    def Partial(self, ctx: TransactionContext, object_type: str, attributes: list[str]) -> list[list[str]]:
        with ctx.stub.get_state_by_partial_composite_key(object_type, attributes) as entries:
            return [ctx.stub.split_composite_key(entry.key)[1] for entry in entries]

    @transaction(evaluate=True)
    def PartialPage(
        self, ctx: TransactionContext, object_type: str, attributes: list[str], page_size: int, bookmark: str
    ) -> dict:
        return _page(ctx.stub.get_state_by_partial_composite_key_with_pagination(
            object_type, attributes, page_size, bookmark
        ))

    @transaction(evaluate=True)
    def Query(self, ctx: TransactionContext, query: str) -> list[str]:
        return _keys(ctx.stub.get_query_result(query))

    @transaction(evaluate=True)
    def QueryPage(self, ctx: TransactionContext, query: str, page_size: int, bookmark: str) -> dict:
        return _page(ctx.stub.get_query_result_with_pagination(query, page_size, bookmark))

    @transaction(evaluate=True)
    def History(self, ctx: TransactionContext, key: str) -> list[dict]:
        with ctx.stub.get_history_for_key(key) as changes:
            return [
                {"tx_id": c.tx_id, "value": c.value.decode(), "is_delete": c.is_delete, "at": c.timestamp.isoformat()}
                for c in changes
            ]

    @transaction
    def PutPrivate(self, ctx: TransactionContext, collection: str, key: str) -> None:
        ctx.stub.put_private_data(collection, key, ctx.stub.get_transient()["value"])

    @transaction(evaluate=True)
    def GetPrivate(self, ctx: TransactionContext, collection: str, key: str) -> bytes:
        return ctx.stub.get_private_data(collection, key) or b""

    @transaction(evaluate=True)
    def PrivateHash(self, ctx: TransactionContext, collection: str, key: str) -> str:
        return (ctx.stub.get_private_data_hash(collection, key) or b"").hex()

    @transaction
    def DeletePrivate(self, ctx: TransactionContext, collection: str, key: str) -> None:
        ctx.stub.del_private_data(collection, key)

    @transaction
    def PurgePrivate(self, ctx: TransactionContext, collection: str, key: str) -> None:
        ctx.stub.purge_private_data(collection, key)

    @transaction(evaluate=True)
    def PrivateRange(self, ctx: TransactionContext, collection: str, start: str, end: str) -> list[str]:
        return _keys(ctx.stub.get_private_data_by_range(collection, start, end))

    @transaction
    def SetEndorsement(self, ctx: TransactionContext, key: str, policy: bytes) -> None:
        ctx.stub.set_state_validation_parameter(key, policy)

    @transaction(evaluate=True)
    def GetEndorsement(self, ctx: TransactionContext, key: str) -> bytes:
        return ctx.stub.get_state_validation_parameter(key) or b""

    @transaction(evaluate=True)
    def Proposal(self, ctx: TransactionContext) -> dict:
        stub = ctx.stub
        return {
            "tx_id": stub.get_tx_id(),
            "channel_id": stub.get_channel_id(),
            "timestamp": stub.get_tx_timestamp().isoformat(),
            "binding": stub.get_binding().hex(),
            "creator": stub.get_creator().hex(),
            "transient": sorted(stub.get_transient()),
            "args": [arg.decode() for arg in stub.get_args()],
        }

    @transaction(evaluate=True)
    def Identity(self, ctx: TransactionContext, attribute: str) -> dict:
        identity = ctx.client_identity
        return {"msp_id": identity.msp_id, "id": identity.get_id(), "attribute": identity.get_attribute(attribute)}

    @transaction(evaluate=True)
    def Echo(self, ctx: TransactionContext, data: bytes) -> bytes:
        return data

    @transaction(evaluate=True)
    def Store(self, ctx: TransactionContext, item: Item, copies: int = 1) -> list[Item]:
        return [item] * copies

    @transaction(evaluate=True)
    def Scale(self, ctx: TransactionContext, factor: float, values: dict[str, int], limit: int | None) -> dict:
        scaled = {name: value * factor for name, value in values.items()}
        return {name: value for name, value in scaled.items() if limit is None or value <= limit}

    @transaction
    def Emit(self, ctx: TransactionContext, name: str, then_fail: bool) -> None:
        ctx.stub.put_state("emitted", name.encode())
        ctx.stub.set_event(name, b"payload")
        if then_fail:
            raise TransactionError("refused after setting the event")

    @transaction
    def Fail(self, ctx: TransactionContext, kind: str) -> None:
        if kind == "refusal":
            raise TransactionError("refused:\n  first line\n  second line")
        1 / 0  # noqa: B018 - an unexpected exception

    @transaction(evaluate=True)
    def Wait(self, ctx: TransactionContext) -> str:
        return "released" if GATE.wait(GATE_TIMEOUT) else "timed out"


class GreeterContract(Contract):
    """A second contract, reached by its class name."""

    @transaction(evaluate=True)
    def Hello(self, ctx: TransactionContext, who: str) -> str:
        return f"hello {who}"
