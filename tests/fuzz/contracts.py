"""Hostile input for every contract transaction, through the real chaincode runtime.

    python -m tests.fuzz.contracts --per-transaction N --seed S [--json] [--only contract:Tx[,contract:Tx]]
                                   [--report PATH] [--timeout SECONDS] [--quiet]

One chaincode server (medfabric_chaincode.runtime.ChaincodeServer, plaintext on 127.0.0.1, the port chosen by the
system) serves the production contracts, registered as `medfabric-chaincode` registers them (contracts.ALL_CONTRACTS
in one ContractRouter). A FakePeer (tests/unit/chaincode/fakepeer.py) dials it over gRPC as a Fabric peer does,
sends signed proposals and answers the ledger requests from an in-memory world state. The world is seeded through the
contracts themselves (records, an erased record, grants, decisions, log entries, an anchor, an FL task with keys and
an update, decoy challenges committed and answered, a price list, a balance, a purchase), so that valid-ish calls
can succeed; the state is restored after every example that committed, so every example sees the same world.

Every transaction gets N argument sets from hypothesis (seeded: the same --seed gives the same inputs; no example
database, no shrinking): the valid argument set the unit tests use first, then a mix of
  - arbitrary argument lists: any number of arguments of any text, raw bytes (invalid UTF-8), JSON of any shape,
    invalid JSON, JSON nested thousands deep, strings up to 64 KiB;
  - mutations of the valid set: one to three fields (or arguments) dropped, given the wrong type, emptied, made too
    long, given negative / NaN / infinite / huge numbers, bad or extreme dates, lone surrogates, NUL and other
    control characters, values that are valid elsewhere, unknown extra keys (also the fields the contract sets
    itself); whole documents truncated, wrapped, double-encoded, given a duplicate key, a BOM or invalid UTF-8;
    arguments missing or extra;
  - the valid set itself;
each from a caller drawn from several MSPs and roles (tests/unit/chaincode/actors.py) and hostile identities
(no attributes, malformed attributes, an MSP of no domain, a domain claimed by another MSP, no enrollment id,
a creator that is not a certificate, empty), now and then at an extreme proposal timestamp (year 1, year 9999).

Each answer is judged:
  accepted   COMPLETED, status 200, a strict JSON payload (an object or an array); an evaluation wrote nothing
  refused    ERROR, or status >= 400, with a non-empty one-line message that is no traceback (no "Traceback",
             File "...", *.py paths, "SomeError(" or "SomeError:" class dumps, <object at 0x...> - unless the
             input itself holds that text, echoed), no write request reached the peer, committed state unchanged
  otherwise an escape: hang (no answer within --timeout seconds), crash (the runtime's catch-all answered: "failed
  unexpectedly", "runtime fault"), traceback, bad-message, writes-on-refusal, bad-success, evaluate-wrote.
The server must answer a probe after every transaction's run and at the end. Exit status 1 on any escape or a
dead server; with --json one JSON document goes to stdout (the table to stderr).
"""

from __future__ import annotations

import argparse
import base64
import copy
import hashlib
import json
import logging
import os
import re
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

_ROOT = Path(__file__).resolve().parents[2]
for _path in (_ROOT, _ROOT / "chaincode", _ROOT / "client", _ROOT / "ops"):  # as an editable install lays them out
    if str(_path) not in sys.path:
        sys.path.append(str(_path))
os.environ.setdefault("GRPC_VERBOSITY", "NONE")

from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.x509.oid import NameOID  # noqa: E402
from fabric_protos.msp import identities_pb2  # noqa: E402
from hypothesis import HealthCheck, Phase, Verbosity, given, settings  # noqa: E402
from hypothesis import seed as hypothesis_seed  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from medfabric_chaincode import __version__  # noqa: E402
from medfabric_chaincode.contracts import ALL_CONTRACTS  # noqa: E402
from medfabric_chaincode.contracts.common import DOMAIN_MSPS_VARIABLE  # noqa: E402
from medfabric_chaincode.contracts.decoy import commitment_of  # noqa: E402
from medfabric_chaincode.contracts.fl import signed_update_fields  # noqa: E402
from medfabric_chaincode.runtime import METADATA_FUNCTION, ChaincodeServer, ContractRouter, ServerConfig  # noqa: E402
from medfabric_chaincode.runtime.contract import transactions_of  # noqa: E402

from tests.unit.chaincode import pki  # noqa: E402
from tests.unit.chaincode.actors import A_DOCTOR, B_DOCTOR, C_DOCTOR, actor_id, caller, researcher  # noqa: E402
from tests.unit.chaincode.fakepeer import DEFAULT_TIMESTAMP, FakePeer, TxResult  # noqa: E402
from tests.unit.chaincode.test_emr_index import ENTRY  # noqa: E402

PACKAGE_ID = "medfabric_0.1.0:f0220f0220f0220f"
DEFAULT_TIMEOUT = 5.0  # seconds an answer may take before the call counts as a hang
MAX_ARGUMENT_BYTES = 64 * 1024
MAX_EXAMPLES_SHOWN = 3

# Times: the world is seeded from T0 on, every example is submitted at NOW unless its timestamp is drawn otherwise.
T0 = DEFAULT_TIMESTAMP
NOW = T0 + timedelta(hours=2)
TIMES = {
    "now": NOW,
    "now+1d": NOW + timedelta(days=1),
    "t0-1y": T0 - timedelta(days=365),
    "epoch": datetime(1970, 1, 1, tzinfo=UTC),
    "year1": datetime(1, 1, 1, tzinfo=UTC),
    "year9999": datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
}


def iso(moment: datetime) -> str:
    """As the contracts write times: UTC, milliseconds, Z."""
    moment = moment.astimezone(UTC)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{moment.microsecond // 1000:03d}Z"


# Identities ------------------------------------------------------------------------------------------------------

def _identity(msp_id: str, attributes: dict[str, str] | bytes | None, common_name: str = "fuzz") -> bytes:
    ca = pki.issue(pki.name((NameOID.ORGANIZATION_NAME, "fuzz"), (NameOID.COMMON_NAME, "ca.fuzz")), ca=True)
    subject = pki.name((NameOID.ORGANIZATION_NAME, "fuzz"), (NameOID.COMMON_NAME, common_name))
    return pki.serialized_identity(msp_id, pki.issue(subject, ca, attributes=attributes))


def build_callers() -> dict[str, bytes]:
    """Creators by name: members of several MSPs and roles, and identities a hostile client could present."""
    a_doctor = {"hf.EnrollmentID": "doctor", "medfabric.role": "doctor", "medfabric.domain": "hospital-a"}
    not_a_certificate = identities_pb2.SerializedIdentity(
        mspid="HospitalAMSP", id_bytes=b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    return {
        "A_DOCTOR": A_DOCTOR,
        "B_DOCTOR": B_DOCTOR,
        "C_DOCTOR": C_DOCTOR,
        "A_ADMIN": caller("HospitalAMSP", "Admin", "admin"),
        "B_ADMIN": caller("HospitalBMSP", "Admin", "admin"),
        "A_SERVICE": caller("HospitalAMSP", "data-service", "data-service"),
        "B_RESEARCHER": researcher("HospitalBMSP"),
        "A_NO_ROLE": caller("HospitalAMSP", "nurse", None),
        "A_NO_DOMAIN": caller("HospitalAMSP", "doctor", "doctor", None),
        "B_CLAIMS_A": caller("HospitalBMSP", "doctor", "doctor", "hospital-a"),
        "A_NO_ENROLLMENT": _identity("HospitalAMSP", {k: v for k, v in a_doctor.items() if k != "hf.EnrollmentID"}),
        "A_ODD_ENROLLMENT": _identity("HospitalAMSP", {**a_doctor, "hf.EnrollmentID": "dr é/../\u202e x"},
                                      common_name='dr é, "x"+<y>;#'),
        "A_NO_ATTRIBUTES": _identity("HospitalAMSP", None),
        "A_BAD_ATTRIBUTES": _identity("HospitalAMSP", b"{not json"),
        "A_ATTRIBUTES_NOT_TEXT": _identity("HospitalAMSP", b'{"attrs": {"medfabric.role": 5}}'),
        "A_ATTRIBUTES_A_LIST": _identity("HospitalAMSP", b"[1, 2]"),
        "MALLORY": _identity("MalloryMSP", {**a_doctor, "medfabric.role": "admin", "hf.EnrollmentID": "mallory"}),
        "NO_MSP_ID": _identity("", a_doctor),
        "NOT_A_CERTIFICATE": not_a_certificate.SerializeToString(),
        "GARBAGE": b"\x0a\x03abc\x12\xff\xff\x00",
        "EMPTY": b"",
    }


def _fl_key(domain: str) -> ec.EllipticCurvePrivateKey:
    """A fixed P-256 key per domain, so that the same seed gives the same arguments."""
    order = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
    secret = int.from_bytes(hashlib.sha256(f"medfabric fuzz fl {domain}".encode()).digest(), "big") % (order - 1) + 1
    return ec.derive_private_key(secret, ec.SECP256R1())


def _public_pem(key: ec.EllipticCurvePrivateKey) -> str:
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def _signed_update(key: ec.EllipticCurvePrivateKey, document: dict) -> dict:
    signature = key.sign(signed_update_fields(document), ec.ECDSA(hashes.SHA256()))
    return {**document, "signature": base64.b64encode(signature).decode()}


# Transactions and their valid arguments ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Parameter:
    name: str
    kind: str  # "str" or "int" (the production contracts take nothing else), as the runtime converts it
    required: bool

    @property
    def document(self) -> bool:
        return self.name.endswith("_json")


@dataclass(frozen=True)
class Transaction:
    contract: str
    name: str
    evaluate: bool
    parameters: tuple[Parameter, ...]

    @property
    def function(self) -> str:
        return f"{self.contract}:{self.name}"


@dataclass(frozen=True)
class Template:
    """A valid call: its caller's name and one value per argument (a dict for a JSON document, a str, an int)."""

    caller: str
    values: tuple[Any, ...]


def production_transactions() -> list[Transaction]:
    """Every transaction of the production contracts, as the runtime's router sees them."""
    found = []
    for contract_class in ALL_CONTRACTS:
        for name, spec in sorted(transactions_of(contract_class()).items()):
            parameters = tuple(Parameter(p.name, p.spec.kind, p.required) for p in spec.parameters)
            found.append(Transaction(contract_class.name, name, spec.evaluate, parameters))
    return found


SALT = "5a" * 16
LABELS = [1, 0, None, 1, 0, 1, 1, 0, 0, 1]  # the real input at 2, nine decoys
ANSWERS = [1, 0, 1, 1, 0, 1, 1, 0, 0, 1]
FL_TASK = {
    "task_id": "task-1", "publisher_domain": "hospital-a", "model": "logreg", "features": 3,
    "scaler_mean": [0.5, 1, -2.25], "scaler_scale": [1.5, 2, 0.125], "initial_weights_sha256": "11" * 32,
    "initial_location": "medfabric://hospital-a/fl/task-1/initial", "learning_rate": 0.5, "epochs": 5, "rounds": 2,
    "target_accuracy": 0.95, "domains": ["hospital-a", "hospital-b", "hospital-c"], "aggregator": "fedavg",
    "max_samples": 500,
}


def _update(domain: str) -> dict:
    return {"task_id": "task-1", "round": 1, "domain": domain, "weights_sha256": "22" * 32,
            "ciphertext_sha256": "33" * 32, "location": f"medfabric://{domain}/fl/task-1/1", "n_samples": 120,
            "loss": 0.25, "accuracy": 0.9}


@dataclass
class World:
    """What the seeding made, and the valid call of each transaction against it."""

    ids: dict[str, str]
    templates: dict[str, Template]


class SeedingError(RuntimeError):
    pass


def seed_world(harness: Harness) -> World:
    """Seed the ledger through the contracts; returns the valid calls against the seeded state."""
    ids: dict[str, str] = {}

    def ok(function: str, *args: Any, by: str = "A_DOCTOR", at: datetime = T0) -> Any:
        texts = [json.dumps(a) if isinstance(a, dict | list) else str(a) for a in args]
        result = harness.peer.invoke(function, *texts, creator=harness.callers[by], timestamp=at)
        if result.status != 200:
            raise SeedingError(f"seeding {function} failed: {result.status} {result.message}")
        return result

    keys = {domain: _fl_key(domain) for domain in ("hospital-a", "hospital-b", "hospital-c")}
    ok("emr_index:PutRecord", ENTRY)  # rec-001: hospital-a's, patient p1
    ok("emr_index:PutRecord", {**ENTRY, "record_id": "rec-002"})
    ok("emr_index:EraseRecord", "rec-002", "patient request", at=T0 + timedelta(seconds=60))
    ok("emr_index:PutRecord", {**ENTRY, "record_id": "rec-b01", "patient": "p2", "domain": "hospital-b",
                               "location": "medfabric://hospital-b/store/rec-b01"}, by="B_DOCTOR")
    grant = {"record_id": "rec-001", "domain": "hospital-a", "grantee_msp": "HospitalBMSP", "purpose": "treatment",
             "expires": iso(NOW + timedelta(days=1))}
    ids["grant"] = ok("consent:GrantAccess", grant).tx_id
    ids["patient_grant"] = ok("consent:GrantAccess", {
        "patient": "p1", "domain": "hospital-a", "grantee_msp": "HospitalCMSP", "grantee_user": "doctor",
        "purpose": "research", "expires": iso(NOW + timedelta(days=1))}).tx_id
    ids["decision"] = ok("consent:CheckAccess", "rec-001", "read", "treatment", by="B_DOCTOR").tx_id
    ids["break_glass"] = ok("consent:EmergencyAccess", "rec-001", "patient unconscious", by="C_DOCTOR").tx_id
    ok("access_log:LogAccess", {"record_id": "rec-001", "action": "request", "outcome": "success"}, by="B_DOCTOR")
    ok("anchor:AnchorLogRoot", {"domain": "hospital-a", "channel": "hospital-a-local", "since": iso(T0),
                                "until": iso(T0 + timedelta(hours=1)), "count": 3, "merkle_root": "ab" * 32},
       at=T0 + timedelta(hours=1))
    ok("fl:CreateTask", FL_TASK)
    wrapped = {"scheme": "test", "ciphertext": "c2VhbGVk"}
    for domain in ("hospital-a", "hospital-b"):
        ok("fl:IssueTaskKey", {"task_id": "task-1", "domain": domain, "public_key": _public_pem(keys[domain]),
                               "wrapped_private_key": wrapped})
    ok("fl:SubmitUpdate", _signed_update(keys["hospital-b"], _update("hospital-b")), by="B_DOCTOR")
    for challenge in ("ch-1", "ch-2"):
        ok("decoy:CommitChallenge", {"challenge_id": challenge, "server_domain": "hospital-a", "decoys": 9,
                                     "threshold": 0.8, "commitment": commitment_of(LABELS, 2, SALT)}, by="B_DOCTOR")
    ok("decoy:SubmitAnswers", {"challenge_id": "ch-2", "answers": ANSWERS, "inputs_sha256": "ab" * 32})
    ok("market:PostPrices", {"domain": "hospital-a", "version": 1, "d_max": 100,
                             "prices": {"HospitalBMSP/doctor": 2.5, "HospitalCMSP/doctor": 1}}, by="A_ADMIN")
    ok("market:Credit", {"user": "doctor", "amount": 100}, by="B_ADMIN")
    bought = ok("market:Buy", {"domain": "hospital-a", "record_ids": ["rec-001"], "quantity": 10, "price": 2.5,
                               "version": 1, "expires": iso(NOW + timedelta(days=1))}, by="B_DOCTOR").json()
    if not bought["accepted"]:
        raise SeedingError(f"seeding market:Buy was refused: {bought['reason']}")
    ids["purchase"] = bought["purchase_id"]

    later = iso(NOW + timedelta(days=1))
    templates = {
        "emr_index:PutRecord": Template("A_DOCTOR", (
            {**ENTRY, "record_id": "rec-new", "grants": [{"grantee": "HospitalBMSP:doctor", "expires": later}]},)),
        "emr_index:EraseRecord": Template("A_DOCTOR", ("rec-001", "patient request (GDPR art. 17)")),
        "emr_index:GetRecord": Template("B_DOCTOR", ("rec-001",)),
        "emr_index:ListRecordsByPatient": Template("A_DOCTOR", ("p1", 10, "")),
        "consent:GrantAccess": Template("A_DOCTOR", ({
            "record_id": "rec-001", "domain": "hospital-a", "grantee_msp": "HospitalCMSP", "grantee_user": "doctor",
            "purpose": "research", "expires": later},)),
        "consent:RevokeGrant": Template("A_DOCTOR", (ids["grant"],)),
        "consent:GetGrant": Template("B_DOCTOR", (ids["grant"],)),
        "consent:ListGrants": Template("A_DOCTOR", ("rec-001",)),
        "consent:CheckAccess": Template("B_DOCTOR", ("rec-001", "read", "treatment")),
        "consent:EmergencyAccess": Template("C_DOCTOR", ("rec-001", "patient unconscious in the ER")),
        "consent:GetDecision": Template("B_DOCTOR", (ids["decision"],)),
        "access_log:LogAccess": Template("A_SERVICE", ({
            "record_id": "rec-001", "action": "deliver", "outcome": "success", "reason": "delivered for treatment",
            "requester_msp": "HospitalBMSP", "requester_id": actor_id(B_DOCTOR), "decision_tx": ids["decision"]},)),
        "access_log:ListLog": Template("A_DOCTOR", (iso(T0), iso(NOW), "rec-001", 10, "")),
        "access_log:LogDigest": Template("A_DOCTOR", (iso(T0), iso(NOW))),
        "anchor:AnchorLogRoot": Template("A_DOCTOR", ({
            "domain": "hospital-a", "channel": "hospital-a-local", "since": iso(T0 + timedelta(hours=1)),
            "until": iso(NOW), "count": 5, "merkle_root": "cd" * 32},)),
        "anchor:GetAnchors": Template("B_DOCTOR", ("hospital-a", 10, "")),
        "fl:CreateTask": Template("A_DOCTOR", ({**FL_TASK, "task_id": "task-new",
                                                "domains": ["hospital-b", "hospital-a"]},)),
        "fl:IssueTaskKey": Template("A_DOCTOR", ({"task_id": "task-1", "domain": "hospital-c",
                                                  "public_key": _public_pem(keys["hospital-c"]),
                                                  "wrapped_private_key": wrapped},)),
        "fl:SubmitUpdate": Template("A_DOCTOR", (_signed_update(keys["hospital-a"], _update("hospital-a")),)),
        "fl:RecordAggregation": Template("A_DOCTOR", ({
            "task_id": "task-1", "round": 1, "global_sha256": "44" * 32, "global_ciphertext_sha256": "99" * 32,
            "updates": ["hospital-b"], "aggregator": "fedavg", "accuracy": 0.5, "loss": 0.3},)),
        "fl:GetTask": Template("B_DOCTOR", ("task-1",)),
        "fl:GetTaskKey": Template("B_DOCTOR", ("task-1", "hospital-a")),
        "fl:ListUpdates": Template("A_DOCTOR", ("task-1", 1)),
        "fl:ListAggregations": Template("A_DOCTOR", ("task-1",)),
        "decoy:CommitChallenge": Template("B_DOCTOR", ({
            "challenge_id": "ch-new", "server_domain": "hospital-a", "decoys": 9, "threshold": 0.7,
            "commitment": commitment_of(LABELS, 2, SALT)},)),
        "decoy:SubmitAnswers": Template("A_DOCTOR", ({"challenge_id": "ch-1", "answers": ANSWERS,
                                                      "inputs_sha256": "ab" * 32},)),
        "decoy:Reveal": Template("B_DOCTOR", ({"challenge_id": "ch-2", "labels": LABELS, "real_index": 2,
                                               "salt": SALT},)),
        "decoy:GetChallenge": Template("A_DOCTOR", ("ch-2",)),
        "market:PostPrices": Template("A_ADMIN", ({"domain": "hospital-a", "version": 2, "d_max": 50,
                                                   "prices": {"HospitalBMSP/doctor": 3, "HospitalCMSP/doctor": 0.5}},)),
        "market:GetPrices": Template("B_DOCTOR", ("hospital-a", 1)),
        "market:Credit": Template("B_ADMIN", ({"user": "doctor", "amount": 5.5},)),
        "market:GetBalance": Template("B_DOCTOR", ("doctor",)),
        "market:GetEarnings": Template("A_DOCTOR", ("hospital-a",)),
        "market:Buy": Template("B_DOCTOR", ({"domain": "hospital-a", "record_ids": ["rec-001"], "quantity": 1,
                                             "price": 2.5, "version": 1, "expires": iso(NOW + timedelta(hours=1))},)),
        "market:GetPurchase": Template("B_DOCTOR", (ids["purchase"],)),
    }
    return World(ids, templates)


# Input generation -------------------------------------------------------------------------------------------------

class Raw(str):
    """JSON text put into a document as it is (invalid tokens, deep nesting), where a value would go."""


@dataclass(frozen=True)
class Case:
    """One argument set: who calls, when, with which argument bytes; origin says how it was made."""

    caller: str
    when: str  # a key of TIMES
    args: tuple[bytes, ...]
    origin: str  # "valid", "mutated: ...", "arbitrary"


def to_json(value: Any, ensure_ascii: bool = True) -> bytes:
    """JSON of a value holding Raw pieces; lone surrogates become (invalid) UTF-8 bytes, as a hostile client sends."""
    raws: list[str] = []

    def placeholders(item: Any) -> Any:
        if isinstance(item, Raw):
            raws.append(str(item))
            return f"@@RAW{len(raws) - 1}@@"
        if isinstance(item, dict):
            return {str(key): placeholders(inner) for key, inner in item.items()}
        if isinstance(item, list):
            return [placeholders(inner) for inner in item]
        return item

    text = json.dumps(placeholders(value), ensure_ascii=ensure_ascii)
    for index, raw in enumerate(raws):
        text = text.replace(f'"@@RAW{index}@@"', raw, 1)
    return text.encode("utf-8", "surrogatepass")


def _text_bytes(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


def encode_value(parameter: Parameter, value: Any) -> bytes:
    """A template value as the argument bytes a client sends."""
    if isinstance(value, bytes):
        return value
    if parameter.kind == "str" and isinstance(value, str):
        return _text_bytes(value)
    return to_json(value)


def _deep(opening: str, closing: str, leaf: str, depth: int) -> str:
    depth = min(depth, (MAX_ARGUMENT_BYTES - len(leaf)) // (len(opening) + len(closing)))
    return opening * depth + leaf + closing * depth


SURROGATES = st.integers(0xD800, 0xDFFF).map(chr)
CHARACTERS = st.one_of(st.characters(), st.characters(max_codepoint=0x7F), SURROGATES,
                       st.sampled_from(["\x00", "\x1f", "\x7f", "\u2028", "\ufeff", "\U0010ffff", "\u202e"]))
HOSTILE_STRINGS = [
    "", " ", "   ", "\t", "\n", "\r\n", "\x00", "a\x00b", "\x1b[31m", "\x7f", "\ud800", "\udfff", "a\ud800b",
    "\U0010ffff", "\ufeff", "\u202e", "\u2028", "é", "e\u0301", "😀", "𝟘𝟙", "٠١٢", "ǅ", "ß", "İ", "null", "None",
    "undefined", "true", "false", "0", "-1", "NaN", "Infinity", "../../etc/passwd", "%00", "%s%s%n", "{}", "[]",
    "'", '"', "\\", "${jndi:ldap://x/a}", "<script>alert(1)</script>", "'; DROP TABLE records; --", "rec-001\x00",
    "rec-001 ", " rec-001", "REC-001", "rec-001\n", "x" * 63, "x" * 64, "x" * 65, "x" * 128, "x" * 129,
    "a:b", "a/b", "x509::CN=a::CN=b", "Traceback (most recent call last):", "KeyError('x')",
]
TEXT = st.one_of(st.sampled_from(HOSTILE_STRINGS), st.text(CHARACTERS, max_size=40), st.text(max_size=20))
LENGTHS = st.one_of(st.sampled_from([127, 128, 129, 255, 256, 257, 512, 513, 1023, 1024, 1025, 4096, 4097, 8192,
                                     8193, 65535, 65536]), st.integers(1, MAX_ARGUMENT_BYTES))
LONG_TEXT = st.tuples(st.sampled_from(["a", "0", "f", "é", "😀", "\x00", "ab:", "-", " ", "\ud800"]), LENGTHS).map(
    lambda piece: piece[0] * max(1, piece[1] // len(_text_bytes(piece[0]))))
RAW_TOKENS = ["NaN", "Infinity", "-Infinity", "1e400", "-1e400", "01", "1.", ".5", "+1", "0x10", "tru", "nul",
              "'x'", '"\\ud800"', '"\\udfff"', '"a\\ud800b"', '"\\udc00\\ud800"', '"\\u0000"', '"\\x00"',
              '{"a":1,"a":2}', "[1,]", "{,}", "/*c*/1", '"unterminated', "1" + "0" * 4300, "9" * 5000, "-0", "1E2"]
DEEP = st.tuples(st.sampled_from([("[", "]", ""), ('{"a":', "}", "1"), ('{"a":[', "]}", "null")]),
                 st.sampled_from([16, 100, 500, 900, 990, 1000, 1100, 3000, 10_000, 50_000])).map(
    lambda t: _deep(*t[0], t[1]))
NUMBERS = [0, -0.0, 1, -1, 0.5, 1.5, 2, 9, 10, 11, 100, 101, 1000, 1001, 10_000, 10_001, 2**31 - 1, 2**31,
           2**53 + 1, 2**63, 2**64, 10**30, -10**30, 1e-300, 5e-324, 1e300, 1e308, -1e308, 0.1 + 0.2, 1e-7,
           0.0000005, 0.0000015, True, False, float("nan"), float("inf"), float("-inf"), *map(Raw, RAW_TOKENS[:7])]
DATES = [
    "2025-13-01T00:00:00Z", "2025-02-30T00:00:00Z", "2025-03-04", "2025-03-04T05:06:07", "2025-03-04T24:00:00Z",
    "2025-03-04T05:06:07+25:00", "2025-03-04T05:06:07.891Zjunk", "0000-01-01T00:00:00Z", "0001-01-01T00:00:00Z",
    "0001-01-01T00:00:00+00:01", "0001-01-01T00:00:00-23:59", "9999-12-31T23:59:59.999Z",
    "9999-12-31T23:59:59-00:01", "9999-12-31T23:59:59+23:59", "1970-01-01T00:00:00Z", "2025-03-04T05:06:07+14:00",
    "2025-03-04 05:06:07Z", "20250304T050607Z", "2025-W10-2T05:06:07Z", "2025-063T05:06:07Z",
    "२०२५-०३-०४T05:06:07Z", "2025-03-04T05:06:07.891234567Z", "2025-03-04T05:06:07,891Z",
    "-2025-03-04T05:06:07Z", "2025-03-04T05:06:07Z\x00", "now", "1741064767", "2025-03-04T05:06:07.891+00:00:01",
    iso(T0), iso(NOW), iso(NOW - timedelta(hours=1)), iso(NOW + timedelta(hours=1)), iso(NOW + timedelta(days=400)),
    "2025-03-04T07:06:07.891+02:00", "2025-03-04T07:06:07.891-00:00",
]
EMPTIES = ["", [], {}, None, 0, " "]
EXTRA_KEYS = ["extra", "__proto__", "constructor", "", " ", "owner_msp", "created", "updated", "version", "erased",
              "grant_id", "grantor_msp", "tx_id", "status", "round", "record_id ", "RECORD_ID", "\x00", "\ud800",
              "Traceback", "a" * 300]
JSON_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70),
                         st.floats(allow_nan=True, allow_infinity=True), TEXT)
JSON_VALUES = st.recursive(JSON_SCALARS, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(TEXT, inner, max_size=4), max_leaves=8)
RAW_VALUES = st.one_of(st.sampled_from(RAW_TOKENS), DEEP).map(Raw)
CORRUPTIONS = ("truncate", "trailing", "leading", "duplicate-key", "array", "double-encoded", "invalid-utf8",
               "unicode-raw")


def _longer(value: Any) -> st.SearchStrategy:
    """The value made too long or too big for its kind."""
    if isinstance(value, list):
        first = value[0] if value else 0
        return st.sampled_from([2, 64, 65, 100, 101, 1000, 1001, 1002, 4096, 4097, 10_001]).map(lambda n: [first] * n)
    if isinstance(value, dict):
        key, inner = next(iter(value.items())) if value else ("k", 1)
        return st.sampled_from([17, 100, 1000, 10_001]).map(lambda n: {f"{key}{i}": inner for i in range(n)})
    if isinstance(value, str) and value:
        return LENGTHS.map(lambda n: value * max(1, n // max(1, len(value))))
    return st.one_of(LONG_TEXT, st.sampled_from([2**63, 10**30, 1e308]))


class Generators:
    """The hypothesis strategies of one world: pools of plausible values come from what the seeding made."""

    def __init__(self, world: World, caller_names: Iterable[str]):
        self.caller_names = sorted(caller_names)
        ids = world.ids
        self.pool = [
            "rec-001", "rec-002", "rec-b01", "rec-new", "rec-none", "p1", "p2", "hospital-a", "hospital-b",
            "hospital-c", "hospital-z", "HospitalAMSP", "HospitalBMSP", "HospitalCMSP", "MalloryMSP", "Observation",
            "Patient", "treatment", "research", "purchase", "read", "request", "deliver", "write", "erase", "denied",
            "break-glass", "grant", "success", "failure", "task-1", "task-new", "ch-1", "ch-2", "ch-new", "doctor",
            "Admin", "fedavg", "median", "logreg", "a" * 64, "0" * 64, "A" * 64, "HospitalBMSP/doctor",
            "HospitalAMSP/doctor", "medfabric://hospital-a/x", "hospital-a-local", *ids.values(),
            actor_id(A_DOCTOR), actor_id(B_DOCTOR), iso(T0), iso(NOW), iso(NOW + timedelta(hours=1)),
            1, 2, 9, 10, 0.5, 0.8, 1.0, True, None, [], {}, ["hospital-a"], ["rec-001", "rec-002"], LABELS, ANSWERS,
            "\x00emr~patient\x00p1\x00", "\x00emr~patient\x00p1\x00rec-001\x00", "\x00log\x00",
            "\x00log~record\x00rec-001\x00", "\x00anchor\x00hospital-a\x00", "\x00emr\x00rec-001\x00",
        ]
        self.text_pool = [value for value in self.pool if isinstance(value, str)]
        self.field_values = st.one_of(
            st.sampled_from(NUMBERS), st.sampled_from(DATES), TEXT, LONG_TEXT, JSON_VALUES, RAW_VALUES,
            st.sampled_from(self.pool), st.sampled_from(EMPTIES))
        prefixes = st.sampled_from([value for value in self.text_pool if value.startswith("\x00")])
        self.text_values = st.one_of(
            st.sampled_from(self.text_pool), TEXT, LONG_TEXT, st.sampled_from(DATES), st.sampled_from(RAW_TOKENS),
            st.tuples(prefixes, TEXT).map("".join), st.sampled_from(HOSTILE_STRINGS))
        self.int_values = st.one_of(
            st.integers(-3, 1100).map(str), st.sampled_from(NUMBERS).map(lambda n: to_json(n).decode()),
            st.sampled_from(RAW_TOKENS), DEEP, TEXT, JSON_VALUES.map(lambda v: to_json(v).decode("utf-8", "replace")),
            st.sampled_from(["", " 5", "5 ", "1.0", "0.0", "-0", "1e3", "true", '"5"', "[5]", "0x10", "٥"]))
        self.arbitrary_argument = st.one_of(
            TEXT.map(_text_bytes), st.binary(max_size=64), LONG_TEXT.map(_text_bytes), RAW_VALUES.map(_text_bytes),
            JSON_VALUES.map(to_json), st.sampled_from(self.text_pool).map(_text_bytes),
            st.sampled_from(["{}", "[]", "null", '{"":""}', "0", "-1"]).map(_text_bytes))

    def cases(self, tx: Transaction, template: Template | None) -> st.SearchStrategy[Case]:
        callers = st.sampled_from([template.caller] * len(self.caller_names) + self.caller_names) \
            if template else st.sampled_from(self.caller_names)
        whens = st.sampled_from(["now"] * 24 + sorted(TIMES))
        most = len(tx.parameters)
        arbitrary = st.lists(self.arbitrary_argument, max_size=most + 2).map(lambda args: ("arbitrary", tuple(args)))
        if template is None:
            argument_sets = arbitrary
        else:
            valid = st.just(("valid", tuple(encode_value(p, v) for p, v in zip(tx.parameters, template.values))))
            mutated = self._mutated(tx, template)
            argument_sets = st.one_of(arbitrary, mutated, mutated, mutated, mutated, valid)
        return st.builds(lambda who, when, made: Case(who, when, made[1], made[0]), callers, whens, argument_sets)

    def valid_case(self, tx: Transaction, template: Template) -> Case:
        args = tuple(encode_value(p, v) for p, v in zip(tx.parameters, template.values))
        return Case(template.caller, "now", args, "valid")

    def _mutated(self, tx: Transaction, template: Template) -> st.SearchStrategy[tuple[str, tuple[bytes, ...]]]:
        @st.composite
        def mutated(draw) -> tuple[str, tuple[bytes, ...]]:
            values = list(template.values)
            args = [encode_value(p, v) for p, v in zip(tx.parameters, values)]
            notes = []
            if draw(st.integers(0, 9)) == 0:  # the arity: arguments missing or extra
                if args and draw(st.booleans()):
                    keep = draw(st.integers(0, len(args) - 1))
                    notes.append(f"{len(args) - keep} argument(s) dropped")
                    args = args[:keep]
                else:
                    extra = draw(st.lists(self.arbitrary_argument, min_size=1, max_size=3))
                    notes.append(f"{len(extra)} extra argument(s)")
                    args += extra
                return "mutated: " + "; ".join(notes), tuple(args)
            if not args:
                return "mutated: nothing to mutate", ()
            for index in sorted(set(draw(st.lists(st.integers(0, len(args) - 1), min_size=1, max_size=2)))):
                parameter, value = tx.parameters[index], values[index]
                if parameter.document and isinstance(value, dict):
                    args[index] = draw(self._document(value, notes, parameter.name))
                elif parameter.kind == "int":
                    args[index] = _text_bytes(draw(self.int_values))
                    notes.append(f"{parameter.name} replaced")
                else:
                    args[index] = _text_bytes(draw(self.text_values)) if draw(st.integers(0, 7)) else draw(
                        st.binary(max_size=40))
                    notes.append(f"{parameter.name} replaced")
            return "mutated: " + "; ".join(notes), tuple(args)

        return mutated()

    def _document(self, document: dict, notes: list[str], name: str) -> st.SearchStrategy[bytes]:
        @st.composite
        def mutated_document(draw) -> bytes:
            doc = copy.deepcopy(document)
            for _ in range(draw(st.sampled_from([1, 1, 1, 1, 2, 3]))):
                operation = draw(st.sampled_from(["drop", "type", "empty", "long", "number", "date", "extra",
                                                  "nested", "pool", "text", "raw", "drop", "type", "pool"]))
                if operation == "extra" or not doc:
                    key = draw(st.one_of(st.sampled_from(EXTRA_KEYS), TEXT))
                    doc[key] = draw(self.field_values)
                    notes.append(f"{name}: extra key {key[:20]!r}")
                    continue
                key = draw(st.sampled_from(sorted(doc)))
                notes.append(f"{name}.{key}: {operation}")
                if operation == "drop":
                    del doc[key]
                elif operation == "nested":
                    doc[key] = draw(self._nested(doc[key]))
                elif operation == "long":
                    doc[key] = draw(_longer(doc[key]))
                elif operation == "type":
                    doc[key] = draw(st.one_of(JSON_VALUES, st.sampled_from(
                        [str(doc[key]), [doc[key]], {"value": doc[key]}, None, True, 1, "1", 1.5])))
                else:
                    doc[key] = draw({"empty": st.sampled_from(EMPTIES), "number": st.sampled_from(NUMBERS),
                                     "date": st.sampled_from(DATES), "pool": st.sampled_from(self.pool),
                                     "text": st.one_of(TEXT, LONG_TEXT), "raw": RAW_VALUES}[operation])
            text = to_json(doc, ensure_ascii=draw(st.booleans()))
            if draw(st.integers(0, 9)) == 0:
                corruption = draw(st.sampled_from(CORRUPTIONS))
                notes.append(f"{name}: {corruption}")
                text = draw(self._corrupt(text, doc, corruption))
            return text

        return mutated_document()

    def _nested(self, value: Any) -> st.SearchStrategy:
        if isinstance(value, list) and value:
            @st.composite
            def element(draw) -> list:
                items = copy.deepcopy(value)
                index = draw(st.integers(0, len(items) - 1))
                if isinstance(items[index], dict) and items[index] and draw(st.booleans()):
                    key = draw(st.sampled_from(sorted(items[index])))
                    if draw(st.booleans()):
                        del items[index][key]
                    else:
                        items[index][key] = draw(self.field_values)
                elif draw(st.integers(0, 3)) == 0:
                    items.append(copy.deepcopy(items[index]))  # a duplicate
                else:
                    items[index] = draw(self.field_values)
                return items
            return element()
        if isinstance(value, dict) and value:
            @st.composite
            def entry(draw) -> dict:
                items = copy.deepcopy(value)
                key = draw(st.sampled_from(sorted(items)))
                choice = draw(st.integers(0, 2))
                if choice == 0:
                    del items[key]
                elif choice == 1:
                    items[key] = draw(self.field_values)
                else:
                    items[draw(st.one_of(TEXT, st.sampled_from(self.text_pool)))] = draw(self.field_values)
                return items
            return entry()
        return self.field_values

    @staticmethod
    def _corrupt(text: bytes, doc: dict, corruption: str) -> st.SearchStrategy[bytes]:
        if corruption == "truncate":
            return st.integers(0, max(0, len(text) - 1)).map(lambda n: text[:n])
        if corruption == "trailing":
            return st.sampled_from([b"x", b",", b"}", b" ", b"\x00", b"\xff", b"{}", b"\n", b"]"]).map(
                lambda tail: text + tail)
        if corruption == "leading":
            return st.sampled_from([b"\xef\xbb\xbf", b" ", b"\n\t", b"\x00", b"[", b"\xff", b"\xfe\xff"]).map(
                lambda head: head + text)
        if corruption == "duplicate-key" and doc and text.startswith(b"{"):
            key = json.dumps(next(iter(doc))).encode("utf-8", "surrogatepass")
            return st.sampled_from([b"null", b"1", b'"x"']).map(lambda v: b"{" + key + b":" + v + b"," + text[1:])
        if corruption == "array":
            return st.just(b"[" + text + b"]")
        if corruption == "double-encoded":
            return st.just(to_json(text.decode("utf-8", "surrogatepass")))
        if corruption == "invalid-utf8":
            return st.tuples(st.integers(0, len(text)), st.sampled_from(
                [b"\xc3\x28", b"\xed\xa0\x80", b"\xff", b"\xc0\xaf", b"\xf4\x90\x80\x80", b"\x80"])).map(
                lambda t: text[:t[0]] + t[1] + text[t[0]:])
        return st.just(text)  # unicode-raw, or no key to duplicate


# The harness ------------------------------------------------------------------------------------------------------

_CRASH_MARKERS = re.compile(r"failed unexpectedly|runtime fault")
_TRACE_MARKERS = [re.compile(pattern) for pattern in (
    r"Traceback \(most recent call last\)",
    r'File "[^"]*", line \d+',
    r"(?:[\w.-]*/)+[\w.-]+\.py\b",
    r"\b[A-Z][A-Za-z0-9_]*(?:Error|Exception|Exit|Interrupt|Warning)\b\s*[(:]",
    r"<[\w.]+ object at 0x[0-9a-fA-F]+>",
)]
_ESCAPE_KINDS = ("hang", "crash", "traceback", "bad-message", "writes-on-refusal", "committed-on-refusal",
                 "bad-success", "evaluate-wrote", "harness-error")


@dataclass(frozen=True)
class Verdict:
    outcome: str  # "accepted", "refused" or "escape"
    kind: str = ""  # the escape's kind
    answer: str = ""  # status and message, short


def _strict_json(payload: bytes) -> Any:
    def refuse(constant: str) -> Any:
        raise ValueError(f"{constant} in the payload")
    return json.loads(payload, parse_constant=refuse)


def _echoed(marker: str, args: tuple[bytes, ...]) -> bool:
    """Whether the marker text comes from the input itself (raw, or a JSON string in it), echoed in a message."""
    texts = [arg.decode("utf-8", "replace") for arg in args]
    if any(marker in text for text in texts):
        return True
    for text in texts:
        try:
            strings = _strings_in(json.loads(text))
        except (ValueError, RecursionError):
            continue
        if any(marker in string for string in strings):
            return True
    return False


def _strings_in(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [s for item in value for s in _strings_in(item)]
    if isinstance(value, dict):
        return [s for key, item in value.items() for s in [key, *_strings_in(item)]]
    return []


def judge(result: TxResult, args: tuple[bytes, ...], evaluate: bool, state_changed: bool) -> Verdict:
    """Accepted, refused, or which escape; see the module docstring."""
    answer = f"{result.kind} {result.status} {result.message}"
    if result.kind == "COMPLETED" and result.status == 200:
        try:
            document = _strict_json(result.payload)
        except (ValueError, RecursionError):
            return Verdict("escape", "bad-success", f"{answer} payload {result.payload[:80]!r}")
        if not isinstance(document, dict | list):
            return Verdict("escape", "bad-success", f"{answer} payload {result.payload[:80]!r}")
        if evaluate and result.writes:
            return Verdict("escape", "evaluate-wrote", f"{answer} writes {sorted(result.writes)[:3]!r}")
        return Verdict("accepted", answer=answer)
    if result.kind == "COMPLETED" and result.status < 400:
        return Verdict("escape", "bad-success", f"{answer}: a status that is neither success nor failure")
    message = result.message
    if _CRASH_MARKERS.search(message):
        return Verdict("escape", "crash", answer)
    for marker in _TRACE_MARKERS:
        found = marker.search(message)
        if found and not _echoed(found.group(0), args):
            return Verdict("escape", "traceback", answer)
    if not message.strip() or "\n" in message or "\r" in message:
        return Verdict("escape", "bad-message", answer)
    if result.writes:
        return Verdict("escape", "writes-on-refusal", f"{answer} writes {sorted(result.writes)[:3]!r}")
    if state_changed:
        return Verdict("escape", "committed-on-refusal", answer)
    return Verdict("refused", answer=answer)


class _ServerLog(logging.Handler):
    """Counts what the server logs at WARNING and above (contract bugs, runtime faults), and keeps it off stderr."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.count = 0
        self.first: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1
        if len(self.first) < 5:
            self.first.append(record.getMessage()[:200])


def ensure_domain_binding() -> None:
    """The chaincode checks domains against $MEDFABRIC_DOMAIN_MSPS: the default topology's, as the tests use."""
    if not os.environ.get(DOMAIN_MSPS_VARIABLE):
        from medfabric.consortium.topology import load_topology
        from medfabric_ops.lifecycle import domain_msps_json

        os.environ[DOMAIN_MSPS_VARIABLE] = domain_msps_json(load_topology())


class Harness:
    """A real chaincode server of the production contracts, a FakePeer on it, a seeded world."""

    def __init__(self, timeout: float = DEFAULT_TIMEOUT):
        ensure_domain_binding()
        self.timeout = timeout
        self.log = _ServerLog()
        self._logger = logging.getLogger("medfabric_chaincode")
        self._logger_state = (self._logger.propagate, self._logger.level)
        self._logger.addHandler(self.log)
        self._logger.propagate = False
        self._logger.setLevel(logging.WARNING)
        router = ContractRouter(ALL_CONTRACTS, title="medfabric", version=__version__)
        self.server = ChaincodeServer(ServerConfig(address="127.0.0.1:0", chaincode_id=PACKAGE_ID, tls=None), router)
        self.peer: FakePeer | None = None
        try:
            port = self.server.start()
            self.peer = FakePeer(f"127.0.0.1:{port}", A_DOCTOR, ec.generate_private_key(ec.SECP256R1()),
                                 stream_timeout=None)
            self.peer.connect()
            self.callers = build_callers()
            self.world = seed_world(self)
        except BaseException:
            self.close()
            raise
        self._base_state = dict(self.peer.state)
        self._base_metadata = copy.deepcopy(self.peer.state_metadata)
        self._base_history = {key: list(changes) for key, changes in self.peer.history.items()}

    def __enter__(self) -> Harness:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        if self.peer is not None:
            self.peer.close()
        self.server.stop(0)
        self._logger.removeHandler(self.log)
        self._logger.propagate, level = self._logger_state
        self._logger.setLevel(level)

    def restore(self) -> None:
        """The world as seeded."""
        self.peer.state = dict(self._base_state)
        self.peer.state_metadata = copy.deepcopy(self._base_metadata)
        self.peer.history = {key: list(changes) for key, changes in self._base_history.items()}

    def run(self, tx: Transaction, case: Case, nonce: bytes) -> Verdict:
        """Send one case and judge the answer; the world is as seeded afterwards."""
        future = self.peer.submit(tx.function, *case.args, creator=self.callers[case.caller],
                                  timestamp=TIMES[case.when], nonce=nonce, commit=not tx.evaluate)
        try:
            result = future.result(timeout=self.timeout)
        except FutureTimeout:
            self.restore()
            return Verdict("escape", "hang", f"no answer within {self.timeout:g} s")
        changed = self.peer.state != self._base_state
        verdict = judge(result, case.args, tx.evaluate, changed)
        if changed or (result.writes and result.status < 400 and not tx.evaluate):  # committed: history too
            self.restore()
        return verdict

    def alive(self) -> bool:
        """The server answers: its metadata, and a read of a seeded record."""
        try:
            metadata = self.peer.submit(METADATA_FUNCTION, commit=False).result(timeout=self.timeout)
            record = self.peer.submit("emr_index:GetRecord", "rec-001", commit=False).result(timeout=self.timeout)
        except FutureTimeout:
            return False
        return metadata.status == 200 and record.status == 200 and record.json()["record_id"] == "rec-001"


# Running ----------------------------------------------------------------------------------------------------------

@dataclass
class TransactionStats:
    contract: str
    transaction: str
    tried: int = 0
    accepted: int = 0
    refused: int = 0
    escapes: int = 0
    valid_accepted: bool | None = None  # whether the unmutated valid call was accepted (None: no template)
    by_origin: Counter = field(default_factory=Counter)  # "valid/accepted", "mutated/refused", ...
    escape_kinds: Counter = field(default_factory=Counter)  # a signature of each escape -> count
    _shortest: dict[str, tuple[int, str]] = field(default_factory=dict)  # signature -> (size, repr)
    server_alive_after: bool = True
    seconds: float = 0.0

    def add(self, case: Case, verdict: Verdict) -> None:
        self.tried += 1
        origin = case.origin.split(":")[0]
        self.by_origin[f"{origin}/{verdict.outcome}"] += 1
        if verdict.outcome == "accepted":
            self.accepted += 1
            return
        if verdict.outcome == "refused":
            self.refused += 1
            return
        self.escapes += 1
        signature = f"{verdict.kind}: {_signature(verdict.answer)}"
        self.escape_kinds[signature] += 1
        size = sum(len(arg) for arg in case.args)
        if signature not in self._shortest or size < self._shortest[signature][0]:
            self._shortest[signature] = (size, _describe(case, verdict))

    def examples(self) -> list[str]:
        """The smallest escaping input of each kind of escape, most frequent kinds first."""
        ranked = sorted(self._shortest, key=lambda s: (-self.escape_kinds[s], s))
        return [self._shortest[s][1] for s in ranked[:MAX_EXAMPLES_SHOWN]]

    def as_json(self) -> dict:
        return {
            "contract": self.contract, "transaction": self.transaction, "tried": self.tried,
            "accepted": self.accepted, "refused": self.refused, "escapes": self.escapes,
            "examples_of_escapes": self.examples(), "escape_kinds": dict(self.escape_kinds.most_common()),
            "valid_accepted": self.valid_accepted, "by_origin": dict(sorted(self.by_origin.items())),
            "server_alive_after": self.server_alive_after, "seconds": round(self.seconds, 2),
        }


def _signature(answer: str) -> str:
    """An answer with its input-dependent parts (quoted text, numbers, hex) blurred, to group escapes."""
    text = re.sub(r"'[^']*'|\"[^\"]*\"", "'…'", answer)
    text = re.sub(r"[0-9a-f]{16,}|\d+", "N", text)
    return text[:120]


def _short(arg: bytes, limit: int = 100) -> str:
    text = repr(arg.decode("utf-8", "surrogateescape")) if _is_utf8(arg) else repr(arg)
    return text if len(text) <= limit else f"{text[:limit]}...(+{len(arg)} bytes)"


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _describe(case: Case, verdict: Verdict) -> str:
    args = ", ".join(_short(arg) for arg in case.args)
    when = "" if case.when == "now" else f" at={case.when}"
    return (f"[{verdict.kind}] caller={case.caller}{when} ({case.origin[:80]}) args=[{args}] "
            f"-> {verdict.answer[:240]}")


def _stable_seed(seed: int, tx: Transaction) -> int:
    return int.from_bytes(hashlib.sha256(f"{seed}/{tx.function}".encode()).digest()[:8], "big")


def fuzz_transaction(harness: Harness, generators: Generators, tx: Transaction, examples: int,
                     seed: int) -> TransactionStats:
    """`examples` argument sets for one transaction (the valid one first, when it has one)."""
    stats = TransactionStats(tx.contract, tx.name)
    template = harness.world.templates.get(tx.function)
    counter = iter(range(10**9))
    started = time.perf_counter()

    def attempt(case: Case) -> None:
        if not stats.server_alive_after:  # a dead server: the rest would be one timeout each
            return
        number = next(counter)
        nonce = hashlib.sha256(f"{seed}/{tx.function}/{number}".encode()).digest()[:24]
        try:
            verdict = harness.run(tx, case, nonce)
        except Exception as exc:  # the harness's own fault: counted, so that it is seen
            harness.restore()
            verdict = Verdict("escape", "harness-error", f"{type(exc).__name__}: {exc}"[:200])
        if verdict.kind == "hang" and not harness.alive():
            stats.server_alive_after = False
        if case.origin == "valid" and number == 0:
            stats.valid_accepted = verdict.outcome == "accepted"
        stats.add(case, verdict)

    generated = examples
    if template is not None and examples > 0:
        attempt(generators.valid_case(tx, template))
        generated -= 1
    if generated > 0:
        test = given(generators.cases(tx, template))(attempt)
        test = settings(max_examples=generated, database=None, deadline=None, derandomize=False,
                        suppress_health_check=list(HealthCheck), phases=(Phase.generate,),
                        verbosity=Verbosity.quiet, print_blob=False, report_multiple_bugs=False)(test)
        hypothesis_seed(_stable_seed(seed, tx))(test)()
    stats.server_alive_after = stats.server_alive_after and harness.alive()
    stats.seconds = time.perf_counter() - started
    return stats


def run(per_transaction: int, seed: int, only: Iterable[str] = (), timeout: float = DEFAULT_TIMEOUT,
        progress: Callable[[TransactionStats], None] | None = None) -> dict:
    """Fuzz every production transaction (or those named "contract:Tx" in `only`); the report as a dict."""
    started = time.perf_counter()
    transactions = production_transactions()
    wanted = set(only)
    unknown = wanted - {tx.function for tx in transactions}
    if unknown:
        raise ValueError(f"no such transaction: {', '.join(sorted(unknown))}")
    if wanted:
        transactions = [tx for tx in transactions if tx.function in wanted]
    results: list[TransactionStats] = []
    with Harness(timeout) as harness:
        generators = Generators(harness.world, harness.callers)
        for tx in transactions:
            stats = fuzz_transaction(harness, generators, tx, per_transaction, seed)
            results.append(stats)
            if progress is not None:
                progress(stats)
            if not stats.server_alive_after:
                break
        alive = harness.alive() if all(s.server_alive_after for s in results) else False
        warnings, first_warnings = harness.log.count, list(harness.log.first)
        untemplated = sorted(tx.function for tx in transactions if tx.function not in harness.world.templates)
    return {
        "seed": seed,
        "per_transaction": per_transaction,
        "timeout_seconds": timeout,
        "transactions": [stats.as_json() for stats in results],
        "total_tried": sum(s.tried for s in results),
        "total_accepted": sum(s.accepted for s in results),
        "total_refused": sum(s.refused for s in results),
        "total_escapes": sum(s.escapes for s in results),
        "server_alive": alive,
        "server_warnings": warnings,
        "first_server_warnings": first_warnings,
        "transactions_without_valid_arguments": untemplated,
        "seconds": round(time.perf_counter() - started, 1),
    }


def failed(report: dict) -> bool:
    return report["total_escapes"] > 0 or not report["server_alive"]


def print_table(report: dict, stream) -> None:
    """The per-transaction counts, with rich when it is there."""
    header = ("contract", "transaction", "tried", "accepted", "refused", "escapes")
    rows = [(t["contract"], t["transaction"], *(str(t[k]) for k in header[2:])) for t in report["transactions"]]
    totals = ("total", "", str(report["total_tried"]), str(report["total_accepted"]), str(report["total_refused"]),
              str(report["total_escapes"]))
    title = (f"fuzz: seed {report['seed']}, {report['per_transaction']} per transaction, {report['seconds']} s, "
             f"server {'alive' if report['server_alive'] else 'DEAD'}")
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        widths = [max(len(row[i]) for row in [header, *rows, totals]) for i in range(len(header))]
        print(title, file=stream)
        for row in [header, *rows, totals]:
            print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)), file=stream)
    else:
        table = Table(title=title)
        for index, name in enumerate(header):
            table.add_column(name, justify="right" if index >= 2 else "left")
        for row in rows:
            table.add_row(*row, style="red" if row[-1] != "0" else None)
        table.add_row(*totals, style="bold")
        Console(file=stream, width=120).print(table)
    for t in report["transactions"]:
        for shown in t["examples_of_escapes"]:
            print(f"  {t['contract']}:{t['transaction']} {shown}", file=stream)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fuzz.contracts",
                                     description="Hostile input for every contract transaction.")
    parser.add_argument("--per-transaction", type=int, default=1000, metavar="N", help="argument sets per transaction")
    parser.add_argument("--seed", type=int, default=0, help="hypothesis seed: the same seed, the same inputs")
    parser.add_argument("--json", action="store_true", help="one JSON document to stdout, the table to stderr")
    parser.add_argument("--only", action="append", default=[], metavar="CONTRACT:TX",
                        help="only these transactions (repeat, or separate with commas)")
    parser.add_argument("--report", type=Path, metavar="PATH", help="also write the JSON report there")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, help="seconds before a call is a hang")
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    options = parser.parse_args(argv)
    if options.per_transaction < 1:
        parser.error("--per-transaction must be at least 1")
    only = [name.strip() for names in options.only for name in names.split(",") if name.strip()]

    def progress(stats: TransactionStats) -> None:
        if not options.quiet:
            print(f"{stats.contract}:{stats.transaction}: {stats.tried} tried, {stats.accepted} accepted, "
                  f"{stats.refused} refused, {stats.escapes} escapes ({stats.seconds:.1f} s)", file=sys.stderr,
                  flush=True)

    try:
        report = run(options.per_transaction, options.seed, only, options.timeout, progress)
    except (ValueError, SeedingError) as exc:
        print(f"{parser.prog}: {exc}", file=sys.stderr)
        return 2
    document = json.dumps(report, indent=2, ensure_ascii=False)
    if options.report:
        options.report.parent.mkdir(parents=True, exist_ok=True)
        options.report.write_text(document + "\n", encoding="utf-8")
    print_table(report, sys.stderr if options.json else sys.stdout)
    if options.json:
        print(document)
    return 1 if failed(report) else 0


if __name__ == "__main__":
    sys.exit(main())
