"""Node-classification metrics for rare-positive (fraud) labels: ROC-AUC, AP, F1-macro, recall@k.

Scores are probabilities or any monotone score of the positive class; labels are 0/1 (entries with
label < 0, i.e. unknown, must be filtered by the caller). AUC, AP and F1 come from value sorts of
each class's scores and binary searches (no argsort, which is about 5x slower than a value sort on
millions of scores); recall@k from a partition. The definitions are scikit-learn's (the tests
compare with it).
"""
from __future__ import annotations

from typing import Dict, Optional, Tuple

import numpy as np

from graphtrain.errors import ConfigError


def _check(y_true, score):
    y_true = np.asarray(y_true).astype(np.int64).ravel()
    score = np.asarray(score, dtype=np.float64).ravel()
    if y_true.shape != score.shape:
        raise ConfigError(f"labels and scores differ in length: {y_true.shape[0]} vs {score.shape[0]}")
    if y_true.size == 0:
        raise ConfigError("no labelled examples to evaluate")
    if np.any((y_true != 0) & (y_true != 1)):
        raise ConfigError("binary metrics need labels 0 or 1")
    if not np.all(np.isfinite(score)):
        raise ConfigError("scores contain NaN or infinity")
    return y_true, score


def _by_class(y_true: np.ndarray, score: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """``(positives, negatives)``: the scores of each class, sorted ascending (float64). Two value sorts,
    several times faster than one argsort of all the scores (no gather of labels by position)."""
    positive = y_true == 1
    return np.sort(score[positive]), np.sort(score[~positive])


def _threshold_counts(y_true: np.ndarray, score: np.ndarray):
    """``(tps, fps)`` at each distinct score from the highest down: the positives and negatives
    scoring at least that much (int64 ``[T]`` each; tied scores form one step), as scikit-learn's
    ``_binary_clf_curve``. Value sorts and binary searches, no argsort."""
    pos, neg = _by_class(y_true, score)
    ranked = np.sort(score)
    distinct = ranked[np.r_[ranked[1:] != ranked[:-1], True]]  # ascending: the searches move forward
    tps = pos.size - np.searchsorted(pos, distinct, side="left")
    fps = neg.size - np.searchsorted(neg, distinct, side="left")
    return tps[::-1], fps[::-1]


def _roc_auc_sorted(pos: np.ndarray, neg: np.ndarray) -> float:
    """ROC-AUC from each class's sorted scores: the share of (positive, negative) pairs ordered right, a
    tie counting half -- the area under scikit-learn's trapezoid curve, counted exactly. NaN when a
    class is missing."""
    if not (pos.size and neg.size):
        return float("nan")
    below = np.searchsorted(neg, pos, side="left").sum(dtype=np.int64)  # negatives under each positive
    at_or_below = np.searchsorted(neg, pos, side="right").sum(dtype=np.int64)
    return float((below + at_or_below) / (2.0 * pos.size * neg.size))


def _average_precision_sorted(pos: np.ndarray, neg: np.ndarray) -> float:
    """Average precision from each class's sorted scores: ``sum_t (R_t - R_{t-1}) P_t`` over the
    distinct scores ``t``; only the scores some positive has add recall. NaN without positives."""
    if not pos.size:
        return float("nan")
    last = np.r_[pos[1:] != pos[:-1], True]  # the last of each run of equal positive scores
    values = pos[last]
    tps = pos.size - np.searchsorted(pos, values, side="left")  # positives scoring >= t
    fps = neg.size - np.searchsorted(neg, values, side="left")
    gain = np.diff(np.flatnonzero(last), prepend=-1)  # positives scoring exactly t
    return float(np.sum(gain / pos.size * (tps / (tps + fps))))


def roc_auc(y_true, score) -> float:
    """Area under the ROC curve (trapezoids: a tie of positives and negatives counts half); NaN when
    only one class is present. scikit-learn's ``roc_auc_score``, from value sorts of each class's scores."""
    y_true, score = _check(y_true, score)
    return _roc_auc_sorted(*_by_class(y_true, score))


def average_precision(y_true, score) -> float:
    """Average precision (area under the precision-recall curve); NaN without positives.

    scikit-learn's ``average_precision_score``: ``sum_i (R_i - R_{i-1}) P_i`` over the distinct
    scores from the highest down (tied scores form one step), from value sorts of each class's scores
    and without scikit-learn's input validation -- many times faster on millions of accounts, where the
    rings' score choice computes dozens of these.
    """
    y_true, score = _check(y_true, score)
    return _average_precision_sorted(*_by_class(y_true, score))


def curve_points(y_true, score, max_points: int = 2000) -> Dict[str, np.ndarray]:
    """ROC and precision-recall curves for a figure: ``fpr``, ``tpr`` (from (0, 0)), ``recall`` and
    ``precision`` at the distinct scores from the highest down, thinned to about ``max_points``
    evenly spaced thresholds (the first and last kept). Needs both classes."""
    y_true, score = _check(y_true, score)
    if y_true.min() == y_true.max():
        raise ConfigError("curves need labels of both classes")
    tps, fps = _threshold_counts(y_true, score)
    keep = np.unique(np.linspace(0, tps.size - 1, min(tps.size, max_points)).round().astype(np.int64))
    tps, fps = tps[keep].astype(np.float64), fps[keep].astype(np.float64)
    return {"fpr": np.concatenate([[0.0], fps / fps[-1]]), "tpr": np.concatenate([[0.0], tps / tps[-1]]),
            "recall": tps / tps[-1], "precision": tps / (tps + fps)}


def _f1_macro_at(pos: np.ndarray, neg: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """float64 ``[T]``: F1-macro at each of ``thresholds`` (positive: ``score >= t``), from each class's
    sorted scores (:func:`_by_class`) -- O(T log N), not one pass over the data per threshold. As
    scikit-learn's ``f1_score(average="macro", labels=[0, 1], zero_division=0)``: a class's F1 is 0 when
    it is neither present nor predicted."""
    tp = pos.size - np.searchsorted(pos, thresholds, side="left")  # positives scored >= t
    fp = neg.size - np.searchsorted(neg, thresholds, side="left")
    fn, tn = pos.size - tp, neg.size - fp
    with np.errstate(invalid="ignore", divide="ignore"):
        f1_pos = np.where(2 * tp + fp + fn > 0, 2.0 * tp / (2 * tp + fp + fn), 0.0)
        f1_neg = np.where(2 * tn + fn + fp > 0, 2.0 * tn / (2 * tn + fn + fp), 0.0)
    return (f1_pos + f1_neg) / 2.0


def f1_macro(y_true, score, threshold: float = 0.5) -> float:
    """Macro-averaged F1 of the two classes when predicting positive for ``score >= threshold``."""
    y_true, score = _check(y_true, score)
    return float(_f1_macro_at(*_by_class(y_true, score), np.array([threshold], dtype=np.float64))[0])


def _recall_at_k(y_true: np.ndarray, score: np.ndarray, k: Optional[int]) -> float:
    positives = int(y_true.sum())
    if positives == 0:
        return float("nan")
    k = positives if k is None else int(k)
    if k < 1:
        raise ConfigError(f"k must be >= 1, got {k}")
    if k >= score.size:
        return 1.0
    cut = np.partition(score, score.size - k)[score.size - k]  # the k-th highest score
    above = score > cut
    tied = np.flatnonzero(score == cut)[: k - int(above.sum())]  # the tie at the cut, earliest positions first
    return float((int(y_true[above].sum()) + int(y_true[tied].sum())) / positives)


def recall_at_k(y_true, score, k: Optional[int] = None) -> float:
    """Fraction of all positives found among the ``k`` highest scores (default ``k`` = number of positives).

    Ties at the cut-off are broken by position (earlier first, as a stable sort), so the result is
    deterministic. Linear time: a partition finds the ``k``-th highest score, no sort.
    """
    y_true, score = _check(y_true, score)
    return _recall_at_k(y_true, score, k)


def best_f1_threshold(y_true, score) -> float:
    """The score threshold that maximises F1-macro on (validation) data."""
    y_true, score = _check(y_true, score)
    candidates = np.unique(np.quantile(score, np.linspace(0.0, 1.0, 201)))
    return float(candidates[int(np.argmax(_f1_macro_at(*_by_class(y_true, score), candidates)))])


def binary_report(y_true, score, threshold: float = 0.5, k: Optional[int] = None) -> Dict[str, float]:
    """All node-level metrics in one dict: ``auc``, ``ap``, ``f1_macro``, ``recall_at_k``, ``threshold``
    (each as its function here; the two classes' scores are sorted once for all of them)."""
    y_true, score = _check(y_true, score)
    pos, neg = _by_class(y_true, score)
    return {
        "auc": _roc_auc_sorted(pos, neg),
        "ap": _average_precision_sorted(pos, neg),
        "f1_macro": float(_f1_macro_at(pos, neg, np.array([threshold], dtype=np.float64))[0]),
        "recall_at_k": _recall_at_k(y_true, score, k),
        "threshold": float(threshold),
    }
