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


MAX_DEPTH = 64  # nesting levels of arrays and objects a document may have


def parse_json(data: bytes | str) -> Any:
    """Decode JSON; ValueError for a syntax error, NaN or infinities, a key given twice in one object, nesting
    deeper than MAX_DEPTH, or a string that is not valid Unicode (a lone surrogate escape such as \\ud800)."""
    try:
        document = json.loads(data, object_pairs_hook=_unique_keys, parse_constant=_refuse_constant)
    except RecursionError:
        raise ValueError(f"nested deeper than {MAX_DEPTH} levels") from None
    _check_tree(document)
    return document


def _check_tree(document: Any) -> None:
    """Depth and Unicode of every node, without recursion (a deep document must not exhaust the stack)."""
    pending: list[tuple[Any, int]] = [(document, 0)]
    while pending:
        value, depth = pending.pop()
        if isinstance(value, str):
            _check_text(value)
        elif isinstance(value, (dict, list)):
            if depth >= MAX_DEPTH:
                raise ValueError(f"nested deeper than {MAX_DEPTH} levels")
            items = value.items() if isinstance(value, dict) else enumerate(value)
            for key, item in items:
                if isinstance(key, str):
                    _check_text(key)
                pending.append((item, depth + 1))


def _check_text(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        raise ValueError(f"a string holds a lone surrogate (\\u{ord(text[error.start]):04x}): not valid Unicode") \
            from None


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
