"""Iterate shuffled seed batches as mini-batches, sampling ahead in a background thread.

Each epoch shuffles the seeds with a permutation drawn from the counter RNG
(``combine(seed_key(seed), epoch)``), cuts it into batches of ``batch_size`` and samples batch ``b``
of epoch ``e`` with ``batch_index = e * len(loader) + b``: a run is reproducible from
``(seed, epoch)`` alone, and no two batches of a run share random draws.

The kernels release the GIL, so sampling ``prefetch`` batches ahead in one worker thread overlaps
with the training step in the main thread. (Numba's ``workqueue`` threading layer does not allow
parallel kernels from two threads at once; the ``omp`` and ``tbb`` layers do.)
"""
from __future__ import annotations

from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import Iterator, Optional

import numpy as np

from graphtrain.errors import ConfigError
from graphtrain.kernels.rng import combine_np, rand_u64_np, seed_key
from graphtrain.sampling.features import NodeDataSource
from graphtrain.sampling.minibatch import MiniBatch
from graphtrain.sampling.neighbor import NeighborSampler, _is_int


class NodeLoader:
    """Mini-batches of seed nodes, shuffled per epoch, with features and labels attached.

    Args:
        sampler: the neighbour sampler.
        seeds: int ``[S]`` global node IDs to iterate over (e.g. the training nodes).
        batch_size: seeds per batch (>= 1).
        seed_time: int ``[S]`` time of each seed (temporal samplers only).
        node_data: where ``x`` (features of every node of the batch) and ``y`` (labels of the
            seeds) come from; None leaves them unset.
        shuffle: shuffle seeds every epoch (else keep the given order).
        seed: shuffle seed.
        drop_last: drop the last batch if it is smaller than ``batch_size``.
        prefetch: batches sampled ahead in a background thread (0: sample in the caller's thread).

    Iterating starts a new epoch (``epoch`` counts them; set it to resume a run).
    """

    def __init__(
        self,
        sampler: NeighborSampler,
        seeds,
        batch_size: int,
        *,
        seed_time=None,
        node_data: Optional[NodeDataSource] = None,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = False,
        prefetch: int = 2,
    ):
        if not isinstance(sampler, NeighborSampler):
            raise ConfigError(f"sampler must be a NeighborSampler, got {type(sampler).__name__}")
        if not _is_int(batch_size) or batch_size < 1:
            raise ConfigError(f"batch_size must be a positive integer, got {batch_size!r}")
        if not _is_int(prefetch) or prefetch < 0:
            raise ConfigError(f"prefetch must be a non-negative integer, got {prefetch!r}")
        if not _is_int(seed):
            raise ConfigError(f"seed must be an integer, got {seed!r}")
        self.seeds, self.seed_time = sampler.check_seeds(seeds, seed_time)
        self.sampler = sampler
        self.batch_size = int(batch_size)
        self.node_data = node_data
        self.shuffle = bool(shuffle)
        self.seed = int(seed)
        self.drop_last = bool(drop_last)
        self.prefetch = int(prefetch)
        self.epoch = 0

    def __len__(self) -> int:
        n = self.seeds.size
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def permutation(self, epoch: int) -> np.ndarray:
        """Order of the seeds in ``epoch`` (identity without shuffling)."""
        n = self.seeds.size
        if not self.shuffle:
            return np.arange(n)
        key = combine_np(seed_key(self.seed), np.uint64(epoch))
        return np.argsort(rand_u64_np(key, np.arange(n, dtype=np.uint64)), kind="stable")

    def _make(self, epoch: int, b: int, rows: np.ndarray) -> MiniBatch:
        times = None if self.seed_time is None else self.seed_time[rows]
        batch = self.sampler._sample(self.seeds[rows], times, epoch * len(self) + b)
        if self.node_data is not None:
            batch.x = self.node_data.features(batch.n_id)
            batch.y = self.node_data.labels(batch.seeds)
        return batch

    def __iter__(self) -> Iterator[MiniBatch]:
        epoch = self.epoch
        self.epoch += 1
        perm = self.permutation(epoch)
        jobs = [(epoch, b, perm[b * self.batch_size : (b + 1) * self.batch_size]) for b in range(len(self))]
        if self.prefetch == 0:
            for job in jobs:
                yield self._make(*job)
            return
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="graphtrain-loader")
        pending: deque = deque()
        try:
            for job in jobs:
                pending.append(pool.submit(self._make, *job))
                if len(pending) > self.prefetch:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for fut in pending:
                fut.cancel()
            pool.shutdown(wait=True)
