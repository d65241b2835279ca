"""Caliper's network configuration: rendered from the topology with the crypto tree's paths, and read back by
Caliper 0.6's own Fabric connector code (when caliper/node_modules is installed)."""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from medfabric.consortium.layout import PROJECT_ROOT, NetworkLayout
from medfabric.consortium.topology import load_topology
from medfabric_ops.render.caliper_network import caliper_network, contract_id, identity_name
from medfabric_ops.render.files import HEADER

CALIPER_DIR = PROJECT_ROOT / "caliper"
READER = Path(__file__).parent / "node" / "read_caliper_network.js"


@pytest.fixture(scope="module")
def topology():
    return load_topology()


@pytest.fixture(scope="module")
def layout(rendered_layout) -> NetworkLayout:
    return rendered_layout


@pytest.fixture(scope="module")
def document(layout):
    return yaml.safe_load(layout.caliper_network_config.read_text())


def test_it_is_rendered_with_the_network_into_the_config_folder(topology, layout, document):
    assert layout.caliper_network_config == layout.root / "config" / "caliper" / "network.yaml"
    text = layout.caliper_network_config.read_text()
    assert text.startswith(HEADER)
    assert document == caliper_network(topology, layout)


def test_version_is_exactly_2_0_0_and_the_blockchain_is_fabric(document):
    assert document["version"] == "2.0.0" and isinstance(document["version"], str)
    assert document["caliper"] == {"blockchain": "fabric"}
    assert document["name"] == "medfabric"


def test_every_channel_lists_both_chaincodes_with_a_contract_id_unique_across_channels(topology, document):
    assert [c["channelName"] for c in document["channels"]] == [c.name for c in topology.channels]
    assert [c["channelName"] for c in document["channels"]] == [
        "hospital-a-local", "hospital-b-local", "hospital-c-local", "public"]
    contract_ids = []
    for channel in document["channels"]:
        assert [c["id"] for c in channel["contracts"]] == ["medfabric", "medfabric-node"]
        for contract in channel["contracts"]:
            assert contract["contractID"] == contract_id(contract["id"], channel["channelName"])
            contract_ids.append(contract["contractID"])
    assert "medfabric@public" in contract_ids and "medfabric-node@hospital-b-local" in contract_ids
    assert len(contract_ids) == len(set(contract_ids))  # Caliper refuses a contract ID defined twice


def test_only_the_deployed_chaincodes_are_listed(topology, layout):
    without = caliper_network(topology, layout, chaincodes=[topology.chaincode])
    assert all([c["id"] for c in channel["contracts"]] == ["medfabric"] for channel in without["channels"])
    no_baseline = dataclasses.replace(topology, baseline=None)
    assert caliper_network(no_baseline, layout) == without


def test_organizations_have_their_msp_id_identities_and_peers_duty_node_first(topology, layout, document):
    assert [org["mspid"] for org in document["organizations"]] == ["HospitalAMSP", "HospitalBMSP", "HospitalCMSP"]
    for org, domain in zip(document["organizations"], topology.domains, strict=True):
        assert set(org) == {"mspid", "identities", "peers"}
        certificates = org["identities"]["certificates"]
        assert [c["name"] for c in certificates] == [
            f"Admin@{domain.id}", f"doctor@{domain.id}", f"researcher@{domain.id}"]
        assert [c.get("admin", False) for c in certificates] == [True, False, False]
        for certificate, user in zip(certificates, ["Admin", *domain.users], strict=True):
            assert certificate["name"] == identity_name(domain, user)
            assert certificate["clientPrivateKey"] == {"path": str(layout.user_private_key(domain, user))}
            assert certificate["clientSignedCert"] == {"path": str(layout.user_signcert(domain, user))}
        assert org["peers"] == [{"endpoint": f"127.0.0.1:{peer.listen_port}",
                                 "tlsCACerts": {"path": str(layout.peer_tls_ca(domain))}} for peer in domain.peers]
        assert org["peers"][0]["endpoint"] == domain.duty_peer.address  # the gateway: on every channel
    assert document["organizations"][0]["peers"][0]["endpoint"] == "127.0.0.1:7100"


def test_every_path_is_the_crypto_trees_and_each_key_signs_for_its_certificate(topology, layout, document):
    for org, domain in zip(document["organizations"], topology.domains, strict=True):
        for entry in org["identities"]["certificates"]:
            certificate = x509.load_pem_x509_certificate(Path(entry["clientSignedCert"]["path"]).read_bytes())
            key = serialization.load_pem_private_key(Path(entry["clientPrivateKey"]["path"]).read_bytes(), None)
            assert key.public_key().public_numbers() == certificate.public_key().public_numbers()
            user = entry["name"].split("@")[0]
            assert certificate.subject.rfc4514_string().startswith(f"CN={user}@{domain.org_domain}")
            assert Path(entry["clientSignedCert"]["path"]).is_relative_to(layout.user_msp(domain, user))
        for peer in org["peers"]:
            assert Path(peer["tlsCACerts"]["path"]).is_file()


def test_caliper_reads_it_as_we_mean_it(topology, layout):
    """Caliper 0.6.0's connector configuration code, on the rendered file and the real crypto material."""
    if shutil.which("node") is None or not (CALIPER_DIR / "node_modules" / "@hyperledger" / "caliper-fabric").is_dir():
        pytest.skip("Caliper is not installed (npm ci in caliper/)")
    done = subprocess.run(["node", str(READER), str(CALIPER_DIR), str(layout.caliper_network_config)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    understood = json.loads(done.stdout.strip().splitlines()[-1])  # Caliper logs to stdout before it
    assert understood["mutualTls"] is False
    assert understood["channels"]["public"] == [
        {"contractID": "medfabric@public", "channel": "public", "id": "medfabric"},
        {"contractID": "medfabric-node@public", "channel": "public", "id": "medfabric-node"}]
    assert set(understood["channels"]) == {c.name for c in topology.channels}
    for domain in topology.domains:
        org = understood["organizations"][domain.msp_id]
        prefix = "" if domain is topology.domains[0] else f"_{domain.msp_id}_"  # Caliper's aliases
        assert org["identities"] == [f"{prefix}{user}@{domain.id}" for user in ("Admin", *domain.users)]
        assert org["admins"] == [f"{prefix}Admin@{domain.id}"]
        assert org["peers"] == [{"endpoint": peer.address, "tls": True} for peer in domain.peers]
