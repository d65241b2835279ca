"""The consent, access_log and anchor contracts seen from the client: typed calls, JSON in and out.

    >>> consent = Consent(gateway.get_network("public"))
    >>> decision, tx_id = consent.check_access("rec-1")
    >>> decision["decision"], decision["reason"]
    ('deny', 'no grant')
"""

from __future__ import annotations

import json
from typing import Any, Callable

from medfabric.consortium.topology import CHAINCODE_NAME
from medfabric.gateway import Network

PAGE_SIZE = 500


def all_pages(read_page: Callable[[str], dict[str, Any]], items: str) -> list[dict[str, Any]]:
    """Every item of a paged listing: `read_page(bookmark)` answers {items: [...], "bookmark": next or ""}."""
    found: list[dict[str, Any]] = []
    bookmark = ""
    while True:
        page = read_page(bookmark)
        found += page[items]
        bookmark = page.get("bookmark", "")
        if not bookmark or not page[items]:
            return found


class Consent:
    """Grants and access decisions on one channel."""

    def __init__(self, network: Network, chaincode_name: str = CHAINCODE_NAME):
        self._contract = network.get_contract(chaincode_name, "consent")

    def grant(self, grant: dict[str, Any]) -> dict[str, Any]:
        """Record a grant ({record_id, domain, grantee_msp, [grantee_user], purpose, expires}); returns it."""
        return json.loads(self._contract.submit_transaction("GrantAccess", json.dumps(grant)))

    def revoke(self, grant_id: str) -> dict[str, Any]:
        return json.loads(self._contract.submit_transaction("RevokeGrant", grant_id))

    def get_grant(self, grant_id: str) -> dict[str, Any]:
        """The grant as this peer has it (GatewayError "grant <id> not found" before it arrives)."""
        return json.loads(self._contract.evaluate_transaction("GetGrant", grant_id))

    def check_access(self, record_id: str, purpose: str = "treatment") -> tuple[dict[str, Any], str]:
        """The committed decision {decision, reason, grant_id, log_id} for the caller reading for `purpose` (a grant
        counts for its own purpose only), and its transaction id."""
        return self._decide("CheckAccess", record_id, "read", purpose)

    def emergency_access(self, record_id: str, reason: str) -> tuple[dict[str, Any], str]:
        """Break-glass: as check_access, for a doctor without a grant; logged and flagged."""
        return self._decide("EmergencyAccess", record_id, reason)

    def _decide(self, name: str, *arguments: str) -> tuple[dict[str, Any], str]:
        """Submit, wait for the commit (a data service reads the decision from the ledger), return the answer."""
        submitted = self._contract.submit_committed(name, arguments=arguments)
        return json.loads(submitted.result), submitted.transaction_id


class AccessLog:
    """The access log of one channel."""

    def __init__(self, network: Network, chaincode_name: str = CHAINCODE_NAME):
        self._contract = network.get_contract(chaincode_name, "access_log")

    def log(self, entry: dict[str, Any]) -> dict[str, Any]:
        """Log an access made off chain ({record_id, action, outcome, reason}) by the caller; returns the entry."""
        return json.loads(self._contract.submit_transaction("LogAccess", json.dumps(entry)))

    def entries(self, since: str = "", until: str = "", record_id: str = "") -> list[dict[str, Any]]:
        """Every entry of [since, until) ("" for no bound), of one record or all, in time order."""
        return all_pages(
            lambda bookmark: json.loads(self._contract.evaluate_transaction(
                "ListLog", since, until, record_id, str(PAGE_SIZE), bookmark)),
            "entries",
        )

    def digest(self, since: str, until: str) -> dict[str, Any]:
        """{channel, since, until, count, merkle_root} of [since, until)."""
        return json.loads(self._contract.evaluate_transaction("LogDigest", since, until))


class Anchors:
    """Anchors of the domains' local logs, on the public channel."""

    def __init__(self, network: Network, chaincode_name: str = CHAINCODE_NAME):
        self._contract = network.get_contract(chaincode_name, "anchor")

    def anchor(self, anchor: dict[str, Any]) -> dict[str, Any]:
        """Record {domain, channel, since, until, count, merkle_root}; returns the anchor."""
        return json.loads(self._contract.submit_transaction("AnchorLogRoot", json.dumps(anchor)))

    def of_domain(self, domain_id: str) -> list[dict[str, Any]]:
        """Every anchor of a domain, in period order."""
        return all_pages(
            lambda bookmark: json.loads(self._contract.evaluate_transaction(
                "GetAnchors", domain_id, str(PAGE_SIZE), bookmark)),
            "anchors",
        )
