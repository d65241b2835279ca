"""Checkpoints: where to resume reading events after a restart."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from .events import ChaincodeEvent


class Checkpoint(Protocol):
    """A position in the event stream."""

    @property
    def block_number(self) -> int | None:
        """Block in which the next event is expected; None before any checkpoint."""

    @property
    def transaction_id(self) -> str | None:
        """Last transaction processed in that block; None if none was."""


class InMemoryCheckpointer:
    """Keeps the position in memory, for resuming within one process.

        >>> checkpointer = InMemoryCheckpointer()
        >>> checkpointer.checkpoint_transaction(7, "tx-a")
        >>> checkpointer.block_number, checkpointer.transaction_id
        (7, 'tx-a')
        >>> checkpointer.checkpoint_block(7)
        >>> checkpointer.block_number, checkpointer.transaction_id
        (8, None)
    """

    def __init__(self) -> None:
        self.block_number: int | None = None
        self.transaction_id: str | None = None

    def checkpoint_block(self, block_number: int) -> None:
        """All of block `block_number` is processed."""
        self._move_to(block_number + 1, None)

    def checkpoint_transaction(self, block_number: int, transaction_id: str) -> None:
        """Everything up to `transaction_id` in block `block_number` is processed."""
        self._move_to(block_number, transaction_id)

    def checkpoint_chaincode_event(self, event: ChaincodeEvent) -> None:
        self.checkpoint_transaction(event.block_number, event.transaction_id)

    def _move_to(self, block_number: int, transaction_id: str | None) -> None:
        self.block_number = block_number
        self.transaction_id = transaction_id


class FileCheckpointer(InMemoryCheckpointer):
    """Keeps the position in a JSON file, replaced atomically on every checkpoint.

        >>> checkpointer = FileCheckpointer(checkpoint_path)
        >>> checkpointer.checkpoint_transaction(7, "tx-a")
        >>> FileCheckpointer(checkpoint_path).transaction_id
        'tx-a'
    """

    def __init__(self, path: str | Path):
        super().__init__()
        self.path = Path(path)
        if self.path.exists():
            state = json.loads(self.path.read_text())
            self.block_number = state["block_number"]
            self.transaction_id = state["transaction_id"]

    def _move_to(self, block_number: int, transaction_id: str | None) -> None:
        state = json.dumps({"block_number": block_number, "transaction_id": transaction_id})
        with tempfile.NamedTemporaryFile("w", dir=self.path.parent, prefix=self.path.name, delete=False) as file:
            file.write(state)
            file.flush()
            os.fsync(file.fileno())
        os.replace(file.name, self.path)
        super()._move_to(block_number, transaction_id)
