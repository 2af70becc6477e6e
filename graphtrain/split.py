"""Split codes and stratified splitting: the one place that says what 0, 1, 2 and -1 mean.

**Codes** (:data:`TRAIN`, :data:`VAL`, :data:`TEST`, :data:`NONE`; :data:`SPLIT_CODES` by name):
0 train, 1 val, 2 test, -1 none. They are the dataset format's ``node_split.npy``
(:mod:`graphtrain.partition.format`), the trainer's roles (:mod:`graphtrain.train.splits`) and the
fraud pipeline's account split. Unlabelled nodes (label < 0) are never in a split.

**Stratified splitting.** Within each class the labelled nodes are ordered by a counter-based hash
of their index (:mod:`graphtrain.kernels.rng`, seeded) and cut by rank, so every split is
deterministic and each class is represented in proportion. One ordering, two ways to cut:

- :func:`stratified_split` -- a whole array at once: the first ``round(f_train * n_c)`` of class
  ``c`` train, the next ``round(f_val * n_c)`` validate, the rest test (the fraud pipeline's split of
  accounts; :func:`carve_validation` moves a share of a given split's train accounts to validation).
- :func:`stratified_roles` -- one partition at a time, for a dataset without a stored split: ranks
  continue across partitions and an even, exact (parts per million) pick by rank decides, so a
  partition's roles depend only on its labels and the class counts before it, never on how many
  workers read the dataset (see :mod:`graphtrain.train.splits`).
"""
from __future__ import annotations

from typing import Iterator, Sequence, Tuple

import numpy as np

from graphtrain.errors import ConfigError

TRAIN, VAL, TEST, NONE = 0, 1, 2, -1
SPLIT_NAMES = ("train", "val", "test")  # SPLIT_NAMES[code] for code >= 0
SPLIT_CODES = {name: code for code, name in enumerate(SPLIT_NAMES)}
_SCALE = 1_000_000  # stratified_roles applies fractions in integer parts per million (exact, platform independent)


def split_names(codes) -> np.ndarray:
    """Object ``[N]`` ``"train"``/``"val"``/``"test"`` of int split codes, None where the code is -1."""
    codes = np.asarray(codes)
    return np.where(codes >= 0, np.array(SPLIT_NAMES, dtype=object)[np.clip(codes, 0, 2)], None)


def _by_class(labels: np.ndarray, keys: np.ndarray, candidates=None) -> Iterator[Tuple[int, np.ndarray]]:
    """``(class, members)`` for each class among the labelled ``candidates`` (bool ``[N]``, default all),
    members ordered by ``keys`` (stable)."""
    pool = labels >= 0 if candidates is None else candidates & (labels >= 0)
    for cls in np.unique(labels[pool]):
        members = np.flatnonzero(pool & (labels == cls))
        yield int(cls), members[np.argsort(keys[members], kind="stable")]


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
    from graphtrain.kernels.rng import rand_u64_np, seed_key

    train, val = (float(f) for f in fractions)
    if not (0 < train and 0 <= val and train + val < 1):
        raise ConfigError(f"split fractions must be train > 0, val >= 0 and train + val < 1, got {fractions}")
    labels = np.asarray(labels).astype(np.int64)
    codes = np.full(labels.shape[0], NONE, dtype=np.int8)
    keys = rand_u64_np(seed_key(seed), np.arange(labels.shape[0], dtype=np.uint64))
    for _, members in _by_class(labels, keys):
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
    from graphtrain.kernels.rng import combine_np, rand_u64_np, seed_key

    if not 0 < fraction < 1:
        raise ConfigError(f"the validation fraction carved out of train must be in (0, 1), got {fraction}")
    split = np.array(split, dtype=np.int8, copy=True)
    labels = np.asarray(labels).astype(np.int64)
    keys = rand_u64_np(combine_np(seed_key(seed), np.uint64(VAL)), np.arange(labels.shape[0], dtype=np.uint64))
    for _, members in _by_class(labels, keys, candidates=split == TRAIN):
        n_val = int(round(fraction * members.size))
        if members.size >= 2:
            n_val = min(max(n_val, 1), members.size - 1)
        split[members[:n_val]] = VAL
    return split


def check_fractions(fractions: Sequence[float]) -> Tuple[int, int]:
    """Validate ``(train, val, test)`` fractions; return train and val in parts per million."""
    if len(fractions) != 3 or any(not 0.0 <= f <= 1.0 for f in fractions) or abs(sum(fractions) - 1.0) > 1e-6:
        raise ConfigError(f"split fractions must be three numbers in [0, 1] (train, val, test) adding up to 1, got {list(fractions)}")
    if fractions[0] <= 0:
        raise ConfigError("the train fraction must be > 0")
    return int(round(fractions[0] * _SCALE)), int(round(fractions[1] * _SCALE))


def _systematic(rank: np.ndarray, num: int, den: int) -> np.ndarray:
    """``floor((r + 1) * num / den) > floor(r * num / den)``: an even 1-in-(den/num) pick by rank."""
    return (rank + 1) * num // den > rank * num // den


def stratified_roles(labels: np.ndarray, node_start: int, counts_before: np.ndarray, fractions: Sequence[float],
                     seed: int) -> np.ndarray:
    """Roles (int8 ``[n_p]``: 0 train, 1 val, 2 test, -1 unlabelled) of one partition's nodes.

    The labelled nodes of class ``c`` are ranked by (partition, then a hash of ``(seed, c, global
    ID)`` within the partition), giving ranks ``r = 0 .. n_c - 1``; rank ``r`` trains iff
    ``floor((r + 1) * f_train) > floor(r * f_train)``: exactly ``floor(n_c * f_train)`` training
    nodes, spread evenly over the partitions; of the other ranks (numbered ``q``), ``q`` validates
    iff ``floor((q + 1) * f_val') > floor(q * f_val')`` with ``f_val' = f_val / (1 - f_train)``; the
    rest test.

    Args:
        labels: int64 ``[n_p]`` the partition's labels (-1 unknown).
        node_start: global ID of the partition's first node.
        counts_before: int64 ``[C]`` labelled nodes per class in all earlier partitions.
        fractions: ``(train, val, test)``.
        seed: split seed.
    """
    from graphtrain.kernels.rng import combine_np, rand_u64_np, seed_key

    f_train, f_val = check_fractions(fractions)
    labels = np.asarray(labels, dtype=np.int64)
    roles = np.full(labels.shape[0], NONE, dtype=np.int8)
    rest = _SCALE - f_train
    node_ids = np.arange(node_start, node_start + labels.shape[0], dtype=np.int64).astype(np.uint64)
    for c in np.unique(labels[labels >= 0]):
        idx = np.flatnonzero(labels == c)
        key = combine_np(seed_key(int(seed)), np.uint64(c))
        idx = idx[np.argsort(rand_u64_np(key, node_ids[idx]), kind="stable")]
        r = int(counts_before[c]) + np.arange(idx.size, dtype=np.int64)
        train = _systematic(r, f_train, _SCALE)
        q = r - (r * f_train // _SCALE)  # index among the non-training ranks (valid where not train)
        val = ~train & (_systematic(q, f_val, rest) if rest else False)
        roles[idx] = np.where(train, TRAIN, np.where(val, VAL, TEST))
    return roles


def masks_to_split(train_mask, val_mask, test_mask) -> np.ndarray:
    """int8 split codes from three boolean masks (which must not overlap)."""
    train_mask, val_mask, test_mask = (np.asarray(m, dtype=bool) for m in (train_mask, val_mask, test_mask))
    if np.any(train_mask.astype(int) + val_mask + test_mask > 1):
        raise ConfigError("train, val and test masks overlap")
    codes = np.full(train_mask.shape[0], NONE, dtype=np.int8)
    codes[train_mask], codes[val_mask], codes[test_mask] = TRAIN, VAL, TEST
    return codes
