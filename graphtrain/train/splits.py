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
"""
from __future__ import annotations

from typing import Dict, Tuple

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
