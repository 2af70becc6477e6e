"""GNN-to-tree stacking: the tree baseline's features plus the GNN's cross-fitted score (issue 21 item 3).

The layout large fraud teams run: a gradient-boosted tree on each account's own features, its
neighbour aggregates and a graph model's output. The GNN's score enters the tree as one more column
(``gnn_score``), and no account's value of that column may have seen the account's own label:

**Cross-fitting.** The labelled training accounts are dealt into ``K`` stratified folds (seeded,
:func:`training_folds`). For each fold ``k`` a GNN is trained with fold ``k``'s accounts taken out of
the training split (split code -1; the same options, validation split and early stopping as the
pipeline's model) and scores every account. A training account's column value is the score of the
one fold model that did not train on it; every other account's (validation, test, unlabelled) is
the mean of the ``K`` fold models' scores -- none of them trained on it. The fold models train on
``(K - 1) / K`` of the training accounts, so the column is a slightly weaker GNN than the pipeline's
own model, on every account alike.

**The stacked tree** is then :func:`graphtrain.fraud.pipeline.dataset_baseline.run_dataset_baseline`
on the feature table with that column appended (:class:`WithColumns`): the baseline's classifier,
training sample and out-of-fold scores of its own training accounts. Its validation scores are out
of sample, so it competes with the GNN, the tree and the blend on validation as they do
(:mod:`graphtrain.fraud.evaluation.ring_score`).

Cost: ``K`` more GNN trainings and layer-wise scoring passes, each on ``(K - 1) / K`` of the seeds.
Memory: one float64 ``[N]`` column and one int8 ``[N]`` fold array.
"""
from __future__ import annotations

from typing import Callable, Dict, List

import numpy as np

from graphtrain.errors import ConfigError
from graphtrain.log import get_logger
from graphtrain.split import TRAIN

log = get_logger("fraud.stacking")

GNN_COLUMN = "gnn_score"
EXCLUDED = -1  # split code of accounts a fold model never sees as seeds


def training_folds(labels: np.ndarray, split: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """int8 ``[N]``: the fold (0 .. ``folds``-1) of each labelled training account, -1 for every other account.

    Stratified: each class's training accounts are permuted (seeded) and dealt round-robin, so every
    fold holds ``floor`` or ``ceil`` of ``1 / folds`` of each class.

    Raises:
        ConfigError: ``folds`` < 2, or a class with fewer than ``folds`` training accounts (a fold
            would train without it).
    """
    labels, split = np.asarray(labels), np.asarray(split)
    if folds < 2:
        raise ConfigError(f"stacking needs at least 2 cross-fitting folds, got {folds}")
    fold = np.full(labels.shape, -1, dtype=np.int8)
    rng = np.random.default_rng([seed, 0x57AC])
    for cls in (0, 1):
        members = np.flatnonzero((split == TRAIN) & (labels == cls))
        if members.size < folds:
            raise ConfigError(f"stacking's {folds}-fold cross-fitting needs at least {folds} training accounts of "
                              f"class {cls}; the train split has {members.size}")
        fold[rng.permutation(members)] = np.arange(members.size) % folds
    return fold


def cross_fitted_scores(train_without: Callable[[int, np.ndarray], np.ndarray], labels: np.ndarray, split: np.ndarray,
                        folds: int, seed: int) -> np.ndarray:
    """float64 ``[N]``: every account's score from models that never trained on it (module doc).

    Args:
        train_without: ``(k, split_k) -> float [N]``: train a model on the split ``split_k`` (fold
            ``k``'s training accounts set to -1) and score every account.
        labels, split: by account (int ``[N]``; int8 split codes).
        folds, seed: see :func:`training_folds`.
    """
    split = np.asarray(split)
    fold = training_folds(labels, split, folds, seed)
    out = np.zeros(split.shape, dtype=np.float64)
    for k in range(folds):
        held = fold == k
        split_k = split.copy()
        split_k[held] = EXCLUDED
        scores = np.asarray(train_without(k, split_k), dtype=np.float64)
        if scores.shape != split.shape or not np.all(np.isfinite(scores)):
            raise ConfigError(f"stacking fold {k}: the model returned {scores.shape} scores (finite: "
                              f"{bool(np.all(np.isfinite(scores)))}) for {split.size} accounts")
        out[held] = scores[held]
        out[fold < 0] += scores[fold < 0] / folds
        log.info("stacking: fold %d of %d trained without its %d training accounts", k + 1, folds, int(held.sum()))
    return out


class WithColumns:
    """A feature table (:class:`~graphtrain.fraud.data.account_aggregates.AccountFeatures`, or anything
    with ``names``, ``num_accounts`` and ``rows(start, stop)``) with whole-population columns appended.

    Args:
        features: the table.
        columns: name -> float ``[N]`` by account, appended in order after the table's columns.
    """

    def __init__(self, features, columns: Dict[str, np.ndarray]):
        self.features = features
        self.num_accounts = int(features.num_accounts)
        for name, col in columns.items():
            if np.shape(col) != (self.num_accounts,):
                raise ConfigError(f"column {name!r} has shape {np.shape(col)}, need ({self.num_accounts},)")
        self.columns = dict(columns)
        self.names: List[str] = list(features.names) + list(columns)
        self.hops = getattr(features, "hops", None)

    @property
    def num_columns(self) -> int:
        return len(self.names)

    def rows(self, start: int, stop: int) -> np.ndarray:
        """float32 ``[stop - start, C + len(columns)]`` rows of accounts ``start .. stop-1``."""
        extra = [np.asarray(c[start:stop], dtype=np.float32)[:, None] for c in self.columns.values()]
        return np.concatenate([np.asarray(self.features.rows(start, stop), dtype=np.float32), *extra], axis=1)
