"""The stub against the fake peer: state, queries, private data, endorsement, proposal details, peer errors."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime

import pytest

from .fakepeer import DEFAULT_TIMESTAMP, WAIT

RED = "\x00asset\x00red\x00"


def seed(peer, entries, collection=""):
    for key, value in entries.items():
        peer.state[(collection, key)] = value.encode()


def test_put_get_delete(peer):
    put = peer.invoke("Put", "k", "v")
    assert (put.status, put.writes) == (200, {("", "k"): b"v"})
    assert peer.invoke("Get", "k").payload == b"v"

    deleted = peer.invoke("Delete", "k")

    assert deleted.writes == {("", "k"): None}
    assert peer.invoke("Get", "k").payload == b""


@pytest.mark.parametrize("function, args", [("Put", ("", "v")), ("Get", ("",)), ("Delete", ("",))])
def test_empty_key_is_refused(peer, function, args):
    result = peer.invoke(function, *args)

    assert (result.status, result.message) == (500, "the key must not be empty")
    assert peer.requests == []


def test_range_spans_batches_in_key_order(peer):
    seed(peer, {"k3": "3", "k1": "1", "k5": "5", "k2": "2", "k4": "4", "j": "before", "l": "end", RED + "1\x00": "c"})

    assert peer.invoke("Range", "k1", "l").json() == ["k1=1", "k2=2", "k3=3", "k4=4", "k5=5"]
    assert peer.requests == ["GET_STATE_BY_RANGE", "QUERY_STATE_NEXT", "QUERY_STATE_NEXT"]  # batches of 2, 2, 1


def test_open_range_holds_every_simple_key_and_no_composite_key(peer):
    seed(peer, {"b": "2", "a": "1", RED + "1\x00": "composite"})

    assert peer.invoke("Range", "", "").json() == ["a=1", "b=2"]


def test_range_bound_in_composite_key_space_is_refused(peer):
    result = peer.invoke("Range", "\x00asset", "")

    assert result.status == 500
    assert "must not start with U+0000" in result.message


def test_iterator_left_early_is_closed(peer):
    seed(peer, {f"k{n}": str(n) for n in range(5)})

    assert peer.invoke("RangeFirst", "", "").payload == b"k0"
    assert peer.requests == ["GET_STATE_BY_RANGE", "QUERY_STATE_CLOSE"]


def test_exhausted_iterator_needs_no_close(peer):
    seed(peer, {"k0": "0"})

    peer.invoke("Range", "", "")

    assert peer.requests == ["GET_STATE_BY_RANGE"]


def test_range_pages_follow_bookmarks(peer):
    seed(peer, {f"k{n}": str(n) for n in range(5)})

    first = peer.invoke("RangePage", "", "", "2", "").json()
    second = peer.invoke("RangePage", "", "", "2", first["bookmark"]).json()
    last = peer.invoke("RangePage", "", "", "2", second["bookmark"]).json()

    assert first == {"entries": ["k0=0", "k1=1"], "bookmark": "k2", "count": 2}
    assert second == {"entries": ["k2=2", "k3=3"], "bookmark": "k4", "count": 2}
    assert last == {"entries": ["k4=4"], "bookmark": "", "count": 1}


def test_page_size_must_be_positive(peer):
    result = peer.invoke("RangePage", "", "", "0", "")

    assert result.status == 500
    assert "page size must be between 1 and" in result.message


def test_composite_key_layout(peer):
    result = peer.invoke("PutComposite", "asset", '["red","1"]', "v")

    assert result.payload.decode() == RED + "1\x00"
    assert result.writes == {("", RED + "1\x00"): b"v"}


@pytest.mark.parametrize("attribute", ["a\x00b", "a\U0010ffffb"])
def test_composite_key_refuses_delimiter_characters(peer, attribute):
    result = peer.invoke("PutComposite", "asset", json.dumps([attribute]), "v")

    assert result.status == 500
    assert "must not contain U+0000 or U+10FFFF" in result.message


def test_partial_composite_key_matches_whole_attributes_only(peer):
    seed(peer, {RED + "2\x00": "b", RED + "1\x00": "a", "\x00asset\x00redder\x003\x00": "c"})
    seed(peer, {"\x00other\x00red\x00": "d"})

    assert peer.invoke("Partial", "asset", '["red"]').json() == [["red", "1"], ["red", "2"]]
    assert peer.invoke("Partial", "asset", "[]").json() == [["red", "1"], ["red", "2"], ["redder", "3"]]


def test_partial_composite_key_pages(peer):
    seed(peer, {RED + f"{n}\x00": str(n) for n in range(3)})

    first = peer.invoke("PartialPage", "asset", '["red"]', "2", "").json()
    rest = peer.invoke("PartialPage", "asset", '["red"]', "2", first["bookmark"]).json()

    assert first == {"entries": [f"{RED}0\x00=0", f"{RED}1\x00=1"], "bookmark": RED + "2\x00", "count": 2}
    assert rest == {"entries": [f"{RED}2\x00=2"], "bookmark": "", "count": 1}


def test_rich_query(peer):
    seed(peer, {"a": '{"owner":"x"}', "b": '{"owner":"y"}', "c": '{"owner":"x"}', "d": "not json"})

    assert peer.invoke("Query", '{"selector":{"owner":"x"}}').json() == ['a={"owner":"x"}', 'c={"owner":"x"}']
    page = peer.invoke("QueryPage", '{"selector":{"owner":"x"}}', "1", "").json()
    assert page == {"entries": ['a={"owner":"x"}'], "bookmark": "c", "count": 1}


def test_history_newest_first(peer):
    first = peer.invoke("Put", "k", "one")
    second = peer.invoke("Put", "k", "two")
    deleted = peer.invoke("Delete", "k")

    history = peer.invoke("History", "k").json()

    assert [(h["tx_id"], h["value"], h["is_delete"]) for h in history] == [
        (deleted.tx_id, "", True),
        (second.tx_id, "two", False),
        (first.tx_id, "one", False),
    ]
    assert history[0]["at"] == DEFAULT_TIMESTAMP.isoformat()


def test_private_data_from_transient_input(peer):
    put = peer.invoke("PutPrivate", "secrets", "k", transient={"value": b"s3cret"})

    assert put.writes == {("secrets", "k"): b"s3cret"}
    assert b"s3cret" not in put.payload
    assert peer.invoke("GetPrivate", "secrets", "k").payload == b"s3cret"
    assert peer.invoke("GetPrivate", "other", "k").payload == b""
    assert peer.invoke("PrivateHash", "secrets", "k").payload.decode() == hashlib.sha256(b"s3cret").hexdigest()
    assert peer.invoke("DeletePrivate", "secrets", "k").writes == {("secrets", "k"): None}


def test_private_data_purge(peer):
    seed(peer, {"k": "v"}, collection="secrets")

    purged = peer.invoke("PurgePrivate", "secrets", "k")

    assert purged.writes == {("secrets", "k"): None}
    assert peer.requests == ["PURGE_PRIVATE_DATA"]


def test_private_data_range(peer):
    seed(peer, {"a": "1", "b": "2", "c": "3"}, collection="secrets")
    seed(peer, {"b": "public"})

    assert peer.invoke("PrivateRange", "secrets", "b", "").json() == ["b=2", "c=3"]


@pytest.mark.parametrize("function", ["PutPrivate", "GetPrivate", "PrivateHash", "DeletePrivate", "PurgePrivate"])
def test_private_data_needs_a_collection(peer, function):
    result = peer.invoke(function, "", "k", transient={"value": b"v"})

    assert (result.status, result.message) == (500, "the private data collection must be named")


def test_state_based_endorsement(peer):
    policy = b"\x0a\x02policy-bytes"

    written = peer.invoke("SetEndorsement", "k", policy)

    assert peer.state_metadata == {("", "k"): {"VALIDATION_PARAMETER": policy}}
    assert written.status == 200
    assert peer.invoke("GetEndorsement", "k").payload == policy
    assert peer.invoke("GetEndorsement", "other").payload == b""


def test_proposal_details_match_the_proposal(peer, identities):
    nonce = bytes(range(24))

    result = peer.invoke("Proposal", channel="hospital-a-local", nonce=nonce, transient={"b": b"2", "a": b"1"})

    details = result.json()
    assert details["tx_id"] == result.tx_id == hashlib.sha256(nonce + identities.creator).hexdigest()
    assert details["channel_id"] == "hospital-a-local"
    assert details["timestamp"] == DEFAULT_TIMESTAMP.isoformat()
    assert details["binding"] == hashlib.sha256(nonce + identities.creator + bytes(8)).hexdigest()
    assert details["creator"] == identities.creator.hex()
    assert details["transient"] == ["a", "b"]
    assert details["args"] == ["Proposal"]


def test_tx_timestamp_comes_from_the_proposal(peer):
    moment = datetime(2031, 12, 24, 23, 59, 58, 123456, tzinfo=UTC)

    assert peer.invoke("Proposal", timestamp=moment).json()["timestamp"] == moment.isoformat()


def test_peer_error_raises_in_the_contract(peer):
    peer.state[("", "k")] = b"v"
    peer.failures["GET_STATE"] = "ledger unavailable"

    result = peer.invoke("Get", "k")

    assert (result.status, result.payload) == (500, b"")
    assert result.message == "GET_STATE failed: ledger unavailable"


def test_peer_error_on_a_later_batch_raises(peer):
    seed(peer, {f"k{n}": str(n) for n in range(5)})
    peer.failures["QUERY_STATE_NEXT"] = "iterator expired"

    result = peer.invoke("Range", "", "")

    assert (result.status, result.message) == (500, "QUERY_STATE_NEXT failed: iterator expired")


def test_same_transaction_id_on_two_channels_is_kept_apart(peer):
    nonce = b"n" * 24
    peer.state[("", "k")] = b"v"
    peer.hold_replies_until(2)

    on_public = peer.submit("Get", "k", nonce=nonce)
    on_local = peer.submit("Get", "k", nonce=nonce, channel="hospital-a-local")

    public, local = on_public.result(timeout=WAIT), on_local.result(timeout=WAIT)
    assert public.tx_id == local.tx_id
    assert public.payload == local.payload == b"v"
