"""Writing generated files: a header saying so, YAML without aliases, atomic
writes that leave an unchanged file alone, and Fabric settings named by their
dotted keys as environment variables.

    >>> write_yaml(path, document)
    >>> write_yaml(path, document)   # the same bytes: the file is left alone
    >>> environment("CORE", {"peer.tls.enabled": True})
    {'CORE_PEER_TLS_ENABLED': 'true'}
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Mapping

import yaml

HEADER = "# Generated from network/topology.yaml by `medfabric network render` — do not edit.\n"


class _Dumper(yaml.SafeDumper):
    """Writes a repeated object out again instead of as an anchor and alias."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def write_yaml(path: Path, document: Any) -> None:
    """The document as YAML, under the generated-file header."""
    text = yaml.dump(document, Dumper=_Dumper, sort_keys=False, width=120, allow_unicode=True)
    write_bytes(path, (HEADER + text).encode())


def write_json(path: Path, document: Any) -> None:
    write_bytes(path, (json.dumps(document, indent=2, ensure_ascii=False) + "\n").encode())


def write_bytes(path: Path, data: bytes) -> None:
    """Replace the file atomically, unless it already holds `data`: then it is left alone."""
    if path.is_file() and path.read_bytes() == data:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, partial = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(data)
        os.chmod(partial, 0o644)
        os.replace(partial, path)
    except BaseException:
        os.unlink(partial)
        raise


def environment(prefix: str, settings: Mapping[str, Any]) -> dict[str, str]:
    """Fabric's environment overrides of config keys: {"peer.tls.enabled": True} -> CORE_PEER_TLS_ENABLED=true.

    Lists become "[a,b]", the form both the orderer's list decoding and the peer's
    YAML decoding (chaincode.externalBuilders) accept; mappings inside them become JSON.
    """
    return {f"{prefix}_{key.replace('.', '_').upper()}": _env_value(value) for key, value in settings.items()}


def _env_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(json.dumps(item) if isinstance(item, dict) else _env_value(item)
                              for item in value) + "]"
    return str(value)
