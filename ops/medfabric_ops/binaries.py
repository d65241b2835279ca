"""The Fabric binaries: from $FABRIC_BIN, from the build cache, or built from source.

    >>> binaries = locate_binaries("3.1.5")
    >>> binaries.run("peer", "version", env=child_env({}))

Channels and the chaincode lifecycle need only `FabricTools.run`, which the
binaries provide here and the fabric-tools image in docker mode
(docker_mode.DockerFabricTools).

Fabric is a Go module: ops/fabric pins the release by commit, and the build
stamps the version into the binaries the way Fabric's own Makefile does, so
that `peer version` reports it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Protocol, Sequence

from medfabric.layout import PROJECT_ROOT

from .process import child_env

FABRIC_COMMANDS = ("peer", "orderer", "configtxgen", "osnadmin")
PINNED_VERSION = "3.1.5"  # the release whose commit ops/fabric/go.mod requires
GO_MODULE_DIR = Path(__file__).resolve().parents[1] / "fabric"
CACHE_ROOT = PROJECT_ROOT / ".fabric"

_VERSION_VARIABLE = "github.com/hyperledger/fabric/common/metadata.Version"
_VERSION_LINE = re.compile(r"^\s*Version:\s*v?(\S+)", re.MULTILINE)
# "github.com/x/y@v1.2.3: reading https://proxy.golang.org/...: 403 Forbidden"
_PROXY_REFUSAL = re.compile(r"(?P<module>[A-Za-z0-9._~/-]+)@\S+: reading \S+: (?P<status>\d{3})\b")


class BinariesError(RuntimeError):
    """The Fabric binaries cannot be found or built; the message is one line."""


class FabricCommandError(RuntimeError):
    """A Fabric command failed: a one-line summary, then the last lines of its stderr."""

    def __init__(self, command: str, failure: str, stderr: str, target: str = ""):
        self.stderr = stderr
        lines = [line.rstrip() for line in stderr.splitlines() if line.strip()]
        where = f" on {target}" if target else ""
        reason = lines[-1].strip() if lines else "no error output"
        summary = f"`{command}`{where} failed ({failure}): {reason}"
        super().__init__("\n".join([summary, *(f"  {line}" for line in lines[-20:])]))


class FabricTools(Protocol):
    """Runs Fabric's command-line tools (configtxgen, the peer CLI) and returns their stdout."""

    def run(self, command: str, *args: str | Path, env: Mapping[str, str],
            timeout: float = 120.0, target: str = "") -> str: ...


@dataclass(frozen=True)
class FabricBinaries:
    bin_dir: Path
    version: str
    source: str  # "FABRIC_BIN", "cache" or "build"

    def path(self, command: str) -> Path:
        return self.bin_dir / command

    def run(self, command: str, *args: str | Path, env: Mapping[str, str],
            timeout: float = 120.0, target: str = "") -> str:
        """Run a Fabric command and return its stdout; raise FabricCommandError on failure.

        `target` names the node the command acts on, for the error message.
        """
        argv = [str(self.path(command)), *(str(arg) for arg in args)]
        return run_tool(argv, command_name(command, argv[1:]), env, timeout, target)


def run_tool(argv: Sequence[str], name: str, env: Mapping[str, str], timeout: float, target: str) -> str:
    """Run `argv` and return its stdout; FabricCommandError, calling the command `name`, if it fails or times out."""
    try:
        done = subprocess.run(list(argv), env=dict(env), capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        stderr = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else exc.stderr or ""
        raise FabricCommandError(name, f"timed out after {timeout:g}s", stderr, target) from None
    if done.returncode != 0:
        raise FabricCommandError(name, f"exit {done.returncode}", done.stderr, target)
    return done.stdout


def locate_binaries(version: str, environ: Mapping[str, str] = os.environ, cache_root: Path = CACHE_ROOT,
                    module_dir: Path = GO_MODULE_DIR) -> FabricBinaries:
    """$FABRIC_BIN, else the cache, else a build from the pinned Go module."""
    return find_binaries(version, environ, cache_root) or build_binaries(version, environ, cache_root, module_dir)


def find_binaries(version: str, environ: Mapping[str, str] = os.environ,
                  cache_root: Path = CACHE_ROOT) -> FabricBinaries | None:
    """The binaries from $FABRIC_BIN (which must hold this version) or the cache; None if neither."""
    if environ.get("FABRIC_BIN"):
        return _release_binaries(Path(environ["FABRIC_BIN"]).expanduser(), version, environ)
    cached = cache_dir(version, cache_root)
    return FabricBinaries(cached, version, "cache") if _holds_all(cached) else None


def cache_dir(version: str, cache_root: Path = CACHE_ROOT) -> Path:
    return cache_root / version / "bin"


def build_binaries(version: str, environ: Mapping[str, str] = os.environ, cache_root: Path = CACHE_ROOT,
                   module_dir: Path = GO_MODULE_DIR) -> FabricBinaries:
    """Build the binaries from the Go module in `module_dir` into the cache (about 1.5 min on 2 cores)."""
    if version != PINNED_VERSION:
        raise BinariesError(
            f"{module_dir} pins Fabric {PINNED_VERSION} but the topology asks for {version}; "
            f"{_alternatives(version)}"
        )
    go = shutil.which("go", path=environ.get("PATH", os.defpath))
    if go is None:
        raise BinariesError(f"cannot build Fabric {version}: Go is not installed; {_alternatives(version)}")
    env = {**environ, "CGO_ENABLED": "0"}
    target = cache_dir(version, cache_root)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix="bin.building-") as staging:
        if not (module_dir / "go.sum").exists():
            # go.sum is written once by a machine that can reach the proxy, then committed.
            _go(go, ["mod", "tidy"], module_dir, env, version)
        packages = [f"github.com/hyperledger/fabric/cmd/{command}" for command in FABRIC_COMMANDS]
        built = Path(staging) / "bin"
        built.mkdir()
        ldflags = f"-X {_VERSION_VARIABLE}={version}"
        _go(go, ["build", "-trimpath", "-ldflags", ldflags, "-o", f"{built}/", *packages], module_dir, env, version)
        try:
            built.rename(target)  # atomic: the cache never holds half a build
        except OSError:
            if not _holds_all(target):  # else a concurrent build finished first
                raise
    return FabricBinaries(target, version, "build")


def reported_version(peer: Path) -> str:
    """The version `peer version` prints."""
    try:
        done = subprocess.run([str(peer), "version"], env=child_env({}), capture_output=True,
                              text=True, timeout=30)
    except OSError as exc:
        raise BinariesError(f"cannot run {peer}: {exc.strerror}") from None
    match = _VERSION_LINE.search(done.stdout)
    if done.returncode != 0 or not match:
        raise BinariesError(f"`{peer} version` did not report a version (exit {done.returncode})")
    return match.group(1)


def _release_binaries(bin_dir: Path, version: str, environ: Mapping[str, str]) -> FabricBinaries:
    missing = [command for command in FABRIC_COMMANDS if not os.access(bin_dir / command, os.X_OK)]
    if missing:
        raise BinariesError(
            f"FABRIC_BIN={bin_dir} has no executable {', '.join(missing)}; "
            f"point it at the bin/ folder of the official Fabric {version} release"
        )
    found = reported_version(bin_dir / "peer")
    if found != version:
        raise BinariesError(
            f"FABRIC_BIN={bin_dir} holds Fabric {found} but the topology asks for {version}; "
            f"point FABRIC_BIN at the Fabric {version} release or change fabric_version"
        )
    return FabricBinaries(bin_dir, version, "FABRIC_BIN")


def _holds_all(bin_dir: Path) -> bool:
    return all(os.access(bin_dir / command, os.X_OK) for command in FABRIC_COMMANDS)


def _go(go: str, args: list[str], module_dir: Path, env: Mapping[str, str], version: str) -> None:
    done = subprocess.run([go, *args], cwd=module_dir, env=dict(env), capture_output=True, text=True)
    if done.returncode != 0:
        reason = _explain_go_failure(f"go {args[0]}", done.stderr)
        raise BinariesError(f"cannot build Fabric {version}: {reason}; {_alternatives(version)}")


def _explain_go_failure(step: str, stderr: str) -> str:
    refusal = _PROXY_REFUSAL.search(stderr)
    if refusal:
        return f"the Go module proxy refused {refusal['module']} ({refusal['status']})"
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    return f"{step} failed: {lines[-1] if lines else 'no error output'}"


def _alternatives(version: str) -> str:
    return f"instead set FABRIC_BIN to the bin/ folder of the official Fabric {version} release, or use MODE=docker"


def command_name(command: str, args: Sequence[str]) -> str:
    """'peer lifecycle chaincode install': the command and its sub-commands, without flags or paths."""
    words = [command]
    for arg in args:
        if arg.startswith("-") or "/" in arg:
            break
        words.append(arg)
    return " ".join(words)
