"""Sorting by two integer keys, fast: ``np.lexsort`` sorts once per key and is several times slower
than one sort of a packed key.

``pair_order(major, minor)`` is ``np.lexsort((minor, major))`` (ties in input order),
``sorted_pairs`` the sorted pairs themselves, and ``csr_order`` that order with the row pointers of
``major`` as rows. Both pack ``(major, minor)`` into one int64
``(major - min) * span + (minor - min)`` when the ranges allow, and fall back to ``np.lexsort``
otherwise. On 24M random pairs (4.7M majors, minors up to 1e8): lexsort 10.8 s, the packed stable
argsort 3.8 s, the packed ``np.sort`` 0.31 s (dev, 2026-12-07).

``row_blocks(indptr, max_edges)`` walks a CSR's rows in consecutive blocks of about ``max_edges``
entries, so that a pass over a partition holds one block at a time.

``search_sorted(a, value, side)`` is ``np.searchsorted`` for one integer ``value``, in O(log n) also
when ``a`` is not int64: given a Python int, NumPy converts the whole of an int32 ``a`` (a compact
dataset's ``indptr``) first -- about 60 ms per call on 31M rows, so a pass in blocks was quadratic.
"""
from __future__ import annotations

from typing import Iterator, Optional, Tuple

import numpy as np

_LIMIT = np.iinfo(np.int64).max


def _packed(major: np.ndarray, minor: np.ndarray) -> Optional[Tuple[np.ndarray, int, int, int]]:
    """``(key, major_min, minor_min, span)`` with ``key`` ordered as the pairs, or None if it would overflow."""
    if major.size == 0:
        return np.zeros(0, dtype=np.int64), 0, 0, 1
    lo_a, hi_a = int(major.min()), int(major.max())
    lo_b, hi_b = int(minor.min()), int(minor.max())
    span = hi_b - lo_b + 1
    if (hi_a - lo_a + 1) * span > _LIMIT:
        return None
    key = (major.astype(np.int64) - lo_a) * span
    key += minor.astype(np.int64) - lo_b
    return key, lo_a, lo_b, span


def pair_order(major: np.ndarray, minor: np.ndarray) -> np.ndarray:
    """int64 ``[E]``: the permutation sorting by ``major`` then ``minor`` (integer arrays of shape
    ``[E]``), ties in input order: equal to ``np.lexsort((minor, major))``."""
    major, minor = np.asarray(major), np.asarray(minor)
    packed = _packed(major, minor)
    if packed is None:
        return np.lexsort((minor, major))
    return np.argsort(packed[0], kind="stable")


def csr_order(rows: np.ndarray, minor: np.ndarray, n: int) -> Tuple[np.ndarray, np.ndarray]:
    """``(order, indptr)``: :func:`pair_order` of ``(rows, minor)`` (``[E]``, rows in ``0 .. n-1``) and int64
    ``[n + 1]`` row pointers into it: row ``r``'s entries are ``order[indptr[r]:indptr[r + 1]]``, by ``minor``."""
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=n), out=indptr[1:])
    return pair_order(rows, minor), indptr


def sorted_pairs(major: np.ndarray, minor: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """``(major, minor)`` sorted by ``major`` then ``minor`` (int64 copies)."""
    major, minor = np.asarray(major), np.asarray(minor)
    packed = _packed(major, minor)
    if packed is None:
        order = np.lexsort((minor, major))
        return major[order].astype(np.int64), minor[order].astype(np.int64)
    key, lo_a, lo_b, span = packed
    key.sort()
    return key // span + lo_a, key % span + lo_b


def search_sorted(a: np.ndarray, value: int, side: str = "left") -> int:
    """``int(np.searchsorted(a, value, side))`` for sorted 1-D integer ``a`` and an integer ``value``,
    without converting ``a``: ``value`` is given to NumPy in ``a``'s dtype (a value beyond that
    dtype's range is before or after every element)."""
    value = int(value)
    if a.dtype.kind in "iu":
        info = np.iinfo(a.dtype)
        if value < info.min:
            return 0
        if value > info.max:
            return int(a.shape[0])
        return int(np.searchsorted(a, a.dtype.type(value), side=side))
    return int(np.searchsorted(a, value, side=side))


def row_blocks(indptr: np.ndarray, max_edges: int) -> Iterator[Tuple[int, int]]:
    """Consecutive row ranges ``[a, b)`` of a CSR with row pointers ``indptr`` (``[n + 1]``), each
    holding at most ``max_edges`` entries, or one row when that row alone holds more; together they
    cover rows ``0 .. n-1`` in order."""
    n = indptr.shape[0] - 1
    a = 0
    while a < n:
        b = search_sorted(indptr, int(indptr[a]) + max_edges, side="right") - 1
        b = min(max(b, a + 1), n)
        yield a, b
        a = b
