"""How a partitioning run stores its edge arrays compactly (:class:`EdgeEncoding`).

The rules are in :mod:`graphtrain.columns`; this module applies them to one run: it collects each
edge column's value range during ingest (:meth:`ColumnRanges.add`), decides every stored dtype
before the first edge is written (:func:`plan_encoding`), and turns the int64 / float64 chunks of
the write stage into what is stored (:meth:`EdgeEncoding.encode`), recording the float32 error.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Sequence, Tuple

import numpy as np

from graphtrain import columns as cols_mod
from graphtrain.errors import ConfigError

_F32_MAX = float(np.finfo(np.float32).max)


@dataclass
class ColumnRanges:
    """Running ``(min, max)`` of every ingested edge column (stored name -> pair of Python numbers)."""

    ranges: Dict[str, Tuple[float, float]] = field(default_factory=dict)

    def add(self, name: str, values: np.ndarray) -> None:
        """Widen ``name``'s range by a chunk (float columns: by its finite values; NaN and
        infinities are stored as they are in float32 too)."""
        if values.dtype.kind == "f":
            values = values[np.isfinite(values)]
        if values.size == 0:
            return
        lo, hi = values.min().item(), values.max().item()
        if name in self.ranges:
            lo, hi = min(lo, self.ranges[name][0]), max(hi, self.ranges[name][1])
        self.ranges[name] = (lo, hi)


@dataclass
class EdgeEncoding:
    """Stored dtypes of one dataset's edge arrays and the chunk encoders.

    Attributes:
        indptr: dtype of every partition's ``indptr`` (int32 when the largest partition's edge
            count is below ``columns.INDEX_LIMIT``).
        src: dtype of ``src`` (int32 when every global node ID is below the limit).
        stored: stored name -> stored dtype of each edge column.
        offsets: stored name -> base of each column stored as int32 offsets.
        float32: names of float64 columns stored as float32; ``errors`` their largest relative error so far.
    """

    indptr: np.dtype
    src: np.dtype
    stored: Dict[str, np.dtype]
    offsets: Dict[str, int] = field(default_factory=dict)
    float32: Tuple[str, ...] = ()
    errors: Dict[str, float] = field(default_factory=dict)

    def encode(self, name: str, values: np.ndarray) -> np.ndarray:
        """One chunk of column ``name`` (as ingested) as stored."""
        if name in self.offsets:
            return (values - np.int64(self.offsets[name])).astype(np.int32)
        if name in self.float32:
            self.errors[name] = max(self.errors.get(name, 0.0), cols_mod.float32_error(values))
            return values.astype(np.float32)
        return values


def check_float32_columns(requested: Sequence[str], stored_names: Dict[str, str]) -> Tuple[str, ...]:
    """The stored names of the columns ``requested`` by input or stored name (``ConfigError`` for unknown ones)."""
    out: List[str] = []
    for name in requested:
        if name in stored_names.values():
            out.append(name)
        elif name in stored_names:
            out.append(stored_names[name])
        else:
            have = ", ".join(sorted(stored_names)) or "none"
            raise ConfigError(f"--float32-columns names {name!r}, which is not an edge column (edge columns: {have})")
    return tuple(dict.fromkeys(out))


def plan_encoding(columns: Dict[str, np.dtype], ranges: ColumnRanges, float32: Sequence[str],
                  num_nodes: int, max_part_edges: int) -> EdgeEncoding:
    """Decide every stored dtype (see :mod:`graphtrain.columns`).

    Args:
        columns: stored name -> ingested dtype (int64, float64, int8).
        ranges: value ranges from ingest.
        float32: stored names of columns to store as float32 if they hold floats (integer columns
            named here are stored as integers, see the rules above).
        num_nodes, max_part_edges: the graph's node count and an upper bound on any partition's edges.

    Raises:
        ConfigError: a float32 column holds a value beyond float32's range.
    """
    stored: Dict[str, np.dtype] = {}
    offsets: Dict[str, int] = {}
    for name, dt in columns.items():
        dt = np.dtype(dt)
        stored[name] = dt
        if name in float32 and dt.kind == "f":  # integer columns named here stay lossless (offsets below)
            lo, hi = ranges.ranges.get(name, (0.0, 0.0))
            if max(abs(lo), abs(hi)) > _F32_MAX:
                raise ConfigError(f"--float32-columns: edge column {name!r} has a value beyond float32's range "
                                  f"({max(abs(lo), abs(hi)):g} > {_F32_MAX:g}); store it as float64")
            stored[name] = np.dtype(np.float32)
        elif dt == np.int64 and name in ranges.ranges:
            base = cols_mod.offset_base(*ranges.ranges[name])
            if base is not None:
                offsets[name] = base
                stored[name] = np.dtype(np.int32)
    return EdgeEncoding(indptr=cols_mod.index_dtype(max_part_edges), src=cols_mod.index_dtype(max(num_nodes - 1, 0)),
                        stored=stored, offsets=offsets,
                        float32=tuple(n for n in float32 if np.dtype(columns.get(n, np.int64)).kind == "f"))
