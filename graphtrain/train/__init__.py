"""Data-parallel GNN training on Ray with distributed sampling (issue 4).

- :mod:`~graphtrain.train.trainer` -- the public API: :class:`Trainer` (``fit``, ``evaluate``,
  ``predict``) and :func:`predict`.
- :mod:`~graphtrain.train.config` -- :class:`TrainConfig`, the one place defaults live.
- :mod:`~graphtrain.train.group` -- Ray placement, start, failure detection.
- :mod:`~graphtrain.train.worker` -- what each worker runs.
- :mod:`~graphtrain.train.splits` -- train/val/test roles and dealing seeds to workers.
- :mod:`~graphtrain.train.models` -- GraphSAGE / GAT / GCN from PyG layers.
- :mod:`~graphtrain.train.checkpoint` -- checkpoint files (state dicts + JSON manifest).
- :mod:`~graphtrain.train.evaluation` -- metrics of a split.
- :mod:`~graphtrain.train.inference` -- layer-wise full-graph scoring.

Imports are lazy so ``import graphtrain.train`` does not load torch or Ray.
"""

_LAZY = {
    "Trainer": "graphtrain.train.trainer",
    "predict": "graphtrain.train.trainer",
    "TrainConfig": "graphtrain.train.config",
    "ModelConfig": "graphtrain.train.models",
    "GNN": "graphtrain.train.models",
}

__all__ = list(_LAZY)


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'graphtrain.train' has no attribute {name!r}")
