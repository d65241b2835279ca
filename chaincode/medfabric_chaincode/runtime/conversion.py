"""Transaction arguments from their annotations, their metadata schemas, and the bytes of a result.

A `str` parameter receives the argument as UTF-8 text and a `bytes` parameter
the raw argument; every other parameter arrives as JSON: int, float, bool,
Any, list[X], dict[str, X] (bare list and dict hold any JSON), X | None, and
dataclasses made of these.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import types
import typing
from dataclasses import dataclass
from typing import Any

from .canonical import canonical_json, parse_json
from .errors import TransactionError

_SIMPLE_KINDS = {str: "str", bytes: "bytes", int: "int", float: "float", bool: "bool", Any: "any"}
_SIMPLE_SCHEMAS = {
    "str": {"type": "string"},
    "bytes": {"type": "string", "format": "byte"},
    "int": {"type": "integer"},
    "float": {"type": "number"},
    "bool": {"type": "boolean"},
    "any": {},
}


@dataclass(frozen=True)
class TypeSpec:
    """A supported annotation, resolved once when a contract is registered."""

    kind: str  # a key of _SIMPLE_SCHEMAS, or "list", "dict", "optional", "dataclass"
    item: TypeSpec | None = None  # the element of a list or dict, the type of an optional
    cls: type | None = None  # the dataclass
    fields: tuple[tuple[str, TypeSpec, bool], ...] = ()  # a dataclass's fields: name, type, required


@functools.cache
def type_spec(annotation: Any, *, whole_argument: bool = True) -> TypeSpec:
    """The spec of an annotation; TypeError when it is not supported (bytes only as a whole argument)."""
    if annotation in _SIMPLE_KINDS and (annotation is not bytes or whole_argument):
        return TypeSpec(_SIMPLE_KINDS[annotation])
    if annotation in (list, dict):  # bare: any JSON elements
        return TypeSpec("list" if annotation is list else "dict", item=TypeSpec("any"))
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is list and len(args) == 1:
        return TypeSpec("list", item=type_spec(args[0], whole_argument=False))
    if origin is dict and len(args) == 2 and args[0] is str:
        return TypeSpec("dict", item=type_spec(args[1], whole_argument=False))
    if origin in (typing.Union, types.UnionType) and len(args) == 2 and type(None) in args:
        inner = args[0] if args[1] is type(None) else args[1]
        return TypeSpec("optional", item=type_spec(inner, whole_argument=False))
    if isinstance(annotation, type) and dataclasses.is_dataclass(annotation):
        hints = typing.get_type_hints(annotation)
        fields = tuple(
            (field.name, type_spec(hints[field.name], whole_argument=False), _required(field))
            for field in dataclasses.fields(annotation)
            if field.init
        )
        return TypeSpec("dataclass", cls=annotation, fields=fields)
    raise TypeError(f"unsupported annotation {annotation!r}")


def convert_argument(spec: TypeSpec, raw: bytes, name: str) -> Any:
    """The value of parameter `name` from the argument bytes; TransactionError naming it when invalid."""
    if spec.kind == "bytes":
        return raw
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise TransactionError(f"invalid value for '{name}': not UTF-8 text") from None
    return text if spec.kind == "str" else from_json(spec, _parse_json(text, name), name)


def load_json(annotation: Any, data: bytes | str, name: str = "value") -> Any:
    """JSON decoded into the annotated type, e.g. a dataclass read back from the ledger."""
    return from_json(type_spec(annotation, whole_argument=False), _parse_json(data, name), name)


def from_json(spec: TypeSpec, value: Any, path: str) -> Any:
    """A decoded JSON value checked and converted to `spec`; errors name the path, e.g. 'item.count'."""
    kind = spec.kind
    if kind == "any":
        return value
    if kind == "str" and isinstance(value, str):
        return value
    if kind == "int" and isinstance(value, int) and not isinstance(value, bool):
        return value
    if kind == "float" and isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    if kind == "bool" and isinstance(value, bool):
        return value
    if kind == "optional":
        return None if value is None else from_json(spec.item, value, path)
    if kind == "list" and isinstance(value, list):
        return [from_json(spec.item, element, f"{path}[{index}]") for index, element in enumerate(value)]
    if kind == "dict" and isinstance(value, dict):
        return {key: from_json(spec.item, element, f"{path}.{key}") for key, element in value.items()}
    if kind == "dataclass" and isinstance(value, dict):
        return _dataclass_from_json(spec, value, path)
    raise TransactionError(f"invalid value for '{path}': expected {_EXPECTED[kind]}")


def json_schema(spec: TypeSpec, components: dict[str, dict]) -> dict:
    """The JSON schema of a spec for contract metadata; dataclasses are added to `components` and referenced."""
    if spec.kind in _SIMPLE_SCHEMAS:
        return dict(_SIMPLE_SCHEMAS[spec.kind])
    if spec.kind == "list":
        return {"type": "array", "items": json_schema(spec.item, components)}
    if spec.kind == "dict":
        return {"type": "object", "additionalProperties": json_schema(spec.item, components)}
    if spec.kind == "optional":
        return {"anyOf": [json_schema(spec.item, components), {"type": "null"}]}
    name = spec.cls.__name__
    if name not in components:
        components[name] = {
            "$id": name,
            "type": "object",
            "properties": {field: json_schema(field_spec, components) for field, field_spec, _ in spec.fields},
            "required": [field for field, _, required in spec.fields if required],
            "additionalProperties": False,
        }
    return {"$ref": f"#/components/schemas/{name}"}


def result_bytes(value: Any) -> bytes:
    """The payload of a transaction result: None is empty, bytes as is, str as UTF-8, else canonical JSON."""
    if value is None:
        return b""
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    return canonical_json(value)


_EXPECTED = {
    "str": "a string",
    "int": "an integer",
    "float": "a finite number",
    "bool": "true or false",
    "list": "an array",
    "dict": "an object",
    "dataclass": "an object",
}


def _dataclass_from_json(spec: TypeSpec, value: dict, path: str) -> Any:
    known = {name for name, _, _ in spec.fields}
    unknown = sorted(set(value) - known)
    if unknown:
        raise TransactionError(f"invalid value for '{path}': unknown field '{unknown[0]}'")
    converted = {}
    for name, field_spec, required in spec.fields:
        if name in value:
            converted[name] = from_json(field_spec, value[name], f"{path}.{name}")
        elif required:
            raise TransactionError(f"invalid value for '{path}.{name}': missing")
    return spec.cls(**converted)


def _parse_json(text: bytes | str, name: str) -> Any:
    try:
        return parse_json(text)
    except ValueError as exc:
        raise TransactionError(f"invalid value for '{name}': not valid JSON: {exc}") from None


def _required(field: dataclasses.Field) -> bool:
    return field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING
