"""Where the planted transactions go in the stream of background transactions.

The background stream is cut into fixed **slots** of ``SLOT_ROWS`` rows (independent of the
writer's chunk size). Each pattern is assigned to one slot by a hash of ``(seed, pattern)``, and its
transactions are inserted at uniform random positions inside that slot. So

- the file order says nothing about which rows are planted (a pattern's rows are scattered among a
  million background rows);
- a chunk of the output needs only the patterns of the one or two slots it overlaps, built on
  demand: memory is bounded by a slot's planted transactions, whatever the graph's size;
- where a transaction lands is a pure function of the seed, so the output does not depend on the
  chunk size.
"""
from __future__ import annotations

from typing import Dict, Optional, Tuple

import numpy as np

from graphtrain.fraud.synth.draws import below_at, child_key, stream_key, uniform_at
from graphtrain.fraud.synth.planting import PlantingPlan, Transactions

SLOT_ROWS = 1 << 20  # part of the output's definition: changing it moves planted rows


class PlantedStream:
    """Planted transactions by position in a background stream of ``background_rows`` rows.

    Position ``q`` means "inserted before background row ``q``" (``q == background_rows``: after the
    last row).
    """

    def __init__(self, plan: PlantingPlan, background_rows: int, seed: int, slot_rows: Optional[int] = None):
        self.plan = plan
        self.rows = int(background_rows)
        self.seed = seed
        self.slot_rows = int(slot_rows or SLOT_ROWS)
        self.num_slots = max(1, -(-self.rows // self.slot_rows))
        p = np.arange(plan.num_patterns, dtype=np.int64)
        slot = below_at(stream_key(seed, "pattern-slot"), p, self.num_slots) if p.size else p
        self._order = np.argsort(slot, kind="stable")  # patterns grouped by slot, in pattern order
        self._bounds = np.searchsorted(slot[self._order], np.arange(self.num_slots + 1))
        self._cache: Dict[int, Tuple[Transactions, np.ndarray, np.ndarray]] = {}

    def _slot_range(self, s: int) -> Tuple[int, int]:
        start = s * self.slot_rows
        stop = self.rows if s == self.num_slots - 1 else (s + 1) * self.slot_rows
        return start, stop

    def slot(self, s: int) -> Tuple[Transactions, np.ndarray, np.ndarray]:
        """Slot ``s``'s planted transactions sorted by position: ``(transactions, positions, kinds)``."""
        if s not in self._cache:
            parts, kinds = [], []
            for p in self._order[self._bounds[s] : self._bounds[s + 1]]:
                tx, kind = self.plan.transactions(int(p))
                parts.append(tx)
                kinds.append(kind)
            tx = Transactions.concat(parts)
            kind = np.concatenate(kinds) if kinds else np.empty(0, np.int8)
            start, stop = self._slot_range(s)
            width = stop - start + (1 if s == self.num_slots - 1 else 0)  # the last slot may also append
            j = np.arange(len(tx), dtype=np.int64)
            pos = start + np.minimum((uniform_at(child_key(stream_key(self.seed, "planted-position"), s), j) * width)
                                     .astype(np.int64), max(width - 1, 0))
            order = np.argsort(pos, kind="stable")
            self._cache = {k: v for k, v in self._cache.items() if k >= s - 1}  # keep the previous slot only
            self._cache[s] = (tx.take(order), pos[order], kind[order])
        return self._cache[s]

    def between(self, start: int, stop: int) -> Tuple[Transactions, np.ndarray, np.ndarray]:
        """Planted transactions with positions in ``[start, stop)`` (``stop == rows``: up to and including it)."""
        last = stop >= self.rows
        first_slot = min(start // self.slot_rows, self.num_slots - 1)
        last_slot = self.num_slots - 1 if last else min(max(stop - 1, start) // self.slot_rows, self.num_slots - 1)
        parts, positions, kinds = [], [], []
        for s in range(first_slot, last_slot + 1):
            tx, pos, kind = self.slot(s)
            keep = (pos >= start) & ((pos <= stop) if last else (pos < stop))
            parts.append(tx.take(keep))
            positions.append(pos[keep])
            kinds.append(kind[keep])
        return Transactions.concat(parts), np.concatenate(positions), np.concatenate(kinds)
