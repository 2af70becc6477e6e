"""Compact storage of edge columns and CSC index arrays, and how readers see it.

A dataset stores each array as narrow as its values allow (``docs/layout.md``, format version 2):

- **index arrays** (``indptr``, ``src``): int32 when every value is below ``INDEX_LIMIT``, else int64
  (:func:`index_dtype`). Readers and kernels take either dtype; Numba compiles one specialisation
  per dtype and caches it.
- **integer columns** (e.g. ``time``): int32 offsets ``value - base`` from the column's minimum
  ``base`` when its range ``max - min`` is at most ``OFFSET_RANGE_LIMIT``, else int64 as given
  (:func:`offset_base`). Readers see an :class:`OffsetColumn`: indexing it returns the original
  int64 values; samplers compare in the stored domain against bounds moved there by
  :func:`stored_bounds`, which is exact (stored values lie in ``[0, OFFSET_RANGE_LIMIT]``; a bound
  below the base becomes -1, one past the range ``OFFSET_RANGE_LIMIT + 1``, so every comparison
  ``value <= bound`` / ``value < bound`` keeps its answer).
- **float columns** named in ``PartitionOptions.float32_columns``: float32, lossy; the largest
  relative error ``|float32(x) - x| / |x|`` over the column is recorded (:func:`float32_error`).
"""
from __future__ import annotations

from typing import Optional

import numpy as np
from numpy.lib.mixins import NDArrayOperatorsMixin

INDEX_LIMIT = 2**31 - 1  # index arrays are int32 when every value is below this (int32 max)
OFFSET_RANGE_LIMIT = 2**31 - 2  # an integer column is stored as int32 offsets when max - min <= this
_STORED_ABOVE = OFFSET_RANGE_LIMIT + 1  # a bound past every stored offset (still an int32)


def index_dtype(max_value: int) -> np.dtype:
    """int32 when every index value (``<= max_value``) is below ``INDEX_LIMIT``, else int64."""
    return np.dtype(np.int32) if int(max_value) < INDEX_LIMIT else np.dtype(np.int64)


def offset_base(lo: int, hi: int) -> Optional[int]:
    """The base of an integer column with values in ``[lo, hi]`` stored as int32 offsets, or None
    when its range is too wide (then it is stored as int64)."""
    lo, hi = int(lo), int(hi)
    if hi - lo > OFFSET_RANGE_LIMIT or lo + _STORED_ABOVE > np.iinfo(np.int64).max:
        return None
    return lo


def float32_error(values: np.ndarray) -> float:
    """Largest relative error of storing float64 ``values`` as float32 over their finite non-zero
    values (0, NaN and infinities are stored exactly)."""
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        return 0.0
    nz = (v != 0) & np.isfinite(v)
    err = np.abs(v[nz].astype(np.float32).astype(np.float64) - v[nz]) / np.abs(v[nz])
    return float(err.max()) if err.size else 0.0


def stored_bounds(bounds: np.ndarray, base: Optional[int]) -> np.ndarray:
    """Time bounds (int64 ``[n]``, original domain) moved into a column's stored domain (int64 ``[n]``).

    ``base`` None (a column stored as given) returns the bounds unchanged. Otherwise a bound below
    ``base`` becomes -1 and one at or above ``base + OFFSET_RANGE_LIMIT + 1`` becomes
    ``OFFSET_RANGE_LIMIT + 1``: both still compare with every stored offset as the original bound
    compares with the original value (see the module docstring).
    """
    bounds = np.ascontiguousarray(bounds, dtype=np.int64)
    if base is None:
        return bounds
    out = np.full(bounds.shape, -1, dtype=np.int64)
    above = bounds >= base + _STORED_ABOVE  # fits int64: offset_base checks it
    inside = (bounds >= base) & ~above  # the subtraction runs only where it is below _STORED_ABOVE
    out[above] = _STORED_ABOVE
    out[inside] = bounds[inside] - np.int64(base)
    return out


class OffsetColumn(NDArrayOperatorsMixin):
    """An integer edge column stored as offsets from ``base``, read as its original int64 values.

    Indexing (``col[i]``, ``col[a:b]``, ``col[positions]``) returns int64 values ``stored + base``
    (materialising only what is asked for); NumPy functions and operators see the whole column
    widened. ``stored`` (the memory-mapped int32 offsets) and ``base`` are what kernels read.
    """

    def __init__(self, stored: np.ndarray, base: int):
        self.stored = stored
        self.base = int(base)

    dtype = np.dtype(np.int64)

    @property
    def shape(self):
        return self.stored.shape

    @property
    def ndim(self) -> int:
        return self.stored.ndim

    @property
    def size(self) -> int:
        return self.stored.size

    @property
    def nbytes(self) -> int:
        """Bytes of the stored offsets (not of the widened values)."""
        return self.stored.nbytes

    def __len__(self) -> int:
        return self.stored.shape[0]

    def __getitem__(self, index):
        return np.add(self.stored[index], np.int64(self.base), dtype=np.int64)

    def __array__(self, dtype=None, copy=None):
        out = self[...]
        return out if dtype is None else out.astype(dtype, copy=False)

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        inputs = tuple(np.asarray(x) if isinstance(x, OffsetColumn) else x for x in inputs)
        return getattr(ufunc, method)(*inputs, **kwargs)

    def astype(self, dtype, copy: bool = True):
        return self[...].astype(dtype, copy=False)

    def min(self, *args, **kwargs):
        return np.int64(self.stored.min(*args, **kwargs)) + np.int64(self.base)

    def max(self, *args, **kwargs):
        return np.int64(self.stored.max(*args, **kwargs)) + np.int64(self.base)

    def __repr__(self) -> str:
        return f"OffsetColumn(base={self.base}, stored={self.stored.dtype}[{self.stored.shape[0]}])"


def column_base(column) -> Optional[int]:
    """``column.base`` for an :class:`OffsetColumn`, else None."""
    return column.base if isinstance(column, OffsetColumn) else None


def stored_array(column) -> Optional[np.ndarray]:
    """The array a kernel reads: an :class:`OffsetColumn`'s stored offsets, or the column itself."""
    return column.stored if isinstance(column, OffsetColumn) else column
