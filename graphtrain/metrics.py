"""Node-classification metrics for rare-positive (fraud) labels: ROC-AUC, AP, F1-macro, recall@k.

Scores are probabilities or any monotone score of the positive class; labels are 0/1 (entries with
label < 0, i.e. unknown, must be filtered by the caller). scikit-learn is imported lazily.
"""
from __future__ import annotations

from typing import Dict, Optional

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


def roc_auc(y_true, score) -> float:
    """Area under the ROC curve; NaN when only one class is present."""
    y_true, score = _check(y_true, score)
    if y_true.min() == y_true.max():
        return float("nan")
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y_true, score))


def average_precision(y_true, score) -> float:
    """Average precision (area under the precision-recall curve); NaN without positives."""
    y_true, score = _check(y_true, score)
    if y_true.max() == 0:
        return float("nan")
    from sklearn.metrics import average_precision_score

    return float(average_precision_score(y_true, score))


def f1_macro(y_true, score, threshold: float = 0.5) -> float:
    """Macro-averaged F1 of the two classes when predicting positive for ``score >= threshold``."""
    y_true, score = _check(y_true, score)
    from sklearn.metrics import f1_score

    return float(f1_score(y_true, (score >= threshold).astype(np.int64), average="macro", labels=[0, 1], zero_division=0))


def recall_at_k(y_true, score, k: Optional[int] = None) -> float:
    """Fraction of all positives found among the ``k`` highest scores (default ``k`` = number of positives).

    Ties at the cut-off are broken by position (stable sort), so the result is deterministic.
    """
    y_true, score = _check(y_true, score)
    positives = int(y_true.sum())
    if positives == 0:
        return float("nan")
    k = positives if k is None else int(k)
    if k < 1:
        raise ConfigError(f"k must be >= 1, got {k}")
    top = np.argsort(-score, kind="stable")[:k]
    return float(y_true[top].sum() / positives)


def best_f1_threshold(y_true, score) -> float:
    """The score threshold that maximises F1-macro on (validation) data."""
    y_true, score = _check(y_true, score)
    candidates = np.unique(np.quantile(score, np.linspace(0.0, 1.0, 201)))
    values = [f1_macro(y_true, score, t) for t in candidates]
    return float(candidates[int(np.argmax(values))])


def binary_report(y_true, score, threshold: float = 0.5, k: Optional[int] = None) -> Dict[str, float]:
    """All node-level metrics in one dict: ``auc``, ``ap``, ``f1_macro``, ``recall_at_k``, ``threshold``."""
    return {
        "auc": roc_auc(y_true, score),
        "ap": average_precision(y_true, score),
        "f1_macro": f1_macro(y_true, score, threshold),
        "recall_at_k": recall_at_k(y_true, score, k),
        "threshold": float(threshold),
    }
