"""Judging scores and rings, and the HTML report.

- :mod:`~graphtrain.fraud.evaluation.evaluate` -- node metrics, thresholds, ground-truth rings
  (:func:`load_true_rings`) and ring metrics.
- :mod:`~graphtrain.fraud.evaluation.blend` -- the rank blend of the GNN and the tree baseline, weighted on validation.
- :mod:`~graphtrain.fraud.evaluation.ring_score` -- which score the rings come from, and the
  population-calibrated threshold.
- :mod:`~graphtrain.fraud.evaluation.report` + :mod:`~graphtrain.fraud.evaluation.report_figures` --
  the HTML page and its PNGs (matplotlib).
"""
from graphtrain._lazy import lazy_exports

_LAZY = {
    "TrueRings": "graphtrain.fraud.evaluation.evaluate",
    "load_true_rings": "graphtrain.fraud.evaluation.evaluate",
    "ring_metrics": "graphtrain.fraud.evaluation.evaluate",
    "blend_scores": "graphtrain.fraud.evaluation.blend",
    "write_report": "graphtrain.fraud.evaluation.report",
}

__all__, __getattr__, __dir__ = lazy_exports(__name__, _LAZY)
