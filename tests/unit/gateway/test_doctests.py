"""The examples in the docstrings run, against the fake gateway where they need one."""

import doctest
import importlib

import pytest
from fabric_protos.peer import chaincode_event_pb2

from .fakegateway import CHAINCODE
from .test_identity import write_msp

MODULES_WITH_EXAMPLES = [
    "medfabric.gateway.identity",
    "medfabric.gateway",
    "medfabric.gateway.checkpointers",
    "medfabric.gateway.commit",
    "medfabric.gateway.contract",
    "medfabric.gateway.errors",
    "medfabric.gateway.events",
    "medfabric.gateway.gateway",
    "medfabric.gateway.network",
    "medfabric.gateway.options",
    "medfabric.gateway.proposal",
    "medfabric.gateway.transaction",
]


@pytest.fixture
def example_globals(gateway, network, contract, identity, signer, server, pki, fake, tmp_path):
    """What the examples take as given: a connection to the fake, and the files it reads."""
    fake.add_block(chaincode_event_pb2.ChaincodeEvent(chaincode_id=CHAINCODE, tx_id="t1", event_name="AssetCreated"))
    msp_dir = write_msp(tmp_path / "msp", pki.client.cert_pem, [("priv_sk", pki.client.key_pem)])
    return {
        "gateway": gateway, "network": network, "contract": contract, "identity": identity, "signer": signer,
        "endpoint": server.address, "tls_root_cert": pki.ca.cert_pem, "server_name": pki.server_name,
        "msp_dir": msp_dir, "checkpoint_path": tmp_path / "checkpoint.json",
    }


@pytest.mark.parametrize("module_name", MODULES_WITH_EXAMPLES)
def test_examples_run(module_name, example_globals):
    module = importlib.import_module(module_name)

    failed, attempted = doctest.testmod(module, extraglobs=example_globals, report=True)

    assert attempted > 0 and failed == 0
