"""Rings from any model's account scores: which high-risk accounts form a group, ranked, with evidence.

- :mod:`~graphtrain.fraud.rings.rings` -- :func:`detect_rings` (ranked rings with evidence),
  :class:`RingConfig`, writing ``rings`` and ``ring_members`` tables.
- :mod:`~graphtrain.fraud.rings.ring_groups` -- components, communities and peeling: which accounts form a group.
- :mod:`~graphtrain.fraud.rings.flow` -- money-flow evidence: temporal cycles, amount-conserving chains,
  fan bursts; :mod:`~graphtrain.fraud.rings.flow_groups` -- rings from it, merged with the score groups.
- :mod:`~graphtrain.fraud.rings.ring_shapes` -- typology guess and member roles.
- :mod:`~graphtrain.fraud.rings.bridges` -- edges that join two groups; :mod:`~graphtrain.fraud.rings.peeling`
  -- dense-subgraph peeling with camouflage-resistant weights.
"""
from graphtrain._lazy import lazy_exports

_LAZY = {
    "detect_rings": "graphtrain.fraud.rings.rings",
    "RingConfig": "graphtrain.fraud.rings.rings",
    "DetectedRings": "graphtrain.fraud.rings.rings",
}

__all__, __getattr__, __dir__ = lazy_exports(__name__, _LAZY)
