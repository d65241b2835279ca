"""The anchor contract: a domain anchors its own local log, period after period, without overlaps or gaps."""

from __future__ import annotations

import json

import pytest

from medfabric_chaincode.contracts import ALL_CONTRACTS

from .actors import A_DOCTOR, B_DOCTOR, actor_id, at, caller, ok, stamp

LOCAL = "hospital-a-local"
ROOT = "ab" * 32
HOUR = 3600


@pytest.fixture
def public(connect):
    return connect(*ALL_CONTRACTS)


def anchor(public, start: float = 0, end: float = HOUR, creator: bytes = A_DOCTOR, seconds: float = 2 * HOUR,
           **fields):
    """Anchor hospital-a's log over [stamp(start), stamp(end)), submitted at stamp(seconds); fields override."""
    document = {"domain": "hospital-a", "channel": LOCAL, "since": stamp(start), "until": stamp(end), "count": 3,
                "merkle_root": ROOT, **fields}
    return public.invoke("anchor:AnchorLogRoot", json.dumps(document), creator=creator, **at(seconds))


def anchors(public, domain: str = "hospital-a", *page: str) -> list[dict]:
    return ok(public.invoke("anchor:GetAnchors", domain, *page))["anchors"]


def test_domain_anchors_its_local_log_digest(connect, public):
    local = connect(*ALL_CONTRACTS)
    for seconds in (1, 2, 3):
        entry = {"record_id": "rec-001", "action": "request", "outcome": "success"}
        ok(local.invoke("access_log:LogAccess", json.dumps(entry), channel=LOCAL, **at(seconds)))
    digest = ok(local.invoke("access_log:LogDigest", stamp(0), stamp(HOUR), channel=LOCAL))

    result = public.invoke("anchor:AnchorLogRoot", json.dumps({"domain": "hospital-a", **digest}), creator=A_DOCTOR,
                           **at(2 * HOUR))

    stored = {
        "domain": "hospital-a", "channel": LOCAL, "since": stamp(0), "until": stamp(HOUR), "count": 3,
        "merkle_root": digest["merkle_root"], "anchor_msp": "HospitalAMSP", "anchor_id": actor_id(A_DOCTOR),
        "anchored_at": stamp(2 * HOUR), "tx_id": result.tx_id,
    }
    assert ok(result) == stored
    assert result.writes == {
        ("", f"\x00anchor\x00hospital-a\x00{stamp(HOUR)}\x00"): result.payload,
        ("", "\x00anchor~last\x00hospital-a\x00"): stamp(HOUR).encode(),
    }
    assert (result.event.event_name, result.event.payload) == ("LogAnchored", result.payload)
    assert anchors(public) == [stored]


def test_periods_follow_each_other(public):
    ok(anchor(public, 0, HOUR))
    ok(anchor(public, HOUR, 2 * HOUR))
    ok(anchor(public, 2 * HOUR, 2 * HOUR + 1, seconds=3 * HOUR))

    assert [(a["since"], a["until"]) for a in anchors(public)] == [
        (stamp(0), stamp(HOUR)), (stamp(HOUR), stamp(2 * HOUR)), (stamp(2 * HOUR), stamp(2 * HOUR + 1))
    ]


@pytest.mark.parametrize(
    "since, until, message",
    [
        (0, HOUR, f"field 'until' must be after the previous anchor's until {stamp(HOUR)}"),
        (HOUR / 2, HOUR, f"field 'until' must be after the previous anchor's until {stamp(HOUR)}"),
        (HOUR / 2, 2 * HOUR, f"field 'since' must be the previous anchor's until {stamp(HOUR)}"),
        (HOUR + 1, 2 * HOUR, f"field 'since' must be the previous anchor's until {stamp(HOUR)}"),
    ],
)
def test_overlaps_and_gaps_are_refused(public, since, until, message):
    ok(anchor(public, 0, HOUR))

    result = anchor(public, since, until)

    assert (result.status, result.message, result.writes) == (500, f"invalid anchor: {message}", {})


@pytest.mark.parametrize(
    "creator, message",
    [
        (B_DOCTOR, "only an identity of domain hospital-a (HospitalAMSP) may anchor its log: the caller is of "
                   "HospitalBMSP"),
        (caller("HospitalAMSP", domain=None), "only an identity of domain hospital-a may anchor its log: the caller's "
                                               "certificate has no medfabric.domain"),
    ],
)
def test_only_the_domain_anchors_its_log(public, creator, message):
    result = anchor(public, creator=creator)

    assert (result.status, result.message, result.writes) == (500, message, {})


def test_another_msp_claiming_the_domain_cannot_continue_its_anchors(public):
    ok(anchor(public, 0, HOUR))

    result = anchor(public, HOUR, 2 * HOUR, creator=caller("HospitalBMSP", domain="hospital-a"))

    # B's CA can write any domain into B's certificates: the binding refuses it before the anchors' own check
    assert (result.status, result.message) == (500, "only an identity of domain hospital-a (HospitalAMSP) may anchor "
                                                    "its log: the caller is of HospitalBMSP")


def test_domains_have_their_own_anchors(public):
    ok(anchor(public, 0, HOUR))
    ok(anchor(public, HOUR / 2, HOUR, creator=B_DOCTOR, domain="hospital-b", channel="hospital-b-local"))

    assert [a["domain"] for a in anchors(public, "hospital-b")] == ["hospital-b"]
    assert anchors(public, "hospital-c") == []


def test_anchors_in_pages(public):
    for index in range(3):
        ok(anchor(public, index * HOUR, (index + 1) * HOUR, seconds=4 * HOUR))

    first = ok(public.invoke("anchor:GetAnchors", "hospital-a", "2", ""))
    second = ok(public.invoke("anchor:GetAnchors", "hospital-a", "2", first["bookmark"]))

    assert [a["until"] for a in first["anchors"]] == [stamp(HOUR), stamp(2 * HOUR)]
    assert first["bookmark"] == f"\x00anchor\x00hospital-a\x00{stamp(3 * HOUR)}\x00"
    assert ([a["until"] for a in second["anchors"]], second["bookmark"]) == ([stamp(3 * HOUR)], "")


def test_times_are_stored_in_utc_with_milliseconds(public):
    result = anchor(public, since="2025-03-04T06:06:07.891999+01:00", until="2025-03-04T05:07:07.8915Z")

    assert (ok(result)["since"], ok(result)["until"]) == (stamp(0), stamp(60))


TIME_RULE = "must be an ISO-8601 date-time with a time zone"


@pytest.mark.parametrize(
    "fields, problem",
    [
        ({"domain": "Hospital-A"}, "field 'domain' must be 1-63 characters of a-z 0-9 -"),
        ({"channel": "Local"}, "field 'channel' must be a channel name: a-z, then up to 248 of a-z 0-9 . -"),
        ({"channel": ""}, "field 'channel' must be a channel name: a-z, then up to 248 of a-z 0-9 . -"),
        ({"since": "2025-03-04"}, f"field 'since' {TIME_RULE}"),
        ({"until": None}, f"field 'until' {TIME_RULE}"),
        ({"count": -1}, "field 'count' must be an integer >= 0"),
        ({"count": 2.0}, "field 'count' must be an integer >= 0"),
        ({"merkle_root": "AB" * 32}, "field 'merkle_root' must be 64 lowercase hex characters"),
        ({"merkle_root": "ab" * 31}, "field 'merkle_root' must be 64 lowercase hex characters"),
        ({"anchor_msp": "HospitalAMSP"}, "unknown field 'anchor_msp'"),
    ],
)
def test_invalid_anchors_are_refused_naming_the_field(public, fields, problem):
    result = anchor(public, **fields)

    assert (result.status, result.message, result.writes) == (500, f"invalid anchor: {problem}", {})


@pytest.mark.parametrize(
    "since, until, seconds, problem",
    [
        (HOUR, HOUR, 2 * HOUR, "field 'until' must be after 'since'"),
        (HOUR, 0, 2 * HOUR, "field 'until' must be after 'since'"),
        (0, HOUR, HOUR - 1, f"field 'until' must not be after the transaction time {stamp(HOUR - 1)}"),
    ],
)
def test_period_must_be_closed_and_past(public, since, until, seconds, problem):
    result = anchor(public, since, until, seconds=seconds)

    assert (result.status, result.message) == (500, f"invalid anchor: {problem}")


def test_period_may_end_at_the_transaction_time(public):
    assert anchor(public, 0, HOUR, seconds=HOUR).status == 200


@pytest.mark.parametrize(
    "args, message",
    [
        (("hospital A",), "invalid argument: 'domain' must be 1-63 characters of a-z 0-9 -"),
        (("hospital-a", "2", "\x00anchor\x00hospital-b\x00"),
         "invalid argument: 'bookmark' does not belong to this listing"),
    ],
)
def test_get_anchors_arguments_are_checked(public, args, message):
    result = public.invoke("anchor:GetAnchors", *args)

    assert (result.status, result.message) == (500, message)
