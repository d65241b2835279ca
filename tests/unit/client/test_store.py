"""The off-chain store: content-addressed blobs checked on read, atomic writes, wrapped data keys, erasure."""

from __future__ import annotations

import doctest
import hashlib
import json
import os
from datetime import datetime, timedelta, timezone

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

import medfabric.data_service.store
from medfabric.crypto import seal, wrap_key
from medfabric.data_service.store import (
    BlobNotFoundError,
    FileBlobStore,
    FileKeyStore,
    FilePendingPuts,
    PendingPut,
    RecordErasedError,
    RecordKey,
    StoreError,
    TamperedBlobError,
    UnknownRecordError,
)


@pytest.fixture(scope="module")
def service_certificate() -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "data-service")])
    now = datetime.now(timezone.utc)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(1).not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM)


@pytest.fixture
def record_key(service_certificate):
    sealed = seal(b'{"resourceType":"Observation"}', aad=b"rec-1")
    return RecordKey("rec-1", sealed.ciphertext_sha256, wrap_key(sealed.data_key, service_certificate, b"rec-1"))


def files_under(root) -> list[str]:
    return sorted(str(path.relative_to(root)) for path in root.rglob("*") if path.is_file())


def test_blob_round_trip_at_its_sha256_address(tmp_path):
    blobs = FileBlobStore(tmp_path)
    blob = b"sealed bytes"

    address = blobs.put(blob)

    assert address == hashlib.sha256(blob).hexdigest()
    assert blobs.get(address) == blob
    assert blobs.exists(address)
    assert files_under(tmp_path) == [f"{address[:2]}/{address[2:]}"]


def test_same_content_has_one_address_and_one_file(tmp_path):
    blobs = FileBlobStore(tmp_path)

    first, again, other = blobs.put(b"one"), blobs.put(b"one"), blobs.put(b"two")

    assert first == again != other
    assert len(files_under(tmp_path)) == 2


def test_altered_blob_is_detected_on_read(tmp_path):
    blobs = FileBlobStore(tmp_path)
    address = blobs.put(b"sealed bytes")
    (tmp_path / address[:2] / address[2:]).write_bytes(b"sealed bytez")

    with pytest.raises(TamperedBlobError, match="stored ciphertext does not match its hash"):
        blobs.get(address)


def test_deleted_blob_is_gone(tmp_path):
    blobs = FileBlobStore(tmp_path)
    address = blobs.put(b"sealed bytes")

    blobs.delete(address)
    blobs.delete(address)  # deleting again is not an error

    assert not blobs.exists(address)
    assert files_under(tmp_path) == []
    with pytest.raises(BlobNotFoundError):
        blobs.get(address)


@pytest.mark.parametrize("address", ["../../etc/passwd", "AB" * 32, "ab" * 31, ""])
def test_only_sha256_hex_is_an_address(tmp_path, address):
    with pytest.raises(StoreError, match="64 lowercase hex"):
        FileBlobStore(tmp_path).get(address)


def test_interrupted_write_leaves_the_old_file_and_no_temporary(tmp_path, record_key, monkeypatch):
    keys = FileKeyStore(tmp_path)
    keys.put(record_key)
    before = files_under(tmp_path)

    def fail(*args):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        keys.put(RecordKey("rec-1", "0" * 64, record_key.wrapped_key))

    assert keys.get("rec-1") == record_key
    assert files_under(tmp_path) == before


def test_write_goes_through_a_temporary_in_the_same_folder(tmp_path, monkeypatch):
    renames = []
    real_replace = os.replace

    def replace(source, target):
        renames.append((os.path.dirname(source), os.path.basename(source), str(target)))
        real_replace(source, target)

    monkeypatch.setattr(os, "replace", replace)
    address = FileBlobStore(tmp_path).put(b"sealed bytes")

    [(folder, temporary, target)] = renames
    assert target == str(tmp_path / address[:2] / address[2:])
    assert folder == str(tmp_path / address[:2]) and temporary.endswith(".tmp")


def test_key_round_trip(tmp_path, record_key):
    keys = FileKeyStore(tmp_path)
    keys.put(record_key)

    assert keys.get("rec-1") == record_key
    with pytest.raises(UnknownRecordError, match="no record rec-2"):
        keys.get("rec-2")


def test_erased_key_is_destroyed_and_leaves_a_tombstone_without_key(tmp_path, record_key):
    keys = FileKeyStore(tmp_path)
    keys.put(record_key)

    keys.erase("rec-1")

    with pytest.raises(RecordErasedError, match="record rec-1 erased"):
        keys.get("rec-1")
    assert files_under(tmp_path) == ["erased/rec-1.json"]
    tombstone = json.loads((tmp_path / "erased" / "rec-1.json").read_text())
    assert set(tombstone) == {"record_id", "erased_at"}


def test_a_discarded_key_leaves_no_tombstone_and_the_id_may_be_stored_again(tmp_path, record_key):
    keys = FileKeyStore(tmp_path)
    keys.put(record_key)

    keys.discard("rec-1")

    assert files_under(tmp_path) == []
    with pytest.raises(UnknownRecordError):
        keys.get("rec-1")
    keys.put(record_key)
    assert keys.get("rec-1") == record_key


def test_pending_puts_round_trip_oldest_first(tmp_path):
    pending = FilePendingPuts(tmp_path)
    now = datetime.now(timezone.utc)
    later = PendingPut("rec-a", "a" * 64, now)
    earlier = PendingPut("rec-b", "b" * 64, now - timedelta(seconds=5))
    pending.add(later)
    pending.add(earlier)

    assert pending.all() == [earlier, later]
    assert pending.get("rec-a") == later and pending.get("rec-c") is None
    pending.remove("rec-a")
    pending.remove("rec-c")  # absent: nothing to do
    assert pending.all() == [earlier]


def test_a_malformed_pending_put_is_reported_and_skipped(tmp_path):
    pending = FilePendingPuts(tmp_path)
    pending.add(PendingPut("rec-a", "a" * 64, datetime.now(timezone.utc)))
    (tmp_path / "rec-b.json").write_text('{"record_id": "rec-b", "stored_at": "yesterday"}')

    with pytest.raises(StoreError, match="pending-put file of record rec-b is malformed"):
        pending.get("rec-b")
    assert [put.record_id for put in pending.all()] == ["rec-a"]


@pytest.mark.parametrize("record_id", ["../rec", "a/b", "", "x" * 129])
def test_record_ids_cannot_leave_the_store(tmp_path, record_id):
    with pytest.raises(StoreError, match="record id is 1-128 characters"):
        FileKeyStore(tmp_path).get(record_id)


def test_malformed_key_file_is_an_error(tmp_path, record_key):
    keys = FileKeyStore(tmp_path)
    keys.put(record_key)
    (tmp_path / "keys" / "rec-1.json").write_text('{"record_id": "rec-1"}')

    with pytest.raises(StoreError, match="key file of record rec-1 is malformed"):
        keys.get("rec-1")


def test_docstring_examples_run(tmp_path, service_certificate):
    sealed = seal(b"{}", aad=b"rec-1")
    example_globals = {
        "root": tmp_path, "sealed": sealed,
        "wrapped_for_service": wrap_key(sealed.data_key, service_certificate, b"rec-1"),
        "stored_at": datetime.now(timezone.utc),
    }
    result = doctest.testmod(medfabric.data_service.store, extraglobs=example_globals)
    assert result.attempted > 0 and result.failed == 0
