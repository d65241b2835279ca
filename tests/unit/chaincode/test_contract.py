"""The router: function names, the default contract, GetMetadata, failures, events."""

from __future__ import annotations

import jsonschema
import pytest

from medfabric_chaincode.runtime import METADATA_FUNCTION, Contract, ContractRouter

from .probe_contract import GreeterContract, ProbeContract

# The parts of Fabric's contract-schema.json that GetMetadata output must satisfy.
CONTRACT_METADATA_SCHEMA = {
    "type": "object",
    "required": ["info", "contracts"],
    "properties": {
        "info": {"type": "object", "required": ["title", "version"]},
        "contracts": {
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "required": ["name", "transactions"],
                "properties": {
                    "transactions": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["name"],
                            "properties": {
                                "name": {"type": "string"},
                                "tag": {"type": "array", "items": {"type": "string"}},
                                "parameters": {
                                    "type": "array",
                                    "items": {"type": "object", "required": ["name", "schema"]},
                                },
                            },
                        },
                    }
                },
            },
        },
        "components": {"type": "object", "properties": {"schemas": {"type": "object"}}},
    },
}


@pytest.fixture
def peer(connect):
    return connect(ProbeContract, GreeterContract)


def test_qualified_names_reach_each_contract(peer):
    assert peer.invoke("probe:Echo", b"x").payload == b"x"
    assert peer.invoke("GreeterContract:Hello", "ward").payload == b"hello ward"


def test_bare_name_goes_to_the_first_contract(peer):
    assert peer.invoke("Echo", b"default").payload == b"default"
    assert peer.invoke("Hello", "ward").message == "contract 'probe' has no transaction 'Hello'"


def test_contract_name_defaults_to_the_class_name():
    assert (ProbeContract.name, GreeterContract.name) == ("probe", "GreeterContract")


@pytest.mark.parametrize(
    "function, message",
    [
        ("probe:Nope", "contract 'probe' has no transaction 'Nope'"),
        ("nope:Echo", "unknown contract 'nope'"),
        ("probe:", "no transaction function named"),
        ("", "no transaction function named"),
        ("probe:__init__", "contract 'probe' has no transaction '__init__'"),
    ],
)
def test_unknown_functions_are_refused_by_name(peer, function, message):
    result = peer.invoke(function)

    assert (result.kind, result.status, result.message) == ("COMPLETED", 500, message)


def test_get_metadata_describes_every_contract(peer):
    metadata = peer.invoke(METADATA_FUNCTION).json()

    jsonschema.validate(metadata, CONTRACT_METADATA_SCHEMA)
    assert set(metadata["contracts"]) == {"probe", "GreeterContract"}
    transactions = {tx["name"]: tx for tx in metadata["contracts"]["probe"]["transactions"]}
    assert transactions["Put"]["tag"] == ["submit"]
    assert transactions["Get"]["tag"] == ["evaluate"]
    assert transactions["Store"]["parameters"] == [
        {"name": "item", "schema": {"$ref": "#/components/schemas/Item"}},
        {"name": "copies", "schema": {"type": "integer"}},
    ]
    assert transactions["Store"]["returns"] == {"type": "array", "items": {"$ref": "#/components/schemas/Item"}}
    assert "returns" not in transactions["Put"]
    assert metadata["components"]["schemas"]["Item"]["required"] == ["name", "count", "tags"]


def test_transaction_error_becomes_status_500_with_one_line(peer):
    result = peer.invoke("Fail", "refusal")

    assert (result.status, result.message, result.payload) == (500, "refused: first line second line", b"")


def test_unexpected_exception_becomes_status_500_naming_it(peer):
    result = peer.invoke("Fail", "bug")

    assert (result.status, result.message) == (500, "Fail failed unexpectedly: ZeroDivisionError: division by zero")


def test_event_goes_in_the_completed_message(peer):
    result = peer.invoke("Emit", "Emitted", "false")

    assert result.status == 200
    assert (result.event.event_name, result.event.payload) == ("Emitted", b"payload")
    assert peer.state[("", "emitted")] == b"Emitted"


def test_event_and_writes_are_dropped_when_the_transaction_fails(peer):
    result = peer.invoke("Emit", "Emitted", "true")

    assert (result.status, result.message) == (500, "refused after setting the event")
    assert result.event is None
    assert ("", "emitted") not in peer.state


def test_empty_event_name_is_refused(peer):
    assert peer.invoke("Emit", "", "false").message == "the event name must not be empty"


def test_a_router_needs_distinct_contracts():
    class Twin(Contract):
        name = "probe"

    with pytest.raises(ValueError, match="two contracts are named 'probe'"):
        ContractRouter([ProbeContract, Twin])
    with pytest.raises(ValueError, match="at least one contract"):
        ContractRouter([])
