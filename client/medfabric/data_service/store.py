"""A domain's off-chain store: sealed EMR blobs by content address, and their data keys wrapped for the service.

    >>> blobs = FileBlobStore(root / "blobs")
    >>> address = blobs.put(sealed.blob)          # sha256 hex of the blob
    >>> blobs.get(address) == sealed.blob         # TamperedBlobError if the file was altered
    True
    >>> keys = FileKeyStore(root / "keys")
    >>> keys.put(RecordKey("rec-1", address, wrapped_for_service))
    >>> keys.erase("rec-1"); blobs.delete(address)   # crypto-shredding: key and ciphertext gone
    >>> pending = FilePendingPuts(root / "keys" / "pending")
    >>> pending.add(PendingPut("rec-2", address, stored_at))  # before the blob: a put not yet seen indexed

The stores are protocols, so another backend (an object store, an HSM-backed
key store) can replace the file-backed ones.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Protocol

from medfabric.crypto import CryptoError, WrappedKey
from medfabric.errors import MedfabricError

_ADDRESS = re.compile(r"[0-9a-f]{64}")
RECORD_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")  # as the emr_index contract accepts them


class StoreError(MedfabricError):
    """The store cannot do what was asked; the message is one line."""


class BlobNotFoundError(StoreError):
    """No blob has this address."""


class TamperedBlobError(StoreError):
    """A stored blob's bytes no longer hash to its address."""


class UnknownRecordError(StoreError):
    """No key is stored for this record id."""


class RecordErasedError(StoreError):
    """The record was erased: its key (and ciphertext) are destroyed."""


class BlobStore(Protocol):
    """Immutable blobs addressed by the SHA-256 (hex) of their bytes."""

    def put(self, blob: bytes) -> str:
        """Store `blob`; its address."""

    def get(self, address: str) -> bytes:
        """The blob; BlobNotFoundError, or TamperedBlobError when its bytes do not hash to `address`."""

    def delete(self, address: str) -> None:
        """Remove the blob if it is there."""

    def exists(self, address: str) -> bool: ...


@dataclass(frozen=True)
class RecordKey:
    """The data key of one record, wrapped for the data service, and the address of the ciphertext it opens."""

    record_id: str
    ciphertext_sha256: str
    wrapped_key: WrappedKey

    def to_dict(self) -> dict[str, object]:
        return {
            "record_id": self.record_id,
            "ciphertext_sha256": self.ciphertext_sha256,
            "wrapped_key": self.wrapped_key.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> "RecordKey":
        return cls(str(data["record_id"]), str(data["ciphertext_sha256"]), WrappedKey.from_dict(data["wrapped_key"]))


class KeyStore(Protocol):
    """Wrapped data keys by record id; erasing one destroys it and remembers that it was erased."""

    def put(self, key: RecordKey) -> None: ...

    def get(self, record_id: str) -> RecordKey:
        """The record's key; UnknownRecordError, or RecordErasedError once erased."""

    def erase(self, record_id: str) -> None:
        """Destroy the record's key, leaving a tombstone with no key material."""

    def discard(self, record_id: str) -> None:
        """Destroy the key of a record that was never indexed, leaving no tombstone: its id may be stored again."""


@dataclass(frozen=True)
class PendingPut:
    """A record stored but not yet seen indexed on the ledger: a put in progress, or one that did not complete."""

    record_id: str
    ciphertext_sha256: str
    stored_at: datetime  # the service's clock, timezone-aware

    def to_dict(self) -> dict[str, str]:
        return {"record_id": self.record_id, "ciphertext_sha256": self.ciphertext_sha256,
                "stored_at": self.stored_at.isoformat()}

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> "PendingPut":
        stored_at = datetime.fromisoformat(str(data["stored_at"]))
        if stored_at.tzinfo is None:
            raise ValueError("stored_at has no timezone")
        return cls(str(data["record_id"]), str(data["ciphertext_sha256"]), stored_at)


class PendingPuts(Protocol):
    """The stored records not yet seen indexed (medfabric.data_service.orphan_sweep settles them)."""

    def add(self, put: PendingPut) -> None: ...

    def get(self, record_id: str) -> PendingPut | None: ...

    def remove(self, record_id: str) -> None: ...

    def all(self) -> list[PendingPut]:
        """Every pending put, oldest first."""


class FileBlobStore:
    """Blobs as files root/ab/cdef... named by their SHA-256, written atomically, checked on every read."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def put(self, blob: bytes) -> str:
        address = hashlib.sha256(blob).hexdigest()
        write_atomically(self._path(address), blob)
        return address

    def get(self, address: str) -> bytes:
        try:
            blob = self._path(address).read_bytes()
        except FileNotFoundError:
            raise BlobNotFoundError(f"no blob {address}") from None
        if hashlib.sha256(blob).hexdigest() != address:
            raise TamperedBlobError("stored ciphertext does not match its hash")
        return blob

    def delete(self, address: str) -> None:
        self._path(address).unlink(missing_ok=True)

    def exists(self, address: str) -> bool:
        return self._path(address).is_file()

    def _path(self, address: str) -> Path:
        if not _ADDRESS.fullmatch(address):
            raise StoreError("a blob address is 64 lowercase hex characters")
        return self.root / address[:2] / address[2:]


class FileKeyStore:
    """One JSON file per record under root/keys; an erased record leaves root/erased/<id>.json (no key in it)."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def put(self, key: RecordKey) -> None:
        write_atomically(self._key_path(key.record_id), json.dumps(key.to_dict()).encode())

    def get(self, record_id: str) -> RecordKey:
        if self._tombstone_path(record_id).exists():
            raise RecordErasedError(f"record {record_id} erased")
        try:
            return RecordKey.from_dict(json.loads(self._key_path(record_id).read_bytes()))
        except FileNotFoundError:
            raise UnknownRecordError(f"no record {record_id}") from None
        except (ValueError, KeyError, TypeError, CryptoError):
            raise StoreError(f"the key file of record {record_id} is malformed") from None

    def erase(self, record_id: str) -> None:
        """Tombstone first, then the key: an interrupted erase still reads as erased."""
        tombstone = {"record_id": record_id, "erased_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        write_atomically(self._tombstone_path(record_id), json.dumps(tombstone).encode())
        self._key_path(record_id).unlink(missing_ok=True)

    def discard(self, record_id: str) -> None:
        self._key_path(record_id).unlink(missing_ok=True)

    def _key_path(self, record_id: str) -> Path:
        return self.root / "keys" / f"{_checked_record_id(record_id)}.json"

    def _tombstone_path(self, record_id: str) -> Path:
        return self.root / "erased" / f"{_checked_record_id(record_id)}.json"


class FilePendingPuts:
    """One JSON file per pending put under root; a malformed one is skipped by all() (and reported by get)."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def add(self, put: PendingPut) -> None:
        write_atomically(self._path(put.record_id), json.dumps(put.to_dict()).encode())

    def get(self, record_id: str) -> PendingPut | None:
        try:
            return PendingPut.from_dict(json.loads(self._path(record_id).read_bytes()))
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError):
            raise StoreError(f"the pending-put file of record {record_id} is malformed") from None

    def remove(self, record_id: str) -> None:
        self._path(record_id).unlink(missing_ok=True)

    def all(self) -> list[PendingPut]:
        found = []
        for path in sorted(self.root.glob("*.json")):
            try:
                found.append(self.get(path.stem))
            except StoreError:
                continue
        return sorted((put for put in found if put is not None), key=lambda put: (put.stored_at, put.record_id))

    def _path(self, record_id: str) -> Path:
        return self.root / f"{_checked_record_id(record_id)}.json"


def _checked_record_id(record_id: str) -> str:
    if not RECORD_ID.fullmatch(record_id):
        raise StoreError("a record id is 1-128 characters of A-Z a-z 0-9 . _ : -")
    return record_id


def write_atomically(path: Path, data: bytes) -> None:
    """Write `data` to `path` through a temporary file in the same folder and a rename: readers see all or nothing."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
