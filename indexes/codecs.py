"""Arrow codecs: vectors and multivectors to and from Arrow columns, and how visual vectors are stored.

Multivectors are ``list<fixed_size_list<T, width>>`` columns built from (n_i, dim) numpy arrays without Python
lists. Visual page vectors are stored as ``float16`` (default), ``int8`` (fixed scale: a unit vector's
components lie well inside ±0.5 at 128 dimensions, so ``round(x * 254)`` clipped to ±127) or ``binary`` (the
sign bits, dim / 8 bytes a vector; scored asymmetrically, the float query against ±1/√dim).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = [
    "INT8_SCALE",
    "STORAGES",
    "arrow_to_multivectors",
    "decode",
    "encode",
    "multivectors_to_arrow",
    "stored_width",
    "vectors_to_arrow",
]

INT8_SCALE = 254.0
STORAGES = ("float16", "int8", "binary")


def multivectors_to_arrow(arrays: Sequence[np.ndarray], dim: int, dtype: Any = np.float16) -> Any:
    """list<fixed_size_list<dtype, dim>> from (n_i, dim) arrays."""
    import pyarrow as pa

    if not len(arrays):
        return pa.array([], type=pa.list_(pa.list_(pa.from_numpy_dtype(np.dtype(dtype)), dim)))
    flat = np.concatenate([np.asarray(a, dtype=dtype).reshape(-1, dim) for a in arrays])  # (total, dim)
    inner = pa.FixedSizeListArray.from_arrays(pa.array(flat.reshape(-1)), dim)
    offsets = np.cumsum([0, *(len(a) for a in arrays)]).astype(np.int32)  # (n + 1,)
    return pa.ListArray.from_arrays(pa.array(offsets), inner)


def arrow_to_multivectors(column: Any) -> list[np.ndarray]:
    """The inverse: a list of (n_i, dim) arrays of the stored type (views into one buffer)."""
    col = column.combine_chunks() if hasattr(column, "combine_chunks") else column
    offsets = col.offsets.to_numpy()  # (n + 1,)
    dim = col.type.value_type.list_size
    values = col.values.flatten().to_numpy(zero_copy_only=False).reshape(-1, dim)  # (total, dim)
    base = offsets[0]
    return [values[offsets[i] - base : offsets[i + 1] - base] for i in range(len(col))]


def vectors_to_arrow(vectors: np.ndarray, dim: int, dtype: Any = np.float32) -> Any:
    """fixed_size_list<dtype, dim> from an (n, dim) array."""
    import pyarrow as pa

    v = np.asarray(vectors, dtype=dtype).reshape(-1, dim)  # (n, dim)
    return pa.FixedSizeListArray.from_arrays(pa.array(v.reshape(-1)), dim)


def stored_width(storage: str, dim: int) -> int:
    """Values per stored visual vector: dim, or dim / 8 bytes for binary."""
    return dim // 8 if storage == "binary" else dim


def encode(vectors: np.ndarray, storage: str) -> np.ndarray:
    """(n, dim) float vectors as stored: float16, int8 or packed sign bits (uint8, (n, dim / 8))."""
    v = np.asarray(vectors, dtype=np.float32)
    if storage == "float16":
        return v.astype(np.float16)
    if storage == "int8":
        return np.clip(np.rint(v * INT8_SCALE), -127, 127).astype(np.int8)
    if storage == "binary":
        return np.packbits(v > 0, axis=1)
    raise ValueError(f"unknown visual storage {storage!r}: use float16, int8 or binary")


def decode(stored: np.ndarray, storage: str, dim: int, dtype: Any = np.float16) -> np.ndarray:
    """Stored vectors back to (n, dim) floats (``dtype``) for scoring."""
    if storage == "float16":
        return stored if stored.dtype == dtype else stored.astype(dtype)
    if storage == "int8":
        return (stored.astype(np.float32) / INT8_SCALE).astype(dtype)
    if storage == "binary":
        bits = np.unpackbits(stored, axis=1, count=dim).astype(np.float32)
        return ((bits * 2.0 - 1.0) / np.sqrt(dim)).astype(dtype)
    raise ValueError(f"unknown visual storage {storage!r}")
