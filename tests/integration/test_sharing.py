"""EMR sharing end to end on the real consortium that `up` starts: every rule of the sharing flows.

The same rules as tests/unit/client/test_emr_flows.py, test_audit.py and
test_cli_emr.py (which run them on a fake Fabric), here through real peers,
orderers, chaincode servers and each domain's data service, the process `up`
starts (its store: layout.node_data("data-service.<org domain>")). The first
domain owns the records, the second reads across domains, the third is the
outsider and the break-glass doctor.

Each test uses its own patient pseudonym, so its record ids are its own. A
write commits on the peer of the Gateway that submitted it; before another
domain acts on it, the tests wait (bounded) until every duty peer of the
public channel has it, so that what is tested is the rule, not block
propagation. Every wait is bounded, and every test has a time limit.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
import uuid
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from medfabric.bench.unauthorized_reads import (
    altered_statement, impersonating_statement, run_unauthorized_reads, stale_statement
)
from medfabric.sharing import audit
from medfabric.sharing import emr as emr_module
from medfabric.cli.main import cli
from medfabric.consortium.connection import connect_as
from medfabric.sharing.contracts import AccessLog
from medfabric.crypto import canonical_json
from medfabric.data_service.client import DataServiceClient, DataServiceError
from medfabric.data_service.delivery import DeliveryRejected
from medfabric.sharing.emr import (
    AccessDenied, RecordErased, RecordNotFound, emergency_read, erase, get_record, grant, prepare_payload, put_record,
    request, revoke,
)
from medfabric.errors import MedfabricError
from medfabric.gateway import GatewayError
from medfabric.consortium.layout import NetworkLayout
from medfabric.data_service.record_service import STATEMENT_MAX_AGE_S
from medfabric.sharing.session import Session
from medfabric.sharing.synthetic import generate_patient_bundle
from medfabric.consortium.topology import Domain, Topology
from medfabric_ops.data_services import data_service_name, ready_probe, start_data_service
from medfabric_ops.process import Supervisor

from ..cli_runner import cli_runner

TEST_TIME_LIMIT_S = 300  # each test's own time, the consortium's start excluded
VISIBLE_WITHIN_S = 30  # for a committed write to reach the other peers, or a log entry to show
GRANT_LIFETIME_S = 20  # of the grant that is left to expire
DATA_SERVICE_READY_S = 60

pytestmark = [pytest.mark.integration, pytest.mark.timeout(TEST_TIME_LIMIT_S, func_only=True)]


# -- the consortium a test acts in ----------------------------------------------------------


@dataclass
class Live:
    """The running consortium, its users' sessions (opened on demand, closed after the test) and its stores."""

    topology: Topology
    layout: NetworkLayout
    stack: ExitStack
    _sessions: dict[tuple[str, str], Session] = field(default_factory=dict)

    @property
    def owner(self) -> Domain:
        return self.topology.domains[0]

    @property
    def reader(self) -> Domain:
        return self.topology.domains[1]

    @property
    def third(self) -> Domain:
        return self.topology.domains[-1]

    @property
    def public(self) -> str:
        return self.topology.public_channel.name

    def session(self, domain: Domain, user: str = "doctor") -> Session:
        """`user` of `domain`, connected through the domain's duty peer."""
        key = (domain.id, user)
        if key not in self._sessions:
            gateway = self.stack.enter_context(
                connect_as(domain.id, user, topology=self.topology, layout=self.layout))
            self._sessions[key] = Session(self.topology, self.layout, domain, user, gateway)
        return self._sessions[key]

    # -- the data services' stores, as `up` lays them out (medfabric.data_service.store) ---------------

    def store(self, domain: Domain) -> Path:
        return self.layout.node_data(data_service_name(domain))

    def blob_file(self, domain: Domain, ciphertext_sha256: str) -> Path:
        return self.store(domain) / "blobs" / ciphertext_sha256[:2] / ciphertext_sha256[2:]

    def key_file(self, domain: Domain, record_id: str) -> Path:
        return self.store(domain) / "keys" / "keys" / f"{record_id}.json"

    def erased_marker(self, domain: Domain, record_id: str) -> Path:
        return self.store(domain) / "keys" / "erased" / f"{record_id}.json"

    def stored_files(self, domain: Domain) -> set[Path]:
        """Every file of the domain's store (blobs, keys, erasure markers)."""
        return {path for path in self.store(domain).rglob("*") if path.is_file()}

    # -- the data service process ------------------------------------------------------------

    def stop_data_service(self, domain: Domain) -> None:
        supervisor = Supervisor(self.layout)
        name = data_service_name(domain)
        assert supervisor.is_running(name), f"{name} is not a process `up` started here"
        assert supervisor.stop(name)

    def start_data_service(self, domain: Domain) -> None:
        """As `up` starts it; returns once it serves."""
        supervisor = Supervisor(self.layout)
        start_data_service(supervisor, self.topology, self.layout, domain)
        supervisor.wait_ready(data_service_name(domain), ready_probe(self.topology, self.layout, domain),
                              DATA_SERVICE_READY_S)


@pytest.fixture
def live(consortium) -> Iterator[Live]:
    topology, layout, _env = consortium
    with ExitStack() as stack:
        yield Live(topology, layout, stack)


# -- helpers ----------------------------------------------------------------------------------


def eventually(probe: Callable[[], Any], what: str, timeout: float = VISIBLE_WITHIN_S) -> Any:
    """probe()'s first truthy answer, polled for at most `timeout` seconds."""
    deadline = time.monotonic() + timeout
    pause = 0.1
    while True:
        answer = probe()
        if answer:
            return answer
        if time.monotonic() > deadline:
            pytest.fail(f"not within {timeout:g} s: {what}")
        time.sleep(pause)
        pause = min(pause * 1.5, 1.0)


def new_patient() -> str:
    return f"P-IT-{uuid.uuid4().hex[:12]}"


def observation(patient: str) -> bytes:
    """An Observation of the patient (not canonical JSON: the record holds the canonical form)."""
    return json.dumps(generate_patient_bundle(uuid.uuid4().int % 100_000, patient, n_observations=1)[2],
                      indent=2).encode()


def put(live: Live, *, publish: bool = True, patient: str | None = None) -> str:
    """A new record of the owner's doctor; its id, once every duty peer of the public channel has it (if published)."""
    patient = patient or new_patient()
    payload = prepare_payload(observation(patient), patient)
    record_id = put_record(live.session(live.owner), payload, publish=publish)["record_id"]
    if publish:
        for domain in live.topology.domains:
            index = live.session(domain).index(live.public)
            eventually(lambda: index.find(record_id), f"{domain.id} sees {record_id} on {live.public}")
    return record_id


def consent_view(live: Live, domain: Domain, grant_id: str) -> dict | None:
    """The grant as the domain's duty peer has it, or None."""
    contract = live.session(domain).gateway.get_network(live.public).get_contract(
        live.topology.chaincode.name, "consent")
    try:
        return json.loads(contract.evaluate_transaction("GetGrant", grant_id))
    except GatewayError as error:
        if "not found" in str(error):
            return None
        raise


def on_every_peer(live: Live, grant_id: str, check: Callable[[dict], bool], what: str) -> None:
    for domain in live.topology.domains:
        eventually(lambda: (found := consent_view(live, domain, grant_id)) is not None and check(found),
                   f"{domain.id} sees grant {grant_id} {what}")


def grant_to_reader(live: Live, record_id: str, *, seconds: float = 3600, user: str | None = None,
                    purpose: str = "treatment") -> dict:
    """The owner grants the record to the reader's domain (or one user of it), for `purpose`; the grant."""
    until = datetime.now(timezone.utc) + timedelta(seconds=seconds)
    granted = grant(live.session(live.owner), record_id, live.reader.id, purpose, until, user)
    on_every_peer(live, granted["grant_id"], lambda _grant: True, "granted")
    return granted


def revoke_everywhere(live: Live, grant_id: str) -> dict:
    revoked = revoke(live.session(live.owner), grant_id)
    on_every_peer(live, grant_id, lambda found: found["revoked"], "revoked")
    return revoked


def entries(session: Session, channel: str, record_id: str) -> list[dict]:
    return audit.log(session, channel, record_id)


def logged(session: Session, channel: str, record_id: str, match: Callable[[dict], bool], what: str) -> list[dict]:
    """The record's entries on the channel that `match`, once there is one (as `session`'s peer has them)."""
    return eventually(lambda: [e for e in entries(session, channel, record_id) if match(e)],
                      f"{what} logged on {channel} for {record_id}")


def deliveries_to(live: Live, record_id: str, requester: Domain) -> list[dict]:
    """Successful deliveries of the record to the requester's domain, as the owner's service logged them."""
    return [e for e in entries(live.session(live.owner), live.public, record_id)
            if e["action"] == "deliver" and e["outcome"] == "success" and e["requester_msp"] == requester.msp_id]


def assert_denied_logged_and_nothing_delivered(live: Live, record_id: str, reason: str, out: Path,
                                               delivered_before: int = 0) -> None:
    """After the reader's read was denied for `reason`: nothing written, the ledger's denial is logged, the data
    service refuses that decision (and logs the refusal), and no ciphertext or key went to the reader."""
    reader, owner_view = live.session(live.reader), live.session(live.owner)
    assert not out.exists()
    denials = logged(owner_view, live.public, record_id,
                     lambda e: (e["action"], e["outcome"], e["actor_msp"], e["reason"])
                     == ("denied", "failure", live.reader.msp_id, reason),
                     f"the ledger's denial ({reason})")
    denial_tx = denials[-1]["tx_id"]

    with pytest.raises(DataServiceError, match="the decision is deny") as refused:
        reader.data_service(live.owner.id).fetch(
            record_id, reader.signed(action="fetch", record_id=record_id, decision_tx=denial_tx))

    assert refused.value.status == 403
    [refusal] = logged(owner_view, live.public, record_id,
                       lambda e: e["action"] == "denied" and e["decision_tx"] == denial_tx
                       and e["actor_msp"] == live.owner.msp_id,
                       "the data service's refusal")
    assert refusal["requester_msp"] == live.reader.msp_id and refusal["outcome"] == "failure"
    assert len(deliveries_to(live, record_id, live.reader)) == delivered_before


def one_line_error(result) -> str:
    """The one line on stderr of a failed `medfabric` command."""
    assert result.returncode == 1, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def as_doctor(domain: Domain) -> list[str]:
    return ["--domain", domain.id, "--as", "doctor"]


# -- readers denied -------------------------------------------------------------------------------


def test_owner_reads_its_record_back_verified(live, tmp_path):
    patient = new_patient()
    data = observation(patient)
    record_id = put_record(live.session(live.owner), prepare_payload(data, patient), publish=False)["record_id"]

    result = get_record(live.session(live.owner), record_id, tmp_path / "obs.json")

    assert (tmp_path / "obs.json").read_bytes() == canonical_json(json.loads(data))
    assert result["decided_on"] == live.owner.local_channel and result["reason"] == "own domain"
    entry = live.session(live.owner).index(live.owner.local_channel).get(record_id)
    assert live.blob_file(live.owner, entry["ciphertext_sha256"]).is_file()
    assert live.key_file(live.owner, record_id).is_file()
    actions = [(e["action"], e["outcome"]) for e in entries(live.session(live.owner), live.owner.local_channel,
                                                            record_id)]
    assert actions == [("write", "success"), ("write", "success"), ("read", "success"), ("deliver", "success")]


def test_reader_without_grant_is_denied_logged_and_nothing_leaves_the_store(live, tmp_path):
    record_id = put(live)
    out = tmp_path / "out.json"

    with pytest.raises(AccessDenied, match=f"denied on {live.public}: no grant"):
        request(live.session(live.reader), record_id, live.owner.id, out)

    assert_denied_logged_and_nothing_delivered(live, record_id, "no grant", out)
    logged(live.session(live.owner), live.public, record_id,
           lambda e: e["action"] == "request" and e["actor_msp"] == live.reader.msp_id, "the reader's request")


def test_a_grant_to_one_user_or_domain_lets_no_one_else_read(live, tmp_path):
    record_id = put(live)
    grant_to_reader(live, record_id, user="doctor")

    with pytest.raises(AccessDenied, match="no grant"):
        get_record(live.session(live.reader, "researcher"), record_id, tmp_path / "researcher.json")
    with pytest.raises(AccessDenied, match="no grant"):
        get_record(live.session(live.third), record_id, tmp_path / "third.json")
    get_record(live.session(live.reader, "doctor"), record_id, tmp_path / "doctor.json")

    assert not (tmp_path / "researcher.json").exists() and not (tmp_path / "third.json").exists()
    denied = logged(live.session(live.owner), live.public, record_id,
                    lambda e: e["action"] == "denied" and e["reason"] == "no grant", "both denials")
    assert {e["actor_msp"] for e in denied} >= {live.reader.msp_id, live.third.msp_id}
    assert [e["requester_msp"] for e in entries(live.session(live.owner), live.public, record_id)
            if e["action"] == "deliver"] == [live.reader.msp_id]


def test_granted_reader_of_another_domain_reads_and_verifies(live, tmp_path):
    record_id = put(live)
    granted = grant_to_reader(live, record_id)

    result = request(live.session(live.reader), record_id, live.owner.id, tmp_path / "out.json")

    entry = live.session(live.reader).index(live.public).get(record_id)
    assert hashlib.sha256((tmp_path / "out.json").read_bytes()).hexdigest() == entry["plaintext_sha256"]
    assert result["decided_on"] == live.public and result["reason"] == f"grant {granted['grant_id']}"
    [delivered] = deliveries_to(live, record_id, live.reader)
    assert delivered["decision_tx"] == result["decision_tx"] and delivered["actor_msp"] == live.owner.msp_id


def test_a_grant_counts_for_its_own_purpose_only(live, tmp_path):
    record_id = put(live)
    granted = grant_to_reader(live, record_id, purpose="research")
    out = tmp_path / "treatment.json"

    with pytest.raises(AccessDenied, match=f"grant {granted['grant_id']} is for research, not treatment"):
        request(live.session(live.reader), record_id, live.owner.id, out)
    assert not out.exists()
    result = request(live.session(live.reader), record_id, live.owner.id, tmp_path / "research.json",
                     purpose="research")
    assert result["reason"] == f"grant {granted['grant_id']}"


def test_a_revoke_after_the_decision_stops_the_delivery(live):
    record_id = put(live)
    granted = grant_to_reader(live, record_id)
    reader = live.session(live.reader)
    _, decision_tx = reader.consent(live.public).check_access(record_id)
    revoke_everywhere(live, granted["grant_id"])

    with pytest.raises(DataServiceError, match=f"its grant {granted['grant_id']} has been revoked") as refused:
        reader.data_service(live.owner.id).fetch(
            record_id, reader.signed(action="fetch", record_id=record_id, decision_tx=decision_tx))
    assert refused.value.status == 403
    assert deliveries_to(live, record_id, live.reader) == []


def test_expired_grant_is_denied_logged_and_nothing_leaves_the_store(live, tmp_path):
    """Expiry on a real ledger: the grant ends GRANT_LIFETIME_S from now; the test waits (bounded) past it."""
    record_id = put(live)
    granted = grant_to_reader(live, record_id, seconds=GRANT_LIFETIME_S)
    expires = datetime.fromisoformat(granted["expires"])
    request(live.session(live.reader), record_id, live.owner.id, tmp_path / "before.json")
    assert len(deliveries_to(live, record_id, live.reader)) == 1

    eventually(lambda: datetime.now(timezone.utc) > expires + timedelta(seconds=1),
               f"the clock passes {granted['expires']}", timeout=GRANT_LIFETIME_S + 5)
    out = tmp_path / "after.json"
    with pytest.raises(AccessDenied, match=f"grant {granted['grant_id']} expired"):
        request(live.session(live.reader), record_id, live.owner.id, out)

    assert_denied_logged_and_nothing_delivered(live, record_id, f"grant {granted['grant_id']} expired", out,
                                               delivered_before=1)


def test_revoked_grant_is_denied_logged_and_nothing_leaves_the_store(live, tmp_path):
    record_id = put(live)
    granted = grant_to_reader(live, record_id)
    get_record(live.session(live.reader), record_id, tmp_path / "before.json")

    revoked = revoke_everywhere(live, granted["grant_id"])

    assert revoked["revoked"] and revoked["revoked_at"]
    out = tmp_path / "after.json"
    with pytest.raises(AccessDenied, match=f"grant {granted['grant_id']} revoked"):
        get_record(live.session(live.reader), record_id, out)
    assert_denied_logged_and_nothing_delivered(live, record_id, f"grant {granted['grant_id']} revoked", out,
                                               delivered_before=1)
    logged(live.session(live.owner), live.public, record_id,
           lambda e: e["action"] == "revoke" and e["reason"] == f"grant {granted['grant_id']}", "the revocation")


def test_a_domain_outside_the_channel_is_denied_logged_and_nothing_leaves_the_store(live, tmp_path):
    """A record indexed only on the owner's local channel, whose peers are the owner's alone.

    The outsider's peer refuses the local channel (Fabric's denial: nothing can be logged on a ledger the outsider
    cannot reach); the flows say the record is not found or not published; on the public channel, which the
    outsider can use, the decision is a logged denial ("record not found"), which the owner's data service refuses
    to serve, logging that too.
    """
    record_id = put(live, publish=False)
    outsider = live.session(live.reader)
    out = tmp_path / "out.json"

    with pytest.raises(GatewayError):
        outsider.index(live.owner.local_channel).find(record_id)
    with pytest.raises(GatewayError):
        outsider.consent(live.owner.local_channel).check_access(record_id)
    with pytest.raises(RecordNotFound, match=f"not found on {live.reader.local_channel} or {live.public}"):
        get_record(outsider, record_id, out)
    with pytest.raises(RecordNotFound, match=f"not published on {live.public}"):
        request(outsider, record_id, live.owner.id, out)
    with pytest.raises(RecordNotFound, match="only published records are shared"):
        grant_to_reader(live, record_id)
    decision, _denial_tx = outsider.consent(live.public).check_access(record_id)
    assert (decision["decision"], decision["reason"]) == ("deny", "record not found")

    assert_denied_logged_and_nothing_delivered(live, record_id, "record not found", out)
    assert live.key_file(live.owner, record_id).is_file()  # still there, still only the owner's


# -- integrity ---------------------------------------------------------------------------------


def test_a_tampered_blob_in_the_owners_store_is_detected_reported_and_logged(live, medfabric_cli, tmp_path):
    record_id = put(live)
    grant_to_reader(live, record_id)
    entry = live.session(live.owner).index(live.public).get(record_id)
    blob = live.blob_file(live.owner, entry["ciphertext_sha256"])
    data = blob.read_bytes()
    blob.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    out = tmp_path / "out.json"

    with pytest.raises(DataServiceError, match="stored ciphertext does not match its hash") as refused:
        request(live.session(live.reader), record_id, live.owner.id, out)

    assert refused.value.status == 409 and not out.exists()
    [failure] = logged(live.session(live.owner), live.public, record_id,
                       lambda e: e["action"] == "deliver", "the failed delivery")
    assert failure["outcome"] == "failure" and "does not match its hash" in failure["reason"]
    assert failure["requester_msp"] == live.reader.msp_id
    line = one_line_error(medfabric_cli("emr", "get", record_id, *as_doctor(live.owner), "--out", str(out)))
    assert "stored ciphertext does not match its hash" in line and not out.exists()
    logged(live.session(live.owner), live.owner.local_channel, record_id,
           lambda e: e["action"] == "deliver" and e["outcome"] == "failure", "the owner's failed read")


def test_a_tampered_data_key_in_the_owners_store_is_detected_reported_and_logged(live, tmp_path):
    record_id = put(live, publish=False)
    key_file = live.key_file(live.owner, record_id)
    stored = json.loads(key_file.read_bytes())
    wrapped = bytearray(base64.b64decode(stored["wrapped_key"]["wrapped_key"]))
    wrapped[0] ^= 1
    stored["wrapped_key"]["wrapped_key"] = base64.b64encode(bytes(wrapped)).decode()
    key_file.write_text(json.dumps(stored))

    with pytest.raises(DataServiceError, match="stored data key does not open") as refused:
        get_record(live.session(live.owner), record_id, tmp_path / "out.json")

    assert refused.value.status == 409 and not (tmp_path / "out.json").exists()
    logged(live.session(live.owner), live.owner.local_channel, record_id,
           lambda e: e["action"] == "deliver" and e["outcome"] == "failure"
           and "does not open" in (e["reason"] or ""), "the failed delivery")


def test_a_delivery_altered_on_the_way_is_rejected_logged_and_never_written(live, tmp_path, monkeypatch):
    record_id = put(live)
    grant_to_reader(live, record_id)
    fetch = DataServiceClient.fetch

    def altered_on_the_way(service, *args, **kwargs):
        answer = fetch(service, *args, **kwargs)
        blob = base64.b64decode(answer["blob"])
        return {**answer, "blob": base64.b64encode(blob[:-1] + bytes([blob[-1] ^ 1])).decode()}

    monkeypatch.setattr(DataServiceClient, "fetch", altered_on_the_way)
    out = tmp_path / "out.json"

    with pytest.raises(DeliveryRejected, match="hash mismatch"):
        request(live.session(live.reader), record_id, live.owner.id, out)

    assert not out.exists()
    [verdict] = logged(live.session(live.owner), live.public, record_id,
                       lambda e: e["action"] == "deliver" and e["outcome"] == "failure", "the reader's verdict")
    assert verdict["actor_msp"] == live.reader.msp_id and verdict["reason"].startswith("hash mismatch")


def test_forged_and_replayed_signed_requests_are_refused_and_logged(live, tmp_path):
    record_id = put(live)
    grant_to_reader(live, record_id)
    reader, third, owner = live.session(live.reader), live.session(live.third), live.session(live.owner)
    service = reader.data_service(live.owner.id)
    _, decision_tx = reader.consent(live.public).check_access(record_id)
    statement = reader.signed(action="fetch", record_id=record_id, decision_tx=decision_tx)
    assert service.fetch(record_id, statement)["record_id"] == record_id

    refusals = {
        "seen before": lambda: service.fetch(record_id, statement),  # replayed
        "the decision is for another requester": lambda: third.data_service(live.owner.id).fetch(
            record_id, third.signed(action="fetch", record_id=record_id, decision_tx=decision_tx)),
        "but the TLS client certificate is doctor@": lambda: service.fetch(  # a statement sent in another's session
            record_id, third.signed(action="fetch", record_id=record_id, decision_tx=decision_tx)),
        "signature does not verify": lambda: service.fetch(
            record_id, altered_statement(statement, record_id="another")),
        "not issued by a trusted CA": lambda: service.fetch(
            record_id, impersonating_statement(third, live.reader.msp_id, record_id, decision_tx)),
        f"older than {STATEMENT_MAX_AGE_S:g} s": lambda: service.fetch(
            record_id, stale_statement(reader, record_id, decision_tx)),
        "not for action fetch": lambda: service.fetch(
            record_id, reader.signed(action="erase", record_id=record_id, decision_tx=decision_tx)),
        f"only users of {live.owner.msp_id} may erase": lambda: service.erase(
            record_id, reader.signed(action="erase", record_id=record_id)),
        f"only users of {live.owner.msp_id} may store": lambda: service.store({
            "statement": reader.signed(action="store", record_id=f"it-{uuid.uuid4().hex}",
                                       ciphertext_sha256="0" * 64),
            "blob": "", "wrapped_key": {}}),
    }
    for message, attempt in refusals.items():
        with pytest.raises(DataServiceError, match=message) as refused:
            attempt()
        assert refused.value.status == 403, message

    assert len(deliveries_to(live, record_id, live.reader)) == 1
    assert len(deliveries_to(live, record_id, live.third)) == 0
    # a statement that does not verify names no requester: its refusal is logged on the owner's local channel
    unverified = ("seen before", "signature does not verify", "not issued by a trusted CA", "older than",
                  "may erase")
    eventually(lambda: all(any(message in (e["reason"] or "") for e in entries(owner, live.owner.local_channel,
                                                                                record_id) if e["action"] == "denied")
                           for message in unverified),
               "the refusals of statements that do not verify, on the owner's local channel")
    # one that verifies is refused, and logged, on the requester's channel: the public one
    eventually(lambda: {e["requester_msp"] for e in entries(owner, live.public, record_id)
                        if e["action"] == "denied" and e["actor_msp"] == live.owner.msp_id}
               == {live.reader.msp_id, live.third.msp_id},
               "the refusals of verified statements, on the public channel")
    assert live.key_file(live.owner, record_id).is_file()  # the forged erase erased nothing
    get_record(owner, record_id, tmp_path / "owner.json")


def test_every_kind_of_unauthorized_read_is_refused_for_its_own_reason_and_logged(live):
    """The matrix `make reliability` counts (medfabric.bench.unauthorized_reads), once per kind."""
    kinds = run_unauthorized_reads(live.topology, live.layout, rounds=1)

    assert len(kinds) == 13
    for kind in kinds:
        assert (kind.tried, kind.refused, kind.escapes) == (1, 1, 0), kind
        assert kind.logged == (None if kind.refused_by == "Fabric" else 1), kind
    assert [k.kind for k in kinds if k.refused_by == "Fabric"] == ["outside the owner's local channel"]


# -- nothing leaks -------------------------------------------------------------------------------------


def secret_forms(secret: bytes) -> dict[str, bytes]:
    """The ways a secret could be written down: raw, hex, base64 (standard and URL-safe, padded or not)."""
    forms = {"raw": secret, "hex": secret.hex().encode(), "HEX": secret.hex().upper().encode()}
    for name, encoded in (("base64", base64.b64encode(secret)), ("base64url", base64.urlsafe_b64encode(secret))):
        forms[name] = encoded
        forms[f"{name} unpadded"] = encoded.rstrip(b"=")
    return forms


def private_key_lines(crypto: Path) -> dict[str, bytes]:
    """A 64-character base64 line of every private key PEM the consortium's material holds, by file."""
    found = {}
    for path in sorted(crypto.rglob("*")):
        if path.is_file() and b"PRIVATE KEY" in (text := path.read_bytes())[:64]:
            body = [line for line in text.splitlines() if line and not line.startswith(b"-----")]
            found[str(path.relative_to(crypto))] = max(body, key=len)
    return found


def files_holding(needles: dict[str, bytes], roots: list[Path]) -> list[str]:
    """'needle in file' for every needle found in a file under `roots`."""
    hits = []
    for root in roots:
        for path in sorted(root.rglob("*")):
            if not path.is_file():
                continue
            content = path.read_bytes()
            hits += [f"{name} in {path.relative_to(root.parent)}" for name, needle in needles.items()
                     if needle in content]
    return hits


def test_no_payload_data_key_or_private_key_reaches_a_log_a_ledger_or_a_store_in_clear(live, tmp_path, monkeypatch):
    """A record stored, read, denied, granted, delivered across domains and read by break-glass: then every
    node's log and every ledger, state database and data-service store on disk is searched for its plaintext,
    its data key (in every usual encoding) and every private key of the consortium."""
    canary = f"leak-canary-{uuid.uuid4().hex}"
    patient = new_patient()
    resource = json.loads(observation(patient))
    resource["note"] = [{"text": f"{canary} hypertension follow-up"}]
    data_keys: list[bytes] = []
    real_seal = emr_module.seal

    def remembering_seal(plaintext: bytes, aad: bytes):
        sealed = real_seal(plaintext, aad)
        data_keys.append(sealed.data_key)
        return sealed

    monkeypatch.setattr(emr_module, "seal", remembering_seal)
    record_id = put_record(live.session(live.owner), prepare_payload(json.dumps(resource).encode(), patient),
                           publish=True)["record_id"]
    for domain in live.topology.domains:
        index = live.session(domain).index(live.public)
        eventually(lambda: index.find(record_id), f"{domain.id} sees {record_id} on {live.public}")
    get_record(live.session(live.owner), record_id, tmp_path / "own.json")
    with pytest.raises(AccessDenied):
        request(live.session(live.reader), record_id, live.owner.id, tmp_path / "denied.json")
    grant_to_reader(live, record_id)
    request(live.session(live.reader), record_id, live.owner.id, tmp_path / "granted.json")
    emergency_read(live.session(live.third), record_id, "unconscious in the ER", tmp_path / "glass.json")
    assert canary.encode() in (tmp_path / "granted.json").read_bytes()  # the canary did travel, in the open only here
    assert len(data_keys) == 1
    logged(live.session(live.owner), live.public, record_id, lambda e: e["action"] == "deliver", "the delivery")

    needles = {"the plaintext": canary.encode(),
               **{f"the data key ({form})": value for form, value in secret_forms(data_keys[0]).items()},
               **{f"the private key {name}": line for name, line in private_key_lines(live.layout.crypto).items()}}
    assert sum(name.startswith("the private key") for name in needles) >= 3 * len(live.topology.domains)
    searched = [live.layout.logs, live.layout.root / "data"]
    assert sum(1 for root in searched for path in root.rglob("*") if path.is_file()) > 50

    assert files_holding(needles, searched) == []


# -- break-glass and erasure ------------------------------------------------------------------------


def test_break_glass_by_a_doctor_is_decided_logged_on_both_tiers_and_flagged(live, tmp_path):
    record_id = put(live)
    third = live.session(live.third)

    result = emergency_read(third, record_id, "unconscious in the ER", tmp_path / "out.json")

    assert (tmp_path / "out.json").is_file()
    [decided] = logged(live.session(live.owner), live.public, record_id,
                       lambda e: e["action"] == "break-glass", "the break-glass decision")
    assert decided["flagged"] and decided["actor_msp"] == live.third.msp_id
    assert decided["tx_id"] == result["decision_tx"]
    [noted] = entries(third, live.third.local_channel, record_id)
    assert (noted["action"], noted["flagged"], noted["decision_tx"]) == ("request", True, result["decision_tx"])
    owner = live.session(live.owner)
    for owner_tier in (live.public, live.owner.local_channel):  # the owner's service logs its delivery on both
        [delivered] = logged(owner, owner_tier, record_id, lambda e: e["action"] == "deliver", "the delivery")
        assert delivered["flagged"] and delivered["actor_msp"] == live.owner.msp_id
        assert delivered["actor_role"] == "data-service"  # the service's own identity, never the domain Admin
        assert (delivered["requester_msp"], delivered["decision_tx"]) == (live.third.msp_id, result["decision_tx"])
    with pytest.raises(AccessDenied, match="break-glass refused: medfabric.role is researcher"):
        emergency_read(live.session(live.third, "researcher"), record_id, "curious", tmp_path / "refused.json")
    assert not (tmp_path / "refused.json").exists()


def test_after_erasure_nobody_reads_the_index_keeps_a_tombstone_and_the_trail_stays(live, medfabric_cli, tmp_path):
    record_id = put(live)
    grant_to_reader(live, record_id)
    owner, reader = live.session(live.owner), live.session(live.reader)
    get_record(reader, record_id, tmp_path / "before.json")
    _, earlier_allow = reader.consent(live.public).check_access(record_id)
    entry = owner.index(live.public).get(record_id)
    channels = (live.owner.local_channel, live.public)
    trail = {channel: entries(owner, channel, record_id) for channel in channels}

    result = erase(owner, record_id)

    assert result["payload"] == "destroyed" and set(result["tombstones"]) == set(channels)
    assert not live.blob_file(live.owner, entry["ciphertext_sha256"]).exists()
    assert not live.key_file(live.owner, record_id).exists()
    assert set(json.loads(live.erased_marker(live.owner, record_id).read_bytes())) == {"record_id", "erased_at"}
    for domain in live.topology.domains:
        index = live.session(domain).index(live.public)
        eventually(lambda: index.get(record_id)["erased"], f"{domain.id} sees the tombstone of {record_id}")
    after = tmp_path / "after.json"
    for session in (owner, reader, live.session(live.third)):
        with pytest.raises(RecordErased):
            get_record(session, record_id, after)
    with pytest.raises(RecordErased):
        emergency_read(live.session(live.third), record_id, "unconscious in the ER", after)
    decision, _ = reader.consent(live.public).check_access(record_id)
    assert (decision["decision"], decision["reason"]) == ("deny", "record erased")
    decision, _ = live.session(live.third).consent(live.public).emergency_access(record_id, "unconscious")
    assert (decision["decision"], decision["reason"]) == ("deny", "record erased")
    with pytest.raises(DataServiceError, match="record erased") as gone:
        reader.data_service(live.owner.id).fetch(
            record_id, reader.signed(action="fetch", record_id=record_id, decision_tx=earlier_allow))
    assert gone.value.status == 410
    line = one_line_error(medfabric_cli("emr", "get", record_id, *as_doctor(live.owner), "--out", str(after)))
    assert "was erased" in line and not after.exists()

    shown = medfabric_cli("emr", "show", record_id, *as_doctor(live.reader), "--channel", live.public, "--json")
    assert shown.returncode == 0, shown.stderr
    tombstone = json.loads(shown.stdout)
    assert tombstone["erased"] and tombstone["location"] == ""
    assert tombstone["plaintext_sha256"] == entry["plaintext_sha256"]
    for channel, before in trail.items():
        now = entries(owner, channel, record_id)
        assert [e for e in now if e["log_id"] in {b["log_id"] for b in before}] == before, channel
        assert "erase" in [e["action"] for e in now if e["log_id"] not in {b["log_id"] for b in before}], channel


def test_erasing_needs_the_owner(live):
    record_id = put(live)

    with pytest.raises(MedfabricError, match="only its owner erases it"):
        erase(live.session(live.reader), record_id)
    with pytest.raises(RecordNotFound, match="neither indexed nor stored"):
        erase(live.session(live.owner), f"it-unknown-{uuid.uuid4().hex}")
    assert live.key_file(live.owner, record_id).is_file()


# -- the audit trail ----------------------------------------------------------------------------------


def test_audit_verify_passes_on_the_ledger_and_names_the_period_of_an_entry_altered_in_a_copy(
        live, medfabric_cli, tmp_path, monkeypatch):
    """On a real ledger a committed log entry cannot be altered. So: every anchored period of the owner's local log
    verifies as it is on the ledger (library and CLI), and verify run on a tampered COPY of the entries it fetches
    (AccessLog.entries monkeypatched to alter, remove or add an entry of this test's record, as a local log altered
    after anchoring would read) reports the period holding that entry, and the CLI exits 1 naming it."""
    owner = live.session(live.owner)
    record_id = put(live, publish=False)
    get_record(owner, record_id, tmp_path / "obs.json")
    ours = entries(owner, live.owner.local_channel, record_id)
    target = ours[-1]
    eventually(lambda: datetime.now(timezone.utc) - audit.SETTLE
               > datetime.fromisoformat(target["timestamp"]) + timedelta(seconds=1),
               "this test's entries settle", timeout=audit.SETTLE.total_seconds() + 5)
    audit.anchor(owner)
    [period] = [a for a in owner.anchors().of_domain(live.owner.id)
                if a["since"] <= target["timestamp"] < a["until"]]

    intact = audit.verify(owner)
    assert intact.mismatch is None and intact.anchors >= 1 and intact.entries >= len(ours)
    verified = medfabric_cli("audit", "verify", "--domain", live.owner.id, "--json")
    assert verified.returncode == 0, verified.stderr
    assert json.loads(verified.stdout)["mismatch"] is None

    fetched = AccessLog.entries
    tamperings = {
        "altered": lambda found: [{**e, "reason": "nothing to see here"} if e["log_id"] == target["log_id"] else e
                                  for e in found],
        "removed": lambda found: [e for e in found if e["log_id"] != target["log_id"]],
        "added": lambda found: found + [e for e in found if e["log_id"] == target["log_id"]],
    }
    for how, tamper in tamperings.items():
        monkeypatch.setattr(AccessLog, "entries", lambda log, *args, _tamper=tamper, **kwargs:
                            _tamper(fetched(log, *args, **kwargs)))

        mismatch = audit.verify(owner).mismatch

        assert mismatch is not None, how
        assert (mismatch["since"], mismatch["until"], mismatch["anchor_tx"]) == (
            period["since"], period["until"], period["tx_id"]), how
        assert mismatch["found"]["merkle_root"] != mismatch["anchored"]["merkle_root"], how
        expected_count = period["count"] + {"altered": 0, "removed": -1, "added": 1}[how]
        assert mismatch["found"]["count"] == expected_count, how

    monkeypatch.setenv("MEDFABRIC_BUILD_DIR", str(live.layout.root))
    result = cli_runner().invoke(cli, ["--topology", str(live.topology.source), "audit", "verify",
                                      "--domain", live.owner.id, "--as", "doctor"])
    assert result.exit_code == 1, result.output
    [line] = result.stderr.strip().splitlines()
    assert f"{live.owner.local_channel} [{period['since']}, {period['until']}) does not match its anchor" in line


# -- one-line errors, nothing half-written --------------------------------------------------------------


MALFORMED = {
    "invalid FHIR": (lambda patient: json.dumps({**json.loads(observation(patient)), "status": 5}), None,
                     "Observation.status"),
    "not JSON": (lambda patient: "{not json", None, "not JSON"),
    "direct identifiers": (lambda patient: json.dumps({**generate_patient_bundle(1, patient, n_observations=1)[0],
                                                      "name": [{"family": "Doe"}]}), None, "direct identifiers"),
    "a name for a pseudonym": (lambda patient: observation(patient).decode(), "John Doe", "patient pseudonym"),
}


@pytest.mark.parametrize("case", MALFORMED)
def test_malformed_input_is_one_line_and_writes_nothing(live, medfabric_cli, tmp_path, case):
    make, pseudonym, message = MALFORMED[case]
    patient, record_id = new_patient(), f"it-{uuid.uuid4().hex}"
    bad = tmp_path / "bad.json"
    bad.write_text(make(patient))
    stored = live.stored_files(live.owner)

    line = one_line_error(medfabric_cli("emr", "put", *as_doctor(live.owner), "--patient", pseudonym or patient,
                                        "--file", str(bad), "--id", record_id, "--publish"))

    assert message in line and str(bad) in line
    assert_nothing_written(live, record_id, stored)


def test_a_missing_file_is_one_line_and_writes_nothing(live, medfabric_cli, tmp_path):
    record_id = f"it-{uuid.uuid4().hex}"
    stored = live.stored_files(live.owner)

    line = one_line_error(medfabric_cli("emr", "put", *as_doctor(live.owner), "--patient", new_patient(),
                                        "--file", str(tmp_path / "absent.json"), "--id", record_id, "--publish"))

    assert "absent.json" in line
    assert_nothing_written(live, record_id, stored)


def test_a_payload_missing_from_the_store_is_one_line_logged_and_writes_no_file(live, medfabric_cli, tmp_path):
    record_id = put(live, publish=False)
    entry = live.session(live.owner).index(live.owner.local_channel).get(record_id)
    live.blob_file(live.owner, entry["ciphertext_sha256"]).unlink()
    out = tmp_path / "out.json"

    line = one_line_error(medfabric_cli("emr", "get", record_id, *as_doctor(live.owner), "--out", str(out)))

    assert f"the ciphertext of record {record_id} is missing" in line and not out.exists()
    logged(live.session(live.owner), live.owner.local_channel, record_id,
           lambda e: e["action"] == "deliver" and e["outcome"] == "failure", "the failed delivery")


UNKNOWN_RECORD = {
    "get": (lambda rid, d, out: ["emr", "get", rid, *as_doctor(d.reader), "--out", out], "not found"),
    "request": (lambda rid, d, out: ["emr", "request", rid, "--from", d.owner.id, *as_doctor(d.reader), "--out", out],
                "not published"),
    "emergency": (lambda rid, d, out: ["emr", "emergency", rid, "--reason", "ER", *as_doctor(d.third), "--out", out],
                  "not found"),
    "show": (lambda rid, d, out: ["emr", "show", rid, *as_doctor(d.reader), "--channel", d.public], "not found"),
    "grant": (lambda rid, d, out: ["emr", "grant", rid, *as_doctor(d.owner), "--to", d.reader.id, "--purpose",
                                   "treatment", "--until", "2099-12-31"], "not published"),
    "erase": (lambda rid, d, out: ["emr", "erase", rid, *as_doctor(d.owner)], "neither indexed nor stored"),
}


@pytest.mark.parametrize("command", UNKNOWN_RECORD)
def test_an_unknown_record_is_one_line_and_writes_nothing(live, medfabric_cli, tmp_path, command):
    arguments, message = UNKNOWN_RECORD[command]
    record_id, out = f"it-unknown-{uuid.uuid4().hex}", tmp_path / "out.json"
    stored = live.stored_files(live.owner)

    line = one_line_error(medfabric_cli(*arguments(record_id, live, str(out))))

    assert message in line and record_id in line
    assert not out.exists()
    assert_nothing_written(live, record_id, stored)


def test_an_unreachable_data_service_is_one_line_and_writes_nothing(live, medfabric_cli, tmp_path, observation_file):
    record_id = put(live)
    grant_to_reader(live, record_id)
    new_id = f"it-{uuid.uuid4().hex}"
    live.stop_data_service(live.owner)
    try:
        stored = live.stored_files(live.owner)
        put_line = one_line_error(medfabric_cli("emr", "put", *as_doctor(live.owner), "--patient", new_patient(),
                                                "--file", str(observation_file), "--id", new_id, "--publish"))
        own_line = one_line_error(medfabric_cli("emr", "get", record_id, *as_doctor(live.owner),
                                                "--out", str(tmp_path / "own.json")))
        cross_line = one_line_error(medfabric_cli("emr", "request", record_id, "--from", live.owner.id,
                                                  *as_doctor(live.reader), "--out", str(tmp_path / "cross.json")))
        with pytest.raises(DataServiceError, match=f"cannot reach the data service of {live.owner.id}") as failed:
            get_record(live.session(live.owner), record_id, tmp_path / "library.json")
        assert failed.value.status is None
    finally:
        live.start_data_service(live.owner)

    for line in (put_line, own_line, cross_line):
        assert f"cannot reach the data service of {live.owner.id}" in line
    assert not any((tmp_path / name).exists() for name in ("own.json", "cross.json", "library.json"))
    assert_nothing_written(live, new_id, stored)
    get_record(live.session(live.owner), record_id, tmp_path / "restarted.json")  # the store survived


@pytest.fixture
def observation_file(tmp_path) -> Path:
    path = tmp_path / "obs.json"
    path.write_bytes(observation(new_patient()))
    return path


def assert_nothing_written(live: Live, record_id: str, stored_before: set[Path]) -> None:
    """No index entry on the owner's channels, no file added to its store, no key for the record."""
    owner = live.session(live.owner)
    for channel in (live.owner.local_channel, live.public):
        assert owner.index(channel).find(record_id) is None, channel
    assert live.stored_files(live.owner) == stored_before
    assert not live.key_file(live.owner, record_id).exists()
