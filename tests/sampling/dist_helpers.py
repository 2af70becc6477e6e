"""Run a function on W processes joined in a gloo group (for data-plane tests without Ray)."""
from __future__ import annotations

import multiprocessing as mp
import os
import traceback
from pathlib import Path


def _guarded(target, rank, world, args, errors):
    try:
        target(rank, world, *args)
    except BaseException:
        errors.put((rank, traceback.format_exc()))
        raise


def spawn_ranks(target, world: int, *args, timeout: float = 120.0) -> None:
    """Call ``target(rank, world, *args)`` (a module-level function) in ``world`` spawned processes;
    raise with every rank's traceback if any fails, exits non-zero or is still running at ``timeout``."""
    ctx = mp.get_context("spawn")
    errors = ctx.Queue()
    procs = [ctx.Process(target=_guarded, args=(target, r, world, args, errors)) for r in range(world)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout)
    alive = [p for p in procs if p.is_alive()]
    for p in alive:
        p.kill()
    msgs = []
    while not errors.empty():
        msgs.append("rank %d:\n%s" % errors.get())
    if alive or msgs or any(p.exitcode != 0 for p in procs):
        raise AssertionError(f"group of {world} failed (timed out: {len(alive)}):\n" + "\n".join(msgs))


def _in_group(rank, world, fn, init_file, *args):
    import numba
    import torch.distributed as dist

    # One Numba thread per rank (as a Ray worker limited to one core). Set through the API:
    # changing the NUMBA_NUM_THREADS variable after numba is imported makes the next JIT
    # compile fail ("Cannot set NUMBA_NUM_THREADS ... once the threads have been launched").
    numba.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        fn(rank, world, *args)
    finally:
        dist.destroy_process_group()


def run_group(fn, world: int, tmp: Path, *args, timeout: float = 120.0) -> None:
    """Call ``fn(rank, world, *args)`` in ``world`` spawned processes joined in a gloo group; raise if any fails."""
    init_file = Path(tmp) / f"pg-init-{os.getpid()}-{world}-{id(fn)}"
    spawn_ranks(_in_group, world, fn, str(init_file), *args, timeout=timeout)
