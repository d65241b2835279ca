"""The data service's ledger side over Fabric: access decisions read from the access log, outcomes written to it.

Both act as the domain's Admin on a Gateway from medfabric.connection.connect_as,
on the chaincode's `access_log` contract:

* decisions: `ListLog(since, "", "", 0, "")` over the decision window, the entry
  whose log_id is the decision transaction's id; consent CheckAccess and
  EmergencyAccess log an allow as action "read" or "break-glass", a deny as "denied".
* outcomes: `LogAccess({record_id, action, outcome, reason})`, submitted (the
  call returns once the entry is committed), on the requester's channel.

Caveat, until the contract changes: LogAccess lets any caller write an entry with
action "read" or "break-glass", which this lookup cannot tell from consent's own.
A lookup safe against that needs consent's decisions kept apart (a
`consent:GetDecision(tx_id)` query) or LogAccess limited to off-chain actions.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone

from .emr_index import CHAINCODE_NAME
from .gateway import Gateway, GatewayError
from .record_service import DECISION_MAX_AGE
from .service_identity import Consortium
from .service_ledger import ALLOW, Decision, LedgerError, Requester

ACCESS_LOG_CONTRACT = "access_log"
DECISION_ACTIONS = {"read": ALLOW, "break-glass": ALLOW, "denied": "deny"}
LOOKBACK = DECISION_MAX_AGE + timedelta(minutes=1)  # older decisions are refused anyway
REASON_LIMIT = 256  # access_log's limit on a reason
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class LedgerAccessDecisions:
    """AccessLedger over access_log:ListLog."""

    def __init__(self, gateway: Gateway, chaincode_name: str = CHAINCODE_NAME):
        self._gateway = gateway
        self._chaincode_name = chaincode_name

    def decision(self, channel: str, tx_id: str) -> Decision | None:
        since = (datetime.now(timezone.utc) - LOOKBACK).isoformat(timespec="milliseconds")
        contract = self._gateway.get_network(channel).get_contract(self._chaincode_name, ACCESS_LOG_CONTRACT)
        try:
            entries = json.loads(contract.evaluate_transaction("ListLog", since, "", "", "0", ""))["entries"]
            for entry in entries:
                if entry["log_id"] == tx_id and entry["action"] in DECISION_ACTIONS:
                    return Decision(
                        record_id=entry["record_id"],
                        actor_id=entry["actor_id"],
                        actor_msp=entry["actor_msp"],
                        decision=DECISION_ACTIONS[entry["action"]],
                        timestamp=datetime.fromisoformat(entry["timestamp"]),
                    )
        except GatewayError as error:
            raise LedgerError(f"access_log ListLog on {channel}: {error}") from None
        except (ValueError, KeyError, TypeError):
            raise LedgerError(f"access_log ListLog on {channel} answered in an unexpected shape") from None
        return None


class LedgerAuditSink:
    """AuditSink over access_log:LogAccess; internal requests on the local channel, the rest on the public one."""

    def __init__(self, gateway: Gateway, consortium: Consortium, chaincode_name: str = CHAINCODE_NAME):
        self._gateway = gateway
        self._consortium = consortium
        self._chaincode_name = chaincode_name

    def log_access(
        self, action: str, record_id: str | None, outcome: str, reason: str, requester: Requester | None
    ) -> None:
        channel = self._consortium.channel_for(requester.msp_id) if requester else self._consortium.local_channel
        entry = {"action": action, "outcome": outcome, "reason": audit_reason(reason, requester)}
        if record_id is not None:
            entry["record_id"] = record_id
        contract = self._gateway.get_network(channel).get_contract(self._chaincode_name, ACCESS_LOG_CONTRACT)
        try:
            contract.submit_transaction("LogAccess", json.dumps(entry))
        except GatewayError as error:
            raise LedgerError(f"access_log LogAccess on {channel}: {error}") from None


def audit_reason(reason: str, requester: Requester | None) -> str:
    """The reason with the requester (LogAccess records the service as the actor), one line, within the limit."""
    text = f"{reason} (requester {requester.msp_id} {requester.id})" if requester else reason
    return _CONTROL.sub(" ", text)[:REASON_LIMIT]
