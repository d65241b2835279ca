"""The contract API: Contract classes whose @transaction methods clients call by name.

    class Assets(Contract):
        name = "assets"

        @transaction
        def Create(self, ctx: TransactionContext, asset_id: str, size: int) -> Asset: ...

        @transaction(evaluate=True)
        def Read(self, ctx: TransactionContext, asset_id: str) -> Asset: ...
"""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from .conversion import TypeSpec, convert_argument, json_schema, type_spec
from .errors import TransactionError
from .identity import ClientIdentity
from .stub import ChaincodeStub

_EVALUATE_MARK = "_chaincode_transaction_evaluate"


class TransactionContext:
    """What a transaction function gets besides its arguments."""

    def __init__(self, stub: ChaincodeStub):
        self.stub = stub

    @functools.cached_property
    def client_identity(self) -> ClientIdentity:
        """The identity that signed the proposal."""
        return ClientIdentity(self.stub.get_creator())


class Contract:
    """Base class of a contract; `name` (default: the class name) is what clients put before ':'.

    One instance serves every transaction, concurrently: keep state on the ledger, not on `self`.
    """

    name: ClassVar[str]

    def __init_subclass__(cls, **kwargs: Any):
        super().__init_subclass__(**kwargs)
        if "name" not in cls.__dict__:
            cls.name = cls.__name__


def transaction(function: Callable | None = None, *, evaluate: bool = False) -> Any:
    """Make a contract method callable by clients; `evaluate=True` marks a query, which clients evaluate."""

    def mark(method: Callable) -> Callable:
        setattr(method, _EVALUATE_MARK, evaluate)
        return method

    return mark if function is None else mark(function)


@dataclass(frozen=True)
class Parameter:
    name: str
    spec: TypeSpec
    required: bool


@dataclass(frozen=True)
class TransactionSpec:
    """A transaction function as the router calls it and GetMetadata describes it."""

    name: str
    function: Callable[..., Any]  # bound to the contract instance
    evaluate: bool
    parameters: tuple[Parameter, ...]
    returns: TypeSpec | None

    def call(self, ctx: TransactionContext, args: list[bytes]) -> Any:
        """Convert the arguments and run the function."""
        least = sum(parameter.required for parameter in self.parameters)
        most = len(self.parameters)
        if not least <= len(args) <= most:
            expected = str(most) if least == most else f"{least} to {most}"
            raise TransactionError(f"{self.name} takes {expected} argument(s), not {len(args)}")
        values = [convert_argument(p.spec, raw, p.name) for p, raw in zip(self.parameters, args, strict=False)]
        return self.function(ctx, *values)

    def describe(self, components: dict[str, dict]) -> dict:
        """The transaction in Fabric's contract metadata form."""
        described = {
            "name": self.name,
            "tag": ["evaluate" if self.evaluate else "submit"],
            "parameters": [{"name": p.name, "schema": json_schema(p.spec, components)} for p in self.parameters],
        }
        if self.returns is not None:
            described["returns"] = json_schema(self.returns, components)
        return described


def transactions_of(contract: Contract) -> dict[str, TransactionSpec]:
    """The @transaction methods of a contract by name; TypeError for a signature that cannot be served."""
    specs = {}
    for attribute in dir(type(contract)):
        method = getattr(type(contract), attribute)
        if callable(method) and hasattr(method, _EVALUATE_MARK):
            specs[attribute] = _transaction_spec(contract, attribute, method)
    return specs


def _transaction_spec(contract: Contract, name: str, method: Callable) -> TransactionSpec:
    where = f"{type(contract).__name__}.{name}"
    parameters = list(inspect.signature(method).parameters.values())
    if len(parameters) < 2:
        raise TypeError(f"{where} must take (self, ctx, ...)")
    hints = typing.get_type_hints(method)
    returns = hints.get("return", type(None))
    try:
        return_spec = None if returns is type(None) else type_spec(returns)
    except TypeError as exc:
        raise TypeError(f"{where}: return value: {exc}") from None
    return TransactionSpec(
        name=name,
        function=getattr(contract, name),
        evaluate=getattr(method, _EVALUATE_MARK),
        parameters=tuple(_parameter(where, parameter, hints) for parameter in parameters[2:]),
        returns=return_spec,
    )


def _parameter(where: str, parameter: inspect.Parameter, hints: dict[str, Any]) -> Parameter:
    if parameter.kind not in (parameter.POSITIONAL_ONLY, parameter.POSITIONAL_OR_KEYWORD):
        raise TypeError(f"{where}: parameter '{parameter.name}' must be positional")
    if parameter.name not in hints:
        raise TypeError(f"{where}: parameter '{parameter.name}' needs an annotation")
    try:
        spec = type_spec(hints[parameter.name])
    except TypeError as exc:
        raise TypeError(f"{where}: parameter '{parameter.name}': {exc}") from None
    return Parameter(parameter.name, spec, parameter.default is parameter.empty)
