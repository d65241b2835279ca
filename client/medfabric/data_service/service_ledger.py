"""What the data service needs from the ledger, as protocols: read an access decision (and the standing of the
grant it relied on), log an outcome, and read what the fl contract says of a federated-learning record.

medfabric.data_service.ledger_access implements them over Fabric; tests use fakes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from medfabric.errors import MedfabricError

ALLOW = "allow"


class LedgerError(MedfabricError):
    """The ledger could not be asked; the service refuses rather than guesses."""


@dataclass(frozen=True)
class Decision:
    """An access decision as the ledger recorded it."""

    record_id: str
    actor_id: str  # the decider's caller, as Fabric's cid writes it (medfabric.consortium.fabric_id)
    actor_msp: str
    decision: str  # "allow" or "deny"
    timestamp: datetime  # the deciding transaction's, timezone-aware
    break_glass: bool = False  # decided by consent EmergencyAccess
    grant_id: str | None = None  # the grant that allowed it, if one did


@dataclass(frozen=True)
class GrantStanding:
    """What the service re-checks of a grant when a reader comes with a decision it allowed."""

    grant_id: str
    revoked: bool
    expires: datetime  # timezone-aware


class AccessLedger(Protocol):
    def decision(self, channel: str, tx_id: str) -> Decision | None:
        """The committed decision of consent CheckAccess or EmergencyAccess transaction `tx_id` on `channel`;
        None when that transaction made no such decision. LedgerError when the ledger cannot be asked."""

    def grant(self, channel: str, grant_id: str) -> GrantStanding | None:
        """The grant as the ledger has it now; None when there is no such grant. LedgerError as above."""


@dataclass(frozen=True)
class FlRecordFacts:
    """What the ledger says of a federated-learning record the service keeps (medfabric.fl.records)."""

    readers: frozenset[str]  # the MSPs that may have it: the task's publisher for an update, every participant
    #                          and the publisher for global weights
    ciphertext_sha256: str | None  # of the sealed copy, as its update or aggregation recorded it; None for the
    #                                initial weights (round 0), which the task names by their plaintext hash only
    tx_id: str  # the ledger record the delivery relies on: the update's or the aggregation's transaction


class FlLedger(Protocol):
    def fl_record(self, channel: str, task_id: str, round: int, part: str) -> FlRecordFacts | None:
        """What the public channel says of that FL record; None when it records no such update or aggregation
        (or no such task). LedgerError when the ledger cannot be asked."""


@dataclass(frozen=True)
class Requester:
    """Who signed a verified statement."""

    msp_id: str
    id: str  # as Fabric's cid writes it, so that it compares with Decision.actor_id


class AuditSink(Protocol):
    def log_access(
        self, action: str, record_id: str | None, outcome: str, reason: str, requester: Requester | None,
        decision_tx: str | None = None, break_glass: bool = False,
    ) -> None:
        """Record one outcome: action write, deliver, erase or denied; outcome success or failure.
        `requester` is None when no statement could be verified; `decision_tx` is the access decision a fetch
        named, once its statement is verified; `break_glass` when that decision was a break-glass one, which is
        then logged, flagged, on both tiers."""
