"""Which labelled nodes train, validate and test, and how they are dealt out to the workers.

**Roles.** A node with label ``-1`` (unknown) is never used. When the dataset has a split
(``node_split.npy``: 0 train, 1 val, 2 test, -1 none: the codes of :mod:`graphtrain.split`) it is used
as is. Otherwise :func:`graphtrain.split.stratified_roles` makes a seeded, exactly stratified split of
the labelled nodes (ranked per class across partitions, an exact pick by rank). A partition's roles
depend only on its labels and the class counts of the partitions before it, never on the number of workers, so one dataset gets the same split on 1, 2 or 4 workers.

**Dealing seeds out** (:func:`balanced_chunk`): all workers must run the same number of batches
(every batch is a collective). The role's nodes, ordered by global ID, are cut into ``W`` chunks
whose sizes differ by at most one; worker ``w`` takes chunk ``w``, which lies mostly in its own
node range (IDs are range-partitioned), so most of its seeds are local. A chunk one node shorter
than the longest is padded with a repeat of its first node when that would otherwise cost it a
batch (at most one repeated seed per worker and epoch; evaluation ignores repeats).

**Samples of a role** (:class:`StratifiedSample`: ``TrainConfig.train_sample`` picks a new one each
epoch, ``val_sample`` one for the whole run). Class ``c`` of the role (``T_c`` nodes) gets a quota
``q_c`` (:func:`stratified_quotas`: proportional, largest remainders, summing to ``N``). Its nodes
are ranked like the split's: by partition, then by a hash of ``(seed, stream, epoch, c, global
ID)`` within the partition, so rank ``r`` runs over ``0 .. T_c - 1``; the ranks are rotated by a
seeded offset ``o`` and rank ``r`` is picked iff ``floor((r' + 1) q_c / T_c) > floor(r' q_c / T_c)``
with ``r' = (r + o) mod T_c``. As ``r'`` runs over all of ``0 .. T_c - 1``, exactly ``q_c`` nodes are
picked; each node is picked with probability ``q_c / T_c`` (its in-partition rank is uniform, and so
is ``o``); and each partition gives its proportional share (+-1) of every class. A partition's picks
depend only on its own nodes and the class counts of the partitions before it -- never on the
number of workers or which worker reads it. The draw is NumPy over arrays: a worker keeps its role
nodes' in-partition offsets by class (4 bytes a node), and each draw hashes and sorts one
partition's class at a time (a few transient 8-byte arrays of its size) and enumerates the picked ranks
directly (:func:`systematic_positions`); no per-node Python object.
"""
from __future__ import annotations

from typing import Dict, List, Tuple

import numpy as np

from graphtrain.errors import ConfigError
from graphtrain.split import SPLIT_CODES, check_fractions, stratified_roles  # noqa: F401 -- the trainer's split

ROLES = SPLIT_CODES  # role name -> code: the split codes of graphtrain.split


def class_counts(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """int64 ``[num_classes]`` labelled nodes per class (labels ``-1`` skipped)."""
    labels = np.asarray(labels)
    return np.bincount(labels[labels >= 0], minlength=num_classes)[:num_classes].astype(np.int64)


def dataset_roles(split: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Roles from a stored split: the split where the label is known, else -1."""
    roles = np.asarray(split, dtype=np.int8).copy()
    roles[np.asarray(labels) < 0] = -1
    return roles


def balanced_chunk(exchange, ids: np.ndarray) -> Tuple[np.ndarray, int]:
    """This worker's chunk of the role's nodes, and the batch-equalising length (a collective).

    Args:
        exchange: the data-plane :class:`~graphtrain.comm.Exchange`.
        ids: int64 sorted global IDs of the role's nodes this worker owns.

    Returns:
        ``(chunk, longest)``: sorted int64 global IDs dealt to this worker (see the module
        docstring) and the longest chunk of any worker.
    """
    ids = np.asarray(ids, dtype=np.int64)
    W = exchange.world_size
    sizes = exchange.all_gather_sizes(ids.size)
    total = int(sizes.sum())
    start = int(sizes[: exchange.rank].sum())
    bounds = np.array([c * total // W for c in range(W + 1)], dtype=np.int64)
    pos = start + np.arange(ids.size, dtype=np.int64)
    dest = np.searchsorted(bounds, pos, side="right") - 1
    send_counts = np.bincount(dest, minlength=W).astype(np.int64)
    chunk, _ = exchange.all_to_all(ids, send_counts)
    longest = int(np.diff(bounds).max()) if W else 0
    return np.sort(chunk), longest


def pad_to_batches(chunk: np.ndarray, longest: int, batch_size: int, fallback=None) -> Tuple[np.ndarray, np.ndarray]:
    """Pad ``chunk`` so it makes as many batches as the longest chunk.

    Args:
        chunk: this worker's seeds. longest: the longest chunk of any worker.
        fallback: node to pad an *empty* chunk with (None: an empty chunk that needs a batch is an error).

    Returns:
        ``(seeds, is_pad)``: the seeds and a bool mask of the padding entries.
    """
    want = -(-longest // batch_size)
    have = -(-chunk.size // batch_size)
    is_pad = np.zeros(chunk.size, dtype=bool)
    if have >= want:
        return chunk, is_pad
    if chunk.size == 0 and fallback is None:
        raise ConfigError("there are fewer labelled training nodes than workers, so this worker has none; "
                          "use fewer workers (or label more nodes)")
    extra = (want - 1) * batch_size + 1 - chunk.size
    pad_with = chunk[0] if chunk.size else int(fallback)
    seeds = np.concatenate([chunk, np.full(extra, pad_with, dtype=np.int64)])
    return seeds, np.concatenate([is_pad, np.ones(extra, dtype=bool)])


def role_summary(roles: np.ndarray, labels: np.ndarray, num_classes: int) -> Dict[str, np.ndarray]:
    """Per-role class counts ``{"train": [C], "val": [C], "test": [C]}`` of one worker's nodes."""
    return {name: class_counts(np.where(roles == code, labels, -1), num_classes) for name, code in ROLES.items()}


# stream keys of the samples (combined with the seed), apart from every other draw of a run
TRAIN_SAMPLE_STREAM = 0x7A5A_4D50_0001
VAL_SAMPLE_STREAM = 0x7A5A_4D50_0002


def stratified_quotas(totals, n: int) -> np.ndarray:
    """int64 ``[C]``: seeds of each class in a stratified sample of ``n`` of the ``totals[c]`` nodes of
    class ``c`` (all of them when ``n >= sum(totals)``).

    ``floor(n T_c / T)`` each, plus one for the classes with the largest remainders (ties: the lower
    class) until they sum to ``n``: within one of ``n T_c / T`` each. A class with nodes whose share
    rounds to nothing gets one seed, taken from the class with the largest quota, as long as ``n``
    is at least the number of classes present (a rare fraud label is never sampled away).
    """
    totals = np.asarray(totals, dtype=np.int64)
    total = int(totals.sum())
    if n >= total:
        return totals.copy()
    exact = totals * int(n)
    quotas = exact // total
    remainders = exact - quotas * total
    left = int(n - quotas.sum())
    order = np.lexsort((np.arange(totals.size), -remainders))  # largest remainder first, then the lower class
    quotas[order[:left]] += 1
    missing = np.flatnonzero((totals > 0) & (quotas == 0))
    if missing.size and n >= np.count_nonzero(totals):
        for c in missing:
            quotas[int(np.argmax(quotas))] -= 1  # the largest has >= 2 here: n >= classes present
            quotas[c] = 1
    return quotas


class StratifiedSample:
    """A seeded, exactly stratified sample of one role's nodes (see the module docstring).

    Args:
        parts: this worker's partitions, ``(partition, node_start, {class: sorted offsets of the
            role's nodes of that class within the partition})`` each (offsets: any integer dtype).
        counts: int64 ``[P, C]`` the role's nodes per partition and class of the whole dataset
            (every worker's, summed: the same on every worker).
        n: sample size (all of the role's nodes when it has no more).
        seed: the run's seed. stream: which sample (:data:`TRAIN_SAMPLE_STREAM`, ...).
    """

    def __init__(self, parts: List[Tuple[int, int, Dict[int, np.ndarray]]], counts: np.ndarray, n: int, seed: int,
                 stream: int):
        from graphtrain.kernels.rng import combine_np, seed_key

        counts = np.asarray(counts, dtype=np.int64)
        self.parts = parts
        self.totals = counts.sum(axis=0)
        self.before = np.cumsum(counts, axis=0) - counts
        self.quotas = stratified_quotas(self.totals, n)
        if np.any(self.totals >= 2**32):
            raise ConfigError("a sample's class has 2**32 nodes or more; the rank arithmetic is 64-bit")
        self.size = int(self.quotas.sum())
        self.everything = bool(np.array_equal(self.quotas, self.totals))  # n >= the role's nodes
        self._key = combine_np(combine_np(seed_key(int(seed)), np.uint64(stream)), np.uint64(0))

    def pick(self, epoch: int = 0) -> np.ndarray:
        """int64 sorted global IDs of this worker's nodes in the sample of ``epoch``.

        Per partition and class: one hash and one sort of its ``m`` nodes (``argsort``: 8 bytes a
        node, besides the 8-byte hashes), then the picked ranks are enumerated directly
        (:func:`systematic_positions`: O(picks) memory, not a mask over the nodes)."""
        from graphtrain.kernels.rng import combine_np, rand_u64_np

        key_epoch = combine_np(self._key, np.uint64(epoch))
        picked = []
        for p, start, by_class in self.parts:
            for c, offsets in by_class.items():
                T, q = int(self.totals[c]), int(self.quotas[c])
                if q == 0 or offsets.size == 0:
                    continue
                if q == T:
                    picked.append(start + offsets.astype(np.int64))
                    continue
                key = combine_np(key_epoch, np.uint64(c))
                rotation = int(rand_u64_np(combine_np(key, np.uint64(T)), np.uint64(0)) % np.uint64(T))
                hashes = rand_u64_np(key, (start + offsets.astype(np.int64)).astype(np.uint64))
                order = np.argsort(hashes, kind="stable")  # in-partition rank -> position in offsets
                del hashes
                at = systematic_positions(int(self.before[p, c]) + rotation, offsets.size, q, T)
                picked.append(start + offsets[order[at]].astype(np.int64))
        return np.sort(np.concatenate(picked)) if picked else np.zeros(0, np.int64)


def systematic_positions(first: int, m: int, q: int, T: int) -> np.ndarray:
    """int64 positions ``k`` in ``[0, m)`` (``m <= T``) whose rank ``r = (first + k) mod T`` is picked by
    the systematic rule ``floor((r + 1) q / T) > floor(r q / T)`` (``0 < q <= T < 2**32``).

    The picked ranks are ``r_j = floor((j T - 1) / q)`` for ``j = 1 .. q`` (the smallest ``r`` with
    ``(r + 1) q >= j T``), and those in ``[a, e)`` have ``floor(a q / T) < j <= floor(e q / T)``, so
    they are enumerated without a pass over the ``m`` ranks.
    """
    s = first % T
    out = []
    # the window of ranks [s, s + m) mod T: [s, min(s + m, T)), then [0, s + m - T) when it wraps
    for a, e, shift in ((s, min(s + m, T), -s), (0, max(s + m - T, 0), T - s)):
        if e <= a:
            continue
        j = np.arange(a * q // T + 1, e * q // T + 1, dtype=np.uint64)
        ranks = ((j * np.uint64(T) - np.uint64(1)) // np.uint64(q)).astype(np.int64)
        out.append(ranks + shift)
    return np.concatenate(out) if out else np.zeros(0, np.int64)
