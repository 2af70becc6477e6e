"""Multi-hop neighbour sampling: seed nodes (and seed times) -> one :class:`MiniBatch`.

Per hop, the frontier (the nodes first reached at the previous hop; the seeds at hop 1) is handed
to a :class:`~graphtrain.sampling.hop.HopSampler` with one stream key per entry::

    key = combine(combine(combine(seed_key(seed), batch_index), hop), global_id)   # then, in
    key = combine(key, time_bound)                                                 # temporal mode

Keys depend on global IDs (and times), never on positions or threads, so the same
``(seed, batch_index, seeds, seed_time)`` gives the same mini-batch with any thread count, on any
backend, and with the frontier split across partitions by a distributed hop sampler.

The sampled sources are then numbered against the batch's nodes so far (unique + relabel kernel):
seeds keep positions ``[0, batch_size)``, new nodes follow in first-occurrence order (PyG hop order,
see :mod:`graphtrain.sampling.minibatch`). In temporal mode a node is the pair (global ID, time
bound): every node reached from a seed carries that seed's time, and nodes reached from seeds with
different times are separate entries.
"""
from __future__ import annotations

import numbers
from typing import List, Optional, Sequence, Union

import numba
import numpy as np

from graphtrain.errors import ConfigError
from graphtrain.graph import CSCGraph
from graphtrain.kernels import get_backend, resolve_backend
from graphtrain.kernels.rng import combine_np, seed_key
from graphtrain.partition.view import PartitionedGraph
from graphtrain.sampling.distributed_sampler import CollectiveHopSampler
from graphtrain.sampling.hop import TEMPORAL_MODES, HopOptions, HopSampler, LocalHopSampler
from graphtrain.sampling.minibatch import MiniBatch
from graphtrain.sampling.partitioned import PartitionedHopSampler


def frontier_keys(batch_key, hop: int, ids: np.ndarray, times: Optional[np.ndarray] = None) -> np.ndarray:
    """Stream key (uint64 ``[n]``) of each frontier entry (formula in the module docstring).

    Args:
        batch_key: ``combine(seed_key(seed), batch_index)``.
        hop: 0-based hop number.
        ids: int64 global node IDs of the entries.
        times: int64 time bounds of the entries (temporal mode) or None.
    """
    keys = combine_np(combine_np(np.uint64(batch_key), np.uint64(hop)), np.asarray(ids, dtype=np.int64).view(np.uint64))
    if times is not None:
        keys = combine_np(keys, np.asarray(times, dtype=np.int64).view(np.uint64))
    return keys


def _is_int(x) -> bool:
    return isinstance(x, numbers.Integral) and not isinstance(x, (bool, np.bool_))


def _int_array(values, what: str) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ConfigError(f"{what} must be a 1-D array, got shape {arr.shape}")
    if arr.size and arr.dtype.kind not in "iu":
        raise ConfigError(f"{what} must be integers, got dtype {arr.dtype}")
    if arr.dtype.kind == "u" and arr.size and int(arr.max()) > np.iinfo(np.int64).max:
        raise ConfigError(f"{what} exceed the int64 range")
    return arr.astype(np.int64, copy=False)


class NeighborSampler:
    """Sample multi-hop in-neighbourhoods of seed nodes into :class:`MiniBatch` objects.

    Args:
        graph: a :class:`CSCGraph` (sampled by a :class:`LocalHopSampler` with ``backend``), a whole
            dataset's :class:`~graphtrain.partition.view.PartitionedGraph` (``open_dataset(d).graph()``,
            sampled partition by partition, see :mod:`graphtrain.sampling.partitioned`) or any
            :class:`HopSampler` (e.g. the distributed one).
        fanouts: edges to sample per node at each hop, e.g. ``[15, 10]`` (each >= 1).
        replace: sample with replacement.
        weight: edge column to sample proportionally to (finite, >= 0), or None for uniform.
        temporal: None, ``"uniform"`` or ``"recent"``: only edges with time <= the seed's time
            (``<`` with ``strict``); uniformly among them, or the most recent ones.
        strict: temporal edges must be strictly earlier than the seed time.
        seed: user seed of all random draws.
        backend: kernel backend for sampling a CSCGraph and for unique + relabel
            (``"reference" | "cpu" | "cuda" | "auto"``).

    Raises:
        ConfigError: invalid fanouts or option combination, missing/invalid edge columns.
    """

    def __init__(
        self,
        graph: Union[CSCGraph, PartitionedGraph, HopSampler],
        fanouts: Sequence[int],
        *,
        replace: bool = False,
        weight: Optional[str] = None,
        temporal: Optional[str] = None,
        strict: bool = False,
        seed: int = 0,
        backend: str = "auto",
    ):
        if isinstance(fanouts, (str, bytes)) or not isinstance(fanouts, Sequence) and not isinstance(fanouts, np.ndarray):
            raise ConfigError(f"fanouts must be a list of positive integers, one per hop, got {fanouts!r}")
        fanouts = list(fanouts)
        if not fanouts:
            raise ConfigError("fanouts must name at least one hop, e.g. [15, 10]")
        for hop, k in enumerate(fanouts):
            if not _is_int(k) or k < 1:
                raise ConfigError(f"fanout of hop {hop + 1} must be a positive integer, got {k!r}")
            if k >= 2**31:
                raise ConfigError(f"fanout of hop {hop + 1} is too large ({k}); the limit is 2**31 - 1")
        if temporal not in (None,) + TEMPORAL_MODES:
            raise ConfigError(f"temporal must be None, 'uniform' or 'recent', got {temporal!r}")
        if strict and temporal is None:
            raise ConfigError("strict=True only applies to temporal sampling; set temporal='uniform' or 'recent'")
        if temporal == "recent" and replace:
            raise ConfigError("temporal='recent' takes the most recent edges; it cannot sample with replacement")
        if temporal == "recent" and weight is not None:
            raise ConfigError("temporal='recent' takes the most recent edges; it cannot be weighted")
        if weight is not None and not isinstance(weight, str):
            raise ConfigError(f"weight must be the name of an edge column, got {weight!r}")
        if not _is_int(seed):
            raise ConfigError(f"seed must be an integer, got {seed!r}")
        self.backend = resolve_backend(backend)
        if isinstance(graph, HopSampler):
            self.hop_sampler = graph
        elif isinstance(graph, CSCGraph):
            self.hop_sampler = LocalHopSampler(graph, self.backend)
        elif isinstance(graph, PartitionedGraph):  # one partition is one CSCGraph: keep its whole-batch path
            self.hop_sampler = (LocalHopSampler(graph.parts[0], self.backend) if graph.num_parts == 1
                                else PartitionedHopSampler(graph, self.backend))
        else:
            raise ConfigError(f"graph must be a CSCGraph, a PartitionedGraph or a HopSampler, got {type(graph).__name__}")
        self.fanouts: List[int] = [int(k) for k in fanouts]
        self.temporal = temporal
        self.seed = int(seed)
        self._options = [HopOptions(k, bool(replace), weight, temporal, bool(strict)) for k in self.fanouts]
        for opt in self._options[:1]:  # all hops share the columns; one check covers them
            self.hop_sampler.check_options(opt)
        self._kernels = get_backend(self.backend)
        self._root_key = seed_key(self.seed)
        # a process-local graph sampled on one Numba thread: a whole batch per kernel call
        self._whole_batch = (self.backend == "cpu" and isinstance(self.hop_sampler, LocalHopSampler)
                             and self.hop_sampler.samples_whole_batches)
        # processes sampling each batch together: the batch-level hooks (first and last hop, batch start)
        self._collective = self.hop_sampler if isinstance(self.hop_sampler, CollectiveHopSampler) else None

    @property
    def num_hops(self) -> int:
        return len(self.fanouts)

    def check_seeds(self, seeds, seed_time=None):
        """Validate and cast seeds (and seed times); return them as int64 arrays.

        Raises:
            ConfigError: empty seeds, non-integers, IDs out of range or not expandable here, seed
                times missing in temporal mode (or given outside it), length mismatch.
        """
        seeds = _int_array(seeds, "seeds")
        if seeds.size == 0:
            raise ConfigError("seeds must not be empty")
        n = self.hop_sampler.num_global_nodes
        bad = (seeds < 0) | (seeds >= n)
        if bad.any():
            raise ConfigError(f"seed node {int(seeds[bad][0])} is out of range [0, {n})")
        self.hop_sampler.check_nodes(seeds)
        if self.temporal is None:
            if seed_time is not None:
                raise ConfigError("seed_time was given but the sampler is not temporal (pass temporal='uniform' or 'recent')")
            return seeds, None
        if seed_time is None:
            raise ConfigError(f"temporal sampling needs seed_time: one time per seed ({seeds.size} seeds)")
        seed_time = _int_array(seed_time, "seed_time")
        if seed_time.shape != seeds.shape:
            raise ConfigError(f"seed_time has {seed_time.size} entries for {seeds.size} seeds; give one time per seed")
        return seeds, seed_time

    def sample(self, seeds, seed_time=None, batch_index: int = 0, *, seeds_owned: bool = False) -> MiniBatch:
        """Sample the computation graph of ``seeds``.

        Args:
            seeds: int ``[B]`` global node IDs (repeats allowed; each keeps its position).
            seed_time: int ``[B]`` time of each seed (temporal mode only): the bound for every edge
                sampled on its behalf.
            batch_index: which batch of the run this is (part of the stream keys; a loader numbers
                its batches so every batch of every epoch draws differently).
            seeds_owned: with a :class:`~graphtrain.sampling.distributed_sampler.CollectiveHopSampler`,
                every process sampling together agreed (``agree_all``) that its seeds of this batch
                are nodes it ``owns``: hop 1 then needs no exchange (the batch is the same). Ignored
                by other hop samplers.

        Returns:
            MiniBatch in PyG hop order (``node_time`` set in temporal mode).
        """
        seeds, seed_time = self.check_seeds(seeds, seed_time)
        if not _is_int(batch_index) or batch_index < 0:
            raise ConfigError(f"batch_index must be a non-negative integer, got {batch_index!r}")
        return self._sample(seeds, seed_time, int(batch_index), bool(seeds_owned))

    def _sample(self, seeds: np.ndarray, seed_time: Optional[np.ndarray], batch_index: int,
                seeds_owned: bool = False) -> MiniBatch:
        """:meth:`sample` of validated seeds."""
        temporal = seed_time is not None
        batch_key = combine_np(self._root_key, np.uint64(batch_index))
        if self._whole_batch and numba.get_num_threads() == 1:
            # one serial, GIL-free kernel call for the whole batch (the same arrays as the hop loop
            # below): threads sampling batches side by side then do not queue for the GIL
            return self.hop_sampler.sample_batch(seeds, seed_time, self.fanouts, self._options[0], batch_key)
        ids, times = seeds, seed_time
        collective = self._collective
        if collective is not None:
            collective.begin_batch()
        last = len(self._options) - 1
        src_parts, dst_parts, eid_parts = [], [], []
        num_nodes = [int(seeds.size)]
        num_edges = []
        lo, hi = 0, int(seeds.size)
        for hop, options in enumerate(self._options):
            f_ids = ids[lo:hi]
            f_time = times[lo:hi] if temporal else None
            keys = frontier_keys(batch_key, hop, f_ids, f_time)
            if collective is None:
                sample = self.hop_sampler.sample_hop
            elif hop == 0 and seeds_owned:
                sample = collective.sample_own_hop
            else:
                sample = collective.sample_final_hop if hop == last else collective.sample_hop
            counts, nbr, eid = sample(f_ids, keys, f_time, options)
            cand_time = np.repeat(f_time, counts) if temporal else None
            new_index, local = self._kernels.unique_relabel(ids, nbr, times, cand_time)
            src_parts.append(local)
            dst_parts.append(np.repeat(np.arange(lo, hi, dtype=np.int64), counts))
            eid_parts.append(eid)
            ids = np.concatenate([ids, nbr[new_index]])
            if temporal:
                times = np.concatenate([times, cand_time[new_index]])
            num_nodes.append(int(new_index.size))
            num_edges.append(int(eid.size))
            lo, hi = hi, hi + int(new_index.size)
        edge_index = np.empty((2, sum(num_edges)), dtype=np.int64)
        np.concatenate(src_parts, out=edge_index[0])
        np.concatenate(dst_parts, out=edge_index[1])
        return MiniBatch(
            n_id=ids,
            edge_index=edge_index,
            e_id=np.concatenate(eid_parts),
            num_sampled_nodes=num_nodes,
            num_sampled_edges=num_edges,
            node_time=times,
        )
