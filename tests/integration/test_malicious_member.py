"""One malicious member on the real consortium: hospital B's CA mints a certificate claiming hospital A's domain.

B's CA may write any attribute into B's certificates; the contracts bind each domain to its MSP (the
topology's binding, in every chaincode server's environment), so every endorser refuses and nothing commits.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from medfabric.consortium.connection import connect_as
from medfabric.gateway import GatewayError, connect
from medfabric.gateway.identity import load_msp_identity
from medfabric.sharing.demo import demo_entry
from medfabric.sharing.emr_index import EmrIndex

pytestmark = pytest.mark.integration

FABRIC_ATTRIBUTES = x509.ObjectIdentifier("1.2.3.4.5.6.7.8.1")


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


@pytest.mark.parametrize("channel_of", ["public", "victim-local"])
def test_a_members_ca_claiming_another_domain_writes_nothing(consortium, tmp_path, channel_of):
    topology, layout, _env = consortium
    victim, attacker = topology.domains[0], topology.domains[1]
    msp = forged_msp(layout, attacker, "doctor", victim.id, tmp_path)
    identity, signer = load_msp_identity(msp, attacker.msp_id)
    peer = attacker.duty_peer
    channel = "public" if channel_of == "public" else victim.local_channel
    entry = demo_entry(victim.id, f"forged-{channel_of}")
    with connect(identity, signer, endpoint=peer.address, tls_root_cert=layout.peer_tls_ca(attacker).read_bytes(),
                 server_name_override=peer.host_name) as gateway:
        with pytest.raises(GatewayError) as refused:
            EmrIndex(gateway.get_network(channel)).put(entry)
    if channel_of == "public":
        assert f"only an identity of domain {victim.id} ({victim.msp_id})" in str(refused.value)
    with connect_as(victim.id, "doctor", topology=topology, layout=layout) as gateway:
        assert EmrIndex(gateway.get_network(channel)).find(entry["record_id"]) is None
