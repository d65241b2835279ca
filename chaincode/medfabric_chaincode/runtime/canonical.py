"""Canonical JSON out, strict JSON in.

Every endorsing peer must produce the same bytes for the same value, and read
a document the same way: no NaN or infinities, no duplicate keys.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any


def canonical_json(value: object) -> bytes:
    """UTF-8 JSON with sorted keys and no spaces; dataclasses become objects; NaN and infinities are refused."""
    text = json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False, default=_fields_of
    )
    return text.encode("utf-8")


def parse_json(data: bytes | str) -> Any:
    """Decode JSON; ValueError for a syntax error, NaN or infinities, or a key given twice in one object."""
    return json.loads(data, object_pairs_hook=_unique_keys, parse_constant=_refuse_constant)


def _fields_of(value: object) -> dict[str, object]:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {field.name: getattr(value, field.name) for field in dataclasses.fields(value)}
    raise TypeError(f"{type(value).__name__} has no canonical JSON form")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document: dict[str, Any] = {}
    for key, value in pairs:
        if key in document:
            raise ValueError(f"key '{key}' appears twice")
        document[key] = value
    return document


def _refuse_constant(constant: str) -> Any:
    raise ValueError(f"{constant} is not a JSON number")
