"""The data service over real HTTPS on 127.0.0.1: store, fetch on an access decision, refusals, tampering, erasure.

Identities come from a crypto tree generated for the default topology; the
ledger and the audit sink are fakes, except for the decisions read from the
chaincode's contracts (through a fake peer) at the end. Each request goes over
TLS with the client certificate of the user who signed its statement (of
hospital-a's doctor when it carries none), unless a test names another caller.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import http.client
import json
import os
import secrets
import signal
import ssl
import subprocess
import sys
import threading
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterator

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from medfabric.crypto import (
    SealedPayload,
    SignedStatement,
    WrappedKey,
    open_sealed,
    seal,
    sign_statement,
    unwrap_key,
    verify_statement,
    wrap_key,
)
from medfabric.data_service.server import DataServiceServer, create_app, main
from medfabric.data_service.transport import ConsortiumTlsCas, caller_context, server_context, user_tls_files
from medfabric.consortium.fabric_id import fabric_client_id
from medfabric.gateway import ErrorDetail, GatewayError
from medfabric.gateway.identity import X509Identity, ecdsa_signer
from medfabric.consortium.layout import NetworkLayout
from medfabric.data_service.ledger_access import LedgerAccessDecisions
from medfabric.data_service.record_service import RecordService, key_context
from medfabric.consortium.service_identity import SERVICE_USER, Consortium, ServiceIdentity
from medfabric.data_service.refusal_budget import RefusalBudget, RefusalGate
from medfabric.data_service.service_ledger import AccessLedger, Decision, GrantStanding, LedgerError, Requester
from medfabric.data_service.store import FileBlobStore, FileKeyStore, FilePendingPuts
from medfabric.consortium.topology import Topology, load_topology
from medfabric_chaincode.contracts import ALL_CONTRACTS
from medfabric_chaincode.contracts.access_log import LogEntry, append_log
from medfabric_chaincode.runtime import (
    ChaincodeServer, ClientIdentity, Contract, ContractRouter, ServerConfig, TransactionContext, transaction
)
from medfabric_ops.crypto_material import generate_crypto
from tests.unit.chaincode.fakepeer import FakePeer, TxResult

PLAINTEXT = b'{"resourceType":"Observation","status":"final","code":{"text":"heart rate"}}'
RECORD = "rec-1"


@dataclass(frozen=True)
class Network:
    topology: Topology
    layout: NetworkLayout

    def user(self, domain_id: str, name: str) -> ServiceIdentity:
        """A user's identity, signer and key (ServiceIdentity is that triple for any user)."""
        domain = self.topology.domain(domain_id)
        return ServiceIdentity.load(self.layout.user_msp(domain, name), domain.msp_id)

    def ca_pem(self, domain_id: str) -> bytes:
        domain = self.topology.domain(domain_id)
        return next((self.layout.peer_org(domain) / "msp" / "cacerts").glob("*.pem")).read_bytes()

    def tls_to(self, served: str, caller: tuple[str, str]) -> ssl.SSLContext:
        """How `caller` (domain id, user) reaches the data service of `served`."""
        return caller_context(self.layout, self.topology.domain(served), self.topology.domain(caller[0]), caller[1])

    def caller_of(self, certificate_pem: str) -> tuple[str, str] | None:
        """The (domain id, user) whose enrollment certificate this is."""
        for domain in self.topology.domains:
            for folder in (self.layout.peer_org(domain) / "users").iterdir():
                if certificate_pem.encode() in [p.read_bytes() for p in (folder / "msp" / "signcerts").glob("*")]:
                    return domain.id, folder.name.split("@")[0]
        return None


@pytest.fixture(scope="module")
def network(tmp_path_factory) -> Network:
    topology = load_topology()
    layout = NetworkLayout(tmp_path_factory.mktemp("network"))
    generate_crypto(topology, layout)
    return Network(topology, layout)


@dataclass(frozen=True)
class Users:
    service: ServiceIdentity  # hospital-a's data-service user
    owner: ServiceIdentity  # hospital-a's doctor
    colleague: ServiceIdentity  # hospital-a's researcher
    reader: ServiceIdentity  # hospital-b's doctor
    other_reader: ServiceIdentity  # hospital-b's researcher


@pytest.fixture(scope="module")
def users(network) -> Users:
    return Users(
        network.user("hospital-a", SERVICE_USER), network.user("hospital-a", "doctor"),
        network.user("hospital-a", "researcher"), network.user("hospital-b", "doctor"),
        network.user("hospital-b", "researcher"),
    )


def requester_of(user: ServiceIdentity) -> Requester:
    certificate = x509.load_pem_x509_certificate(user.identity.certificate_pem)
    return Requester(user.identity.msp_id, fabric_client_id(certificate))


class FakeLedger:
    """Decisions by (channel, tx id), made with `decide`, and grants; `error` makes every lookup fail."""

    def __init__(self) -> None:
        self.decisions: dict[tuple[str, str], Decision] = {}
        self.grants: dict[tuple[str, str], GrantStanding] = {}
        self.error: str | None = None

    def decide(self, user: ServiceIdentity, record_id: str = RECORD, *, channel: str = "public",
               decision: str = "allow", age: timedelta = timedelta(0), break_glass: bool = False,
               grant: GrantStanding | None = None, grant_id: str | None = None) -> str:
        """A decision; with `grant`, one relying on it (kept as the ledger's grant unless `grant_id` names another)."""
        tx_id = secrets.token_hex(32)
        requester = requester_of(user)
        made_at = datetime.now(timezone.utc) - age
        if grant is not None:
            self.grants[(channel, grant.grant_id)] = grant
            grant_id = grant_id or grant.grant_id
        self.decisions[(channel, tx_id)] = Decision(record_id, requester.id, requester.msp_id, decision, made_at,
                                                    break_glass, grant_id)
        return tx_id

    def decision(self, channel: str, tx_id: str) -> Decision | None:
        if self.error:
            raise LedgerError(self.error)
        return self.decisions.get((channel, tx_id))

    def grant(self, channel: str, grant_id: str) -> GrantStanding | None:
        if self.error:
            raise LedgerError(self.error)
        return self.grants.get((channel, grant_id))


@dataclass(frozen=True)
class AuditEntry:
    action: str
    record_id: str | None
    outcome: str
    reason: str
    requester: Requester | None
    decision_tx: str | None
    break_glass: bool = False


@dataclass
class RecordingAudit:
    entries: list[AuditEntry] = field(default_factory=list)
    failing: bool = False

    def log_access(self, action, record_id, outcome, reason, requester, decision_tx=None, break_glass=False) -> None:
        if self.failing:
            raise RuntimeError("ledger down")
        self.entries.append(AuditEntry(action, record_id, outcome, reason, requester, decision_tx, break_glass))


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict[str, Any]
    text: str


@dataclass
class Running:
    """A served RecordService of hospital-a and what it talks to."""

    port: int
    store_dir: Any
    ledger: AccessLedger  # a FakeLedger but at the end
    audit: RecordingAudit
    users: Users
    network: Network
    service: RecordService

    def call(self, method: str, path: str, body: Any = None, caller: tuple[str, str] | None = None) -> Answer:
        """One request over TLS as `caller` (domain id, user); by default as the signer of the body's statement."""
        data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
        caller = caller or self._signer(body) or ("hospital-a", "doctor")
        connection = http.client.HTTPSConnection("127.0.0.1", self.port, timeout=5,
                                                 context=self.network.tls_to("hospital-a", caller))
        try:
            connection.request(method, path, body=data, headers={"Content-Type": "application/json"})
            response = connection.getresponse()
            text = response.read().decode()
        finally:
            connection.close()
        self.service.flush_refusals()  # a refusal's log entry is written after its answer: wait for it
        return Answer(response.status, json.loads(text), text)

    def _signer(self, body: Any) -> tuple[str, str] | None:
        if not isinstance(body, dict):
            return None
        signed = body.get("statement") if "certificate_pem" not in body else body
        certificate_pem = signed.get("certificate_pem") if isinstance(signed, dict) else None
        return self.network.caller_of(certificate_pem) if isinstance(certificate_pem, str) else None

    def identity(self) -> dict[str, str]:
        return self.call("GET", "/identity").body

    def store(self, owner: ServiceIdentity, record_id: str = RECORD, plaintext: bytes = PLAINTEXT,
              **overrides: Any) -> tuple[Answer, SealedPayload]:
        """Seal locally, wrap the data key for the service, post blob, key and signed statement."""
        sealed = seal(plaintext, aad=record_id.encode())
        service = self.identity()
        context = key_context(record_id, sealed.ciphertext_sha256, service["msp_id"])
        wrapped = wrap_key(sealed.data_key, service["certificate_pem"].encode(), context)
        content = {"action": "store", "record_id": record_id, "ciphertext_sha256": sealed.ciphertext_sha256}
        body = {
            "statement": sign_statement(content, owner.signer, owner.identity).to_dict(),
            "blob": base64.b64encode(sealed.blob).decode(),
            "wrapped_key": wrapped.to_dict(),
            **overrides,
        }
        return self.call("POST", "/records", body), sealed

    def fetch(self, body: Any, record_id: str = RECORD) -> Answer:
        return self.call("POST", f"/records/{record_id}/fetch", body)

    def blob_path(self, address: str):
        return self.store_dir / "blobs" / address[:2] / address[2:]


def signed(user: ServiceIdentity, **content: Any) -> dict[str, Any]:
    return sign_statement(content, user.signer, user.identity).to_dict()


def signed_at(user: ServiceIdentity, issued_at: datetime, **content: Any) -> dict[str, Any]:
    """A correctly signed statement with a chosen issued_at."""
    unsigned = SignedStatement(content, user.identity.msp_id, user.identity.certificate_pem.decode(),
                               secrets.token_hex(16), issued_at.isoformat(timespec="milliseconds"), b"")
    signature = user.signer(hashlib.sha256(unsigned.signed_bytes()).digest())
    return replace(unsigned, signature=signature).to_dict()


def fetch_statement(user: ServiceIdentity, decision_tx: str, record_id: str = RECORD) -> dict[str, Any]:
    return signed(user, action="fetch", record_id=record_id, decision_tx=decision_tx)


@contextlib.contextmanager
def served(network: Network, users: Users, store_dir, ledger: AccessLedger,
           refusals: RefusalBudget | None = None, fl_ledger=None, gate: RefusalGate | None = None) -> Iterator[Running]:
    """hospital-a's RecordService over HTTPS, storing in `store_dir`, deciding with `ledger` (and `fl_ledger`)."""
    audit = RecordingAudit()
    service = RecordService(
        users.service, Consortium.from_layout(network.topology, network.layout, "hospital-a"),
        FileBlobStore(store_dir / "blobs"), FileKeyStore(store_dir / "keys"), ledger, audit, refusals, fl_ledger,
        pending=FilePendingPuts(store_dir / "keys" / "pending"), orphan_grace=timedelta(seconds=30),
    )
    cas = ConsortiumTlsCas.from_layout(network.topology, network.layout)
    context = server_context(user_tls_files(network.layout, network.topology.domain("hospital-a"), SERVICE_USER), cas)
    server = DataServiceServer(create_app(service, cas, gate), context, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Running(server.server_address[1], store_dir, ledger, audit, users, network, service)
    finally:
        server.shutdown()
        thread.join(10)
        server.server_close()
        service.close()


@pytest.fixture
def running(network, users, tmp_path):
    with served(network, users, tmp_path, FakeLedger()) as run:
        yield run


@pytest.fixture
def stored(running) -> SealedPayload:
    answer, sealed = running.store(running.users.owner)
    assert answer.status == 201, answer.text
    return sealed


def assert_refused(answer: Answer, status: int, reason: str) -> None:
    """An error answer: one JSON line, the error only (no blob, no key), naming `reason`."""
    assert answer.status == status, answer.text
    assert list(answer.body) == ["error"] and reason in answer.body["error"]
    assert answer.text.count("\n") == 1 and answer.text.endswith("\n")


# -- identity ----------------------------------------------------------------------


def test_identity_gives_the_service_certificate_to_wrap_keys_to(running, users):
    answer = running.call("GET", "/identity")

    assert answer.status == 200
    assert answer.body["msp_id"] == "HospitalAMSP"
    assert answer.body["certificate_pem"].encode() == users.service.identity.certificate_pem


# -- store and fetch ---------------------------------------------------------------


def test_owner_stores_and_an_allowed_reader_of_another_domain_decrypts(running, users, network, stored):
    decision_tx = running.ledger.decide(users.reader)

    answer = running.fetch(fetch_statement(users.reader, decision_tx))

    assert answer.status == 200, answer.text
    blob = base64.b64decode(answer.body["blob"])
    assert hashlib.sha256(blob).hexdigest() == answer.body["ciphertext_sha256"] == stored.ciphertext_sha256
    context = key_context(RECORD, stored.ciphertext_sha256, "HospitalBMSP")
    data_key = unwrap_key(WrappedKey.from_dict(answer.body["wrapped_key"]), users.reader.private_key,
                          users.reader.identity.certificate_pem, context)
    plaintext = open_sealed(blob, data_key, aad=RECORD.encode())
    assert hashlib.sha256(plaintext).hexdigest() == stored.plaintext_sha256
    delivery = verify_statement(SignedStatement.from_dict(answer.body["delivery"]), [network.ca_pem("hospital-a")],
                                max_age_s=60)
    reader = requester_of(users.reader)
    assert delivery.statement == {
        "action": "deliver", "record_id": RECORD, "ciphertext_sha256": stored.ciphertext_sha256,
        "requester": {"msp_id": reader.msp_id, "id": reader.id}, "decision_tx": decision_tx,
        "recipient_key_id": answer.body["wrapped_key"]["recipient_key_id"],
    }
    assert [(e.action, e.outcome, e.requester, e.decision_tx) for e in running.audit.entries] == [
        ("write", "success", requester_of(users.owner), None), ("deliver", "success", reader, decision_tx),
    ]


def test_store_answers_the_address_and_keeps_only_ciphertext_and_wrapped_key(running, stored):
    assert running.blob_path(stored.ciphertext_sha256).read_bytes() == stored.blob
    key_file = json.loads((running.store_dir / "keys" / "keys" / f"{RECORD}.json").read_text())
    assert key_file["ciphertext_sha256"] == stored.ciphertext_sha256
    assert base64.b64encode(stored.data_key).decode() not in json.dumps(key_file)


def test_internal_reader_is_decided_on_the_local_channel(running, users, stored):
    decision_tx = running.ledger.decide(users.colleague, channel="hospital-a-local")

    answer = running.fetch(fetch_statement(users.colleague, decision_tx))

    assert answer.status == 200, answer.text


# -- refusals ----------------------------------------------------------------------

Case = Callable[[Running], tuple[dict[str, Any], str, bool]]  # body, reason, whether the signer was verified


def no_decision(run: Running):
    return fetch_statement(run.users.reader, secrets.token_hex(32)), "no access decision", True


def denying_decision(run: Running):
    return fetch_statement(run.users.reader, run.ledger.decide(run.users.reader, decision="deny")), "is deny", True


def decision_for_another_record(run: Running):
    tx = run.ledger.decide(run.users.reader, "rec-2")
    return fetch_statement(run.users.reader, tx), "for another record", True


def decision_for_another_requester(run: Running):
    tx = run.ledger.decide(run.users.other_reader)
    return fetch_statement(run.users.reader, tx), "for another requester", True


def decision_on_another_channel(run: Running):
    tx = run.ledger.decide(run.users.reader, channel="hospital-b-local")
    return fetch_statement(run.users.reader, tx), "no access decision", True


def stale_decision(run: Running):
    tx = run.ledger.decide(run.users.reader, age=timedelta(minutes=3))
    return fetch_statement(run.users.reader, tx), "not within the last 0:02:00", True


def standing_grant(grant_id: str = "ab" * 32, *, revoked: bool = False,
                   expires_in: timedelta = timedelta(hours=1)) -> GrantStanding:
    return GrantStanding(grant_id, revoked, datetime.now(timezone.utc) + expires_in)


def grant_revoked_since(run: Running):
    tx = run.ledger.decide(run.users.reader, grant=standing_grant(revoked=True))
    return fetch_statement(run.users.reader, tx), f"its grant {'ab' * 32} has been revoked", True


def grant_expired_since(run: Running):
    tx = run.ledger.decide(run.users.reader, grant=standing_grant(expires_in=timedelta(seconds=-1)))
    return fetch_statement(run.users.reader, tx), f"its grant {'ab' * 32} expired at", True


def grant_not_on_the_ledger(run: Running):
    tx = run.ledger.decide(run.users.reader, grant=standing_grant(), grant_id="cd" * 32)
    return fetch_statement(run.users.reader, tx), f"its grant {'cd' * 32} is not on the ledger", True


def forged_signature(run: Running):
    body = fetch_statement(run.users.reader, secrets.token_hex(32))
    body["statement"]["decision_tx"] = run.ledger.decide(run.users.reader)  # altered after signing
    return body, "signature does not verify", False


def untrusted_ca(run: Running):
    ca_key, ca = make_certificate("ca.hospital-b.medfabric.local")
    key, pem = make_certificate("doctor@hospital-b.medfabric.local", issuer=(ca_key, ca))
    body = sign_statement({"action": "fetch", "record_id": RECORD, "decision_tx": run.ledger.decide(run.users.reader)},
                          ecdsa_signer(key), X509Identity("HospitalBMSP", pem)).to_dict()
    return body, "not issued by a trusted CA", False


def signer_outside_the_consortium(run: Running):
    body = fetch_statement(run.users.reader, run.ledger.decide(run.users.reader))
    body["msp_id"] = "EvilMSP"
    return body, "not a member of the consortium", False


def expired_statement(run: Running):
    issued_at = datetime.now(timezone.utc) - timedelta(seconds=200)
    tx = run.ledger.decide(run.users.reader)
    return signed_at(run.users.reader, issued_at, action="fetch", record_id=RECORD, decision_tx=tx), "older than", False


def statement_for_another_action(run: Running):
    tx = run.ledger.decide(run.users.reader)
    return signed(run.users.reader, action="erase", record_id=RECORD, decision_tx=tx), "not for action fetch", True


def statement_for_another_record(run: Running):
    tx = run.ledger.decide(run.users.reader, "rec-2")
    return fetch_statement(run.users.reader, tx, record_id="rec-2"), f"not for record {RECORD}", True


def statement_without_decision(run: Running):
    return signed(run.users.reader, action="fetch", record_id=RECORD), "names no decision_tx", True


REFUSALS: list[Case] = [
    no_decision, denying_decision, decision_for_another_record, decision_for_another_requester,
    decision_on_another_channel, stale_decision, grant_revoked_since, grant_expired_since, grant_not_on_the_ledger,
    forged_signature, untrusted_ca, signer_outside_the_consortium, expired_statement, statement_for_another_action,
    statement_for_another_record, statement_without_decision,
]


ON_THE_DECISION = {no_decision, denying_decision, decision_for_another_record, decision_for_another_requester,
                   decision_on_another_channel, stale_decision, grant_revoked_since, grant_expired_since,
                   grant_not_on_the_ledger}  # refused after the statement checks


@pytest.mark.parametrize("case", REFUSALS, ids=[case.__name__ for case in REFUSALS])
def test_fetch_refused_without_data_and_audited_as_denied(running, users, stored, case):
    body, reason, verified = case(running)

    answer = running.fetch(body)

    assert_refused(answer, 403, reason)
    last = running.audit.entries[-1]
    assert (last.action, last.record_id, last.outcome) == ("denied", RECORD, "failure")
    assert reason in last.reason
    assert last.requester == (requester_of(users.reader) if verified else None)
    assert last.decision_tx == (body["statement"]["decision_tx"] if case in ON_THE_DECISION else None)


def test_a_decision_on_a_standing_grant_opens_the_record(running, users, stored):
    answer = running.fetch(fetch_statement(users.reader, running.ledger.decide(users.reader, grant=standing_grant())))

    assert answer.status == 200, answer.text
    assert not running.audit.entries[-1].break_glass


def test_what_follows_a_break_glass_decision_is_audited_as_break_glass(running, users, stored):
    delivered = running.fetch(fetch_statement(users.reader, running.ledger.decide(users.reader, break_glass=True)))
    path = running.blob_path(stored.ciphertext_sha256)
    blob = path.read_bytes()
    path.write_bytes(blob[:-1] + bytes([blob[-1] ^ 0xFF]))  # changed: the next fetch fails after its decision
    failed = running.fetch(fetch_statement(users.reader, running.ledger.decide(users.reader, break_glass=True)))

    assert delivered.status == 200, delivered.text
    assert failed.status == 409
    assert [(e.action, e.outcome, e.break_glass) for e in running.audit.entries[-2:]] == [
        ("deliver", "success", True), ("deliver", "failure", True)
    ]


class ManualClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_refusals_over_a_requesters_budget_are_counted_not_logged(network, users, tmp_path):
    clock = ManualClock()
    with served(network, users, tmp_path, FakeLedger(), RefusalBudget(burst=2, rate_per_s=1, clock=clock)) as run:
        answers = [run.fetch(fetch_statement(users.reader, secrets.token_hex(32))) for _ in range(5)]
        unverified = run.fetch({"statement": "garbage"})
        clock.now = 1.0
        later = run.fetch(fetch_statement(users.reader, secrets.token_hex(32)))

    assert [answer.status for answer in answers] == [403] * 5  # every caller is answered all the same
    assert unverified.status == 400 and later.status == 403
    reasons = [(entry.requester, entry.reason) for entry in run.audit.entries]
    reader = requester_of(users.reader)
    assert [requester for requester, _ in reasons] == [reader, reader, None, reader]
    assert reasons[3][1].startswith("[3 earlier refusals of this requester over its budget not logged] decision ")


def test_a_decision_a_minute_old_still_opens_the_record(running, users, stored):
    decision_tx = running.ledger.decide(users.reader, age=timedelta(minutes=1))
    answer = running.fetch(fetch_statement(users.reader, decision_tx))
    assert answer.status == 200, answer.text


def test_replayed_statement_is_refused(running, users, stored):
    body = fetch_statement(users.reader, running.ledger.decide(users.reader))

    first, replayed = running.fetch(body), running.fetch(body)

    assert first.status == 200, first.text
    assert_refused(replayed, 403, "has been seen before")
    assert running.audit.entries[-1].action == "denied"


def test_unknown_record_is_not_found(running, users):
    decision_tx = running.ledger.decide(users.reader, "rec-9")

    assert_refused(running.fetch(fetch_statement(users.reader, decision_tx, "rec-9"), "rec-9"), 404, "not found")


def test_no_delivery_when_the_ledger_cannot_be_asked(running, users, stored):
    body = fetch_statement(users.reader, running.ledger.decide(users.reader))
    running.ledger.error = "peer unreachable"

    assert_refused(running.fetch(body), 503, "ledger unavailable: peer unreachable")


def test_no_delivery_that_cannot_be_logged(running, users, stored):
    body = fetch_statement(users.reader, running.ledger.decide(users.reader))
    running.audit.failing = True

    assert_refused(running.fetch(body), 503, "access log unavailable")


# -- tampering ---------------------------------------------------------------------


def test_tampered_blob_is_detected_and_nothing_delivered(running, users, stored):
    path = running.blob_path(stored.ciphertext_sha256)
    blob = path.read_bytes()
    path.write_bytes(blob[:-1] + bytes([blob[-1] ^ 0xFF]))  # a changed byte, whatever it was

    answer = running.fetch(fetch_statement(users.reader, running.ledger.decide(users.reader)))

    assert_refused(answer, 409, "stored ciphertext does not match its hash")
    last = running.audit.entries[-1]
    assert (last.action, last.outcome) == ("deliver", "failure")
    assert last.reason == "stored ciphertext does not match its hash"


def test_tampered_data_key_is_detected_and_nothing_delivered(running, users, stored):
    path = running.store_dir / "keys" / "keys" / f"{RECORD}.json"
    key_file = json.loads(path.read_text())
    key_file["wrapped_key"]["wrapped_key"] = base64.b64encode(os.urandom(40)).decode()
    path.write_text(json.dumps(key_file))

    answer = running.fetch(fetch_statement(users.reader, running.ledger.decide(users.reader)))

    assert_refused(answer, 409, "stored data key does not open for this service")


# -- storing refused ---------------------------------------------------------------


def test_only_the_owner_domain_stores(running, users):
    answer, _ = running.store(users.reader)

    assert_refused(answer, 403, "only users of HospitalAMSP may store")
    assert not (running.store_dir / "blobs").exists()
    assert running.audit.entries[-1].action == "denied"


def test_store_refuses_a_blob_other_than_the_signed_one(running, users):
    answer, _ = running.store(users.owner, blob=base64.b64encode(b"MFP\x01other").decode())

    assert_refused(answer, 400, "does not match the signed ciphertext_sha256")


def test_store_refuses_plaintext(running, users):
    content = {"action": "store", "record_id": RECORD, "ciphertext_sha256": hashlib.sha256(PLAINTEXT).hexdigest()}
    answer, _ = running.store(users.owner, statement=signed(users.owner, **content),
                              blob=base64.b64encode(PLAINTEXT).decode())

    assert_refused(answer, 400, "not a sealed MedFabric payload")


def test_store_refuses_a_key_not_wrapped_for_the_service(running, users):
    wrapped = wrap_key(os.urandom(32), users.reader.identity.certificate_pem, b"elsewhere")

    answer, _ = running.store(users.owner, wrapped_key=wrapped.to_dict())

    assert_refused(answer, 400, "wrapped_key does not open for this service")


def test_a_record_is_stored_once(running, users, stored):
    (running.store_dir / "keys" / "pending" / f"{RECORD}.json").unlink()  # as once the sweep saw it indexed

    answer, _ = running.store(users.owner)

    assert_refused(answer, 409, f"record {RECORD} is already stored")
    assert "not indexed" not in answer.body["error"]


def test_a_store_is_pending_until_seen_indexed_and_a_second_put_is_told_when_to_retry(running, users, stored):
    pending = json.loads((running.store_dir / "keys" / "pending" / f"{RECORD}.json").read_text())
    stored_at = datetime.fromisoformat(pending["stored_at"])

    answer, _ = running.store(users.owner)

    assert pending["ciphertext_sha256"] == stored.ciphertext_sha256
    assert abs(datetime.now(timezone.utc) - stored_at) < timedelta(seconds=10)
    settled = (stored_at + timedelta(seconds=30)).isoformat(timespec="seconds")
    assert_refused(answer, 409, f"record {RECORD} is already stored but not indexed")
    assert f"destroyed if still not indexed at {settled}; put it again after that" in answer.body["error"]


def test_a_store_that_cannot_be_logged_keeps_nothing_and_says_retry(running, users):
    running.audit.failing = True

    answer, sealed = running.store(users.owner)

    assert_refused(answer, 503, f"the write of record {RECORD} is not logged, and nothing of it was kept: retry")
    assert [path for path in running.store_dir.rglob("*") if path.is_file()] == []
    running.audit.failing = False
    again, _ = running.store(users.owner)
    assert again.status == 201, again.text


# -- erasure -----------------------------------------------------------------------


def test_erase_destroys_ciphertext_and_key_and_later_fetches_are_gone(running, users, stored):
    answer = running.call("DELETE", f"/records/{RECORD}", signed(users.owner, action="erase", record_id=RECORD))

    assert answer.status == 200, answer.text
    assert not running.blob_path(stored.ciphertext_sha256).exists()
    assert not (running.store_dir / "keys" / "keys" / f"{RECORD}.json").exists()
    assert not (running.store_dir / "keys" / "pending" / f"{RECORD}.json").exists()
    erased = running.audit.entries[-1]
    assert (erased.action, erased.outcome) == ("erase", "success")
    fetched = running.fetch(fetch_statement(users.reader, running.ledger.decide(users.reader)))
    assert_refused(fetched, 410, "record erased")
    again, _ = running.store(users.owner)
    assert_refused(again, 410, "record erased")


def test_only_the_owner_domain_erases(running, users, stored):
    answer = running.call("DELETE", f"/records/{RECORD}", signed(users.reader, action="erase", record_id=RECORD))

    assert_refused(answer, 403, "only users of HospitalAMSP may erase")
    assert running.blob_path(stored.ciphertext_sha256).exists()


# -- malformed requests and the access log -------------------------------------------


@pytest.mark.parametrize("method, path", [("POST", f"/records/{RECORD}/fetch"), ("POST", "/records"),
                                          ("DELETE", f"/records/{RECORD}")])
@pytest.mark.parametrize("body", [b"{not json", b"[1, 2]", b""])
def test_malformed_json_is_a_one_line_400(running, method, path, body):
    answer = running.call(method, path, body)

    assert_refused(answer, 400, "request body is not a JSON object")
    assert running.audit.entries[-1].outcome == "failure"


@pytest.mark.parametrize("method, path, status", [("GET", "/nowhere", 404), ("GET", "/records", 405),
                                                  ("POST", "/identity", 405), ("POST", "/records/a%2Fb/fetch", 404)])
def test_unknown_endpoints_and_methods(running, method, path, status):
    assert running.call(method, path).status == status


def test_log_lines_name_method_path_status_and_requester_only(running, users, stored, caplog):
    caplog.set_level("INFO", logger="medfabric.data_service")
    body = fetch_statement(users.reader, running.ledger.decide(users.reader))

    answer = running.fetch(body)

    assert [record.getMessage() for record in caplog.records] == [
        f"POST /records/{RECORD}/fetch 200 doctor@hospital-b.medfabric.local of HospitalBMSP"]
    for secret in (answer.body["blob"], answer.body["wrapped_key"]["wrapped_key"], body["signature"], "heart rate"):
        assert secret not in caplog.text


# -- TLS: callers authenticated by their domains' Fabric identities, refusal floods gated ----------


def raw_tls_request(port: int, context: ssl.SSLContext) -> int | str:
    """GET /identity: the HTTP status, or "no answer" when the server ends the TLS session instead."""
    connection = http.client.HTTPSConnection("127.0.0.1", port, timeout=5, context=context)
    try:
        connection.request("GET", "/identity")
        return connection.getresponse().status
    except (ssl.SSLError, ConnectionError):  # http.client.RemoteDisconnected included
        return "no answer"
    finally:
        connection.close()


def test_a_caller_without_a_client_certificate_gets_no_answer(running, network):
    context = ssl.create_default_context(cadata=network.layout.peer_tls_ca(
        network.topology.domain("hospital-a")).read_text())

    assert raw_tls_request(running.port, context) == "no answer"
    assert running.audit.entries == []


def test_a_client_certificate_from_outside_the_consortium_gets_no_answer(running, network, tmp_path):
    ca_key, ca_pem = make_certificate("outsider CA")
    key, pem = make_certificate("doctor@outsider.example", issuer=(ca_key, ca_pem))
    (tmp_path / "client.crt").write_bytes(pem)
    (tmp_path / "client.key").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    context = ssl.create_default_context(cadata=network.layout.peer_tls_ca(
        network.topology.domain("hospital-a")).read_text())
    context.load_cert_chain(tmp_path / "client.crt", tmp_path / "client.key")

    assert raw_tls_request(running.port, context) == "no answer"
    assert running.audit.entries == []


def test_a_statement_sent_over_another_users_tls_session_is_refused_and_logged(running, users, stored):
    decision_tx = running.ledger.decide(users.reader)

    answer = running.call("POST", f"/records/{RECORD}/fetch", fetch_statement(users.reader, decision_tx),
                          caller=("hospital-b", "researcher"))

    assert_refused(answer, 403, "signed by doctor@hospital-b.medfabric.local of HospitalBMSP, but the TLS client "
                                "certificate is researcher@hospital-b.medfabric.local of HospitalBMSP's")
    last = running.audit.entries[-1]
    assert (last.action, last.outcome, last.requester) == ("denied", "failure", requester_of(users.reader))


def test_a_flood_of_refused_requests_is_gated_for_its_client_only(network, users, tmp_path):
    clock = ManualClock()
    with served(network, users, tmp_path, FakeLedger(), gate=RefusalGate(burst=3, rate_per_s=1, clock=clock)) as run:
        flood = [run.fetch(fetch_statement(users.other_reader, secrets.token_hex(32))) for _ in range(6)]
        decision_tx = run.ledger.decide(users.reader)
        stored_answer, _ = run.store(users.owner)
        honest = run.fetch(fetch_statement(users.reader, decision_tx))
        clock.now += 1
        after_a_second = run.fetch(fetch_statement(users.other_reader, secrets.token_hex(32)))
        logged = len(run.audit.entries)

    assert [answer.status for answer in flood] == [403, 403, 403, 429, 429, 429]
    assert flood[3].body == {"error": "too many refused requests from researcher@hospital-b.medfabric.local of "
                                      "HospitalBMSP: retry in 1 s"}
    assert stored_answer.status == 201 and honest.status == 200, honest.text
    assert after_a_second.status == 403
    assert logged == 3 + 2 + 1  # the gated requests were not looked at: no statement check, no log entry


# -- decisions kept by the chaincode ------------------------------------------------------


class LookAlikeLog(Contract):
    """Writes an access-log entry shaped like a consent decision ("read", "success") without deciding anything."""

    name = "look_alike"

    @transaction
    def Log(self, ctx: TransactionContext, record_id: str) -> LogEntry:
        return append_log(ctx, "read", "success", record_id, "own domain")


def now() -> dict[str, datetime]:
    """FakePeer.invoke() options for a transaction made now."""
    return {"timestamp": datetime.now(timezone.utc)}


@dataclass(frozen=True)
class PeerGateway:
    """A Gateway (network, contract) evaluating on the chaincode through a FakePeer, failing in the Gateway's words."""

    peer: FakePeer
    channel: str = ""
    contract: str = ""

    def get_network(self, channel: str) -> PeerGateway:
        return replace(self, channel=channel)

    def get_contract(self, chaincode: str, contract: str) -> PeerGateway:
        return replace(self, contract=contract)

    def evaluate_transaction(self, function: str, *args: str) -> bytes:
        result = self.peer.invoke(f"{self.contract}:{function}", *args, channel=self.channel, **now())
        if result.status != 200:
            answer = f"chaincode response {result.status}, {result.message}"
            raise GatewayError(f"evaluate call to endorser returned error: {answer}", grpc_code=grpc.StatusCode.UNKNOWN,
                               details=[ErrorDetail("peer0.hospital-a:7051", "HospitalAMSP", answer)])
        return result.payload


@dataclass(frozen=True)
class OnChain:
    run: Running
    peer: FakePeer  # the chaincode's contracts and LookAlikeLog, one world state


@pytest.fixture
def on_chain(network, users, tmp_path) -> Iterator[OnChain]:
    """hospital-a's service deciding with consent:GetDecision, evaluated on the chaincode's contracts."""
    config = ServerConfig(address="127.0.0.1:0", chaincode_id="medfabric_0.1.0:test", tls=None)
    server = ChaincodeServer(config, ContractRouter([*ALL_CONTRACTS, LookAlikeLog]))
    peer = FakePeer(f"127.0.0.1:{server.start()}", users.service.identity.serialize(), users.service.private_key)
    try:
        peer.connect()
        with served(network, users, tmp_path, LedgerAccessDecisions(PeerGateway(peer), propagation_wait=0)) as run:
            yield OnChain(run, peer)
    finally:
        peer.close()
        server.stop(0)


def committed(result: TxResult) -> TxResult:
    assert result.status == 200, result.message
    return result


def stored_and_granted(on_chain: OnChain, users: Users) -> str:
    """Store the record with hospital-a's service, index it, grant it to hospital-b; the grant id."""
    run, peer = on_chain.run, on_chain.peer
    stored, sealed = run.store(users.owner)
    assert stored.status == 201, stored.text
    owner = users.owner.identity.serialize()
    entry = {"record_id": RECORD, "patient": "p1", "domain": "hospital-a", "resource_type": "Observation",
             "ciphertext_sha256": sealed.ciphertext_sha256, "plaintext_sha256": sealed.plaintext_sha256,
             "size": len(sealed.blob), "location": f"https://data.hospital-a.example/records/{RECORD}"}
    committed(peer.invoke("emr_index:PutRecord", json.dumps(entry), creator=owner, **now()))
    grant = {"record_id": RECORD, "domain": "hospital-a", "grantee_msp": "HospitalBMSP", "purpose": "treatment",
             "expires": (datetime.now(timezone.utc) + timedelta(hours=1)).isoformat()}
    return committed(peer.invoke("consent:GrantAccess", json.dumps(grant), creator=owner, **now())).json()["grant_id"]


def test_only_a_decision_kept_by_consent_opens_a_record(on_chain, users):
    run, peer = on_chain.run, on_chain.peer
    stored_and_granted(on_chain, users)
    reader = users.reader.identity.serialize()
    forged = {"record_id": RECORD, "action": "read", "outcome": "success", "reason": "own domain"}

    refused = peer.invoke("access_log:LogAccess", json.dumps(forged), creator=reader, **now())
    logged = peer.invoke("access_log:LogAccess", json.dumps({**forged, "action": "request"}), creator=reader, **now())
    look_alike = peer.invoke("look_alike:Log", RECORD, creator=reader, **now())
    decided = peer.invoke("consent:CheckAccess", RECORD, creator=reader, **now())

    assert (refused.status, refused.writes) == (500, {})
    for entry_tx in (committed(logged).tx_id, committed(look_alike).tx_id):
        answer = run.fetch(fetch_statement(users.reader, entry_tx))
        assert_refused(answer, 403, f"decision {entry_tx} on public: no access decision by that transaction")
    assert committed(decided).json()["decision"] == "allow"
    delivered = run.fetch(fetch_statement(users.reader, decided.tx_id))
    assert delivered.status == 200, delivered.text
    assert [(e.action, e.outcome, e.decision_tx) for e in run.audit.entries[1:]] == [
        ("denied", "failure", logged.tx_id), ("denied", "failure", look_alike.tx_id),
        ("deliver", "success", decided.tx_id),
    ]


def test_a_revoke_counts_for_a_decision_made_before_it(on_chain, users):
    run, peer = on_chain.run, on_chain.peer
    grant_id = stored_and_granted(on_chain, users)
    decided = committed(peer.invoke("consent:CheckAccess", RECORD, creator=users.reader.identity.serialize(), **now()))
    assert decided.json()["grant_id"] == grant_id
    committed(peer.invoke("consent:RevokeGrant", grant_id, creator=users.owner.identity.serialize(), **now()))

    answer = run.fetch(fetch_statement(users.reader, decided.tx_id))

    assert_refused(answer, 403, f"decision {decided.tx_id} on public: its grant {grant_id} has been revoked")


# -- identities and the entry point ----------------------------------------------------


def test_requester_id_is_the_one_the_chaincode_logs(users):
    tricky_key, tricky = make_certificate('Doe, "J" +1 ', units=("ward 3", "#icu"))
    pems = [user.identity.certificate_pem for user in (users.owner, users.reader)] + [tricky]

    for pem in pems:
        chaincode_id = ClientIdentity(X509Identity("HospitalAMSP", pem).serialize()).get_id()
        assert fabric_client_id(x509.load_pem_x509_certificate(pem)) == chaincode_id


def test_main_refuses_an_unknown_domain_in_one_line(capsys):
    assert main(["--domain", "hospital-z"]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_main_serves_until_sigterm(network, tmp_path):
    environment = {**os.environ, "MEDFABRIC_BUILD_DIR": str(network.layout.root)}
    command = [sys.executable, "-m", "medfabric.data_service", "--domain", "hospital-b", "--port", "0",
               "--store", str(tmp_path)]
    process = subprocess.Popen(command, env=environment, stderr=subprocess.PIPE, text=True)
    try:
        line = process.stderr.readline()
        port = int(line.rsplit(":", 1)[1])
        connection = http.client.HTTPSConnection("127.0.0.1", port, timeout=5,
                                                 context=network.tls_to("hospital-b", ("hospital-a", "doctor")))
        connection.request("GET", "/identity")
        assert json.loads(connection.getresponse().read())["msp_id"] == "HospitalBMSP"
        connection.close()
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(10) == 0
    assert "listening on https://127.0.0.1:" in line


def make_certificate(common_name: str, issuer=None, units: tuple[str, ...] = ()):
    """A P-256 key and certificate (self-signed CA without `issuer`)."""
    key = ec.generate_private_key(ec.SECP256R1())
    attributes = [x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, unit) for unit in units]
    subject = x509.Name([*attributes, x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    issuer_key, issuer_name = (key, subject)
    if issuer:
        issuer_key, issuer_name = issuer[0], x509.load_pem_x509_certificate(issuer[1]).subject
    now = datetime.now(timezone.utc)
    certificate = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(issuer_name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=issuer is None, path_length=None), critical=True)
        .sign(issuer_key, hashes.SHA256())
    )
    return key, certificate.public_bytes(serialization.Encoding.PEM)


def test_main_reads_the_topology_from_the_environment(monkeypatch, tmp_path, capsys):
    from medfabric.data_service.server import main

    monkeypatch.setenv("MEDFABRIC_TOPOLOGY", str(tmp_path / "elsewhere.yaml"))
    assert main(["--domain", "hospital-a"]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "elsewhere.yaml" in error[0]
