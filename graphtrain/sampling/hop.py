"""The one-hop boundary between the sampler and the graph's owners: :class:`HopSampler`.

:class:`~graphtrain.sampling.neighbor.NeighborSampler` owns everything above one hop (keys,
dedup, relabel, the hop loop, mini-batch assembly); a :class:`HopSampler` owns the graph and turns a
frontier of global node IDs plus their stream keys (and time bounds) into sampled in-edges.

- :class:`LocalHopSampler` samples one in-memory or memory-mapped :class:`~graphtrain.graph.CSCGraph`
  (a whole graph, one partition, or a contiguous run of partitions) with a kernel backend.
- :class:`~graphtrain.sampling.partitioned.PartitionedHopSampler` samples a whole dataset in one
  process, partition by partition.
- :class:`~graphtrain.sampling.distributed_sampler.DistributedHopSampler` splits the frontier by
  owner worker with the :class:`~graphtrain.partition.book.RangePartitionBook`, sends each owner
  its entries with their keys and bounds, and concatenates the answers back in frontier order.
  Because an entry's result depends only on (graph, key, bound, options) -- see
  :mod:`graphtrain.kernels` -- this returns exactly what one process holding the whole graph
  would have returned. What sampling a batch *together* needs beyond this contract (owned seeds,
  agreement, the first and last hop) is its own interface,
  :class:`~graphtrain.sampling.distributed_sampler.CollectiveHopSampler`.

The contract a new backend implements is small: :attr:`HopSampler.num_global_nodes`,
:meth:`HopSampler.check_options`, :meth:`HopSampler.check_nodes` and :meth:`HopSampler.sample_hop`
(and :attr:`HopSampler.concurrent_safe` when concurrent calls are not safe).
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Dict, NamedTuple, Optional

import numpy as np

from graphtrain.columns import column_base, stored_array
from graphtrain.errors import ConfigError
from graphtrain.graph import TIME, CSCGraph
from graphtrain.kernels import get_backend, resolve_backend
from graphtrain.kernels.hop_graph import HopGraph, with_weight_prefix
from graphtrain.log import get_logger
from graphtrain.sampling.minibatch import MiniBatch

log = get_logger("sampling")

TEMPORAL_MODES = ("uniform", "recent")
_CHECK_CHUNK = 1 << 24  # edges per chunk when validating a (memory-mapped) weight column


@dataclass(frozen=True)
class HopOptions:
    """How to sample one hop (small and picklable: it travels with distributed requests).

    Attributes:
        fanout: edges per frontier entry (>= 1).
        replace: draw with replacement.
        weight: name of the edge column to sample proportionally to, or None (uniform).
        temporal: None, ``"uniform"`` (uniform among edges no later than the entry's time bound)
            or ``"recent"`` (the ``fanout`` most recent such edges).
        strict: temporal edges must be strictly earlier than the bound.
    """

    fanout: int
    replace: bool = False
    weight: Optional[str] = None
    temporal: Optional[str] = None
    strict: bool = False


class HopResult(NamedTuple):
    """Edges sampled for a frontier, entry after entry (CSR-style).

    Attributes:
        counts: int64 ``[n]`` edges sampled for each frontier entry.
        nbr: int64 ``[counts.sum()]`` global source ID of each sampled edge.
        eid: int64 ``[counts.sum()]`` global edge ID of each sampled edge.
    """

    counts: np.ndarray
    nbr: np.ndarray
    eid: np.ndarray


class HopSampler(ABC):
    """Samples the in-edges of a frontier of global node IDs (see the module docstring)."""

    @property
    def concurrent_safe(self) -> bool:
        """Whether several threads may call :meth:`sample_hop` at once (True unless a subclass says otherwise)."""
        return True

    @property
    @abstractmethod
    def num_global_nodes(self) -> int:
        """Number of nodes in the whole graph (bound on valid node IDs)."""

    @abstractmethod
    def check_options(self, options: HopOptions) -> None:
        """Raise :class:`ConfigError` if ``options`` cannot be served (missing column, bad weights, ...)."""

    @abstractmethod
    def check_nodes(self, global_nodes: np.ndarray) -> None:
        """Raise :class:`ConfigError` if some of these (in-range) node IDs cannot be expanded here."""

    @abstractmethod
    def sample_hop(self, global_nodes: np.ndarray, keys: np.ndarray, node_time: Optional[np.ndarray], options: HopOptions) -> HopResult:
        """Sample in-edges of each frontier entry.

        Args:
            global_nodes: int64 ``[n]`` global IDs of the frontier entries (repeats allowed).
            keys: uint64 ``[n]`` stream key of each entry (see ``NeighborSampler``).
            node_time: int64 ``[n]`` time bound of each entry when ``options.temporal``, else None.
            options: how to sample.
        """


_NARROW = {np.dtype(np.int64): np.dtype(np.int32), np.dtype(np.float64): np.dtype(np.float32)}


def _kernel_array(a, dtype) -> np.ndarray:
    """``a`` as the kernels read it: as stored (no copy) when its dtype is ``dtype`` or the compact
    one (int32 / float32, see :mod:`graphtrain.columns`), else converted to ``dtype``."""
    a = np.asarray(a)
    return a if a.dtype in (np.dtype(dtype), _NARROW[np.dtype(dtype)]) else a.astype(dtype)


def _check_weights(column: np.ndarray, name: str, edge_start: int) -> None:
    for start in range(0, column.shape[0], _CHECK_CHUNK):
        chunk = np.asarray(column[start : start + _CHECK_CHUNK], dtype=np.float64)
        bad = ~np.isfinite(chunk) | (chunk < 0)
        if bad.any():
            i = int(np.argmax(bad))
            raise ConfigError(
                f"edge column {name!r} must hold finite weights >= 0; edge {edge_start + start + i} has {float(chunk[i])}"
            )


class LocalHopSampler(HopSampler):
    """Samples one :class:`CSCGraph` held by this process (in memory or memory-mapped).

    Args:
        graph: the graph; its frontier nodes must lie in ``[graph.node_start, graph.node_stop)``.
        backend: kernel backend (``"reference" | "cpu" | "cuda" | "auto"``).

    A frontier node outside the graph's node range (e.g. a source in another partition) raises
    :class:`ConfigError`; expanding those is the distributed sampler's job.
    """

    def __init__(self, graph: CSCGraph, backend: str = "auto"):
        if not isinstance(graph, CSCGraph):
            raise ConfigError(f"LocalHopSampler needs a CSCGraph, got {type(graph).__name__}")
        self.graph = graph
        self.backend = resolve_backend(backend)
        self._kernels = get_backend(self.backend)
        self._prepared: Dict[Optional[str], HopGraph] = {}
        self._checked_weights: set = set()

    @property
    def num_global_nodes(self) -> int:
        return self.graph.num_global_nodes

    def check_options(self, options: HopOptions) -> None:
        g = self.graph
        if options.temporal is not None:
            t = g.edge_attrs.get(TIME)
            if t is None:
                raise ConfigError("temporal sampling needs a 'time' edge column; this graph has none")
            if t.dtype.kind not in "iu":
                raise ConfigError(f"the 'time' edge column must hold integers, got dtype {t.dtype}")
        if options.weight is not None and options.weight not in self._checked_weights:
            col = g.edge_attrs.get(options.weight)
            if col is None:
                have = sorted(g.edge_attrs) or "none"
                raise ConfigError(f"weighted sampling needs edge column {options.weight!r}; this graph has {have}")
            if col.dtype.kind not in "iuf":
                raise ConfigError(f"edge column {options.weight!r} must be numeric, got dtype {col.dtype}")
            _check_weights(col, options.weight, g.edge_start)
            self._checked_weights.add(options.weight)

    def _hop_graph(self, weight: Optional[str]) -> HopGraph:
        hg = self._prepared.get(weight)
        if hg is None:
            g = self.graph
            time = g.edge_attrs.get(TIME)
            hg = HopGraph(
                indptr=_kernel_array(g.indptr, np.int64),
                src=_kernel_array(g.src, np.int64),
                edge_start=g.edge_start,
                weight=None if weight is None else _kernel_array(g.edge_attrs[weight], np.float64),
                time=None if time is None else _kernel_array(stored_array(time), np.int64),
                time_sorted=bool(g.time_sorted),
                time_base=column_base(time),
            )
            if not hg.time_sorted and time is not None:
                log.info("edge times are not sorted within destinations: temporal sampling scans every in-edge")
            hg = self._kernels.prepare(with_weight_prefix(hg))
            self._prepared[weight] = hg
        return hg

    def check_nodes(self, global_nodes: np.ndarray) -> None:
        g = self.graph
        if global_nodes.size == 0:
            return
        lo, hi = int(global_nodes.min()), int(global_nodes.max())
        if lo < g.node_start or hi >= g.node_stop:
            bad = global_nodes[(global_nodes < g.node_start) | (global_nodes >= g.node_stop)][0]
            raise ConfigError(
                f"node {int(bad)} is outside this graph's node range [{g.node_start}, {g.node_stop}); "
                "a LocalHopSampler expands only its own nodes (remote nodes need the distributed sampler)"
            )

    @property
    def samples_whole_batches(self) -> bool:
        """Whether :meth:`sample_batch` is available (the ``cpu`` backend)."""
        return self.backend == "cpu"

    def sample_batch(self, seeds: np.ndarray, seed_time: Optional[np.ndarray], fanouts, options: HopOptions,
                     batch_key) -> MiniBatch:
        """Every hop of a mini-batch in one serial, GIL-free kernel call (``cpu`` backend; see
        :func:`graphtrain.kernels.cpu.sample_batch`): the batch hop-by-hop sampling gives with the
        same stream keys, without returning to Python between hops, so several threads sampling
        whole batches at once do not queue for the GIL.

        Not part of the :class:`HopSampler` contract: an optimisation of this class for
        ``NodeLoader(sampling_threads=T)`` in one process (which
        :class:`~graphtrain.sampling.neighbor.NeighborSampler` uses on one Numba thread). Training
        does not use it: its workers sample through the distributed sampler, whose hops are
        collectives.

        Args:
            seeds, seed_time: validated int64 ``[B]`` seeds (in this graph's range) and their times
                (temporal) or None.
            fanouts: fanout of each hop; options: the hops' options (its ``fanout`` is not used).
            batch_key: ``combine(seed_key(seed), batch_index)``.
        """
        from graphtrain.kernels import cpu

        if not self.samples_whole_batches:
            raise ConfigError(f"whole-batch sampling needs the cpu backend; this sampler uses {self.backend!r}")
        temporal = options.temporal is not None
        if temporal and seed_time is None:
            raise ConfigError("temporal sampling needs a time bound for every frontier entry")
        g = self.graph
        got = cpu.sample_batch(self._hop_graph(options.weight), g.node_start, g.node_stop, seeds,
                               seed_time if temporal else None, np.asarray(fanouts, dtype=np.int64), batch_key,
                               replace=options.replace, use_weight=options.weight is not None, strict=options.strict,
                               recent=options.temporal == "recent")
        if isinstance(got, int):  # a frontier node outside this graph: the error hop-by-hop sampling raises
            self.check_nodes(np.array([got], dtype=np.int64))
            raise AssertionError(f"whole-batch sampling stopped at node {got}, which is in range")
        return MiniBatch(n_id=got.n_id, edge_index=np.stack([got.edge_src, got.edge_dst]), e_id=got.e_id,
                         num_sampled_nodes=got.num_sampled_nodes, num_sampled_edges=got.num_sampled_edges,
                         node_time=got.node_time)

    def sample_hop(self, global_nodes, keys, node_time, options: HopOptions) -> HopResult:
        global_nodes = np.asarray(global_nodes, dtype=np.int64)
        self.check_nodes(global_nodes)
        hg = self._hop_graph(options.weight)
        temporal = options.temporal is not None
        if temporal and node_time is None:
            raise ConfigError("temporal sampling needs a time bound for every frontier entry")
        counts, nbr, eid = self._kernels.sample_hop(
            hg,
            global_nodes - self.graph.node_start,
            keys,
            options.fanout,
            replace=options.replace,
            use_weight=options.weight is not None,
            time_bound=node_time if temporal else None,
            strict=options.strict,
            recent=options.temporal == "recent",
        )
        return HopResult(counts, nbr, eid)
