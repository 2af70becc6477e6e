"""What ``--resume`` saves: ``graphtrain demo`` killed with SIGKILL in the middle of scoring, then resumed,
against an uninterrupted run of the same command.

1. ``graphtrain demo --accounts N --out WORK/killed`` with the test hook
   ``GRAPHTRAIN_TEST_PAUSE_AFTER_STAGE=score`` (it pauses after scoring wrote its file, before its
   record); killed (its whole process tree) once the hook's log line appears: ``killed_after_s``.
2. ``graphtrain demo --accounts N --out WORK/killed --resume``: ``resumed_run_s`` (it reuses the
   generated data and skips partition, features, model inputs and training).
3. ``graphtrain demo --accounts N --out WORK/fresh``: ``uninterrupted_run_s``.

Prints one JSON line (``saved_s`` = uninterrupted - resumed; whether the metrics of 2 and 3 are
equal) and each run's stage seconds from its ``stages/`` records. One run of each: a measurement,
not a timed test. All three runs get ``OMP_NUM_THREADS=1`` and ``OMP_WAIT_POLICY=passive``: on
the shared 2-core machine (load average about 20) the tree baseline of a fresh 2,000-account
``detect-rings`` took over 4 minutes without them (two libgomp threads busy) and 9 s with them.

    python benchmarks/bench_resume.py [--accounts 20000] [--work-dir /tmp/gt-resume]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--accounts", type=int, default=20000)
    ap.add_argument("--work-dir", type=Path, default=Path("/tmp/gt-resume"))
    args = ap.parse_args()
    work = args.work_dir
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1", OMP_WAIT_POLICY="passive")

    def demo(out, *extra):
        return [sys.executable, "-m", "graphtrain.cli", "demo", "--accounts", str(args.accounts), "--out", str(out), *extra]

    log = work / "killed.log"
    t0 = time.perf_counter()
    with open(log, "w") as err:
        proc = subprocess.Popen(demo(work / "killed"), env=dict(env, GRAPHTRAIN_TEST_PAUSE_AFTER_STAGE="score"),
                                stdout=subprocess.DEVNULL, stderr=err, start_new_session=True)
    while "test hook: pausing after stage score" not in log.read_text():
        if proc.poll() is not None:
            sys.exit(f"the run ended before scoring:\n{log.read_text()[-2000:]}")
        time.sleep(0.5)
    killed_after = time.perf_counter() - t0
    tree = psutil.Process(proc.pid).children(recursive=True)
    os.killpg(proc.pid, signal.SIGKILL)
    for child in tree:
        try:
            child.kill()
        except psutil.NoSuchProcess:
            pass
    proc.wait()

    timed = {}
    for name, cmd in (("resumed", demo(work / "killed", "--resume")), ("uninterrupted", demo(work / "fresh"))):
        t0 = time.perf_counter()
        run = subprocess.run(cmd, env=env, capture_output=True, text=True)
        timed[name] = (time.perf_counter() - t0, run)
        (work / f"{name}.log").write_text(run.stderr)
        if run.returncode != 0:
            sys.exit(f"{name} run failed:\n{run.stderr[-3000:]}")
    (t_resumed, resumed), (t_fresh, fresh) = timed["resumed"], timed["uninterrupted"]
    a, b = json.loads(resumed.stdout.splitlines()[-1]), json.loads(fresh.stdout.splitlines()[-1])
    keys = ("auc", "ap", "baseline_auc", "baseline_ap", "blend_auc", "rings", "ring_precision", "ring_recall")
    print(json.dumps({"accounts": args.accounts, "killed_after_s": round(killed_after, 1),
                      "resumed_run_s": round(t_resumed, 1), "uninterrupted_run_s": round(t_fresh, 1),
                      "saved_s": round(t_fresh - t_resumed, 1), "same_metrics": all(a.get(k) == b.get(k) for k in keys),
                      "load_avg_1m": round(os.getloadavg()[0], 1)}))
    for name, out in (("resumed", work / "killed"), ("uninterrupted", work / "fresh")):
        records = {p.stem: json.loads(p.read_text())["seconds"] for p in sorted((out / "run" / "stages").glob("*.json"))}
        print(name, "stage seconds as recorded (a skipped stage's by the killed run):", json.dumps(records))


if __name__ == "__main__":
    main()
