"""What the contracts share: field rules with one-line errors naming the field, times, identity checks, listings.

A rule is a test of a value and the sentence it states when the value fails:
`check_fields` applies a dict of them to a JSON document and raises
`invalid <what>: field '<name>' <rule>` for the first field that fails.
"""

from __future__ import annotations

import functools
import json
import math
import os
import re
from collections.abc import Callable, Collection, Mapping
from datetime import UTC, datetime
from itertools import takewhile
from typing import Any, NoReturn

from ..runtime import ChaincodeStub, ClientIdentity, KeyValue, TransactionError, parse_json

Rule = tuple[Callable[[Any], bool], str]

INDEX_VALUE = b"\x00"  # the value of an index key: the peer treats an empty value as a delete
MAX_PAGE_SIZE = 1000
DOMAIN_ATTRIBUTE = "medfabric.domain"  # Fabric CA attributes of MedFabric identities
ROLE_ATTRIBUTE = "medfabric.role"
ENROLLMENT_ATTRIBUTE = "hf.EnrollmentID"
# The consortium's domain -> MSP binding, {"hospital-a": "HospitalAMSP", ...}, rendered from the topology every
# member agreed to into each chaincode server's environment: a domain is spoken for by its MSP alone.
DOMAIN_MSPS_VARIABLE = "MEDFABRIC_DOMAIN_MSPS"

_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_DOMAIN = re.compile(r"[a-z0-9-]{1,63}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_MSP_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")


def text(pattern: re.Pattern) -> Callable[[Any], bool]:
    """A string the pattern matches in full."""
    return lambda value: isinstance(value, str) and pattern.fullmatch(value) is not None


def one_of(values: Collection[str]) -> Callable[[Any], bool]:
    return lambda value: isinstance(value, str) and value in values


def is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def integer_in(low: int, high: int) -> Rule:
    """An integer (not a bool) in [low, high]."""
    return (lambda value: isinstance(value, int) and not isinstance(value, bool) and low <= value <= high,
            f"must be an integer from {low} to {high}")


def number_in(low: float, high: float, low_open: bool = True) -> Rule:
    """A finite number (not a bool) in (low, high], or [low, high] when not low_open."""
    def valid(value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            return False
        return (low < value if low_open else low <= value) and value <= high
    return valid, f"must be a number in {'(' if low_open else '['}{low:g}, {high:g}]"


def utc_time(value: Any) -> datetime | None:
    """An ISO-8601 date-time with a time zone, in UTC; None for anything else."""
    try:
        moment = datetime.fromisoformat(value) if isinstance(value, str) else None
        return moment.astimezone(UTC) if moment is not None and moment.tzinfo is not None else None
    except (ValueError, OverflowError):
        return None


def is_zoned_time(value: Any) -> bool:
    return utc_time(value) is not None


ID_RULE: Rule = (text(_ID), "must be 1-128 characters of A-Z a-z 0-9 . _ : -")
DOMAIN_RULE: Rule = (text(_DOMAIN), "must be 1-63 characters of a-z 0-9 -")
SHA256_RULE: Rule = (text(_SHA256), "must be 64 lowercase hex characters")
TX_ID_RULE: Rule = (text(_SHA256), "must be a transaction id: 64 lowercase hex characters")
MSP_ID_RULE: Rule = (text(_MSP_ID), "must be an MSP id of 1-128 characters of A-Z a-z 0-9 . _ -")
TIME_RULE: Rule = (is_zoned_time, "must be an ISO-8601 date-time with a time zone")


def iso_millis(moment: datetime) -> str:
    """ISO-8601 UTC with milliseconds (truncated), fixed width: text order is time order."""
    m = moment.astimezone(UTC)
    return f"{m.year:04d}-{m.month:02d}-{m.day:02d}T{m:%H:%M:%S}.{m.microsecond // 1000:03d}Z"


def parse_document(document_json: str, what: str) -> dict[str, Any]:
    """A JSON object; `invalid <what>: ...` when the text is not one."""
    try:
        document = parse_json(document_json)
    except ValueError as exc:
        raise TransactionError(f"invalid {what}: not valid JSON: {exc}") from None
    if not isinstance(document, dict):
        raise TransactionError(f"invalid {what}: expected a JSON object")
    return document


def check_fields(
    document: dict[str, Any], rules: dict[str, Rule], what: str, *, optional: Collection[str] = (), prefix: str = ""
) -> None:
    """Every field known and valid; fields in `optional` may be absent, and pass unchecked when they have no rule."""
    unknown = sorted(set(document) - set(rules) - set(optional))
    if unknown:
        names = ", ".join(f"'{prefix}{name}'" for name in unknown)
        raise TransactionError(f"invalid {what}: unknown field{'s' if len(unknown) > 1 else ''} {names}")
    for name, (is_valid, rule) in rules.items():
        if name not in document:
            if name in optional:
                continue
            invalid_field(what, prefix + name, "is required")
        if not is_valid(document[name]):
            invalid_field(what, prefix + name, rule)


def invalid_field(what: str, name: str, rule: str) -> NoReturn:
    raise TransactionError(f"invalid {what}: field '{name}' {rule}")


def check_argument(name: str, value: Any, rule: Rule) -> None:
    is_valid, sentence = rule
    if not is_valid(value):
        raise TransactionError(f"invalid argument: '{name}' {sentence}")


def time_argument(name: str, value: str) -> str:
    """A time argument as iso_millis writes it; "" stays "" (no bound)."""
    if not value:
        return ""
    check_argument(name, value, TIME_RULE)
    return iso_millis(utc_time(value))


def check_page(page_size: int, bookmark: str) -> None:
    if not 0 <= page_size <= MAX_PAGE_SIZE:
        raise TransactionError(f"invalid argument: 'page_size' must be between 0 (no paging) and {MAX_PAGE_SIZE}")
    if bookmark and not page_size:
        raise TransactionError("invalid argument: 'bookmark' needs a page_size")


class DomainBindingError(ValueError):
    """The domain -> MSP binding of the environment is missing or malformed; one line."""


def domain_msps(environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """The consortium's domain -> MSP binding from $MEDFABRIC_DOMAIN_MSPS; DomainBindingError if unusable."""
    return dict(_parse_binding(environ.get(DOMAIN_MSPS_VARIABLE, "")))


@functools.cache
def _parse_binding(setting: str) -> tuple[tuple[str, str], ...]:
    if not setting:
        raise DomainBindingError(f"no domain -> MSP binding: {DOMAIN_MSPS_VARIABLE} is not set")
    try:
        binding = json.loads(setting)
    except ValueError:
        raise DomainBindingError(f"{DOMAIN_MSPS_VARIABLE} is not JSON") from None
    valid = isinstance(binding, dict) and binding and all(
        text(_DOMAIN)(domain) and text(_MSP_ID)(msp) for domain, msp in binding.items())
    if not valid:
        raise DomainBindingError(f"{DOMAIN_MSPS_VARIABLE} must map domain ids to MSP ids")
    if len(set(binding.values())) != len(binding):
        raise DomainBindingError(f"{DOMAIN_MSPS_VARIABLE} binds one MSP to two domains")
    return tuple(sorted(binding.items()))


def require_domain(identity: ClientIdentity, domain: str, doing: str) -> None:
    """The caller must be of the MSP bound to `domain`, and its certificate must say medfabric.domain = domain.

    The attribute alone proves nothing: any member's CA can write any attribute.
    """
    try:
        binding = domain_msps()
    except DomainBindingError as exc:
        raise TransactionError(f"this chaincode server cannot check domains: {exc}") from None
    owner = binding.get(domain)
    if owner is None:
        raise TransactionError(f"{domain} is no domain of this consortium (known: {', '.join(sorted(binding))})")
    if identity.msp_id != owner:
        raise TransactionError(f"only an identity of domain {domain} ({owner}) may {doing}: the caller is of "
                               f"{identity.msp_id}")
    claimed = identity.get_attribute(DOMAIN_ATTRIBUTE)
    if claimed != domain:
        has = f"has {DOMAIN_ATTRIBUTE} {claimed}" if claimed is not None else f"has no {DOMAIN_ATTRIBUTE}"
        raise TransactionError(f"only an identity of domain {domain} may {doing}: the caller's certificate {has}")


def member_domain(identity: ClientIdentity) -> str | None:
    """The domain the caller's MSP is bound to; None for an MSP of no domain or without a usable binding."""
    try:
        return _domain_of(domain_msps(), identity.msp_id)
    except DomainBindingError:
        return None


def _domain_of(binding: Mapping[str, str], msp_id: str) -> str | None:
    return next((domain for domain, msp in binding.items() if msp == msp_id), None)


def trusted_role(identity: ClientIdentity) -> tuple[str | None, str]:
    """The caller's medfabric.role when its certificate is a MedFabric identity of its own MSP's domain, and
    why not otherwise: (role, "") or (None, reason). A role written by another domain's CA counts for nothing."""
    role = identity.get_attribute(ROLE_ATTRIBUTE)
    if role is None:
        return None, f"{ROLE_ATTRIBUTE} is missing"
    try:
        own = _domain_of(domain_msps(), identity.msp_id)
    except DomainBindingError as exc:
        return None, f"this chaincode server cannot check domains: {exc}"
    claimed = identity.get_attribute(DOMAIN_ATTRIBUTE)
    if own is None or claimed != own:
        return None, (f"{ROLE_ATTRIBUTE} {role} is not trusted: the caller of {identity.msp_id} claims "
                      f"{DOMAIN_ATTRIBUTE} {claimed or 'none'}, its MSP's domain is {own or 'none'}")
    return role, ""


def require_role(identity: ClientIdentity, role: str, doing: str) -> None:
    """The caller's trusted role (trusted_role) must be `role`."""
    held, why_not = trusted_role(identity)
    if held != role:
        because = why_not or f"the caller's {ROLE_ATTRIBUTE} is {held}"
        raise TransactionError(f"only a {role} may {doing}: {because}")


def read_range(
    stub: ChaincodeStub,
    object_type: str,
    attributes: list[str],
    page_size: int = 0,
    bookmark: str = "",
    start: str = "",
    end: str = "",
) -> tuple[list[KeyValue], str]:
    """Composite keys of `object_type` beginning with `attributes`, in key order, from `start` (a key, inclusive)
    to `end` (exclusive), "" for no bound: all of them (page_size 0) or a page of `page_size` from `bookmark`.
    Returns them and the bookmark of the next page ("" when there is none).

    A start bound goes to the peer as the bookmark of a paginated query: the peer starts the range at the
    bookmark (inclusive) and checks nothing about it, hence the check that a caller's bookmark is in this
    listing. Paginated queries need a read-only transaction: a start bound or a page_size is for evaluate only.
    """
    if bookmark and not bookmark.startswith(stub.create_composite_key(object_type, attributes)):
        raise TransactionError("invalid argument: 'bookmark' does not belong to this listing")
    first = max(bookmark, start)
    found: list[KeyValue] = []
    if not first and not page_size:
        with stub.get_state_by_partial_composite_key(object_type, attributes) as entries:
            found = list(takewhile(lambda entry: not end or entry.key < end, entries))
        return found, ""
    while True:
        size = page_size - len(found) if page_size else MAX_PAGE_SIZE
        entries, page = stub.get_state_by_partial_composite_key_with_pagination(object_type, attributes, size, first)
        with entries:
            for entry in entries:
                if end and entry.key >= end:
                    return found, ""
                found.append(entry)
        first = page.bookmark
        if not first or (page_size and len(found) >= page_size):
            return found, ("" if end and first >= end else first)
