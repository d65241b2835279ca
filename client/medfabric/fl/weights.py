"""Model weights as canonical bytes, and their SHA-256: what the ledger records and what every re-run reproduces.

The bytes are b"MFW1", the number of dimensions (uint32), each dimension
(uint64), then the values as little-endian float64 in C order: the same
array gives the same bytes on every machine, and the hash names them.
"""

from __future__ import annotations

import hashlib
import struct

import numpy as np

MAGIC = b"MFW1"
MAX_DIMENSIONS = 8


class WeightsError(ValueError):
    """Bytes that are not canonical weights, or weights that cannot be written; one line."""


def to_bytes(weights: np.ndarray) -> bytes:
    """The canonical bytes of a finite float64 array."""
    array = np.asarray(weights)
    if array.dtype != np.float64:
        raise WeightsError(f"weights must be float64, not {array.dtype}")
    if not 0 < array.ndim <= MAX_DIMENSIONS:
        raise WeightsError(f"weights must have 1 to {MAX_DIMENSIONS} dimensions, not {array.ndim}")
    if not np.all(np.isfinite(array)):
        raise WeightsError("weights must be finite (no NaN or infinity)")
    header = MAGIC + struct.pack("<I", array.ndim) + struct.pack(f"<{array.ndim}Q", *array.shape)
    return header + np.ascontiguousarray(array, dtype="<f8").tobytes()


def from_bytes(data: bytes) -> np.ndarray:
    """The array of canonical bytes; WeightsError naming what is wrong."""
    if len(data) < 8 or data[:4] != MAGIC:
        raise WeightsError("not MedFabric weights: the MFW1 header is missing")
    (ndim,) = struct.unpack_from("<I", data, 4)
    if not 0 < ndim <= MAX_DIMENSIONS or len(data) < 8 + 8 * ndim:
        raise WeightsError("not MedFabric weights: bad dimension header")
    shape = struct.unpack_from(f"<{ndim}Q", data, 8)
    body = data[8 + 8 * ndim:]
    if len(body) != 8 * int(np.prod(shape, dtype=np.uint64)):
        raise WeightsError(f"not MedFabric weights: {len(body)} value bytes for shape {tuple(shape)}")
    array = np.frombuffer(body, dtype="<f8").reshape(shape).astype(np.float64)
    if not np.all(np.isfinite(array)):
        raise WeightsError("weights must be finite (no NaN or infinity)")
    return array


def weights_sha256(weights: np.ndarray) -> str:
    """SHA-256 of the canonical bytes, in hex."""
    return hashlib.sha256(to_bytes(weights)).hexdigest()
