#!/usr/bin/env python
"""The fraud pipeline at scale: ``graphtrain generate`` then ``graphtrain detect-rings`` on its files.

For each size (accounts; the generator draws about 8 transactions per account, string IDs), the
benchmark generates the data once (cached in ``--workdir``), then runs ``detect-rings`` as a
subprocess and samples, every 0.5 s, the resident memory of its whole process tree (the driver,
the local Ray it starts and the Ray workers): the peak of the sum of ``VmRSS`` (total, mapped file
pages included) and of ``RssAnon`` (heap and other anonymous memory). It records the wall time,
the output's size on disk, the stage times from the run's ``summary.json``, each stage's seconds and
peak memory (``stages``: the samples taken between its start and end, from the run's stage records)
and the run's metrics.

Prints one JSON line per size. Extra arguments after ``--`` go to ``detect-rings`` (e.g. a step budget).

Examples::

    python benchmarks/bench_pipeline_scale.py --accounts 100000 1000000 --workdir /tmp/scale
    python benchmarks/bench_pipeline_scale.py --accounts 1000000 -- --epochs 3 --min-steps 0
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _tree(pid: int):
    """``pid`` and all its descendants (from /proc)."""
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(entry))
        except OSError:
            continue
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += children.get(p, [])
    return out


def _status_kb(pid: int, key: str) -> int:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class TreeMemory:
    """Peak summed VmRSS and RssAnon (bytes) of a process tree, sampled every ``interval`` seconds;
    ``samples``: ``(unix time, rss, anon)`` of each sample, for the peaks within each stage."""

    def __init__(self, pid: int, interval: float = 0.5):
        self.pid, self.interval = pid, interval
        self.peak_rss = self.peak_anon = 0
        self.samples = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.is_set():
            pids = _tree(self.pid)
            rss = 1024 * sum(_status_kb(p, "VmRSS") for p in pids)
            anon = 1024 * sum(_status_kb(p, "RssAnon") for p in pids)
            self.samples.append((time.time(), rss, anon))
            self.peak_rss, self.peak_anon = max(self.peak_rss, rss), max(self.peak_anon, anon)
            self._stop.wait(self.interval)

    def stop(self):
        self._stop.set()
        self._thread.join()


def stage_peaks(out: Path, samples) -> dict:
    """Per stage of the run in ``out`` (its records ``stages/NAME.json``: seconds, finished at): seconds and
    the peak RSS and anonymous memory of the samples taken while it ran, in the order the stages ran."""
    records = [json.loads(f.read_text()) for f in (out / "stages").glob("*.json")]
    rows = {}
    for r in sorted(records, key=lambda r: r["finished"]):
        start = r["finished"] - r["seconds"]
        inside = [s for s in samples if start <= s[0] <= r["finished"]]
        rows[r["stage"]] = {"seconds": round(r["seconds"], 1),
                            "peak_rss_bytes": max((s[1] for s in inside), default=None),
                            "peak_anon_bytes": max((s[2] for s in inside), default=None)}
    return rows


def _du(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def main() -> None:
    argv = sys.argv[1:]
    extra = argv[argv.index("--") + 1 :] if "--" in argv else []
    argv = argv[: argv.index("--")] if "--" in argv else argv
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--accounts", type=int, nargs="+", default=[100_000])
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/graphtrain-scale"))
    ap.add_argument("--num-parts", type=int, default=2)
    ap.add_argument("--num-workers", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    graphtrain = [sys.executable, "-m", "graphtrain.cli"]
    for n in args.accounts:
        data = args.workdir / f"gen-{n}"
        if not (data / "manifest.json").is_file():
            t0 = time.perf_counter()
            subprocess.run(graphtrain + ["generate", "--accounts", str(n), "--out", str(data), "--force",
                                         "--seed", str(args.seed)], check=True, cwd=REPO)
            gen_seconds = time.perf_counter() - t0
        else:
            gen_seconds = None
        manifest = json.loads((data / "manifest.json").read_text())
        acc, tx = manifest["columns"]["accounts"], manifest["columns"]["transactions"]
        out = args.workdir / f"run-{n}"
        shutil.rmtree(out, ignore_errors=True)
        cmd = graphtrain + [
            "detect-rings", "--edges", str(data / manifest["files"]["transactions"]), "--src", tx["src"], "--dst", tx["dst"],
            "--time", tx["time"], "--amount", tx["amount"], "--accounts", str(data / manifest["files"]["accounts"]),
            "--id", acc["id"], "--label", acc["label"], "--features", ",".join(acc["features"]),
            "--rings", str(data / manifest["files"]["rings"]), "--num-parts", str(args.num_parts),
            "--num-workers", str(args.num_workers), "--seed", str(args.seed), "--out", str(out), *extra]
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        mem = TreeMemory(proc.pid)
        stdout, stderr = proc.communicate()
        mem.stop()
        seconds = time.perf_counter() - t0
        if proc.returncode != 0:
            print(stderr[-3000:], file=sys.stderr)
            raise SystemExit(f"detect-rings failed at {n} accounts")
        summary = json.loads((out / "summary.json").read_text())
        model = summary["model"]
        row = {
            "accounts": n, "transactions": summary["transactions"], "generate_seconds": gen_seconds,
            "detect_seconds": round(seconds, 1), "peak_tree_rss_bytes": mem.peak_rss, "peak_tree_anon_bytes": mem.peak_anon,
            "output_bytes": _du(out), "dataset_bytes": _du(out / "dataset"),
            "stages": stage_peaks(out, mem.samples),
            "stage_seconds": {k: model.get(k) for k in ("partition_seconds", "feature_seconds", "train_and_score_seconds")}
            | summary.get("stage_seconds", {}),
            "optimizer_steps": model["optimizer_steps"], "epochs_run": model["epochs_run"],
            **{k: summary.get(k) for k in ("auc", "ap", "baseline_auc", "baseline_ap", "blend_auc", "blend_ap",
                                           "ring_precision", "ring_recall", "rings", "ring_score")},
            "ring_subgraph": summary.get("ring_subgraph"), "extra_args": extra,
        }
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
