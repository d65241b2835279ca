"""The market contract: versioned price lists by the domain's admin, balances credited by the buyer's admin,
purchases at the posted price only (refusals commit, logged, nothing else written), and a purchase as the grant of
the "purchase" purpose."""

from __future__ import annotations

import json

import pytest

from medfabric_chaincode.contracts import ALL_CONTRACTS

from .actors import A_DOCTOR, B_DOCTOR, at, caller, ok, put_record, stamp

A_ADMIN = caller("HospitalAMSP", "Admin", "admin")
B_ADMIN = caller("HospitalBMSP", "Admin", "admin")
BUYER = "HospitalBMSP/doctor"
EXPIRES = stamp(3600)


@pytest.fixture
def chain(connect):
    chain = connect(*ALL_CONTRACTS)
    put_record(chain)  # rec-001: hospital-a's
    put_record(chain, "rec-002")
    return chain


def post(chain, version=1, prices=None, creator=A_ADMIN, **changes):
    document = {"domain": "hospital-a", "version": version, "d_max": 100, "prices": prices or {BUYER: 2.5},
                **changes}
    return chain.invoke("market:PostPrices", json.dumps(document), creator=creator)


def credit(chain, amount=100.0, user="doctor", creator=B_ADMIN):
    return chain.invoke("market:Credit", json.dumps({"user": user, "amount": amount}), creator=creator)


def buy(chain, creator=B_DOCTOR, seconds=0, **changes):
    document = {"domain": "hospital-a", "record_ids": ["rec-001"], "quantity": 10, "price": 2.5, "version": 1,
                "expires": EXPIRES, **changes}
    return chain.invoke("market:Buy", json.dumps(document), creator=creator, **at(seconds))


def balance(chain, creator=B_DOCTOR, user="doctor"):
    return ok(chain.invoke("market:GetBalance", user, creator=creator))["amount"]


def market_state(chain) -> dict:
    return {key: value for key, value in chain.state.items() if "market" in key[1]}


def test_a_purchase_at_the_posted_price_pays_the_duty_node_and_opens_the_record(chain):
    ok(post(chain))
    ok(credit(chain))

    answer = ok(buy(chain))

    assert answer["accepted"] and answer["cost"] == 25_000_000
    assert balance(chain) == 75_000_000
    assert ok(chain.invoke("market:GetEarnings", "hospital-a", creator=A_DOCTOR))["amount"] == 25_000_000
    purchase = ok(chain.invoke("market:GetPurchase", answer["purchase_id"], creator=A_DOCTOR))
    assert (purchase["buyer_msp"], purchase["buyer_user"], purchase["price"]) == ("HospitalBMSP", "doctor", 2_500_000)
    decision = ok(chain.invoke("consent:CheckAccess", "rec-001", "read", "purchase", creator=B_DOCTOR))
    assert (decision["decision"], decision["reason"]) == ("allow", f"purchase {answer['purchase_id']}")
    assert ok(chain.invoke("consent:CheckAccess", "rec-002", "read", "purchase", creator=B_DOCTOR))["decision"] == "deny"
    other_user = caller("HospitalBMSP", "researcher", "researcher")
    assert ok(chain.invoke("consent:CheckAccess", "rec-001", "read", "purchase", creator=other_user))["decision"] == "deny"
    assert ok(chain.invoke("consent:CheckAccess", "rec-001", "read", "treatment", creator=B_DOCTOR))["decision"] == "deny"
    later = chain.invoke("consent:CheckAccess", "rec-001", "read", "purchase", creator=B_DOCTOR, **at(3601))
    assert ok(later)["decision"] == "deny"


@pytest.mark.parametrize(
    "changes, reason",
    [
        ({"price": 2.4}, "price 2.4 is not the posted 2.500000"),
        ({"version": 2}, "stale price list: version 2, the latest is 1"),
        ({"quantity": 100.5}, "quantity 100.5 is over D_max 100"),
        ({"quantity": 50}, "balance 100.000000 is less than the cost 125.000000"),
        ({"record_ids": ["rec-404"]}, "record rec-404 not found"),
        ({"domain": "hospital-c"}, "hospital-c has posted no price list"),
    ],
)
def test_a_refused_purchase_commits_its_reason_and_writes_nothing_else(chain, changes, reason):
    ok(post(chain))
    ok(credit(chain))
    before = market_state(chain)

    answer = ok(buy(chain, **changes))

    assert (answer["accepted"], answer["reason"], answer["purchase_id"]) == (False, reason, None)
    assert market_state(chain) == before
    entry = json.loads(next(v for (_, k), v in chain.state.items() if k.startswith("\x00log\x00")
                            and answer["log_id"] in k))
    assert (entry["action"], entry["outcome"], entry["reason"]) == ("purchase", "failure", reason)


def test_a_price_from_an_older_version_is_stale(chain):
    ok(post(chain))
    ok(post(chain, version=2, prices={BUYER: 3.0}))
    ok(credit(chain))

    assert ok(buy(chain))["reason"] == "stale price list: version 1, the latest is 2"
    assert ok(buy(chain, version=2, price=3.0))["accepted"]
    assert ok(chain.invoke("market:GetPrices", "hospital-a", "1", creator=B_DOCTOR))["prices"] == {BUYER: 2_500_000}


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda c: post(c, creator=A_DOCTOR), "only a admin may post a price list: the caller's medfabric.role is doctor"),
        (lambda c: post(c, creator=B_ADMIN), "only an identity of domain hospital-a (HospitalAMSP) may post its price "
                                            "list: the caller is of HospitalBMSP"),
        (lambda c: post(c, version=2), "invalid price list: field 'version' must be 1, the next version"),
        (lambda c: post(c, prices={"doctor": 1.0}), "invalid price list: field 'prices' must map 1 to 10000 buyers"),
        (lambda c: post(c, d_max=0), "invalid price list: field 'd_max' must be a number in (0, 1e+09]"),
        (lambda c: credit(c, creator=B_DOCTOR), "only a admin may credit a balance: the caller's medfabric.role is "
                                               "doctor"),
        (lambda c: credit(c, amount=-1), "invalid credit: field 'amount' must be a number in (0, 1e+09]"),
        (lambda c: buy(c, quantity=0), "invalid purchase: field 'quantity' must be a number in (0, 1e+09]"),
        (lambda c: buy(c, price=float("nan")), "invalid purchase: not valid JSON"),
        (lambda c: buy(c, expires=stamp(-1)), "invalid purchase: field 'expires' must be after the transaction time"),
        (lambda c: buy(c, record_ids=["rec-001", "rec-001"]), "invalid purchase: field 'record_ids' must be a list of "
                                                              "1 to 100 distinct record ids"),
    ],
)
def test_bad_market_input_is_refused_with_one_line(chain, call, message):
    before = dict(chain.state)

    result = call(chain)

    assert result.status != 200 and message in result.message
    assert dict(chain.state) == before


def test_balances_are_per_msp_and_read_by_their_own_msp_only(chain):
    ok(credit(chain, 5))
    ok(credit(chain, 2.25))

    assert balance(chain) == 7_250_000
    assert balance(chain, creator=A_DOCTOR) == 0  # HospitalAMSP's own "doctor" has nothing
