"""Latency of the torch.distributed (gloo) collectives a distributed training batch runs.

Two processes on this machine, one torch thread each:

- back to back: a small ``all_to_all_single`` (the shape of graphtrain's count exchanges) and an
  ``all_reduce`` of a gradient-sized float32 vector (DDP);
- after a gap (``--gaps``, ms): the same all-reduce issued once per gap of busy compute (a
  256 x 256 matmul loop, as a training step between two gradient all-reduces) or of sleep, with
  each process pinned to a core of its own (``--pin``: as ``TrainConfig.pin_cpus``) or not. For
  comparison, the round trip of one byte over a plain loopback TCP socket after the same sleep;
- beside compute (``--beside-seconds``): a training thread alternating 25 ms of compute with the
  gradient all-reduce while a second thread (a loader) runs small all-reduces on a second process
  group -- steps per second and the second thread's time per collective.

``--poller`` runs it all with gloo's socket-poller threads at normal priority, at idle priority
(``SCHED_IDLE``, ``TrainConfig.gloo_poller="idle"``, :mod:`graphtrain.train.gloo_threads`) or both
in turn. Explains the per-batch communication floor of ``bench_train.py``'s 2-worker row.

    python benchmarks/bench_gloo_latency.py [--world 2] [--grad-floats 70000] [--gaps 0 5 25] [--pin]
        [--poller normal|idle|both]
"""
from __future__ import annotations

import argparse
import os
import socket
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _back_to_back(rank: int, world: int, grad_floats: int, reps: int, idle: bool) -> None:
    import torch
    import torch.distributed as dist

    small, out = torch.zeros(world * 64, dtype=torch.int64), torch.empty(world * 64, dtype=torch.int64)
    grad = torch.zeros(grad_floats)
    for _ in range(50):  # warm-up
        dist.all_to_all_single(out, small)
        dist.all_reduce(grad)
    t0 = time.perf_counter()
    for _ in range(reps):
        dist.all_to_all_single(out, small)
    a2a = (time.perf_counter() - t0) / reps
    t0 = time.perf_counter()
    for _ in range(reps // 4):
        dist.all_reduce(grad)
    red = (time.perf_counter() - t0) / (reps // 4)
    if rank == 0:
        print(f"back to back ({'pinned' if _pinned() else 'not pinned'}, gloo pollers "
              f"{'idle' if idle else 'normal'}):")
        print(f"  {f'all_to_all_single, {world} x 64 int64':<40}{a2a * 1e3:>8.3f} ms per call")
        print(f"  {f'all_reduce, {grad_floats:,} float32':<40}{red * 1e3:>8.3f} ms per call")


def _pinned() -> bool:
    return len(os.sched_getaffinity(0)) == 1


def _after_gaps(rank: int, grad_floats: int, gaps, calls: int, out_dir: str) -> None:
    import torch
    import torch.distributed as dist

    grad = torch.zeros(grad_floats)
    a = torch.randn(256, 256)
    rows = []
    for kind in ("busy", "sleep"):
        for gap in gaps:
            times = []
            for i in range(calls + 10):
                t0 = time.perf_counter()
                if kind == "sleep":
                    time.sleep(gap / 1e3)
                else:
                    while (time.perf_counter() - t0) * 1e3 < gap:
                        a @ a
                s = time.perf_counter()
                dist.all_reduce(grad)
                if i >= 10:
                    times.append(time.perf_counter() - s)
            rows.append((kind, gap, np.array(times)))
    np.save(os.path.join(out_dir, f"gaps{rank}.npy"), np.array([r[2] for r in rows]))
    if rank == 0:
        with open(os.path.join(out_dir, "kinds.txt"), "w") as f:
            f.write("\n".join(f"{k} {g}" for k, g, _ in rows))


def _beside_compute(rank: int, grad_floats: int, seconds: float, out_dir: str, idle: bool) -> None:
    """A training thread (25 ms of compute, then the gradient all-reduce) beside a loader thread
    (an all-reduce of 16,000 float32 on a second group every 2 ms), as in a worker with prefetch."""
    import threading

    import torch
    import torch.distributed as dist

    group = dist.new_group(backend="gloo")
    if idle:  # the new group's poller too
        from graphtrain.train.gloo_threads import idle_gloo_pollers

        idle_gloo_pollers()
    grad, a, side = torch.zeros(grad_floats), torch.randn(256, 256), torch.zeros(16_000)
    dist.all_reduce(side, group=group)
    dist.barrier()
    stop, side_times = threading.Event(), []
    # Both threads stop on a flag that travels in their own collectives (element 0, summed over the
    # ranks), so every rank makes the same calls on each group and none is left waiting in one whose
    # partner has gone (the "Connection reset by peer" at teardown when each rank counted its own).

    def loader():
        while True:
            side[0] = float(stop.is_set())
            s = time.perf_counter()
            dist.all_reduce(side, group=group)
            side_times.append(time.perf_counter() - s)
            if side[0] > 0:
                return
            time.sleep(0.002)

    thread = threading.Thread(target=loader)
    thread.start()
    steps, t0 = 0, time.perf_counter()
    while True:
        t1 = time.perf_counter()
        while time.perf_counter() - t1 < 0.025:
            a @ a
        grad[0] = float(time.perf_counter() - t0 >= seconds)
        dist.all_reduce(grad)
        steps += 1
        if grad[0] > 0:
            break
    elapsed = time.perf_counter() - t0
    stop.set()
    thread.join()
    dist.barrier()
    np.save(os.path.join(out_dir, f"beside{rank}.npy"), np.array([steps / elapsed, np.mean(side_times), len(side_times)]))


def _run(rank: int, world: int, init_file: str, grad_floats: int, reps: int, gaps, calls: int, pin: bool,
         out_dir: str, idle: bool, beside_seconds: float) -> None:
    import torch
    import torch.distributed as dist

    if pin:  # before the process group, so that gloo's threads share the core, as in a pinned worker
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[rank % len(os.sched_getaffinity(0))]})
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    if idle:
        from graphtrain.train.gloo_threads import idle_gloo_pollers

        idle_gloo_pollers()
    _back_to_back(rank, world, grad_floats, reps, idle)
    if gaps:
        _after_gaps(rank, grad_floats, gaps, calls, out_dir)
    if beside_seconds > 0:
        _beside_compute(rank, grad_floats, beside_seconds, out_dir, idle)
    dist.destroy_process_group()


def _echo(port_file: str) -> None:
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    with open(port_file + ".tmp", "w") as f:
        f.write(str(srv.getsockname()[1]))
    os.replace(port_file + ".tmp", port_file)
    conn, _ = srv.accept()
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    while True:
        b = conn.recv(1)
        if not b:
            return
        conn.sendall(b)


def _tcp_round_trips(gaps, calls: int, tmp: str) -> dict:
    import multiprocessing as mp

    port_file = os.path.join(tmp, "port")
    proc = mp.get_context("spawn").Process(target=_echo, args=(port_file,))
    proc.start()
    while not os.path.exists(port_file):
        time.sleep(0.01)
    conn = socket.create_connection(("127.0.0.1", int(open(port_file).read())))
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    out = {}
    for gap in gaps:
        times = []
        for i in range(calls + 10):
            time.sleep(gap / 1e3)
            s = time.perf_counter()
            conn.sendall(b"x")
            conn.recv(1)
            if i >= 10:
                times.append(time.perf_counter() - s)
        out[gap] = np.array(times)
    conn.close()
    proc.join()
    return out


def _one_setting(args, idle: bool) -> None:
    import torch.multiprocessing as mp

    with tempfile.TemporaryDirectory() as tmp:
        mp.spawn(_run, args=(args.world, os.path.join(tmp, "init"), args.grad_floats, args.reps, args.gaps, args.calls,
                             args.pin, tmp, idle, args.beside_seconds), nprocs=args.world)
        setting = f"{'pinned' if args.pin else 'not pinned'}, gloo pollers {'idle' if idle else 'normal'}"
        if args.gaps:
            kinds = open(os.path.join(tmp, "kinds.txt")).read().splitlines()
            per_rank = [np.load(os.path.join(tmp, f"gaps{r}.npy")) for r in range(args.world)]
            print(f"after a gap ({setting}), all_reduce of {args.grad_floats:,} float32, {args.calls} calls per row; "
                  "ms spent in the call by the rank that left it first (the wait for the other rank's arrival is "
                  "mostly excluded)")
            print(f"  {'gap':<22}{'median':>8}{'p90':>8}{'mean':>8}")
            for i, line in enumerate(kinds):
                kind, gap = line.split()
                first_out = np.min([t[i] for t in per_rank], axis=0) * 1e3
                print(f"  {f'{float(gap):g} ms {kind}':<22}{np.median(first_out):>8.3f}"
                      f"{np.percentile(first_out, 90):>8.3f}{first_out.mean():>8.3f}")
        if args.beside_seconds > 0:
            beside = [np.load(os.path.join(tmp, f"beside{r}.npy")) for r in range(args.world)]
            print(f"beside compute ({setting}), {args.beside_seconds:g} s: training steps (25 ms compute + all-reduce) "
                  f"per second {min(b[0] for b in beside):.1f}; the loader thread's all-reduce of 16,000 float32, "
                  f"mean {np.mean([b[1] for b in beside]) * 1e3:.2f} ms ({int(sum(b[2] for b in beside))} calls)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--world", type=int, default=2, help="processes (default: %(default)s)")
    ap.add_argument("--grad-floats", type=int, default=70_000, help="all-reduce size (default: %(default)s)")
    ap.add_argument("--reps", type=int, default=2000, help="timed all-to-alls (a quarter as many all-reduces)")
    ap.add_argument("--gaps", type=float, nargs="*", default=[0, 5, 25],
                    help="ms of busy compute or sleep before each timed all-reduce (none: skip this part)")
    ap.add_argument("--calls", type=int, default=100, help="timed all-reduces per gap (default: %(default)s)")
    ap.add_argument("--pin", action="store_true", help="pin each process (and its gloo threads) to a core of its own")
    ap.add_argument("--poller", choices=["normal", "idle", "both"], default="both",
                    help="gloo's socket-poller threads at normal or idle priority, or both in turn (default: %(default)s)")
    ap.add_argument("--beside-seconds", type=float, default=5.0,
                    help="seconds of the training-thread-beside-a-loader-thread part (0: skip it)")
    args = ap.parse_args()
    for idle in {"normal": [False], "idle": [True], "both": [False, True]}[args.poller]:
        _one_setting(args, idle)
    if args.gaps:
        with tempfile.TemporaryDirectory() as tmp:
            tcp = _tcp_round_trips(args.gaps, args.calls, tmp)
        print("plain loopback TCP, 1-byte round trip after the same sleep (not pinned):")
        for gap, t in tcp.items():
            print(f"  {f'{gap:g} ms sleep':<22}{np.median(t) * 1e3:>8.3f}{t.mean() * 1e3:>8.3f}")


if __name__ == "__main__":
    main()
