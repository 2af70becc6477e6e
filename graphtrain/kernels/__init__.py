"""Sampling kernels: one contract, three backends (``reference`` NumPy, ``cpu`` Numba, ``cuda`` numba.cuda).

Pick one with :func:`get_backend` (``"reference" | "cpu" | "cuda" | "auto"``; ``auto`` is ``cuda``
when a real GPU is usable, else ``cpu``). Every backend module provides:

``prepare(graph: HopGraph) -> HopGraph``
    The graph's arrays where the backend reads them (the CUDA backend copies them to the device
    once; the others return the graph unchanged).

``sample_hop(graph, local_dst, keys, fanout, replace=False, use_weight=False, time_bound=None, strict=False, recent=False)``
    **The one-hop contract** (the unit a distributed sampler ships to a partition's owner). For
    ``n`` frontier entries with *local* destination indices ``local_dst`` (int64 ``[n]``, in
    ``[0, graph.num_nodes)``), stream keys ``keys`` (uint64 ``[n]``) and, in temporal mode, time
    bounds ``time_bound`` (int64 ``[n]``), returns ``(counts, nbr, eid)``: int64 ``[n]`` edges
    sampled per entry, and int64 ``[counts.sum()]`` global source IDs and global edge IDs,
    entry after entry (CSR-style). Draw ``j`` of an entry uses ``rand_*(keys[i], j)`` only, so the
    result for an entry depends on (graph, key, bound, options) and on nothing else: not on the
    other entries, the thread count or the device. The algorithms (uniform with/without
    replacement, weighted, temporal uniform/recent) are in :mod:`graphtrain.kernels.hop_body`.

``unique_relabel(prev_ids, cand_ids, prev_times=None, cand_times=None) -> (new_index, local)``
    Number the candidates of a hop against the batch's nodes so far (first-occurrence order,
    ``(id, time)`` pairs in temporal mode); see :func:`graphtrain.kernels.reference.unique_relabel`.

``gather_rows(table, rows) -> table[rows]``
    Rows of a (memory-mapped) node table.

All backends return identical arrays for identical inputs (tested). Inputs are validated by the
public API (:mod:`graphtrain.sampling`), never inside kernels.
"""
from __future__ import annotations

import os
from types import ModuleType

from graphtrain.errors import ConfigError
from graphtrain.kernels.hop_graph import HopGraph

BACKENDS = ("reference", "cpu", "cuda", "auto")


def cuda_usable() -> bool:
    """A real CUDA GPU is usable by numba (the simulator does not count)."""
    if os.environ.get("NUMBA_ENABLE_CUDASIM", "0") not in ("", "0"):
        return False
    try:
        from numba import cuda

        return bool(cuda.is_available())
    except Exception:  # numba without CUDA support, driver errors, ...
        return False


def resolve_backend(name: str) -> str:
    """The concrete backend name for ``name`` (``auto`` resolved); raises ConfigError for unknown names."""
    if name not in BACKENDS:
        raise ConfigError(f"backend must be one of {BACKENDS}, got {name!r}")
    if name == "auto":
        return "cuda" if cuda_usable() else "cpu"
    return name


def get_backend(name: str = "auto") -> ModuleType:
    """The kernel module of backend ``name`` (see the module docstring for what it provides)."""
    name = resolve_backend(name)
    if name == "reference":
        from graphtrain.kernels import reference as mod
    elif name == "cpu":
        from graphtrain.kernels import cpu as mod
    else:
        from graphtrain.kernels import cuda as mod
    return mod


__all__ = ["BACKENDS", "HopGraph", "cuda_usable", "get_backend", "resolve_backend"]
