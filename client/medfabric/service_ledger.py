"""What the data service needs from the ledger, as two protocols: read an access decision, log an outcome.

medfabric.ledger_access implements them over Fabric; tests use fakes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from .errors import MedfabricError

ALLOW = "allow"


class LedgerError(MedfabricError):
    """The ledger could not be asked; the service refuses rather than guesses."""


@dataclass(frozen=True)
class Decision:
    """An access decision as the ledger recorded it."""

    record_id: str
    actor_id: str  # the decider's caller, as Fabric's cid writes it (medfabric.fabric_id)
    actor_msp: str
    decision: str  # "allow" or "deny"
    timestamp: datetime  # the deciding transaction's, timezone-aware
    break_glass: bool = False  # decided by consent EmergencyAccess


class AccessLedger(Protocol):
    def decision(self, channel: str, tx_id: str) -> Decision | None:
        """The committed decision of consent CheckAccess or EmergencyAccess transaction `tx_id` on `channel`;
        None when that transaction made no such decision. LedgerError when the ledger cannot be asked."""


@dataclass(frozen=True)
class Requester:
    """Who signed a verified statement."""

    msp_id: str
    id: str  # as Fabric's cid writes it, so that it compares with Decision.actor_id


class AuditSink(Protocol):
    def log_access(
        self, action: str, record_id: str | None, outcome: str, reason: str, requester: Requester | None,
        decision_tx: str | None = None,
    ) -> None:
        """Record one outcome: action write, deliver, erase or denied; outcome success or failure.
        `requester` is None when no statement could be verified; `decision_tx` is the access decision a fetch
        named, once its statement is verified."""
