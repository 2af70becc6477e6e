"""Metrics of one evaluated split from class probabilities (computed on rank 0).

Binary labels (fraud / not fraud): ROC-AUC, average precision, F1-macro and recall@k of the
positive-class probability (:mod:`graphtrain.metrics`). F1-macro needs a threshold: on the
validation split it is the one that maximises F1 there (``threshold`` in the result); the test
split is scored with the validation threshold. ``k`` of recall@k defaults to the number of
positives of the split. More than two classes: accuracy and F1-macro of the arg-max class.
"""
from __future__ import annotations

import math
from typing import Dict, Optional

import numpy as np

from graphtrain import metrics as m


def split_metrics(labels: np.ndarray, probs: np.ndarray, threshold: Optional[float] = None,
                  k: Optional[int] = None) -> Dict[str, float]:
    """Metrics of ``probs`` (float ``[n, C]``) against ``labels`` (int ``[n]``, all >= 0)."""
    labels = np.asarray(labels, dtype=np.int64)
    out: Dict[str, float] = {"count": int(labels.size)}
    if labels.size == 0:
        return out
    if probs.shape[1] == 2:
        score = probs[:, 1]
        if threshold is None:
            threshold = m.best_f1_threshold(labels, score)
        report = m.binary_report(labels, score, threshold, k)
        out.update(report)
        out["positives"] = int(labels.sum())
    else:
        from sklearn.metrics import f1_score

        pred = probs.argmax(axis=1)
        out["accuracy"] = float((pred == labels).mean())
        out["f1_macro"] = float(f1_score(labels, pred, average="macro"))
    return {key: (None if isinstance(v, float) and math.isnan(v) else v) for key, v in out.items()}


def improved(value: Optional[float], best: Optional[float], min_delta: float) -> bool:
    """Whether a (higher-is-better) metric improved on the best so far by more than ``min_delta``."""
    if value is None:
        return False
    return best is None or value > best + min_delta
