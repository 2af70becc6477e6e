"""Feature standardisation (``TrainConfig.normalize``): z-scores with the training split's statistics.

Raw node features can sit on any scale (account balances in the tens of thousands next to 0/1
flags); a GNN fed them as they are starts with huge logits and barely learns. So by default every
feature row the model sees -- training batches, evaluation batches, layer-wise and sampled
``predict`` -- is standardised on the torch side, right before the model::

    x' = (x - mean) / std          per feature; std floored (a constant feature gets std 1)

The data plane, the feature cache and the dataset stay raw. ``mean`` and ``std`` are the float64
mean and (population) standard deviation of the features of the *training* nodes (validation and
test nodes do not inform them), computed in two collective passes over every worker's own
training nodes: the sums, then the squared deviations from the mean. Each pass sums each
partition's nodes separately (fixed blocks, in ID order) into a ``[P, F]`` table that the workers
all-reduce (every row has one contributor, so the reduction is exact) and then sum over the
partitions in order: the statistics are bit-identical on any number of workers.

They are stored in every checkpoint's manifest (``feature_norm``) and used by ``evaluate`` and
``predict``; a checkpoint without them (``normalize=False``, or written before this existed) is
scored on raw features.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Optional, Tuple

import numpy as np
from numba import njit, prange

BLOCK_ROWS = 65536
STD_FLOOR = 1e-12  # relative to |mean|: below it a feature is constant up to rounding and gets std 1


@dataclass(eq=False)
class FeatureNorm:
    """Per-feature ``mean`` and ``std`` (float64 ``[F]``, std already floored) over ``count`` nodes."""

    mean: np.ndarray
    std: np.ndarray
    count: int
    _tensors: dict = field(default_factory=dict, init=False, repr=False)  # device -> (mean, std) tensors

    def to_dict(self) -> dict:
        return {"mean": [float(v) for v in self.mean], "std": [float(v) for v in self.std], "count": int(self.count)}

    @classmethod
    def from_dict(cls, d: Optional[dict]) -> Optional["FeatureNorm"]:
        if not d:
            return None
        return cls(np.asarray(d["mean"], dtype=np.float64), np.asarray(d["std"], dtype=np.float64), int(d["count"]))

    def numpy(self, x: np.ndarray) -> np.ndarray:
        """float32 standardised copy of rows ``x`` (``[n, F]``): bit for bit what :meth:`torch` gives
        (float32 ``(x - mean) / std``), in one parallel pass without temporaries (layer-wise
        inference standardises every input row it fetches)."""
        x = np.asarray(x)
        mean, std = self.mean.astype(np.float32), self.std.astype(np.float32)
        if x.ndim != 2:
            return ((np.asarray(x, dtype=np.float32) - mean) / std).astype(np.float32, copy=False)
        out = np.empty(x.shape, dtype=np.float32)
        _standardise(x, mean, std, out)
        return out

    def torch(self, x):
        """Standardised rows of the tensor ``x`` (``[n, F]``, on any device; float32)."""
        import torch

        if x.device not in self._tensors:
            self._tensors[x.device] = (torch.as_tensor(self.mean, dtype=torch.float32, device=x.device),
                                       torch.as_tensor(self.std, dtype=torch.float32, device=x.device))
        mean, std = self._tensors[x.device]
        return (x.float() - mean) / std


@njit(cache=True, parallel=True, nogil=True)
def _standardise(x, mean, std, out):  # pragma: no cover - compiled
    """``out[i, j] = (float32(x[i, j]) - mean[j]) / std[j]`` in float32 (``mean``, ``std`` float32 ``[F]``)."""
    for i in prange(x.shape[0]):
        for j in range(x.shape[1]):
            out[i, j] = (np.float32(x[i, j]) - mean[j]) / std[j]


def _block_sums(x: np.ndarray, mask: np.ndarray, center: Optional[np.ndarray]) -> np.ndarray:
    """float64 ``[F]``: sum over the rows of ``x`` where ``mask`` of ``x`` (or ``(x - center)**2``),
    block by block (memory: one block)."""
    total = np.zeros(x.shape[1], dtype=np.float64)
    for a in range(0, x.shape[0], BLOCK_ROWS):
        m = mask[a : a + BLOCK_ROWS]
        if not m.any():
            continue
        rows = np.asarray(x[a : a + BLOCK_ROWS], dtype=np.float64)[m]
        if center is not None:
            rows = (rows - center) ** 2
        total += rows.sum(axis=0)
    return total


def training_stats(parts: Iterable[Tuple[int, np.ndarray, np.ndarray]], num_parts: int, num_features: int,
                   all_reduce_sum) -> FeatureNorm:
    """The training split's :class:`FeatureNorm` (a collective: two ``all_reduce_sum`` calls).

    Args:
        parts: ``(partition, features [n_p, F], is_train bool [n_p])`` of this worker's partitions.
        num_parts: ``P`` of the dataset. num_features: ``F``.
        all_reduce_sum: the element-wise sum over workers of a float64 array (identity on one worker).
    """
    parts = list(parts)
    table = np.zeros((num_parts, num_features + 1), dtype=np.float64)  # per partition: sums, then count
    for p, x, mask in parts:
        table[p, :num_features] = _block_sums(x, mask, None)
        table[p, num_features] = np.count_nonzero(mask)
    table = all_reduce_sum(table)
    count = float(table[:, num_features].sum())
    if count == 0:
        return FeatureNorm(np.zeros(num_features), np.ones(num_features), 0)
    mean = table[:, :num_features].sum(axis=0) / count
    squares = np.zeros((num_parts, num_features), dtype=np.float64)
    for p, x, mask in parts:
        squares[p] = _block_sums(x, mask, mean)
    squares = all_reduce_sum(squares)
    std = np.sqrt(squares.sum(axis=0) / count)
    std = np.where(std > STD_FLOOR * np.abs(mean), std, 1.0)
    return FeatureNorm(mean, std, int(count))
