"""Chaincode servers in processes of their own, for FakeFabric and ContractGatewayServer to dial.

Each serves plaintext on a free loopback port, as a peer dials a chaincode-as-a-service server whose
connection.json says `tls_required: false`:

* `node_baseline()`: the Node baseline (caliper/baseline, emr_index on Fabric's fabric-shim), started as
  ops starts it (medfabric_ops.lifecycle.node_chaincode_command), its environment without CORE_* settings
  except CORE_CHAINCODE_LOGGING_LEVEL=WARNING (INFO logs every transaction);
* `python_chaincode()`: our Python runtime (`python -m medfabric_chaincode`, every contract).

    >>> with node_baseline() as node, ContractGatewayServer(topology, layout,
    ...                                                     chaincodes={"medfabric-node": node.address}):
    ...     ...

Both are context managers giving a ChaincodeProcess (name, address, pid, the last lines it wrote) once the
port accepts connections, and stopping the process (SIGTERM, then SIGKILL) on exit. `node_baseline()`
raises ChaincodeUnavailable, saying why, when node or caliper/baseline/node_modules is missing
(`baseline_missing()` tells beforehand, for a skip).
"""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from collections import deque
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Iterator

from medfabric.consortium.layout import PROJECT_ROOT
from medfabric_ops.lifecycle import BASELINE_DIR, baseline_unavailable, node_chaincode_command
from medfabric_ops.process import child_env, tcp_open

from ..processes import stop_process

HOST = "127.0.0.1"
NODE_BASELINE = "medfabric-node"  # the baseline's chaincode name in network/topology.yaml
NODE_BASELINE_ID = f"{NODE_BASELINE}_0.1:fake"
PYTHON_CHAINCODE_ID = "medfabric_0.1:fake"
STARTUP_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
PORT_ATTEMPTS = 3  # a free port may be taken between finding it and the server binding it
TAIL_LINES = 200


class ChaincodeUnavailable(RuntimeError):
    """The chaincode server cannot run here, or did not start: one line (and its last output)."""


@dataclass
class ChaincodeProcess:
    """A running chaincode server."""

    name: str
    address: str
    process: subprocess.Popen
    _tail: deque[str] = field(default_factory=lambda: deque(maxlen=TAIL_LINES), repr=False)
    _reader: threading.Thread | None = field(default=None, repr=False)

    @property
    def pid(self) -> int:
        return self.process.pid

    def output(self) -> str:
        """The last lines it wrote (stdout and stderr)."""
        return "".join(self._tail)


def baseline_missing() -> str | None:
    """Why the Node baseline cannot run here (one line), or None."""
    return baseline_unavailable()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


@contextmanager
def node_baseline(chaincode_id: str = NODE_BASELINE_ID, *, log: Path | None = None,
                  timeout: float = STARTUP_TIMEOUT) -> Iterator[ChaincodeProcess]:
    """The Node baseline's server (`fabric-chaincode-node server` on caliper/baseline), serving."""
    missing = baseline_missing()
    if missing:
        raise ChaincodeUnavailable(f"the Node baseline cannot run here: {missing}")
    env = child_env({"CORE_CHAINCODE_LOGGING_LEVEL": "WARNING"})  # child_env drops every other CORE_* setting
    with _serving(NODE_BASELINE, lambda address: node_chaincode_command(BASELINE_DIR, address, chaincode_id),
                  env, BASELINE_DIR, log, timeout) as server:
        yield server


@contextmanager
def python_chaincode(chaincode_id: str = PYTHON_CHAINCODE_ID, *, log: Path | None = None,
                     timeout: float = STARTUP_TIMEOUT) -> Iterator[ChaincodeProcess]:
    """Our Python chaincode server (`python -m medfabric_chaincode`, logging at WARNING), serving."""
    env = child_env({"GRPC_VERBOSITY": "NONE"})
    with _serving("medfabric", lambda address: [sys.executable, "-m", "medfabric_chaincode", "--address", address,
                                                "--id", chaincode_id, "--tls-disabled", "--log-level", "WARNING"],
                  env, PROJECT_ROOT, log, timeout) as server:
        yield server


@contextmanager
def _serving(name: str, command, env: dict[str, str], cwd: Path, log: Path | None,
             timeout: float) -> Iterator[ChaincodeProcess]:
    log_file = open(log, "a", encoding="utf-8") if log is not None else None  # noqa: SIM115 - closed below
    try:
        server = _start(name, command, env, cwd, log_file, timeout)
        try:
            yield server
        finally:
            _stop(server)
    finally:
        if log_file is not None:
            log_file.close()


def _start(name: str, command, env: dict[str, str], cwd: Path, log_file: IO[str] | None,
           timeout: float) -> ChaincodeProcess:
    for attempt in range(1, PORT_ATTEMPTS + 1):
        port = free_port()
        argv = command(f"{HOST}:{port}")
        process = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True, errors="replace", bufsize=1)
        server = ChaincodeProcess(name, f"{HOST}:{port}", process)
        server._reader = threading.Thread(target=_drain, args=(process, server._tail, log_file),
                                          name=f"{name}-output", daemon=True)
        server._reader.start()
        listening = tcp_open(HOST, port, timeout=0.2)
        deadline = time.monotonic() + timeout
        while process.poll() is None and time.monotonic() < deadline:
            if listening():
                return server
            time.sleep(0.05)
        exited = process.poll() is not None
        _stop(server)
        if exited and attempt < PORT_ATTEMPTS and "EADDRINUSE" in server.output():
            continue
        why = (f"exited with status {process.returncode}" if exited
               else f"did not listen on {server.address} within {timeout:g} s")
        raise ChaincodeUnavailable(f"the {name} chaincode server ({' '.join(argv)}) {why}; its last output:\n"
                                   f"{server.output()[-2000:]}")
    raise AssertionError("unreachable")


def _drain(process: subprocess.Popen, tail: deque[str], log_file: IO[str] | None) -> None:
    for line in process.stdout:
        tail.append(line)
        if log_file is not None:
            log_file.write(line)
            log_file.flush()


def _stop(server: ChaincodeProcess) -> None:
    """Stop the process (SIGTERM, SIGKILL after STOP_TIMEOUT) and let its output be read to the end."""
    stop_process(server.process, STOP_TIMEOUT)
    if server._reader is not None:
        server._reader.join(STOP_TIMEOUT)
