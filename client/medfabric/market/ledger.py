"""The market on the public channel: the consortium's instance of the game, price lists posted by each domain's
admin, balances, and purchases that open a record for the purpose "purchase" (contract: market).

The consortium's instance: the duty nodes are the topology's domains, in order; the data users are every user of
every domain ("<MSP>/<user>", sorted), with l and lambda drawn as the spec's draw from a seed. Each domain posts its
own column of the solved prices, for the other domains' users (its own read without buying).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np

from medfabric.consortium.topology import CHAINCODE_NAME, Domain, Topology
from medfabric.errors import MedfabricError
from medfabric.gateway import GatewayError, Network
from medfabric.market import admm
from medfabric.market.problem import DEFAULT_COST, DEFAULT_D_MAX, DEFAULT_P_HAT, MarketProblem, random_problem

PRICE_DECIMALS = 6  # the contract keeps money in micro-units
MICRO = 10**PRICE_DECIMALS
DEFAULT_VALIDITY = timedelta(days=30)


class MarketLedger:
    """The market contract on one channel: typed calls, JSON in and out."""

    def __init__(self, network: Network, chaincode_name: str = CHAINCODE_NAME):
        self._contract = network.get_contract(chaincode_name, "market")

    def post_prices(self, price_list: dict[str, Any]) -> dict[str, Any]:
        return json.loads(self._contract.submit_transaction("PostPrices", json.dumps(price_list)))

    def prices(self, domain: str, version: int = 0) -> dict[str, Any]:
        return json.loads(self._contract.evaluate_transaction("GetPrices", domain, str(version)))

    def credit(self, user: str, amount: float) -> dict[str, Any]:
        return json.loads(self._contract.submit_transaction("Credit", json.dumps({"user": user, "amount": amount})))

    def balance(self, user: str) -> dict[str, Any]:
        return json.loads(self._contract.evaluate_transaction("GetBalance", user))

    def earnings(self, domain: str) -> dict[str, Any]:
        return json.loads(self._contract.evaluate_transaction("GetEarnings", domain))

    def buy(self, purchase: dict[str, Any]) -> tuple[dict[str, Any], str]:
        """The committed answer {accepted, reason, purchase_id, cost, log_id} and its transaction id."""
        submitted = self._contract.submit_committed("Buy", arguments=(json.dumps(purchase),))
        return json.loads(submitted.result), submitted.transaction_id

    def purchase(self, purchase_id: str) -> dict[str, Any]:
        return json.loads(self._contract.evaluate_transaction("GetPurchase", purchase_id))


def buyer_key(domain: Domain, user: str) -> str:
    return f"{domain.msp_id}/{user}"


@dataclass(frozen=True)
class ConsortiumMarket:
    """The game of this consortium: a column per domain, a row per buyer."""

    domains: tuple[Domain, ...]
    buyers: tuple[str, ...]
    problem: MarketProblem

    def column(self, domain_id: str) -> int:
        for index, domain in enumerate(self.domains):
            if domain.id == domain_id:
                return index
        raise MedfabricError(f"no domain {domain_id} in the topology")


def consortium_market(topology: Topology, seed: int = 0, p_hat: float = DEFAULT_P_HAT, cost: float = DEFAULT_COST,
                      d_max: float = DEFAULT_D_MAX) -> ConsortiumMarket:
    domains = tuple(topology.domains)
    buyers = tuple(sorted(buyer_key(domain, user) for domain in domains for user in domain.users))
    if not buyers:
        raise MedfabricError("the topology's domains have no users to sell to")
    drawn = random_problem(len(buyers), len(domains), seed, p_hat=p_hat, cost=cost, d_max=d_max)
    return ConsortiumMarket(domains, buyers, drawn)


def price_list(market: ConsortiumMarket, domain_id: str, prices: np.ndarray, version: int) -> dict[str, Any]:
    """Domain `domain_id`'s column of `prices` for the other domains' buyers, as PostPrices takes it."""
    column = market.column(domain_id)
    own = f"{market.domains[column].msp_id}/"
    table = {buyer: round(float(prices[row, column]), PRICE_DECIMALS)
             for row, buyer in enumerate(market.buyers) if not buyer.startswith(own)}
    return {"domain": domain_id, "version": version, "d_max": market.problem.d_max, "prices": table}


def post(ledger: MarketLedger, market: ConsortiumMarket, domain_id: str, scenario: str) -> dict[str, Any]:
    """Solve `scenario` for the consortium and post the domain's column as its next price list version."""
    result = admm.solve(market.problem, scenario)
    if not result.converged:
        raise MedfabricError(f"the {scenario} prices did not converge in {result.iterations} iterations")
    try:
        version = ledger.prices(domain_id)["version"] + 1
    except GatewayError as error:
        if "has posted no price list" not in str(error):
            raise
        version = 1
    return ledger.post_prices(price_list(market, domain_id, result.prices, version))


def purchase_request(ledger: MarketLedger, seller: str, buyer: str, record_ids: list[str], quantity: float,
                     price: float | None = None, version: int | None = None,
                     validity: timedelta = DEFAULT_VALIDITY) -> dict[str, Any]:
    """A Buy document at the seller's latest posted price for `buyer` (or the price and version given)."""
    if version is None or price is None:
        posted = ledger.prices(seller)
        version = posted["version"] if version is None else version
        if price is None:
            if buyer not in posted["prices"]:
                raise MedfabricError(f"{seller} has posted no price for {buyer}")
            price = posted["prices"][buyer] / MICRO
    expires = datetime.now(timezone.utc) + validity
    return {"domain": seller, "record_ids": record_ids, "quantity": quantity, "price": price, "version": version,
            "expires": expires.isoformat()}


def money(micro: int) -> float:
    return micro / MICRO
