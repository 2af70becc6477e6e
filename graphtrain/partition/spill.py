"""Append-only spill streams on disk for the out-of-core partitioner (internal scratch space).

A stream is a raw binary file of one dtype under the spill directory (inside the output's
temporary directory, so a failed run removes it with everything else). Writers append whole
arrays; readers take element ranges with ``np.fromfile`` (no memory map: pages read for a range are
page cache, not the process's resident memory).

Disk is the binding limit on a large run, so the partitioner removes each stream as soon as its last
reader is done with it, and :class:`SpillDir` keeps count of the bytes on disk now
(:attr:`SpillDir.live_bytes`) and at the most (:attr:`SpillDir.peak_bytes`, the run's scratch peak,
reported as ``spill_peak_bytes``), next to the total ever written (:attr:`SpillDir.bytes_written`).
"""
from __future__ import annotations

import os
from collections import OrderedDict
from pathlib import Path

import numpy as np


class SpillDir:
    """Named append-only binary streams under ``root``.

    Appends go through a bounded set of open file handles (least recently used closed first), so
    thousands of small per-bucket appends cost a write each rather than an open/close each. A
    stream's handle is flushed and closed before the stream is read, rewritten or removed.

    Args:
        root: directory (created if missing).
        max_open: most append handles kept open at once (well under common file-descriptor limits).
    """

    def __init__(self, root, max_open: int = 256):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._bytes_written = 0
        self._live = 0  # bytes of the streams on disk now
        self._peak = 0
        self._open: "OrderedDict[str, object]" = OrderedDict()
        self._max_open = max(1, int(max_open))

    def path(self, name: str) -> Path:
        return self.root / f"{name}.bin"

    def _handle(self, name: str):
        fh = self._open.get(name)
        if fh is not None:
            self._open.move_to_end(name)
            return fh
        if len(self._open) >= self._max_open:
            _, oldest = self._open.popitem(last=False)
            oldest.close()
        fh = open(self.path(name), "ab")
        self._open[name] = fh
        return fh

    def _settle(self, name: str) -> None:
        """Flush and close ``name``'s append handle, if open."""
        fh = self._open.pop(name, None)
        if fh is not None:
            fh.close()

    def close(self) -> None:
        """Close every append handle."""
        while self._open:
            _, fh = self._open.popitem()
            fh.close()

    def append(self, name: str, array: np.ndarray) -> None:
        """Append ``array``'s bytes to stream ``name``."""
        array = np.ascontiguousarray(array)
        fh = self._handle(name)
        if array.size:
            fh.write(memoryview(array).cast("B"))
            self._bytes_written += array.nbytes
            self._live += array.nbytes
            self._peak = max(self._peak, self._live)

    def write(self, name: str, array: np.ndarray) -> None:
        """Replace stream ``name`` with ``array``."""
        self.remove(name)
        self.append(name, array)

    def read(self, name: str, dtype, start: int = 0, count: int = -1) -> np.ndarray:
        """Elements ``[start, start + count)`` (``count = -1``: to the end) of stream ``name``."""
        dtype = np.dtype(dtype)
        self._settle(name)
        path = self.path(name)
        if not path.exists():
            if start == 0 and count in (0, -1):
                return np.empty(0, dtype=dtype)
            raise FileNotFoundError(path)
        if count == 0:
            return np.empty(0, dtype=dtype)
        return np.fromfile(path, dtype=dtype, count=count, offset=start * dtype.itemsize)

    def length(self, name: str, dtype) -> int:
        """Number of ``dtype`` elements in stream ``name`` (0 if it does not exist)."""
        self._settle(name)
        path = self.path(name)
        return path.stat().st_size // np.dtype(dtype).itemsize if path.exists() else 0

    def exists(self, name: str) -> bool:
        return name in self._open or self.path(name).exists()

    def remove(self, name: str) -> None:
        """Delete stream ``name`` (nothing if it does not exist)."""
        self._settle(name)
        path = self.path(name)
        try:
            size = path.stat().st_size
            os.unlink(path)
        except FileNotFoundError:
            return
        self._live = max(0, self._live - size)

    @property
    def bytes_written(self) -> int:
        """Bytes appended over the run (removed streams included)."""
        return self._bytes_written

    @property
    def live_bytes(self) -> int:
        """Bytes of the streams on disk now."""
        return self._live

    @property
    def peak_bytes(self) -> int:
        """The most bytes on disk at once (the scratch peak of this spill directory)."""
        return self._peak


class RangeBins:
    """Rows routed by an int64 key into contiguous key ranges ("bins"), each bin a set of spill streams.

    Bins are processed one at a time later, so a bin's rows must fit in memory; choose ``bounds``
    accordingly. Rows keep their arrival order within a bin.

    Args:
        spill: where the streams live.
        name: stream name prefix.
        bounds: int64 ``[B + 1]`` increasing; bin ``b`` holds keys in ``[bounds[b], bounds[b + 1])``.
        dtypes: column name -> dtype of the other columns carried with each key, or
            ``(dtype, width)`` for a 2-D column ``[n, width]``.
    """

    def __init__(self, spill: SpillDir, name: str, bounds: np.ndarray, dtypes: dict):
        self.spill = spill
        self.name = name
        self.bounds = np.asarray(bounds, dtype=np.int64)
        self.dtypes = {k: np.dtype(v[0] if isinstance(v, tuple) else v) for k, v in dtypes.items()}
        self.widths = {k: v[1] for k, v in dtypes.items() if isinstance(v, tuple)}
        self.counts = np.zeros(self.num_bins, dtype=np.int64)

    @property
    def num_bins(self) -> int:
        return int(self.bounds.shape[0] - 1)

    def _stream(self, column: str, b: int) -> str:
        return f"{self.name}_{column}_{b:05d}"

    def add(self, keys: np.ndarray, columns: dict) -> None:
        """Append rows (``keys`` int64 ``[n]`` and each column ``[n, ...]``) to their bins."""
        from graphtrain.partition._kernels import label_order

        if keys.size == 0:
            return
        bin_of = np.searchsorted(self.bounds, keys, side="right") - 1
        if self.num_bins == 1:
            starts, order = np.array([0, keys.size], dtype=np.int64), None
        else:
            starts, order = label_order(bin_of, self.num_bins)
        for b in np.flatnonzero(np.diff(starts)):
            lo, hi = starts[b], starts[b + 1]
            sel = slice(lo, hi) if order is None else order[lo:hi]
            self.spill.append(self._stream("key", b), keys[sel])
            for col, values in columns.items():
                self.spill.append(self._stream(col, b), np.asarray(values, dtype=self.dtypes[col])[sel])
            self.counts[b] += hi - lo

    def read(self, b: int, remove: bool = True):
        """``(keys, columns)`` of bin ``b``; the bin's streams are deleted unless ``remove=False``."""
        keys = self.spill.read(self._stream("key", b), np.int64)
        cols = {}
        for col, dtype in self.dtypes.items():
            arr = self.spill.read(self._stream(col, b), dtype)
            cols[col] = arr.reshape(-1, self.widths[col]) if col in self.widths else arr
        if remove:
            for col in ["key", *self.dtypes]:
                self.spill.remove(self._stream(col, b))
        return keys, cols
