"""Iterate shuffled seed batches as mini-batches, sampling ahead in a background thread.

Each epoch shuffles the seeds with a permutation drawn from the counter RNG
(``combine(seed_key(seed), epoch)``), cuts it into batches of ``batch_size`` and samples batch ``b``
of epoch ``e`` with ``batch_index = e * len(loader) + b``: a run is reproducible from
``(seed, epoch)`` alone, and no two batches of a run share random draws.

The kernels release the GIL, so sampling ``prefetch`` batches ahead in a background thread overlaps
with the training step in the main thread. With ``sampling_threads = T > 1``, ``T`` background
threads sample whole batches at once (batch ``b`` always on thread ``b % T``), each with
``1/T`` of the caller's Numba threads: batch-level parallelism, which scales better than splitting
one batch's short kernels across threads (see benchmarks/RESULTS.md). Batches do not depend on
``T``: a batch's draws are keyed by its index, not by the thread that samples it. (Numba's
``workqueue`` threading layer does not allow parallel kernels from two threads at once; the
``omp`` and ``tbb`` layers do.)

``sampling_threads`` is kept for sampling in one process (a local graph or a whole dataset's view),
where it is the measured faster way to use several cores (the "batch-parallel" rows of
benchmarks/RESULTS.md, section "Sampling", from ``benchmarks/bench_sampling.py``). Training does
not use it: its workers' distributed sampler runs every hop as a collective, which must come from
one thread in one order on every worker (it samples ahead with ``prefetch``).
"""
from __future__ import annotations

from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterator, Optional, Sequence

import numpy as np

from graphtrain.errors import ConfigError
from graphtrain.kernels.rng import combine_np, rand_u64_np, seed_key
from graphtrain.sampling.distributed_sampler import CollectiveHopSampler
from graphtrain.sampling.features import LocalNodeData, NodeDataSource
from graphtrain.sampling.minibatch import MiniBatch
from graphtrain.sampling.neighbor import NeighborSampler, _is_int


def _node_data_source(node_data) -> Optional[NodeDataSource]:
    """``node_data`` as a :class:`NodeDataSource`: an opened dataset becomes its node tables."""
    from graphtrain.partition.format import Dataset

    return LocalNodeData.from_dataset(node_data) if isinstance(node_data, Dataset) else node_data


class NodeLoader:
    """Mini-batches of seed nodes, shuffled per epoch, with features and labels attached.

    Args:
        sampler: the neighbour sampler.
        seeds: int ``[S]`` global node IDs to iterate over (e.g. the training nodes).
        batch_size: seeds per batch (>= 1).
        seed_time: int ``[S]`` time of each seed (temporal samplers only).
        node_data: where ``x`` (features of every node of the batch) and ``y`` (labels of the
            seeds) come from: a node-data source, or an opened dataset (``open_dataset(d)``: every
            partition's memory-mapped node table, :meth:`LocalNodeData.from_dataset`); None leaves them unset.
        edge_features: a :class:`~graphtrain.sampling.edge_features.BatchEdgeFeatures`: every batch
            gets its edges' stored columns (``edge_attrs``) and features (``edge_attr``), read by its
            ``e_id`` from where the edges are held; None: neither.
        shuffle: shuffle seeds every epoch (else keep the given order).
        seed: shuffle seed.
        drop_last: drop the last batch if it is smaller than ``batch_size``.
        prefetch: batches sampled ahead in background threads (0 with ``sampling_threads=1``: sample
            in the caller's thread). At least ``sampling_threads`` batches are in flight.
        sampling_threads: background threads sampling batches concurrently (>= 1). More than one
            needs a sampler and node data that serve concurrent calls (process-local ones, not the
            distributed data plane, whose collectives must run in one order on every worker).

    Iterating starts a new epoch (``epoch`` counts them; set it to resume a run).
    """

    def __init__(
        self,
        sampler: NeighborSampler,
        seeds,
        batch_size: int,
        *,
        seed_time=None,
        node_data=None,
        edge_features=None,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = False,
        prefetch: int = 2,
        sampling_threads: int = 1,
    ):
        if not isinstance(sampler, NeighborSampler):
            raise ConfigError(f"sampler must be a NeighborSampler, got {type(sampler).__name__}")
        if not _is_int(batch_size) or batch_size < 1:
            raise ConfigError(f"batch_size must be a positive integer, got {batch_size!r}")
        if not _is_int(prefetch) or prefetch < 0:
            raise ConfigError(f"prefetch must be a non-negative integer, got {prefetch!r}")
        if not _is_int(sampling_threads) or sampling_threads < 1:
            raise ConfigError(f"sampling_threads must be a positive integer, got {sampling_threads!r}")
        node_data = _node_data_source(node_data)
        if sampling_threads > 1 and not (sampler.hop_sampler.concurrent_safe
                                         and (node_data is None or node_data.concurrent_safe)
                                         and (edge_features is None or edge_features.concurrent_safe)):
            raise ConfigError("sampling_threads > 1 needs a process-local sampler and node data; the distributed "
                              "data plane runs its collectives from one thread (use prefetch instead)")
        if not _is_int(seed):
            raise ConfigError(f"seed must be an integer, got {seed!r}")
        self.seeds, self.seed_time = sampler.check_seeds(seeds, seed_time)
        self.sampler = sampler
        self.batch_size = int(batch_size)
        self.node_data = node_data
        self.edge_features = edge_features
        self.shuffle = bool(shuffle)
        self.seed = int(seed)
        self.drop_last = bool(drop_last)
        self.prefetch = int(prefetch)
        self.sampling_threads = int(sampling_threads)
        hop = sampler.hop_sampler
        # processes sampling together: which seeds this one owns (their batches may skip hop 1's exchange)
        self._collective = hop if isinstance(hop, CollectiveHopSampler) else None
        self._owned = (np.asarray(hop.owns(self.seeds), dtype=bool) if self._collective is not None
                       else np.ones(self.seeds.size, dtype=bool))
        self.epoch = 0

    def __len__(self) -> int:
        n = self.seeds.size
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def permutation(self, epoch: int) -> np.ndarray:
        """Order of the seeds in ``epoch`` (identity without shuffling). Seeds the sampler does not
        own come after all owned ones, each group in random order (see :meth:`_iterate`)."""
        n = self.seeds.size
        if not self.shuffle:
            return np.arange(n)
        key = combine_np(seed_key(self.seed), np.uint64(epoch))
        draws = rand_u64_np(key, np.arange(n, dtype=np.uint64))
        if self._owned.all():
            return np.argsort(draws, kind="stable")
        return np.lexsort((draws, ~self._owned))

    def _make(self, epoch: int, b: int, rows: np.ndarray, seeds_owned: bool = False) -> MiniBatch:
        times = None if self.seed_time is None else self.seed_time[rows]
        batch = self.sampler.sample(self.seeds[rows], times, epoch * len(self) + b, seeds_owned=seeds_owned)
        if self.node_data is not None:
            batch.x = self.node_data.features(batch.n_id)
            batch.y = self.node_data.labels(batch.seeds)
        if self.edge_features is not None:
            self.edge_features.attach(batch)
        return batch

    def __iter__(self) -> Iterator[MiniBatch]:
        epoch = self.epoch
        self.epoch += 1
        return self.batches(epoch)

    def batches(self, epoch: int, start: int = 0, stop: Optional[int] = None) -> Iterator[MiniBatch]:
        """Batches ``start, start + 1, ..., stop - 1`` of ``epoch`` (``stop`` None: to the epoch's end):
        what iterating that epoch yields, from ``start`` on.

        A run resumed from a checkpoint taken after batch ``start - 1`` continues here with exactly
        the batches the uninterrupted run would have drawn. ``stop`` ends the epoch early without
        sampling ahead past it (a training step budget): closing the iterator early instead could
        leave a batch's collectives half-run on some workers.
        """
        n = len(self)
        stop = n if stop is None else stop
        if (not _is_int(epoch) or epoch < 0 or not _is_int(start) or not _is_int(stop)
                or not 0 <= start <= stop <= n):
            raise ConfigError(f"epoch must be >= 0 and 0 <= start <= stop <= {n}, got epoch={epoch!r}, "
                              f"start={start!r}, stop={stop!r}")
        return self._iterate(int(epoch), int(start), int(stop))

    def _iterate(self, epoch: int, start: int, stop: Optional[int] = None) -> Iterator[MiniBatch]:
        """The batches' jobs, and which batches have only owned seeds on every sampling process (a
        collective for a distributed sampler, run here, in the calling thread, before any batch):
        those skip the first hop's exchange. Unowned seeds -- a distributed worker's share of other
        workers' nodes, dealt for balance -- come last in the epoch, so most batches have none."""
        perm = self.permutation(epoch)
        stop = len(self) if stop is None else stop
        bounds = [(b * self.batch_size, min((b + 1) * self.batch_size, self.seeds.size)) for b in range(start, stop)]
        owned = self._owned[perm]
        mine = np.array([bool(owned[a:z].all()) for a, z in bounds], dtype=bool)
        # no batches left (the same on every worker: all run the same batches): nothing to agree on
        everywhere = self._collective.agree_all(mine) if self._collective is not None and mine.size else mine
        jobs = [(epoch, b, perm[a:z], bool(ok)) for b, (a, z), ok in zip(range(start, stop), bounds, everywhere)]
        return run_ahead(self._make, jobs, self.prefetch, self.sampling_threads)


def run_ahead(make: Callable, jobs: Sequence[tuple], ahead: int, threads: int = 1) -> Iterator:
    """``make(*job)`` of each job, yielded in job order, computed up to ``ahead`` jobs in advance.

    Args:
        make: the function to run (e.g. sampling one batch).
        jobs: argument tuples, one per call.
        ahead: results computed before they are asked for (0 with ``threads == 1``: run in the
            caller's thread, nothing in advance); raised to ``threads`` when smaller.
        threads: background threads; job ``i`` runs on thread ``i % threads``, so each thread's
            sequence of jobs is fixed. Each thread gets ``max(1, N // threads)`` Numba threads,
            ``N`` being the caller's (Numba's thread count is per thread; without this a background
            thread would use every core on top of the caller).
    """
    if threads == 1 and ahead == 0:
        for job in jobs:
            yield make(*job)
        return
    import numba

    ahead = max(ahead, threads)
    numba_threads = max(1, numba.get_num_threads() // threads)
    pools = [ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"graphtrain-loader-{k}",
                                initializer=numba.set_num_threads, initargs=(numba_threads,)) for k in range(threads)]
    pending: deque = deque()
    try:
        for i, job in enumerate(jobs):
            pending.append(pools[i % threads].submit(make, *job))
            if len(pending) > ahead:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        for fut in pending:
            fut.cancel()
        for pool in pools:
            pool.shutdown(wait=True)
