"""Stands in for `caliper launch manager` in the bench tests: checks its arguments like Caliper would, forks
a worker process that uses some CPU and writes the workloads' records where MEDFABRIC_BENCH_RECORDS says,
then exits with the status the test asked for.

The test says what to do in $FAKE_CALIPER (JSON): {"exit": 0, "burn_s": 0.3, "rounds": [{"label": ...,
"workers": 1, "ok": 10, "failed": 0, "error": "..."}]} and finds the arguments it was called with in
$FAKE_CALIPER_ARGS (a file).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path


def burn(seconds: float) -> None:
    """Use `seconds` of CPU time."""
    started = time.process_time()
    while time.process_time() - started < seconds:
        sum(i * i for i in range(1000))


def worker(plan: dict, records: Path) -> None:
    for index, entry in enumerate(plan["rounds"]):
        for worker_index in range(entry.get("workers", 1)):
            lines = []
            now = time.time() * 1000
            for n in range(entry.get("ok", 0)):
                lines.append({"start_ms": now + 10 * n, "end_ms": now + 10 * n + 20 + n, "ok": True})
            for n in range(entry.get("failed", 0)):
                line = {"start_ms": now + 5 * n, "end_ms": now + 5 * n + 7, "ok": False}
                if entry.get("error"):
                    line["error"] = entry["error"]
                lines.append(line)
            if lines or entry.get("empty_file"):
                path = records / f"round-{index}-{entry['label']}-worker-{worker_index}.jsonl"
                path.write_text("".join(json.dumps(line) + "\n" for line in lines))
        time.sleep(0.05)
    burn(plan.get("burn_s", 0.0))


def main() -> int:
    args = sys.argv[1:]
    plan = json.loads(os.environ["FAKE_CALIPER"])
    if args[:1] == ["--worker"]:
        worker(plan, Path(args[1]))
        return 0
    Path(os.environ["FAKE_CALIPER_ARGS"]).write_text(json.dumps({"argv": args, "cwd": os.getcwd()}))
    assert args[:2] == ["launch", "manager"], args
    assert "--caliper-flow-only-test" in args
    network = Path(args[args.index("--caliper-networkconfig") + 1])
    assert network.is_file(), network
    report = Path(args[args.index("--caliper-report-path") + 1])
    assert report.parent.is_dir(), report  # Caliper needs the folder to exist
    records = Path(os.environ["MEDFABRIC_BENCH_RECORDS"])
    assert records.is_dir()
    # the worker is a child process, as Caliper forks its workers
    pid = os.fork()
    if pid == 0:
        os.execv(sys.executable, [sys.executable, __file__, "--worker", str(records)])
    os.waitpid(pid, 0)
    report.write_text("<html>fake report</html>")
    return plan.get("exit", 0)


if __name__ == "__main__":
    sys.exit(main())
