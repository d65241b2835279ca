"""Each domain's chaincode packages: chaincode as a service (CCaaS), one per
chaincode of the topology (the application's; the Node baseline's).

A package (metadata.json {"type": "ccaas", "label": ...} and code.tar.gz
holding connection.json) only says where the domain's server of that
chaincode listens. Its bytes depend on the topology alone and are the same on every
run, so the package id the peers compute, label:sha256(package), is known
before anything is installed and the chaincode server can start first.

    >>> path, id_ = chaincode_package(topology, layout, domain)   # layout.chaincode_package(domain)
    >>> id_ == package_id(topology, domain)   # the same id, without writing anything
    True
    >>> chaincode_package(topology, layout, domain, topology.baseline)[0].name
    'medfabric-node.tar.gz'

Without a chaincode argument, these name the application's chaincode.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from pathlib import Path
from typing import Any, Mapping

from medfabric.consortium.layout import NetworkLayout
from medfabric.consortium.topology import Chaincode, Domain, Topology

from .files import write_bytes

DIAL_TIMEOUT = "10s"
COMPRESSION_LEVEL = 9


def chaincode_package(topology: Topology, layout: NetworkLayout, domain: Domain,
                      chaincode: Chaincode | None = None) -> tuple[Path, str]:
    """Write the domain's package of the chaincode (unless it is already there); its path and package id."""
    chaincode = chaincode or topology.chaincode
    package = package_bytes(topology, domain, chaincode)
    path = package_path(layout, domain, chaincode)
    write_bytes(path, package)
    return path, _package_id(chaincode, package)


def package_path(layout: NetworkLayout, domain: Domain, chaincode: Chaincode) -> Path:
    return layout.chaincode_package(domain, None if chaincode.role == "application" else chaincode.name)


def package_id(topology: Topology, domain: Domain, chaincode: Chaincode | None = None) -> str:
    """The id the peers will give the domain's package; nothing is written."""
    chaincode = chaincode or topology.chaincode
    return _package_id(chaincode, package_bytes(topology, domain, chaincode))


def package_label(topology: Topology, chaincode: Chaincode | None = None) -> str:
    chaincode = chaincode or topology.chaincode
    return f"{chaincode.name}_{chaincode.version}"


def package_bytes(topology: Topology, domain: Domain, chaincode: Chaincode | None = None) -> bytes:
    chaincode = chaincode or topology.chaincode
    connection = {"address": f"{topology.host}:{topology.chaincode_port(chaincode, domain)}",
                  "dial_timeout": DIAL_TIMEOUT, "tls_required": False}
    metadata = {"type": "ccaas", "label": package_label(topology, chaincode)}
    code = _tar_gz({"connection.json": _json(connection)})
    return _tar_gz({"code.tar.gz": code, "metadata.json": _json(metadata)})


def _package_id(chaincode: Chaincode, package: bytes) -> str:
    return f"{chaincode.name}_{chaincode.version}:{hashlib.sha256(package).hexdigest()}"


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
