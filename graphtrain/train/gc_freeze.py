"""Keep Python's full garbage collections short during training: :func:`setup_objects_frozen`.

A full (generation 2) collection walks every container object the process tracks. A worker holds
hundreds of thousands of them after its imports and setup (torch, PyG, Numba, Ray), and one full
collection over them is a pause of a good fraction of a second at a moment no other worker shares.
Synchronous data-parallel training turns one worker's pause into everyone's: the others wait for
it in the next gradient all-reduce. (Object counts and pause lengths: benchmarks/RESULTS.md,
"Garbage-collector freeze".)

``gc.freeze()`` moves every object alive at that moment into a permanent generation that
collections skip, so the collections during training walk only the objects made since -- the
batches, the autograd graphs -- and take milliseconds. Garbage cycles among the frozen objects are
not freed while frozen: the collector runs once first, and :func:`setup_objects_frozen` unfreezes
on exit, so a process that runs several jobs (Ray reuses its worker processes) collects them later.
"""
from __future__ import annotations

import contextlib
import gc
from typing import Iterator


@contextlib.contextmanager
def setup_objects_frozen() -> Iterator[int]:
    """Run the body with every object alive at entry frozen (``gc.freeze``) after one full collection;
    unfreeze on exit, also on an exception. Yields how many objects were frozen.

    If something else already froze objects (``gc.get_freeze_count() > 0`` at entry), that owner
    manages the permanent generation: this neither freezes nor unfreezes, and yields 0.
    """
    if gc.get_freeze_count() > 0:
        yield 0
        return
    gc.collect()
    gc.freeze()
    try:
        yield gc.get_freeze_count()
    finally:
        gc.unfreeze()
