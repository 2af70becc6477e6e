"""graphtrain._numba_inline: Numba's inliner copies a callee's scope once per IR copy, not once per
block; ir_utils' copies of name sets are deepcopy's value; inlined code computes what it did."""
import contextlib
import copy
import inspect

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

numba = pytest.importorskip("numba")  # a hard dependency; imported here for the modules below
import numba.core.inline_closurecall as inline_closurecall  # noqa: E402
import numba.core.ir_utils as ir_utils  # noqa: E402
from numba.core import ir  # noqa: E402

import graphtrain  # noqa: E402,F401  (its import installs the patch)
from graphtrain import _numba_inline  # noqa: E402

NUMBAS_INLINE_IR = inspect.unwrap(inline_closurecall.InlineWorker.inline_ir)


def _branchy_callee(jit):
    """A callee with many blocks (a loop per branch), so that per-block copies add up."""

    @jit(inline="always")
    def callee(x, k):
        total = 0.0
        if k == 0:
            for i in range(x.size):
                total += x[i]
        elif k == 1:
            for i in range(x.size):
                total += x[i] * x[i]
        elif k == 2:
            for i in range(x.size):
                if x[i] > 0:
                    total += x[i]
        elif k == 3:
            for i in range(x.size):
                total = max(total, x[i])
        else:
            for i in range(x.size):
                total -= x[i]
        return total

    @jit
    def caller(x):
        return callee(x, 0) + callee(x, 1) * 2 + callee(x, 2) * 3 + callee(x, 3) * 4 + callee(x, 7) * 5

    return caller


@contextlib.contextmanager
def _unpatched():
    """Numba's own inliner for the duration (the patch is restored after)."""
    worker = inline_closurecall.InlineWorker
    patched_ir, patched_copy = worker.inline_ir, inline_closurecall.copy
    patched_ir_utils_copy = ir_utils.copy
    worker.inline_ir, inline_closurecall.copy, ir_utils.copy = NUMBAS_INLINE_IR, copy, copy
    try:
        yield
    finally:
        worker.inline_ir, inline_closurecall.copy, ir_utils.copy = patched_ir, patched_copy, patched_ir_utils_copy


@pytest.fixture
def scope_copies(monkeypatch):
    """Counts deep copies of IR scopes while the test runs."""
    counts = {"scope": 0, "inline_ir": 0}

    depth = [0]

    def counting_deepcopy(self, memo):
        counts["scope"] += depth[0] == 0  # a scope's copy copies its parent scope too: counted once
        depth[0] += 1
        try:
            new = object.__new__(type(self))
            memo[id(self)] = new
            new.__dict__.update(copy.deepcopy(self.__dict__, memo))
        finally:
            depth[0] -= 1
        return new

    inline_ir = inline_closurecall.InlineWorker.inline_ir

    def counting_inline_ir(*args, **kwargs):
        counts["inline_ir"] += 1
        return inline_ir(*args, **kwargs)

    monkeypatch.setattr(ir.Scope, "__deepcopy__", counting_deepcopy, raising=False)
    monkeypatch.setattr(inline_closurecall.InlineWorker, "inline_ir", counting_inline_ir)
    return counts


def test_the_installed_numba_is_patched():
    """graphtrain's import patched this Numba: its inliner still copies block by block (if a Numba
    release fixes numba/numba#8989, this fails: drop the patch then)."""
    assert _numba_inline.PER_BLOCK_COPY in inspect.getsource(NUMBAS_INLINE_IR)
    assert _numba_inline.NAME_SETS_COPY in inspect.getsource(ir_utils.copy_propagate)
    assert _numba_inline.patched(inline_closurecall) and _numba_inline.patched(ir_utils)


def test_a_callee_scope_is_copied_once_per_ir_copy_not_once_per_block(scope_copies):
    x = np.random.default_rng(0).normal(size=50)
    caller = _branchy_callee(numba.njit)
    caller(x)
    calls, copies = scope_copies["inline_ir"], scope_copies["scope"]
    assert calls == 5
    assert copies <= 2 * calls  # inline_ir copies the callee's IR twice (one copy is returned unchanged)


def test_numbas_own_inliner_copies_a_scope_per_block(scope_copies):
    """The control: unpatched, the same compile copies the scope once per block of each copy."""
    x = np.random.default_rng(0).normal(size=50)
    with _unpatched():
        _branchy_callee(numba.njit)(x)
    assert scope_copies["scope"] > 10 * 2 * 5


def test_inlined_code_computes_the_same_with_and_without_the_patch():
    rng = np.random.default_rng(1)
    xs = [rng.normal(size=n) for n in (0, 1, 17, 200)]
    patched = _branchy_callee(numba.njit)
    with _unpatched():
        plain = _branchy_callee(numba.njit)
        want = [plain(x) for x in xs]
    assert [patched(x) for x in xs] == want
    assert want[2] != 0.0


class _Opaque:
    """Hashable by identity: deepcopy makes a new one."""


_names = st.text(max_size=6)
_name_sets = st.dictionaries(st.integers() | _names,
                             st.sets(_names | st.tuples(_names, _names) | st.tuples(), max_size=8), max_size=8)


@given(_name_sets)
def test_a_dict_of_name_sets_copies_to_deepcopys_value_with_new_sets(x):
    got = _numba_inline.name_sets_copy(x)
    assert got == copy.deepcopy(x) and list(got) == list(x)
    assert all(got[k] is not x[k] for k in x)
    for k in x:  # the copy is independent of the original
        got[k].add("added")
        assert "added" not in x[k]


@pytest.mark.parametrize("x", [
    [{"a"}], {1: ["a"]}, {1: {"a"}, 2: frozenset({"b"})}, {1: {("a", 1)}}, {1: {"a"}, (1, 2): {"b"}},
    {1: {_Opaque()}}, {1: {("a", ("b",))}}])
def test_anything_else_is_left_to_deepcopy(x):
    assert _numba_inline.name_sets_copy(x) is None
    got = _numba_inline._deepcopy_name_sets(x)  # deep-copied: nothing shared with the original
    assert type(got) is type(x) and len(got) == len(x)
    assert all(a is not b for a, b in zip(got.values() if isinstance(x, dict) else got,
                                          x.values() if isinstance(x, dict) else x))


def test_numba_without_the_per_block_copy_is_left_alone():
    class Worker:
        def inline_ir(self, caller_ir, block, i, callee_ir, callee_freevars, arg_typs=None):
            return copy.deepcopy(callee_ir.blocks)

    class Module:
        InlineWorker = Worker

    Module.copy = copy
    Module.copy_propagate = Worker.inline_ir
    for patch in _numba_inline.PATCHES.values():
        patch(Module)
    assert Module.InlineWorker.inline_ir is Worker.inline_ir and Module.copy is copy
    assert not _numba_inline.patched(Module)
