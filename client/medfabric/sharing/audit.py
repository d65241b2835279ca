"""The access logs: read them, anchor a domain's local log on the public channel, and check the anchors.

A domain anchors its local log period by period: the count and Merkle root of
the entries of [since, until) (access_log LogDigest), recorded on the public
channel (anchor AnchorLogRoot). Verifying recomputes every anchored period's
root here, from the entries the local channel lists, by the contract's rule:
leaves are SHA-256 of each entry's canonical JSON in log order, a parent is
SHA-256 of its two children concatenated, an odd last node is promoted, and no
entries hash as SHA-256 of nothing. An entry altered, added or removed after
its period was anchored changes that period's root.

    >>> anchor(session)["count"]
    42
    >>> verify(session).mismatch is None
    True
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

from medfabric.crypto import canonical_json
from medfabric.sharing.session import Session

FIRST_SINCE = "1970-01-01T00:00:00.000Z"  # where a domain's first anchor starts
SETTLE = timedelta(seconds=5)  # entries younger than this may still be committing: anchored next time


def log(session: Session, channel: str, record_id: str | None = None, since: str = "", until: str = "") -> list[dict]:
    """The entries of a channel's access log in [since, until) ("" for no bound), of one record or all."""
    return session.access_log(channel).entries(since, until, record_id or "")


def anchor(session: Session, now: datetime | None = None) -> dict[str, Any] | None:
    """Anchor the domain's local log from the end of its last anchor to `now` (default: the clock) - SETTLE.

    Returns the anchor, or None when that period is empty of time (anchored moments ago).
    """
    anchors = session.anchors()
    previous = anchors.of_domain(session.domain.id)
    since = previous[-1]["until"] if previous else FIRST_SINCE
    until = iso_millis((now or datetime.now(timezone.utc)) - SETTLE)
    if until <= since:
        return None
    digest = session.access_log(session.local_channel).digest(since, until)
    return anchors.anchor({"domain": session.domain.id, "channel": digest["channel"], "since": digest["since"],
                           "until": digest["until"], "count": digest["count"], "merkle_root": digest["merkle_root"]})


@dataclass(frozen=True)
class Verification:
    """How a domain's anchors compare with its local log; `mismatch` describes the first period that differs."""

    domain: str
    channel: str
    anchors: int  # checked, up to and including a mismatching one
    entries: int
    mismatch: dict[str, Any] | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def verify(session: Session, progress: Callable[[int, int], None] | None = None) -> Verification:
    """Recompute every anchored period of the domain's local log; stop at the first that differs.

    `progress(done, total)` is called after each anchor.
    """
    channel = session.local_channel
    anchors = session.anchors().of_domain(session.domain.id)
    local_log = session.access_log(channel)
    checked = entries_seen = 0
    for anchored in anchors:
        entries = local_log.entries(anchored["since"], anchored["until"])
        checked, entries_seen = checked + 1, entries_seen + len(entries)
        found = {"channel": channel, "count": len(entries), "merkle_root": merkle_root(entries)}
        if any(anchored[name] != value for name, value in found.items()):
            mismatch = {"since": anchored["since"], "until": anchored["until"], "anchor_tx": anchored["tx_id"],
                        "anchored": {name: anchored[name] for name in found}, "found": found}
            return Verification(session.domain.id, channel, checked, entries_seen, mismatch)
        if progress:
            progress(checked, len(anchors))
    return Verification(session.domain.id, channel, checked, entries_seen, None)


def merkle_root(entries: list[dict[str, Any]]) -> str:
    """The Merkle root (hex) of log entries, as access_log LogDigest computes it."""
    level = [hashlib.sha256(canonical_json(entry)).digest() for entry in entries]
    if not level:
        return hashlib.sha256(b"").hexdigest()
    while len(level) > 1:
        parents = [hashlib.sha256(level[i] + level[i + 1]).digest() for i in range(0, len(level) - 1, 2)]
        level = parents + level[len(parents) * 2:]
    return level[0].hex()


def iso_millis(moment: datetime) -> str:
    """UTC with milliseconds (truncated) and Z, fixed width, as the contracts write times."""
    utc = moment.astimezone(timezone.utc)
    return f"{utc:%Y-%m-%dT%H:%M:%S}.{utc.microsecond // 1000:03d}Z"
