"""The consent contract: grants by the owner only, revocation, and access decisions that are logged and commit."""

from __future__ import annotations

import json

import pytest

from medfabric_chaincode.contracts import ALL_CONTRACTS
from medfabric_chaincode.contracts.access_log import AccessLogContract
from medfabric_chaincode.contracts.anchor import AnchorContract
from medfabric_chaincode.contracts.consent import ConsentContract
from medfabric_chaincode.contracts.emr_index import EmrIndexContract
from medfabric_chaincode.contracts.decoy import DecoyContract
from medfabric_chaincode.contracts.market import MarketContract
from medfabric_chaincode.contracts.fl import FlContract

from .actors import A_DOCTOR, B_DOCTOR, C_DOCTOR, actor_id, at, caller, ok, put_record, researcher, stamp

DROP = object()  # a field left out of a grant
EXPIRES = stamp(3600)


@pytest.fixture
def chain(connect):
    chain = connect(*ALL_CONTRACTS)
    put_record(chain)  # rec-001: hospital-a's (HospitalAMSP), patient p1, an Observation
    return chain


def grant(chain, creator: bytes = A_DOCTOR, seconds: float = 0, nonce=None, **fields):
    document = {"record_id": "rec-001", "domain": "hospital-a", "grantee_msp": "HospitalBMSP",
                "purpose": "treatment", "expires": EXPIRES, **fields}
    document = {name: value for name, value in document.items() if value is not DROP}
    return chain.invoke("consent:GrantAccess", json.dumps(document), creator=creator, nonce=nonce, **at(seconds))


def granted(chain, **fields) -> str:
    """The id of a grant that must succeed."""
    return ok(grant(chain, **fields))["grant_id"]


def check(chain, creator: bytes = B_DOCTOR, seconds: float = 0, record_id: str = "rec-001", nonce=None,
          purpose: str | None = None):
    arguments = (record_id,) if purpose is None else (record_id, "read", purpose)
    return chain.invoke("consent:CheckAccess", *arguments, creator=creator, nonce=nonce, **at(seconds))


def log_entry(chain, result) -> dict:
    """The committed access-log entry of a decision."""
    [value] = [v for (_, key), v in chain.state.items() if key.startswith("\x00log\x00") and result.tx_id in key]
    return json.loads(value)


def test_contracts_in_the_chaincode():
    assert ALL_CONTRACTS == [EmrIndexContract, ConsentContract, AccessLogContract, AnchorContract, FlContract,
                             DecoyContract, MarketContract]
    assert [contract.name for contract in ALL_CONTRACTS] == ["emr_index", "consent", "access_log", "anchor", "fl",
                                                             "decoy", "market"]


def test_metadata_describes_every_contract(chain):
    metadata = ok(chain.invoke("org.hyperledger.fabric:GetMetadata"))

    assert sorted(metadata["contracts"]) == ["access_log", "anchor", "consent", "decoy", "emr_index", "fl", "market"]
    assert {"ConsentGrant", "AccessDecision", "LogEntry", "LogAnchor", "EmrRecord"} <= set(metadata["components"]["schemas"])


def test_owner_grants_access_to_a_record(chain):
    result = grant(chain, grantee_user="doctor", expires="2025-03-04T07:06:07.891999+01:00")

    stored = {
        "grant_id": result.tx_id, "domain": "hospital-a", "record_id": "rec-001", "patient": None,
        "resource_type": None, "grantee_msp": "HospitalBMSP", "grantee_user": "doctor", "purpose": "treatment",
        "expires": "2025-03-04T06:06:07.891Z", "grantor_msp": "HospitalAMSP", "grantor_id": actor_id(A_DOCTOR),
        "created": stamp(0), "revoked": False, "revoked_at": None,
    }
    assert ok(result) == stored
    assert json.loads(result.writes[("", f"\x00grant\x00{result.tx_id}\x00")]) == stored
    assert result.writes[("", f"\x00grant~record\x00rec-001\x00{result.tx_id}\x00")] == b"\x00"
    assert (result.event.event_name, json.loads(result.event.payload)) == ("GrantCreated", stored)
    entry = log_entry(chain, result)
    assert (entry["action"], entry["record_id"], entry["reason"]) == ("grant", "rec-001", f"grant {result.tx_id}")


@pytest.mark.parametrize(
    "scope, index",
    [({"patient": "p1"}, "grant~patient\x00hospital-a\x00p1"), ({"resource_type": "Observation"},
                                                                 "grant~type\x00hospital-a\x00Observation")],
)
def test_domain_grants_access_to_a_patient_or_a_resource_type(chain, scope, index):
    result = grant(chain, record_id=DROP, **scope, purpose="research")

    assert ok(result)[next(iter(scope))] == next(iter(scope.values()))
    assert result.writes[("", f"\x00{index}\x00{result.tx_id}\x00")] == b"\x00"
    assert log_entry(chain, result)["record_id"] is None


ID_RULE = "must be 1-128 characters of A-Z a-z 0-9 . _ : -"
SCOPE_RULE = "exactly one of the fields 'record_id', 'patient', 'resource_type' is required"


@pytest.mark.parametrize(
    "fields, problem",
    [
        ({"record_id": DROP}, SCOPE_RULE),
        ({"patient": "p1"}, SCOPE_RULE),
        ({"record_id": "rec 1"}, f"field 'record_id' {ID_RULE}"),
        ({"record_id": DROP, "patient": "John Doe"}, "field 'patient' must be a pseudonym of 1-128 characters of "
         "A-Z a-z 0-9 . _ : -"),
        ({"record_id": DROP, "resource_type": ["Observation"]}, "field 'resource_type' must be one of "
         "AllergyIntolerance, Condition, DiagnosticReport, DocumentReference, Encounter, ImagingStudy, Immunization, "
         "MedicationRequest, Observation, Patient, Procedure"),
        ({"domain": DROP}, "field 'domain' is required"),
        ({"domain": "Hospital A"}, "field 'domain' must be 1-63 characters of a-z 0-9 -"),
        ({"grantee_msp": DROP}, "field 'grantee_msp' is required"),
        ({"grantee_msp": "Hospital B"}, "field 'grantee_msp' must be an MSP id of 1-128 characters of A-Z a-z 0-9 . _ -"),
        ({"grantee_user": ""}, "field 'grantee_user' must be an enrollment id of 1-128 characters of A-Z a-z 0-9 . _ @ -"),
        ({"purpose": "marketing"}, "field 'purpose' must be one of treatment, research, payment, operations, "
         "public-health"),
        ({"expires": "2026-01-01T00:00:00"}, "field 'expires' must be an ISO-8601 date-time with a time zone"),
        ({"expires": 1767225600}, "field 'expires' must be an ISO-8601 date-time with a time zone"),
        ({"expires": stamp(0)}, f"field 'expires' must be after the transaction time {stamp(0)}"),
        ({"expires": stamp(-1)}, f"field 'expires' must be after the transaction time {stamp(0)}"),
        ({"grantor_msp": "HospitalAMSP"}, "unknown field 'grantor_msp'"),
    ],
)
def test_invalid_grants_are_refused_naming_the_field(chain, fields, problem):
    result = grant(chain, **fields)

    assert (result.status, result.message, result.writes) == (500, f"invalid grant: {problem}", {})


def test_malformed_grant_is_refused(chain):
    result = chain.invoke("consent:GrantAccess", "[]")

    assert (result.status, result.message) == (500, "invalid grant: expected a JSON object")


@pytest.mark.parametrize(
    "creator, fields, message",
    [
        (B_DOCTOR, {}, "only the owner HospitalAMSP may grant access to record rec-001"),
        (A_DOCTOR, {"record_id": "rec-404"}, "record rec-404 not found"),
        (A_DOCTOR, {"domain": "hospital-b"}, "invalid grant: field 'domain' must be the record's domain hospital-a"),
        (B_DOCTOR, {"record_id": DROP, "patient": "p1"}, "only an identity of domain hospital-a (HospitalAMSP) may "
         "grant access to its patients or resource types: the caller is of HospitalBMSP"),
        (caller("HospitalBMSP", domain="hospital-a"), {"record_id": DROP, "patient": "p1"}, "only an identity of "
         "domain hospital-a (HospitalAMSP) may grant access to its patients or resource types: the caller is of "
         "HospitalBMSP"),
        (caller("HospitalAMSP", domain=None), {"record_id": DROP, "resource_type": "Observation"}, "only an identity "
         "of domain hospital-a may grant access to its patients or resource types: the caller's certificate has no "
         "medfabric.domain"),
    ],
)
def test_only_the_owner_grants(chain, creator, fields, message):
    result = grant(chain, creator=creator, **fields)

    assert (result.status, result.message, result.writes) == (500, message, {})


def test_owner_revokes_once(chain):
    grant_id = granted(chain)

    revoked = chain.invoke("consent:RevokeGrant", grant_id, **at(60))
    again = chain.invoke("consent:RevokeGrant", grant_id, **at(61))

    assert ok(revoked) == {**ok(chain.invoke("consent:GetGrant", grant_id)), "revoked": True, "revoked_at": stamp(60)}
    assert revoked.event.event_name == "GrantRevoked"
    assert (log_entry(chain, revoked)["action"], log_entry(chain, revoked)["reason"]) == ("revoke", f"grant {grant_id}")
    assert (again.status, again.message, again.writes) == (500, f"grant {grant_id} is already revoked", {})


def test_only_the_grantor_revokes(chain):
    grant_id = granted(chain)

    result = chain.invoke("consent:RevokeGrant", grant_id, creator=B_DOCTOR)

    assert (result.status, result.message) == (500, f"only the grantor HospitalAMSP may revoke grant {grant_id}")


@pytest.mark.parametrize(
    "function, grant_id, message",
    [
        ("RevokeGrant", "a" * 64, f"grant {'a' * 64} not found"),
        ("GetGrant", "a" * 64, f"grant {'a' * 64} not found"),
        ("GetGrant", "A" * 64, "invalid argument: 'grant_id' must be a transaction id: 64 lowercase hex characters"),
    ],
)
def test_grant_ids_are_checked(chain, function, grant_id, message):
    result = chain.invoke(f"consent:{function}", grant_id)

    assert (result.status, result.message) == (500, message)


def test_list_grants_bearing_on_a_record(chain):
    type_grant = granted(chain, record_id=DROP, resource_type="Observation", nonce=b"1" * 24)
    patient_grant = granted(chain, record_id=DROP, patient="p1", nonce=b"2" * 24)
    record_grants = sorted([granted(chain, nonce=b"3" * 24), granted(chain, grantee_msp="HospitalCMSP")])
    granted(chain, record_id=DROP, patient="p2")  # another patient

    listed = ok(chain.invoke("consent:ListGrants", "rec-001"))

    assert [g["grant_id"] for g in listed] == [*record_grants, patient_grant, type_grant]
    assert chain.invoke("consent:ListGrants", "rec-404").message == "record rec-404 not found"


def test_own_domain_reads_without_a_grant(chain):
    result = check(chain, creator=researcher("HospitalAMSP"))

    assert ok(result) == {"decision": "allow", "reason": "own domain", "grant_id": None, "log_id": result.tx_id}
    entry = log_entry(chain, result)
    assert (entry["action"], entry["outcome"], entry["actor_role"]) == ("read", "success", "researcher")
    assert json.loads(result.event.payload) == {
        "decision": "allow", "reason": "own domain", "grant_id": None, "log_id": result.tx_id,
        "record_id": "rec-001", "actor_msp": "HospitalAMSP", "flagged": False,
    }


def test_other_domain_without_a_grant_is_denied_and_the_denial_commits(chain):
    result = check(chain)

    assert (result.status, result.json()) == (200, {"decision": "deny", "reason": "no grant", "grant_id": None,
                                                    "log_id": result.tx_id})
    entry = log_entry(chain, result)  # read from the committed state
    assert (entry["action"], entry["outcome"], entry["reason"]) == ("denied", "failure", "no grant")
    assert (entry["actor_msp"], entry["from_domain"], entry["actor_id"]) == ("HospitalBMSP", "hospital-b",
                                                                              actor_id(B_DOCTOR))
    assert result.event.event_name == "AccessDecision"
    assert json.loads(result.event.payload)["decision"] == "deny"


@pytest.mark.parametrize(
    "scope",
    [{}, {"record_id": DROP, "patient": "p1"}, {"record_id": DROP, "resource_type": "Observation"}],
)
def test_a_grant_of_any_scope_allows(chain, scope):
    grant_id = granted(chain, **scope)

    result = check(chain, seconds=1)

    assert ok(result) == {"decision": "allow", "reason": f"grant {grant_id}", "grant_id": grant_id,
                          "log_id": result.tx_id}
    assert log_entry(chain, result)["action"] == "read"


def test_grants_of_other_patients_types_and_msps_do_not_allow(chain):
    granted(chain, record_id=DROP, patient="p2")
    granted(chain, record_id=DROP, resource_type="Encounter")
    granted(chain, grantee_msp="HospitalCMSP")

    assert ok(check(chain))["reason"] == "no grant"


def test_grantee_user_must_be_the_caller(chain):
    granted(chain, grantee_user="doctor")

    assert ok(check(chain, creator=B_DOCTOR))["decision"] == "allow"
    assert ok(check(chain, creator=researcher("HospitalBMSP")))["reason"] == "no grant"
    assert ok(check(chain, creator=caller("HospitalBMSP", "nurse", role="nurse")))["reason"] == "no grant"


def test_expiry_is_judged_by_the_transaction_timestamp(chain):
    grant_id = granted(chain)  # expires at stamp(3600)

    assert ok(check(chain, seconds=3599.999))["decision"] == "allow"
    at_expiry = check(chain, seconds=3600)
    assert ok(at_expiry) == {"decision": "deny", "reason": f"grant {grant_id} expired", "grant_id": None,
                             "log_id": at_expiry.tx_id}
    assert log_entry(chain, at_expiry)["reason"] == f"grant {grant_id} expired"


def test_revoked_grant_is_denied(chain):
    grant_id = granted(chain)
    ok(chain.invoke("consent:RevokeGrant", grant_id))

    assert ok(check(chain, seconds=1))["reason"] == f"grant {grant_id} revoked"


def test_a_valid_grant_wins_over_revoked_ones(chain):
    ok(chain.invoke("consent:RevokeGrant", granted(chain, nonce=b"1" * 24)))
    valid = granted(chain, record_id=DROP, patient="p1")

    assert ok(check(chain, seconds=1))["grant_id"] == valid


def test_a_grant_claiming_another_msps_domain_is_refused(chain):
    forged = caller("HospitalBMSP", domain="hospital-a")  # B's CA can write any domain in B's certificates
    result = grant(chain, creator=forged, record_id=DROP, patient="p1", grantee_msp="HospitalCMSP")

    assert (result.status, result.writes) == (500, {})
    assert ok(check(chain, creator=C_DOCTOR))["reason"] == "no grant"


def test_unknown_record_is_denied_and_logged(chain):
    result = check(chain, record_id="rec-404")

    assert ok(result)["reason"] == "record not found"
    assert log_entry(chain, result)["record_id"] == "rec-404"


@pytest.mark.parametrize(
    "args, message",
    [
        (("rec/1",), "invalid argument: 'record_id' must be 1-128 characters of A-Z a-z 0-9 . _ : -"),
        (("rec-001", "write"), "invalid argument: 'action' must be read"),
        (("rec-001", "read", "marketing"), "invalid argument: 'purpose' must be one of treatment, research, payment, "
         "operations, public-health, purchase"),
    ],
)
def test_check_access_arguments_are_checked(chain, args, message):
    result = chain.invoke("consent:CheckAccess", *args, creator=B_DOCTOR)

    assert (result.status, result.message, result.writes) == (500, message, {})


def test_a_grant_counts_for_its_own_purpose_only(chain):
    grant_id = granted(chain, purpose="research")

    treatment = check(chain)  # the default purpose
    research = check(chain, purpose="research", nonce=b"2" * 24)

    assert ok(treatment)["decision"] == "deny"
    assert ok(treatment)["reason"] == f"grant {grant_id} is for research, not treatment"
    assert ok(research) == {"decision": "allow", "reason": f"grant {grant_id}", "grant_id": grant_id,
                            "log_id": research.tx_id}
    assert ok(decision_of(chain, research.tx_id))["purpose"] == "research"


def test_a_grant_for_the_purpose_is_found_beside_one_for_another(chain):
    granted(chain, purpose="research")
    treatment_grant = granted(chain, purpose="treatment", nonce=b"3" * 24)

    assert ok(check(chain))["grant_id"] == treatment_grant


def test_break_glass_by_a_doctor_is_allowed_and_flagged(chain):
    result = chain.invoke("consent:EmergencyAccess", "rec-001", "unconscious patient in ER", creator=B_DOCTOR)

    assert ok(result) == {"decision": "allow", "reason": "break-glass: unconscious patient in ER", "grant_id": None,
                          "log_id": result.tx_id}
    entry = log_entry(chain, result)
    assert (entry["action"], entry["outcome"], entry["flagged"]) == ("break-glass", "success", True)
    assert json.loads(result.event.payload)["flagged"] is True


@pytest.mark.parametrize(
    "creator, reason",
    [
        (researcher("HospitalBMSP"), "break-glass refused: medfabric.role is researcher"),
        (caller("HospitalBMSP", role=None), "break-glass refused: medfabric.role is missing"),
        (researcher("HospitalAMSP"), "break-glass refused: medfabric.role is researcher"),
        # a doctor role written by B's CA into a certificate claiming hospital-c: not a doctor of B's domain
        (caller("HospitalBMSP", domain="hospital-c"), "break-glass refused: medfabric.role doctor is not trusted: the "
         "caller of HospitalBMSP claims medfabric.domain hospital-c, its MSP's domain is hospital-b"),
        (caller("HospitalBMSP", domain=None), "break-glass refused: medfabric.role doctor is not trusted: the caller "
         "of HospitalBMSP claims medfabric.domain none, its MSP's domain is hospital-b"),
    ],
)
def test_break_glass_by_anyone_else_is_refused_and_logged(chain, creator, reason):
    result = chain.invoke("consent:EmergencyAccess", "rec-001", "curious", creator=creator)

    assert ok(result) == {"decision": "deny", "reason": reason, "grant_id": None, "log_id": result.tx_id}
    entry = log_entry(chain, result)
    assert (entry["action"], entry["flagged"], entry["reason"]) == ("denied", False, reason)


def test_break_glass_on_an_unknown_record_is_denied(chain):
    assert ok(chain.invoke("consent:EmergencyAccess", "rec-404", "trauma", creator=B_DOCTOR))["reason"] == (
        "record not found"
    )


@pytest.mark.parametrize("reason", ["", " ", "line\nbreak", "r" * 257])
def test_break_glass_needs_a_reason(chain, reason):
    result = chain.invoke("consent:EmergencyAccess", "rec-001", reason, creator=B_DOCTOR)

    assert (result.status, result.writes) == (500, {})
    assert result.message == ("invalid argument: 'reason' must be 1-256 characters without control characters, "
                              "not all spaces")


def decision_of(chain, tx_id: str):
    return chain.invoke("consent:GetDecision", tx_id)


def decision_key(tx_id: str) -> tuple[str, str]:
    return "", f"\x00decision\x00{tx_id}\x00"


@pytest.mark.parametrize("granting", [True, False])
def test_get_decision_returns_what_check_access_decided(chain, granting):
    grant_id = granted(chain) if granting else None

    result = check(chain, seconds=1)

    kept = {
        "tx_id": result.tx_id, "record_id": "rec-001", "actor_id": actor_id(B_DOCTOR), "actor_msp": "HospitalBMSP",
        "action": "read", "purpose": "treatment", "decision": "allow" if granting else "deny",
        "reason": f"grant {grant_id}" if granting else "no grant", "grant_id": grant_id, "break_glass": False,
        "timestamp": stamp(1),
    }
    assert {name: ok(result)[name] for name in ("decision", "reason", "grant_id")} == {
        name: kept[name] for name in ("decision", "reason", "grant_id")
    }
    assert ok(decision_of(chain, result.tx_id)) == kept
    assert json.loads(result.writes[decision_key(result.tx_id)]) == kept


@pytest.mark.parametrize(
    "creator, decision, reason",
    [
        (B_DOCTOR, "allow", "break-glass: trauma"),
        (researcher("HospitalBMSP"), "deny", "break-glass refused: medfabric.role is researcher"),
    ],
)
def test_get_decision_returns_what_emergency_access_decided(chain, creator, decision, reason):
    result = chain.invoke("consent:EmergencyAccess", "rec-001", "trauma", creator=creator, **at(2))

    assert ok(result)["decision"] == decision
    assert ok(decision_of(chain, result.tx_id)) == {
        "tx_id": result.tx_id, "record_id": "rec-001", "actor_id": actor_id(creator), "actor_msp": "HospitalBMSP",
        "action": "read", "purpose": "treatment", "decision": decision, "reason": reason, "grant_id": None,
        "break_glass": True,
        "timestamp": stamp(2),
    }


def test_only_check_access_and_emergency_access_keep_decisions(chain):
    grant_id = granted(chain)
    others = [
        grant(chain, record_id=DROP, patient="p1", nonce=b"1" * 24),
        chain.invoke("consent:RevokeGrant", grant_id, creator=A_DOCTOR),
        put_record(chain, "rec-002"),
        chain.invoke("emr_index:EraseRecord", "rec-002", "patient request", creator=A_DOCTOR),
        chain.invoke("access_log:LogAccess", json.dumps({"record_id": "rec-001", "action": "request",
                                                          "outcome": "success", "decision_tx": grant_id})),
        chain.invoke("anchor:AnchorLogRoot", json.dumps({"domain": "hospital-a", "channel": "hospital-a-local",
                                                         "since": stamp(-2), "until": stamp(-1), "count": 0,
                                                         "merkle_root": "ab" * 32}), creator=A_DOCTOR),
    ]
    deciding = [check(chain), chain.invoke("consent:EmergencyAccess", "rec-001", "trauma", creator=B_DOCTOR)]

    for result in others:
        assert result.status == 200, result.message
        assert not [key for (_, key) in result.writes if key.startswith("\x00decision\x00")], result.tx_id
        assert decision_of(chain, result.tx_id).message == f"decision {result.tx_id} not found"
    for result in deciding:
        assert [key for (_, key) in result.writes if key.startswith("\x00decision\x00")] == [
            decision_key(result.tx_id)[1]
        ]
    assert [key for (_, key) in chain.state if key.startswith("\x00decision\x00")] == [
        decision_key(result.tx_id)[1] for result in deciding
    ]


def test_a_decision_cannot_be_forged_in_the_access_log(chain):
    forged = {"record_id": "rec-001", "action": "read", "outcome": "success", "reason": "own domain"}

    refused = chain.invoke("access_log:LogAccess", json.dumps(forged), creator=B_DOCTOR)
    logged = chain.invoke("access_log:LogAccess", json.dumps({**forged, "action": "request"}), creator=B_DOCTOR)

    assert (refused.status, refused.writes) == (500, {})
    assert refused.message == "invalid entry: field 'action' must be one of request, deliver, write, erase, denied"
    assert ok(logged)["log_id"] == logged.tx_id
    assert decision_of(chain, logged.tx_id).message == f"decision {logged.tx_id} not found"
    assert decision_of(chain, refused.tx_id).message == f"decision {refused.tx_id} not found"


@pytest.mark.parametrize("tx_id", ["ab" * 31, "AB" * 32, "rec-001"])
def test_get_decision_needs_a_transaction_id(chain, tx_id):
    result = decision_of(chain, tx_id)

    assert (result.status, result.message) == (
        500, "invalid argument: 'tx_id' must be a transaction id: 64 lowercase hex characters"
    )


def test_same_inputs_and_timestamps_give_identical_writes(connect):
    runs = []
    for _ in range(2):
        chain = connect(*ALL_CONTRACTS)
        put_record(chain)
        granted_result = grant(chain, nonce=b"g" * 24)
        runs.append([granted_result, check(chain, nonce=b"c" * 24), check(chain, C_DOCTOR, 1, nonce=b"d" * 24),
                     chain.invoke("consent:RevokeGrant", granted_result.tx_id, nonce=b"r" * 24, **at(2))])

    for first, second in zip(*runs, strict=True):
        assert first.status == second.status == 200
        assert (first.writes, first.payload, first.event) == (second.writes, second.payload, second.event)
