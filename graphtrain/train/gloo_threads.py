"""Run gloo's socket-poller threads at idle priority: :func:`idle_gloo_pollers` (``TrainConfig.gloo_poller``).

Every gloo process group of a CPU worker brings a ``gloo_tcp_loop`` thread that waits in
``epoll_wait`` for its sockets and hands arriving bytes to the buffer a collective has posted. When
a peer's bytes arrive *before* this worker's collective has posted its receive -- the normal case
for the worker that reaches a collective second -- the socket stays readable (level-triggered) and
the poller spins through ``epoll_wait`` without sleeping (a known gloo limitation: pytorch/gloo
issue #246, "Don't busy-spin in tcp transport's event loop", open since 2019). On a core it shares
with the worker's own threads (always, when the worker is pinned), the thread that would post the
receive (gloo's ``pt_gloo_runloop``) is woken but is not run until the spinning poller's time slice
ends at the next scheduler tick (Linux's EEVDF keeps the running thread to the end of its slice):
~4 ms at HZ=250, so such a collective takes a scheduler tick instead of a fraction of a millisecond.

Under ``SCHED_IDLE`` the poller runs only when no normal thread of its core wants to: a woken
thread preempts it at once. The price: while the worker's training thread computes, the poller
does not run, so a second thread's collectives (the loader's) finish only when the training
thread next waits. ``benchmarks/bench_gloo_latency.py`` measures both sides; the current figures
are in ``benchmarks/RESULTS.md`` ("Gloo socket pollers").

Lowering a thread's own policy to ``SCHED_IDLE`` needs no privilege (Linux ``sched(7)``); leaving it
again needs ``CAP_SYS_NICE``, so the pollers stay idle for the life of the groups.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import List

from graphtrain.log import get_logger

log = get_logger("train.gloo_threads")

POLLER_THREAD_NAME = "gloo_tcp_loop"  # gloo::transport::tcp::Loop names its thread so (pthread_setname_np)


def gloo_poller_threads() -> List[int]:
    """Thread IDs of this process's gloo socket pollers (one per gloo process group's device)."""
    tids = []
    for tid in os.listdir("/proc/self/task"):
        try:
            name = Path(f"/proc/self/task/{tid}/comm").read_text().strip()
        except OSError:  # a thread that just ended
            continue
        if name == POLLER_THREAD_NAME:
            tids.append(int(tid))
    return sorted(tids)


def idle_gloo_pollers() -> List[int]:
    """Put every gloo socket-poller thread of this process under ``SCHED_IDLE``; call it after the
    process groups exist (their pollers start with them). Returns the thread IDs changed (empty
    where the platform has no ``SCHED_IDLE`` or ``/proc``, or gloo runs no such thread): training
    goes on either way, only slower."""
    if not hasattr(os, "SCHED_IDLE") or not Path("/proc/self/task").is_dir():
        log.warning("idle-priority gloo pollers need Linux (SCHED_IDLE); they run at normal priority")
        return []
    changed = []
    for tid in gloo_poller_threads():
        try:
            os.sched_setscheduler(tid, os.SCHED_IDLE, os.sched_param(0))
        except (ProcessLookupError, PermissionError) as exc:  # ended, or a seccomp'd container
            log.warning(f"could not run gloo poller thread {tid} at idle priority: {exc}")
            continue
        changed.append(tid)
    if not changed:
        log.warning(f"no gloo poller thread ({POLLER_THREAD_NAME!r}) found in this process; none made idle")
    return changed
