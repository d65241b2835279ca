"""The sharing scenario across the consortium's domains, saying what happens (`medfabric demo`, `make demo`).

Hospital A's doctor stores an Observation and publishes it, then reads it back;
B's doctor requests it and is denied; A grants it to B's doctor, whose request
is delivered and hash-verified; A revokes the grant and B is denied again; C's
doctor breaks the glass; A erases the record and nobody can read it any more;
the public access log shows it all; A anchors its local log on the public
channel and verifies it. Needs a running consortium and its data services
(`make up`). `demo_entry` is a bare index entry, for load tests.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import time
from contextlib import ExitStack
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable

from medfabric.sharing import audit
from medfabric.consortium.connection import connect_as
from medfabric.crypto import canonical_json
from medfabric.sharing.emr import (
    AccessDenied, RecordErased, emergency_read, erase, get_record, grant, prepare_payload, put_record, request, revoke
)
from medfabric.consortium.layout import NetworkLayout
from medfabric.sharing.session import Session
from medfabric.consortium.topology import Topology

PATIENT = "P-DEMO-001"

SAMPLE_OBSERVATION = {
    "resourceType": "Observation",
    "status": "final",
    "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                              "code": "vital-signs"}]}],
    "code": {"coding": [{"system": "http://loinc.org", "code": "85354-9",
                         "display": "Blood pressure panel"}]},
    "subject": {"reference": "Patient/P-DEMO-001"},
    "component": [
        {"code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]},
         "valueQuantity": {"value": 128, "unit": "mmHg"}},
        {"code": {"coding": [{"system": "http://loinc.org", "code": "8462-4"}]},
         "valueQuantity": {"value": 84, "unit": "mmHg"}},
    ],
}


def demo_entry(owner_domain: str, record_id: str) -> dict:
    """An index entry for the sample observation, owned by `owner_domain`."""
    payload = json.dumps(SAMPLE_OBSERVATION, sort_keys=True, separators=(",", ":")).encode()
    digest = hashlib.sha256(payload).hexdigest()
    return {
        "record_id": record_id,
        "patient": PATIENT,
        "domain": owner_domain,
        "resource_type": "Observation",
        "ciphertext_sha256": digest,
        "plaintext_sha256": digest,
        "size": len(payload),
        "location": f"medfabric://{owner_domain}/store/{digest}",
    }


def run_demo(topology: Topology, layout: NetworkLayout, echo: Callable[[str], None] | None) -> dict:
    """Run the scenario as the doctors of the first, second and last domains; what happened, step by step."""
    owner, reader, third = topology.domains[0], topology.domains[1], topology.domains[-1]
    record_id = f"demo-{datetime.now(timezone.utc):%Y%m%dT%H%M%S%f}"
    report: dict[str, Any] = {"owner": owner.id, "reader": reader.id, "record_id": record_id, "steps": []}

    def step(action: str, line: str, **details: Any) -> None:
        report["steps"].append({"action": action, **details})
        if echo:
            echo(line)

    with ExitStack() as stack:
        out = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="medfabric-demo-"))) / "record.json"
        a, b, c = (Session(topology, layout, domain, "doctor",
                           stack.enter_context(connect_as(domain.id, "doctor", topology=topology, layout=layout)))
                   for domain in (owner, reader, third))
        payload = prepare_payload(canonical_json(SAMPLE_OBSERVATION), PATIENT)
        put = put_record(a, payload, publish=True, record_id=record_id)
        step("put", f"{owner.id} doctor stored {record_id} with its data service, indexed on "
                    f"{', '.join(put['entries'])}", channels=list(put["entries"]))
        read = get_record(a, record_id, out)
        step("own read", f"{owner.id} doctor read it back: {_delivered(read)}", result=read)
        refusal = _refused(lambda: request(b, record_id, owner.id, out))
        step("request denied", f"{reader.id} doctor requested it without a grant: {refusal}", error=refusal)
        granted = grant(a, record_id, reader.id, "treatment", datetime.now(timezone.utc) + timedelta(hours=1), "doctor")
        step("grant", f"{owner.id} granted it to {reader.id}'s doctor for treatment: grant {granted['grant_id']}",
             grant=granted)
        read = request(b, record_id, owner.id, out)
        step("request delivered", f"{reader.id} doctor requested it again: {_delivered(read)}", result=read)
        revoke(a, granted["grant_id"])
        refusal = _refused(lambda: request(b, record_id, owner.id, out))
        step("revoked", f"{owner.id} revoked the grant; {reader.id} doctor: {refusal}", error=refusal)
        read = emergency_read(c, record_id, "unconscious patient in the emergency room", out)
        step("break-glass", f"{third.id} doctor broke the glass: {_delivered(read)}; logged on "
                            f"{third.local_channel} and {read['decided_on']}, flagged for review", result=read)
        erased = erase(a, record_id)
        refusal = _refused(lambda: get_record(a, record_id, out))
        step("erase", f"{owner.id} erased it (payload {erased['payload']}, tombstones on "
                      f"{', '.join(erased['tombstones'])}); reading now: {refusal}", error=refusal)
        entries = audit.log(a, a.public_channel, record_id)
        step("audit log", f"{a.public_channel} log of {record_id}: " + "; ".join(
            f"{e['action']} {e['outcome']} by {e['actor_msp']}" for e in entries), entries=len(entries))
        if echo:
            echo(f"waiting {audit.SETTLE.seconds} s for {owner.local_channel}'s log to settle before anchoring")
        time.sleep(audit.SETTLE.total_seconds())
        anchored = audit.anchor(a)
        verified = audit.verify(a)
        step("anchor", f"{owner.id} anchored {anchored['count'] if anchored else 0} entries of its local log; "
                       f"verified {verified.anchors} anchors: {'intact' if verified.mismatch is None else 'MISMATCH'}",
             anchor=anchored, verification=verified.as_dict())
    return report


def _delivered(result: dict[str, Any]) -> str:
    return (f"{result['size']} bytes delivered by {result['owner']}, sha256 {result['plaintext_sha256'][:16]}... "
            f"verified ({result['reason']})")


def _refused(read: Callable[[], object]) -> str:
    """The refusal a read meets; RuntimeError if it succeeds."""
    try:
        read()
    except (AccessDenied, RecordErased) as refusal:
        return str(refusal)
    raise RuntimeError("a read that must be refused succeeded")
