"""The server: TLS and mutual TLS, gRPC options, configuration, the command and its signals."""

from __future__ import annotations

import dataclasses
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import grpc
import pytest
from cryptography.x509.oid import NameOID

from medfabric_chaincode.runtime import ChaincodeServer, ConfigError, ContractRouter, TlsConfig, load_server_config
from medfabric_chaincode.runtime.server import GRPC_OPTIONS, MAX_MESSAGE_BYTES

from . import pki
from .conftest import PACKAGE_ID, PLAINTEXT
from .fakepeer import WAIT
from .probe_contract import GATE, ProbeContract

COMMAND_WAIT = 20.0


@pytest.fixture(scope="module")
def tls_material():
    ca = pki.issue(pki.name((NameOID.COMMON_NAME, "tls-ca")), ca=True)
    return {
        "ca": ca,
        "server": pki.issue(pki.name((NameOID.COMMON_NAME, "chaincode.hospital-a")), ca, server=True),
        "peer": pki.issue(pki.name((NameOID.COMMON_NAME, "peer0.hospital-a")), ca, server=True),
    }


def tls_config(material, *, mutual: bool):
    client_ca = material["ca"].cert_pem if mutual else None
    tls = TlsConfig(key=material["server"].key_pem, cert=material["server"].cert_pem, client_ca=client_ca)
    return dataclasses.replace(PLAINTEXT, tls=tls)


def peer_credentials(material, *, with_certificate: bool):
    if not with_certificate:
        return grpc.ssl_channel_credentials(root_certificates=material["ca"].cert_pem)
    return grpc.ssl_channel_credentials(
        root_certificates=material["ca"].cert_pem,
        private_key=material["peer"].key_pem,
        certificate_chain=material["peer"].cert_pem,
    )


def test_tls_server_accepts_a_tls_peer(start_server, open_peer, tls_material):
    port = start_server(tls_config(tls_material, mutual=False))

    peer = open_peer(port, credentials=peer_credentials(tls_material, with_certificate=False))

    assert peer.connect() == PACKAGE_ID
    assert peer.invoke("Echo", b"over tls").payload == b"over tls"


def test_tls_server_refuses_plaintext(start_server, open_peer, tls_material):
    port = start_server(tls_config(tls_material, mutual=False))

    with pytest.raises(grpc.RpcError):
        open_peer(port).connect()


def test_mutual_tls_refuses_a_peer_without_certificate(start_server, open_peer, tls_material):
    port = start_server(tls_config(tls_material, mutual=True))

    with pytest.raises(grpc.RpcError):
        open_peer(port, credentials=peer_credentials(tls_material, with_certificate=False)).connect()


def test_mutual_tls_accepts_a_peer_with_certificate(start_server, open_peer, tls_material):
    port = start_server(tls_config(tls_material, mutual=True))

    peer = open_peer(port, credentials=peer_credentials(tls_material, with_certificate=True))

    assert peer.connect() == PACKAGE_ID


def test_grpc_options_suit_the_peer():
    options = dict(GRPC_OPTIONS)

    assert options["grpc.max_send_message_length"] == options["grpc.max_receive_message_length"] == MAX_MESSAGE_BYTES
    assert MAX_MESSAGE_BYTES == 100 * 1024 * 1024
    assert options["grpc.keepalive_permit_without_calls"] == 1
    assert options["grpc.http2.min_ping_interval_without_data_ms"] <= 5_000
    assert options["grpc.http2.max_ping_strikes"] == 0
    assert options["grpc.so_reuseport"] == 0


def test_busy_address_is_reported():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        address = f"127.0.0.1:{taken.getsockname()[1]}"
        server = ChaincodeServer(dataclasses.replace(PLAINTEXT, address=address), ContractRouter([ProbeContract]))

        with pytest.raises(ConfigError, match=f"^cannot listen on {address}: the address is in use or not local$"):
            server.start()


def test_stop_lets_a_running_transaction_answer_and_refuses_new_ones(open_peer):
    server = ChaincodeServer(PLAINTEXT, ContractRouter([ProbeContract]))
    peer = open_peer(server.start())
    peer.connect()
    slow = peer.submit("Wait")
    assert peer.invoke("Echo", b"x").status == 200  # the stream is ordered: Wait runs now
    stopping = threading.Thread(target=server.stop, args=(60,))
    stopping.start()

    refused = _first_refusal(peer)

    GATE.set()
    assert slow.result(timeout=WAIT).payload == b"released"
    stopping.join(WAIT)
    assert not stopping.is_alive()
    assert refused.message == "the chaincode server is stopping"


def _first_refusal(peer):
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        result = peer.invoke("Echo", b"late")
        if result.kind == "ERROR":
            return result
    raise AssertionError("the stopping server kept accepting transactions")


@pytest.fixture
def pem_files(tmp_path, tls_material):
    files = {
        "key": tls_material["server"].key_pem,
        "cert": tls_material["server"].cert_pem,
        "ca": tls_material["ca"].cert_pem,
        "text": b"not a certificate",
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    return {name: str(tmp_path / name) for name in files}


def test_plaintext_only_when_tls_is_disabled():
    env = {"CHAINCODE_SERVER_ADDRESS": "0.0.0.0:9999", "CHAINCODE_ID": PACKAGE_ID, "CHAINCODE_TLS_DISABLED": "TRUE"}

    config = load_server_config(env)

    assert (config.address, config.chaincode_id, config.tls, config.log_level) == (
        "0.0.0.0:9999", PACKAGE_ID, None, "WARNING"
    )


def test_tls_and_mutual_tls_from_the_environment(pem_files, tls_material):
    env = {
        "CHAINCODE_SERVER_ADDRESS": "[::]:9999",
        "CORE_CHAINCODE_ID_NAME": PACKAGE_ID,
        "CHAINCODE_TLS_KEY": pem_files["key"],
        "CHAINCODE_TLS_CERT": pem_files["cert"],
    }

    tls = load_server_config(env).tls
    mutual = load_server_config({**env, "CHAINCODE_CLIENT_CA_CERT": pem_files["ca"]}).tls

    assert tls == TlsConfig(tls_material["server"].key_pem, tls_material["server"].cert_pem, None)
    assert mutual.client_ca == tls_material["ca"].cert_pem


def test_flags_take_precedence_over_the_environment(pem_files):
    env = {
        "CHAINCODE_SERVER_ADDRESS": "env:1",
        "CHAINCODE_ID": "env-id",
        "CORE_CHAINCODE_ID_NAME": "core-id",
        "CHAINCODE_TLS_DISABLED": "false",
        "CHAINCODE_TLS_KEY": pem_files["text"],
        "CORE_CHAINCODE_LOGLEVEL": "error",
    }

    config = load_server_config(env, address="flag:2", chaincode_id="flag-id", tls_disabled=True, log_level="warn")

    assert (config.address, config.chaincode_id, config.tls, config.log_level) == ("flag:2", "flag-id", None, "WARNING")
    assert load_server_config(env, tls_key=pem_files["key"], tls_cert=pem_files["cert"]).log_level == "ERROR"


BASE_ENV = {"CHAINCODE_SERVER_ADDRESS": "127.0.0.1:9999", "CHAINCODE_ID": PACKAGE_ID}


@pytest.mark.parametrize(
    "env, message",
    [
        ({"CHAINCODE_ID": PACKAGE_ID}, "no server address: use --address or CHAINCODE_SERVER_ADDRESS"),
        (
            {**BASE_ENV, "CHAINCODE_SERVER_ADDRESS": "localhost"},
            "invalid server address 'localhost': expected host:port",
        ),
        ({**BASE_ENV, "CHAINCODE_SERVER_ADDRESS": ":9999"}, "invalid server address ':9999': expected host:port"),
        ({**BASE_ENV, "CHAINCODE_SERVER_ADDRESS": "h:70000"}, "invalid server address 'h:70000': expected host:port"),
        (
            {"CHAINCODE_SERVER_ADDRESS": "h:1"},
            "no chaincode package id: use --id or CHAINCODE_ID or CORE_CHAINCODE_ID_NAME",
        ),
        (
            BASE_ENV,
            "TLS is on but no TLS key is set: use --tls-key or CHAINCODE_TLS_KEY, or CHAINCODE_TLS_DISABLED=true",
        ),
        ({**BASE_ENV, "CHAINCODE_TLS_DISABLED": "maybe"}, "CHAINCODE_TLS_DISABLED must be true or false, not 'maybe'"),
        (
            {**BASE_ENV, "CHAINCODE_TLS_DISABLED": "1", "CORE_CHAINCODE_LOGLEVEL": "chatty"},
            "unknown log level 'CHATTY': use one of DEBUG, INFO, WARNING, ERROR, CRITICAL",
        ),
    ],
)
def test_configuration_errors_say_what_is_wrong(env, message):
    with pytest.raises(ConfigError) as raised:
        load_server_config(env)

    assert str(raised.value) == message


def test_unreadable_and_non_pem_files_are_named(pem_files, tmp_path):
    missing = str(tmp_path / "missing.pem")

    with pytest.raises(ConfigError, match=f"^cannot read the TLS key {missing}: No such file or directory$"):
        load_server_config(BASE_ENV, tls_key=missing, tls_cert=pem_files["cert"])
    with pytest.raises(ConfigError, match=f"^the TLS certificate {pem_files['text']} is not PEM$"):
        load_server_config(BASE_ENV, tls_key=pem_files["key"], tls_cert=pem_files["text"])


def _serve_command(env: dict[str, str]) -> tuple[subprocess.Popen, int]:
    """The command serving on a free port, started again if another process took the port first."""
    for _attempt in range(3):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        process = _command("--address", f"127.0.0.1:{port}", env=env)
        deadline = time.monotonic() + COMMAND_WAIT
        while process.poll() is None and time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return process, port
            except OSError:
                time.sleep(0.05)
        process.kill()
        _, stderr = process.communicate()
        if b"cannot listen" not in stderr:
            raise AssertionError(f"the command did not start serving: {stderr.decode()!r}")
    raise AssertionError("no free port stayed free long enough")


def _command(*args: str, env: dict[str, str]) -> subprocess.Popen:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("CHAINCODE_", "CORE_CHAINCODE_", "GRPC_"))}
    return subprocess.Popen(
        [sys.executable, "-m", "medfabric_chaincode", *args],
        env={**clean, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def test_command_serves_quietly_and_exits_0_on_sigterm(open_peer):
    process, port = _serve_command({"CHAINCODE_ID": PACKAGE_ID, "CHAINCODE_TLS_DISABLED": "true"})
    try:
        peer = open_peer(port)
        assert peer.connect() == PACKAGE_ID
        result = peer.invoke("GetRecord", "rec-1")
        assert (result.status, result.message) == (500, "record rec-1 not found")

        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=COMMAND_WAIT)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()

    assert (process.returncode, stdout, stderr) == (0, b"", b"")


@pytest.mark.parametrize(
    "args, env, message",
    [
        ((), {"CHAINCODE_ID": PACKAGE_ID}, "no server address"),
        (("--address", "127.0.0.1:1", "--id", "x"), {}, "TLS is on but no TLS key is set"),
        (("--bogus",), {}, "unrecognized arguments: --bogus"),
    ],
)
def test_command_reports_bad_configuration_in_one_line(args, env, message):
    process = _command(*args, env=env)
    stdout, stderr = process.communicate(timeout=COMMAND_WAIT)

    assert process.returncode == 2
    assert stdout == b""
    lines = stderr.decode().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("medfabric-chaincode: ")
    assert message in lines[0]


def test_command_reports_a_busy_address_in_one_line():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        address = f"127.0.0.1:{taken.getsockname()[1]}"
        process = _command("--address", address, "--id", PACKAGE_ID, "--tls-disabled", env={})
        stdout, stderr = process.communicate(timeout=COMMAND_WAIT)

    assert (process.returncode, stdout) == (2, b"")
    assert stderr.decode() == f"medfabric-chaincode: cannot listen on {address}: the address is in use or not local\n"
