"""Blend the GNN's account scores with the tree baseline's: a rank average weighted on the validation split.

The two models see the data differently -- the GNN learns from sampled neighbourhoods, the tree
from fixed neighbour aggregates -- and their errors are far from identical, so an average of the
two rankings beats either alone on every dataset we measured (examples/fraud/README.md). Ranks, not
raw scores, because the two are on different scales (a class-weighted softmax vs a calibrated tree)::

    order   = w * rank(gnn) + (1 - w) * rank(tree)        ranks scaled to (0, 1] over all accounts
    blended = w * gnn_sorted[pos] + (1 - w) * tree_sorted[pos]   pos = the account's place in ``order``

The second line only puts the blended order back on a score scale: the account at place ``pos``
gets the weighted mean of the two models' ``pos``-th smallest scores (ties share the mean place,
interpolated). The order -- everything AUC and AP see -- is the rank average's; the values follow
the two models' score distributions, so ``w = 1`` gives back the GNN's scores exactly and ``w = 0``
the tree's. So ``blend_score`` reads like a model score (most accounts near 0, the risky ones
high) and can be handed to anything that takes scores -- ring detection uses them as thresholds and
as peeling priors -- where bare ranks (uniform on (0, 1]) would look risky for half the accounts.

``w`` is picked from ``0, 0.1, ..., 1`` by average precision on the labelled validation accounts
(ties go to the weight nearest 0.5). Only validation labels are used; the test split stays unseen.
``w = 0`` (the tree alone) and ``w = 1`` (the GNN alone) are possible outcomes and are reported as
such. One caveat: the GNN's epoch was itself chosen on the validation split, so its validation AP
is a little optimistic and the choice leans towards it.

The fraud pipeline reports the blend beside the GNN, and the blend is one of the candidates for
the rings' score (:mod:`graphtrain.fraud.evaluation.ring_score`: the best on held-out validation accounts,
the blend's weight chosen on the other half). Earlier runs found rings from the GNN's scores alone:
at better account-level AP, blended scores found fewer of the planted rings (20,000 generated
accounts: ring recall 0.56 blended vs 0.66 from the GNN, precision 0.54 vs 0.40; 6,000: recall
0.21-0.25 vs 0.42) -- message passing gives a ring's members alike scores, which is what the ring
stage's components need.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np

from graphtrain import metrics
from graphtrain.errors import ConfigError
from graphtrain.fraud.evaluation.evaluate import selection_rows

WEIGHTS = np.round(np.linspace(0.0, 1.0, 11), 1)  # the GNN's weight


@dataclass(frozen=True)
class Blend:
    """Blended scores float64 ``[N]`` (see the module doc), the GNN's weight, and the validation AP of every weight
    tried (keys: the weights as text, ``"0.0" .. "1.0"``, as they appear in the JSON summary)."""

    scores: np.ndarray
    weight: float
    val_ap: dict


def scaled_ranks(scores: np.ndarray) -> np.ndarray:
    """Average ranks (ties share their mean rank; ``scipy.stats.rankdata(method="average")``) divided by
    ``N``: float64 ``[N]`` in (0, 1]. One unstable sort: the order within a tie does not matter."""
    scores = np.asarray(scores, dtype=np.float64)
    n = scores.size
    if n == 0:
        return np.zeros(0)
    order = np.argsort(scores)
    ordered = scores[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])  # first place of each tie group
    ends = np.r_[starts[1:], n]
    ranks = np.empty(n)
    ranks[order] = np.repeat((starts + ends + 1) / 2.0, ends - starts)  # mean of the 1-based places
    return ranks / n


def _at_places(ordered: np.ndarray, places: np.ndarray) -> np.ndarray:
    """``ordered`` (sorted, ``[N]``) read at fractional 0-based ``places`` in ``[0, N-1]``, linearly
    interpolated between neighbours: ``np.interp(places, arange(N), ordered)`` without its search."""
    lo = np.floor(places).astype(np.int64)
    hi = np.minimum(lo + 1, ordered.size - 1)
    return ordered[lo] + (places - lo) * (ordered[hi] - ordered[lo])


def blend_scores(gnn: np.ndarray, tree: np.ndarray, labels: np.ndarray, split: np.ndarray,
                 ranks: Optional[Tuple[np.ndarray, np.ndarray]] = None) -> Blend:
    """Rank-average ``gnn`` and ``tree`` (float ``[N]`` each) with the weight best on validation AP,
    on the two models' score scale (module doc).

    Args:
        gnn, tree: scores of every account, higher = riskier.
        labels: int ``[N]``, 1 fraud, 0 normal, -1 unknown.
        split: int ``[N]`` split codes (``graphtrain.split``); the weight is chosen on ``VAL``
            (on ``TRAIN`` if the validation split lacks one of the classes).
        ranks: ``(scaled_ranks(gnn), scaled_ranks(tree))`` when the caller has them (the pipeline
            shares them with :func:`~graphtrain.fraud.evaluation.ring_score.choose_ring_score`).

    Raises:
        ConfigError: shapes differ, NaN scores, or neither split has labels of both classes.
    """
    gnn, tree = np.asarray(gnn, dtype=np.float64), np.asarray(tree, dtype=np.float64)
    labels, split = np.asarray(labels), np.asarray(split)
    if not gnn.shape == tree.shape == labels.shape == split.shape or gnn.ndim != 1:
        raise ConfigError(f"blend: shapes differ: gnn {gnn.shape}, tree {tree.shape}, labels {labels.shape}, split {split.shape}")
    if np.isnan(gnn).any() or np.isnan(tree).any():
        raise ConfigError("blend: scores contain NaN")
    rows = selection_rows(labels, split, "a blend weight")
    r_gnn, r_tree = ranks if ranks is not None else (scaled_ranks(gnn), scaled_ranks(tree))
    val_ap = {f"{w:.1f}": metrics.average_precision(labels[rows], w * r_gnn[rows] + (1 - w) * r_tree[rows]) for w in WEIGHTS}
    best = max(val_ap.values())
    weight = min((float(w) for w, ap in val_ap.items() if ap >= best - 1e-12), key=lambda w: abs(w - 0.5))
    order = scaled_ranks(weight * r_gnn + (1 - weight) * r_tree) * len(gnn) - 1.0  # 0-based place, ties averaged
    values = weight * _at_places(np.sort(gnn), order) + (1 - weight) * _at_places(np.sort(tree), order)
    return Blend(values, weight, val_ap)
