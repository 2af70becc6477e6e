"""The tree baseline on a graph in memory (the pipeline runs the same features and classifier out of
core: :mod:`graphtrain.fraud.data.account_aggregates`, :mod:`graphtrain.fraud.pipeline.dataset_baseline`;
this module is their reference). The tree baseline every fraud pipeline prints: gradient-boosted trees on account features plus
neighbour-aggregated features (GADBench, Tang et al. 2023, found such trees beat most GNNs on
fraud data).

Features of account ``v`` (``d`` = ``in`` and ``out`` for directed graphs, ``nbr`` for undirected):

- its own features;
- structure per direction: transaction count, distinct counterparties; with amounts: sum, mean,
  max and standard deviation of the amounts; with times: active span and distinct active days;
- hop 1: mean and max, over the transactions of each direction, of the counterparties' own and
  structure features;
- hop 2 (``hops=2``): mean over each direction of the hop-1 means.

All aggregates are vectorised NumPy over the edge arrays (edges sorted once per direction, then
``ufunc.reduceat`` per column). Memory: about 32 bytes per edge per direction while aggregating
(sort order, sorted endpoints, one gathered column) plus ``4 * N * (columns)`` bytes for the output
(a few hundred columns); e.g. 10M transactions and 1M accounts take about 1.5 GB.

The classifier is scikit-learn's ``HistGradientBoostingClassifier`` trained on the train split.
Columns no split could use on the training rows (all or nearly all missing, or constant; e.g. the
``in_*`` columns of a directed bipartite graph whose labelled users only send) are dropped and
named in the log and in ``params["dropped_features"]`` (see :func:`usable_columns`).
Scores of train accounts are out-of-fold (``folds``-fold cross-fitting within the train split), so
every score is out-of-sample and ring detection on baseline scores is not flattered by training
labels.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Tuple

import numpy as np

from graphtrain.errors import ConfigError
from graphtrain.fraud.data.account_aggregates import nan_mean
from graphtrain.fraud.data.transaction_graph import TransactionGraph
from graphtrain.log import get_logger
from graphtrain.split import TRAIN

log = get_logger("fraud.baseline")
DAY_SECONDS = 86400
MIN_SAMPLES_LEAF = 20  # scikit-learn's default for HistGradientBoostingClassifier, stated so usable_columns agrees


class _Grouped:
    """Edges grouped by one endpoint (the owner), to aggregate per account over its edges."""

    def __init__(self, owner: np.ndarray, other: np.ndarray, num_nodes: int):
        self.order = np.argsort(owner, kind="stable")
        self.other = other[self.order]
        self.count = np.bincount(owner, minlength=num_nodes).astype(np.float64)
        self.has = self.count > 0
        starts = np.zeros(num_nodes, dtype=np.int64)
        np.cumsum(self.count[:-1].astype(np.int64), out=starts[1:])
        self.starts = starts[self.has]
        self.num_nodes = num_nodes

    def _reduce(self, ufunc, values_sorted: np.ndarray) -> np.ndarray:
        out = np.full(self.num_nodes, np.nan)
        if self.starts.size:
            out[self.has] = ufunc.reduceat(values_sorted, self.starts)
        return out

    def edge_sum(self, values: np.ndarray) -> np.ndarray:
        return np.nan_to_num(self._reduce(np.add, values[self.order]))

    def edge_max(self, values: np.ndarray) -> np.ndarray:
        return self._reduce(np.fmax, values[self.order])

    def edge_min(self, values: np.ndarray) -> np.ndarray:
        return self._reduce(np.fmin, values[self.order])

    def distinct(self, keys: np.ndarray, presorted: bool = False) -> np.ndarray:
        """Number of distinct ``keys`` (int64 per edge, e.g. a day number) per owner.

        ``keys`` are in the input edge order, or already in grouped order when ``presorted``.
        """
        keys = np.asarray(keys, dtype=np.int64)
        keys = keys if presorted else keys[self.order]
        if keys.size == 0:
            return np.zeros(self.num_nodes)
        keys = keys - keys.min()
        span = int(keys.max()) + 1
        owner = np.repeat(np.arange(self.num_nodes, dtype=np.int64), self.count.astype(np.int64))
        pairs = np.unique(owner * span + keys)
        return np.bincount(pairs // span, minlength=self.num_nodes).astype(np.float64)

    def neighbour_mean(self, node_values: np.ndarray) -> np.ndarray:
        """Mean over the owner's edges of the counterparty's value (NaN values skipped)."""
        return nan_mean(self._reduce, node_values[self.other])

    def neighbour_max(self, node_values: np.ndarray) -> np.ndarray:
        return self._reduce(np.fmax, node_values[self.other])


def _directions(graph: TransactionGraph) -> Dict[str, Tuple[np.ndarray, np.ndarray]]:
    """direction name -> (owner, counterparty) per edge."""
    if graph.directed:
        return {"in": (graph.dst, graph.src), "out": (graph.src, graph.dst)}
    return {"nbr": (graph.dst, graph.src)}


def _structure(graph: TransactionGraph, name: str, grouped: _Grouped) -> Dict[str, np.ndarray]:
    cols = {f"{name}_count": grouped.count.copy(), f"{name}_distinct": grouped.distinct(grouped.other, presorted=True)}
    if graph.amount is not None:
        amount = graph.amount.astype(np.float64)
        total = grouped.edge_sum(amount)
        sq = grouped.edge_sum(amount * amount)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(grouped.has, total / grouped.count, np.nan)
            var = np.where(grouped.has, sq / grouped.count - mean * mean, np.nan)
        cols.update({
            f"{name}_amount_sum": total,
            f"{name}_amount_mean": mean,
            f"{name}_amount_max": grouped.edge_max(amount),
            f"{name}_amount_std": np.sqrt(np.maximum(var, 0.0)),
        })
    if graph.time is not None:
        t = graph.time.astype(np.float64)
        cols[f"{name}_span_days"] = (grouped.edge_max(t) - grouped.edge_min(t)) / DAY_SECONDS
        cols[f"{name}_active_days"] = grouped.distinct(graph.time // DAY_SECONDS)
    return cols


def neighbour_features(graph: TransactionGraph, hops: int = 2) -> Tuple[np.ndarray, List[str]]:
    """The baseline's feature matrix (see the module docstring).

    Returns:
        ``(X, names)``: float32 ``[N, C]`` (NaN where undefined, e.g. no neighbours) and the ``C`` names.
    """
    if hops not in (0, 1, 2):
        raise ConfigError(f"hops must be 0, 1 or 2, got {hops}")
    graph.validate()
    n = graph.num_accounts
    base: Dict[str, np.ndarray] = {f"own_{c}": graph.accounts.features[:, j].astype(np.float64)
                                   for j, c in enumerate(graph.accounts.feature_names)}
    groups = {name: _Grouped(owner, other, n) for name, (owner, other) in _directions(graph).items()}
    for name, grouped in groups.items():
        base.update(_structure(graph, name, grouped))
    columns: Dict[str, np.ndarray] = dict(base)
    hop1_means: Dict[str, np.ndarray] = {}
    if hops >= 1:
        for name, grouped in groups.items():
            for col, values in base.items():
                hop1_means[f"{name}_mean_{col}"] = grouped.neighbour_mean(values)
                columns[f"{name}_mean_{col}"] = hop1_means[f"{name}_mean_{col}"]
                columns[f"{name}_max_{col}"] = grouped.neighbour_max(values)
    if hops >= 2:
        for name, grouped in groups.items():
            for col, values in hop1_means.items():
                columns[f"{name}2_mean_{col}"] = grouped.neighbour_mean(values)
    names = list(columns)
    x = np.empty((n, len(names)), dtype=np.float32)
    for j, col in enumerate(names):
        x[:, j] = columns[col]
    return x, names


@dataclass
class BaselineResult:
    """Scores of the tree baseline.

    Attributes:
        scores: float64 ``[N]`` fraud probability of every account (train accounts: out-of-fold).
        feature_names: the columns the trees saw.
        params: classifier parameters and fitting details (for the report).
    """

    scores: np.ndarray
    feature_names: List[str]
    params: Dict[str, object] = field(default_factory=dict)


def _classifier(seed: int, max_iter: int):
    from sklearn.ensemble import HistGradientBoostingClassifier

    # scikit-learn's defaults (early stopping on 10% of the rows when there are more than 10,000)
    return HistGradientBoostingClassifier(max_iter=max_iter, random_state=seed, min_samples_leaf=MIN_SAMPLES_LEAF)


def usable_columns(x: np.ndarray, rows=None, min_leaf: int = MIN_SAMPLES_LEAF) -> np.ndarray:
    """Bool ``[C]``: the columns of ``x[rows]`` (the rows a tree is fitted on; all when None) that a split can use.

    A column is unusable when it has fewer than ``min_leaf`` observed (non-NaN) values -- all
    missing included -- or one observed value and fewer than ``min_leaf`` missing ones (constant):
    every split would leave a child under ``min_leaf`` rows. Dropping such columns changes no tree;
    keeping an all-missing one makes scikit-learn's binning fail (``window shape cannot be larger
    than input array shape``), e.g. the ``in_*`` columns of users who only send, in a directed
    bipartite graph.
    """
    x = np.asarray(x)
    keep = np.zeros(x.shape[1], dtype=bool)
    for j in range(x.shape[1]):  # one column at a time: memory O(rows)
        col = x[:, j] if rows is None else x[rows, j]
        seen = col[~np.isnan(col)]
        if seen.size >= min_leaf:
            keep[j] = seen.min() != seen.max() or col.size - seen.size >= min_leaf
    return keep


def _fit_predict(x: np.ndarray, y: np.ndarray, fit_rows: np.ndarray, score_rows, seed: int, max_iter: int) -> np.ndarray:
    """Fit on ``x[fit_rows]`` (with labels ``y``) using only the columns usable there; scores of ``x[score_rows]``."""
    keep = usable_columns(x, fit_rows)
    if not keep.any():  # no split is possible: the trees would predict the training prior
        return np.full(x[score_rows].shape[0], float(np.mean(y)))
    if not keep.all():
        x = x[:, keep]
    model = _classifier(seed, max_iter).fit(x[fit_rows], y)
    return model.predict_proba(x[score_rows])[:, 1]


def train_and_score(x: np.ndarray, labels: np.ndarray, train_rows: np.ndarray, seed: int = 0, max_iter: int = 100) -> np.ndarray:
    """Fit the classifier on ``train_rows`` (indices with labels 0/1) and return float64 scores of every row.

    Columns a tree cannot split on those rows (see :func:`usable_columns`) are left out of the fit.
    """
    return _fit_predict(x, np.asarray(labels)[train_rows], train_rows, slice(None), seed, max_iter).astype(np.float64)


def fit_scores(x: np.ndarray, labels: np.ndarray, split: np.ndarray, seed: int = 0, folds: int = 5,
               max_iter: int = 100) -> np.ndarray:
    """Train on the train split and score every row; train rows get out-of-fold scores.

    Args:
        x: float ``[N, C]`` features.
        labels: int ``[N]`` 0/1 (-1 unknown, never trained on).
        split: int8 ``[N]`` split codes; rows with code 0 and a known label are the training set.
        seed: classifier and fold seed.
        folds: cross-fitting folds for the train rows' scores (>= 2).
        max_iter: boosting iterations at most (scikit-learn's default early stopping: on 10% of the
            training rows when there are more than 10,000).
    """
    from sklearn.model_selection import StratifiedKFold

    labels = np.asarray(labels)
    train = np.flatnonzero((np.asarray(split) == TRAIN) & (labels >= 0))
    y = labels[train]
    if train.size == 0 or y.min() == y.max():
        raise ConfigError("the baseline needs training accounts of both classes (labels 0 and 1 in the train split)")
    if folds < 2 or np.bincount(y).min() < folds:
        raise ConfigError(f"cannot cross-fit {folds} folds: the train split has {int(np.bincount(y).min())} accounts of its rarer class")
    scores = train_and_score(x, labels, train, seed=seed, max_iter=max_iter)
    for fit_rows, held_rows in StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed).split(train, y):
        scores[train[held_rows]] = _fit_predict(x, y[fit_rows], train[fit_rows], train[held_rows], seed, max_iter)
    return scores.astype(np.float64)


def run_baseline(graph: TransactionGraph, split: np.ndarray, seed: int = 0, hops: int = 2, folds: int = 5,
                 max_iter: int = 100) -> BaselineResult:
    """Neighbour-aggregated features + gradient-boosted trees; scores for every account."""
    split = np.asarray(split)
    if split.shape != (graph.num_accounts,):
        raise ConfigError(f"split has {split.shape[0]} entries for {graph.num_accounts} accounts")
    x, names = neighbour_features(graph, hops=hops)
    train = (split == TRAIN) & (graph.accounts.labels >= 0)
    keep = usable_columns(x, np.flatnonzero(train))
    dropped = [n for n, k in zip(names, keep) if not k]
    if dropped:
        log.info("baseline: dropped %d of %d feature columns that are missing, nearly all missing (fewer than %d "
                 "values) or constant on the %d labelled training accounts: %s", len(dropped), len(names),
                 MIN_SAMPLES_LEAF, int(train.sum()), ", ".join(dropped))
        x, names = np.ascontiguousarray(x[:, keep]), [n for n, k in zip(names, keep) if k]
    log.info("baseline: %d accounts x %d features, %d training accounts", x.shape[0], x.shape[1], int((split == TRAIN).sum()))
    scores = fit_scores(x, graph.accounts.labels, split, seed=seed, folds=folds, max_iter=max_iter)
    params = {"model": "sklearn HistGradientBoostingClassifier (defaults)", "max_iter": max_iter, "hops": hops,
              "folds": folds, "seed": seed, "num_features": len(names), "dropped_features": dropped}
    return BaselineResult(scores=scores, feature_names=names, params=params)
