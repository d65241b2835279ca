"""The Node baseline chaincode (caliper/baseline) against our Python emr_index: same inputs, same ledger.

The Caliper benchmarks compare the Python chaincode with a baseline on Hyperledger's own Node
runtime (fabric-shim / fabric-contract-api 2.5.8). That comparison means something only if both
do the same work, so here the same invocations go through the same FakePeer
(tests/unit/chaincode/fakepeer.py) to the baseline, run as a chaincode server as
test_official_chaincode_shim.py runs its probe, and to our runtime serving the real contracts.
Both must write the same state keys and values, emit the same event, and answer the same
status, payload and message: valid entries, invalid entries of many kinds, malformed JSON, a
second put of the same id, reads, callers with unusual certificates. Two building blocks are
compared on larger corpora directly: the time rule (CPython's datetime.fromisoformat) and the
strict JSON reader (CPython's json with the runtime's hooks).

Where the contract API answers before the contract runs, the difference is pinned in a
`test_difference_*` test. Needs node (and npm once): `npm ci` runs in caliper/baseline when its
node_modules is missing; the module is skipped only when node is absent or that install fails.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import shutil
import subprocess
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.name import _ASN1Type
from cryptography.x509.oid import NameOID

from medfabric_chaincode.contracts import ALL_CONTRACTS
from medfabric_chaincode.contracts.common import is_zoned_time
from medfabric_chaincode.runtime import ChaincodeServer, ContractRouter, ServerConfig, parse_json

from ..unit.chaincode import pki
from ..unit.chaincode.actors import caller, researcher
from ..unit.chaincode.fakepeer import DEFAULT_TIMESTAMP, FakePeer, TxResult
from ..unit.chaincode.test_emr_index import ENTRY
from . import test_official_chaincode_shim as shim_conformance
from .test_official_chaincode_shim import _connect, _event

pytestmark = pytest.mark.timeout(120)

BASELINE_DIR = Path(__file__).parents[2] / "caliper" / "baseline"
CHAINCODE_ID = "medfabric-node_0.1.0:0123abcd"
PINNED = {"fabric-shim": "2.5.8", "fabric-contract-api": "2.5.8", "class-transformer": "0.4.0"}
LOCAL_CHANNEL = "hospital-a-local"
GRANT = {"grantee": "HospitalBMSP", "expires": "2030-01-01T00:00:00+01:00"}


# The two chaincodes ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def baseline_installed() -> None:
    reason = shim_conformance._install(BASELINE_DIR)
    if reason:
        pytest.skip(reason)


@pytest.fixture(scope="module")
def baseline_server(baseline_installed, tmp_path_factory) -> Iterator[shim_conformance.NodeChaincode]:
    server = shim_conformance.NodeChaincode(tmp_path_factory.mktemp("node-baseline") / "server.log", BASELINE_DIR,
                                            CHAINCODE_ID)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def contracts_port() -> Iterator[int]:
    """Our runtime serving every MedFabric contract, as deployed."""
    server = ChaincodeServer(
        ServerConfig(address="127.0.0.1:0", chaincode_id=CHAINCODE_ID, tls=None), ContractRouter(ALL_CONTRACTS)
    )
    port = server.start()
    yield port
    server.stop(0)


class Pair:
    """A FakePeer on each chaincode; every invocation goes to both with the same transaction id."""

    _labels = itertools.count()

    def __init__(self, node: FakePeer, ours: FakePeer):
        self.node, self.ours = node, ours

    def invoke(self, function: str, *args: str | bytes, **options) -> tuple[TxResult, TxResult]:
        nonce = f"pair-{next(self._labels)}".encode().ljust(24, b"-")
        return tuple(peer.invoke(function, *args, nonce=nonce, **options) for peer in (self.node, self.ours))

    def same(self, function: str, *args: str | bytes, **options) -> tuple:
        """Invoke both; their answers and writes must be identical. Returns the answer."""
        node, ours = (_answer(result) for result in self.invoke(function, *args, **options))
        assert node == ours
        assert self.node.state == self.ours.state
        return ours


def _answer(result: TxResult) -> tuple:
    return result.kind, result.status, result.message, result.payload, _event(result), result.writes


@pytest.fixture(scope="module")
def user() -> pki.Credential:
    """A Fabric CA style user of hospital-a (pki.USER_NAME, several OUs), allowed to index hospital-a's records."""
    ca = pki.issue(pki.name((NameOID.ORGANIZATION_NAME, "hospital-a"), (NameOID.COMMON_NAME, "ca")), ca=True)
    return pki.issue(pki.USER_NAME, ca, attributes={"role": "doctor", "hf.EnrollmentID": "doctor1",
                                                     "medfabric.domain": "hospital-a"})


@pytest.fixture
def pair(baseline_server, contracts_port, user) -> Iterator[Pair]:
    node, ours = _connect(baseline_server.port, user), _connect(contracts_port, user)
    yield Pair(node, ours)
    node.close()
    ours.close()
    assert baseline_server.process.poll() is None, f"the baseline chaincode server died:\n{baseline_server.log()}"


def _put(document: object) -> tuple[str, str]:
    return "emr_index:PutRecord", json.dumps(document)


def entry(**changes) -> dict:
    return {**ENTRY, **changes}


def without(name: str) -> dict:
    return {key: value for key, value in ENTRY.items() if key != name}


# The packages ------------------------------------------------------------------------------------


def test_the_pinned_packages_are_installed(baseline_installed):
    installed = {
        package: json.loads((BASELINE_DIR / "node_modules" / package / "package.json").read_text())["version"]
        for package in PINNED
    }
    assert installed == PINNED


# Same inputs, same ledger ------------------------------------------------------------------------


def test_a_valid_put_writes_the_same_record_log_and_event(pair):
    status, message, payload, event, writes = pair.same(*_put(entry(grants=[GRANT])))[1:]
    assert (status, message) == (200, "")
    record = json.loads(payload)
    assert (record["record_id"], record["owner_msp"], record["version"]) == ("rec-001", "HospitalAMSP", 1)
    assert {key.split("\x00")[1] for _, key in writes} == {"emr", "emr~patient", "log", "log~record"}
    assert event[0] == "RecordPut"


def test_a_second_put_of_the_same_id_is_refused_alike(pair):
    pair.same(*_put(ENTRY))
    answer = pair.same(*_put(entry(size=1)))
    assert answer[1:4] == (500, "record rec-001 already exists", b"")


def test_get_record_answers_alike(pair):
    pair.same(*_put(entry(grants=[GRANT, {"grantee": "HospitalCMSP:doctor", "expires": "2031-02-03T04:05:06Z"}])))
    assert pair.same("emr_index:GetRecord", "rec-001")[1] == 200
    for record_id, message in [
        ("rec-404", "record rec-404 not found"),
        ("rec 1", "invalid argument: 'record_id' must be 1-128 characters of A-Z a-z 0-9 . _ : -"),
        ("", "invalid argument: 'record_id' must be 1-128 characters of A-Z a-z 0-9 . _ : -"),
        (b"rec-\xff", "invalid value for 'record_id': not UTF-8 text"),
    ]:
        assert pair.same("emr_index:GetRecord", record_id)[1:3] == (500, message)
    assert pair.same("GetRecord", "rec-001")[1] == 200  # emr_index is the default contract on both


def test_a_bare_function_name_goes_to_emr_index_on_both(pair):
    assert pair.same("PutRecord", json.dumps(ENTRY))[1] == 200


SPECIAL_NAME = x509.Name([
    x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.COUNTRY_NAME, "DE")]),
    x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.LOCALITY_NAME, "Köln")]),
    x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.STREET_ADDRESS, "Ring 1; Tor <2>")]),
    x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.POSTAL_CODE, "50667", _type=_ASN1Type.IA5String)]),
    x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.ORGANIZATION_NAME, " #hospital-a, \"east\" ")]),
    x509.RelativeDistinguishedName([  # one RDN of two values
        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "client"),
        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "cardio+logy"),
    ]),
    x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.COMMON_NAME, "first")]),
    x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.COMMON_NAME, "Dr. Müller\\Schmidt")]),
    x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.SERIAL_NUMBER, "42")]),
    x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.EMAIL_ADDRESS, "dr@example.org")]),  # not in the id
])  # No BMPString: fabric-shim's own ClientIdentity (@fidm/x509) fails on one before any contract code runs.


def _credential(subject: x509.Name, attributes: dict | bytes | None) -> bytes:
    ca = pki.issue(pki.name((NameOID.ORGANIZATION_NAME, "hospital-a"), (NameOID.COMMON_NAME, "ca, \"A\"")), ca=True)
    return pki.serialized_identity("HospitalAMSP", pki.issue(subject, ca, attributes=attributes))


CALLERS = {  # the creator, and the medfabric.domain its certificate says (None: none)
    "a-doctor": (caller("HospitalAMSP"), "hospital-a"),
    "b-researcher": (researcher("HospitalBMSP"), "hospital-b"),
    "special-names": (_credential(SPECIAL_NAME, {"medfabric.role": "doctor", "medfabric.domain": "hospital-a"}),
                      "hospital-a"),
    "domain-among-odd-attributes": (_credential(pki.USER_NAME, {"medfabric.role": "", "medfabric.domain": "hospital-a",
                                                                "hf.EnrollmentID": "x"}), "hospital-a"),
    "no-domain-attribute": (caller("HospitalAMSP", "nurse", role=None, domain=None), None),
    "no-attribute-extension": (_credential(pki.USER_NAME, None), None),
    "empty-attribute": (_credential(pki.USER_NAME, {"medfabric.role": "", "hf.EnrollmentID": "x"}), None),
    "attrs-empty-list": (_credential(pki.USER_NAME, b'{"attrs": []}'), None),
}


@pytest.mark.parametrize("channel", ["public", LOCAL_CHANNEL])
@pytest.mark.parametrize("who", CALLERS)
def test_the_log_entry_names_the_caller_alike(pair, who, channel):
    creator, domain = CALLERS[who]
    answer = pair.same(*_put(entry(domain=domain or "hospital-a")), creator=creator, channel=channel)
    if domain is None:
        assert answer[1:3] == (500, "only an identity of domain hospital-a may index its records: the caller's "
                                    "certificate has no medfabric.domain")
    else:
        assert answer[1:3] == (200, "")


def test_a_record_of_another_domain_is_refused_alike(pair):
    creator, _ = CALLERS["b-researcher"]
    answer = pair.same(*_put(ENTRY), creator=creator)
    assert answer[1:4] == (500, "only an identity of domain hospital-a (HospitalAMSP) may index its records: the "
                                "caller is of HospitalBMSP", b"")


def test_a_member_claiming_another_domain_in_its_certificates_is_refused_alike(pair):
    forged = caller("HospitalBMSP", domain="hospital-a")  # B's CA can write any attribute
    answer = pair.same(*_put(ENTRY), creator=forged)
    assert answer[1:4] == (500, "only an identity of domain hospital-a (HospitalAMSP) may index its records: the "
                                "caller is of HospitalBMSP", b"")


@pytest.mark.parametrize("micros", [0, 1, 999, 999_999])
def test_the_timestamp_is_truncated_to_milliseconds_alike(pair, micros):
    moment = DEFAULT_TIMESTAMP.replace(microsecond=0) + timedelta(microseconds=micros)
    assert pair.same(*_put(ENTRY), timestamp=moment)[1] == 200


ID_RULE = "must be 1-128 characters of A-Z a-z 0-9 . _ : -"

ENTRIES = {  # valid ones first: both must store them identically
    "huge size": (entry(size=10**30), 200),
    "zero size written -0": (json.dumps(ENTRY).replace('"size": 1234', '"size": -0'), 200),
    "reordered and spaced": (json.dumps(dict(reversed(list(entry(grants=[GRANT]).items()))), indent=3), 200),
    "100 grants": (entry(grants=[GRANT] * 100), 200),
    "grant times fromisoformat accepts": (entry(grants=[
        {"grantee": "HospitalBMSP", "expires": expires}
        for expires in ["2030-01-01T00Z", "20300101T000000+0100", "2030-W01-1 12:00-05:30", "2030-01-01T12:00:00,5Z"]
    ]), 200),
    "non-ASCII location": (entry(location="medfabric://hospital-a/é"), 500),
    "record id too long": (entry(record_id="r" * 129), 500),
    "record id a number": (entry(record_id=7), 500),
    "record id with a newline": (entry(record_id="rec-1\n"), 500),
    "patient name": (entry(patient="John Doe"), 500),
    "domain upper case": (entry(domain="Hospital-A"), 500),
    "resource type unknown": (entry(resource_type="Bundle"), 500),
    "hash upper case": (entry(ciphertext_sha256="A" * 64), 500),
    "hash short": (entry(plaintext_sha256="a" * 63), 500),
    "size negative": (entry(size=-1), 500),
    "size float": (entry(size=1.0), 500),
    "size exponent": (json.dumps(ENTRY).replace('"size": 1234', '"size": 1e3'), 500),
    "size true": (entry(size=True), 500),
    "size string": (entry(size="12"), 500),
    "size null": (entry(size=None), 500),
    "location without scheme": (entry(location="no-scheme"), 500),
    "location with a space": (entry(location="https://a b"), 500),
    "location too long": (entry(location="https://" + "a" * 1017), 500),
    "grants an object": (entry(grants={}), 500),
    "grants null": (entry(grants=None), 500),
    "101 grants": (entry(grants=[GRANT] * 101), 500),
    "grant a string": (entry(grants=["HospitalBMSP"]), 500),
    "grant without expires": (entry(grants=[GRANT, {"grantee": "x"}]), 500),
    "grant naive time": (entry(grants=[{**GRANT, "expires": "2030-01-01T00:00:00"}]), 500),
    "grant offset of a day": (entry(grants=[{**GRANT, "expires": "2030-01-01T00:00+24:00"}]), 500),
    "grant past year 9999 in UTC": (entry(grants=[{**GRANT, "expires": "9999-12-31T23:59-01:00"}]), 500),
    "grant extra field": (entry(grants=[{**GRANT, "role": "reader"}]), 500),
    "missing size": (without("size"), 500),
    "missing everything": ({}, 500),
    "owner given": (entry(owner_msp="HospitalBMSP"), 500),
    "unknown fields sorted by code point": (entry(**{"é": 1, "z": 2, "A": 3, "\U0001f600": 4, "\uffff": 5}), 500),
    "unknown field with spaces": (entry(**{" two\n lines ": 1}), 500),
    "a list": ([ENTRY], 500),
    "a string": ("rec-001", 500),
}


@pytest.mark.parametrize("name", ENTRIES)
def test_entries_are_stored_or_refused_alike(pair, name):
    document, status = ENTRIES[name]
    text = document if isinstance(document, str) and document.startswith("{") else json.dumps(document)
    answer = pair.same("emr_index:PutRecord", text)
    assert answer[1] == status, answer[2]


MALFORMED = [
    "",
    "   ",
    "{",
    "[",
    "{\"a\" 1}",
    "{\"a\": 1 \"b\": 2}",
    "{\"a\": 1,}",
    "[1, 2,]",
    "{\"a\": [1 2]}",
    "{\"a\": tru}",
    "{\"record_id\": \"x\"} extra",
    "{\"a\": \"unterminated",
    "{\"a\": \"tab\there\"}",
    "{\"a\": \"\\x\"}",
    "{\"a\": \"\\u12\"}",
    "{\"a\": \"\\ud800\\u12g4\"}",
    "{\"a\": NaN}",
    "{\"a\": Infinity}",
    "{\"a\": -Infinity}",
    "{\"a\": -}",
    "{\"a\": 01}",
    "{\"a\": 1.}",
    "\ufeff{}",
    "{\"é\": \"ü\",\n \"ö\": \n\n  }",
    "{\"size\": 1, \"size\": 2}",
    "{\"grants\": [{\"grantee\": \"a\", \"grantee\": \"b\"}], \"x\": }",
    "{\"size\": " + "9" * 4301 + "}",
    "{\"size\": -" + "9" * 4300 + "}",
]


@pytest.mark.parametrize("text", MALFORMED)
def test_malformed_json_is_refused_alike(pair, text):
    answer = pair.same("emr_index:PutRecord", text)
    assert answer[1] == 500 and answer[2].startswith("invalid record: ")


def test_a_record_argument_that_is_not_utf8_is_refused_alike(pair):
    answer = pair.same("emr_index:PutRecord", b'{"record_id": "\xff"}')
    assert answer[2] == "invalid value for 'record_json': not UTF-8 text"


def test_unknown_transactions_are_refused_alike(pair):
    assert pair.same("emr_index:EraseRecords")[2] == "contract 'emr_index' has no transaction 'EraseRecords'"
    assert pair.same("emr_index:")[2] == "no transaction function named"


# The building blocks on larger corpora -----------------------------------------------------------


def _node(script: str, cases: list) -> list:
    """Runs `script` with node; it reads the cases as JSON on stdin and writes its answers as JSON."""
    done = subprocess.run(
        [shutil.which("node") or "node", "-e", script],
        input=json.dumps(cases),
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "BASELINE_LIB": str(BASELINE_DIR / "lib")},
        check=True,
    )
    return json.loads(done.stdout)


def _mutations(seeds: list[str], alphabet: str, count: int, seed: int) -> list[str]:
    rnd = random.Random(seed)
    corpus = set(seeds)
    while len(corpus) < count:
        chars = list(rnd.choice(seeds))
        for _ in range(rnd.randint(1, 3)):
            where = rnd.randrange(len(chars) + 1)
            kind = rnd.random()
            if kind < 0.4 and where < len(chars):
                chars[where] = rnd.choice(alphabet)
            elif kind < 0.7:
                chars.insert(where, rnd.choice(alphabet))
            elif where < len(chars):
                del chars[where]
        corpus.add("".join(chars))
    return sorted(corpus)


TIMES = [
    "2030-01-01T00:00:00Z", "2030-01-01T00Z", "2030-01-01T0000+01", "20300101T000000Z", "2030-W01-1T00:00Z",
    "2030W011T00:00Z", "2030W01T10:00Z", "2030-01-01T12:00:00:5Z", "2030-01-01T12:00:00.Z",
    "2030-01-01T12:00:00.1234567Z", "2030-01-01T12:00:00,5+01:00", "2030-01-01 12:00+01:00",
    "2030-01-01é12:00+01:00", "2030-01-01\ud800T12:00Z", "2030-01-01T12:00+23:59:59.999999", "0001-01-01T00:00+01:00",
    "9999-12-31T23:59-01:00", "2030-01-01T12:00Zx", "2030-01-01T12+0100", "2030-01-01T24:00Z", "2024-02-29T00:00Z",
    "2026-W53-1T00Z", "2020-W53-7T00Z", "0000-W52-1T00Z", "9999-W52-6T00Z", "2030-01-01T1200005+01:00",
    "2030-01-01T12:00+00:00:00.5", "0001-01-01T00:00:00-00:00:00.000001", "0001-01-01T00:00:00+00:00:01",
]
TIME_SCRIPT = """
const {isZonedTime} = require(process.env.BASELINE_LIB + '/isotime.js');
const cases = JSON.parse(require('fs').readFileSync(0, 'utf8'));
process.stdout.write(JSON.stringify(cases.map(isZonedTime)));
"""


def test_the_time_rule_accepts_what_python_accepts():
    """A grant's `expires` is stored as given: the baseline must accept exactly the texts Python accepts."""
    if shutil.which("node") is None:
        pytest.skip("node is not installed")
    corpus = _mutations(TIMES, "0123456789-:+ZTW.,é\u2603\ud800 z", 4000, seed=11)
    expected = [is_zoned_time(text) for text in corpus]
    differences = [(text, want) for text, want, got in zip(corpus, expected, _node(TIME_SCRIPT, corpus), strict=True)
                   if want != got]
    assert differences == []
    assert 150 < sum(expected) < len(corpus)  # the corpus has both kinds


DOCUMENTS = [
    '{"a": [1, -0, 2.5e-3, 10000000000000000000001, true, false, null], "b": {"c": "\\u00e9\\ud83d\\ude00"}}',
    '[{"k": "v\\n\\t\\"\\\\\\/"}, [], {}, "", 0]',
    '  {"size": 1, "grants": [{"grantee": "x", "expires": "2030-01-01T00Z"}]}  ',
]
JSON_SCRIPT = """
const {parse, JsonError} = require(process.env.BASELINE_LIB + '/json.js');
const tag = (v) => v === null ? ['null'] : typeof v === 'boolean' ? ['bool', v] : typeof v === 'bigint'
    ? ['int', v.toString()] : typeof v === 'number' ? ['float'] : typeof v === 'string' ? ['str', v]
    : Array.isArray(v) ? ['list', v.map(tag)] : ['obj', [...v].map(([k, x]) => [k, tag(x)])];
const cases = JSON.parse(require('fs').readFileSync(0, 'utf8'));
process.stdout.write(JSON.stringify(cases.map((text) => {
    try { return ['ok', tag(parse(text))]; }
    catch (e) { if (e instanceof JsonError) return ['error', e.message]; throw e; }
})));
"""


def _tag(value: object) -> list:
    if value is None:
        return ["null"]
    if isinstance(value, bool):
        return ["bool", value]
    if isinstance(value, int):
        return ["int", str(value)]
    if isinstance(value, float):
        return ["float"]
    if isinstance(value, str):
        return ["str", value]
    if isinstance(value, list):
        return ["list", [_tag(item) for item in value]]
    return ["obj", [[key, _tag(item)] for key, item in value.items()]]


def _python_parse(text: str) -> list:
    try:
        return ["ok", _tag(parse_json(text))]
    except ValueError as exc:
        return ["error", str(exc)]


def test_the_json_reader_reads_and_refuses_as_python_does():
    """Values (integers exact, floats apart) and error messages, positions included."""
    if shutil.which("node") is None:
        pytest.skip("node is not installed")
    corpus = _mutations(DOCUMENTS, '{}[]",:\\u0123456789eE.-+ntrfalsNIé\n\t\x01 ', 4000, seed=7)
    expected = [_python_parse(text) for text in corpus]
    differences = [(text, want, got) for text, want, got in zip(corpus, expected, _node(JSON_SCRIPT, corpus),
                                                               strict=True) if want != got]
    assert differences == []
    assert 100 < sum(kind == "ok" for kind, _ in expected) < len(corpus)


# Where the official contract API answers before the contract runs --------------------------------


def test_difference_wrong_number_of_arguments(pair):
    node, ours = pair.invoke("emr_index:PutRecord", json.dumps(ENTRY), "extra")
    assert (node.status, node.message) == (500, "Expected 1 parameters, but 2 have been supplied")
    assert (ours.status, ours.message) == (500, "PutRecord takes 1 argument(s), not 2")
    assert node.writes == ours.writes == {}


def test_difference_unknown_contract(pair):
    node, ours = pair.invoke("ghost:PutRecord", json.dumps(ENTRY))
    assert (node.status, node.message) == (500, "Contract name is not known: ghost")
    assert (ours.status, ours.message) == (500, "unknown contract 'ghost'")


def test_difference_malformed_attribute_extension(pair):
    """fabric-shim reads the attribute extension itself, before any contract code, and fails on its own."""
    creator = _credential(pki.USER_NAME, b"not json")
    node, ours = pair.invoke(*_put(ENTRY), creator=creator)
    assert node.status == 500 and "JSON" in node.message
    malformed = "the creator's certificate has a malformed Fabric CA attribute extension"
    assert (ours.status, ours.message) == (500, malformed)
    assert node.writes == ours.writes == {}
