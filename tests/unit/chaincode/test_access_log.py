"""The access_log contract: entries from the caller's identity, time-ordered keys, listing, pages, Merkle digest."""

from __future__ import annotations

import hashlib
import json

import pytest

from medfabric_chaincode.contracts import ALL_CONTRACTS
from medfabric_chaincode.contracts.access_log import LogEntry, append_log
from medfabric_chaincode.runtime import Contract, TransactionContext, transaction

from .actors import A_DOCTOR, B_DOCTOR, actor_id, at, caller, ok, put_record, stamp
from .test_emr_index import STORED_AT

REASON_RULE = "must be 1-256 characters without control characters, not all spaces"
TIME_RULE = "must be an ISO-8601 date-time with a time zone"
DROP = object()
NO_REQUESTER = {"requester_msp": None, "requester_id": None, "decision_tx": None}
DECISION_TX = "cd" * 32
A_SERVICE = caller("HospitalAMSP", "data-service", "data-service")
REQUESTER_OF_B = {"requester_msp": "HospitalBMSP", "requester_id": actor_id(B_DOCTOR)}


class TwoEntries(Contract):
    """Two entries in one transaction, as a contract that logs several accesses at once would write them."""

    name = "two_entries"

    @transaction
    def Log(self, ctx: TransactionContext, record_id: str) -> list[LogEntry]:
        return [append_log(ctx, "request", "success", record_id), append_log(ctx, "deliver", "success", record_id, "ok")]


@pytest.fixture
def chain(connect):
    return connect(*ALL_CONTRACTS, TwoEntries)


def log(chain, seconds: float = 0, record_id: object = "rec-001", creator: bytes = B_DOCTOR, nonce=None, **fields):
    """LogAccess of a request by B's doctor unless changed; record_id DROP leaves the field out."""
    entry = {"record_id": record_id, "action": "request", "outcome": "success", **fields}
    entry = {name: value for name, value in entry.items() if value is not DROP}
    return chain.invoke("access_log:LogAccess", json.dumps(entry), creator=creator, nonce=nonce, **at(seconds))


def log_key(timestamp: str, tx_id: str, n: int = 0) -> str:
    return f"\x00log\x00{timestamp}\x00{tx_id}\x00{n:04d}\x00"


def listed(chain, *args: str) -> list[LogEntry]:
    return ok(chain.invoke("access_log:ListLog", *args))["entries"]


def test_put_record_logs_a_write_for_the_caller(chain):
    result = put_record(chain)

    entry = json.loads(result.writes[("", log_key(STORED_AT, result.tx_id))])
    assert entry == {
        "log_id": result.tx_id, "record_id": "rec-001", "actor_id": actor_id(A_DOCTOR), "actor_msp": "HospitalAMSP",
        "actor_role": "doctor", "action": "write", "outcome": "success", "reason": None, "from_domain": "hospital-a",
        "flagged": False, "channel": "public", "tx_id": result.tx_id, "timestamp": STORED_AT, **NO_REQUESTER,
    }
    assert result.writes[("", f"\x00log~record\x00rec-001\x00{STORED_AT}\x00{result.tx_id}\x000000\x00")] == b"\x00"


def test_log_access_takes_the_actor_from_the_identity(chain):
    creator = caller("HospitalBMSP", "nurse9", role=None, domain=None)

    result = log(chain, creator=creator, action="request", reason="referral")

    assert ok(result) == {
        "log_id": result.tx_id, "record_id": "rec-001", "actor_id": actor_id(creator), "actor_msp": "HospitalBMSP",
        "actor_role": None, "action": "request", "outcome": "success", "reason": "referral",
        "from_domain": "hospital-b",  # what its MSP speaks for, attribute or not
        "flagged": False, "channel": "public", "tx_id": result.tx_id, "timestamp": STORED_AT, **NO_REQUESTER,
    }
    assert chain.state[("", log_key(STORED_AT, result.tx_id))] == result.payload


OFF_CHAIN_ACTIONS = "request, deliver, write, erase, denied"


@pytest.mark.parametrize("action", ["read", "break-glass", "grant", "revoke", "purchase"])
def test_log_access_refuses_the_actions_only_contracts_log(chain, action):
    result = log(chain, action=action, reason="own domain")

    assert (result.status, result.message, result.writes) == (
        500, f"invalid entry: field 'action' must be one of {OFF_CHAIN_ACTIONS}", {}
    )
    assert listed(chain) == []


@pytest.mark.parametrize(
    "action, outcome", [("request", "success"), ("deliver", "success"), ("write", "failure"), ("erase", "success"),
                        ("denied", "failure")],
)
def test_a_service_logs_off_chain_actions_for_a_requester(chain, action, outcome):
    service = A_SERVICE

    result = log(chain, creator=service, action=action, outcome=outcome, requester_msp="HospitalBMSP",
                 requester_id=actor_id(B_DOCTOR), decision_tx=DECISION_TX)

    entry = ok(result)
    assert (entry["action"], entry["outcome"], entry["flagged"]) == (action, outcome, False)
    assert (entry["actor_id"], entry["actor_msp"]) == (actor_id(service), "HospitalAMSP")  # never the requester
    assert (entry["requester_msp"], entry["requester_id"], entry["decision_tx"]) == (
        "HospitalBMSP", actor_id(B_DOCTOR), DECISION_TX
    )
    assert chain.state[("", log_key(STORED_AT, result.tx_id))] == result.payload


def test_an_entry_following_a_break_glass_decision_is_flagged(chain):
    service = A_SERVICE

    result = log(chain, creator=service, action="deliver", outcome="success", requester_msp="HospitalBMSP",
                 requester_id=actor_id(B_DOCTOR), decision_tx=DECISION_TX, break_glass=True)

    entry = ok(result)
    assert (entry["action"], entry["flagged"], entry["decision_tx"]) == ("deliver", True, DECISION_TX)
    assert "break_glass" not in entry  # the flag is the entry's record of it


@pytest.mark.parametrize(
    "fields, doing",
    [
        ({**REQUESTER_OF_B, "action": "denied", "outcome": "failure"}, "log an access for a requester"),
        ({"action": "deliver", "outcome": "success"}, "log a deliver success"),
        ({"action": "write", "outcome": "failure"}, "log a write failure"),
        ({"action": "erase", "outcome": "success"}, "log an erase success"),
    ],
)
def test_only_a_data_service_logs_for_others_and_what_it_served(chain, fields, doing):
    result = log(chain, creator=B_DOCTOR, **fields)

    assert (result.status, result.message, result.writes) == (
        500, f"only a data-service may {doing}: the caller's medfabric.role is doctor", {}
    )


@pytest.mark.parametrize(
    "creator, because",
    [
        (caller("HospitalBMSP", "data-service", "data-service", domain="hospital-a"),
         "medfabric.role data-service is not trusted: the caller of HospitalBMSP claims medfabric.domain hospital-a, "
         "its MSP's domain is hospital-b"),
        (caller("HospitalBMSP", "data-service", "data-service", domain=None),
         "medfabric.role data-service is not trusted: the caller of HospitalBMSP claims medfabric.domain none, its "
         "MSP's domain is hospital-b"),
        (caller("HospitalBMSP", "admin", role=None), "medfabric.role is missing"),
    ],
)
def test_a_data_service_role_counts_only_from_its_own_domains_ca(chain, creator, because):
    result = log(chain, creator=creator, **REQUESTER_OF_B, action="deliver", outcome="success")

    assert (result.status, result.message, result.writes) == (
        500, f"only a data-service may log an access for a requester: {because}", {}
    )


def test_a_reader_logs_its_own_request_denial_and_failed_delivery(chain):
    entries = [ok(log(chain, creator=B_DOCTOR, action=action, outcome=outcome, decision_tx=DECISION_TX))
               for action, outcome in (("request", "success"), ("denied", "failure"), ("deliver", "failure"))]

    assert [(e["action"], e["actor_role"], e["from_domain"]) for e in entries] == [
        ("request", "doctor", "hospital-b"), ("denied", "doctor", "hospital-b"), ("deliver", "doctor", "hospital-b")]


def test_an_untrusted_role_is_not_written_as_the_actors(chain):
    creator = caller("HospitalBMSP", "doctor", "doctor", domain="hospital-a")

    entry = ok(log(chain, creator=creator))

    assert (entry["actor_msp"], entry["actor_role"], entry["from_domain"]) == ("HospitalBMSP", None, "hospital-b")


def test_record_id_is_optional(chain):
    result = log(chain, record_id=DROP, action="denied", outcome="failure", reason="bad signature")

    assert ok(result)["record_id"] is None
    assert list(result.writes) == [("", log_key(STORED_AT, result.tx_id))]  # no log~record index entry


def test_entries_of_one_transaction_are_numbered(chain):
    result = chain.invoke("two_entries:Log", "rec-001")

    first, second = ok(result)
    assert (first["log_id"], second["log_id"]) == (result.tx_id, f"{result.tx_id}:1")
    assert json.loads(result.writes[("", log_key(STORED_AT, result.tx_id, 1))])["action"] == "deliver"
    assert [entry["action"] for entry in listed(chain)] == ["request", "deliver"]


CLIENT_ID_RULE = ("must be a client id x509::<subject>::<issuer> of at most 1024 characters without control "
                  "characters")
REQUESTER = {"requester_msp": "HospitalBMSP", "requester_id": "x509::CN=doctor::CN=ca"}


@pytest.mark.parametrize(
    "fields, problem",
    [
        ({"action": "delete"}, f"field 'action' must be one of {OFF_CHAIN_ACTIONS}"),
        ({"action": None}, f"field 'action' must be one of {OFF_CHAIN_ACTIONS}"),
        ({"outcome": "ok"}, "field 'outcome' must be one of success, failure"),
        ({"record_id": "rec 1"}, "field 'record_id' must be 1-128 characters of A-Z a-z 0-9 . _ : -"),
        ({"reason": ""}, f"field 'reason' {REASON_RULE}"),
        ({"reason": "   "}, f"field 'reason' {REASON_RULE}"),
        ({"reason": "two\nlines"}, f"field 'reason' {REASON_RULE}"),
        ({"reason": "r" * 257}, f"field 'reason' {REASON_RULE}"),
        ({"actor_msp": "HospitalAMSP"}, "unknown field 'actor_msp'"),
        ({"actor_id": "x509::CN=admin::CN=ca", "flagged": False}, "unknown fields 'actor_id', 'flagged'"),
        ({"from_domain": "hospital-a"}, "unknown field 'from_domain'"),
        ({**REQUESTER, "requester_msp": "Hospital B"}, "field 'requester_msp' must be an MSP id of 1-128 characters "
         "of A-Z a-z 0-9 . _ -"),
        ({**REQUESTER, "requester_id": "CN=doctor,O=hospital-b"}, f"field 'requester_id' {CLIENT_ID_RULE}"),
        ({**REQUESTER, "requester_id": "x509::CN=doc\ntor::CN=ca"}, f"field 'requester_id' {CLIENT_ID_RULE}"),
        ({**REQUESTER, "requester_id": "x509::CN=ca::" + "d" * 1012}, f"field 'requester_id' {CLIENT_ID_RULE}"),
        ({"requester_msp": "HospitalBMSP"}, "field 'requester_id' is required with 'requester_msp'"),
        ({"requester_id": "x509::CN=doctor::CN=ca"}, "field 'requester_msp' is required with 'requester_id'"),
        ({"decision_tx": "cd" * 31}, "field 'decision_tx' must be a transaction id: 64 lowercase hex characters"),
        ({"decision_tx": "CD" * 32}, "field 'decision_tx' must be a transaction id: 64 lowercase hex characters"),
        ({"record_id": None}, "field 'record_id' must be 1-128 characters of A-Z a-z 0-9 . _ : -"),
        ({"break_glass": False, "decision_tx": "cd" * 32}, "field 'break_glass' must be true when present"),
        ({"break_glass": "true", "decision_tx": "cd" * 32}, "field 'break_glass' must be true when present"),
        ({"break_glass": True}, "field 'decision_tx' is required with 'break_glass'"),
    ],
)
def test_invalid_entries_are_refused_naming_the_field(chain, fields, problem):
    result = log(chain, **fields)

    assert (result.status, result.message, result.writes) == (500, f"invalid entry: {problem}", {})


@pytest.mark.parametrize(
    "text, problem",
    [
        ('{"record_id": "rec-001", "outcome": "success"}', "field 'action' is required"),
        ("[]", "expected a JSON object"),
        ("{", "not valid JSON: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"),
    ],
)
def test_malformed_entries_are_refused(chain, text, problem):
    result = chain.invoke("access_log:LogAccess", text)

    assert (result.status, result.message) == (500, f"invalid entry: {problem}")


def test_list_is_in_time_order_whatever_the_order_of_submission(chain):
    for seconds in (2, 0, 1):
        log(chain, seconds, reason=f"at {seconds}")
    same_millisecond = sorted([log(chain, 1, reason="again").tx_id, log(chain, 1, reason="and again").tx_id])

    entries = listed(chain)

    assert [entry["timestamp"] for entry in entries] == [stamp(0), stamp(1), stamp(1), stamp(1), stamp(2)]
    assert [entry["tx_id"] for entry in entries[1:4] if entry["reason"] != "at 1"] == same_millisecond


def test_list_a_period_is_half_open(chain):
    for seconds in (0, 1, 2):
        log(chain, seconds)

    assert [e["timestamp"] for e in listed(chain, stamp(1), stamp(2))] == [stamp(1)]
    assert [e["timestamp"] for e in listed(chain, stamp(1))] == [stamp(1), stamp(2)]
    assert [e["timestamp"] for e in listed(chain, "", stamp(1))] == [stamp(0)]
    # bounds in another zone, with microseconds (truncated to the millisecond)
    assert len(listed(chain, "2025-03-04T06:06:08.891999+01:00", "2025-03-04T05:06:10Z")) == 2


def test_list_one_record(chain):
    for seconds, record_id in ((0, "rec-b"), (1, "rec-a"), (2, "rec-b"), (3, "rec-b")):
        log(chain, seconds, record_id)

    entries = listed(chain, stamp(1), "", "rec-b")

    assert [(e["record_id"], e["timestamp"]) for e in entries] == [("rec-b", stamp(2)), ("rec-b", stamp(3))]
    assert [e["timestamp"] for e in listed(chain, "", stamp(3), "rec-b")] == [stamp(0), stamp(2)]
    assert listed(chain, "", "", "rec-c") == []


@pytest.mark.parametrize("record_id", ["", "rec-b"])
def test_list_in_pages(chain, record_id):
    tx_ids = [log(chain, seconds, "rec-b").tx_id for seconds in range(5)]
    pages, bookmark = [], ""
    while True:
        page = ok(chain.invoke("access_log:ListLog", stamp(1), stamp(4), record_id, "2", bookmark))
        pages.append([entry["tx_id"] for entry in page["entries"]])
        bookmark = page["bookmark"]
        if not bookmark:
            break

    assert pages == [tx_ids[1:3], tx_ids[3:4]]


@pytest.mark.parametrize(
    "args, message",
    [
        (("yesterday",), f"invalid argument: 'since' {TIME_RULE}"),
        (("", "2025-03-04T05:06:07"), f"invalid argument: 'until' {TIME_RULE}"),
        ((stamp(1), stamp(1)), "invalid argument: 'until' must be after 'since'"),
        (("", "", "rec/1"), "invalid argument: 'record_id' must be 1-128 characters of A-Z a-z 0-9 . _ : -"),
        (("", "", "", "1001"), "invalid argument: 'page_size' must be between 0 (no paging) and 1000"),
        (("", "", "", "0", "\x00log\x00"), "invalid argument: 'bookmark' needs a page_size"),
        (("", "", "", "2", "\x00emr\x00rec-001\x00"), "invalid argument: 'bookmark' does not belong to this listing"),
        (("", "", "rec-a", "2", "\x00log~record\x00rec-b\x00"),
         "invalid argument: 'bookmark' does not belong to this listing"),
    ],
)
def test_list_arguments_are_checked(chain, args, message):
    result = chain.invoke("access_log:ListLog", *args)

    assert (result.status, result.message) == (500, message)


def expected_root(entries: list[dict]) -> str:
    """The Merkle root as access_log documents it, computed here without the contract's code."""
    nodes = [hashlib.sha256(json.dumps(e, sort_keys=True, separators=(",", ":")).encode()).digest() for e in entries]
    if not nodes:
        return hashlib.sha256(b"").hexdigest()
    while len(nodes) > 1:
        pairs = [nodes[i : i + 2] for i in range(0, len(nodes), 2)]
        nodes = [hashlib.sha256(pair[0] + pair[1]).digest() if len(pair) == 2 else pair[0] for pair in pairs]
    return nodes[0].hex()


def digest(chain, since: str = stamp(0), until: str = "2025-03-04T06:00:00Z") -> dict:
    return ok(chain.invoke("access_log:LogDigest", since, until))


@pytest.mark.parametrize("count", [0, 1, 2, 3, 5, 6])
def test_digest_is_the_documented_merkle_root(chain, count):
    for seconds in range(count):
        log(chain, seconds, reason=f"entry {seconds}")

    result = digest(chain)

    assert result == {"channel": "public", "since": stamp(0), "until": "2025-03-04T06:00:00.000Z",
                      "count": count, "merkle_root": expected_root(listed(chain))}


def test_digest_of_three_entries_promotes_the_odd_one(chain):
    stored = [chain.state[("", log_key(stamp(seconds), log(chain, seconds).tx_id))] for seconds in range(3)]
    leaves = [hashlib.sha256(value).digest() for value in stored]  # stored entries are canonical JSON

    pair = hashlib.sha256(leaves[0] + leaves[1]).digest()
    assert digest(chain)["merkle_root"] == hashlib.sha256(pair + leaves[2]).hexdigest()


def test_digest_covers_the_period_only(chain):
    for seconds in (0, 1, 2):
        log(chain, seconds)

    result = digest(chain, stamp(1), stamp(2))

    assert (result["count"], result["merkle_root"]) == (1, expected_root(listed(chain, stamp(1), stamp(2))))


def test_digest_changes_when_any_entry_changes(chain):
    for seconds in range(4):
        log(chain, seconds)
    root = digest(chain)["merkle_root"]
    log_keys = sorted(key for (_, key) in chain.state if key.startswith("\x00log\x00"))

    for key in log_keys:
        original = chain.state[("", key)]
        chain.state[("", key)] = original.replace(b'"outcome":"success"', b'"outcome":"failure"')
        assert digest(chain)["merkle_root"] != root, key
        chain.state[("", key)] = original
    assert digest(chain)["merkle_root"] == root


@pytest.mark.parametrize(
    "args, message",
    [
        (("", stamp(1)), f"invalid argument: 'since' {TIME_RULE}"),
        ((stamp(1), ""), f"invalid argument: 'until' {TIME_RULE}"),
        ((stamp(2), stamp(1)), "invalid argument: 'until' must be after 'since'"),
    ],
)
def test_digest_needs_a_period(chain, args, message):
    result = chain.invoke("access_log:LogDigest", *args)

    assert (result.status, result.message) == (500, message)


def test_same_input_and_timestamp_give_identical_writes(connect):
    first = log(connect(*ALL_CONTRACTS), nonce=b"n" * 24, reason="same")
    second = log(connect(*ALL_CONTRACTS), nonce=b"n" * 24, reason="same")

    assert first.status == second.status == 200
    assert (first.writes, first.payload) == (second.writes, second.payload)


def test_a_requester_id_may_have_1024_characters(chain):
    requester_id = "x509::CN=ca::" + "d" * 1011

    entry = ok(log(chain, creator=A_SERVICE, requester_msp="HospitalBMSP", requester_id=requester_id))
    assert entry["requester_id"] == requester_id
