"""Progress bars on stderr: the one helper every long stage uses (partitioning, account features,
training and scoring in :mod:`graphtrain.train.trainer`, the tree baseline, rings).

A :class:`Progress` is a tqdm bar (count, rate and, when the total is known, an ETA) when enabled
and nothing at all otherwise: library calls leave it off by default, the commands turn it on when
stderr is a terminal. tqdm is imported only when a bar is shown.
"""
from __future__ import annotations

from typing import Optional


class Progress:
    """A tqdm bar on stderr when ``enabled``, otherwise a no-op with the same methods.

    Args:
        enabled: show the bar.
        desc: what is counted, e.g. ``"score layer 1/2"``.
        total: the count at the end (None: unknown, no ETA).
        unit: the unit of the count (``"rows"``, ``"edges"``, ``"accounts"``).
        leave: keep the finished bar on screen.
    """

    def __init__(self, enabled: bool, desc: str, total: Optional[int], unit: str = "it", leave: bool = False):
        self.bar = None
        if enabled:
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc=desc, unit=unit, unit_scale=True, leave=leave, dynamic_ncols=True)

    @property
    def desc(self) -> Optional[str]:
        return None if self.bar is None else self.bar.desc

    def update(self, n: int = 1) -> None:
        """Count ``n`` more."""
        if self.bar is not None:
            self.bar.update(n)

    def set(self, done: int, **postfix) -> None:
        """Set the count to ``done`` (and show ``postfix`` values, e.g. ``loss=...``)."""
        if self.bar is not None:
            self.bar.update(done - self.bar.n)
            if postfix:
                self.bar.set_postfix(**postfix)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
