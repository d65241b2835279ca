"""Every kind of unauthorized read, tried against a running consortium and counted (`make reliability`).

The owner (the first domain's doctor) puts published records; the reader (the second domain's doctor) is
granted some of them. Then each kind of read that must fail is tried `rounds` times: by the ledger's decision
(no grant, another user, another purpose, a revoked or an expired grant), by Fabric (a domain outside the
owner's local channel), or by the owner's data service (a decision of another requester, a replayed, altered,
stale or impersonating statement, one sent in another user's TLS session, none naming a decision). Counted per
kind: tried, refused, and logged: a matching denial found in the access log afterwards (on the public channel,
or on the owner's local channel for a statement that does not verify). Fabric's refusal of a channel outsider
has no log: the outsider cannot write on a ledger it cannot reach; its row says so.

    >>> kinds = run_unauthorized_reads(topology, layout, rounds=3)
    >>> sum(kind.escapes for kind in kinds)
    0
"""

from __future__ import annotations

import hashlib
import json
import secrets
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable

from medfabric.consortium.connection import connect_as
from medfabric.consortium.layout import NetworkLayout
from medfabric.consortium.topology import Topology
from medfabric.crypto import SignedStatement, canonical_json, sign_statement
from medfabric.data_service.client import DataServiceError
from medfabric.data_service.record_service import STATEMENT_MAX_AGE_S
from medfabric.errors import MedfabricError
from medfabric.gateway import GatewayError
from medfabric.gateway.identity import X509Identity
from medfabric.polling import awaited
from medfabric.sharing import audit
from medfabric.sharing.demo import SAMPLE_OBSERVATION
from medfabric.sharing.emr import AccessDenied, get_record, grant, prepare_payload, put_record, request, revoke
from medfabric.sharing.session import Session

EXPIRING_GRANT_S = 4  # the expired-grant kind waits this long past its grant's end
LOG_WAIT_S = 30.0
DISCOVERY_WAIT_S = 60.0
UNDISCOVERED = "no combination of peers can be derived"


@dataclass
class ReadKind:
    """One kind of unauthorized read: how often it was tried, refused, and found logged as a denial."""

    kind: str
    refused_by: str  # "ledger", "Fabric" or "data service"
    tried: int = 0
    refused: int = 0  # refused for this kind's reason
    refused_otherwise: int = 0  # refused, but for another reason than the one this kind tests
    logged: int | None = 0  # None: nothing can be logged (Fabric's own refusal)
    first_error: str = ""

    @property
    def escapes(self) -> int:
        return self.tried - self.refused - self.refused_otherwise


@dataclass(frozen=True)
class _Kind:
    name: str
    refused_by: str
    attempt: Callable[[str], None]  # given a fresh record: raises if refused
    refusal: tuple[type[Exception], ...]
    log: tuple[str, str] | None  # (channel, substring of the denial's reason) it must leave


def run_unauthorized_reads(topology: Topology, layout: NetworkLayout, *, rounds: int = 3,
                           say: Callable[[str], None] = lambda line: None) -> list[ReadKind]:
    """Each kind `rounds` times on a running consortium (see the module's docstring)."""
    owner, reader, third = topology.domains[0], topology.domains[1], topology.domains[-1]
    public = topology.public_channel.name
    with ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="medfabric-unauthorized-")))

        def session(domain, user: str = "doctor") -> Session:
            gateway = stack.enter_context(connect_as(domain.id, user, topology=topology, layout=layout))
            return Session(topology, layout, domain, user, gateway)

        owner_s, reader_s, colleague_s, third_s = (session(owner), session(reader), session(reader, "researcher"),
                                                   session(third))
        peers = [owner_s, reader_s, third_s]
        out = folder / "never-written.json"

        def put() -> str:
            patient = f"P-UNAUTH-{secrets.token_hex(4)}"
            plaintext = canonical_json(SAMPLE_OBSERVATION).replace(b"P-DEMO-001", patient.encode())
            record_id = put_record(owner_s, prepare_payload(plaintext, patient), publish=True)["record_id"]
            _until(lambda: all(s.index(public).find(record_id) for s in peers), f"{record_id} on every duty peer")
            return record_id

        def granted(record_id: str, *, seconds: float = 3600, purpose: str = "treatment") -> dict[str, Any]:
            until = datetime.now(timezone.utc) + timedelta(seconds=seconds)
            made = grant(owner_s, record_id, reader.id, purpose, until, "doctor")
            _until(lambda: all(_grant(s, public, made["grant_id"]) for s in peers), "the grant on every peer")
            return made

        def allowed_decision(record_id: str) -> str:
            granted(record_id)
            decision, decision_tx = reader_s.consent(public).check_access(record_id)
            if decision["decision"] != "allow":
                raise RuntimeError(f"the granted reader was denied {record_id}: {decision['reason']}")
            return decision_tx

        def fetch(as_session: Session, record_id: str, statement: dict[str, Any]) -> None:
            as_session.data_service(owner.id).fetch(record_id, statement)

        def revoked(record_id: str) -> None:
            made = granted(record_id)
            revoke(owner_s, made["grant_id"])
            _until(lambda: all((_grant(s, public, made["grant_id"]) or {}).get("revoked") for s in peers),
                   "the revoke everywhere")
            request(reader_s, record_id, owner.id, out)

        def expired(record_id: str) -> None:
            made = granted(record_id, seconds=EXPIRING_GRANT_S)
            ends = datetime.fromisoformat(made["expires"])
            time.sleep(max(0.0, (ends - datetime.now(timezone.utc)).total_seconds()) + 1)
            request(reader_s, record_id, owner.id, out)

        def replayed(record_id: str) -> None:
            statement = reader_s.signed(action="fetch", record_id=record_id, decision_tx=allowed_decision(record_id))
            fetch(reader_s, record_id, statement)  # delivered once
            fetch(reader_s, record_id, statement)

        def others_decision(record_id: str) -> None:
            decision_tx = allowed_decision(record_id)
            fetch(third_s, record_id, third_s.signed(action="fetch", record_id=record_id, decision_tx=decision_tx))

        def in_anothers_session(record_id: str) -> None:
            decision_tx = allowed_decision(record_id)
            fetch(reader_s, record_id, third_s.signed(action="fetch", record_id=record_id, decision_tx=decision_tx))

        def signed_fetch(record_id: str, forge: Callable[[Session, str, str], dict[str, Any]]) -> None:
            fetch(reader_s, record_id, forge(reader_s, record_id, allowed_decision(record_id)))

        fabric_refusal = (GatewayError,)
        denied = (AccessDenied,)
        refused = (DataServiceError,)
        local = owner.local_channel
        kinds = [
            _Kind("no grant", "ledger", lambda r: request(third_s, r, owner.id, out), denied, (public, "no grant")),
            _Kind("another user of the granted domain", "ledger",
                  lambda r: (granted(r), request(colleague_s, r, owner.id, out)), denied, (public, "no grant")),
            _Kind("another purpose than the grant's", "ledger",
                  lambda r: (granted(r, purpose="research"), request(reader_s, r, owner.id, out)), denied,
                  (public, "is for research, not treatment")),
            _Kind("revoked grant", "ledger", revoked, denied, (public, "revoked")),
            _Kind("expired grant", "ledger", expired, denied, (public, "expired")),
            _Kind("outside the owner's local channel", "Fabric",
                  lambda r: reader_s.consent(local).check_access(r), fabric_refusal, None),
            _Kind("a decision of another requester", "data service", others_decision, refused,
                  (public, "the decision is for another requester")),
            _Kind("a replayed statement", "data service", replayed, refused, (local, "seen before")),
            _Kind("a statement altered after signing", "data service",
                  lambda r: signed_fetch(r, lambda s, rid, tx: altered_statement(
                      s.signed(action="fetch", record_id=rid, decision_tx=tx), decision_tx=secrets.token_hex(32))),
                  refused, (local, "signature does not verify")),
            _Kind("a certificate claiming another domain's CA", "data service",
                  lambda r: signed_fetch(r, lambda s, rid, tx: impersonating_statement(
                      third_s, reader.msp_id, rid, tx)), refused, (local, "not issued by a trusted CA")),
            _Kind("a stale statement", "data service", lambda r: signed_fetch(r, stale_statement), refused,
                  (local, f"older than {STATEMENT_MAX_AGE_S:g} s")),
            _Kind("a statement sent in another user's TLS session", "data service", in_anothers_session, refused,
                  (public, "but the TLS client certificate is")),
            _Kind("no decision named", "data service",
                  lambda r: fetch(reader_s, r, reader_s.signed(action="fetch", record_id=r)), refused,
                  (public, "names no decision_tx")),
        ]
        results = []
        for kind in kinds:
            result = ReadKind(kind.name, kind.refused_by, logged=None if kind.log is None else 0)
            tried_on = []
            for _ in range(rounds):
                record_id = put()
                tried_on.append(record_id)
                result.tried += 1
                try:
                    if kind.refused_by == "Fabric":  # a discovery error is its refusal: not retried
                        kind.attempt(record_id)
                    else:
                        _while_discovering(lambda: kind.attempt(record_id))
                except kind.refusal as error:
                    message = " ".join(str(error).split())
                    if kind.log is None or kind.log[1] in message:
                        result.refused += 1
                    else:
                        result.refused_otherwise += 1
                        result.first_error = result.first_error or message[:160]
                except MedfabricError as error:  # refused, but not the way this kind must be: an escape
                    result.first_error = result.first_error or f"{type(error).__name__}: {error}"[:160]
            if kind.log is not None:
                result.logged = _count_logged(owner_s, kind.log, tried_on)
            if out.exists():
                raise RuntimeError(f"{kind.name}: a refused read wrote {out}")
            say(f"unauthorized reads: {kind.name}: {result.refused} of {result.tried} refused, "
                f"{result.logged if result.logged is not None else 'none (Fabric)'} logged")
            results.append(result)
        _check_owner_still_reads(owner_s, tried_on, folder)
        return results


def altered_statement(statement: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """The signed statement with its content changed after signing."""
    altered = json.loads(json.dumps(statement))
    altered["statement"].update(changes)
    return altered


def impersonating_statement(signer: Session, claimed_msp: str, record_id: str, decision_tx: str) -> dict[str, Any]:
    """A fetch signed with `signer`'s key and certificate but claiming another MSP."""
    credentials = signer.credentials
    claimed = X509Identity(claimed_msp, credentials.identity.certificate_pem)
    return sign_statement({"action": "fetch", "record_id": record_id, "decision_tx": decision_tx},
                          credentials.signer, claimed).to_dict()


def stale_statement(signer: Session, record_id: str, decision_tx: str) -> dict[str, Any]:
    """A well-signed fetch issued longer ago than a data service accepts: a captured request, replayed later."""
    credentials = signer.credentials
    fresh = SignedStatement.from_dict(signer.signed(action="fetch", record_id=record_id, decision_tx=decision_tx))
    issued_at = datetime.now(timezone.utc) - timedelta(seconds=STATEMENT_MAX_AGE_S + 60)
    unsigned = replace(fresh, issued_at=issued_at.isoformat(timespec="milliseconds"), signature=b"")
    return replace(unsigned, signature=credentials.signer(hashlib.sha256(unsigned.signed_bytes()).digest())).to_dict()


def _count_logged(owner: Session, log: tuple[str, str], record_ids: list[str]) -> int:
    """How many of `record_ids` have a denial whose reason holds the expected words, once the log has settled."""
    channel, words = log

    def found() -> int:
        return sum(1 for record_id in record_ids
                   if any(entry["action"] == "denied" and words in (entry.get("reason") or "")
                          for entry in audit.log(owner, channel, record_id)))

    deadline = time.monotonic() + LOG_WAIT_S
    count = found()
    while count < len(record_ids) and time.monotonic() < deadline:
        time.sleep(1.0)
        count = found()
    return count


def _check_owner_still_reads(owner: Session, record_ids: list[str], folder: Path) -> None:
    """The refused reads changed nothing for the owner: its last records read back."""
    for record_id in record_ids:
        get_record(owner, record_id, folder / f"{record_id}.json")


def _grant(session: Session, channel: str, grant_id: str) -> dict[str, Any] | None:
    """The grant as the session's peer has it; None before it arrives there."""
    try:
        return session.consent(channel).get_grant(grant_id)
    except GatewayError:
        return None


def _while_discovering(attempt: Callable[[], None], timeout: float = DISCOVERY_WAIT_S) -> None:
    """`attempt`, again while the gateway's discovery does not yet know enough peers to endorse (a consortium
    just started: gossip membership takes seconds); that is no refusal."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return attempt()
        except GatewayError as error:
            if UNDISCOVERED not in str(error) or time.monotonic() > deadline:
                raise
        time.sleep(1.0)


def _until(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    """Return once `condition()` holds (medfabric.polling.awaited); RuntimeError naming `what` after `timeout`."""
    if awaited(lambda: True if condition() else None, timeout) is None:
        raise RuntimeError(f"not seen within {timeout:g} s: {what}")
