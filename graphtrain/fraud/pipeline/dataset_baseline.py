"""The tree baseline on a partitioned dataset, in bounded memory (issue 20's "a tree baseline that scales").

Features are :mod:`graphtrain.fraud.data.account_aggregates` (the columns of
:func:`graphtrain.fraud.pipeline.baseline.neighbour_features`, computed partition by partition).
The classifier and its cross-fitting are :func:`graphtrain.fraud.pipeline.baseline.fit_scores`'s, with
two bounds:

- **Training sample.** At most ``max_train`` labelled training accounts are fitted on: when the
  train split has more, a stratified sample (each class in proportion, at least ``folds`` of the
  rarer one; chosen by a seeded permutation, so deterministic). Their feature rows are the only
  ones held in memory: ``max_train * C * 4`` bytes (200,000 x 153 columns = 122 MB).
- **Scoring in chunks.** Every account is scored ``chunk`` rows at a time as the feature rows are
  computed; scores go to a float32 memory-mapped file. Sampled training accounts get out-of-fold
  scores (cross-fitting within the sample); the other training accounts are scored by the model
  fitted on the sample (they were not fitted on, so their scores are out of sample too).

Accounts are indexed by global node ID.
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Optional

import numpy as np

from graphtrain.errors import ConfigError
from graphtrain.fraud.pipeline.baseline import MIN_SAMPLES_LEAF, BaselineResult, _classifier, usable_columns
from graphtrain.log import get_logger
from graphtrain.split import TRAIN

log = get_logger("fraud.baseline")

MAX_TRAIN = 200_000
SCORE_CHUNK = 1 << 16
SCORES_FILE = "baseline_scores.npy"


def training_sample(labels: np.ndarray, split: np.ndarray, max_train: int, folds: int, seed: int) -> np.ndarray:
    """Ascending global IDs of the labelled training accounts fitted on: all, or a stratified ``max_train`` of them."""
    train = np.flatnonzero((np.asarray(split) == TRAIN) & (np.asarray(labels) >= 0))
    if train.size <= max_train:
        return train
    y = np.asarray(labels)[train]
    rng = np.random.default_rng([seed, 0x7EE])
    picked: List[np.ndarray] = []
    for c in np.unique(y):
        members = train[y == c]
        want = max(min(folds, members.size), int(round(max_train * members.size / train.size)))
        picked.append(rng.permutation(members)[:want])
    return np.sort(np.concatenate(picked))


def _rows_of(features, ids: np.ndarray, chunk: int) -> np.ndarray:
    """float32 feature rows of ascending global ``ids``, computed a chunk of the ID range at a time."""
    out = np.empty((ids.size, features.num_columns), dtype=np.float32)
    i = 0
    for start in range(0, features.num_accounts, chunk):
        stop = min(start + chunk, features.num_accounts)
        j = int(np.searchsorted(ids, stop))
        if j > i:
            rows = features.rows(start, stop)
            out[i:j] = rows[ids[i:j] - start]
            i = j
    return out


def run_dataset_baseline(features, labels: np.ndarray, split: np.ndarray, work_dir, *, seed: int = 0, folds: int = 5,
                         max_iter: int = 100, max_train: int = MAX_TRAIN, chunk: int = SCORE_CHUNK,
                         progress=None) -> BaselineResult:
    """Fit the tree on a bounded training sample and score every account (see the module docstring).

    Args:
        features: :class:`graphtrain.fraud.data.account_aggregates.AccountFeatures`.
        labels: int ``[N]`` by global ID (1 fraud, 0 not, -1 unknown). split: int8 ``[N]`` split codes.
        work_dir: directory for the scores file.
        seed, folds, max_iter: as :func:`graphtrain.fraud.pipeline.baseline.fit_scores`.
        max_train: most labelled training accounts fitted on. chunk: accounts scored at a time.
        progress: optional callable ``(accounts_scored)`` after each chunk.

    Returns:
        :class:`BaselineResult` whose ``scores`` is a float32 ``[N]`` memory-mapped array.
    """
    from sklearn.model_selection import StratifiedKFold

    labels, split = np.asarray(labels), np.asarray(split)
    n = features.num_accounts
    if labels.shape != (n,) or split.shape != (n,):
        raise ConfigError(f"labels and split need one entry per account ({n})")
    fit_ids = training_sample(labels, split, max_train, folds, seed)
    y = labels[fit_ids]
    if fit_ids.size == 0 or y.min() == y.max():
        raise ConfigError("the baseline needs training accounts of both classes (labels 0 and 1 in the train split)")
    if folds < 2 or np.bincount(y).min() < folds:
        raise ConfigError(f"cannot cross-fit {folds} folds: the train split has {int(np.bincount(y).min())} accounts of its rarer class")
    x_fit = _rows_of(features, fit_ids, chunk)
    keep = usable_columns(x_fit)
    names = [c for c, k in zip(features.names, keep) if k]
    dropped = [c for c, k in zip(features.names, keep) if not k]
    if dropped:
        log.info("baseline: dropped %d of %d feature columns that are missing, nearly all missing (fewer than %d "
                 "values) or constant on the %d training accounts fitted on: %s", len(dropped), len(features.names),
                 MIN_SAMPLES_LEAF, fit_ids.size, ", ".join(dropped))
    x_fit = np.ascontiguousarray(x_fit[:, keep])
    model = _classifier(seed, max_iter).fit(x_fit, y)
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    scores = np.lib.format.open_memmap(work_dir / SCORES_FILE, mode="w+", dtype=np.float32, shape=(n,))
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        scores[start:stop] = model.predict_proba(features.rows(start, stop)[:, keep])[:, 1]
        if progress:
            progress(stop - start)
    for fit_rows, held_rows in StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed).split(fit_ids, y):
        fold_keep = usable_columns(x_fit, fit_rows)
        fold = _classifier(seed, max_iter).fit(x_fit[fit_rows][:, fold_keep], y[fit_rows])
        scores[fit_ids[held_rows]] = fold.predict_proba(x_fit[held_rows][:, fold_keep])[:, 1]
    scores.flush()
    train_total = int(((split == TRAIN) & (labels >= 0)).sum())
    log.info("baseline: %d accounts x %d features; fitted on %d of %d labelled training accounts", n, len(names),
             fit_ids.size, train_total)
    params: Dict[str, object] = {
        "model": "sklearn HistGradientBoostingClassifier (defaults)", "max_iter": max_iter, "hops": features.hops,
        "folds": folds, "seed": seed, "num_features": len(names), "dropped_features": dropped,
        "fitted_accounts": int(fit_ids.size), "train_accounts": train_total, "max_train": max_train}
    return BaselineResult(scores=np.load(work_dir / SCORES_FILE, mmap_mode="r"), feature_names=names, params=params)
