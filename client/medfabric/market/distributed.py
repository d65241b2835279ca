"""The decomposition with each duty node's step in its own process, over TCP on 127.0.0.1.

The coordinator listens on an ephemeral port and starts one process per duty node (`python -m
medfabric.market.distributed HOST PORT`, the shared key on its stdin); each connects back (multiprocessing's
authenticated connection: an HMAC challenge on the key, then length-prefixed frames).
What travels is explicit: a JSON header naming float64 arrays, then their bytes; nothing is unpickled. A node
receives the public side of the instance once (the caps, its own costs, the users' l and lambda), then per
iteration the consensus variables, and answers with its slack contribution.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from multiprocessing.connection import Client, Connection, Listener
from typing import Any

import numpy as np

from medfabric.market import admm
from medfabric.market.problem import MarketError, MarketProblem
from medfabric.market.slack import DutyNodeData

HOST = "127.0.0.1"
CONNECT_TIMEOUT = 60.0
STEP_TIMEOUT = 300.0


def encode(message: dict[str, Any]) -> bytes:
    arrays = {name: np.asarray(value, dtype="<f8") for name, value in message.items()}
    header = json.dumps({name: list(array.shape) for name, array in arrays.items()}).encode()
    return len(header).to_bytes(4, "little") + header + b"".join(array.tobytes() for array in arrays.values())


def decode(frame: bytes) -> dict[str, np.ndarray]:
    size = int.from_bytes(frame[:4], "little")
    header, offset, message = json.loads(frame[4:4 + size]), 4 + size, {}
    for name, shape in header.items():
        count = int(np.prod(shape)) if shape else 1
        message[name] = np.frombuffer(frame, dtype="<f8", count=count, offset=offset).reshape(shape).copy()
        offset += 8 * count
    if offset != len(frame):
        raise MarketError("a market frame has trailing bytes")
    return message


def run_node(address: tuple[str, int], key: bytes) -> None:
    """A duty node's process: its data once (which duty node it is follows from its costs' position, known to the
    coordinator only), then steps until the coordinator closes the connection."""
    with Client(address, authkey=key) as connection:
        data = decode(connection.recv_bytes())
        node_data = DutyNodeData(float(data["p_hat"]), float(data["d_max"]), data["costs"], data["l"], data["lam"])
        if int(data["competitive"]):
            node = admm.CompetitiveNode(node_data, int(data["total_dns"]), float(data["rho"]))
        else:
            node = admm.CooperativeNode(node_data)
        connection.send_bytes(encode(node.start()))
        while True:
            try:
                consensus = decode(connection.recv_bytes())
            except EOFError:
                return
            connection.send_bytes(encode(node.step(consensus)))


class RemoteNode:
    """The coordinator's end of one duty node's process (the DutyNodeStep protocol over the connection)."""

    def __init__(self, name: str, connection: Connection, process: subprocess.Popen):
        self.name, self.connection, self.process = name, connection, process
        self._first: dict[str, np.ndarray] | None = None

    def _receive(self) -> dict[str, np.ndarray]:
        if not self.connection.poll(STEP_TIMEOUT):
            raise MarketError(f"duty node {self.name} sent nothing for {STEP_TIMEOUT:g} s")
        try:
            return decode(self.connection.recv_bytes())
        except (EOFError, ConnectionError):
            raise MarketError(f"duty node {self.name} closed its connection (process exit code "
                              f"{self.process.poll()})") from None

    def start(self) -> dict[str, np.ndarray]:
        if self._first is None:
            self._first = self._receive()
        return self._first

    def step(self, consensus: dict[str, Any]) -> dict[str, np.ndarray]:
        self.connection.send_bytes(encode(consensus))
        reply = self._receive()
        if "primal" in reply:
            reply["primal"] = float(reply["primal"])
        return reply


def solve_distributed(problem: MarketProblem, scenario: str, tolerance: float = admm.DEFAULT_TOLERANCE,
                      max_iterations: int = admm.DEFAULT_MAX_ITERATIONS, rho: float | None = None,
                      progress=None) -> admm.AdmmResult:
    """`scenario` with one process per duty node; the same answer as admm.solve, computed apart."""
    kind = admm.loop_kind(problem, scenario)
    rho = admm.default_rho(problem.dns) if rho is None else rho
    key = secrets.token_bytes(32)
    with ExitStack() as stack:
        listener = stack.enter_context(Listener((HOST, 0), authkey=key))
        host, port = listener.address
        processes = []
        for _ in range(problem.dns):
            process = subprocess.Popen([sys.executable, "-m", "medfabric.market.distributed", host, str(port)],
                                       stdin=subprocess.PIPE)
            stack.callback(_stop, process)
            process.stdin.write(key.hex().encode() + b"\n")
            process.stdin.close()
            processes.append(process)
        connections = _accept(listener, len(processes))
        nodes = []
        for j, (connection, process) in enumerate(zip(connections, processes)):
            stack.callback(connection.close)
            data = DutyNodeData.of(problem, [j])
            connection.send_bytes(encode({"p_hat": data.p_hat, "d_max": data.d_max, "costs": data.costs,
                                          "l": data.l, "lam": data.lam, "competitive": kind == "competitive",
                                          "total_dns": problem.dns, "rho": rho}))
            nodes.append(RemoteNode(str(j + 1), connection, process))
        executor = stack.enter_context(ThreadPoolExecutor(max_workers=len(nodes)))
        return admm.coordinate(problem, scenario, nodes, tolerance, max_iterations, rho, progress, executor)


def _accept(listener: Listener, count: int) -> list[Connection]:
    """`count` connections in the order they arrive (the coordinator then gives the k-th one duty node k's data);
    Listener.accept has no timeout, so it waits in a thread and a late node closes the listener."""
    with ThreadPoolExecutor(max_workers=1) as waiter:
        accepted = waiter.submit(lambda: [listener.accept() for _ in range(count)])
        try:
            return accepted.result(timeout=CONNECT_TIMEOUT)
        except TimeoutError:
            listener.close()
            raise MarketError(f"the duty nodes' processes did not all connect within {CONNECT_TIMEOUT:g} s") from None


def _stop(process: subprocess.Popen) -> None:
    """Wait for a node that has seen its connection close; end one that does not (only our own child)."""
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.terminate()
        process.wait(timeout=10)


if __name__ == "__main__":
    run_node((sys.argv[1], int(sys.argv[2])), bytes.fromhex(sys.stdin.readline().strip()))
