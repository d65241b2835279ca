"""Fabric's own sampleconfig, which every rendered core.yaml and orderer.yaml starts from.

A node reads a key its file lacks as the zero value of its type, not as
Fabric's default (an orderer without ChannelParticipation.MaxRequestBodySize
refuses every channel join as "request body too large"). So a rendered file is
Fabric's file of the same release with our settings written over it: every key
Fabric has is there, and a setting of ours that names a key Fabric's file
lacks is an error.

    >>> defaults = FabricDefaults.load(binaries.config_dir)
    >>> overlay(defaults.core, {"peer.id": "duty.hospital-a"})["peer"]["id"]
    'duty.hospital-a'

Each shared setting that differs from Fabric's value says why, as a `Changed`.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import yaml


class SampleConfigError(RuntimeError):
    """Fabric's sampleconfig is missing, unreadable, or lacks a key we set; one line."""


@dataclass(frozen=True)
class Changed:
    """A setting of ours that differs from Fabric's sampleconfig, and why."""

    value: Any
    why: str


@dataclass(frozen=True)
class FabricDefaults:
    core: Mapping[str, Any]     # sampleconfig/core.yaml
    orderer: Mapping[str, Any]  # sampleconfig/orderer.yaml
    source: Path

    @classmethod
    def load(cls, config_dir: Path) -> "FabricDefaults":
        return cls(_read(config_dir / "core.yaml"), _read(config_dir / "orderer.yaml"), config_dir)


def values(settings: Mapping[str, Any]) -> dict[str, Any]:
    """The settings with each `Changed` replaced by its value."""
    return {key: value.value if isinstance(value, Changed) else value for key, value in settings.items()}


def overlay(document: Mapping[str, Any], settings: Mapping[str, Any],
            added: Mapping[str, str] | None = None) -> dict[str, Any]:
    """A copy of Fabric's `document` with each dotted key of `settings` set. Every key must be one of the
    document's, or one of `added` (keys of Fabric's config that its sample file leaves out, each with why)."""
    added = added or {}
    result = copy.deepcopy(dict(document))
    for key, value in values(settings).items():
        *parents, leaf = key.split(".")
        node: Any = result
        for depth, part in enumerate(parents):
            node = node.get(part) if isinstance(node, dict) else None
            if not isinstance(node, dict):
                raise SampleConfigError(f"{key}: Fabric's sampleconfig has no section {'.'.join(parents[:depth + 1])}")
        if leaf not in node and key not in added:
            raise SampleConfigError(f"{key}: not a key of Fabric's sampleconfig (a misspelt or removed setting?)")
        node[leaf] = value
    return result


def leaves(document: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Every leaf of a config document by dotted key; an empty mapping counts as a leaf."""
    found: dict[str, Any] = {}
    for key, value in document.items():
        if isinstance(value, dict) and value:
            found.update(leaves(value, f"{prefix}{key}."))
        else:
            found[f"{prefix}{key}"] = value
    return found


def _read(path: Path) -> dict[str, Any]:
    try:
        document = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise SampleConfigError(f"cannot read Fabric's sampleconfig {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise SampleConfigError(f"Fabric's sampleconfig {path} is not YAML: {exc}") from None
    if not isinstance(document, dict):
        raise SampleConfigError(f"Fabric's sampleconfig {path} is not a mapping of settings")
    return document
