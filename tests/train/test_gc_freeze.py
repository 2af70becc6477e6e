"""setup_objects_frozen: objects alive at entry are out of the collector's reach inside, back after
(also after an exception), garbage made inside is still collected, and a caller's own freeze is left alone."""
import gc
import weakref

import pytest

from graphtrain.train.gc_freeze import setup_objects_frozen


class _Node:
    def __init__(self):
        self.other = None


def _cycle():
    a, b = _Node(), _Node()
    a.other, b.other = b, a
    return a


@pytest.fixture(autouse=True)
def _no_freeze_left():
    gc.unfreeze()
    yield
    gc.unfreeze()


def test_freezes_inside_and_unfreezes_after():
    keep = [_Node() for _ in range(100)]
    with setup_objects_frozen() as frozen:
        assert frozen > 100 and gc.get_freeze_count() > 100
        seen = {id(o) for o in gc.get_objects()}  # what a collection walks
        assert not any(id(o) in seen for o in keep)
    assert gc.get_freeze_count() == 0
    seen = {id(o) for o in gc.get_objects()}
    assert all(id(o) in seen for o in keep)  # walked by the collector again


def test_unfreezes_after_an_exception():
    with pytest.raises(RuntimeError, match="boom"):
        with setup_objects_frozen():
            assert gc.get_freeze_count() > 0
            raise RuntimeError("boom")
    assert gc.get_freeze_count() == 0


def test_garbage_made_inside_is_collected():
    with setup_objects_frozen():
        c = _cycle()
        alive = weakref.ref(c)
        del c
        gc.collect()
        assert alive() is None  # the cycle made after the freeze is still collected


def test_garbage_alive_at_entry_is_collected_before_the_freeze():
    gc.disable()  # no automatic collection between these lines
    try:
        c = _cycle()
        alive = weakref.ref(c)
        del c  # an unreachable cycle: only a collection frees it (frozen, it would live on)
        assert alive() is not None
        with setup_objects_frozen():
            assert alive() is None
    finally:
        gc.enable()


def _walked(obj) -> bool:
    """Whether a collection would walk ``obj`` (frozen objects are not listed by gc.get_objects)."""
    return any(o is obj for o in gc.get_objects())


def test_leaves_a_callers_own_freeze_alone():
    # a marker the caller froze: its state is exact, where the freeze count also drops whenever
    # some other frozen object is freed by reference counting
    mine = _Node()
    gc.freeze()
    assert not _walked(mine)
    after = _Node()  # made after the caller's freeze: this helper must not freeze it either
    with setup_objects_frozen() as frozen:
        assert frozen == 0
        assert not _walked(mine) and _walked(after)
    assert not _walked(mine) and gc.get_freeze_count() > 0  # not unfrozen: the caller's
