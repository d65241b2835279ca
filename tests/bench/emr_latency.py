"""Put and get latency of one EMR, phase by phase (validate, crypto, store, ledger), for records of given sizes.

    python -m tests.bench.emr_latency [--json] [--sizes 1024,1048576] [--repeat N] [--network]

Each operation runs the library functions emr.put_record and emr.get_record compose, in their
order, one by one, and times each with time.perf_counter:

  put: prepare_payload (FHIR R5 validation, identifiers check) -> [ledger: GetRecord, is the id
       free] -> crypto.seal -> GET /identity and the CA check of the service's certificate ->
       crypto.wrap_key for it -> the signed store statement -> POST /records -> [ledger: PutRecord]
  get: [ledger: GetRecord (find_entry), consent CheckAccess] -> the signed fetch statement ->
       POST /records/<id>/fetch -> delivery.open_delivery (delivery signature, hashes, unwrap_key,
       open_sealed, plaintext hash) -> store.write_atomically of the plaintext

The data service is real: medfabric.data_service.server.DataServiceServer over a RecordService with a
FileBlobStore and FileKeyStore in a temporary folder under /tmp, on 127.0.0.1 (port chosen by the
system), in a thread of this process. Its AccessLedger and AuditSink are stubs that answer at once
(an allow decision for the request's own decision transaction; access-log entries counted, not
written), so `store` and `fetch` here leave out the GetDecision and LogAccess calls a deployed
service makes. Time the server spends in its blob and key stores (files, fsync) is reported as
"of which server disk".

Records are synthetic.record_of_size documents (random attachment), one per operation, made before
the clock starts. Ledger phases run only with --network, on a running consortium (`make up`),
through medfabric.consortium.connection.connect_as: PutRecord on the domain's local channel and CheckAccess
there (the record's own domain decides); the records stay indexed there. Without --network the
crypto material is generated in the temporary folder and the ledger rows say so.

Percentiles are nearest-rank: with 50 or fewer samples p99 is the slowest one. With --json the
tables go to stderr and one JSON document to stdout. A benchmark, not a test: pytest ignores it.
"""

from __future__ import annotations

import argparse
import base64
import os
import secrets
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from cryptography import x509

from medfabric.consortium.connection import connect_as
from medfabric.crypto import canonical_json, seal, wrap_key
from medfabric.data_service.server import DataServiceServer, create_app
from medfabric.data_service.transport import ConsortiumTlsCas, caller_context, server_context, user_tls_files
from medfabric.data_service.client import DataServiceClient
from medfabric.data_service.delivery import open_delivery
from medfabric.sharing.emr import _issued_by, find_entry, index_entry, prepare_payload
from medfabric.consortium.fabric_id import fabric_client_id
from medfabric.consortium.layout import NetworkLayout
from medfabric.bench.loadtest import percentile
from medfabric.data_service.record_service import RecordService, key_context
from medfabric.consortium.service_identity import SERVICE_USER, Consortium, ServiceIdentity
from medfabric.data_service.service_ledger import ALLOW, Decision, Requester
from medfabric.sharing.session import Session
from medfabric.data_service.store import FileBlobStore, FileKeyStore, write_atomically
from medfabric.sharing.synthetic import record_of_size
from medfabric.consortium.topology import load_topology

DEFAULT_SIZES = (1024, 1024 * 1024)
SMALL_RECORD_BYTES = 100_000  # below: --repeat defaults to 50, from here on to 20
PATIENT = "P-BENCH"
NO_LEDGER = "needs a running consortium (make up)"
STUB_NOTE = ("data service: real DataServiceServer + RecordService over FileBlobStore/FileKeyStore in {store} "
             "({fs}), 127.0.0.1:{port}, in this process; its AccessLedger and AuditSink are STUBS answering "
             "instantly (no GetDecision, no LogAccess: a deployed service also waits for those)")

# (operation, phase key, kind, label) in the order the product runs them; kind "ledger" rows need --network.
PHASES = (
    ("put", "validate", "validate", "prepare_payload (FHIR R5 validation)"),
    ("put", "ledger_exists", "ledger", "GetRecord: is the id free"),
    ("put", "seal", "crypto", "seal (AES-256-GCM, 2x SHA-256)"),
    ("put", "identity", "store", "GET /identity of the data service"),
    ("put", "check_service_cert", "crypto", "service certificate issued by own CA"),
    ("put", "wrap_key", "crypto", "wrap_key for the service (ECDH-ES)"),
    ("put", "sign", "crypto", "sign the store statement (ECDSA)"),
    ("put", "store", "store", "POST /records (base64, HTTP, server)"),
    ("put", "ledger_index", "ledger", "PutRecord (submit, commit)"),
    ("get", "ledger_lookup", "ledger", "GetRecord (find_entry)"),
    ("get", "ledger_decide", "ledger", "CheckAccess (submit, commit)"),
    ("get", "sign", "crypto", "sign the fetch statement (ECDSA)"),
    ("get", "fetch", "store", "POST /records/<id>/fetch (HTTP, server)"),
    ("get", "open", "crypto", "open_delivery (verify, unwrap, decrypt, hashes)"),
    ("get", "write_out", "output", "write_atomically the plaintext (fsync)"),
)
KINDS = ("validate", "crypto", "store", "ledger", "output")
SERVER_DISK = {"store": "store_server_disk", "fetch": "fetch_server_disk"}


# --- the data service's surroundings ------------------------------------------------------------------


class InstantLedger:
    """AccessLedger and AuditSink at once, answering without delay: decisions registered by `allow`; entries counted."""

    def __init__(self) -> None:
        self._decisions: dict[str, Decision] = {}
        self.logged: dict[str, int] = {}
        self.failures: list[str] = []

    def allow(self, tx_id: str, record_id: str, requester: Requester) -> None:
        self._decisions[tx_id] = Decision(record_id, requester.id, requester.msp_id, ALLOW, datetime.now(timezone.utc))

    def decision(self, channel: str, tx_id: str) -> Decision | None:
        return self._decisions.get(tx_id)

    def grant(self, channel: str, grant_id: str) -> None:
        return None  # its decisions rely on no grant

    def log_access(self, action: str, record_id: str | None, outcome: str, reason: str,
                   requester: Requester | None, decision_tx: str | None = None, break_glass: bool = False) -> None:
        self.logged[f"{action} {outcome}"] = self.logged.get(f"{action} {outcome}", 0) + 1
        if outcome != "success":
            self.failures.append(f"{action} {record_id}: {reason}")


class DiskClock:
    """Seconds the data service spent inside its blob and key stores since the last `take`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._spent = 0.0

    def add(self, seconds: float) -> None:
        with self._lock:
            self._spent += seconds

    def take(self) -> float:
        with self._lock:
            spent, self._spent = self._spent, 0.0
            return spent


class TimedStore:
    """A FileBlobStore or FileKeyStore whose every call adds its duration to a DiskClock."""

    def __init__(self, inner: FileBlobStore | FileKeyStore, clock: DiskClock):
        self._inner = inner
        self._clock = clock

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self._inner, name)

        def timed(*args: Any) -> Any:
            started = time.perf_counter()
            try:
                return method(*args)
            finally:
                self._clock.add(time.perf_counter() - started)

        return timed


@dataclass
class Bench:
    """Everything one run acts with: the user's session, the data service and what stands in for the ledger."""

    session: Session
    service: DataServiceClient
    ledger: InstantLedger
    disk: DiskClock
    workdir: Path
    network: bool
    requester: Requester  # the user as the data service identifies it, for the stub's decisions
    run_id: str = field(default_factory=lambda: secrets.token_hex(4))


def _filesystem(path: Path) -> str:
    """'<type> on <mount point>' of the file system holding `path`, from /proc/mounts."""
    best = ("?", "")
    try:
        with open("/proc/mounts") as mounts:
            for line in mounts:
                _, mount_point, fs_type, *_ = line.split()
                inside = str(path).startswith(mount_point.rstrip("/") + "/") or str(path) == mount_point
                if inside and len(mount_point) > len(best[1]):
                    best = (fs_type, mount_point)
    except OSError:
        pass
    return f"{best[0]} on {best[1] or '?'}"


# --- one put, one get -------------------------------------------------------------------------------


class Stopwatch:
    """Phase durations of one operation, in seconds, and its total from first start to last stop."""

    def __init__(self) -> None:
        self.phases: dict[str, float] = {}
        self._started = time.perf_counter()

    def time(self, phase: str, call: Callable[[], Any]) -> Any:
        started = time.perf_counter()
        result = call()
        self.phases[phase] = time.perf_counter() - started
        return result

    def total(self) -> float:
        return time.perf_counter() - self._started


def put_once(bench: Bench, fhir_json: bytes, record_id: str) -> tuple[dict[str, float], dict[str, Any]]:
    """emr.put_record's steps, each timed (local channel only, as `emr put` without --publish); the phases and
    the index entry as the ledger keeps it."""
    session, service = bench.session, bench.service
    msp_id = session.domain.msp_id
    bench.disk.take()
    watch = Stopwatch()
    payload = watch.time("validate", lambda: prepare_payload(fhir_json, PATIENT))
    if bench.network:
        found = watch.time("ledger_exists", lambda: session.index(session.local_channel).find(record_id))
        if found is not None:
            raise RuntimeError(f"record {record_id} already exists on {session.local_channel}")
    sealed = watch.time("seal", lambda: seal(payload.plaintext, aad=record_id.encode()))
    identity = watch.time("identity", service.identity)
    certificate_pem = str(identity.get("certificate_pem", "")).encode()
    trusted = watch.time("check_service_cert", lambda: _issued_by(certificate_pem, session.ca_pems(msp_id)))
    if identity.get("msp_id") != msp_id or not trusted:
        raise RuntimeError(f"the data service does not show a certificate of {msp_id}'s CA")
    wrapped = watch.time("wrap_key", lambda: wrap_key(
        sealed.data_key, certificate_pem, key_context(record_id, sealed.ciphertext_sha256, msp_id)))
    statement = watch.time("sign", lambda: session.signed(
        action="store", record_id=record_id, ciphertext_sha256=sealed.ciphertext_sha256))
    watch.time("store", lambda: service.store({
        "statement": statement,
        "blob": base64.b64encode(sealed.blob).decode(),
        "wrapped_key": wrapped.to_dict(),
    }))
    server_disk = bench.disk.take()
    entry = index_entry(session, record_id, payload, sealed)
    if bench.network:
        entry = watch.time("ledger_index", lambda: session.index(session.local_channel).put(entry))
    else:
        entry = {**entry, "owner_msp": msp_id, "erased": False}  # what PutRecord would add and GetRecord show
    phases = {**watch.phases, "total": watch.total(), "store_server_disk": server_disk}
    return phases, entry


def get_once(bench: Bench, entry: dict[str, Any], out: Path) -> dict[str, float]:
    """emr.get_record's steps for a record of the user's own domain, each timed; the phases."""
    session, service = bench.session, bench.service
    record_id = entry["record_id"]
    reader = session.credentials
    bench.disk.take()
    watch = Stopwatch()
    if bench.network:
        entry = watch.time("ledger_lookup", lambda: find_entry(session, record_id))
        channel = session.channel_for(entry["owner_msp"])
        decision, decision_tx = watch.time("ledger_decide", lambda: session.consent(channel).check_access(record_id))
        if decision["decision"] != "allow":
            raise RuntimeError(f"access to {record_id} denied on {channel}: {decision['reason']}")
    else:
        decision_tx = secrets.token_hex(32)  # a transaction id, as CheckAccess would give
    bench.ledger.allow(decision_tx, record_id, bench.requester)  # a dict insert: the stub's allow decision
    statement = watch.time("sign", lambda: session.signed(action="fetch", record_id=record_id, decision_tx=decision_tx))
    delivery = watch.time("fetch", lambda: service.fetch(record_id, statement))
    server_disk = bench.disk.take()
    plaintext = watch.time("open", lambda: open_delivery(
        delivery, entry, decision_tx, reader, session.ca_pems(entry["owner_msp"])))
    watch.time("write_out", lambda: write_atomically(out, plaintext))
    return {**watch.phases, "total": watch.total(), "fetch_server_disk": server_disk}


# --- one size -----------------------------------------------------------------------------------------


def bench_size(bench: Bench, size: int, repeat: int, warmup: int) -> dict[str, Any]:
    """`warmup` unmeasured put+get pairs, then `repeat` measured ones; per phase and kind p50/p99 (ms)."""
    seeds = range(size * 1000, size * 1000 + warmup + repeat)
    documents = [canonical_json(record_of_size(seed, size)) for seed in seeds]  # made before any clock starts
    out = bench.workdir / "out" / f"{size}.json"
    samples: dict[str, dict[str, list[float]]] = {"put": {}, "get": {}}
    blob_bytes = 0
    for index, document in enumerate(documents):
        record_id = f"bench-{bench.run_id}-{size}-{index:04d}"
        put_phases, entry = put_once(bench, document, record_id)
        get_phases = get_once(bench, entry, out)
        if out.read_bytes() != document:
            raise RuntimeError(f"record {record_id} did not read back as written")
        if index < warmup:
            continue
        blob_bytes = len(document) + 32  # MFP header 4 + nonce 12 + tag 16
        for operation, phases in (("put", put_phases), ("get", get_phases)):
            for phase, seconds in phases.items():
                samples[operation].setdefault(phase, []).append(seconds)
            for kind in KINDS:
                keys = [key for op, key, kind_of, _ in PHASES if op == operation and kind_of == kind and key in phases]
                if keys:
                    samples[operation].setdefault(f"kind:{kind}", []).append(sum(phases[key] for key in keys))
    return {
        "size_requested": size,
        "plaintext_bytes": len(documents[-1]),
        "sealed_blob_bytes": blob_bytes,
        "repeat": repeat,
        "warmup": warmup,
        **{operation: {name: _stats(values) for name, values in phases.items()}
           for operation, phases in samples.items()},
    }


def _stats(seconds: list[float]) -> dict[str, float]:
    return {
        "n": len(seconds),
        "p50_ms": round(percentile(seconds, 0.50) * 1000, 3),
        "p99_ms": round(percentile(seconds, 0.99) * 1000, 3),
        "mean_ms": round(sum(seconds) / len(seconds) * 1000, 3),
    }


# --- set-up -------------------------------------------------------------------------------------------


def start(stack: ExitStack, options: argparse.Namespace) -> tuple[Bench, dict[str, Any]]:
    """The temporary folder, the crypto material (generated, or the consortium's), the data service, the session."""
    workdir = Path(tempfile.mkdtemp(prefix="medfabric-emr-latency-"))
    stack.callback(shutil.rmtree, workdir, True)
    topology = load_topology(options.topology)
    if options.network:
        layout = NetworkLayout.default()
    else:
        from medfabric_ops.crypto_material import generate_crypto

        layout = NetworkLayout(workdir / "build")
        generate_crypto(topology, layout)
    domain = topology.domain(options.domain)
    ledger, disk = InstantLedger(), DiskClock()
    store = workdir / "store"
    record_service = RecordService(
        ServiceIdentity.load(layout.user_msp(domain, "Admin"), domain.msp_id),
        Consortium.from_layout(topology, layout, domain.id),
        TimedStore(FileBlobStore(store / "blobs"), disk), TimedStore(FileKeyStore(store / "keys"), disk),
        ledger, ledger,
    )
    cas = ConsortiumTlsCas.from_layout(topology, layout)
    server = DataServiceServer(create_app(record_service, cas),
                               server_context(user_tls_files(layout, domain, SERVICE_USER), cas), "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, name="data-service", daemon=True)
    thread.start()
    stack.callback(server.server_close)
    stack.callback(thread.join, 10)
    stack.callback(server.shutdown)
    port = server.server_address[1]
    gateway = stack.enter_context(connect_as(domain.id, options.user, topology=topology, layout=layout)) \
        if options.network else None
    session = Session(topology, layout, domain, options.user, gateway)
    service = DataServiceClient(domain.id, f"https://127.0.0.1:{port}",
                                caller_context(layout, domain, domain, options.user))
    setting = {
        "domain": domain.id,
        "user": options.user,
        "local_channel": domain.local_channel,
        "ledger": "real (connect_as to " + domain.duty_peer.address + ")" if options.network else NO_LEDGER,
        "data_service": STUB_NOTE.format(store=store, fs=_filesystem(store), port=port),
        "crypto_material": str(layout.crypto) + ("" if options.network else " (generated for this run)"),
    }
    credentials = session.credentials
    requester = Requester(credentials.identity.msp_id,
                          fabric_client_id(x509.load_pem_x509_certificate(credentials.identity.certificate_pem)))
    return Bench(session, service, ledger, disk, workdir, options.network, requester), setting


# --- report ---------------------------------------------------------------------------------------------


def render(report: dict[str, Any]) -> str:
    m, s = report["machine"], report["setting"]
    lines = [
        f"MedFabric EMR put/get latency, phase by phase (ms, nearest-rank percentiles); run {report['run_id']}",
        f"machine: nproc {m['nproc']} ({m['cpu_model'] or 'unknown CPU'}), {m['implementation']} {m['python']}, "
        f"cryptography {m['cryptography']}, {m['platform']}",
        f"acting as {s['user']}@{s['domain']}; {s['data_service']}",
        f"ledger: {s['ledger']}",
    ]
    for result in report["sizes"]:
        lines += ["", f"{_size_name(result['size_requested'])} records: plaintext {result['plaintext_bytes']} B, "
                      f"sealed blob {result['sealed_blob_bytes']} B; {result['repeat']} puts and gets measured "
                      f"after {result['warmup']} unmeasured warm-up pair(s)",
                  f"{'':4}{'kind':<9}{'phase':<50}{'p50':>9}{'p99':>9}"]
        for operation in ("put", "get"):
            stats = result[operation]
            for op, key, kind, label in PHASES:
                if op != operation:
                    continue
                if key not in stats:
                    lines.append(f"{operation:<4}{kind:<9}{label:<50}  ledger: {NO_LEDGER}")
                    continue
                lines.append(_row(operation, kind, label, stats[key]))
                disk = SERVER_DISK.get(key)
                if disk:
                    lines.append(_row("", "", "  of which server disk (blob + key files, fsync)", stats[disk]))
            lines.append(_row(operation, "TOTAL", f"{operation} (phases above, end to end)", stats["total"]))
            for kind in KINDS:
                if f"kind:{kind}" in stats:
                    lines.append(_row("", "sum", f"{kind} phases", stats[f"kind:{kind}"]))
    if report["stub_failures"]:
        lines += ["", f"data service refusals: {report['stub_failures'][:3]}"]
    lines += [
        "",
        "store/fetch include base64 and JSON of the blob on both sides, the HTTP round trip on loopback, and the "
        "server's own work (statement verification, its key unwrap, re-wrap and delivery signature on fetch, "
        "blob and key files).",
        "kind sums are per operation, then percentiles: they need not add up to the total's percentile.",
    ]
    return "\n".join(lines)


def _row(operation: str, kind: str, label: str, stats: dict[str, float]) -> str:
    return f"{operation:<4}{kind:<9}{label:<50}{stats['p50_ms']:>9.3f}{stats['p99_ms']:>9.3f}"


def _size_name(size: int) -> str:
    for unit, scale in (("MB", 1024 * 1024), ("KB", 1024)):
        if size >= scale and size % scale == 0:
            return f"{size // scale} {unit}"
    return f"{size} B"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.emr_latency", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default=",".join(map(str, DEFAULT_SIZES)), metavar="B,B",
                        help="record sizes in bytes (default 1024,1048576)")
    parser.add_argument("--repeat", type=int, metavar="N",
                        help=f"measured puts and gets per size (default 50 below {SMALL_RECORD_BYTES} B, else 20)")
    parser.add_argument("--warmup", type=int, default=2, metavar="W", help="unmeasured pairs first (default 2)")
    parser.add_argument("--network", action="store_true",
                        help="also time the ledger phases on a running consortium (make up)")
    parser.add_argument("--domain", default="hospital-a", help="the acting domain (default hospital-a)")
    parser.add_argument("--as", dest="user", default="doctor", help="its user (default doctor)")
    parser.add_argument("--topology", default=os.environ.get("MEDFABRIC_TOPOLOGY"),
                        help="consortium description (default: $MEDFABRIC_TOPOLOGY or network/topology.yaml)")
    parser.add_argument("--json", action="store_true", help="JSON on stdout, the tables on stderr")
    options = parser.parse_args(argv)
    try:
        sizes = [int(size) for size in options.sizes.split(",") if size.strip()]
    except ValueError:
        parser.error("--sizes takes byte counts separated by commas, e.g. 1024,1048576")
    if not sizes or min(sizes) < 1024 or (options.repeat is not None and options.repeat < 1) or options.warmup < 0:
        parser.error("sizes must be at least 1024 bytes, --repeat at least 1 and --warmup at least 0")

    from tests.bench.components import machine_facts, print_report

    started = time.perf_counter()
    with ExitStack() as stack:
        bench, setting = start(stack, options)
        report: dict[str, Any] = {"machine": machine_facts(), "run_id": bench.run_id, "setting": setting, "sizes": []}
        for size in sizes:
            repeat = options.repeat or (50 if size < SMALL_RECORD_BYTES else 20)
            report["sizes"].append(bench_size(bench, size, repeat, options.warmup))
        report["stub_ledger_logged"] = bench.ledger.logged
        report["stub_failures"] = bench.ledger.failures
    report["total_wall_s"] = round(time.perf_counter() - started, 1)
    print_report(report, render(report), options.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
