"""A click CliRunner that keeps stderr apart from stdout on every click the project runs with.

click 8.2 separates them by default and dropped the mix_stderr flag; click 8.1 (which Flower 1.24 pins) needs
mix_stderr=False for result.stderr to exist. `output` is stdout alone in both."""

from __future__ import annotations

import inspect

from click.testing import CliRunner

SEPARATES_BY_DEFAULT = "mix_stderr" not in inspect.signature(CliRunner.__init__).parameters


def cli_runner(**options) -> CliRunner:
    return CliRunner(**options) if SEPARATES_BY_DEFAULT else CliRunner(mix_stderr=False, **options)
