"""Arguments from annotations, metadata schemas, results; unsupported signatures refused at registration."""

from __future__ import annotations

import re
from typing import Any, Optional

import pytest

from medfabric_chaincode.runtime import Contract, ContractRouter, TransactionError, load_json, transaction
from medfabric_chaincode.runtime.conversion import convert_argument, json_schema, result_bytes, type_spec

from .probe_contract import Item


def convert(annotation, raw: bytes, name: str = "arg"):
    return convert_argument(type_spec(annotation), raw, name)


@pytest.mark.parametrize(
    "annotation, raw, value",
    [
        (str, "héllo {not json".encode(), "héllo {not json"),
        (bytes, b"\xff\x00raw", b"\xff\x00raw"),
        (int, b"42", 42),
        (int, b"-7", -7),
        (float, b"2", 2.0),
        (float, b"2.5", 2.5),
        (bool, b"true", True),
        (Any, b'{"any": [1, "x", null]}', {"any": [1, "x", None]}),
        (list[int], b"[1,2,3]", [1, 2, 3]),
        (list, b'[1,"a"]', [1, "a"]),
        (dict[str, float], b'{"a":1,"b":0.5}', {"a": 1.0, "b": 0.5}),
        (dict, b'{"a":[1]}', {"a": [1]}),
        (int | None, b"null", None),
        (Optional[int], b"5", 5),  # the older spelling is supported too
        (str | None, b'"quoted"', "quoted"),
        (list[list[str]], b'[["a"],[]]', [["a"], []]),
    ],
)
def test_supported_arguments(annotation, raw, value):
    converted = convert(annotation, raw)

    assert converted == value
    assert type(converted) is type(value)


def test_dataclass_argument():
    item = convert(Item, b'{"name":"gauze","count":3,"tags":["sterile"]}')

    assert item == Item(name="gauze", count=3, tags=["sterile"], note=None)


@pytest.mark.parametrize(
    "annotation, raw, message",
    [
        (int, b"1.5", "invalid value for 'arg': expected an integer"),
        (int, b"true", "invalid value for 'arg': expected an integer"),
        (int, b'"5"', "invalid value for 'arg': expected an integer"),
        (float, b"false", "invalid value for 'arg': expected a finite number"),
        (float, b"1e999", "invalid value for 'arg': expected a finite number"),
        (bool, b"1", "invalid value for 'arg': expected true or false"),
        (list[int], b'[1,"2"]', "invalid value for 'arg[1]': expected an integer"),
        (list[int], b'{"0":1}', "invalid value for 'arg': expected an array"),
        (dict[str, int], b'{"a":[]}', "invalid value for 'arg.a': expected an integer"),
        (str | None, b"3", "invalid value for 'arg': expected a string"),
        (Item, b"[]", "invalid value for 'arg': expected an object"),
        (Item, b'{"name":"x","count":"3","tags":[]}', "invalid value for 'arg.count': expected an integer"),
        (Item, b'{"name":"x","count":3,"tags":[7]}', "invalid value for 'arg.tags[0]': expected a string"),
        (Item, b'{"name":"x","tags":[]}', "invalid value for 'arg.count': missing"),
        (Item, b'{"name":"x","count":3,"tags":[],"colour":"red"}', "invalid value for 'arg': unknown field 'colour'"),
        (int, b"NaN", "invalid value for 'arg': not valid JSON: NaN is not a JSON number"),
        (dict, b'{"a":1,"a":2}', "invalid value for 'arg': not valid JSON: key 'a' appears twice"),
        (int, b"\xff", "invalid value for 'arg': not UTF-8 text"),
    ],
)
def test_invalid_arguments_name_the_parameter(annotation, raw, message):
    with pytest.raises(TransactionError) as raised:
        convert(annotation, raw)

    assert str(raised.value) == message


def test_invalid_json_names_the_parameter():
    with pytest.raises(TransactionError, match="^invalid value for 'item': not valid JSON: Expecting"):
        convert(Item, b"{", "item")


@pytest.mark.parametrize("raw, complaint", [
    (b"[" * 5000 + b"]" * 5000, "nested deeper than 64 levels"),  # found by the fuzz: a RecursionError before
    (b'{"a":' * 65 + b"1" + b"}" * 65, "nested deeper than 64 levels"),
    (b'{"note": "a\\ud800b"}', "a string holds a lone surrogate (\\ud800): not valid Unicode"),
    (b'{"\\udfff": 1}', "lone surrogate (\\udfff)"),  # found by the fuzz: UnicodeEncodeError on the way out
])
def test_documents_too_deep_or_not_unicode_are_refused_naming_the_parameter(raw, complaint):
    with pytest.raises(TransactionError, match=f"invalid value for 'doc': not valid JSON: .*{re.escape(complaint)}"):
        convert_argument(type_spec(dict[str, Any]), raw, "doc")


def test_a_document_64_levels_deep_is_taken():
    raw = b'{"a":' * 63 + b"[1]" + b"}" * 63
    assert convert_argument(type_spec(dict[str, Any]), raw, "doc")["a"]["a"]


def test_nested_error_path_through_the_server(peer):
    result = peer.invoke("Store", '{"name":"x","count":"lots","tags":[]}')

    assert (result.status, result.message) == (500, "invalid value for 'item.count': expected an integer")


def test_arguments_through_the_server(peer):
    assert peer.invoke("Store", '{"name":"x","count":1,"tags":["a"]}', "2").json() == [
        {"count": 1, "name": "x", "note": None, "tags": ["a"]}
    ] * 2
    assert peer.invoke("Scale", "1.5", '{"a":2,"b":10}', "null").json() == {"a": 3.0, "b": 15.0}
    assert peer.invoke("Scale", "2", '{"a":2,"b":10}', "5").json() == {"a": 4.0}


@pytest.mark.parametrize("args, expected", [((), "1 to 2"), (("{}", "1", "extra"), "1 to 2")])
def test_argument_count_is_checked(peer, args, expected):
    result = peer.invoke("Store", *args)

    assert (result.status, result.message) == (500, f"Store takes {expected} argument(s), not {len(args)}")


def test_load_json_reads_stored_dataclasses():
    assert load_json(list[Item], b'[{"name":"a","count":1,"tags":[],"note":"n"}]') == [Item("a", 1, [], "n")]


@pytest.mark.parametrize(
    "value, payload",
    [
        (None, b""),
        (b"\x00raw", b"\x00raw"),
        ("tëxt", "tëxt".encode()),
        (12, b"12"),
        (True, b"true"),
        ({"b": 1, "a": [Item("é", 1, [])]}, '{"a":[{"count":1,"name":"é","note":null,"tags":[]}],"b":1}'.encode()),
    ],
)
def test_result_bytes(value, payload):
    assert result_bytes(value) == payload


def test_schema_of_a_dataclass_goes_to_components():
    components = {}

    schema = json_schema(type_spec(list[Item]), components)

    assert schema == {"type": "array", "items": {"$ref": "#/components/schemas/Item"}}
    assert components == {
        "Item": {
            "$id": "Item",
            "type": "object",
            "properties": {
                "name": {"type": "string"},
                "count": {"type": "integer"},
                "tags": {"type": "array", "items": {"type": "string"}},
                "note": {"anyOf": [{"type": "string"}, {"type": "null"}]},
            },
            "required": ["name", "count", "tags"],
            "additionalProperties": False,
        }
    }


def _contract(function):
    return type("Odd", (Contract,), {"Tx": transaction(function)})


def _taking(annotation):
    def tx(self, ctx, value):
        pass

    tx.__annotations__ = {"value": annotation}
    return tx


@pytest.mark.parametrize(
    "annotation, complaint",
    [
        (set[int], "unsupported annotation set[int]"),
        (tuple[int, int], "unsupported annotation tuple[int, int]"),
        (dict[int, str], "unsupported annotation dict[int, str]"),
        (list[bytes], "unsupported annotation <class 'bytes'>"),
        (int | str, "unsupported annotation int | str"),
        (complex, "unsupported annotation <class 'complex'>"),
    ],
)
def test_unsupported_annotations_are_refused_at_registration(annotation, complaint):
    with pytest.raises(TypeError) as raised:
        ContractRouter([_contract(_taking(annotation))])

    assert str(raised.value) == f"Odd.Tx: parameter 'value': {complaint}"


def _unannotated(self, ctx, value):
    pass


def _keyword_only(self, ctx, *, value: int):
    pass


def _no_context(self):
    pass


def _set_result(self, ctx) -> set[str]:
    return set()


@pytest.mark.parametrize(
    "signature, complaint",
    [
        (_unannotated, "Odd.Tx: parameter 'value' needs an annotation"),
        (_keyword_only, "Odd.Tx: parameter 'value' must be positional"),
        (_no_context, "Odd.Tx must take (self, ctx, ...)"),
        (_set_result, "Odd.Tx: return value: unsupported annotation set[str]"),
    ],
)
def test_unservable_signatures_are_refused_at_registration(signature, complaint):
    with pytest.raises(TypeError) as raised:
        ContractRouter([_contract(signature)])

    assert str(raised.value) == complaint
