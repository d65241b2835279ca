"""Composite keys and key ranges, laid out exactly as Fabric's Go and Node shims lay them out.

A composite key is "\\x00" + object type + "\\x00" + each attribute + "\\x00";
the leading U+0000 keeps composite keys apart from simple keys.
"""

from __future__ import annotations

from .errors import ChaincodeError

COMPOSITE_KEY_NAMESPACE = "\x00"
MIN_UNICODE_RUNE = "\x00"
MAX_UNICODE_RUNE = "\U0010ffff"
EMPTY_KEY_SUBSTITUTE = "\x01"  # an open start of a simple-key range: the smallest key outside the composite space


def create_composite_key(object_type: str, attributes: list[str]) -> str:
    """The composite key of an object type and its attributes."""
    parts = [object_type, *attributes]
    for part in parts:
        _check_attribute(part)
    return COMPOSITE_KEY_NAMESPACE + "".join(part + MIN_UNICODE_RUNE for part in parts)


def split_composite_key(key: str) -> tuple[str, list[str]]:
    """The object type and attributes a composite key was made of."""
    if not key.startswith(COMPOSITE_KEY_NAMESPACE) or not key.endswith(MIN_UNICODE_RUNE) or len(key) < 2:
        raise ChaincodeError("not a composite key")
    object_type, *attributes = key[1:-1].split(MIN_UNICODE_RUNE)
    return object_type, attributes


def partial_key_range(object_type: str, attributes: list[str]) -> tuple[str, str]:
    """Start and end of the range holding every composite key that begins with these attributes."""
    start = create_composite_key(object_type, attributes)
    return start, start + MAX_UNICODE_RUNE


def simple_key_range(start: str, end: str) -> tuple[str, str]:
    """Range bounds for simple keys: an empty start means the first simple key, an empty end means no bound."""
    for key in (start, end):
        if key.startswith(COMPOSITE_KEY_NAMESPACE):
            raise ChaincodeError("a simple key must not start with U+0000, which marks composite keys")
    return start or EMPTY_KEY_SUBSTITUTE, end


def _check_attribute(value: str) -> None:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ChaincodeError(f"composite key part {value!r} is not valid UTF-8") from None
    if MIN_UNICODE_RUNE in value or MAX_UNICODE_RUNE in value:
        raise ChaincodeError("a composite key part must not contain U+0000 or U+10FFFF")
