"""A small supervisor for the consortium's native processes.

Each process runs detached (in its own session, so it outlives the command
that started it), appends its output to layout.log_file(name) and is
remembered by a pid file at layout.pid_file(name). A pid file is trusted only
while /proc/<pid> still runs the command line we started, so a recycled pid
is never signalled.

    >>> supervisor = Supervisor(NetworkLayout.default())
    >>> supervisor.start("web", [sys.executable, "-m", "http.server", "8000"], child_env({}), cwd=Path("."))
    >>> supervisor.wait_ready("web", http_ok("http://127.0.0.1:8000/"), timeout=10)
    >>> supervisor.stop("web")
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import shlex
import shutil
import signal
import socket
import ssl
import subprocess
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterator, Mapping, Sequence
from urllib.parse import urlsplit

from medfabric.consortium.layout import NetworkLayout

Probe = Callable[[], bool]

# Settings a node reads from its environment: the user's must not leak into ours.
_FABRIC_SETTINGS = ("CORE_", "ORDERER_", "FABRIC_CFG_PATH")

# Processes this interpreter started: polled so that a dead child is reaped
# instead of lingering as a zombie that still has a /proc entry.
_children: dict[int, subprocess.Popen] = {}


class ProcessError(RuntimeError):
    """A supervised process died or did not get ready: names it, then the end of its log."""

    def __init__(self, name: str, problem: str, log_file: Path, tail: list[str]):
        self.name = name
        if tail:
            lines = [f"{name} {problem}; last lines of {log_file}:", *(f"  {line}" for line in tail)]
        else:
            lines = [f"{name} {problem} (nothing in {log_file})"]
        super().__init__("\n".join(lines))


@dataclass(frozen=True)
class ProcessStatus:
    name: str
    pid: int | None  # None for a container (docker mode)
    alive: bool
    rss_bytes: int | None
    uptime_seconds: float | None


@dataclass(frozen=True)
class _PidRecord:
    pid: int
    argv: tuple[str, ...]
    started_at: float  # seconds since the epoch


def child_env(overrides: Mapping[str, str]) -> dict[str, str]:
    """Our environment without Fabric settings, plus `overrides`."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(_FABRIC_SETTINGS)}
    env.update(overrides)
    return env


def poll_until(condition: Callable[[], bool], timeout: float) -> bool:
    """Call `condition` with a growing pause between calls until it is true (True) or `timeout` passes (False)."""
    deadline = time.monotonic() + timeout
    pause = 0.05
    while True:
        if condition():
            return True
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        time.sleep(min(pause, remaining))
        pause = min(pause * 1.5, 1.0)


def http_ok(url: str, timeout: float = 1.0) -> Probe:
    """Probe: GET `url` (plain HTTP) answers 200, as a Fabric /healthz does once every check passes."""
    parts = urlsplit(url)

    def probe() -> bool:
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
        try:
            connection.request("GET", parts.path or "/")
            return connection.getresponse().status == 200
        except (OSError, http.client.HTTPException):
            return False
        finally:
            connection.close()

    return probe


def tcp_open(host: str, port: int, timeout: float = 1.0) -> Probe:
    """Probe: something accepts TCP connections on host:port."""

    def probe() -> bool:
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            return True
        except OSError:
            return False

    return probe


def tls_handshake(host: str, port: int, timeout: float = 1.0) -> Probe:
    """Probe: a TLS server on host:port completes a handshake (offering ALPN h2, as gRPC clients do).

    Stronger than tcp_open for a Fabric gRPC server: the peer binds its port early but serves
    (answers handshakes) only once every channel is loaded. Nothing is verified: this is
    liveness, not trust.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(["h2"])

    def probe() -> bool:
        try:
            with socket.create_connection((host, port), timeout=timeout) as connection:
                with context.wrap_socket(connection, server_hostname=host):
                    return True
        except (OSError, ssl.SSLError):
            return False

    return probe


def all_of(*probes: Probe) -> Probe:
    """Probe: every one of `probes` passes (checked in order, stopping at the first that fails)."""
    return lambda: all(probe() for probe in probes)


class Supervisor:
    """Starts, watches and stops the processes whose pid files live in layout.run."""

    def __init__(self, layout: NetworkLayout):
        self._layout = layout

    def start(self, name: str, argv: Sequence[str], env: Mapping[str, str], cwd: Path) -> int:
        """Start `argv` detached unless `name` is already running; return its pid."""
        record = self._record(name)
        if record and _is_alive(record):
            return record.pid
        executable = shutil.which(argv[0], path=env.get("PATH", os.defpath))
        if executable is None:
            raise FileNotFoundError(f"{name}: command not found: {argv[0]}")
        # The absolute path is what /proc/<pid>/cmdline will show, for scripts too.
        argv = (os.path.abspath(executable), *argv[1:])
        log_file = self._layout.log_file(name)
        log_file.parent.mkdir(parents=True, exist_ok=True)
        cwd.mkdir(parents=True, exist_ok=True)
        with open(log_file, "ab") as log:
            stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
            log.write(f"--- {stamp} started by medfabric: {shlex.join(argv)}\n".encode())
            log.flush()
            child = subprocess.Popen(
                argv, cwd=cwd, env=dict(env), stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True,
            )
        _children[child.pid] = child
        # For a moment after exec the kernel shows an empty command line; wait for
        # the real one, or the identity check would take our process for a stranger.
        poll_until(lambda: child.poll() is not None or bool(_command_line(child.pid)), 1.0)
        self._write_record(name, _PidRecord(child.pid, argv, time.time()))
        return child.pid

    def is_running(self, name: str) -> bool:
        record = self._record(name)
        return record is not None and _is_alive(record)

    def stop(self, name: str, timeout: float = 10.0) -> bool:
        """SIGTERM, then SIGKILL after `timeout`; True if a process was stopped.

        Only the process our pid file names is signalled, and only while it
        still runs what we started. The pid file is removed either way.
        """
        record = self._record(name)
        stopped = False
        if record and _is_alive(record):
            _signal(record.pid, signal.SIGTERM)
            if not poll_until(lambda: _has_exited(record.pid), timeout):
                _signal(record.pid, signal.SIGKILL)
                if not poll_until(lambda: _has_exited(record.pid), 5.0):
                    raise self._failure(name, f"(pid {record.pid}) survived SIGKILL")
            stopped = True
        self._layout.pid_file(name).unlink(missing_ok=True)
        return stopped

    def stop_all(self, timeout: float = 10.0) -> list[str]:
        """Stop every process we have a pid file for, the last started first; the names stopped."""
        latest_first = sorted(self._records(), key=lambda item: item[1].started_at, reverse=True)
        return [name for name, _record in latest_first if self.stop(name, timeout)]

    def wait_ready(self, name: str, probe: Probe, timeout: float) -> None:
        """Return once `probe` passes; raise ProcessError if the process dies or `timeout` passes first."""
        record = self._record(name)
        if record is None:
            raise self._failure(name, "was never started")

        def ready() -> bool:
            if probe():
                return True
            if not _is_alive(record):
                raise self._failure(name, "exited before it was ready")
            return False

        if not poll_until(ready, timeout):
            raise self._failure(name, f"was not ready after {timeout:g}s")

    def log_tail(self, name: str, lines: int = 20) -> list[str]:
        """The last `lines` lines of the process's log (fewer if the log is shorter)."""
        try:
            with open(self._layout.log_file(name), "rb") as log:
                size = log.seek(0, os.SEEK_END)
                start = max(0, size - lines * 4096)
                log.seek(start)
                text = log.read().decode(errors="replace").splitlines()
        except FileNotFoundError:
            return []
        if start > 0:
            text = text[1:]  # the first line read is probably cut
        return text[-lines:] if lines > 0 else []

    def names(self) -> list[str]:
        """Every process we have a pid file for, in start order."""
        return [name for name, _record in sorted(self._records(), key=lambda item: item[1].started_at)]

    def status(self) -> list[ProcessStatus]:
        """Pid, liveness, resident memory and uptime of every process, in start order."""
        statuses = []
        for name, record in sorted(self._records(), key=lambda item: item[1].started_at):
            alive = _is_alive(record)
            statuses.append(ProcessStatus(
                name=name,
                pid=record.pid,
                alive=alive,
                rss_bytes=_rss_bytes(record.pid) if alive else None,
                uptime_seconds=round(time.time() - record.started_at, 1) if alive else None,
            ))
        return statuses

    def _failure(self, name: str, problem: str) -> ProcessError:
        return ProcessError(name, problem, self._layout.log_file(name), self.log_tail(name))

    def _record(self, name: str) -> _PidRecord | None:
        try:
            doc = json.loads(self._layout.pid_file(name).read_text())
            return _PidRecord(int(doc["pid"]), tuple(doc["argv"]), float(doc["started_at"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None  # no pid file, or one we did not write: nothing of ours runs

    def _records(self) -> Iterator[tuple[str, _PidRecord]]:
        for pid_file in self._layout.run.glob("*.pid"):
            name = pid_file.name.removesuffix(".pid")
            record = self._record(name)
            if record is not None:
                yield name, record

    def _write_record(self, name: str, record: _PidRecord) -> None:
        pid_file = self._layout.pid_file(name)
        pid_file.parent.mkdir(parents=True, exist_ok=True)
        partial = pid_file.with_name(pid_file.name + ".partial")
        partial.write_text(json.dumps({"pid": record.pid, "argv": record.argv, "started_at": record.started_at}))
        os.replace(partial, pid_file)


def _is_alive(record: _PidRecord) -> bool:
    """The pid runs the command line we started (a zombie's command line is empty)."""
    _reap(record.pid)
    args = _command_line(record.pid)
    # A script shows its interpreter first: what we ran is the tail.
    return len(args) >= len(record.argv) and args[len(args) - len(record.argv):] == record.argv


def _has_exited(pid: int) -> bool:
    """The process is gone or a zombie: it holds no port or file any more."""
    _reap(pid)
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return True
    return state in ("Z", "X")


def _reap(pid: int) -> None:
    """Collect the exit status of a child of ours that has ended, so no zombie is left."""
    child = _children.get(pid)
    if child is not None and child.poll() is not None:
        del _children[pid]


def _command_line(pid: int) -> tuple[str, ...]:
    """The process's argv, empty if there is no such process."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ()
    return tuple(os.fsdecode(arg) for arg in raw.split(b"\0")[:-1])


def _signal(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # it ended meanwhile
        os.kill(pid, signum)


def _rss_bytes(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None
