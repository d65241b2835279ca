"""anchor: Merkle roots of the domains' local access logs, recorded on the public channel.

A domain computes LogDigest(since, until) on its local channel and anchors the
result here, so that an outsider can check an entry of a local log against the
public channel without seeing the local one. A domain's anchors cover
consecutive periods: the first may start anywhere, each later one starts where
the previous one ended. State:

    ("anchor", domain, until)   -> the anchor, canonical JSON; key order is period order
    ("anchor~last", domain)     -> the `until` of the domain's latest anchor

Only the domain anchors its log: the caller's certificate must say
medfabric.domain = domain, and after the first anchor the caller's MSP must be
the MSP that made it. Every anchor reads and writes ("anchor~last", domain), so
two concurrent anchors of one domain cannot both commit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..runtime import (
    ChaincodeStub, Contract, TransactionContext, TransactionError, canonical_json, load_json, transaction
)
from .common import (
    DOMAIN_RULE, SHA256_RULE, TIME_RULE, Rule, check_argument, check_fields, check_page, invalid_field, is_count,
    iso_millis, parse_document, read_range, require_domain, text, utc_time
)

ANCHOR_KEY = "anchor"
LATEST_KEY = "anchor~last"
LOG_ANCHORED_EVENT = "LogAnchored"

_CHANNEL = re.compile(r"[a-z][a-z0-9.-]{0,248}")  # Fabric's channel names
_ANCHOR_RULES: dict[str, Rule] = {
    "domain": DOMAIN_RULE,
    "channel": (text(_CHANNEL), "must be a channel name: a-z, then up to 248 of a-z 0-9 . -"),
    "since": TIME_RULE,
    "until": TIME_RULE,
    "count": (is_count, "must be an integer >= 0"),
    "merkle_root": SHA256_RULE,
}


@dataclass(frozen=True)
class LogAnchor:
    domain: str
    channel: str  # the domain's local channel, whose log the root covers
    since: str  # ISO-8601 UTC with milliseconds (truncated): the period is [since, until)
    until: str
    count: int
    merkle_root: str  # as access_log.LogDigest computes it
    anchor_msp: str  # set by the contract: the caller's
    anchor_id: str
    anchored_at: str  # the transaction's timestamp
    tx_id: str


@dataclass(frozen=True)
class AnchorPage:
    anchors: list[LogAnchor]
    bookmark: str  # starts the next page; "" when there is none


class AnchorContract(Contract):
    """Anchor a domain's local log period by period; list a domain's anchors."""

    name = "anchor"

    @transaction
    def AnchorLogRoot(self, ctx: TransactionContext, anchor_json: str) -> LogAnchor:
        """Record the Merkle root of the caller's domain's log over [since, until); returns the anchor."""
        document = parse_document(anchor_json, "anchor")
        check_fields(document, _ANCHOR_RULES, "anchor")
        stub, identity = ctx.stub, ctx.client_identity
        domain = document["domain"]
        require_domain(identity, domain, "anchor its log")
        since, until = iso_millis(utc_time(document["since"])), iso_millis(utc_time(document["until"]))
        now = stub.get_tx_timestamp()
        if until <= since:
            invalid_field("anchor", "until", "must be after 'since'")
        if utc_time(until) > now:
            invalid_field("anchor", "until", f"must not be after the transaction time {iso_millis(now)}")
        previous = _latest(stub, domain)
        if previous is not None:
            if previous.anchor_msp != identity.msp_id:
                raise TransactionError(f"domain {domain} is anchored by {previous.anchor_msp}, not {identity.msp_id}")
            if until <= previous.until:
                invalid_field("anchor", "until", f"must be after the previous anchor's until {previous.until}")
            if since != previous.until:
                invalid_field("anchor", "since", f"must be the previous anchor's until {previous.until}")
        anchor = LogAnchor(
            domain=domain,
            channel=document["channel"],
            since=since,
            until=until,
            count=document["count"],
            merkle_root=document["merkle_root"],
            anchor_msp=identity.msp_id,
            anchor_id=identity.get_id(),
            anchored_at=iso_millis(now),
            tx_id=stub.get_tx_id(),
        )
        stub.put_state(stub.create_composite_key(ANCHOR_KEY, [domain, until]), canonical_json(anchor))
        stub.put_state(stub.create_composite_key(LATEST_KEY, [domain]), until.encode())
        stub.set_event(LOG_ANCHORED_EVENT, canonical_json(anchor))
        return anchor

    @transaction(evaluate=True)
    def GetAnchors(self, ctx: TransactionContext, domain: str, page_size: int = 0, bookmark: str = "") -> AnchorPage:
        """A domain's anchors in period order: all of them, or a page of `page_size` from `bookmark`."""
        check_argument("domain", domain, DOMAIN_RULE)
        check_page(page_size, bookmark)
        entries, next_bookmark = read_range(ctx.stub, ANCHOR_KEY, [domain], page_size, bookmark)
        return AnchorPage([load_json(LogAnchor, entry.value, "anchor") for entry in entries], next_bookmark)


def _latest(stub: ChaincodeStub, domain: str) -> LogAnchor | None:
    until = stub.get_state(stub.create_composite_key(LATEST_KEY, [domain]))
    if until is None:
        return None
    data = stub.get_state(stub.create_composite_key(ANCHOR_KEY, [domain, until.decode()]))
    if data is None:
        raise TransactionError(f"the latest anchor of domain {domain} is missing")
    return load_json(LogAnchor, data, "anchor")
