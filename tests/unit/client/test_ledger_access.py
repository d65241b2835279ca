"""The data service's ledger side against a fake Gateway: which calls it makes and how it reads the answers."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import pytest

from medfabric.gateway import GatewayError
from medfabric.ledger_access import LedgerAccessDecisions, LedgerAuditSink
from medfabric.service_identity import Consortium
from medfabric.service_ledger import Decision, LedgerError, Requester

TX = "ab" * 32
READER = Requester("HospitalBMSP", "x509::CN=doctor@hospital-b::CN=ca.hospital-b")
CONSORTIUM = Consortium("HospitalAMSP", "hospital-a-local", "public", {})


class FakeGateway:
    """Answers every transaction with `answer` (bytes, or an exception to raise) and records the calls."""

    def __init__(self, answer: bytes | Exception = b""):
        self.answer = answer
        self.calls: list[tuple[str, str, str, str, tuple[str, ...]]] = []

    def get_network(self, channel: str) -> FakeNetwork:
        return FakeNetwork(self, channel)

    def call(self, *call) -> bytes:
        self.calls.append(call)
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


@dataclass(frozen=True)
class FakeNetwork:
    gateway: FakeGateway
    channel: str

    def get_contract(self, chaincode: str, contract: str) -> FakeContract:
        return FakeContract(self.gateway, (self.channel, chaincode, contract))


@dataclass(frozen=True)
class FakeContract:
    gateway: FakeGateway
    where: tuple[str, str, str]

    def evaluate_transaction(self, name: str, *args: str) -> bytes:
        return self.gateway.call(*self.where, "evaluate " + name, args)

    def submit_transaction(self, name: str, *args: str) -> bytes:
        return self.gateway.call(*self.where, "submit " + name, args)


def log_entry(action: str, log_id: str = TX) -> dict:
    return {"log_id": log_id, "record_id": "rec-1", "actor_id": READER.id, "actor_msp": READER.msp_id,
            "action": action, "outcome": "failure" if action == "denied" else "success",
            "timestamp": "2030-01-02T03:04:05.678Z"}


def listing(*entries: dict) -> bytes:
    return json.dumps({"entries": list(entries), "bookmark": ""}).encode()


@pytest.mark.parametrize("action, decision", [("read", "allow"), ("break-glass", "allow"), ("denied", "deny")])
def test_decision_is_the_log_entry_of_the_transaction(action, decision):
    gateway = FakeGateway(listing(log_entry("read", "cd" * 32), log_entry(action)))

    found = LedgerAccessDecisions(gateway).decision("public", TX)

    moment = datetime(2030, 1, 2, 3, 4, 5, 678000, tzinfo=timezone.utc)
    assert found == Decision("rec-1", READER.id, READER.msp_id, decision, moment)


def test_decision_is_looked_for_in_the_recent_access_log_of_the_channel():
    gateway = FakeGateway(listing())

    assert LedgerAccessDecisions(gateway).decision("public", TX) is None

    [(channel, chaincode, contract, call, (since, *rest))] = gateway.calls
    assert (channel, chaincode, contract, call, rest) == ("public", "medfabric", "access_log", "evaluate ListLog",
                                                         ["", "", "0", ""])
    lookback = datetime.now(timezone.utc) - datetime.fromisoformat(since)
    assert timedelta(minutes=10) < lookback < timedelta(minutes=12)


def test_entries_that_are_not_decisions_do_not_count():
    assert LedgerAccessDecisions(FakeGateway(listing(log_entry("deliver")))).decision("public", TX) is None


@pytest.mark.parametrize("answer", [GatewayError("UNAVAILABLE: no peer"), b"not json", b'{"entries": [{}]}'])
def test_an_unusable_ledger_is_a_ledger_error(answer):
    with pytest.raises(LedgerError, match="access_log ListLog on public"):
        LedgerAccessDecisions(FakeGateway(answer)).decision("public", TX)


@pytest.mark.parametrize("requester, channel", [(READER, "public"), (Requester("HospitalAMSP", "x509::a::b"),
                                                                     "hospital-a-local"), (None, "hospital-a-local")])
def test_outcome_is_submitted_to_the_requesters_channel(requester, channel):
    gateway = FakeGateway()

    LedgerAuditSink(gateway, CONSORTIUM).log_access("deliver", "rec-1", "success", "decision x", requester)

    [(called_channel, _, contract, call, (entry,))] = gateway.calls
    assert (called_channel, contract, call) == (channel, "access_log", "submit LogAccess")
    assert json.loads(entry)["action"] == "deliver" and json.loads(entry)["record_id"] == "rec-1"


def test_reason_names_the_requester_on_one_line_within_the_contracts_limit():
    gateway = FakeGateway()
    requester = Requester("HospitalBMSP", "x509::CN=" + "d" * 300)

    LedgerAuditSink(gateway, CONSORTIUM).log_access("denied", None, "failure", "bad\nsignature", requester)

    entry = json.loads(gateway.calls[0][4][0])
    assert "record_id" not in entry
    assert entry["reason"].startswith("bad signature (requester HospitalBMSP x509::CN=ddd")
    assert len(entry["reason"]) == 256


def test_a_failed_submit_is_a_ledger_error():
    sink = LedgerAuditSink(FakeGateway(GatewayError("ABORTED: endorsement failed")), CONSORTIUM)

    with pytest.raises(LedgerError, match="LogAccess on public: ABORTED"):
        sink.log_access("deliver", "rec-1", "success", "ok", READER)
