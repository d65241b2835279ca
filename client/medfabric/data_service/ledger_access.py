"""The data service's ledger side over Fabric: access decisions read from consent, outcomes written to the access log.

Both act as the domain's Admin on a Gateway from medfabric.consortium.connection.connect_as:

* decisions: `consent:GetDecision(tx_id)`, evaluated on the requester's channel:
  the decision consent CheckAccess or EmergencyAccess kept under its own
  transaction id, a key no other transaction writes; any other transaction id
  is `decision <tx_id> not found`. Never the access log, where any caller may
  append entries. The grant an allowing decision relied on is read again
  (`consent:GetGrant`), so that a revoke made since the decision counts.
* index entries: `emr_index:GetRecord(record_id)` on the local channel, for the
  sweep of stores never indexed (medfabric.data_service.orphan_sweep).
* outcomes: `access_log:LogAccess({action, outcome, record_id?, reason,
  requester_msp?, requester_id?, decision_tx?, break_glass?})`, submitted (the
  call returns once the entry is committed), on the requester's channel, and
  after a break-glass decision on the other tier too. The entry's actor is the
  service (the caller); the requester goes in its own fields.
"""

from __future__ import annotations

import json
import re
import time
from datetime import datetime
from typing import Any, Callable, Mapping

from medfabric.consortium.topology import CHAINCODE_NAME
from medfabric.gateway import Gateway, GatewayError
from medfabric.consortium.service_identity import Consortium
from medfabric.data_service.service_ledger import Decision, FlRecordFacts, GrantStanding, LedgerError, Requester
from medfabric.fl.records import GLOBAL
from medfabric.sharing.emr_index import EmrIndex
from medfabric.polling import awaited

CONSENT_CONTRACT = "consent"
ACCESS_LOG_CONTRACT = "access_log"
FL_CONTRACT = "fl"
DECISIONS = ("allow", "deny")
REASON_LIMIT = 256  # access_log's limit on a reason
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class LedgerAccessDecisions:
    """AccessLedger over consent:GetDecision.

    The reader's decision commits on the reader's peer; this service asks its own
    peer, which may be a block behind. A decision not found is therefore asked
    again for up to `propagation_wait` seconds before it counts as absent.
    """

    def __init__(self, gateway: Gateway, chaincode_name: str = CHAINCODE_NAME,
                 propagation_wait: float = 3.0, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep):
        self._gateway = gateway
        self._chaincode_name = chaincode_name
        self._propagation_wait = propagation_wait
        self._clock, self._sleep = clock, sleep

    def decision(self, channel: str, tx_id: str) -> Decision | None:
        return awaited(lambda: self._lookup(channel, tx_id), self._propagation_wait, self._clock, self._sleep)

    def grant(self, channel: str, grant_id: str) -> GrantStanding | None:
        return self._ask(channel, "GetGrant", f"grant {grant_id} not found", lambda found: _grant(found, grant_id),
                         grant_id)

    def _lookup(self, channel: str, tx_id: str) -> Decision | None:
        return self._ask(channel, "GetDecision", f"decision {tx_id} not found", lambda found: _decision(found, tx_id),
                         tx_id)

    def _ask(self, channel: str, function: str, absent: str, read: Callable[[Any], Any], key: str) -> Any:
        """consent `function`(key) read with `read`; None when the chaincode answers `absent`."""
        contract = self._gateway.get_network(channel).get_contract(self._chaincode_name, CONSENT_CONTRACT)
        try:
            return read(json.loads(contract.evaluate_transaction(function, key)))
        except GatewayError as error:
            if absent in str(error):
                return None
            raise LedgerError(f"consent {function} on {channel}: {error}") from None
        except (ValueError, KeyError, TypeError):
            raise LedgerError(f"consent {function} on {channel} answered in an unexpected shape") from None


class LedgerEmrIndex:
    """IndexLedger over the client's EmrIndex.find (emr_index:GetRecord), its failures as LedgerError."""

    def __init__(self, gateway: Gateway, chaincode_name: str = CHAINCODE_NAME):
        self._gateway = gateway
        self._chaincode_name = chaincode_name

    def index_entry(self, channel: str, record_id: str) -> dict[str, Any] | None:
        try:
            entry = EmrIndex(self._gateway.get_network(channel), self._chaincode_name).find(record_id)
        except GatewayError as error:
            raise LedgerError(f"emr_index GetRecord on {channel}: {error}") from None
        except ValueError:
            raise LedgerError(f"emr_index GetRecord on {channel} answered in an unexpected shape") from None
        if entry is not None and (not isinstance(entry, dict) or entry.get("record_id") != record_id):
            raise LedgerError(f"emr_index GetRecord on {channel} answered for another record")
        return entry


class LedgerFlRecords:
    """FlLedger over the fl contract: fl:GetTask, then fl:ListUpdates or fl:ListAggregations of the round.

    As for decisions, the record was committed on its writer's peer; one not found on this service's peer is asked
    again for up to `propagation_wait` seconds."""

    def __init__(self, gateway: Gateway, domain_msps: Mapping[str, str], chaincode_name: str = CHAINCODE_NAME,
                 propagation_wait: float = 3.0, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep):
        self._gateway = gateway
        self._domain_msps = dict(domain_msps)
        self._chaincode_name = chaincode_name
        self._propagation_wait = propagation_wait
        self._clock, self._sleep = clock, sleep

    def fl_record(self, channel: str, task_id: str, round: int, part: str) -> FlRecordFacts | None:
        return awaited(lambda: self._lookup(channel, task_id, round, part), self._propagation_wait, self._clock,
                       self._sleep)

    def _lookup(self, channel: str, task_id: str, round: int, part: str) -> FlRecordFacts | None:
        contract = self._gateway.get_network(channel).get_contract(self._chaincode_name, FL_CONTRACT)
        try:
            task = json.loads(contract.evaluate_transaction("GetTask", task_id))
            if part == GLOBAL:
                rounds = json.loads(contract.evaluate_transaction("ListAggregations", task_id)) if round else []
                found = next((a for a in rounds if a["round"] == round), None)
                if round and found is None:
                    return None
                readers = {task["publisher_msp"], *(self._domain_msps[d] for d in task["domains"]
                                                    if d in self._domain_msps)}
                if found is None:  # round 0: the initial weights, which the task names by their hash only
                    return FlRecordFacts(frozenset(readers), None, task["tx_id"])
                return FlRecordFacts(frozenset(readers), found["global_ciphertext_sha256"], found["tx_id"])
            if round < 1:
                return None
            updates = json.loads(contract.evaluate_transaction("ListUpdates", task_id, str(round)))
            found = next((u for u in updates if u["domain"] == part), None)
            if found is None:
                return None
            return FlRecordFacts(frozenset({task["publisher_msp"]}), found["ciphertext_sha256"], found["tx_id"])
        except GatewayError as error:
            if f"task {task_id} not found" in str(error):
                return None
            raise LedgerError(f"fl on {channel}: {error}") from None
        except (ValueError, KeyError, TypeError):
            raise LedgerError(f"fl on {channel} answered in an unexpected shape") from None


def _decision(found: Any, tx_id: str) -> Decision:
    """GetDecision's answer for `tx_id` as a Decision; ValueError, KeyError or TypeError when it is not one."""
    timestamp = datetime.fromisoformat(found["timestamp"])
    if (
        found["tx_id"] != tx_id
        or found["decision"] not in DECISIONS
        or not isinstance(found["break_glass"], bool)
        or not isinstance(found["grant_id"], (str, type(None)))
        or timestamp.tzinfo is None
    ):
        raise ValueError("not a decision of that transaction")
    return Decision(
        record_id=found["record_id"],
        actor_id=found["actor_id"],
        actor_msp=found["actor_msp"],
        decision=found["decision"],
        timestamp=timestamp,
        break_glass=found["break_glass"],
        grant_id=found["grant_id"],
    )


def _grant(found: Any, grant_id: str) -> GrantStanding:
    """GetGrant's answer for `grant_id`; ValueError, KeyError or TypeError when it is not that grant."""
    expires = datetime.fromisoformat(found["expires"])
    if found["grant_id"] != grant_id or not isinstance(found["revoked"], bool) or expires.tzinfo is None:
        raise ValueError("not that grant")
    return GrantStanding(grant_id, found["revoked"], expires)


class LedgerAuditSink:
    """AuditSink over access_log:LogAccess; internal requests on the local channel, the rest on the public one, and
    what followed a break-glass decision on both."""

    def __init__(self, gateway: Gateway, consortium: Consortium, chaincode_name: str = CHAINCODE_NAME):
        self._gateway = gateway
        self._consortium = consortium
        self._chaincode_name = chaincode_name

    def log_access(
        self, action: str, record_id: str | None, outcome: str, reason: str, requester: Requester | None,
        decision_tx: str | None = None, break_glass: bool = False,
    ) -> None:
        channel = self._consortium.channel_for(requester.msp_id) if requester else self._consortium.local_channel
        entry: dict[str, Any] = {"action": action, "outcome": outcome}
        reason = one_line_reason(reason)
        if reason.strip():
            entry["reason"] = reason
        if record_id is not None:
            entry["record_id"] = record_id
        if requester is not None:
            entry["requester_msp"], entry["requester_id"] = requester.msp_id, requester.id
        if decision_tx is not None:
            entry["decision_tx"] = decision_tx
        channels = [channel]
        if break_glass and decision_tx is not None:
            entry["break_glass"] = True
            channels.append(self._consortium.other_tier(channel))
        for channel in channels:
            contract = self._gateway.get_network(channel).get_contract(self._chaincode_name, ACCESS_LOG_CONTRACT)
            try:
                contract.submit_transaction("LogAccess", json.dumps(entry))
            except GatewayError as error:
                raise LedgerError(f"access_log LogAccess on {channel}: {error}") from None


def one_line_reason(reason: str) -> str:
    """The reason on one line, within access_log's limit."""
    return _CONTROL.sub(" ", reason)[:REASON_LIMIT]
