"""docker-compose.yaml passes dclint, a Compose linter, with no errors.

The one rule turned off (tests/node/dclint.json) is `no-build-and-image`:
the three chaincode services name the image they build on purpose, so it is
built once and shared.
"""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from medfabric.consortium.layout import PROJECT_ROOT

NODE_TOOLS = PROJECT_ROOT / "tests" / "node"
DCLINT = NODE_TOOLS / "node_modules" / ".bin" / "dclint"


def _lint(path) -> list[dict]:
    if shutil.which("node") is None or not DCLINT.exists():
        pytest.skip(f"dclint not installed ({DCLINT}): run `npm ci` in tests/node")
    result = subprocess.run(
        [str(DCLINT), str(path), "-q", "-f", "json", "-c", str(NODE_TOOLS / "dclint.json")],
        capture_output=True, text=True, timeout=60,
    )
    report = json.loads(result.stdout)
    return [m for entry in report for m in entry["messages"] if m["type"] == "error"]


def test_committed_compose_file_has_no_lint_errors():
    assert _lint(PROJECT_ROOT / "docker-compose.yaml") == []


def test_the_linter_catches_a_broken_file(tmp_path):
    broken = tmp_path / "docker-compose.yaml"
    broken.write_text("services:\n  peer:\n    image: hyperledger/fabric-peer:3.1.5\n    ports: 7100\n")
    assert _lint(broken)
