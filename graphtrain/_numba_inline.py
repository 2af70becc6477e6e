"""Two deep copies in Numba's compiler made cheap, with the same compiled code: cold compiles of the
hop kernels 2.2x shorter.

A cold compile of one signature of the hop kernels (``kernels/cpu.py``'s ``_sample_batch`` and
``_sample_slots``, which inline ``kernels/hop_body.py``'s large bodies) spent most of its time in
``copy.deepcopy`` at two places of Numba:

1. ``numba.core.inline_closurecall.InlineWorker.inline_ir`` copies the callee's IR block by block,
   each block with a fresh memo. Every block's copy therefore copies the callee's whole scope
   (every variable) again: blocks x variables, quadratic in the callee's size (numba/numba#8989,
   open). Here each ``inline_ir`` call gets one memo per scope: the blocks are copied once each and
   share one copy of their scope, as the original blocks share theirs (step 7 of ``inline_ir``
   points every inlined block at the caller's scope anyway).
2. ``numba.core.ir_utils`` (``copy_propagate`` at every iteration of its fixed point, and
   ``find_potential_aliases``) deep-copies dicts of sets of variable names or name pairs. Strings and
   tuples of strings are immutable, so ``copy.deepcopy`` returns them as they are; here such a dict
   is copied as ``{key: set(names)}``, the same value, without a call per element. Anything else is
   deep-copied by ``copy.deepcopy``.

Each is applied only where Numba's source still does what is described (checked, see
:data:`PATCHES`); any other Numba is left as it is. They change how the copies are made for every
compile in the process, not only graphtrain's. ``tests/kernels/test_numba_inline.py`` checks that
the copies are made once and that inlined code computes the same; ``benchmarks/RESULTS.md``
("Changes kept") has the times.

:func:`install` runs when ``graphtrain`` is imported and imports nothing: each patch is applied
right after its Numba module is first imported (:mod:`graphtrain._import_hooks`).
"""
from __future__ import annotations

import contextvars
import copy
import functools
import inspect
import types

from graphtrain._import_hooks import when_imported

INLINER = "numba.core.inline_closurecall"
IR_UTILS = "numba.core.ir_utils"
# what each patch replaces, as it reads in Numba's source (0.56 .. 0.68 at least)
PER_BLOCK_COPY = "copy.deepcopy(the_ir.blocks[block_label])"
NAME_SETS_COPY = "new_point = copy.deepcopy(out_copies)"
_PATCHED = "_graphtrain_cheap_copy"
_MEMOS: contextvars.ContextVar = contextvars.ContextVar("graphtrain_inline_memos", default=None)


class _CopyModule:
    """Stands in for the ``copy`` module inside one Numba module; ``deepcopy`` is the patched one."""

    def __init__(self, deepcopy) -> None:
        self.deepcopy = deepcopy
        setattr(self, _PATCHED, True)

    def __getattr__(self, name):
        return getattr(copy, name)


def name_sets_copy(x):
    """``copy.deepcopy(x)`` for a dict (int or str keys) of sets of str or of tuples of str: a new dict
    of new sets of the same (immutable) elements; None for anything else."""
    if type(x) is not dict:
        return None
    out = {}
    for key, value in x.items():
        if type(value) is not set or type(key) not in (int, str):
            return None
        for e in value:
            if type(e) is not str and not (type(e) is tuple and all(type(s) is str for s in e)):
                return None
        out[key] = set(value)
    return out


def _deepcopy_name_sets(x, memo=None):
    if memo is None:
        cheap = name_sets_copy(x)
        if cheap is not None:
            return cheap
    return copy.deepcopy(x, memo)


def _source_has(func, text: str) -> bool:
    try:
        return text in inspect.getsource(inspect.unwrap(func))
    except (OSError, TypeError):
        return False


def _inliner_applies(module) -> bool:
    inline_ir = getattr(getattr(module, "InlineWorker", None), "inline_ir", None)
    return inline_ir is not None and _source_has(inline_ir, PER_BLOCK_COPY)


def _ir_utils_applies(module) -> bool:
    return getattr(module, "copy_propagate", None) is not None and _source_has(module.copy_propagate, NAME_SETS_COPY)


def patched(module) -> bool:
    """True if ``module``'s ``copy`` is this module's stand-in."""
    return getattr(getattr(module, "copy", None), _PATCHED, False)


def _patchable(module, applies) -> bool:
    """``module``'s ``copy`` is still the copy module (no stand-in, ours or another's) and ``applies(module)``."""
    return isinstance(getattr(module, "copy", None), types.ModuleType) and applies(module)


def _patch_inliner(module) -> None:
    if not _patchable(module, _inliner_applies):
        return
    from numba.core import ir

    worker = module.InlineWorker
    inline_ir = worker.inline_ir

    def deepcopy(x, memo=None):
        memos = _MEMOS.get()
        if memo is None and memos is not None and type(x) is ir.Block:
            memo = memos.setdefault(id(x.scope), {})  # the memo keeps the copied blocks, so the scope, alive
        return copy.deepcopy(x, memo)

    @functools.wraps(inline_ir)
    def inline_ir_one_memo_per_scope(self, *args, **kwargs):
        token = _MEMOS.set({})
        try:
            return inline_ir(self, *args, **kwargs)
        finally:
            _MEMOS.reset(token)

    module.copy = _CopyModule(deepcopy)
    worker.inline_ir = inline_ir_one_memo_per_scope


def _patch_ir_utils(module) -> None:
    if not _patchable(module, _ir_utils_applies):
        return
    module.copy = _CopyModule(_deepcopy_name_sets)


PATCHES = {INLINER: _patch_inliner, IR_UTILS: _patch_ir_utils}


def install() -> None:
    """Patch each Numba module of :data:`PATCHES` now if it is imported, else right after its first import."""
    for name, patch in PATCHES.items():
        when_imported(name, patch)
