"""The Fabric binaries and Fabric's own sampleconfig, found or fetched in this order:

1. ``$FABRIC_BIN`` (the ``bin/`` folder of the official release; its sampleconfig is the ``config/`` beside it);
2. the cached copy: where ``setup`` last found them (``.fabric/<version>/found.json``), else a build or a
   download cached in ``.fabric/<version>/{bin,config}``;
3. a build of the Go module pinned in ``ops/fabric`` (``go build`` of the release's commit through the Go
   module proxy), its sampleconfig taken from the module's source;
4. the official release tarball (``$MEDFABRIC_FABRIC_RELEASE_URL`` overrides where it is fetched from);

else one error naming these ways.

    >>> binaries = locate_binaries("3.1.5")
    >>> binaries.run("peer", "version", env=child_env({}))
    >>> binaries.config_dir / "core.yaml"      # Fabric's sample core.yaml, which rendering starts from

Channels and the chaincode lifecycle need only `FabricTools.run`, which the
binaries provide here and the fabric-tools image in docker mode
(docker_mode.DockerFabricTools).
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import subprocess
import tarfile
import tempfile
import urllib.error
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Mapping, Protocol, Sequence

from medfabric.consortium.layout import PROJECT_ROOT

from .process import child_env

FABRIC_COMMANDS = ("peer", "orderer", "configtxgen", "osnadmin")
SAMPLECONFIG_FILES = ("core.yaml", "orderer.yaml", "configtx.yaml")
PINNED_VERSION = "3.1.5"  # the release whose commit ops/fabric/go.mod requires
GO_MODULE_DIR = Path(__file__).resolve().parents[1] / "fabric"
CACHE_ROOT = PROJECT_ROOT / ".fabric"  # $MEDFABRIC_FABRIC_CACHE instead, where set
CACHE_VARIABLE = "MEDFABRIC_FABRIC_CACHE"
RELEASE_URL = ("https://github.com/hyperledger/fabric/releases/download/v{version}/"
               "hyperledger-fabric-{platform}-{version}.tar.gz")
RELEASE_URL_VARIABLE = "MEDFABRIC_FABRIC_RELEASE_URL"
FOUND_FILE = "found.json"

_FABRIC_MODULE = "github.com/hyperledger/fabric"
_VERSION_VARIABLE = f"{_FABRIC_MODULE}/common/metadata.Version"
_VERSION_LINE = re.compile(r"^\s*Version:\s*v?(\S+)", re.MULTILINE)
# "github.com/x/y@v1.2.3: reading https://proxy.golang.org/...: 403 Forbidden"
_PROXY_REFUSAL = re.compile(r"(?P<module>[A-Za-z0-9._~/-]+)@\S+: reading \S+: (?P<status>\d{3})\b")
_DOWNLOAD_TIMEOUT = 60.0


class BinariesError(RuntimeError):
    """The Fabric binaries cannot be found or built; the message is one line, `cause` the reason alone (without
    the alternatives the message may name)."""

    def __init__(self, message: str, cause: str | None = None):
        super().__init__(message)
        self.cause = cause or message


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
    config_dir: Path  # Fabric's sampleconfig of the same release: core.yaml, orderer.yaml, configtx.yaml
    version: str
    source: str  # "FABRIC_BIN", "recorded" (where setup found them), "cache", "build" or "release"

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


def locate_binaries(version: str, environ: Mapping[str, str] = os.environ, cache_root: Path | None = None,
                    module_dir: Path = GO_MODULE_DIR) -> FabricBinaries:
    """$FABRIC_BIN, else the cached copy, else a build from the pinned Go module, else the release tarball."""
    cache_root = cache_root or fabric_cache(environ)
    found = find_binaries(version, environ, cache_root)
    if found:
        return found
    try:
        return build_binaries(version, environ, cache_root, module_dir)
    except BinariesError as build_failure:
        try:
            return download_release(version, environ, cache_root)
        except BinariesError as download_failure:
            raise BinariesError(
                f"no Fabric {version} binaries: FABRIC_BIN is not set and nothing is cached in "
                f"{cache_root / version}; the build failed ({build_failure.cause}); "
                f"the release download failed ({download_failure.cause}); "
                f"set FABRIC_BIN to the bin/ folder of the official Fabric {version} release, "
                f"or let `go` reach the Go module proxy, or the release download reach GitHub, or use MODE=docker"
            ) from None


def find_binaries(version: str, environ: Mapping[str, str] = os.environ,
                  cache_root: Path | None = None) -> FabricBinaries | None:
    """The binaries from $FABRIC_BIN (which must hold this version), else where setup last found them, else
    the cache; None if none of these."""
    cache_root = cache_root or fabric_cache(environ)
    if environ.get("FABRIC_BIN"):
        return _release_binaries(Path(environ["FABRIC_BIN"]).expanduser(), version, environ)
    recorded = _recorded(version, cache_root)
    if recorded:
        return recorded
    cached = cache_dir(version, cache_root)
    if _holds_all(cached) and holds_sampleconfig(cached.parent / "config"):
        return FabricBinaries(cached, cached.parent / "config", version, "cache")
    return None


def record_binaries(binaries: FabricBinaries, cache_root: Path | None = None) -> None:
    """Remember binaries found through $FABRIC_BIN, so later commands find them without it."""
    cache_root = cache_root or fabric_cache()
    if binaries.source != "FABRIC_BIN":
        return
    record = cache_root / binaries.version / FOUND_FILE
    record.parent.mkdir(parents=True, exist_ok=True)
    staging = record.with_name(f".{FOUND_FILE}.partial")
    staging.write_text(json.dumps({"bin_dir": str(binaries.bin_dir), "config_dir": str(binaries.config_dir),
                                   "source": "FABRIC_BIN"}, indent=2) + "\n")
    os.replace(staging, record)


def fabric_cache(environ: Mapping[str, str] = os.environ) -> Path:
    """Where built, downloaded or found binaries are kept or recorded: $MEDFABRIC_FABRIC_CACHE, else .fabric/."""
    return Path(environ[CACHE_VARIABLE]) if environ.get(CACHE_VARIABLE) else CACHE_ROOT


def cache_dir(version: str, cache_root: Path | None = None) -> Path:
    return (cache_root or fabric_cache()) / version / "bin"


def build_binaries(version: str, environ: Mapping[str, str] = os.environ, cache_root: Path | None = None,
                   module_dir: Path = GO_MODULE_DIR) -> FabricBinaries:
    """Build the binaries from the Go module in `module_dir` into the cache (about 1.5 min on 2 cores), with
    the sampleconfig of the module's source beside them."""
    cache_root = cache_root or fabric_cache(environ)
    if version != PINNED_VERSION:
        raise BinariesError(
            f"{module_dir} pins Fabric {PINNED_VERSION} but the topology asks for {version}; "
            f"{_alternatives(version)}"
        )
    go = shutil.which("go", path=environ.get("PATH", os.defpath))
    if go is None:
        raise BinariesError(f"cannot build Fabric {version}: Go is not installed; {_alternatives(version)}",
                            "Go is not installed")
    env = {**environ, "CGO_ENABLED": "0"}
    with _staging(version, cache_root) as staging:
        if not (module_dir / "go.sum").exists():
            # go.sum is written once by a machine that can reach the proxy, then committed.
            _go(go, ["mod", "tidy"], module_dir, env, version)
        packages = [f"{_FABRIC_MODULE}/cmd/{command}" for command in FABRIC_COMMANDS]
        built = staging / "bin"
        built.mkdir()
        ldflags = f"-X {_VERSION_VARIABLE}={version}"
        _go(go, ["build", "-trimpath", "-ldflags", ldflags, "-o", f"{built}/", *packages], module_dir, env, version)
        source = Path(_go(go, ["list", "-m", "-f", "{{.Dir}}", _FABRIC_MODULE], module_dir, env, version).strip())
        _copy_sampleconfig(source / "sampleconfig", staging / "config", version)
        return _install(staging, version, cache_root, "build")


def download_release(version: str, environ: Mapping[str, str] = os.environ,
                     cache_root: Path | None = None) -> FabricBinaries:
    """Fetch the official release tarball (bin/ and config/) into the cache and check `peer version`."""
    cache_root = cache_root or fabric_cache(environ)
    url = environ.get(RELEASE_URL_VARIABLE) or RELEASE_URL
    url = url.format(version=version, platform=release_platform())
    with _staging(version, cache_root) as staging:
        tarball = staging / "release.tar.gz"
        try:
            with urllib.request.urlopen(url, timeout=_DOWNLOAD_TIMEOUT) as answer, tarball.open("wb") as file:
                shutil.copyfileobj(answer, file)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise BinariesError(f"cannot download {url}: {getattr(exc, 'reason', exc)}") from None
        try:
            with tarfile.open(tarball) as archive:
                archive.extractall(staging, filter="data")
        except (tarfile.TarError, OSError) as exc:
            raise BinariesError(f"{url} is not a readable release tarball: {exc}") from None
        tarball.unlink()
        missing = [command for command in FABRIC_COMMANDS if not os.access(staging / "bin" / command, os.X_OK)]
        if missing:
            raise BinariesError(f"the release tarball {url} has no bin/{', bin/'.join(missing)}")
        _check_sampleconfig(staging / "config", f"the release tarball {url}")
        found = reported_version(staging / "bin" / "peer")
        if found != version:
            raise BinariesError(f"the release tarball {url} holds Fabric {found}, not {version}")
        return _install(staging, version, cache_root, "release")


def release_platform() -> str:
    """The release tarball's platform name: linux-amd64, linux-arm64, darwin-arm64, ..."""
    machine = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
    return f"{platform.system().lower()}-{machine}"


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
    config_dir = bin_dir.parent / "config"
    _check_sampleconfig(config_dir, f"FABRIC_BIN={bin_dir} has no ../config like the release's:")
    found = reported_version(bin_dir / "peer")
    if found != version:
        raise BinariesError(
            f"FABRIC_BIN={bin_dir} holds Fabric {found} but the topology asks for {version}; "
            f"point FABRIC_BIN at the Fabric {version} release or change fabric_version"
        )
    return FabricBinaries(bin_dir, config_dir, version, "FABRIC_BIN")


def _recorded(version: str, cache_root: Path) -> FabricBinaries | None:
    """Where setup last found the binaries, if they are still there."""
    try:
        record = json.loads((cache_root / version / FOUND_FILE).read_text())
        bin_dir, config_dir = Path(record["bin_dir"]), Path(record["config_dir"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not (_holds_all(bin_dir) and holds_sampleconfig(config_dir)):
        return None
    return FabricBinaries(bin_dir, config_dir, version, "recorded")


def _holds_all(bin_dir: Path) -> bool:
    return all(os.access(bin_dir / command, os.X_OK) for command in FABRIC_COMMANDS)


def holds_sampleconfig(config_dir: Path) -> bool:
    return all((config_dir / name).is_file() for name in SAMPLECONFIG_FILES)


def _check_sampleconfig(config_dir: Path, where: str) -> None:
    missing = [name for name in SAMPLECONFIG_FILES if not (config_dir / name).is_file()]
    if missing:
        raise BinariesError(f"{where} {config_dir} lacks {', '.join(missing)} (Fabric's sampleconfig, which "
                            f"every rendered core.yaml and orderer.yaml starts from)")


def _copy_sampleconfig(source: Path, target: Path, version: str) -> None:
    _check_sampleconfig(source, f"the source of Fabric {version} at")
    target.mkdir()
    for name in SAMPLECONFIG_FILES:
        shutil.copyfile(source / name, target / name)


@contextmanager
def _staging(version: str, cache_root: Path) -> Iterator[Path]:
    """A scratch folder in the version's cache folder, removed afterwards whatever happens."""
    parent = cache_root / version
    parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=parent, prefix=".staging-") as staging:
        yield Path(staging)


def _install(staging: Path, version: str, cache_root: Path, source: str) -> FabricBinaries:
    """Move staging's config/ then bin/ into the cache: bin/ is there only once everything is."""
    target = cache_dir(version, cache_root)
    config = target.parent / "config"
    if _holds_all(target) and holds_sampleconfig(config):  # a concurrent build or download finished first
        return FabricBinaries(target, config, version, source)
    shutil.rmtree(config, ignore_errors=True)
    (staging / "config").rename(config)
    shutil.rmtree(target, ignore_errors=True)
    (staging / "bin").rename(target)
    return FabricBinaries(target, config, version, source)


def _go(go: str, args: list[str], module_dir: Path, env: Mapping[str, str], version: str) -> str:
    done = subprocess.run([go, *args], cwd=module_dir, env=dict(env), capture_output=True, text=True)
    if done.returncode != 0:
        reason = _explain_go_failure(f"go {args[0]}", done.stderr)
        raise BinariesError(f"cannot build Fabric {version}: {reason}; {_alternatives(version)}", reason)
    return done.stdout


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
