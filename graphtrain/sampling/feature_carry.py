"""Feature rows that reached a worker inside its hop answers: :class:`FeatureCarry`.

With a :class:`~graphtrain.sampling.remote_features.DistributedNodeData` attached, the
:class:`~graphtrain.sampling.distributed_sampler.DistributedHopSampler` has every owner put the feature rows
a requester will need into its hop answers -- the requested frontier nodes, and at the batch's last
hop the sampled sources it owns and the IDs the requester asked for beside its entries -- so the
batch's features need no exchange of their own. The carry holds those rows from the start of a
batch (:meth:`FeatureCarry.reset`, called by the sampler) until the batch's feature lookup takes
them (:meth:`FeatureCarry.take`).

``complete`` says that the rows cover every node of the batch that is neither this worker's own nor
in its feature cache, so the lookup may skip the fetch round (a collective) for the rest. The
sampler sets it identically on every worker (it depends only on the world size and on the batch
having ended with an exchanged hop, which all workers share), so either every worker skips the round
or none does.
"""
from __future__ import annotations

from typing import List, Tuple

import numpy as np


class FeatureCarry:
    """Per-batch feature rows received with hop answers, by node ID (one owner per ID, no repeats).

    Args:
        num_features: ``F``, the width of every row (float32).
    """

    def __init__(self, num_features: int):
        self.num_features = int(num_features)
        self._ids: List[np.ndarray] = []
        self._rows: List[np.ndarray] = []
        self.complete = False

    def reset(self) -> None:
        """Forget the rows of the previous batch (its lookup may never have run)."""
        self._ids.clear()
        self._rows.clear()
        self.complete = False

    def add(self, ids: np.ndarray, rows: np.ndarray) -> None:
        """Keep ``rows`` (float32 ``[n, F]``) of the distinct global IDs ``ids`` (int64 ``[n]``; IDs
        of one owner, none given before in this batch)."""
        if ids.size:
            self._ids.append(ids)
            self._rows.append(rows)

    def take(self) -> Tuple[np.ndarray, np.ndarray, bool]:
        """``(ids, rows, complete)`` of this batch so far; the carry is empty afterwards."""
        if self._ids:
            ids = np.concatenate(self._ids) if len(self._ids) > 1 else self._ids[0]
            rows = np.concatenate(self._rows) if len(self._rows) > 1 else self._rows[0]
        else:
            ids = np.zeros(0, dtype=np.int64)
            rows = np.zeros((0, self.num_features), dtype=np.float32)
        complete = self.complete
        self.reset()
        return ids, rows, complete
