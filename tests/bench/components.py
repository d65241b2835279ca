"""Throughput, latency and CPU cost of MedFabric's two Python components, each in isolation.

    python -m tests.bench.components [--json] [--transactions N] [--concurrency C]

No Fabric network is involved; each component faces a test fake instead:

1. chaincode runtime: the real server (`python -m medfabric_chaincode`, emr_index contract,
   plaintext) runs as a subprocess; the fake peer of tests/unit/chaincode drives it in this
   process with N PutRecord TRANSACTIONs, C in flight. Latency is from the TRANSACTION being
   queued for sending to its COMPLETED being received; the server's CPU comes from
   /proc/<pid>/stat, so it is the runtime's own cost (the fake peer's is reported apart).
   The same load then goes to the Node baseline (caliper/baseline: the same contract on
   Fabric's official fabric-shim 2.5.8), when node and its packages are installed, and the
   Python/Node ratios are reported: the runtimes alone, side by side, without Fabric.
2. gateway client: the fake Gateway of tests/unit/gateway (TLS, checks every signature) runs
   as a subprocess; C threads here make N submit_transaction calls through the real client
   (build and sign proposal, Endorse, sign envelope, Submit, sign and send CommitStatus).
   This process's CPU is then the client's own cost (gRPC and TLS included).
3. gateway client without transport: the same submit path, single-threaded, against a stand-in
   for the gRPC stub that only marshals requests and unmarshals canned responses.

A warm-up of --warmup transactions precedes each measured run. With --json the table goes to
stderr and one JSON document to stdout. This is a benchmark, not a test: pytest ignores it.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import queue
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from medfabric.bench.loadtest import percentile

from tests.processes import stop_process

ROOT = Path(__file__).resolve().parents[2]
CHILD_FLAG = "--fake-gateway-child"
STARTUP_SECONDS = 30.0
# /work/shared/notes/fabric-native.md: Raft ~143-208 TPS; Python chaincode ~30% of a core at 200 TPS
REFERENCE_TPS = 200


# --- helpers ----------------------------------------------------------------------------------------


def _record_json(run: str, index: int) -> str:
    """A PutRecord argument: a valid emr_index entry with a record id unique to this run."""
    return json.dumps({
        "record_id": f"bench-{run}-{index:06d}",
        "patient": f"p{index % 100:03d}",
        "domain": "hospital-a",
        "resource_type": "Observation",
        "ciphertext_sha256": f"{index:064x}",
        "plaintext_sha256": "0123456789abcdef" * 4,
        "size": 1234 + index,
        "location": f"medfabric://hospital-a/store/bench-{run}-{index:06d}",
    })


def _proc_cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat") as file:
        fields = file.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class _Child:
    """A subprocess whose stdout and stderr lines are collected by threads (so its pipes never fill)."""

    def __init__(self, args: list[str], *, stdin=subprocess.DEVNULL, env: dict[str, str] | None = None):
        self.proc = subprocess.Popen(
            args, cwd=ROOT, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1, env=env
        )
        self.lines: dict[str, queue.SimpleQueue[str | None]] = {
            "stdout": queue.SimpleQueue(), "stderr": queue.SimpleQueue()
        }
        self.stderr_text: list[str] = []
        for name in self.lines:
            threading.Thread(target=self._drain, args=(name,), daemon=True).start()

    def _drain(self, name: str) -> None:
        for line in getattr(self.proc, name):
            if name == "stderr":
                self.stderr_text.append(line)
            self.lines[name].put(line)
        self.lines[name].put(None)

    def wait_for(self, stream: str, pattern: str, timeout: float = STARTUP_SECONDS) -> re.Match:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self.lines[stream].get(timeout=left)
            except queue.Empty:
                break
            if line is None:
                break
            if match := re.search(pattern, line):
                return match
        raise RuntimeError(
            f"{' '.join(self.proc.args)} did not print /{pattern}/ on {stream}; "
            f"exit status {self.proc.poll()}; stderr:\n{''.join(self.stderr_text)[-2000:]}"
        )

    def cpu_seconds(self) -> float:
        return _proc_cpu_seconds(self.proc.pid)

    def stop(self) -> None:
        stop_process(self.proc)


def _summary(count: int, wall: float, latencies: list[float], failures: list[str]) -> dict:
    return {
        "transactions": count,
        "failures": len(failures),
        "first_failures": failures[:3],
        "wall_s": round(wall, 3),
        "tps": round(count / wall, 1),
        "p50_ms": round(percentile(latencies, 0.50) * 1000, 2) if latencies else None,
        "p99_ms": round(percentile(latencies, 0.99) * 1000, 2) if latencies else None,
    }


def _cpu_fields(prefix: str, cpu_seconds: float, count: int, wall: float) -> dict:
    per_tx = cpu_seconds / count
    return {
        f"{prefix}_cpu_s": round(cpu_seconds, 3),
        f"{prefix}_cpu_ms_per_tx": round(per_tx * 1000, 3),
        f"{prefix}_cores_busy": round(cpu_seconds / wall, 2),
        f"{prefix}_core_share_at_{REFERENCE_TPS}_tps": round(per_tx * REFERENCE_TPS, 3),
    }


# --- 1. chaincode runtime -------------------------------------------------------------------------


BASELINE_DIR = ROOT / "caliper" / "baseline"
BASELINE_CLI = BASELINE_DIR / "node_modules" / "fabric-shim" / "cli.js"


def _python_runtime() -> tuple[_Child, int]:
    server = _Child([sys.executable, "-m", "medfabric_chaincode", "--address", "127.0.0.1:0", "--id", "bench:0",
                     "--tls-disabled", "--log-level", "INFO"])
    return server, int(server.wait_for("stderr", r"serving chaincode \S+ on port (\d+)").group(1))


def _node_baseline() -> tuple[_Child, int]:
    """`fabric-chaincode-node server` of caliper/baseline, plaintext, on a free port, once it accepts connections."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    environment = {key: value for key, value in os.environ.items() if not key.startswith("CORE_")}
    environment["CORE_CHAINCODE_LOGGING_LEVEL"] = "WARNING"
    server = _Child(["node", str(BASELINE_CLI), "server", "--chaincode-address", f"127.0.0.1:{port}",
                     "--chaincode-id", "bench:0", "--module-path", str(BASELINE_DIR)], env=environment)
    deadline = time.monotonic() + STARTUP_SECONDS
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return server, port
        except OSError:
            if server.proc.poll() is not None or time.monotonic() > deadline:
                server.stop()
                raise RuntimeError(f"the Node baseline did not listen on {port}: {''.join(server.stderr_text)[-2000:]}")
            time.sleep(0.05)


def baseline_missing() -> str | None:
    """Why the Node baseline cannot run here, or None."""
    if shutil.which("node") is None:
        return "node is not installed"
    if not BASELINE_CLI.is_file():
        return "caliper/baseline/node_modules is missing (make baseline-deps)"
    return None


def bench_chaincode(count: int, concurrency: int, warmup: int,
                    start: Callable[[], tuple[_Child, int]] = _python_runtime) -> dict:
    from cryptography.x509.oid import NameOID
    from fabric_protos.peer import chaincode_shim_pb2

    from tests.unit.chaincode import pki
    from tests.unit.chaincode.fakepeer import FakePeer

    msg_type = chaincode_shim_pb2.ChaincodeMessage
    ca = pki.issue(pki.name((NameOID.ORGANIZATION_NAME, "hospital-a"), (NameOID.COMMON_NAME, "ca.hospital-a")), ca=True)
    doctor = pki.issue(pki.USER_NAME, ca, attributes={"role": "doctor", "hf.EnrollmentID": "doctor1",
                                                      "medfabric.domain": "hospital-a"})
    creator = pki.serialized_identity("HospitalAMSP", doctor)

    server, port = start()
    peer = None
    try:
        peer = FakePeer(f"127.0.0.1:{port}", creator, doctor.key)
        sent_at: dict[str, float] = {}
        send = peer.send

        def timed_send(msg) -> None:  # FakePeer.submit builds and signs the proposal, then sends: time from here
            if msg.type == msg_type.TRANSACTION:
                sent_at[msg.txid] = time.perf_counter()
            send(msg)

        peer.send = timed_send
        peer.connect()

        def run(run_id: str, n: int) -> tuple[list[float], list[str]]:
            slots = threading.BoundedSemaphore(concurrency)
            latencies: list[float] = []
            failures: list[str] = []
            lock = threading.Lock()
            left = [n]
            all_done = threading.Event()

            def finished(future) -> None:
                received = time.perf_counter()
                result = future.result()
                latencies.append(received - sent_at.pop(result.tx_id))
                if (result.kind, result.status) != ("COMPLETED", 200):
                    failures.append(f"{result.kind} {result.status} {result.message}")
                slots.release()
                with lock:
                    left[0] -= 1
                    if left[0] == 0:
                        all_done.set()

            for index in range(n):
                slots.acquire()
                peer.submit("PutRecord", _record_json(run_id, index)).add_done_callback(finished)
            if not all_done.wait(max(60.0, n / 10)):
                raise RuntimeError(f"chaincode run {run_id}: {left[0]} of {n} transactions never completed")
            return latencies, failures

        run("warmup", warmup)
        server_cpu, bench_cpu, started = server.cpu_seconds(), time.process_time(), time.perf_counter()
        latencies, failures = run("measured", count)
        wall = time.perf_counter() - started
        server_cpu, bench_cpu = server.cpu_seconds() - server_cpu, time.process_time() - bench_cpu
        stored = sum(1 for (_, key) in peer.state if key.startswith("\x00emr\x00bench-measured-"))
    finally:
        if peer is not None:
            peer.close()
        server.stop()
    return {
        **_summary(count, wall, latencies, failures),
        "records_committed_by_fake_peer": stored,
        **_cpu_fields("server", server_cpu, count, wall),
        **_cpu_fields("driver", bench_cpu, count, wall),
    }


# --- 2. gateway client through the fake Gateway ------------------------------------------------


def _serve_fake_gateway() -> int:
    """Child mode: serve a FakeGateway over TLS, print its address and credentials, stop at stdin EOF."""
    from tests.unit.gateway.fakegateway import FakeGateway, FakeGatewayServer, make_pki

    pki = make_pki()
    fake = FakeGateway(pki.msp_id, pki.client.cert_pem)
    server = FakeGatewayServer(fake, pki)
    print(json.dumps({
        "port": server.port,
        "server_name": pki.server_name,
        "msp_id": pki.msp_id,
        "ca_pem": pki.ca.cert_pem.decode(),
        "client_cert_pem": pki.client.cert_pem.decode(),
        "client_key_pem": pki.client.key_pem.decode(),  # a throw-away test key
    }), flush=True)
    sys.stdin.read()
    print(json.dumps({
        "rejections": len(fake.rejections),
        "first_rejections": fake.rejections[:3],
        "submitted": len(fake.submitted),
    }), flush=True)
    server.stop()
    return 0


def _run_threads(count: int, concurrency: int, call: Callable[[int], object]) -> tuple[float, list[float], list[str]]:
    indexes = itertools.count()
    latencies: list[float] = []
    failures: list[str] = []

    def worker() -> None:
        while (index := next(indexes)) < count:
            started = time.perf_counter()
            try:
                call(index)
            except Exception as exc:  # noqa: BLE001 - counted and reported
                failures.append(f"{type(exc).__name__}: {exc}")
                continue
            latencies.append(time.perf_counter() - started)

    threads = [threading.Thread(target=worker, name=f"bench-client-{i}") for i in range(concurrency)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started, latencies, failures


def bench_gateway(count: int, concurrency: int, warmup: int) -> tuple[dict, bytes, dict]:
    """The gateway run's figures, a prepared transaction the fake endorsed, and the credentials used."""
    from cryptography.hazmat.primitives import serialization

    from medfabric.gateway import connect
    from medfabric.gateway.identity import X509Identity, ecdsa_signer
    from tests.unit.gateway.fakegateway import CHAINCODE, CHANNEL

    child = _Child([sys.executable, "-m", "tests.bench.components", CHILD_FLAG], stdin=subprocess.PIPE)
    try:
        info = json.loads(child.wait_for("stdout", r"^\{.*\}$").group(0))
        identity = X509Identity(info["msp_id"], info["client_cert_pem"].encode())
        key = serialization.load_pem_private_key(info["client_key_pem"].encode(), password=None)
        signer = ecdsa_signer(key)
        with connect(identity, signer, endpoint=f"127.0.0.1:{info['port']}", tls_root_cert=info["ca_pem"].encode(),
                     server_name_override=info["server_name"]) as gateway:
            contract = gateway.get_network(CHANNEL).get_contract(CHAINCODE)
            endorsed = contract.new_proposal("PutRecord", arguments=[_record_json("sample", 0)]).endorse()
            prepared = endorsed.to_bytes()
            endorsed.submit().get_status()
            _run_threads(warmup, concurrency,
                         lambda i: contract.submit_transaction("PutRecord", _record_json("warmup", i)))
            fake_cpu, client_cpu = child.cpu_seconds(), time.process_time()
            wall, latencies, failures = _run_threads(
                count, concurrency, lambda i: contract.submit_transaction("PutRecord", _record_json("measured", i))
            )
            fake_cpu, client_cpu = child.cpu_seconds() - fake_cpu, time.process_time() - client_cpu
        child.proc.stdin.close()
        fake_report = json.loads(child.wait_for("stdout", r"^\{.*\}$").group(0))
    finally:
        child.stop()
    result = {
        **_summary(count, wall, latencies, failures),
        **_cpu_fields("client", client_cpu, count, wall),
        **_cpu_fields("fake_gateway", fake_cpu, count, wall),
        "fake_gateway_rejections": fake_report["rejections"],
        "fake_gateway_first_rejections": fake_report["first_rejections"],
        "fake_gateway_submitted": fake_report["submitted"],
    }
    return result, prepared, {"identity": identity, "signer": signer, "channel": CHANNEL, "chaincode": CHAINCODE}


# --- 3. gateway client without transport -------------------------------------------------------


class _NoTransport:
    """Stands in for the client's GatewayClient: marshals each request and unmarshals a canned response,
    as the gRPC stub does around the network, and sends nothing."""

    def __init__(self, prepared_transaction: bytes):
        from fabric_protos.gateway import gateway_pb2
        from fabric_protos.peer import transaction_pb2

        self._pb = gateway_pb2
        envelope = gateway_pb2.PreparedTransaction.FromString(prepared_transaction).envelope
        self._endorsed = gateway_pb2.EndorseResponse(prepared_transaction=envelope).SerializeToString()
        self._submitted = gateway_pb2.SubmitResponse().SerializeToString()
        status = gateway_pb2.CommitStatusResponse(result=transaction_pb2.VALID, block_number=7)
        self._status = status.SerializeToString()

    def endorse(self, request, timeout=None):
        request.SerializeToString()
        return self._pb.EndorseResponse.FromString(self._endorsed)

    def submit(self, request, timeout=None):
        request.SerializeToString()
        return self._pb.SubmitResponse.FromString(self._submitted)

    def commit_status(self, request, timeout=None):
        request.SerializeToString()
        return self._pb.CommitStatusResponse.FromString(self._status)


def bench_client_offline(count: int, warmup: int, prepared: bytes, credentials: dict) -> dict:
    from medfabric.gateway import Contract
    from medfabric.gateway.signing import SigningIdentity

    signer = credentials["signer"]
    contract = Contract(_NoTransport(prepared), SigningIdentity(credentials["identity"], signer),
                        credentials["channel"], credentials["chaincode"])
    documents = {run: [_record_json(run, i) for i in range(n)] for run, n in (("warmup", warmup), ("measured", count))}

    def timed(action: Callable[[str], object], run: str) -> float:
        started = time.process_time()
        for document in documents[run]:
            action(document)
        return (time.process_time() - started) / len(documents[run])

    def submit(document: str) -> None:
        if contract.submit_transaction("PutRecord", document) == b"":
            raise RuntimeError("empty result")

    def propose_and_sign(document: str) -> None:
        signer(contract.new_proposal("PutRecord", arguments=[document]).digest())

    digest = bytes(range(32))
    timed(submit, "warmup")
    started = time.perf_counter()
    per_submit = timed(submit, "measured")
    wall = time.perf_counter() - started
    per_proposal = timed(propose_and_sign, "measured")
    per_sign = timed(lambda _: signer(digest), "measured")
    return {
        "transactions": count,
        "wall_s": round(wall, 3),
        "tps_single_thread": round(count / wall, 1),
        "submit_path_cpu_ms_per_tx": round(per_submit * 1000, 3),
        "build_and_sign_proposal_cpu_ms": round(per_proposal * 1000, 3),
        "ecdsa_sign_cpu_ms": round(per_sign * 1000, 3),
        "signatures_per_submit": 3,
        f"core_share_at_{REFERENCE_TPS}_tps": round(per_submit * REFERENCE_TPS, 3),
    }


# --- report ---------------------------------------------------------------------------------------


def machine_facts() -> dict:
    import cryptography
    import grpc

    model = ""
    try:
        with open("/proc/cpuinfo") as file:
            model = next((line.split(":", 1)[1].strip() for line in file if line.startswith("model name")), "")
    except OSError:
        pass
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu_count": os.cpu_count(),
        "cpu_model": model,
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "grpcio": grpc.__version__,
        "cryptography": cryptography.__version__,
    }


def render(report: dict) -> str:
    m, p = report["machine"], report["parameters"]
    cc, gw, off = report["chaincode_runtime"], report["gateway_client"], report["gateway_client_no_transport"]
    share = f"core_share_at_{REFERENCE_TPS}_tps"
    node = report.get("chaincode_node_baseline")
    rows = [
        ("chaincode runtime (subprocess) <- fake peer", cc["tps"], cc["p50_ms"], cc["p99_ms"],
         cc["server_cpu_ms_per_tx"], cc[f"server_{share}"], cc["failures"]),
        *([("Node baseline, fabric-shim (subprocess)", node["tps"], node["p50_ms"], node["p99_ms"],
            node["server_cpu_ms_per_tx"], node[f"server_{share}"], node["failures"])] if node else []),
        ("gateway client (this process) -> fake gateway", gw["tps"], gw["p50_ms"], gw["p99_ms"],
         gw["client_cpu_ms_per_tx"], gw[f"client_{share}"], gw["failures"]),
        ("gateway client, no transport, 1 thread", off["tps_single_thread"], None, None,
         off["submit_path_cpu_ms_per_tx"], off[share], 0),
    ]
    lines = [
        f"MedFabric components: {p['transactions']} PutRecord transactions each, {p['concurrency']} in flight, "
        f"warm-up {p['warmup']}",
        f"machine: nproc {m['nproc']} ({m['cpu_model'] or 'unknown CPU'}), {m['implementation']} {m['python']}, "
        f"grpcio {m['grpcio']}, cryptography {m['cryptography']}, {m['platform']}",
        "",
        f"{'component':<46} {'tx/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'CPU ms/tx':>10} "
        f"{f'cores@{REFERENCE_TPS}TPS':>12} {'failed':>7}",
    ]
    for name, tps, p50, p99, cpu, cores, failed in rows:
        lines.append(f"{name:<46} {tps:>8.1f} {_cell(p50):>8} {_cell(p99):>8} {cpu:>10.3f} {cores:>12.3f} {failed:>7}")
    lines += [
        "",
        f"chaincode: server used {cc['server_cores_busy']} cores over {cc['wall_s']} s; the in-process fake peer "
        f"(driver) {cc['driver_cpu_ms_per_tx']} ms/tx, {cc['driver_cores_busy']} cores; "
        f"{cc['records_committed_by_fake_peer']} records committed by the fake peer.",
        (f"Python/Node: throughput {report['python_node_ratio']['tps']}, CPU per tx "
         f"{report['python_node_ratio']['cpu_per_tx']} (throughput above 1.0: the Python runtime is faster)."
         if node else f"Node baseline not measured: {report['chaincode_node_baseline_skipped']}."),
        f"gateway: client used {gw['client_cores_busy']} cores over {gw['wall_s']} s; the fake gateway (subprocess, "
        f"3 ECDSA verifications per tx) {gw['fake_gateway_cpu_ms_per_tx']} ms/tx, "
        f"{gw['fake_gateway_cores_busy']} cores; "
        f"fake gateway rejections {gw['fake_gateway_rejections']}.",
        f"no transport: build+sign proposal {off['build_and_sign_proposal_cpu_ms']} ms, one ECDSA P-256 signature "
        f"{off['ecdsa_sign_cpu_ms']} ms ({off['signatures_per_submit']} per submit).",
        f"reference (fabric-native.md): Raft orderer ~143-208 TPS; Python chaincode ~30% of a core at "
        f"{REFERENCE_TPS} TPS. 'cores@{REFERENCE_TPS}TPS' = CPU ms/tx x {REFERENCE_TPS} / 1000.",
        "Driver and component share the machine's cores; tx/s are what this machine reached with both running.",
    ]
    return "\n".join(lines)


def _cell(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv == [CHILD_FLAG]:
        return _serve_fake_gateway()
    parser = argparse.ArgumentParser(prog="python -m tests.bench.components", description=__doc__.split("\n\n")[0])
    parser.add_argument("--transactions", type=int, default=2000, metavar="N", help="per component (default 2000)")
    parser.add_argument("--concurrency", type=int, default=32, metavar="C", help="in flight (default 32)")
    parser.add_argument("--warmup", type=int, default=100, metavar="W", help="unmeasured first (default 100)")
    parser.add_argument("--json", action="store_true", help="JSON on stdout, the table on stderr")
    options = parser.parse_args(argv)
    if options.transactions < 1 or options.concurrency < 1 or options.warmup < 1:
        parser.error("--transactions, --concurrency and --warmup must be at least 1")
    os.environ.setdefault("GRPC_VERBOSITY", "NONE")  # also for the children

    started = time.perf_counter()
    report: dict = {
        "machine": machine_facts(),
        "parameters": {"transactions": options.transactions, "concurrency": options.concurrency,
                       "warmup": options.warmup},
    }
    report["chaincode_runtime"] = bench_chaincode(options.transactions, options.concurrency, options.warmup)
    if missing := baseline_missing():
        report["chaincode_node_baseline_skipped"] = missing
    else:
        node = bench_chaincode(options.transactions, options.concurrency, options.warmup, _node_baseline)
        report["chaincode_node_baseline"] = node
        python = report["chaincode_runtime"]
        report["python_node_ratio"] = {
            "tps": round(python["tps"] / node["tps"], 2),
            "cpu_per_tx": round(python["server_cpu_ms_per_tx"] / node["server_cpu_ms_per_tx"], 2),
        }
    gateway, prepared, credentials = bench_gateway(options.transactions, options.concurrency, options.warmup)
    report["gateway_client"] = gateway
    report["gateway_client_no_transport"] = bench_client_offline(
        options.transactions, options.warmup, prepared, credentials
    )
    report["total_wall_s"] = round(time.perf_counter() - started, 1)
    print_report(report, render(report), options.json)
    return 0


def print_report(report: dict, table: str, as_json: bool) -> None:
    """The table on stdout, or with --json the JSON on stdout and the table on stderr."""
    table += f"\ntotal {report['total_wall_s']} s"
    if as_json:
        print(table, file=sys.stderr)
        print(json.dumps(report, indent=2))
    else:
        print(table)


if __name__ == "__main__":
    sys.exit(main())
