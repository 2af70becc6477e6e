"""What a training run fed its model, recorded for checking it (``Trainer(..., audit=True)``).

Per epoch, gathered at rank 0: the distinct training seeds of all workers (sorted global IDs),
each seed's label and a 64-bit digest of its feature row (:func:`row_digests`) as the training
batches carried them; and the role of every node (int8, global ID order: 0 train, 1 val, 2 test,
-1 none). Runs on different worker counts of one dataset and seed must record the same; the
recorded labels and digests must equal those of the dataset's own arrays.

Costs one row of three int64 per training seed and epoch at rank 0, and one gather per epoch: a
diagnostic for tests and for checking a new deployment's data plane, off by default.
"""
from __future__ import annotations

from typing import List

import numpy as np

from graphtrain.errors import GraphtrainError
from graphtrain.kernels.rng import combine_np, seed_key


def row_digests(rows: np.ndarray) -> np.ndarray:
    """uint64 ``[n]``: a digest of each row's float32 bit pattern (``rows``: ``[n, F]``); equal rows
    give equal digests, and any changed bit changes it (up to 64-bit collisions)."""
    bits = np.ascontiguousarray(rows, dtype=np.float32).reshape(rows.shape[0], -1).view(np.uint32)
    digest = np.full(bits.shape[0], seed_key(bits.shape[1]), dtype=np.uint64)
    for column in bits.T:
        digest = combine_np(digest, column.astype(np.uint64))
    return digest


class EpochRecord:
    """The seeds one worker trained on in one epoch, with their labels and feature digests."""

    def __init__(self):
        self._parts: List[np.ndarray] = []

    def add(self, seeds: np.ndarray, labels: np.ndarray, seed_features: np.ndarray) -> None:
        """One batch: its seeds, their labels and feature rows (``[batch_size, F]``)."""
        digests = row_digests(seed_features).view(np.int64)
        self._parts.append(np.stack([np.asarray(seeds, np.int64), np.asarray(labels, np.int64), digests], axis=1))

    def rows(self) -> np.ndarray:
        """int64 ``[k, 3]``: (seed, label, digest) of every batch entry so far."""
        return np.concatenate(self._parts) if self._parts else np.zeros((0, 3), np.int64)


def distinct_seeds(rows: np.ndarray) -> dict:
    """``{"seeds", "labels", "feature_digests"}`` of the distinct seeds among (seed, label, digest)
    ``rows`` (padding repeats a seed); a seed seen with two labels or feature rows is an error."""
    uniq = np.unique(rows, axis=0)
    if uniq.shape[0] and np.any(uniq[1:, 0] == uniq[:-1, 0]):
        seed = int(uniq[1:, 0][uniq[1:, 0] == uniq[:-1, 0]][0])
        raise GraphtrainError(f"seed {seed} was trained with two different labels or feature rows in one epoch")
    return {"seeds": uniq[:, 0], "labels": uniq[:, 1], "feature_digests": uniq[:, 2].view(np.uint64)}
