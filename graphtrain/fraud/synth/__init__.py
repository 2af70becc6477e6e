"""Synthetic transaction graphs with planted laundering rings and legitimate look-alikes (``graphtrain generate``).

- :mod:`~graphtrain.fraud.synth.generator_config` -- :class:`GeneratorConfig`, the options.
- :mod:`~graphtrain.fraud.synth.generate` -- :func:`generate` (the streaming writer) and
  :func:`load_generated` (a generated directory as a :class:`~graphtrain.fraud.data.TransactionGraph`).
- :mod:`~graphtrain.fraud.synth.typologies` -- ring shapes and their legitimate look-alikes.
- :mod:`~graphtrain.fraud.synth.planting` -- who is in which pattern; its transactions on demand.
- :mod:`~graphtrain.fraud.synth.placement` -- where planted rows go in the stream.
- :mod:`~graphtrain.fraud.synth.synthetic_accounts` -- account IDs, features, noisy labels.
- :mod:`~graphtrain.fraud.synth.draws` -- random variates from the counter-based RNG.
"""
from graphtrain._lazy import lazy_exports

_LAZY = {
    "GeneratorConfig": "graphtrain.fraud.synth.generator_config",
    "generate": "graphtrain.fraud.synth.generate",
    "load_generated": "graphtrain.fraud.synth.generate",
}

__all__, __getattr__, __dir__ = lazy_exports(__name__, _LAZY)
