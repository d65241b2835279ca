"""One malicious member on the real consortium, under the public channel's real endorsement policy and under ANY.

Hospital B is the malicious member: its CA mints certificates claiming
hospital A's domain, its peer runs a chaincode server that says yes to
everything (yes_chaincode.py), and it replays what hospital A signed. The
contracts bind each domain to its MSP (the topology's binding, in every
chaincode server's environment), so honest endorsers refuse B's claims; under
the consortium's MAJORITY policy B's endorsements alone never commit. The same
suite runs against a consortium whose public channel takes ANY one member's
endorsement, to show which defences are then left (README, "Security").
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from fabric_protos.gateway import gateway_pb2

from medfabric.consortium.connection import connect_as
from medfabric.gateway import GatewayError, connect
from medfabric.gateway.identity import load_msp_identity
from medfabric.polling import awaited
from medfabric.sharing.demo import demo_entry
from medfabric.sharing.emr_index import EmrIndex

from .conftest import running_consortium

pytestmark = pytest.mark.integration

FABRIC_ATTRIBUTES = x509.ObjectIdentifier("1.2.3.4.5.6.7.8.1")
ANY_BASE_PORT = 18000
YES_SERVER = Path(__file__).with_name("yes_chaincode.py")
CHAINCODE = "medfabric"


@pytest.fixture(scope="module")
def any_endorsement(tmp_path_factory):
    """A second real consortium whose public channel's endorsement policy is ANY one member's."""
    yield from running_consortium(tmp_path_factory.mktemp("any-endorsement"), ANY_BASE_PORT, {"endorsement": "ANY"})


@pytest.fixture(params=["MAJORITY", "ANY"], scope="module")
def network(request):
    """The consortium with the public endorsement policy of the parameter."""
    return request.getfixturevalue("consortium" if request.param == "MAJORITY" else "any_endorsement")


def forged_msp(layout, domain, user: str, claimed_domain: str, folder: Path) -> Path:
    """A copy of `user`'s MSP folder whose certificate, re-signed by its own org's CA, says `claimed_domain`."""
    msp = folder / "msp"
    shutil.copytree(layout.user_msp(domain, user), msp)
    [cert_file] = (msp / "signcerts").iterdir()
    original = x509.load_pem_x509_certificate(cert_file.read_bytes())
    ca_dir = layout.peer_org(domain) / "ca"
    ca_key = serialization.load_pem_private_key((ca_dir / "priv_sk").read_bytes(), password=None)
    builder = (x509.CertificateBuilder().subject_name(original.subject).issuer_name(original.issuer)
               .public_key(original.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(original.not_valid_before_utc).not_valid_after(original.not_valid_after_utc))
    for extension in original.extensions:
        if extension.oid == FABRIC_ATTRIBUTES:
            attributes = json.loads(extension.value.value)
            attributes["attrs"]["medfabric.domain"] = claimed_domain
            value = x509.UnrecognizedExtension(FABRIC_ATTRIBUTES, json.dumps(attributes).encode())
            builder = builder.add_extension(value, critical=False)
        else:
            builder = builder.add_extension(extension.value, critical=extension.critical)
    cert_file.write_bytes(builder.sign(ca_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM))
    return msp


@contextmanager
def gateway_of(layout, domain, msp: Path, signing: bool = True):
    """A Gateway connection to `domain`'s duty peer as the identity of the MSP folder `msp`."""
    identity, signer = load_msp_identity(msp, domain.msp_id)
    peer = domain.duty_peer
    with connect(identity, signer if signing else None, endpoint=peer.address,
                 tls_root_cert=layout.peer_tls_ca(domain).read_bytes(), server_name_override=peer.host_name) as gateway:
        yield gateway


@contextmanager
def yes_server(network, domain):
    """Run `domain`'s chaincode server as yes_chaincode.py (same address, same package id); the real one after."""
    from medfabric_ops.lifecycle import chaincode_process_name, python_chaincode_env, start_chaincode_server
    from medfabric_ops.process import Supervisor, tcp_open
    from medfabric_ops.render.chaincode_package import package_id

    topology, layout, _env = network
    supervisor, name, package = Supervisor(layout), chaincode_process_name(domain), package_id(topology, domain)
    port = topology.chaincode_port(topology.chaincode, domain)
    env = python_chaincode_env(topology, domain, package)
    supervisor.stop(name)
    try:
        supervisor.start(name, [sys.executable, str(YES_SERVER)], env, cwd=layout.node_data(name))
        supervisor.wait_ready(name, tcp_open(topology.host, port), 30)
        yield
    finally:
        supervisor.stop(name)
        start_chaincode_server(supervisor, topology, layout, domain, package)
        supervisor.wait_ready(name, tcp_open(topology.host, port), 30)


def unique(prefix: str) -> str:
    return f"{prefix}-{time.time_ns()}"


@pytest.mark.parametrize("channel_of", ["public", "victim-local"])
def test_a_members_ca_claiming_another_domain_writes_nothing(network, tmp_path, channel_of):
    topology, layout, _env = network
    victim, attacker = topology.domains[0], topology.domains[1]
    msp = forged_msp(layout, attacker, "doctor", victim.id, tmp_path)
    channel = "public" if channel_of == "public" else victim.local_channel
    entry = demo_entry(victim.id, unique(f"forged-{channel_of}"))
    with gateway_of(layout, attacker, msp) as gateway:
        with pytest.raises(GatewayError) as refused:
            EmrIndex(gateway.get_network(channel)).put(entry)
    if channel_of == "public":
        assert f"only an identity of domain {victim.id} ({victim.msp_id})" in str(refused.value)
    with connect_as(victim.id, "doctor", topology=topology, layout=layout) as gateway:
        assert EmrIndex(gateway.get_network(channel)).find(entry["record_id"]) is None


def forged_writes(network):
    """What B's yes-server lets B's forged doctor (claiming hospital A) write on the public channel:
    (name, transaction, argument, how to find what it wrote as hospital A's doctor)."""
    topology, layout, _env = network
    victim, attacker = topology.domains[0], topology.domains[1]
    entry = demo_entry(victim.id, unique("yes-index"))
    with connect_as(victim.id, "doctor", topology=topology, layout=layout) as gateway:
        victims_record = EmrIndex(gateway.get_network("public")).put(demo_entry(victim.id, unique("victims")))
    expires = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    grant = {"record_id": victims_record["record_id"], "domain": victim.id, "grantee_msp": attacker.msp_id,
             "purpose": "treatment", "expires": expires}
    return {
        "index": ("emr_index", "PutRecord", json.dumps(entry), ("emr_index", "GetRecord", entry["record_id"])),
        "grant": ("consent", "GrantAccess", json.dumps(grant), ("consent", "ListGrants", grant["record_id"])),
    }


def found(network, contract: str, query: str, argument: str):
    """What hospital A's doctor reads with `query` on the public channel (None when refused as not found)."""
    topology, layout, _env = network
    with connect_as(topology.domains[0].id, "doctor", topology=topology, layout=layout) as gateway:
        try:
            answer = json.loads(gateway.get_network("public").get_contract(CHAINCODE, contract)
                                .evaluate_transaction(query, argument))
        except GatewayError as error:
            assert "not found" in str(error)
            return None
    return answer or None


@pytest.mark.parametrize("write", ["index", "grant"])
def test_a_yes_saying_chaincode_server_commits_only_under_any(network, tmp_path, write):
    topology, layout, _env = network
    victim, attacker = topology.domains[0], topology.domains[1]
    contract, transaction, argument, (_, query, key) = forged_writes(network)[write]
    msp = forged_msp(layout, attacker, "doctor", victim.id, tmp_path)
    policy = topology.public_channel.endorsement
    with yes_server(network, attacker), gateway_of(layout, attacker, msp) as gateway:
        target = gateway.get_network("public").get_contract(CHAINCODE, contract)
        alone = target.new_proposal(transaction, arguments=[argument], endorsing_organizations=[attacker.msp_id])
        status = alone.endorse().submit().get_status()
        if policy == "MAJORITY":
            with pytest.raises(GatewayError) as refused:  # endorsers chosen by the Gateway: an honest one refuses
                target.submit_transaction(transaction, argument)
    if policy == "MAJORITY":
        assert status.code_name == "ENDORSEMENT_POLICY_FAILURE"  # B's own endorsement, ordered, never valid
        assert "chaincode response 500, only" in str(refused.value)
        assert found(network, contract, query, key) is None
    else:
        assert status.code_name == "VALID"  # the defence that ANY gives up: one member's endorsement commits
        written = found(network, contract, query, key)
        owner = written["owner_msp"] if write == "index" else written[0]["grantor_msp"]
        assert owner == victim.msp_id  # as the yes-server wrote it: the state alone cannot tell


def test_a_replayed_transaction_of_another_member_commits_once(network):
    topology, layout, _env = network
    attacker = topology.domains[1]
    record_id = unique("replayed")
    with victims_log_request(network, record_id) as proposal:
        transaction = proposal.endorse()
        assert transaction.submit().get_status().code_name == "VALID"
    signed = transaction.to_bytes()
    signature = gateway_pb2.PreparedTransaction.FromString(signed).envelope.signature
    # the replay comes after A's commit has reached B's own peer (with ANY, B's Gateway asks that peer alone)
    assert awaited(lambda: _entries_of(network, record_id, topology.domains[1]) or None, 10)
    with gateway_of(layout, attacker, layout.user_msp(attacker, "doctor"), signing=False) as gateway:
        with pytest.raises(GatewayError) as resubmitted:  # without a signer: the orderers' answer as it is
            gateway.new_signed_transaction(signed, signature).submit()
        with pytest.raises(GatewayError) as re_endorsed:
            gateway.new_signed_proposal(proposal.to_bytes(), _signature_of(proposal)).endorse()
    assert "request already processed" in str(resubmitted.value)  # every BFT orderer keeps what it ordered
    assert f"duplicate transaction found [{transaction.transaction_id}]" in str(re_endorsed.value)
    assert len(_entries_of(network, record_id)) == 1


def test_another_members_proposal_signed_by_the_attacker_is_refused(network):
    topology, layout, _env = network
    victim, attacker = topology.domains[0], topology.domains[1]
    record_id = unique("resigned")
    with victims_log_request(network, record_id) as proposal:
        pass  # built and kept, never sent by A
    _identity, attackers_signer = load_msp_identity(layout.user_msp(attacker, "doctor"), attacker.msp_id)
    with gateway_of(layout, attacker, layout.user_msp(attacker, "doctor"), signing=False) as gateway:
        with pytest.raises(GatewayError) as refused:
            gateway.new_signed_proposal(proposal.to_bytes(), attackers_signer(proposal.digest())).endorse()
    assert f"access denied: channel [public] creator org [{victim.msp_id}]" in str(refused.value)
    assert _entries_of(network, record_id) == []


@contextmanager
def victims_log_request(network, record_id: str):
    """Hospital A's doctor's proposal to log a request for `record_id` on the public channel, A's Gateway open."""
    topology, layout, _env = network
    entry = {"record_id": record_id, "action": "request", "outcome": "success", "reason": "replay check"}
    with connect_as(topology.domains[0].id, "doctor", topology=topology, layout=layout) as gateway:
        log = gateway.get_network("public").get_contract(CHAINCODE, "access_log")
        yield log.new_proposal("LogAccess", arguments=[json.dumps(entry)])


def _signature_of(proposal) -> bytes:
    return gateway_pb2.ProposedTransaction.FromString(proposal.to_bytes()).proposal.signature


def _entries_of(network, record_id: str, domain=None) -> list[dict]:
    """The public log's entries of `record_id`, as hospital A's peer (or `domain`'s) has them."""
    topology, layout, _env = network
    with connect_as((domain or topology.domains[0]).id, "doctor", topology=topology, layout=layout) as gateway:
        log = gateway.get_network("public").get_contract(CHAINCODE, "access_log")
        return json.loads(log.evaluate_transaction("ListLog", "", "", record_id, "0", ""))["entries"]
