"""Crypto material: real X.509 chains in cryptogen's layout, NodeOUs, Fabric CA
attributes, private keys, and runs that only ever add what is missing."""

from __future__ import annotations

import ipaddress
import json
import os
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from medfabric.consortium.topology import DEFAULT_TOPOLOGY, parse_topology
from medfabric_ops import crypto_material
from medfabric_ops.crypto_material import CryptoMaterialError, generate_crypto

ATTRIBUTES_OID = x509.ObjectIdentifier("1.2.3.4.5.6.7.8.1")


@pytest.fixture
def generated(topology, layout):
    generate_crypto(topology, layout)
    return layout


def grown_topology(tmp_path: Path, user: str = "nurse", peer: str = "peer2"):
    """The default topology with one more user and one more peer in hospital-a."""
    raw = yaml.safe_load(DEFAULT_TOPOLOGY.read_text())
    raw["domains"][0]["users"].append(user)
    raw["domains"][0]["peers"].append(peer)
    return parse_topology(raw, source=tmp_path / "topology.yaml")


def certificate(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def private_key(path: Path) -> ec.EllipticCurvePrivateKey:
    return serialization.load_pem_private_key(path.read_bytes(), password=None)


def field(cert: x509.Certificate, oid: x509.ObjectIdentifier) -> str | None:
    values = cert.subject.get_attributes_for_oid(oid)
    return values[0].value if values else None


def extension(cert: x509.Certificate, kind):
    return cert.extensions.get_extension_for_class(kind).value


def assert_issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> None:
    cert.verify_directly_issued_by(issuer)  # signature and issuer name
    assert extension(cert, x509.AuthorityKeyIdentifier).key_identifier == \
        extension(issuer, x509.SubjectKeyIdentifier).digest
    assert extension(cert, x509.BasicConstraints).ca is False
    assert cert.not_valid_after_utc <= issuer.not_valid_after_utc


def assert_key_pair(key_file: Path, cert: x509.Certificate) -> None:
    assert private_key(key_file).public_key() == cert.public_key()
    assert key_file.stat().st_mode & 0o777 == 0o600


def orgs(topology, layout):
    """(org folder, org domain) of every organisation."""
    for domain in topology.domains:
        yield layout.peer_org(domain), domain.org_domain
        yield layout.orderer_org(domain), domain.orderer_org_domain


def authorities(org_dir: Path, org_domain: str) -> tuple[x509.Certificate, x509.Certificate]:
    return (certificate(org_dir / "ca" / f"ca.{org_domain}-cert.pem"),
            certificate(org_dir / "tlsca" / f"tlsca.{org_domain}-cert.pem"))


def snapshot(root: Path) -> dict[str, tuple[bytes, int, int] | str]:
    """Every folder below root, and every file with its content, inode and modification time."""
    return {
        str(path.relative_to(root)): (path.read_bytes(), path.stat().st_ino, path.stat().st_mtime_ns)
        if path.is_file() else "folder"
        for path in sorted(root.rglob("*"))
    }


def test_every_org_has_a_ca_a_tls_ca_and_an_msp_with_node_ous(topology, generated):
    for org_dir, org_domain in orgs(topology, generated):
        for ca, name in zip(authorities(org_dir, org_domain), ("ca", "tlsca")):
            assert ca.subject == ca.issuer and field(ca, NameOID.COMMON_NAME) == f"{name}.{org_domain}"
            assert field(ca, NameOID.ORGANIZATION_NAME) == org_domain
            assert all(field(ca, oid) for oid in (NameOID.COUNTRY_NAME, NameOID.STATE_OR_PROVINCE_NAME,
                                                  NameOID.LOCALITY_NAME))
            ca.verify_directly_issued_by(ca)
            assert extension(ca, x509.BasicConstraints).ca is True
            usage = extension(ca, x509.KeyUsage)
            assert usage.key_cert_sign and usage.crl_sign and usage.digital_signature
            assert extension(ca, x509.SubjectKeyIdentifier).digest
            assert isinstance(ca.public_key().curve, ec.SECP256R1)
            assert 3640 <= (ca.not_valid_after_utc - ca.not_valid_before_utc).days <= 3660
            assert_key_pair(org_dir / name / "priv_sk", ca)
        ca, tlsca = authorities(org_dir, org_domain)
        msp = org_dir / "msp"
        assert certificate(msp / "cacerts" / f"ca.{org_domain}-cert.pem") == ca
        assert certificate(msp / "tlscacerts" / f"tlsca.{org_domain}-cert.pem") == tlsca
        node_ous = yaml.safe_load((msp / "config.yaml").read_text())["NodeOUs"]
        assert node_ous["Enable"] is True
        for role in ("client", "peer", "admin", "orderer"):
            identifier = node_ous[f"{role.capitalize()}OUIdentifier"]
            assert identifier["OrganizationalUnitIdentifier"] == role
            assert certificate(msp / identifier["Certificate"]) == ca


def test_nodes_have_an_enrollment_certificate_and_a_tls_server_certificate(topology, generated):
    nodes = [(generated.peer_dir(topology.domain(p.domain_id), p), p.host_name, "peer") for p in topology.peers]
    nodes += [(generated.orderer_dir(topology.orderer_domain(o), o), o.host_name, "orderer")
              for o in topology.orderers]
    for node_dir, host_name, role in nodes:
        org_dir = node_dir.parents[1]
        ca, tlsca = authorities(org_dir, org_dir.name)
        msp = node_dir / "msp"
        signcert = certificate(msp / "signcerts" / f"{host_name}-cert.pem")
        assert_issued_by(signcert, ca)
        assert field(signcert, NameOID.COMMON_NAME) == host_name
        assert field(signcert, NameOID.ORGANIZATIONAL_UNIT_NAME) == role
        assert extension(signcert, x509.KeyUsage).digital_signature
        assert_key_pair(msp / "keystore" / "priv_sk", signcert)
        assert certificate(msp / "cacerts" / f"ca.{org_dir.name}-cert.pem") == ca
        assert (msp / "config.yaml").read_bytes() == (org_dir / "msp" / "config.yaml").read_bytes()

        server = certificate(node_dir / "tls" / "server.crt")
        assert_issued_by(server, tlsca)
        assert certificate(node_dir / "tls" / "ca.crt") == tlsca
        names = extension(server, x509.SubjectAlternativeName)
        assert set(names.get_values_for_type(x509.DNSName)) == {host_name, "localhost"}
        assert names.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
        assert set(extension(server, x509.ExtendedKeyUsage)) == {ExtendedKeyUsageOID.SERVER_AUTH,
                                                                 ExtendedKeyUsageOID.CLIENT_AUTH}
        assert_key_pair(node_dir / "tls" / "server.key", server)
        assert server.public_key() != signcert.public_key()
    assert len(nodes) == len(topology.peers) + len(topology.orderers)


def test_users_carry_their_node_ou_and_fabric_ca_attributes(topology, generated):
    for domain in topology.domains:
        ca, tlsca = authorities(generated.peer_org(domain), domain.org_domain)
        serving = [("data-service", "data-service"), ("diagnosis", "diagnosis")]
        for user, role in [("Admin", "admin"), *((u, u) for u in domain.users), *serving]:
            msp = generated.user_msp(domain, user)
            signcert = certificate(msp / "signcerts" / f"{user}@{domain.org_domain}-cert.pem")
            assert_issued_by(signcert, ca)
            assert field(signcert, NameOID.ORGANIZATIONAL_UNIT_NAME) == ("admin" if user == "Admin" else "client")
            assert field(signcert, NameOID.COMMON_NAME) == f"{user}@{domain.org_domain}"
            assert_key_pair(msp / "keystore" / "priv_sk", signcert)
            attributes = json.loads(signcert.extensions.get_extension_for_oid(ATTRIBUTES_OID).value.value)
            assert attributes == {"attrs": {"hf.EnrollmentID": user, "hf.Type": "client",
                                            "medfabric.role": role, "medfabric.domain": domain.id}}
            tls = generated.user_dir(domain, user) / "tls"
            if (user, role) in serving:  # it runs an HTTPS server on 127.0.0.1
                served = certificate(tls / "server.crt")
                assert_issued_by(served, tlsca)
                assert list(extension(served, x509.ExtendedKeyUsage)) == [ExtendedKeyUsageOID.SERVER_AUTH,
                                                                          ExtendedKeyUsageOID.CLIENT_AUTH]
                assert ipaddress.ip_address("127.0.0.1") in extension(served, x509.SubjectAlternativeName) \
                    .get_values_for_type(x509.IPAddress)
                assert_key_pair(tls / "server.key", served)
                continue
            client = certificate(tls / "client.crt")
            assert_issued_by(client, tlsca)
            assert list(extension(client, x509.ExtendedKeyUsage)) == [ExtendedKeyUsageOID.CLIENT_AUTH]
            assert_key_pair(tls / "client.key", client)

        # the orderer org's admin: what osnadmin presents on the orderers' admin endpoints
        credentials = generated.orderer_admin_tls(domain)
        tlsca = certificate(generated.orderer_tls_ca(domain))
        client = certificate(credentials / "client.crt")
        assert_issued_by(client, tlsca)
        assert certificate(credentials / "ca.crt") == tlsca
        assert_key_pair(credentials / "client.key", client)
        admin_cert = certificate(generated.orderer_admin_dir(domain) / "msp" / "signcerts"
                                 / f"Admin@{domain.orderer_org_domain}-cert.pem")
        assert field(admin_cert, NameOID.ORGANIZATIONAL_UNIT_NAME) == "admin"


def test_each_orderer_org_holds_exactly_its_domains_orderers(topology, generated):
    for domain in topology.domains:
        owned = {o.host_name for o in topology.orderers if o.domain_id == domain.id}
        assert {p.name for p in (generated.orderer_org(domain) / "orderers").iterdir()} == owned
        assert {p.name for p in (generated.peer_org(domain) / "peers").iterdir()} == \
            {p.host_name for p in domain.peers}


def test_keys_are_private_and_certificates_public_even_with_umask_0(topology, layout):
    previous = os.umask(0)
    try:
        generate_crypto(topology, layout)
    finally:
        os.umask(previous)
    files = [path for path in layout.crypto.rglob("*") if path.is_file()]
    keys = [path for path in files if path.name in ("priv_sk", "server.key", "client.key")]
    assert len(keys) > 50
    assert {path.stat().st_mode & 0o777 for path in keys} == {0o600}
    assert {path.stat().st_mode & 0o777 for path in files if path not in keys} == {0o644}
    org_dirs = [layout.peer_org(d) for d in topology.domains] + [layout.orderer_org(d) for d in topology.domains]
    assert {path.stat().st_mode & 0o777 for path in org_dirs} == {0o700}  # no other user reaches in


def test_a_second_run_changes_no_byte_and_no_file(topology, generated):
    before = snapshot(generated.crypto)
    generate_crypto(topology, generated)
    assert snapshot(generated.crypto) == before


def test_a_new_user_and_peer_are_added_under_the_existing_cas_leaving_the_rest_alone(topology, generated, tmp_path):
    before = snapshot(generated.crypto)
    grown = grown_topology(tmp_path)
    generate_crypto(grown, generated)
    after = snapshot(generated.crypto)
    assert {path: facts for path, facts in after.items() if path in before} == before
    domain = grown.domain("hospital-a")
    ca, tlsca = authorities(generated.peer_org(domain), domain.org_domain)
    nurse = certificate(generated.user_msp(domain, "nurse") / "signcerts" / f"nurse@{domain.org_domain}-cert.pem")
    assert_issued_by(nurse, ca)
    peer2 = next(p for p in domain.peers if p.name == "peer2")
    assert_issued_by(certificate(generated.peer_dir(domain, peer2) / "tls" / "server.crt"), tlsca)
    new = {Path(path).parts[3] for path in set(after) - set(before) if len(Path(path).parts) > 3}
    assert new == {f"nurse@{domain.org_domain}", peer2.host_name}


def test_an_interrupted_run_leaves_nothing_half_written(topology, layout, monkeypatch, tmp_path):
    issue = crypto_material._issue
    successes_left = [15]  # the peer org of hospital-a takes 14 certificates, then its orderer org starts

    def interrupted_issue(*args, **kwargs):
        if successes_left[0] == 0:
            raise KeyboardInterrupt("interrupted")
        successes_left[0] -= 1
        return issue(*args, **kwargs)

    monkeypatch.setattr(crypto_material, "_issue", interrupted_issue)
    with pytest.raises(KeyboardInterrupt):
        generate_crypto(topology, layout)
    orgs_written = sorted(str(p.relative_to(layout.crypto)) for p in layout.crypto.glob("*/*"))
    assert orgs_written == [f"peerOrganizations/{topology.domains[0].org_domain}"]
    assert not [p for p in layout.crypto.rglob("*") if "partial" in p.name]

    successes_left[0] = 10_000
    generate_crypto(topology, layout)  # a rerun finishes the job
    assert snapshot(layout.crypto).keys() >= {f"ordererOrganizations/{d.orderer_org_domain}" for d in topology.domains}

    before = snapshot(layout.crypto)
    successes_left[0] = 1  # the new peer gets its enrollment certificate, not its TLS certificate
    with pytest.raises(KeyboardInterrupt):
        generate_crypto(grown_topology(tmp_path), layout)
    assert snapshot(layout.crypto) == before


def test_a_lost_ca_key_is_an_error_not_a_new_ca(topology, generated, tmp_path):
    domain = topology.domain("hospital-a")
    ca_key = generated.peer_org(domain) / "ca" / "priv_sk"
    ca_key.rename(tmp_path / "kept-aside")
    generate_crypto(topology, generated)  # nothing to add: the CA key is not needed

    before = snapshot(generated.crypto)
    with pytest.raises(CryptoMaterialError, match="priv_sk is missing"):
        generate_crypto(grown_topology(tmp_path), generated)
    assert snapshot(generated.crypto) == before


def test_a_ca_key_that_does_not_match_its_certificate_is_an_error(topology, generated, tmp_path):
    domain = topology.domain("hospital-b")
    org = generated.peer_org(domain)
    (org / "ca" / "priv_sk").write_bytes((org / "tlsca" / "priv_sk").read_bytes())
    raw = yaml.safe_load(DEFAULT_TOPOLOGY.read_text())
    raw["domains"][1]["users"].append("nurse")
    with pytest.raises(CryptoMaterialError, match="is not the key of"):
        generate_crypto(parse_topology(raw), generated)
