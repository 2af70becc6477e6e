"""Which labelled nodes train, validate and test, and how they are dealt out to the workers.

**Roles.** A node with label ``-1`` (unknown) is never used. When the dataset has a split
(``node_split.npy``: 0 train, 1 val, 2 test, -1 none) it is used as is. Otherwise
:func:`stratified_roles` makes a seeded, exactly stratified split of the labelled nodes:

- the labelled nodes of class ``c`` are ranked by (partition, then a hash of ``(seed, c, global
  ID)`` within the partition), giving ranks ``r = 0 .. n_c - 1``;
- rank ``r`` trains iff ``floor((r + 1) * f_train) > floor(r * f_train)``: exactly
  ``floor(n_c * f_train)`` training nodes, spread evenly over the partitions; of the other ranks
  (numbered ``q``), ``q`` validates iff ``floor((q + 1) * f_val') > floor(q * f_val')`` with
  ``f_val' = f_val / (1 - f_train)``; the rest test.

A partition's roles depend only on its labels and the class counts of the partitions before it,
never on the number of workers, so one dataset gets the same split on 1, 2 or 4 workers.

**Dealing seeds out** (:func:`balanced_chunk`): all workers must run the same number of batches
(every batch is a collective). The role's nodes, ordered by global ID, are cut into ``W`` chunks
whose sizes differ by at most one; worker ``w`` takes chunk ``w``, which lies mostly in its own
node range (IDs are range-partitioned), so most of its seeds are local. A chunk one node shorter
than the longest is padded with a repeat of its first node when that would otherwise cost it a
batch (at most one repeated seed per worker and epoch; evaluation ignores repeats).
"""
from __future__ import annotations

from typing import Dict, Sequence, Tuple

import numpy as np

from graphtrain.errors import ConfigError
from graphtrain.kernels.rng import combine_np, rand_u64_np, seed_key

ROLES = {"train": 0, "val": 1, "test": 2}
_SCALE = 1_000_000  # fractions are applied in integer parts per million (exact, platform independent)


def check_fractions(fractions: Sequence[float]) -> Tuple[int, int]:
    """Validate ``(train, val, test)`` fractions; return train and val in parts per million."""
    if len(fractions) != 3 or any(not 0.0 <= f <= 1.0 for f in fractions) or abs(sum(fractions) - 1.0) > 1e-6:
        raise ConfigError(f"split fractions must be three numbers in [0, 1] (train, val, test) adding up to 1, got {list(fractions)}")
    if fractions[0] <= 0:
        raise ConfigError("the train fraction must be > 0")
    return int(round(fractions[0] * _SCALE)), int(round(fractions[1] * _SCALE))


def class_counts(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """int64 ``[num_classes]`` labelled nodes per class (labels ``-1`` skipped)."""
    labels = np.asarray(labels)
    return np.bincount(labels[labels >= 0], minlength=num_classes)[:num_classes].astype(np.int64)


def _systematic(rank: np.ndarray, num: int, den: int) -> np.ndarray:
    """``floor((r + 1) * num / den) > floor(r * num / den)``: an even 1-in-(den/num) pick by rank."""
    return (rank + 1) * num // den > rank * num // den


def stratified_roles(labels: np.ndarray, node_start: int, counts_before: np.ndarray, fractions: Sequence[float],
                     seed: int) -> np.ndarray:
    """Roles (int8 ``[n_p]``: 0 train, 1 val, 2 test, -1 unlabelled) of one partition's nodes.

    Args:
        labels: int64 ``[n_p]`` the partition's labels (-1 unknown).
        node_start: global ID of the partition's first node.
        counts_before: int64 ``[C]`` labelled nodes per class in all earlier partitions.
        fractions: ``(train, val, test)``.
        seed: split seed.
    """
    f_train, f_val = check_fractions(fractions)
    labels = np.asarray(labels, dtype=np.int64)
    roles = np.full(labels.shape[0], -1, dtype=np.int8)
    rest = _SCALE - f_train
    for c in np.unique(labels[labels >= 0]):
        idx = np.flatnonzero(labels == c)
        key = combine_np(seed_key(int(seed)), np.uint64(c))
        idx = idx[np.argsort(rand_u64_np(key, (idx + node_start).astype(np.uint64)), kind="stable")]
        r = int(counts_before[c]) + np.arange(idx.size, dtype=np.int64)
        train = _systematic(r, f_train, _SCALE)
        q = r - (r * f_train // _SCALE)  # index among the non-training ranks (valid where not train)
        val = ~train & (_systematic(q, f_val, rest) if rest else False)
        roles[idx] = np.where(train, 0, np.where(val, 1, 2))
    return roles


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
