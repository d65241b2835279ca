"""Chaincode-as-a-service packages: reproducible to the byte, the id Fabric gives
them, and the external builder that turns them into a connection for the peer."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import re
import subprocess
import tarfile
from pathlib import Path

import pytest

import yaml

from medfabric.consortium.topology import DEFAULT_TOPOLOGY, TopologyError, load_topology, parse_topology
from medfabric_ops.render.chaincode_package import chaincode_package, package_bytes, package_id, package_label
from medfabric_ops.render.core_yaml import CCAAS_BUILDER_DIR

BUILDER = CCAAS_BUILDER_DIR / "bin"


@pytest.fixture(scope="module")
def topology():
    return load_topology()


def members(archive: bytes) -> dict[str, tuple[tarfile.TarInfo, bytes]]:
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        return {info.name: (info, tar.extractfile(info).read()) for info in tar.getmembers()}


def unpack_like_the_peer(package: bytes, into: Path) -> tuple[Path, Path]:
    """The peer hands a builder the package's metadata.json and its code.tar.gz unpacked."""
    source, metadata = into / "source", into / "metadata"
    source.mkdir(parents=True), metadata.mkdir()
    entries = members(package)
    (metadata / "metadata.json").write_bytes(entries["metadata.json"][1])
    for name, (_info, data) in members(entries["code.tar.gz"][1]).items():
        (source / name).write_bytes(data)
    return source, metadata


def run(step: str, *args: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(BUILDER / step), *map(str, args)], capture_output=True, text=True, timeout=30)


def test_the_package_is_the_same_bytes_every_time_and_is_written_once(topology, layout):
    domain = topology.domains[0]
    path, _id = chaincode_package(topology, layout, domain)
    assert path == layout.chaincode_package(domain)
    assert path.read_bytes() == package_bytes(topology, domain) == package_bytes(topology, domain)
    first = path.stat()
    assert chaincode_package(topology, layout, domain) == (path, _id)
    assert (path.stat().st_ino, path.stat().st_mtime_ns) == (first.st_ino, first.st_mtime_ns)
    assert len({package_bytes(topology, d) for d in topology.domains}) == len(topology.domains)


def test_the_package_id_is_the_label_and_the_sha256_of_the_package(topology, layout):
    for domain in topology.domains:
        path, id_ = chaincode_package(topology, layout, domain)
        assert id_ == f"medfabric_0.1:{hashlib.sha256(path.read_bytes()).hexdigest()}"
        assert package_id(topology, domain) == id_


def test_archives_carry_no_times_owners_or_names(topology):
    package = package_bytes(topology, topology.domains[1])
    for archive in (package, members(package)["code.tar.gz"][1]):
        assert archive[:4] == b"\x1f\x8b\x08\x00"  # gzip, deflate, no flags: no file name or comment
        assert archive[4:8] == b"\x00\x00\x00\x00"  # no modification time
        with tarfile.open(fileobj=io.BytesIO(gzip.decompress(archive))) as tar:
            entries = tar.getmembers()
        assert [e.name for e in entries] == sorted(e.name for e in entries)
        for entry in entries:
            assert entry.isreg() and entry.mode == 0o644
            assert (entry.mtime, entry.uid, entry.gid, entry.uname, entry.gname) == (0, 0, 0, "", "")
            assert not entry.pax_headers
    assert list(members(package)) == ["code.tar.gz", "metadata.json"]


def test_metadata_says_ccaas_and_connection_json_names_the_domains_server(topology):
    for domain in topology.domains:
        entries = members(package_bytes(topology, domain))
        assert json.loads(entries["metadata.json"][1]) == {"type": "ccaas", "label": "medfabric_0.1"}
        code = members(entries["code.tar.gz"][1])
        assert list(code) == ["connection.json"]
        assert json.loads(code["connection.json"][1]) == {
            "address": f"127.0.0.1:{domain.chaincode_port}", "dial_timeout": "10s", "tls_required": False}


def test_the_baseline_has_its_own_package_label_and_server_per_domain(topology, layout):
    baseline = topology.baseline
    ids = set()
    for index, domain in enumerate(topology.domains):
        path, id_ = chaincode_package(topology, layout, domain, baseline)
        assert path == layout.chaincode_package(domain, "medfabric-node") != layout.chaincode_package(domain)
        assert path.name == "medfabric-node.tar.gz" and path.parent == layout.chaincode_package(domain).parent
        assert id_ == f"medfabric-node_0.1:{hashlib.sha256(path.read_bytes()).hexdigest()}"
        assert id_ == package_id(topology, domain, baseline) != package_id(topology, domain)
        entries = members(path.read_bytes())
        assert json.loads(entries["metadata.json"][1]) == {"type": "ccaas", "label": "medfabric-node_0.1"}
        connection = json.loads(members(entries["code.tar.gz"][1])["connection.json"][1])
        assert connection["address"] == f"127.0.0.1:{7850 + index}"
        ids.add(id_)
    assert len(ids) == len(topology.domains)
    assert package_label(topology, baseline) == "medfabric-node_0.1" and package_label(topology) == "medfabric_0.1"


def test_the_builder_takes_a_package_from_detect_to_release(topology, tmp_path):
    package = package_bytes(topology, topology.domains[2])
    source, metadata = unpack_like_the_peer(package, tmp_path)
    output, release = tmp_path / "output", tmp_path / "release"
    output.mkdir(), release.mkdir()
    assert run("detect", source, metadata).returncode == 0
    built = run("build", source, metadata, output)
    assert built.returncode == 0, built.stderr
    assert (output / "connection.json").read_bytes() == (source / "connection.json").read_bytes()
    assert (output / "metadata.json").read_bytes() == (metadata / "metadata.json").read_bytes()
    released = run("release", output, release)
    assert released.returncode == 0, released.stderr
    connection = json.loads((release / "chaincode" / "server" / "connection.json").read_text())
    assert connection["address"] == f"127.0.0.1:{topology.domains[2].chaincode_port}"


def test_detect_declines_packages_that_are_not_ccaas(tmp_path):
    metadata = tmp_path / "metadata"
    metadata.mkdir()
    assert run("detect", tmp_path, metadata).returncode == 1  # no metadata.json at all
    for kind in ("golang", "node", "ccaasx", ""):
        (metadata / "metadata.json").write_text(json.dumps({"type": kind, "label": "x_1"}))
        assert run("detect", tmp_path, metadata).returncode == 1, kind
    (metadata / "metadata.json").write_text('{"label":"x_1","type":"ccaas"}')
    assert run("detect", tmp_path, metadata).returncode == 0


def test_build_and_release_fail_without_connection_json(tmp_path):
    empty, metadata, output = tmp_path / "source", tmp_path / "metadata", tmp_path / "output"
    for folder in (empty, metadata, output):
        folder.mkdir()
    (metadata / "metadata.json").write_text('{"type": "ccaas", "label": "x_1"}')
    built = run("build", empty, metadata, output)
    assert built.returncode != 0 and "connection.json" in built.stderr
    assert list(output.iterdir()) == []
    released = run("release", output, tmp_path / "release")
    assert released.returncode != 0 and "connection.json" in released.stderr
    assert run("build", empty, metadata).returncode != 0  # a missing argument is an error, not a guess


def test_the_builder_steps_are_posix_shell_scripts():
    for step in ("detect", "build", "release"):
        script = BUILDER / step
        assert script.read_text().startswith("#!/bin/sh\n")
        assert script.stat().st_mode & 0o111 == 0o111
        assert subprocess.run(["sh", "-n", str(script)]).returncode == 0


# Fabric's rules (core/chaincode/persistence LabelRegexp; _lifecycle ChaincodeName/VersionRegExp). Go's
# [[:alnum:]] is ASCII; fullmatch stands for Go's ^...$ on a single-line string.
FABRIC_LABEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]*")
FABRIC_NAME = re.compile(r"[a-zA-Z0-9]+([-_][a-zA-Z0-9]+)*")
FABRIC_VERSION = re.compile(r"[A-Za-z0-9_.+-]+")


@pytest.mark.parametrize("name, version", [("medfabric", "0.1"), ("med-fabric_2", "1.0.0-rc.1+build.7"), ("cc", "v2")])
def test_every_chaincode_the_topology_accepts_gets_a_label_and_definition_fabric_accepts(name, version):
    raw = yaml.safe_load(DEFAULT_TOPOLOGY.read_text())
    raw["chaincode"].update(name=name, version=version)
    topology = parse_topology(raw)
    assert FABRIC_LABEL.fullmatch(package_label(topology))
    assert FABRIC_NAME.fullmatch(topology.chaincode.name) and FABRIC_VERSION.fullmatch(topology.chaincode.version)


@pytest.mark.parametrize("field, value", [
    ("version", "1.0 beta"),  # a space: `peer lifecycle chaincode install` refuses the label
    ("version", "v1:2"),      # a colon would also split the package id label:hash in two
    ("version", "1/2"),
    ("name", "medfabric-"),   # _lifecycle refuses the name at approveformyorg
    ("name", "med__fabric"),
])
def test_a_chaincode_name_or_version_fabric_refuses_is_a_topology_error(field, value):
    raw = yaml.safe_load(DEFAULT_TOPOLOGY.read_text())
    raw["chaincode"][field] = value
    with pytest.raises(TopologyError, match=rf"^chaincode\.{field}: '{re.escape(value)}' does not match"):
        parse_topology(raw)
