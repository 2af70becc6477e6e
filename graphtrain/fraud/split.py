"""Train/validation/test splits of labelled accounts.

Split codes are those of the dataset format (:data:`graphtrain.partition.format.SPLIT_CODES`):
0 train, 1 val, 2 test, -1 none (unlabelled accounts are never in a split).
"""
from __future__ import annotations

from typing import Tuple

import numpy as np

from graphtrain.errors import ConfigError
from graphtrain.kernels.rng import combine_np, rand_u64_np, seed_key

TRAIN, VAL, TEST, NONE = 0, 1, 2, -1


def stratified_split(labels, fractions: Tuple[float, float] = (0.4, 0.2), seed: int = 0) -> np.ndarray:
    """Split labelled accounts per class: ``fractions = (train, val)``, the rest is test.

    Within each class the accounts are ordered by a hash of ``(seed, index)`` and cut at the
    rounded fractions, so the split is deterministic and each class is represented in proportion.

    Args:
        labels: int ``[N]``; accounts with label < 0 are unlabelled and get -1.
        fractions: train and validation fractions, each in [0, 1], summing to < 1.
        seed: split seed.

    Returns:
        int8 ``[N]`` split codes.
    """
    train, val = (float(f) for f in fractions)
    if not (0 < train and 0 <= val and train + val < 1):
        raise ConfigError(f"split fractions must be train > 0, val >= 0 and train + val < 1, got {fractions}")
    labels = np.asarray(labels).astype(np.int64)
    codes = np.full(labels.shape[0], NONE, dtype=np.int8)
    keys = rand_u64_np(seed_key(seed), np.arange(labels.shape[0], dtype=np.uint64))
    for cls in np.unique(labels[labels >= 0]):
        members = np.flatnonzero(labels == cls)
        members = members[np.argsort(keys[members], kind="stable")]
        n_train = int(round(train * members.size))
        n_val = int(round(val * members.size))
        codes[members[:n_train]] = TRAIN
        codes[members[n_train : n_train + n_val]] = VAL
        codes[members[n_train + n_val :]] = TEST
    return codes


def carve_validation(split, labels, fraction: float, seed: int = 0) -> np.ndarray:
    """A copy of ``split`` in which a stratified ``fraction`` of the labelled train accounts become validation.

    For a given split with train and test but no validation accounts. Per class, the labelled train
    accounts are ordered by a hash of ``(seed, index)`` (another stream than :func:`stratified_split`'s)
    and the first ``round(fraction * count)`` become validation -- at least one and at most all but
    one when the class has two or more, so both sides keep each class they can.

    Args:
        split: int8 ``[N]`` split codes.
        labels: int ``[N]``; label < 0 = unlabelled (never moved).
        fraction: share of each class's train accounts moved, in (0, 1).
        seed: seed of the choice.
    """
    if not 0 < fraction < 1:
        raise ConfigError(f"the validation fraction carved out of train must be in (0, 1), got {fraction}")
    split = np.array(split, dtype=np.int8, copy=True)
    labels = np.asarray(labels).astype(np.int64)
    keys = rand_u64_np(combine_np(seed_key(seed), np.uint64(VAL)), np.arange(labels.shape[0], dtype=np.uint64))
    for cls in np.unique(labels[(split == TRAIN) & (labels >= 0)]):
        members = np.flatnonzero((split == TRAIN) & (labels == cls))
        members = members[np.argsort(keys[members], kind="stable")]
        n_val = int(round(fraction * members.size))
        if members.size >= 2:
            n_val = min(max(n_val, 1), members.size - 1)
        split[members[:n_val]] = VAL
    return split


def masks_to_split(train_mask, val_mask, test_mask) -> np.ndarray:
    """int8 split codes from three boolean masks (which must not overlap)."""
    train_mask, val_mask, test_mask = (np.asarray(m, dtype=bool) for m in (train_mask, val_mask, test_mask))
    if np.any(train_mask.astype(int) + val_mask + test_mask > 1):
        raise ConfigError("train, val and test masks overlap")
    codes = np.full(train_mask.shape[0], NONE, dtype=np.int8)
    codes[train_mask], codes[val_mask], codes[test_mask] = TRAIN, VAL, TEST
    return codes
