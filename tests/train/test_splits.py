"""Stratified roles, dealing seeds out evenly, and padding to equal batch counts."""
import threading
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import numpy as np
import pytest

from graphtrain.comm import Exchange
from graphtrain.errors import ConfigError
from graphtrain.partition import open_dataset
from graphtrain.partition.partitioner import partition_arrays
from graphtrain.split import stratified_roles
from graphtrain.train.splits import balanced_chunk, class_counts, pad_to_batches
from graphtrain.train.worker import _Context


def _roles_by_partition(labels, bounds, fractions=(0.7, 0.15, 0.15), seed=0):
    counts = np.array([class_counts(labels[a:b], 3) for a, b in zip(bounds[:-1], bounds[1:])])
    before = np.cumsum(counts, axis=0) - counts
    return np.concatenate([stratified_roles(labels[a:b], a, before[p], fractions, seed)
                           for p, (a, b) in enumerate(zip(bounds[:-1], bounds[1:]))])


def test_stratified_roles_are_exact_per_class_and_spread_over_partitions():
    rs = np.random.default_rng(0)
    labels = rs.choice([-1, 0, 0, 0, 1, 2], 5000)
    bounds = [0, 700, 700, 2100, 3900, 5000]
    roles = _roles_by_partition(labels, bounds)
    assert np.all(roles[labels < 0] == -1)
    for c in range(3):
        n = int((labels == c).sum())
        r = roles[labels == c]
        n_train = n * 7 // 10
        assert (r == 0).sum() == n_train
        assert (r == 1).sum() == (n - n_train) * 15 // 30  # val among the rest: f_val / (1 - f_train)
        assert (r == 2).sum() == n - n_train - (r == 1).sum()
        for a, b in zip(bounds[:-1], bounds[1:]):  # every partition gets its share (+-1)
            in_part = labels[a:b] == c
            if in_part.sum() > 20:
                share = (roles[a:b][in_part] == 0).mean()
                assert abs(share - 0.7) < 0.05
    # seeded: another seed picks other nodes with the same counts
    other = _roles_by_partition(labels, bounds, seed=1)
    assert (other == 0).sum() == (roles == 0).sum() and np.any(other != roles)


class _ThreadExchange:
    """The one collective ``_Context.roles`` makes (``all_reduce_sum``), among ``W`` threads."""

    def __init__(self, rank, slots, barrier):
        self.rank, self.world_size, self._slots, self._barrier = rank, len(slots), slots, barrier

    def all_reduce_sum(self, values):
        self._slots[self.rank] = np.array(values)
        self._barrier.wait()
        total = np.sum(self._slots, axis=0)
        self._barrier.wait()  # nobody overwrites a slot before every worker has summed
        return total


def _roles_of_workers(ds, runs, fractions=(0.7, 0.15, 0.15), seed=0):
    """Every worker's roles as ``_Context.roles`` computes them for its run of partitions
    ``[runs[w], runs[w + 1])``, concatenated by rank (each worker in a thread, counts all-reduced)."""
    world = len(runs) - 1
    slots, barrier = [None] * world, threading.Barrier(world, timeout=30)
    cfg = SimpleNamespace(split_fractions=fractions, seed=seed)
    out = [None] * world

    def work(rank):
        ctx = SimpleNamespace(dataset=ds, shard=SimpleNamespace(parts=list(range(runs[rank], runs[rank + 1]))),
                              num_classes=ds.meta.node_schema.num_classes, cfg=cfg,
                              exchange=_ThreadExchange(rank, slots, barrier))
        out[rank] = _Context.roles(ctx)

    with ThreadPoolExecutor(world) as pool:
        list(pool.map(work, range(world)))  # re-raises a worker's error
    return np.concatenate(out)


@pytest.fixture(scope="module")
def four_part_dataset(tmp_path_factory):
    """2000 nodes in 4 partitions (about 500 each), 3 classes and unlabelled (-1) nodes, no stored split."""
    rs = np.random.default_rng(1)
    raw = rs.choice(10**9, 2000, replace=False)
    src, dst = raw[rs.integers(0, 2000, 8000)], raw[rs.integers(0, 2000, 8000)]
    root = tmp_path_factory.mktemp("split-ds") / "ds"
    partition_arrays(src, dst, root, 4, node_ids=raw, node_labels=rs.choice([-1, 0, 0, 0, 1, 2], 2000), method="ldg")
    return open_dataset(root)


def test_roles_do_not_depend_on_how_partitions_are_grouped(four_part_dataset):
    """The workers' roles (worker.py's path: per partition, class counts all-reduced) are the same
    whichever contiguous runs of partitions the workers serve: the split depends on the dataset and
    the seed only, as docs/training.md says -- the same on 1, 2 or 4 workers."""
    ds = four_part_dataset
    bounds = [ds.book.node_range(p)[0] for p in range(4)] + [ds.meta.num_nodes]
    assert np.all(np.diff(bounds) > 300)  # four real partitions
    labels = np.concatenate([np.asarray(ds.partition(p).labels) for p in range(4)])
    expected = _roles_by_partition(labels, bounds)
    assert set(np.unique(expected)) == {-1, 0, 1, 2}  # every role occurs: the comparisons below are not vacuous
    groupings = {(0, 4), (0, 2, 4), (0, 1, 4), (0, 3, 4), (0, 1, 2, 3, 4)}
    groupings |= {tuple(int(b) for b in ds.book.contiguous_runs(w)) for w in (1, 2, 4)}  # what the trainer deals out
    for runs in sorted(groupings):
        roles = _roles_of_workers(ds, runs)
        assert roles.shape == labels.shape
        mismatch = np.flatnonzero(roles != expected)
        assert mismatch.size == 0, f"runs {runs}: {mismatch.size} nodes change role, first at global ID {mismatch[:5]}"
    assert np.any(_roles_of_workers(ds, (0, 2, 4), seed=1) != expected)  # the seed does change the split


def test_fractions_are_checked():
    with pytest.raises(ConfigError, match="adding up to 1"):
        stratified_roles(np.zeros(3, np.int64), 0, np.zeros(1, np.int64), (0.5, 0.2, 0.2), 0)


def test_balanced_chunk_single_worker_and_padding():
    ids = np.array([3, 5, 8])
    chunk, longest = balanced_chunk(Exchange(0, 1), ids)
    assert chunk.tolist() == [3, 5, 8] and longest == 3
    seeds, pad = pad_to_batches(np.array([4, 6]), longest=3, batch_size=2)
    assert seeds.tolist() == [4, 6, 4] and pad.tolist() == [False, False, True]
    seeds, pad = pad_to_batches(np.array([4, 6, 7]), longest=4, batch_size=2)  # same batch count: no padding
    assert seeds.tolist() == [4, 6, 7] and not pad.any()
    seeds, pad = pad_to_batches(np.zeros(0, np.int64), longest=1, batch_size=2, fallback=9)
    assert seeds.tolist() == [9] and pad.all()
    with pytest.raises(ConfigError, match="fewer labelled training nodes than workers"):
        pad_to_batches(np.zeros(0, np.int64), longest=1, batch_size=2)
