"""Each domain's chaincode package: chaincode as a service (CCaaS).

The package (metadata.json {"type": "ccaas", "label": ...} and code.tar.gz
holding connection.json) only says where the domain's chaincode server
listens. Its bytes depend on the topology alone and are the same on every
run, so the package id the peers compute, label:sha256(package), is known
before anything is installed and the chaincode server can start first.

    >>> path, id_ = chaincode_package(topology, layout, domain)   # layout.chaincode_package(domain)
    >>> id_ == package_id(topology, domain)   # the same id, without writing anything
    True
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from pathlib import Path
from typing import Any, Mapping

from medfabric.layout import NetworkLayout
from medfabric.topology import Domain, Topology

from .files import write_bytes

DIAL_TIMEOUT = "10s"
COMPRESSION_LEVEL = 9


def chaincode_package(topology: Topology, layout: NetworkLayout, domain: Domain) -> tuple[Path, str]:
    """Write the domain's package (unless it is already there); its path and package id."""
    package = package_bytes(topology, domain)
    path = layout.chaincode_package(domain)
    write_bytes(path, package)
    return path, _package_id(topology, package)


def package_id(topology: Topology, domain: Domain) -> str:
    """The id the peers will give the domain's package; nothing is written."""
    return _package_id(topology, package_bytes(topology, domain))


def package_label(topology: Topology) -> str:
    return f"{topology.chaincode.name}_{topology.chaincode.version}"


def package_bytes(topology: Topology, domain: Domain) -> bytes:
    connection = {"address": f"{topology.host}:{domain.chaincode_port}", "dial_timeout": DIAL_TIMEOUT,
                  "tls_required": False}
    metadata = {"type": "ccaas", "label": package_label(topology)}
    code = _tar_gz({"connection.json": _json(connection)})
    return _tar_gz({"code.tar.gz": code, "metadata.json": _json(metadata)})


def _package_id(topology: Topology, package: bytes) -> str:
    return f"{package_label(topology)}:{hashlib.sha256(package).hexdigest()}"


def _json(document: Any) -> bytes:
    return (json.dumps(document, indent=2) + "\n").encode()


def _tar_gz(files: Mapping[str, bytes]) -> bytes:
    """A gzipped tar of `files` that is the same bytes on every run: sorted entries, no
    times, owners or names in the headers, a fixed compression level."""
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name in sorted(files):
            entry = tarfile.TarInfo(name)  # mtime 0, uid and gid 0, no user or group name
            entry.size, entry.mode = len(files[name]), 0o644
            tar.addfile(entry, io.BytesIO(files[name]))
    return gzip.compress(archive.getvalue(), compresslevel=COMPRESSION_LEVEL, mtime=0)
