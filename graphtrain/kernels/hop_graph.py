"""The arrays of a CSC graph as the one-hop kernels see them (:class:`HopGraph`)."""
from __future__ import annotations

from typing import NamedTuple, Optional

import numpy as np


class HopGraph(NamedTuple):
    """In-edges of local destinations ``[0, num_nodes)``, CSC; what every backend's ``sample_hop`` reads.

    Attributes:
        indptr: int64 ``[num_nodes + 1]``; in-edges of local ``v`` are positions ``indptr[v]:indptr[v+1]``.
        src: int64 ``[num_edges]`` global source ID per position.
        edge_start: global edge ID of position 0 (edge IDs are contiguous).
        weight: float64 ``[num_edges]``, finite and >= 0, or None (uniform sampling only).
        time: int64 ``[num_edges]`` or None (no temporal sampling).
        time_sorted: ``time`` is non-decreasing within each destination's segment.

    The CUDA backend holds the same tuple with device arrays (:func:`graphtrain.kernels.cuda.to_device`).
    """

    indptr: np.ndarray
    src: np.ndarray
    edge_start: int
    weight: Optional[np.ndarray] = None
    time: Optional[np.ndarray] = None
    time_sorted: bool = False

    @property
    def num_nodes(self) -> int:
        return int(self.indptr.shape[0] - 1)
