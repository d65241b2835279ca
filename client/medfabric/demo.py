"""The first sharing scenario: hospital A indexes an EMR, hospital B reads the index.

Run by `make demo` after `make up`. The payload here is only hashed; storing
it encrypted in the owner's data service is the next layer (medfabric.emr).
"""

from __future__ import annotations

import hashlib
import json
import time
from datetime import datetime, timezone
from typing import Callable

from .connection import connect_as
from .emr_index import EmrIndex
from .layout import NetworkLayout
from .topology import Topology

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
        "patient": "P-DEMO-001",
        "domain": owner_domain,
        "resource_type": "Observation",
        "ciphertext_sha256": digest,
        "plaintext_sha256": digest,
        "size": len(payload),
        "location": f"medfabric://{owner_domain}/store/{digest}",
    }


def run_demo(topology: Topology, layout: NetworkLayout, echo: Callable[[str], None] | None) -> dict:
    """Write one entry on the owner's local channel and one on the public channel; read both back."""
    say = echo or (lambda _line: None)
    owner, reader = topology.domains[0], topology.domains[-1]
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%f")
    report: dict = {"owner": owner.id, "reader": reader.id, "steps": []}

    with connect_as(owner.id, "doctor", topology=topology, layout=layout) as gateway:
        for channel in (owner.local_channel, topology.public_channel.name):
            entry = demo_entry(owner.id, f"demo-{stamp}-{'local' if channel == owner.local_channel else 'pub'}")
            started = time.perf_counter()
            stored = EmrIndex(gateway.get_network(channel)).put(entry)
            elapsed = time.perf_counter() - started
            say(f"{owner.id} doctor recorded {stored['record_id']} on {channel} in {elapsed * 1000:.0f} ms")
            report["steps"].append({"action": "put", "channel": channel, "record": stored, "seconds": elapsed})

    public_id = report["steps"][-1]["record"]["record_id"]
    with connect_as(reader.id, "doctor", topology=topology, layout=layout) as gateway:
        record = EmrIndex(gateway.get_network(topology.public_channel.name)).get(public_id)
    if record != report["steps"][-1]["record"]:
        raise RuntimeError(f"{reader.id} read a different entry for {public_id} than was written")
    say(f"{reader.id} doctor read {public_id} from the public channel: owner {record['owner_msp']}, "
        f"sha256 {record['plaintext_sha256'][:16]}...")
    report["steps"].append({"action": "get", "channel": topology.public_channel.name, "record": record})
    return report
