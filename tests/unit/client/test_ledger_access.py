"""The data service's ledger side against a fake Gateway: which calls it makes and how it reads the answers."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone

import grpc
import pytest

from medfabric.gateway import ErrorDetail, GatewayError
from medfabric.data_service.ledger_access import LedgerAccessDecisions, LedgerAuditSink
from medfabric.consortium.service_identity import Consortium
from medfabric.data_service.service_ledger import Decision, GrantStanding, LedgerError, Requester

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


def kept_decision(decision: str = "allow", break_glass: bool = False, tx_id: str = TX) -> dict:
    """consent:GetDecision's answer: the decision CheckAccess or EmergencyAccess kept."""
    return {"tx_id": tx_id, "record_id": "rec-1", "actor_id": READER.id, "actor_msp": READER.msp_id,
            "action": "read", "decision": decision, "reason": "grant x", "grant_id": None,
            "break_glass": break_glass, "timestamp": "2030-01-02T03:04:05.678Z"}


def not_found(tx_id: str = TX) -> GatewayError:
    """How the Gateway reports GetDecision of a transaction that kept no decision."""
    answer = f"chaincode response 500, decision {tx_id} not found"
    return GatewayError(f"evaluate call to endorser returned error: {answer}", grpc_code=grpc.StatusCode.UNKNOWN,
                        details=[ErrorDetail("peer0.hospital-b:7051", "HospitalBMSP", answer)])


@pytest.mark.parametrize("decision, break_glass", [("allow", False), ("allow", True), ("deny", False)])
def test_decision_is_what_consent_kept_for_the_transaction(decision, break_glass):
    gateway = FakeGateway(json.dumps(kept_decision(decision, break_glass)).encode())

    found = LedgerAccessDecisions(gateway).decision("public", TX)

    moment = datetime(2030, 1, 2, 3, 4, 5, 678000, tzinfo=timezone.utc)
    assert found == Decision("rec-1", READER.id, READER.msp_id, decision, moment, break_glass)
    assert gateway.calls == [("public", "medfabric", "consent", "evaluate GetDecision", (TX,))]


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_a_transaction_without_a_kept_decision_has_none():
    gateway = FakeGateway(not_found())

    assert LedgerAccessDecisions(gateway, propagation_wait=0).decision("hospital-a-local", TX) is None
    assert gateway.calls == [("hospital-a-local", "medfabric", "consent", "evaluate GetDecision", (TX,))]


def test_a_decision_not_yet_on_this_peer_is_asked_again_until_the_wait_ends():
    clock = FakeClock()
    gateway = FakeGateway(not_found())
    decisions = LedgerAccessDecisions(gateway, propagation_wait=3.0, clock=clock, sleep=clock.sleep)

    assert decisions.decision("public", TX) is None
    assert 3.0 <= clock.now < 3.6 and 5 <= len(gateway.calls) <= 12

    clock.now, gateway.calls[:] = 0.0, []
    answers = iter([not_found(), not_found(), json.dumps(kept_decision()).encode()])

    def next_answer(*call):
        gateway.calls.append(call)
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    gateway.call = next_answer
    assert decisions.decision("public", TX).decision == "allow"
    assert len(gateway.calls) == 3 and clock.now < 1.0


@pytest.mark.parametrize(
    "answer",
    [
        GatewayError("UNAVAILABLE: no peer"),
        not_found("cd" * 32),  # not found, but another transaction
        GatewayError("evaluate call to endorser returned error: chaincode response 500, unknown function GetDecision"),
        b"not json",
        b"{}",
        json.dumps(kept_decision(tx_id="cd" * 32)).encode(),
        json.dumps(kept_decision(decision="maybe")).encode(),
        json.dumps(kept_decision(break_glass="yes")).encode(),
        json.dumps({**kept_decision(), "grant_id": 7}).encode(),
        json.dumps({**kept_decision(), "timestamp": "2030-01-02T03:04:05"}).encode(),
        json.dumps([kept_decision()]).encode(),
    ],
)
def test_an_unusable_ledger_is_a_ledger_error(answer):
    with pytest.raises(LedgerError, match="consent GetDecision on public"):
        LedgerAccessDecisions(FakeGateway(answer)).decision("public", TX)


def test_a_decision_names_the_grant_it_relied_on():
    gateway = FakeGateway(json.dumps({**kept_decision(), "grant_id": "cd" * 32}).encode())

    assert LedgerAccessDecisions(gateway).decision("public", TX).grant_id == "cd" * 32


def kept_grant(grant_id: str = TX, revoked: bool = False, expires: str = "2031-01-01T00:00:00.000Z") -> dict:
    """consent:GetGrant's answer (the fields the service reads, and some it does not)."""
    return {"grant_id": grant_id, "domain": "hospital-a", "record_id": "rec-1", "grantee_msp": "HospitalBMSP",
            "purpose": "treatment", "expires": expires, "revoked": revoked, "revoked_at": None}


@pytest.mark.parametrize("revoked", [False, True])
def test_a_grant_is_read_as_it_stands_now(revoked):
    gateway = FakeGateway(json.dumps(kept_grant(revoked=revoked)).encode())

    found = LedgerAccessDecisions(gateway).grant("public", TX)

    assert found == GrantStanding(TX, revoked, datetime(2031, 1, 1, tzinfo=timezone.utc))
    assert gateway.calls == [("public", "medfabric", "consent", "evaluate GetGrant", (TX,))]


def test_a_grant_not_on_the_ledger_is_none():
    answer = f"chaincode response 500, grant {TX} not found"
    gateway = FakeGateway(GatewayError(f"evaluate call to endorser returned error: {answer}"))

    assert LedgerAccessDecisions(gateway).grant("public", TX) is None
    assert len(gateway.calls) == 1  # a grant is not waited for: the decision that named it is already there


@pytest.mark.parametrize(
    "answer",
    [
        GatewayError("UNAVAILABLE: no peer"),
        json.dumps(kept_grant(grant_id="cd" * 32)).encode(),
        json.dumps(kept_grant(revoked="no")).encode(),
        json.dumps(kept_grant(expires="2031-01-01T00:00:00")).encode(),
        b"[]",
    ],
)
def test_an_unusable_grant_answer_is_a_ledger_error(answer):
    with pytest.raises(LedgerError, match="consent GetGrant on public"):
        LedgerAccessDecisions(FakeGateway(answer)).grant("public", TX)


@pytest.mark.parametrize("requester, channels", [(READER, ["public", "hospital-a-local"]),
                                                  (Requester("HospitalAMSP", "x509::a::b"),
                                                   ["hospital-a-local", "public"])])
def test_what_follows_a_break_glass_decision_is_logged_flagged_on_both_tiers(requester, channels):
    gateway = FakeGateway()

    LedgerAuditSink(gateway, CONSORTIUM).log_access("deliver", "rec-1", "success", "decision x", requester, TX,
                                                    break_glass=True)

    assert [call[0] for call in gateway.calls] == channels
    assert {call[4][0] for call in gateway.calls} == {json.dumps({
        "action": "deliver", "outcome": "success", "reason": "decision x", "record_id": "rec-1",
        "requester_msp": requester.msp_id, "requester_id": requester.id, "decision_tx": TX, "break_glass": True,
    })}


@pytest.mark.parametrize("requester, channel", [(READER, "public"), (Requester("HospitalAMSP", "x509::a::b"),
                                                                     "hospital-a-local"), (None, "hospital-a-local")])
def test_outcome_is_submitted_to_the_requesters_channel(requester, channel):
    gateway = FakeGateway()

    LedgerAuditSink(gateway, CONSORTIUM).log_access("deliver", "rec-1", "success", "decision x", requester)

    [(called_channel, _, contract, call, (entry,))] = gateway.calls
    assert (called_channel, contract, call) == (channel, "access_log", "submit LogAccess")
    assert json.loads(entry)["action"] == "deliver" and json.loads(entry)["record_id"] == "rec-1"


def test_requester_and_decision_go_in_their_own_fields():
    gateway = FakeGateway()

    LedgerAuditSink(gateway, CONSORTIUM).log_access("deliver", "rec-1", "success", "decision x", READER, TX)

    assert json.loads(gateway.calls[0][4][0]) == {
        "action": "deliver", "outcome": "success", "reason": "decision x", "record_id": "rec-1",
        "requester_msp": READER.msp_id, "requester_id": READER.id, "decision_tx": TX,
    }


def test_an_unverified_request_without_record_has_only_action_outcome_and_reason():
    gateway = FakeGateway()

    LedgerAuditSink(gateway, CONSORTIUM).log_access("write", None, "failure", "bad\nsignature " + "x" * 300, None)

    entry = json.loads(gateway.calls[0][4][0])
    assert sorted(entry) == ["action", "outcome", "reason"]
    assert entry["reason"].startswith("bad signature xxx") and len(entry["reason"]) == 256


def test_a_blank_reason_is_left_out():
    gateway = FakeGateway()

    LedgerAuditSink(gateway, CONSORTIUM).log_access("denied", "rec-1", "failure", "\n", READER)

    assert "reason" not in json.loads(gateway.calls[0][4][0])


def test_a_failed_submit_is_a_ledger_error():
    sink = LedgerAuditSink(FakeGateway(GatewayError("ABORTED: endorsement failed")), CONSORTIUM)

    with pytest.raises(LedgerError, match="LogAccess on public: ABORTED"):
        sink.log_access("deliver", "rec-1", "success", "ok", READER)
