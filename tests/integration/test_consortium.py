"""The default consortium end to end: channels, chaincode, Gateway, access rules, restarts.

Every test runs on the real consortium of conftest.py.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from medfabric.cli.main import one_line
from medfabric.consortium.connection import connect_as
from medfabric.sharing import audit
from medfabric.sharing.demo import demo_entry
from medfabric.sharing.emr import grant
from medfabric.sharing.emr_index import EmrIndex
from medfabric.gateway import GatewayError
from medfabric.sharing.session import Session

pytestmark = pytest.mark.integration


def _entry(domain_id: str) -> dict:
    return demo_entry(domain_id, f"it-{uuid.uuid4().hex[:12]}")


def test_status_reports_every_process_and_channel(consortium, ops):
    topology, _layout, _env = consortium
    result = ops("status", "--json")
    assert result.returncode == 0, result.stderr
    status = json.loads(result.stdout)
    text = json.dumps(status)
    for node in [p.host_name for p in topology.peers] + [o.host_name for o in topology.orderers]:
        assert node in text
    for channel in topology.channels:
        assert channel.name in text


@pytest.mark.parametrize("channel_kind", ["local", "public"])
def test_put_then_read_back(consortium, channel_kind):
    topology, layout, _env = consortium
    owner = topology.domains[0]
    channel = owner.local_channel if channel_kind == "local" else topology.public_channel.name
    entry = _entry(owner.id)
    with connect_as(owner.id, "doctor", topology=topology, layout=layout) as gateway:
        index = EmrIndex(gateway.get_network(channel))
        stored = index.put(entry)
        assert stored["owner_msp"] == owner.msp_id and stored["version"] == 1
        assert index.get(entry["record_id"]) == stored
        listed = index.list_by_patient(entry["patient"])["records"]
        assert entry["record_id"] in [r["record_id"] for r in listed]


def test_other_domain_reads_public_index(consortium):
    topology, layout, _env = consortium
    owner, reader = topology.domains[0], topology.domains[1]
    entry = _entry(owner.id)
    with connect_as(owner.id, "doctor", topology=topology, layout=layout) as gateway:
        stored = EmrIndex(gateway.get_network(topology.public_channel.name)).put(entry)
    with connect_as(reader.id, "doctor", topology=topology, layout=layout) as gateway:
        assert EmrIndex(gateway.get_network(topology.public_channel.name)).get(entry["record_id"]) == stored


def test_other_domain_cannot_use_a_local_channel(consortium):
    topology, layout, _env = consortium
    owner, outsider = topology.domains[0], topology.domains[1]
    with connect_as(outsider.id, "doctor", topology=topology, layout=layout) as gateway:
        index = EmrIndex(gateway.get_network(owner.local_channel))
        with pytest.raises(GatewayError):
            index.get("anything")
        with pytest.raises(GatewayError):
            index.put(_entry(owner.id))


def test_malformed_record_is_rejected_naming_the_field(consortium):
    topology, layout, _env = consortium
    owner = topology.domains[0]
    entry = _entry(owner.id)
    entry["ciphertext_sha256"] = "not-a-hash"
    with connect_as(owner.id, "doctor", topology=topology, layout=layout) as gateway:
        with pytest.raises(GatewayError) as refused:
            EmrIndex(gateway.get_network(owner.local_channel)).put(entry)
    assert "ciphertext_sha256" in one_line(refused.value)


def test_malformed_payload_is_one_line_and_writes_nothing(consortium, medfabric_cli, tmp_path):
    topology, _layout, _env = consortium
    owner = topology.domains[0].id
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"resourceType": "Observation", "status": 5, "code": {"text": "heart rate"}}))
    patient = f"P-IT-{uuid.uuid4().hex[:8]}"
    result = medfabric_cli("emr", "put", "--domain", owner, "--as", "doctor", "--patient", patient, "--file", str(bad))
    assert result.returncode == 1
    assert "Observation.status" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    found = medfabric_cli("emr", "find", "--patient", patient, "--domain", owner, "--as", "doctor", "--json")
    assert found.returncode == 0 and json.loads(found.stdout) == []


def test_demo_shares_a_record_across_the_domains(consortium, medfabric_cli):
    result = medfabric_cli("demo", "--json", timeout=300)
    assert result.returncode == 0, result.stderr
    steps = json.loads(result.stdout)["steps"]
    assert steps[-1]["verification"]["mismatch"] is None


def test_duplicate_record_is_rejected(consortium):
    topology, layout, _env = consortium
    owner = topology.domains[0]
    entry = _entry(owner.id)
    with connect_as(owner.id, "doctor", topology=topology, layout=layout) as gateway:
        index = EmrIndex(gateway.get_network(owner.local_channel))
        index.put(entry)
        with pytest.raises(GatewayError, match="already exists"):
            index.put(entry)


def test_down_then_up_keeps_every_record_grant_and_log_entry(consortium, ops):
    topology, layout, _env = consortium
    owner, grantee = topology.domains[0], topology.domains[1]
    public = topology.public_channel.name
    written = {}
    with connect_as(owner.id, "doctor", topology=topology, layout=layout) as gateway:
        for channel in (owner.local_channel, public):
            entry = _entry(owner.id)
            written[channel] = EmrIndex(gateway.get_network(channel)).put(entry)
        session = Session(topology, layout, owner, "doctor", gateway)
        record_id = written[public]["record_id"]
        granted = grant(session, record_id, grantee.id, "treatment", datetime.now(timezone.utc) + timedelta(hours=1))
        logged = audit.log(session, public, record_id)
    assert any(entry["action"] == "grant" for entry in logged)
    assert ops("down").returncode == 0
    restarted = ops("up")
    assert restarted.returncode == 0, restarted.stderr
    with connect_as(owner.id, "doctor", topology=topology, layout=layout) as gateway:
        for channel, stored in written.items():
            assert EmrIndex(gateway.get_network(channel)).get(stored["record_id"]) == stored
        session = Session(topology, layout, owner, "doctor", gateway)
        kept = session.consent(public).get_grant(granted["grant_id"])
        assert {key: kept[key] for key in ("grant_id", "record_id", "grantee_msp", "expires", "revoked")} == \
            {key: granted[key] for key in ("grant_id", "record_id", "grantee_msp", "expires", "revoked")}
        assert audit.log(session, public, record_id)[:len(logged)] == logged
