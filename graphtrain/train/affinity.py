"""Pin a worker process to cores of its own: :func:`pinned_cores` (``TrainConfig.pin_cpus``).

Ray's ``num_cpus`` is a scheduling count, not a placement: without pinning, the threads of all
workers on a machine (the training thread, the loader's prefetch thread, gloo's I/O threads) float
over every core, and a worker whose loader thread waits in a collective does not give its core to
its own training thread but to whoever the kernel picks. Pinning gives each worker
``threads_per_worker`` cores of its own, so its prefetch thread overlaps its communication waits
with its own compute (DGL's loader offers the same, ``enable_cpu_affinity``).

Cores are claimed with one lock file per core (``fcntl.lockf`` on
``<tempdir>/graphtrain-cores-<uid>/<core>.lock``): the first free cores among those this process may
run on are taken, whichever Ray node the worker lands on, without any coordination. The kernel
drops the locks when the process exits (also on SIGKILL), and :func:`pinned_cores` releases them
and restores the previous affinity when the worker's task ends (Ray reuses worker processes).

Only processes that share the lock directory avoid each other's cores. The environment variable
``GRAPHTRAIN_CPU_LOCK_DIR`` (read when cores are claimed; Ray workers inherit it from the process
that starts Ray) names another directory: the tests use a private one, so that they do not depend
on which cores other pinned jobs of the same user hold.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
from pathlib import Path
from typing import Iterator, List, Optional

from graphtrain.log import get_logger

log = get_logger("train.affinity")


LOCK_DIR_ENV = "GRAPHTRAIN_CPU_LOCK_DIR"


def _lock_dir() -> Path:
    """``$GRAPHTRAIN_CPU_LOCK_DIR`` if set, else ``<tempdir>/graphtrain-cores-<uid>`` (created ``0700``)."""
    d = Path(os.environ.get(LOCK_DIR_ENV) or Path(tempfile.gettempdir()) / f"graphtrain-cores-{os.getuid()}")
    d.mkdir(mode=0o700, parents=True, exist_ok=True)
    return d


def _set_process_affinity(cores) -> None:
    """Affinity of every thread of this process (``sched_setaffinity`` is per thread on Linux)."""
    for tid in os.listdir("/proc/self/task"):
        try:
            os.sched_setaffinity(int(tid), cores)
        except (ProcessLookupError, PermissionError):  # a thread that just ended
            pass


@contextlib.contextmanager
def pinned_cores(n: int) -> Iterator[Optional[List[int]]]:
    """Run the body with this process's threads pinned to ``n`` cores no other pinned graphtrain
    worker of this user on this machine holds; yields the cores, or None (not pinned: fewer than
    ``n`` free cores, or no affinity support) -- training goes on either way."""
    if not hasattr(os, "sched_setaffinity") or not Path("/proc/self/task").is_dir():
        log.warning("CPU pinning needs Linux (sched_setaffinity); workers run unpinned")
        yield None
        return
    before = os.sched_getaffinity(0)
    held = []
    try:
        d = _lock_dir()
        for core in sorted(before):
            f = open(d / f"{core}.lock", "a+")
            try:
                fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                f.close()
                continue
            held.append((core, f))
            if len(held) == n:
                break
        if len(held) < n:
            log.warning(f"CPU pinning: only {len(held)} of the {n} cores asked for are free on this machine; "
                        "this worker runs unpinned")
            yield None
            return
        cores = [c for c, _ in held]
        _set_process_affinity(set(cores))
        try:
            yield cores
        finally:
            _set_process_affinity(before)
    finally:
        for _, f in held:
            f.close()  # closing releases the lock
