"""A consortium of its own for a measurement: written to its folder, set up, brought up, cleaned away after.

    >>> with IsolatedConsortium(document, folder, profile="low-latency") as consortium:
    ...     consortium.ops("up")   # again: restarts whatever died
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from medfabric.consortium.layout import NetworkLayout
from medfabric.consortium.topology import load_topology


class IsolatedConsortium:
    """The topology `document` in `folder` (its build material in folder/build), through medfabric_ops."""

    def __init__(self, document: dict[str, Any], folder: Path, profile: str):
        folder.mkdir(parents=True, exist_ok=True)
        self.topology_file = folder / "topology.yaml"
        self.topology_file.write_text(yaml.safe_dump(document, sort_keys=False))
        self.profile = profile
        self.env = dict(os.environ, MEDFABRIC_BUILD_DIR=str(folder / "build"),
                        MEDFABRIC_TOPOLOGY=str(self.topology_file))
        self.topology = load_topology(self.topology_file, profile)
        self.layout = NetworkLayout(folder / "build")

    def ops(self, command: str, *args: str, timeout: float = 900) -> None:
        """`python -m medfabric_ops COMMAND --topology ...`; RuntimeError with its last line when it fails."""
        options = ["--topology", str(self.topology_file)]
        if command in ("setup", "up"):
            options += ["--profile", self.profile]
        done = subprocess.run([sys.executable, "-m", "medfabric_ops", command, *options, *args], env=self.env,
                              capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0:
            tail = (done.stderr.strip() or done.stdout.strip() or "no output").splitlines()[-1]
            raise RuntimeError(f"medfabric_ops {command} failed: {tail}")

    def __enter__(self) -> IsolatedConsortium:
        try:
            self.ops("setup")
            self.ops("up")
        except BaseException:
            self.ops("clean", timeout=300)
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.ops("clean", timeout=300)
