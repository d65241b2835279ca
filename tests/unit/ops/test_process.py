"""The process supervisor, with real short-lived child processes."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import time

import pytest

from medfabric_ops.process import ProcessError, Supervisor, child_env, http_ok, poll_until, tcp_open

HEALTH_SERVER = textwrap.dedent("""
    import http.server, json, sys

    class Health(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = json.dumps({"status": "OK"}).encode()
            self.send_response(200 if self.path == "/healthz" else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    print("serving", flush=True)
    http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Health).serve_forever()
""")
SLEEPER = [sys.executable, "-c", "import time; print('up', flush=True); time.sleep(60)"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def alive(pid: int) -> bool:
    """The process exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rpartition(")")[2].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.fixture
def supervisor(layout):
    supervisor = Supervisor(layout)
    yield supervisor
    supervisor.stop_all(timeout=2)


@pytest.fixture
def bystander():
    """A process that is not ours, running the same command line as ours."""
    process = subprocess.Popen(SLEEPER, stdout=subprocess.DEVNULL)
    yield process
    process.kill()
    process.wait()


def start_sleeper(supervisor, layout, name):
    return supervisor.start(name, SLEEPER, child_env({}), cwd=layout.root)


def test_a_started_server_gets_ready_and_is_reported(supervisor, layout):
    port = free_port()
    pid = supervisor.start("ops-server", [sys.executable, "-c", HEALTH_SERVER, str(port)], child_env({}),
                           cwd=layout.node_data("ops-server"))
    supervisor.wait_ready("ops-server", http_ok(f"http://127.0.0.1:{port}/healthz"), timeout=10)

    assert supervisor.is_running("ops-server")
    assert json.loads(layout.pid_file("ops-server").read_text())["pid"] == pid
    [status] = supervisor.status()
    assert (status.name, status.pid, status.alive) == ("ops-server", pid, True)
    assert status.rss_bytes > 1024 * 1024 and status.uptime_seconds >= 0
    assert supervisor.log_tail("ops-server")[-1] == "serving"

    assert supervisor.stop("ops-server") is True
    assert not alive(pid)
    assert not layout.pid_file("ops-server").exists()
    assert supervisor.status() == []


def test_http_ok_wants_a_200(supervisor, layout):
    port = free_port()
    assert not http_ok(f"http://127.0.0.1:{port}/healthz")()  # nothing listens
    supervisor.start("ops-server", [sys.executable, "-c", HEALTH_SERVER, str(port)], child_env({}), cwd=layout.root)
    assert poll_until(tcp_open("127.0.0.1", port), 10)
    assert http_ok(f"http://127.0.0.1:{port}/healthz")()
    assert not http_ok(f"http://127.0.0.1:{port}/missing")()


def test_starting_a_running_process_again_keeps_it(supervisor, layout):
    first = start_sleeper(supervisor, layout, "node")
    assert start_sleeper(supervisor, layout, "node") == first
    log = layout.log_file("node").read_text()
    assert log.count("started by medfabric") == 1


def test_a_process_that_exits_at_once_fails_fast_with_its_log_tail(supervisor, layout):
    crash = "import sys; [print('line', i) for i in range(30)]; print('fatal: address already in use'); sys.exit(3)"
    supervisor.start("orderer0", [sys.executable, "-c", crash], child_env({}), cwd=layout.root)
    started = time.monotonic()
    with pytest.raises(ProcessError) as error:
        supervisor.wait_ready("orderer0", lambda: False, timeout=20)
    assert time.monotonic() - started < 5
    summary, *tail = str(error.value).splitlines()
    assert summary.startswith("orderer0 exited before it was ready; last lines of ")
    assert tail[-1] == "  fatal: address already in use"
    assert len(tail) == 20
    assert not supervisor.is_running("orderer0")


def test_a_process_never_ready_times_out_naming_it(supervisor, layout):
    start_sleeper(supervisor, layout, "peer0")
    with pytest.raises(ProcessError, match=r"(?s)^peer0 was not ready after 0\.3s; last lines of .*\n  up$"):
        supervisor.wait_ready("peer0", lambda: False, timeout=0.3)


def test_stop_signals_only_our_process(supervisor, layout, bystander):
    ours = start_sleeper(supervisor, layout, "node")
    assert supervisor.stop("node") is True
    assert not alive(ours)
    assert bystander.poll() is None


def test_a_stale_pid_file_is_cleaned(supervisor, layout):
    gone = subprocess.Popen([*SLEEPER[:2], "pass"])
    gone.wait()
    layout.run.mkdir(parents=True)
    layout.pid_file("node").write_text(json.dumps({"pid": gone.pid, "argv": SLEEPER, "started_at": 1.0}))

    assert not supervisor.is_running("node")
    assert supervisor.status()[0].alive is False
    assert supervisor.stop("node") is False
    assert not layout.pid_file("node").exists()


def test_a_stale_pid_file_does_not_prevent_a_start(supervisor, layout):
    layout.run.mkdir(parents=True)
    layout.pid_file("node").write_text(json.dumps({"pid": 2**22 + 7, "argv": SLEEPER, "started_at": 1.0}))
    pid = start_sleeper(supervisor, layout, "node")
    assert pid != 2**22 + 7 and supervisor.is_running("node")


def test_a_recycled_pid_running_something_else_is_never_signalled(supervisor, layout, bystander):
    layout.run.mkdir(parents=True)
    record = {"pid": bystander.pid, "argv": ["/opt/fabric/bin/peer", "node", "start"], "started_at": 1.0}
    layout.pid_file("duty.hospital-a").write_text(json.dumps(record))

    assert not supervisor.is_running("duty.hospital-a")
    assert supervisor.stop("duty.hospital-a") is False
    assert supervisor.stop_all() == []
    assert bystander.poll() is None
    assert not layout.pid_file("duty.hospital-a").exists()


def test_a_script_is_recognised_under_its_interpreter(supervisor, layout, tmp_path):
    script = tmp_path / "medfabric-chaincode"
    script.write_text(f"#!{sys.executable}\nimport time\ntime.sleep(60)\n")
    script.chmod(0o755)
    supervisor.start("chaincode", [str(script)], child_env({}), cwd=layout.root)
    assert supervisor.is_running("chaincode")
    assert supervisor.stop("chaincode") is True


def test_a_command_found_on_path_is_recorded_by_its_full_path(supervisor, layout, tmp_path):
    env = child_env({"PATH": os.path.dirname(sys.executable)})
    supervisor.start("node", [os.path.basename(sys.executable), *SLEEPER[1:]], env, cwd=layout.root)
    assert json.loads(layout.pid_file("node").read_text())["argv"][0] == sys.executable
    assert supervisor.is_running("node")


def test_stop_kills_a_process_that_ignores_sigterm(supervisor, layout):
    stubborn = ("import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('armed', flush=True);"
                " time.sleep(60)")
    pid = supervisor.start("stubborn", [sys.executable, "-c", stubborn], child_env({}), cwd=layout.root)
    supervisor.wait_ready("stubborn", lambda: supervisor.log_tail("stubborn", 1) == ["armed"], timeout=10)
    assert supervisor.stop("stubborn", timeout=0.3) is True
    assert not alive(pid)


def test_stop_all_stops_the_last_started_first(supervisor, layout):
    for name in ("orderer", "peer", "chaincode"):
        start_sleeper(supervisor, layout, name)
    assert supervisor.names() == ["orderer", "peer", "chaincode"]
    assert supervisor.stop_all(timeout=2) == ["chaincode", "peer", "orderer"]
    assert supervisor.names() == []


def test_the_log_is_appended_across_restarts(supervisor, layout):
    for word in ("first", "second"):
        supervisor.start("node", [sys.executable, "-c", f"print('{word} run')"], child_env({}), cwd=layout.root)
        assert poll_until(lambda: not supervisor.is_running("node"), 10)
    log = layout.log_file("node").read_text()
    assert log.index("first run") < log.index("second run")
    assert supervisor.log_tail("node", 1) == ["second run"]
    assert supervisor.log_tail("absent") == []


def test_child_env_drops_the_users_fabric_settings(monkeypatch):
    monkeypatch.setenv("CORE_PEER_ADDRESS", "elsewhere:7051")
    monkeypatch.setenv("FABRIC_CFG_PATH", "/etc/hyperledger/fabric")
    env = child_env({"ORDERER_GENERAL_LISTENPORT": "7050"})
    assert "CORE_PEER_ADDRESS" not in env and "FABRIC_CFG_PATH" not in env
    assert env["ORDERER_GENERAL_LISTENPORT"] == "7050" and env["PATH"] == os.environ["PATH"]


def test_poll_until_gives_up_at_the_timeout():
    calls = []
    started = time.monotonic()
    assert poll_until(lambda: calls.append(1) and False, 0.3) is False
    assert 0.3 <= time.monotonic() - started < 0.6
    assert 3 <= len(calls) <= 8  # pauses grow: not a busy loop
