"""The fraud pipeline composed: transactions + accounts -> partition -> train -> score -> rings -> report.

- :mod:`~graphtrain.fraud.pipeline.detect` -- :func:`detect_rings` (files in, ``graphtrain
  detect-rings``), :func:`run_pipeline` (a loaded graph), :func:`run_generated` (``graphtrain demo``)
  and :class:`ModelOptions` (partitioning and training).
- :mod:`~graphtrain.fraud.pipeline.pipeline` -- the stages after scoring (split, baseline, blend,
  rings, evaluation, report; :class:`PipelineConfig`); model scores plug in as an array.
- :mod:`~graphtrain.fraud.pipeline.dataset_baseline` -- the tree baseline the pipeline runs: gradient-boosted
  trees on account features plus neighbour aggregates, on the same split, fitted on a bounded sample.
- :mod:`~graphtrain.fraud.pipeline.baseline` -- the same features and classifier on a graph in memory
  (the reference the out-of-core features are tested against; examples).
"""
from graphtrain._lazy import lazy_exports

_LAZY = {
    "detect_rings": "graphtrain.fraud.pipeline.detect",
    "run_pipeline": "graphtrain.fraud.pipeline.detect",
    "run_generated": "graphtrain.fraud.pipeline.detect",
    "ModelOptions": "graphtrain.fraud.pipeline.detect",
    "PipelineConfig": "graphtrain.fraud.pipeline.pipeline",
}

__all__, __getattr__, __dir__ = lazy_exports(__name__, _LAZY)
