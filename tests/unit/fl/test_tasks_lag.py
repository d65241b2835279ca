"""The fl client asks again while this peer is a block behind what another peer committed, and only then."""

import json

import pytest

from medfabric.fl.tasks import FlTasks
from medfabric.gateway import GatewayError


class _Peer:
    """A contract that refuses with `refusal` for the first `behind` calls, then answers."""

    def __init__(self, refusal: str, behind: int):
        self.refusal, self.behind, self.calls = refusal, behind, 0

    def get_contract(self, chaincode_name, contract_name):
        return self

    def evaluate_transaction(self, name, *arguments):
        self.calls += 1
        if self.calls <= self.behind:
            raise GatewayError("evaluate call to endorser returned error: " + self.refusal)
        return json.dumps({"task_id": arguments[0], "domain": arguments[1]}).encode()


def test_a_key_issued_in_a_later_block_is_waited_for():
    peer = _Peer("chaincode response 500, task t1 has no key for hospital-b", behind=2)
    assert FlTasks(peer).task_key("t1", "hospital-b") == {"task_id": "t1", "domain": "hospital-b"}
    assert peer.calls == 3


def test_a_key_that_never_comes_is_refused_with_the_peers_words():
    peer = _Peer("chaincode response 500, task t1 has no key for hospital-b", behind=10 ** 6)
    with pytest.raises(GatewayError, match="task t1 has no key for hospital-b"):
        FlTasks(peer).task_key("t1", "hospital-b", wait=0.2)
    assert peer.calls >= 2


def test_other_refusals_are_not_asked_again():
    peer = _Peer("chaincode response 500, field 'domain' must match ^[a-z]", behind=1)
    with pytest.raises(GatewayError, match="field 'domain'"):
        FlTasks(peer).task_key("t1", "Hospital B")
    assert peer.calls == 1
