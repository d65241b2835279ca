"""market: duty nodes' price lists, buyers' balances and purchases of cross-domain records (SYSTEM.md section 3).

A domain's admin posts its duty node's price list: a price per buyer (an identity
"<MSP>/<enrollment id>" of another domain) and the demand cap D_max, versioned
(each post is the latest version + 1). A domain's admin credits its own users. A
buyer purchases records of one domain at the posted price of the latest version:
the buyer's balance pays quantity x price and the domain's duty node earns it, in
the same transaction. A purchase counts as a grant for the buyer reading those
records for the purpose "purchase" until it expires (consent.CheckAccess).

A purchase that the ledger's state refuses (a price that is not the posted one, a
stale version, a quantity over D_max, too little balance, a record not of that
domain) is an answer, not a failure: it commits with the reason, logged, and
nothing else is written. Money is integers of micro-units (10^-6): no float sums.
State:

    ("market-prices", domain)                            -> the latest PriceList
    ("market-prices~version", domain, version)           -> each version posted (10 digits)
    ("market-balance", msp, user)                        -> a Balance
    ("market-earnings", domain)                          -> the duty node's Earnings
    ("market-purchase", tx_id)                           -> a Purchase
    ("market-purchase~record", record_id, buyer_msp, tx_id) -> b"\\x00"
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

from ..runtime import ChaincodeStub, Contract, TransactionContext, TransactionError, canonical_json, load_json, transaction
from .access_log import append_log
from .common import (
    DOMAIN_RULE, ENROLLMENT_ATTRIBUTE, INDEX_VALUE, TIME_RULE, Rule, check_argument, check_fields,
    integer_in, invalid_field, iso_millis, member_domain, number_in, parse_document, require_domain, require_role,
    text, utc_time
)
from .emr_index import ENTRY_RULES, find_record

PRICES_KEY = "market-prices"
PRICE_VERSIONS = "market-prices~version"
BALANCE_KEY = "market-balance"
EARNINGS_KEY = "market-earnings"
PURCHASE_KEY = "market-purchase"
RECORD_PURCHASES = "market-purchase~record"
PURCHASE_PURPOSE = "purchase"
ADMIN_ROLE = "admin"
MICRO = 1_000_000
MAX_PRICE = 1_000_000.0
MAX_AMOUNT = 1_000_000_000.0
MAX_BUYERS = 10_000
MAX_RECORDS = 100
MAX_VERSION = 9_999_999_999
MAX_VALIDITY = timedelta(days=366)
PRICES_POSTED_EVENT = "PricesPosted"
PURCHASE_EVENT = "Purchase"

_USER = re.compile(r"[A-Za-z0-9._@-]{1,128}")
_BUYER = re.compile(r"[A-Za-z0-9._-]{1,128}/[A-Za-z0-9._@-]{1,128}")
USER_RULE: Rule = (text(_USER), "must be an enrollment id of 1-128 characters of A-Z a-z 0-9 . _ @ -")


def _price_table(value) -> bool:
    return (isinstance(value, dict) and 1 <= len(value) <= MAX_BUYERS
            and all(text(_BUYER)(buyer) and number_in(0, MAX_PRICE)[0](price) for buyer, price in value.items()))


def _record_ids(value) -> bool:
    return (isinstance(value, list) and 1 <= len(value) <= MAX_RECORDS and len(set(map(str, value))) == len(value)
            and all(ENTRY_RULES["record_id"][0](record_id) for record_id in value))


_PRICE_RULES: dict[str, Rule] = {
    "domain": DOMAIN_RULE,
    "version": integer_in(1, MAX_VERSION),
    "d_max": number_in(0, MAX_AMOUNT),
    "prices": (_price_table, f"must map 1 to {MAX_BUYERS} buyers '<MSP>/<enrollment id>' to prices in "
                             f"(0, {MAX_PRICE:g}]"),
}
_CREDIT_RULES: dict[str, Rule] = {"user": USER_RULE, "amount": number_in(0, MAX_AMOUNT)}
_PURCHASE_RULES: dict[str, Rule] = {
    "domain": DOMAIN_RULE,
    "record_ids": (_record_ids, f"must be a list of 1 to {MAX_RECORDS} distinct record ids"),
    "quantity": number_in(0, MAX_AMOUNT),
    "price": number_in(0, MAX_PRICE),
    "version": integer_in(1, MAX_VERSION),
    "expires": TIME_RULE,
}


@dataclass(frozen=True)
class PriceList:
    domain: str
    dn_msp: str  # the posting MSP: the domain's
    version: int
    d_max: float
    prices: dict[str, int]  # buyer "<MSP>/<enrollment id>" -> price in micro-units per unit of data
    posted: str  # the transaction's time
    poster_id: str
    tx_id: str


@dataclass(frozen=True)
class Balance:
    msp: str
    user: str
    amount: int  # micro-units


@dataclass(frozen=True)
class Earnings:
    domain: str
    amount: int  # micro-units


@dataclass(frozen=True)
class Purchase:
    purchase_id: str  # the purchasing transaction's id
    buyer_msp: str
    buyer_user: str
    buyer_id: str
    domain: str
    dn_msp: str
    record_ids: list[str]
    quantity: float
    price: int  # micro-units per unit
    version: int
    cost: int  # micro-units
    expires: str
    timestamp: str


@dataclass(frozen=True)
class PurchaseAnswer:
    accepted: bool
    reason: str
    purchase_id: str | None
    cost: int | None
    log_id: str


class MarketContract(Contract):
    """Post prices, credit balances, buy records at the posted price."""

    name = "market"

    @transaction
    def PostPrices(self, ctx: TransactionContext, price_list_json: str) -> PriceList:
        """Post the next version of the domain's price list. Roles: the domain's admin."""
        document = parse_document(price_list_json, "price list")
        check_fields(document, _PRICE_RULES, "price list")
        stub, identity = ctx.stub, ctx.client_identity
        require_domain(identity, document["domain"], "post its price list")
        require_role(identity, ADMIN_ROLE, "post a price list")
        latest = find_prices(stub, document["domain"])
        expected = 1 if latest is None else latest.version + 1
        if document["version"] != expected:
            invalid_field("price list", "version", f"must be {expected}, the next version")
        prices = PriceList(
            domain=document["domain"], dn_msp=identity.msp_id, version=document["version"],
            d_max=float(document["d_max"]), prices={buyer: to_micro(price) for buyer, price in
                                                   sorted(document["prices"].items())},
            posted=iso_millis(stub.get_tx_timestamp()), poster_id=identity.get_id(), tx_id=stub.get_tx_id())
        if any(price <= 0 for price in prices.prices.values()):
            invalid_field("price list", "prices", "must hold prices of at least 10^-6")
        record = canonical_json(prices)
        stub.put_state(stub.create_composite_key(PRICES_KEY, [prices.domain]), record)
        stub.put_state(stub.create_composite_key(PRICE_VERSIONS, [prices.domain, f"{prices.version:010d}"]), record)
        stub.set_event(PRICES_POSTED_EVENT, canonical_json({"domain": prices.domain, "version": prices.version}))
        return prices

    @transaction(evaluate=True)
    def GetPrices(self, ctx: TransactionContext, domain: str, version: int = 0) -> PriceList:
        """The domain's latest price list, or version `version` of it."""
        check_argument("domain", domain, DOMAIN_RULE)
        check_argument("version", version, integer_in(0, MAX_VERSION))
        stub = ctx.stub
        if version:
            data = stub.get_state(stub.create_composite_key(PRICE_VERSIONS, [domain, f"{version:010d}"]))
            found = None if data is None else load_json(PriceList, data, "price list")
        else:
            found = find_prices(stub, domain)
        if found is None:
            raise TransactionError(f"{domain} has posted no price list{f' version {version}' if version else ''}")
        return found

    @transaction
    def Credit(self, ctx: TransactionContext, credit_json: str) -> Balance:
        """Credit a user of the caller's own MSP. Roles: an admin of the caller's domain."""
        document = parse_document(credit_json, "credit")
        check_fields(document, _CREDIT_RULES, "credit")
        identity = ctx.client_identity
        domain = member_domain(identity)
        if domain is None:
            raise TransactionError(f"only an admin of a domain may credit: {identity.msp_id} is of no domain")
        require_domain(identity, domain, "credit its users")
        require_role(identity, ADMIN_ROLE, "credit a balance")
        amount = to_micro(document["amount"])
        if amount <= 0:
            invalid_field("credit", "amount", "must be at least 10^-6")
        balance = _balance(ctx.stub, identity.msp_id, document["user"])
        credited = Balance(balance.msp, balance.user, balance.amount + amount)
        _put_balance(ctx.stub, credited)
        return credited

    @transaction(evaluate=True)
    def GetBalance(self, ctx: TransactionContext, user: str) -> Balance:
        """The balance of `user` of the caller's own MSP (no one reads another MSP's balances)."""
        check_argument("user", user, USER_RULE)
        return _balance(ctx.stub, ctx.client_identity.msp_id, user)

    @transaction(evaluate=True)
    def GetEarnings(self, ctx: TransactionContext, domain: str) -> Earnings:
        """What the domain's duty node has earned. Roles: an identity of the domain."""
        check_argument("domain", domain, DOMAIN_RULE)
        require_domain(ctx.client_identity, domain, "read its earnings")
        return _earnings(ctx.stub, domain)

    @transaction
    def Buy(self, ctx: TransactionContext, purchase_json: str) -> PurchaseAnswer:
        """Buy records of a domain at its posted price; refused (committed, logged, nothing else written) when the
        price, version, quantity, records or balance do not hold."""
        document = parse_document(purchase_json, "purchase")
        check_fields(document, _PURCHASE_RULES, "purchase")
        stub, identity = ctx.stub, ctx.client_identity
        user = identity.get_attribute(ENROLLMENT_ATTRIBUTE)
        if user is None or not USER_RULE[0](user):
            raise TransactionError(f"a buyer needs an enrollment id ({ENROLLMENT_ATTRIBUTE}) in its certificate")
        now = stub.get_tx_timestamp()
        expires = utc_time(document["expires"])
        if not now < expires <= now + MAX_VALIDITY:
            invalid_field("purchase", "expires", f"must be after the transaction time {iso_millis(now)} and at "
                                                 f"most {MAX_VALIDITY.days} days later")
        refusal, prices = _refusal(stub, identity.msp_id, user, document)
        first = document["record_ids"][0]
        if refusal:
            entry = append_log(ctx, "purchase", "failure", first, refusal[:200])
            return PurchaseAnswer(False, refusal, None, None, entry.log_id)
        price = prices.prices[f"{identity.msp_id}/{user}"]
        cost = round(document["quantity"] * price)
        balance = _balance(stub, identity.msp_id, user)
        if balance.amount < cost:
            refusal = f"balance {from_micro(balance.amount)} is less than the cost {from_micro(cost)}"
            entry = append_log(ctx, "purchase", "failure", first, refusal)
            return PurchaseAnswer(False, refusal, None, None, entry.log_id)
        purchase = Purchase(
            purchase_id=stub.get_tx_id(), buyer_msp=identity.msp_id, buyer_user=user, buyer_id=identity.get_id(),
            domain=prices.domain, dn_msp=prices.dn_msp, record_ids=list(document["record_ids"]),
            quantity=float(document["quantity"]), price=price, version=prices.version, cost=cost,
            expires=iso_millis(expires), timestamp=iso_millis(now))
        _put_balance(stub, Balance(balance.msp, balance.user, balance.amount - cost))
        earnings = _earnings(stub, prices.domain)
        stub.put_state(stub.create_composite_key(EARNINGS_KEY, [prices.domain]),
                       canonical_json(Earnings(prices.domain, earnings.amount + cost)))
        stub.put_state(stub.create_composite_key(PURCHASE_KEY, [purchase.purchase_id]), canonical_json(purchase))
        log_id = ""
        for record_id in purchase.record_ids:
            stub.put_state(stub.create_composite_key(RECORD_PURCHASES, [record_id, purchase.buyer_msp,
                                                                        purchase.purchase_id]), INDEX_VALUE)
            entry = append_log(ctx, "purchase", "success", record_id, f"purchase {purchase.purchase_id}")
            log_id = log_id or entry.log_id
        stub.set_event(PURCHASE_EVENT, canonical_json({"purchase_id": purchase.purchase_id,
                                                       "domain": purchase.domain, "cost": cost}))
        return PurchaseAnswer(True, f"purchase {purchase.purchase_id}", purchase.purchase_id, cost, log_id)

    @transaction(evaluate=True)
    def GetPurchase(self, ctx: TransactionContext, purchase_id: str) -> Purchase:
        """A purchase, for its buyer's or its seller's MSP."""
        check_argument("purchase_id", purchase_id, (text(re.compile(r"[0-9a-f]{64}")), "must be a transaction id"))
        data = ctx.stub.get_state(ctx.stub.create_composite_key(PURCHASE_KEY, [purchase_id]))
        if data is None:
            raise TransactionError(f"purchase {purchase_id} not found")
        purchase = load_json(Purchase, data, "purchase")
        if ctx.client_identity.msp_id not in (purchase.buyer_msp, purchase.dn_msp):
            raise TransactionError(f"purchase {purchase_id} is for its buyer's and its seller's MSP only")
        return purchase


def to_micro(amount: float) -> int:
    return round(amount * MICRO)


def from_micro(amount: int) -> str:
    return f"{amount // MICRO}.{amount % MICRO:06d}"


def find_prices(stub: ChaincodeStub, domain: str) -> PriceList | None:
    data = stub.get_state(stub.create_composite_key(PRICES_KEY, [domain]))
    return None if data is None else load_json(PriceList, data, "price list")


def _refusal(stub: ChaincodeStub, buyer_msp: str, user: str, document: dict) -> tuple[str, PriceList | None]:
    """Why the ledger refuses this purchase ("" if it does not), and the price list it was judged by."""
    domain = document["domain"]
    prices = find_prices(stub, domain)
    if prices is None:
        return f"{domain} has posted no price list", None
    if prices.dn_msp == buyer_msp:
        return f"{buyer_msp} reads its own records without buying them", prices
    if document["version"] != prices.version:
        return f"stale price list: version {document['version']}, the latest is {prices.version}", prices
    posted = prices.prices.get(f"{buyer_msp}/{user}")
    if posted is None:
        return f"{domain} has posted no price for {buyer_msp}/{user}", prices
    if to_micro(document["price"]) != posted:
        return f"price {document['price']} is not the posted {from_micro(posted)}", prices
    if document["quantity"] > prices.d_max:
        return f"quantity {document['quantity']} is over D_max {prices.d_max:g}", prices
    for record_id in document["record_ids"]:
        record = find_record(stub, record_id)
        if record is None or record.owner_msp != prices.dn_msp or record.erased:
            why = "not found" if record is None else ("erased" if record.erased else f"not a record of {domain}")
            return f"record {record_id} {why}", prices
    return "", prices


def purchase_allowing(stub: ChaincodeStub, record_id: str, msp_id: str, user: str | None, now) -> str | None:
    """The id of an unexpired purchase of the record by this buyer (the access decision's "grant"), if any."""
    with stub.get_state_by_partial_composite_key(RECORD_PURCHASES, [record_id, msp_id]) as entries:
        purchase_ids = [stub.split_composite_key(entry.key)[1][-1] for entry in entries]
    for purchase_id in purchase_ids:
        purchase = load_json(Purchase, stub.get_state(stub.create_composite_key(PURCHASE_KEY, [purchase_id])),
                             "purchase")
        if purchase.buyer_user == user and now < utc_time(purchase.expires):
            return purchase_id
    return None


def _balance(stub: ChaincodeStub, msp: str, user: str) -> Balance:
    data = stub.get_state(stub.create_composite_key(BALANCE_KEY, [msp, user]))
    return Balance(msp, user, 0) if data is None else load_json(Balance, data, "balance")


def _put_balance(stub: ChaincodeStub, balance: Balance) -> None:
    stub.put_state(stub.create_composite_key(BALANCE_KEY, [balance.msp, balance.user]), canonical_json(balance))


def _earnings(stub: ChaincodeStub, domain: str) -> Earnings:
    data = stub.get_state(stub.create_composite_key(EARNINGS_KEY, [domain]))
    return Earnings(domain, 0) if data is None else load_json(Earnings, data, "earnings")

