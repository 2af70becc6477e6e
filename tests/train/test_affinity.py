"""CPU pinning of workers: distinct cores per process, released and restored afterwards."""
import multiprocessing as mp
import os

import pytest

from graphtrain.train.affinity import LOCK_DIR_ENV, pinned_cores

pytestmark = pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="CPU affinity needs Linux")


@pytest.fixture(autouse=True)
def private_lock_dir(tmp_path, monkeypatch):
    """Core locks of this test only (the spawned process inherits the variable): other pinned jobs of the
    same user, which hold cores in the shared directory, do not change what the tests see."""
    d = tmp_path / "cores"
    monkeypatch.setenv(LOCK_DIR_ENV, str(d))
    return d


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


def test_locks_live_in_the_configured_directory(private_lock_dir):
    with pinned_cores(1) as cores:
        assert cores is not None and (private_lock_dir / f"{cores[0]}.lock").is_file()
