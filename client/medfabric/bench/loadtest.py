"""Submit many PutRecord transactions concurrently through our Gateway client.

Measures what the foundation promises: N submits from C concurrent tasks all
commit VALID, none are lost (each is read back), none hang (every call has a
deadline). Reports throughput and latency percentiles. A benchmark, not a test:

    medfabric bench put --domain hospital-a --channel public --count 1000 --concurrency 32
"""

from __future__ import annotations

import math
import statistics
import time
import uuid
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass

from medfabric.consortium.connection import connect_as
from medfabric.sharing.demo import demo_entry
from medfabric.sharing.emr_index import EmrIndex
from medfabric.consortium.layout import NetworkLayout
from medfabric.consortium.topology import Topology


@dataclass(frozen=True)
class LoadTestResult:
    channel: str
    count: int
    concurrency: int
    committed: int
    failed: int
    read_back: int
    seconds: float
    tps: float
    latency_p50_ms: float
    latency_p99_ms: float
    latency_max_ms: float
    first_errors: list[str]

    def as_dict(self) -> dict:
        return asdict(self)


def percentile(samples: list[float], fraction: float) -> float:
    """Nearest-rank percentile of `samples` (fraction in [0, 1])."""
    ordered = sorted(samples)
    rank = min(max(1, math.ceil(fraction * len(ordered))), len(ordered))
    return ordered[rank - 1]


def run_put_load(
    topology: Topology,
    layout: NetworkLayout,
    *,
    domain_id: str,
    channel: str,
    count: int,
    concurrency: int,
    user: str = "doctor",
    progress=None,
) -> LoadTestResult:
    """Submit `count` PutRecord transactions from `concurrency` threads, then read each back."""
    run_id = uuid.uuid4().hex[:8]
    record_ids = [f"load-{run_id}-{i:06d}" for i in range(count)]
    latencies: list[float] = []
    errors: list[str] = []

    with connect_as(domain_id, user, topology=topology, layout=layout) as gateway:
        index = EmrIndex(gateway.get_network(channel))

        def submit(record_id: str) -> float:
            started = time.perf_counter()
            index.put(demo_entry(domain_id, record_id))
            return time.perf_counter() - started

        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            futures = [pool.submit(submit, record_id) for record_id in record_ids]
            for future in as_completed(futures):
                try:
                    latencies.append(future.result())
                except Exception as exc:  # counted and reported, the run goes on
                    errors.append(f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
                if progress:
                    progress()
        elapsed = time.perf_counter() - started

        read_back = sum(1 for record_id in record_ids if readable(index, record_id))

    return LoadTestResult(
        channel=channel,
        count=count,
        concurrency=concurrency,
        committed=len(latencies),
        failed=len(errors),
        read_back=read_back,
        seconds=round(elapsed, 3),
        tps=round(len(latencies) / elapsed, 1) if elapsed else 0.0,
        latency_p50_ms=round(statistics.median(latencies) * 1000, 1) if latencies else 0.0,
        latency_p99_ms=round(percentile(latencies, 0.99) * 1000, 1) if latencies else 0.0,
        latency_max_ms=round(max(latencies) * 1000, 1) if latencies else 0.0,
        first_errors=sorted(set(errors))[:5],
    )


def readable(index: EmrIndex, record_id: str) -> bool:
    """Whether the record can be read back through `index`."""
    try:
        return index.get(record_id)["record_id"] == record_id
    except Exception:
        return False
