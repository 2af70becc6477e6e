"""CPU pinning of workers: distinct cores per process, released and restored afterwards."""
import multiprocessing as mp
import os

import pytest

from graphtrain.train.affinity import pinned_cores

pytestmark = pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="CPU affinity needs Linux")


def _claim(q_in, q_out):
    with pinned_cores(1) as cores:
        q_out.put(cores)
        q_in.get()  # hold the core until told to let go


def test_two_processes_get_different_cores_and_release_them():
    allowed = os.sched_getaffinity(0)
    ctx = mp.get_context("spawn")
    q_in, q_out = ctx.Queue(), ctx.Queue()
    other = ctx.Process(target=_claim, args=(q_in, q_out))
    other.start()
    try:
        theirs = q_out.get(timeout=60)
        assert theirs is not None and len(theirs) == 1 and set(theirs) <= allowed
        with pinned_cores(1) as mine:
            if len(allowed) >= 2:
                assert mine is not None and mine != theirs
                assert os.sched_getaffinity(0) == set(mine)
            else:  # one core, held by the other process: run unpinned
                assert mine is None and os.sched_getaffinity(0) == allowed
        assert os.sched_getaffinity(0) == allowed  # restored
    finally:
        q_in.put("done")
        other.join(timeout=60)
    with pinned_cores(1) as again:  # the other process's core is free again
        assert again is not None and again[0] == min(allowed)


def test_asking_for_more_cores_than_exist_runs_unpinned():
    allowed = os.sched_getaffinity(0)
    with pinned_cores(len(allowed) + 1) as cores:
        assert cores is None and os.sched_getaffinity(0) == allowed
    with pinned_cores(1) as cores:  # nothing was left locked
        assert cores == [min(allowed)]
