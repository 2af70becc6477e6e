"""Fraud-ring detection: synthetic transaction graphs, the tree baseline, ring detection,
evaluation and reports (see docs/fraud.md).

Sub-packages by job, each importing only those above it in this list:

- :mod:`~graphtrain.fraud.data` -- a user's tables (``tables``), the transaction graph in memory
  (``transaction_graph``: accounts numbered ``0 .. N-1``), public datasets (``datasets``).
- :mod:`~graphtrain.fraud.synth` -- synthetic data with planted rings (``generate``, ``generator_config``,
  ``typologies``, ``planting``, ``placement``, ``synthetic_accounts``, ``draws``).
- :mod:`~graphtrain.fraud.rings` -- rings from any model's scores (``rings``, ``ring_groups``,
  ``ring_shapes``, ``bridges``, ``peeling``).
- :mod:`~graphtrain.fraud.evaluation` -- metrics and ground truth (``evaluate``), the score blend and
  the rings' score (``blend``, ``ring_score``), the HTML report (``report``, ``report_figures``).
- :mod:`~graphtrain.fraud.pipeline` -- the tree baseline (``baseline``), the stages after scoring
  composed (``pipeline``), and the whole run on Ray (``detect``: :func:`detect_rings`).

The names below load their modules on first use, so ``import graphtrain.fraud`` stays cheap.
"""
from graphtrain._lazy import lazy_exports

_LAZY = {
    "detect_rings": "graphtrain.fraud.pipeline.detect",
    "ModelOptions": "graphtrain.fraud.pipeline.detect",
    "PipelineConfig": "graphtrain.fraud.pipeline.pipeline",
    "generate": "graphtrain.fraud.synth.generate",
    "GeneratorConfig": "graphtrain.fraud.synth.generator_config",
    "TransactionGraph": "graphtrain.fraud.data.transaction_graph",
}

__all__, __getattr__, __dir__ = lazy_exports(__name__, _LAZY)
