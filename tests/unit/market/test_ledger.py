"""The consortium's instance of the game and the price lists and purchases built from it (no network)."""

from __future__ import annotations

from datetime import datetime, timezone

import numpy as np
import pytest

from medfabric.consortium.topology import DEFAULT_TOPOLOGY, load_topology
from medfabric.errors import MedfabricError
from medfabric.market import admm
from medfabric.market.ledger import consortium_market, price_list, purchase_request


@pytest.fixture(scope="module")
def market():
    return consortium_market(load_topology(DEFAULT_TOPOLOGY), seed=3)


def test_the_consortiums_game_has_a_column_per_domain_and_a_row_per_user(market):
    assert [domain.id for domain in market.domains] == ["hospital-a", "hospital-b", "hospital-c"]
    assert market.buyers == ("HospitalAMSP/doctor", "HospitalAMSP/researcher", "HospitalBMSP/doctor",
                             "HospitalBMSP/researcher", "HospitalCMSP/doctor", "HospitalCMSP/researcher")
    assert (market.problem.users, market.problem.dns) == (6, 3)
    with pytest.raises(MedfabricError, match="no domain hospital-z"):
        market.column("hospital-z")


def test_a_domain_posts_its_own_column_for_the_other_domains_users(market):
    prices = admm.solve(market.problem, "competitive").prices

    posted = price_list(market, "hospital-b", prices, version=4)

    assert (posted["domain"], posted["version"], posted["d_max"]) == ("hospital-b", 4, 100.0)
    assert sorted(posted["prices"]) == ["HospitalAMSP/doctor", "HospitalAMSP/researcher", "HospitalCMSP/doctor",
                                        "HospitalCMSP/researcher"]
    assert posted["prices"]["HospitalAMSP/doctor"] == round(float(prices[0, 1]), 6)


class PostedPrices:
    def prices(self, domain, version=0):
        return {"version": 2, "prices": {"HospitalBMSP/doctor": 1_908_394}}


def test_a_purchase_takes_the_latest_posted_price_unless_told_otherwise():
    document = purchase_request(PostedPrices(), "hospital-a", "HospitalBMSP/doctor", ["rec-1"], 10)

    assert (document["price"], document["version"], document["quantity"]) == (1.908394, 2, 10)
    assert datetime.fromisoformat(document["expires"]) > datetime.now(timezone.utc)
    stale = purchase_request(PostedPrices(), "hospital-a", "HospitalBMSP/doctor", ["rec-1"], 1, price=1.5, version=1)
    assert (stale["price"], stale["version"]) == (1.5, 1)
    with pytest.raises(MedfabricError, match="hospital-a has posted no price for HospitalCMSP/doctor"):
        purchase_request(PostedPrices(), "hospital-a", "HospitalCMSP/doctor", ["rec-1"], 1)
    assert np.isclose(document["price"] * 10, 19.08394)
