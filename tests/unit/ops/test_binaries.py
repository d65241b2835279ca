"""Finding or building the Fabric binaries, with fake releases and a fake `go`."""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import pytest

from medfabric_ops.binaries import (
    FABRIC_COMMANDS,
    BinariesError,
    FabricBinaries,
    FabricCommandError,
    build_binaries,
    FOUND_FILE,
    RELEASE_URL_VARIABLE,
    SAMPLECONFIG_FILES,
    cache_dir,
    download_release,
    find_binaries,
    locate_binaries,
    record_binaries,
    release_platform,
)
from medfabric_ops.process import child_env

PROXY_REFUSAL = """go: downloading github.com/hyperledger/fabric v1.4.0-rc1.0.20260618074816-86c1172bec37
go: medfabric.local/fabricbin imports
\tgithub.com/hyperledger/fabric/cmd/peer: github.com/hyperledger/fabric@v1.4.0-rc1.0.20260618074816-86c1172bec37: \
reading https://proxy.golang.org/github.com/hyperledger/fabric/@v/v1.4.0-rc1.0.20260618074816-86c1172bec37.zip: \
403 Forbidden
\tserver response: This module version is not available.
"""


def write_script(path: Path, body: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def fake_release(bin_dir: Path, version: str = "3.1.5", commands=FABRIC_COMMANDS,
                 sampleconfig=SAMPLECONFIG_FILES) -> Path:
    """A bin/ folder like the official release's, whose `peer version` reports `version`, with the
    release's config/ (the sampleconfig files named) beside it."""
    for command in commands:
        body = "#!/bin/sh\nexit 0\n"
        if command == "peer":
            body = f'#!/bin/sh\nprintf "peer:\\n Version: {version}\\n Commit SHA: abc\\n"\n'
        write_script(bin_dir / command, body)
    fake_sampleconfig(bin_dir.parent / "config", sampleconfig)
    return bin_dir


def fake_sampleconfig(config_dir: Path, names=SAMPLECONFIG_FILES) -> Path:
    config_dir.mkdir(parents=True, exist_ok=True)
    for name in names:
        (config_dir / name).write_text(f"# {name}\n")
    return config_dir


def fake_go(bin_dir: Path, record: Path, stderr: str = "", exit_code: int = 0) -> Path:
    """A `go` that records each call and, for `go build -o DIR/`, writes one file per package."""
    return write_script(bin_dir / "go", f"""#!{sys.executable}
import json, os, sys
from pathlib import Path
with open({str(record)!r}, "a") as log:
    log.write(json.dumps({{"args": sys.argv[1:], "cgo": os.environ.get("CGO_ENABLED"), "cwd": os.getcwd()}}) + "\\n")
sys.stderr.write({stderr!r})
if sys.argv[1] == "list" and {exit_code} == 0:
    print({str(record.parent / "fabric-source")!r})
if sys.argv[1] == "build" and {exit_code} == 0:
    out = Path(sys.argv[sys.argv.index("-o") + 1])
    for package in sys.argv[sys.argv.index("-o") + 2:]:
        target = out / package.rsplit("/", 1)[1]
        target.write_text("#!/bin/sh\\n")
        target.chmod(0o755)
sys.exit({exit_code})
""")


def fake_module_source(record: Path) -> Path:
    """The Fabric module's source as `go list -m` of fake_go names it: its sampleconfig."""
    return fake_sampleconfig(record.parent / "fabric-source" / "sampleconfig")


def go_calls(record: Path) -> list[dict]:
    return [json.loads(line) for line in record.read_text().splitlines()] if record.exists() else []


@pytest.fixture
def module_dir(tmp_path):
    """A copy of the shape of ops/fabric, without go.sum."""
    directory = tmp_path / "fabric-module"
    directory.mkdir()
    (directory / "go.mod").write_text("module medfabric.local/fabricbin\n")
    return directory


def test_fabric_bin_is_used_when_it_holds_the_topology_version(tmp_path):
    release = fake_release(tmp_path / "release" / "bin")
    binaries = find_binaries("3.1.5", {"FABRIC_BIN": str(release), "PATH": os.defpath}, tmp_path / "cache")
    assert binaries == FabricBinaries(release, release.parent / "config", "3.1.5", "FABRIC_BIN")
    assert binaries.path("orderer") == release / "orderer"


def test_fabric_bin_wins_over_the_cache(tmp_path):
    release = fake_release(tmp_path / "release" / "bin")
    fake_release(cache_dir("3.1.5", tmp_path / "cache"))
    binaries = find_binaries("3.1.5", {"FABRIC_BIN": str(release)}, tmp_path / "cache")
    assert binaries.source == "FABRIC_BIN"


def test_fabric_bin_missing_a_binary_is_an_error_naming_it(tmp_path):
    release = fake_release(tmp_path / "bin", commands=("peer", "orderer", "osnadmin"))
    fake_release(cache_dir("3.1.5", tmp_path / "cache"))  # never a silent fallback
    with pytest.raises(BinariesError, match=r"has no executable configtxgen") as error:
        find_binaries("3.1.5", {"FABRIC_BIN": str(release)}, tmp_path / "cache")
    assert len(str(error.value).splitlines()) == 1


def test_fabric_bin_of_another_version_names_both_versions(tmp_path):
    release = fake_release(tmp_path / "bin", version="2.5.12")
    with pytest.raises(BinariesError, match=r"holds Fabric 2\.5\.12 but the topology asks for 3\.1\.5"):
        find_binaries("3.1.5", {"FABRIC_BIN": str(release)}, tmp_path / "cache")


def test_the_cache_is_used_without_fabric_bin(tmp_path):
    cached = fake_release(cache_dir("3.1.5", tmp_path / "cache"))
    record = tmp_path / "go-calls"
    fake_go(tmp_path / "tools", record)
    binaries = locate_binaries("3.1.5", {"PATH": str(tmp_path / "tools")}, tmp_path / "cache", tmp_path)
    assert binaries == FabricBinaries(cached, cached.parent / "config", "3.1.5", "cache")
    assert go_calls(record) == []


def test_nothing_is_found_without_fabric_bin_or_cache(tmp_path):
    assert find_binaries("3.1.5", {}, tmp_path / "cache") is None


def test_a_build_refused_by_the_module_proxy_and_no_release_is_one_line_naming_every_way(tmp_path, module_dir):
    record = tmp_path / "go-calls"
    fake_go(tmp_path / "tools", record, stderr=PROXY_REFUSAL, exit_code=1)
    environ = {"PATH": str(tmp_path / "tools"), RELEASE_URL_VARIABLE: f"file://{tmp_path}/none-{{version}}.tar.gz"}
    with pytest.raises(BinariesError) as error:
        locate_binaries("3.1.5", environ, tmp_path / "cache", module_dir)
    message = str(error.value)
    assert len(message.splitlines()) == 1
    assert "the build failed (the Go module proxy refused github.com/hyperledger/fabric (403))" in message
    assert f"the release download failed (cannot download file://{tmp_path}/none-3.1.5.tar.gz" in message
    assert "set FABRIC_BIN" in message and "Go module proxy" in message and "MODE=docker" in message
    assert not cache_dir("3.1.5", tmp_path / "cache").exists()
    assert list((tmp_path / "cache" / "3.1.5").iterdir()) == []  # no half build left behind


def test_other_go_failures_quote_go_last_line(tmp_path, module_dir):
    (module_dir / "go.sum").write_text("")
    fake_go(tmp_path / "tools", tmp_path / "go-calls", stderr="go: go.mod requires go >= 1.26 (running go 1.22)\n",
            exit_code=1)
    with pytest.raises(BinariesError, match=r"go build failed: go: go.mod requires go >= 1\.26 \(running go 1\.22\)"):
        build_binaries("3.1.5", {"PATH": str(tmp_path / "tools")}, tmp_path / "cache", module_dir)


def test_a_build_without_go_sum_tidies_then_builds_into_the_cache(tmp_path, module_dir):
    record = tmp_path / "go-calls"
    fake_go(tmp_path / "tools", record)
    fake_module_source(record)
    binaries = build_binaries("3.1.5", {"PATH": str(tmp_path / "tools")}, tmp_path / "cache", module_dir)
    cached = cache_dir("3.1.5", tmp_path / "cache")
    assert binaries == FabricBinaries(cached, cached.parent / "config", "3.1.5", "build")
    assert sorted(path.name for path in binaries.bin_dir.iterdir()) == sorted(FABRIC_COMMANDS)
    assert sorted(path.name for path in binaries.config_dir.iterdir()) == sorted(SAMPLECONFIG_FILES)
    tidy, build, source = go_calls(record)
    assert source["args"] == ["list", "-m", "-f", "{{.Dir}}", "github.com/hyperledger/fabric"]
    assert tidy["args"] == ["mod", "tidy"]
    assert build["args"][:4] == ["build", "-trimpath", "-ldflags",
                                 "-X github.com/hyperledger/fabric/common/metadata.Version=3.1.5"]
    assert build["args"][-4:] == [f"github.com/hyperledger/fabric/cmd/{c}" for c in FABRIC_COMMANDS]
    assert build["args"][build["args"].index("-o") + 1].endswith("/")
    assert {call["cgo"] for call in (tidy, build)} == {"0"}
    assert {call["cwd"] for call in (tidy, build)} == {str(module_dir)}
    assert sorted(p.name for p in (tmp_path / "cache" / "3.1.5").iterdir()) == ["bin", "config"]


def test_a_build_with_go_sum_does_not_tidy(tmp_path, module_dir):
    (module_dir / "go.sum").write_text("")
    record = tmp_path / "go-calls"
    fake_go(tmp_path / "tools", record)
    fake_module_source(record)
    build_binaries("3.1.5", {"PATH": str(tmp_path / "tools")}, tmp_path / "cache", module_dir)
    assert [call["args"][0] for call in go_calls(record)] == ["build", "list"]


def test_no_go_toolchain_says_so_with_the_alternatives(tmp_path, module_dir):
    with pytest.raises(BinariesError, match=r"Go is not installed; instead set FABRIC_BIN .* or use MODE=docker"):
        build_binaries("3.1.5", {"PATH": str(tmp_path / "empty")}, tmp_path / "cache", module_dir)


def test_a_version_the_go_module_does_not_pin_is_never_built(tmp_path, module_dir):
    record = tmp_path / "go-calls"
    fake_go(tmp_path / "tools", record)
    with pytest.raises(BinariesError, match=r"pins Fabric 3\.1\.5 but the topology asks for 3\.2\.0"):
        build_binaries("3.2.0", {"PATH": str(tmp_path / "tools")}, tmp_path / "cache", module_dir)
    assert go_calls(record) == []


def test_a_failing_command_is_summed_up_in_one_line_then_its_stderr(tmp_path):
    release = fake_release(tmp_path / "bin")
    write_script(release / "peer",
                 '#!/bin/sh\necho "starting" >&2\necho "Error: proposal failed (err: boom)" >&2\nexit 1\n')
    binaries = FabricBinaries(release, release.parent / "config", "3.1.5", "FABRIC_BIN")
    with pytest.raises(FabricCommandError) as error:
        binaries.run("peer", "channel", "join", "-b", tmp_path / "public.block", env=child_env({}), target="duty.a")
    summary, *tail = str(error.value).splitlines()
    assert summary == "`peer channel join` on duty.a failed (exit 1): Error: proposal failed (err: boom)"
    assert tail == ["  starting", "  Error: proposal failed (err: boom)"]


def test_a_command_returns_its_stdout(tmp_path):
    binaries = FabricBinaries(fake_release(tmp_path / "bin"), tmp_path / "config", "3.1.5", "FABRIC_BIN")
    assert "Version: 3.1.5" in binaries.run("peer", "version", env=child_env({}))


def test_fabric_bin_without_the_release_config_folder_names_what_is_missing(tmp_path):
    release = fake_release(tmp_path / "release" / "bin", sampleconfig=("configtx.yaml",))
    with pytest.raises(BinariesError, match=r"has no \.\./config like the release's: .* lacks core\.yaml, orderer\.yaml"):
        find_binaries("3.1.5", {"FABRIC_BIN": str(release)}, tmp_path / "cache")


def test_binaries_found_through_fabric_bin_are_found_later_without_it(tmp_path):
    release = fake_release(tmp_path / "release" / "bin")
    found = find_binaries("3.1.5", {"FABRIC_BIN": str(release)}, tmp_path / "cache")
    record_binaries(found, tmp_path / "cache")
    assert json.loads((tmp_path / "cache" / "3.1.5" / FOUND_FILE).read_text())["bin_dir"] == str(release)
    later = find_binaries("3.1.5", {}, tmp_path / "cache")
    assert later == FabricBinaries(release, release.parent / "config", "3.1.5", "recorded")
    record_binaries(later, tmp_path / "cache")  # a recorded find is not recorded again
    (release / "orderer").unlink()  # moved away since: the record no longer counts
    assert find_binaries("3.1.5", {}, tmp_path / "cache") is None


def release_tarball(path: Path, version: str = "3.1.5", commands=FABRIC_COMMANDS) -> Path:
    """A tarball laid out like hyperledger-fabric-<platform>-<version>.tar.gz: bin/ and config/."""
    import tarfile

    tree = fake_release(path.parent / "tree" / "bin", version, commands)
    with tarfile.open(path, "w:gz") as archive:
        archive.add(tree, "bin")
        archive.add(tree.parent / "config", "config")
    return path


def test_without_fabric_bin_cache_or_go_the_release_tarball_is_downloaded_into_the_cache(tmp_path, module_dir):
    release_tarball(tmp_path / f"hyperledger-fabric-{release_platform()}-3.1.5.tar.gz")
    environ = {"PATH": str(tmp_path / "no-go"),
               RELEASE_URL_VARIABLE: f"file://{tmp_path}/hyperledger-fabric-{{platform}}-{{version}}.tar.gz"}
    binaries = locate_binaries("3.1.5", environ, tmp_path / "cache", module_dir)
    cached = cache_dir("3.1.5", tmp_path / "cache")
    assert binaries == FabricBinaries(cached, cached.parent / "config", "3.1.5", "release")
    assert "Version: 3.1.5" in binaries.run("peer", "version", env=child_env({}))
    assert sorted(p.name for p in (tmp_path / "cache" / "3.1.5").iterdir()) == ["bin", "config"]
    assert find_binaries("3.1.5", {}, tmp_path / "cache").source == "cache"


@pytest.mark.parametrize("version, commands, problem", [
    ("2.5.12", FABRIC_COMMANDS, r"holds Fabric 2\.5\.12, not 3\.1\.5"),
    ("3.1.5", ("peer", "orderer"), r"has no bin/configtxgen, bin/osnadmin"),
])
def test_a_wrong_release_tarball_leaves_nothing_in_the_cache(tmp_path, version, commands, problem):
    tarball = release_tarball(tmp_path / "release.tar.gz", version, commands)
    with pytest.raises(BinariesError, match=problem):
        download_release("3.1.5", {RELEASE_URL_VARIABLE: f"file://{tarball}"}, tmp_path / "cache")
    assert list((tmp_path / "cache" / "3.1.5").iterdir()) == []
