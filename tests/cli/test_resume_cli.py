"""``graphtrain detect-rings --resume``: a run killed with SIGKILL in the middle of scoring continues from
its last finished stage and ends with the output of an uninterrupted run.

The kill point: the test hook ``GRAPHTRAIN_TEST_PAUSE_AFTER_STAGE=score``
(:mod:`graphtrain.fraud.pipeline.stages`) makes the run pause after the scoring stage wrote
``model_scores.parquet`` but before it recorded that it finished, and log a line; the test waits
for that line and kills the run's whole process group (the driver and its local Ray) with SIGKILL.
The staging directory's watcher, in a session of its own, survives and must leave the directory
(it holds finished stages). Then, on copies of that dead directory:

1. ``--resume`` with another ``--epochs`` and with a changed input file is refused, naming what
   changed; nothing is deleted;
2. ``--resume`` with the same arguments adopts it, skips partition, features, model_inputs and
   train (their records unchanged), scores again (the unrecorded scores file is not trusted), and
   writes the scores and metrics of an uninterrupted run;
3. without ``--resume`` the dead directory is removed (the log says ``--resume`` would have
   continued it), and the fresh run is the uninterrupted run compared against.

2,000 generated accounts, 3 epochs: every stage runs, in a few minutes on 2 cores.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import psutil
import pyarrow.parquet as pq
import pytest

from graphtrain.fraud.pipeline.stages import PAUSE_ENV, STAGES_DIR

from tests.subprocess_env import minimal_env

METRICS = ("auc", "ap", "f1_macro", "recall_at_k", "baseline_auc", "baseline_ap", "blend_auc", "blend_ap", "blend_weight",
           "ring_score", "rings", "ring_precision", "ring_recall")


def _detect(data: Path, out: Path, *extra):
    return [sys.executable, "-m", "graphtrain.cli", "detect-rings", "--edges", str(data / "transactions.parquet"),
            "--accounts", str(data / "accounts.parquet"), "--src", "src", "--dst", "dst", "--time", "time",
            "--amount", "amount", "--label", "label", "--rings", str(data / "rings.csv"), "--epochs", "3",
            "--min-steps", "5", "--num-cpus", "2", "--out", str(out), *map(str, extra)]


def _env(**extra):
    # one OpenMP thread, waiting passively: on this loaded 2-core machine (load average about 20) the tree
    # baseline of a fresh 2,000-account run took over 4 minutes without it (two libgomp threads busy), 9 s with it
    return {**minimal_env(), "OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "passive", **extra}


def _staging(out: Path):
    return sorted(p for p in out.parent.glob(f".{out.name}.tmp-*") if p.is_dir())


def _run(cmd, timeout=900, **env):
    return subprocess.run(cmd, env=_env(**env), capture_output=True, text=True, timeout=timeout)


def _kill_during_scoring(cmd, log: Path, timeout: float = 600) -> None:
    """Run ``cmd`` until the scoring stage pauses (the test hook's log line), then SIGKILL its process group."""
    with open(log, "w") as err:
        proc = subprocess.Popen(cmd, env=_env(**{PAUSE_ENV: "score"}), stdout=subprocess.DEVNULL, stderr=err,
                                start_new_session=True)
    deadline = time.monotonic() + timeout
    try:
        while "test hook: pausing after stage score" not in log.read_text():
            assert proc.poll() is None, f"the run ended (exit {proc.returncode}) before scoring:\n{log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, "the run did not reach scoring in time"
            time.sleep(0.5)
        tree = psutil.Process(proc.pid).children(recursive=True)
        os.killpg(proc.pid, signal.SIGKILL)
        for child in tree:  # Ray's processes, if any started a session of their own
            try:
                child.kill()
            except psutil.NoSuchProcess:
                pass
        proc.wait(timeout=30)
        assert proc.returncode == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _records(run: Path):
    return {p.stem: json.loads(p.read_text()) for p in sorted((run / STAGES_DIR).glob("*.json"))}


@pytest.mark.slow
@pytest.mark.ray
def test_a_run_killed_while_scoring_resumes_from_its_last_finished_stage(tmp_path):
    data = tmp_path / "data"
    gen = _run([sys.executable, "-m", "graphtrain.cli", "generate", "--out", str(data), "--accounts", "2000", "--seed", "1"])
    assert gen.returncode == 0, gen.stderr
    out = tmp_path / "run"
    _kill_during_scoring(_detect(data, out), tmp_path / "killed.log")
    # the watcher kept the directory: it holds finished stages; scoring wrote its file but no record
    time.sleep(1)
    [dead] = _staging(out)
    before = _records(dead)
    assert sorted(before) == ["baseline", "features", "model_inputs", "partition", "train"]
    assert (dead / "model_scores.parquet").is_file() and not out.exists()
    assert before["features"]["released"] == ["work/features"] and not (dead / "work" / "features").exists()
    spare = tmp_path / "spare"
    shutil.copytree(dead, spare, symlinks=True)

    # 1. a changed argument, then a changed input: refused, one line each, nothing deleted
    refused = _run(_detect(data, out, "--resume", "--epochs", "4"))
    assert refused.returncode != 0 and "Traceback" not in refused.stderr
    assert f"cannot resume {out} from {dead.name}: --epochs: 3 -> 4." in refused.stderr
    changed = tmp_path / "changed"
    shutil.copytree(data, changed)
    moved = _run(_detect(changed, out, "--resume"))
    assert moved.returncode != 0 and f"accounts file: {data / 'accounts.parquet'} -> {changed / 'accounts.parquet'}" in moved.stderr
    touched = data / "accounts.parquet"
    stat = touched.stat()
    os.utime(touched, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    modified = _run(_detect(data, out, "--resume"))
    assert modified.returncode != 0 and "accounts file accounts.parquet changed (modified" in modified.stderr
    os.utime(touched, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert _staging(out) == [dead] and _records(dead) == before and not out.exists()

    # 2. the same arguments with --resume: adopted, the stages before scoring skipped
    resumed = _run(_detect(data, out, "--resume"))
    assert resumed.returncode == 0, resumed.stderr[-5000:]
    assert f"resuming: adopted {dead}" in resumed.stderr
    for stage in ("partition", "features", "baseline", "model_inputs", "train"):
        assert f"resume: skipping stage {stage}" in resumed.stderr
    assert "resume: skipping stage score" not in resumed.stderr
    after = _records(out)
    assert {k: after[k] for k in before} == before  # not run again: their records untouched
    assert after["score"]["finished"] > before["train"]["finished"] and "rings" in after
    summary = json.loads((out / "summary.json").read_text())
    assert summary["resumed"] == {"skipped_stages": ["partition", "features", "baseline", "model_inputs", "train"]}
    assert _staging(out) == []

    # 3. the dead directory again, beside another output, without --resume: removed, and a fresh
    # run from scratch -- the uninterrupted run to compare with
    fresh_out = tmp_path / "fresh"
    shutil.copytree(spare, tmp_path / f".fresh.tmp-{dead.name.rsplit('-', 1)[1]}", symlinks=True)
    fresh = _run(_detect(data, fresh_out))
    assert fresh.returncode == 0, fresh.stderr[-5000:]
    assert "removed" in fresh.stderr and "--resume would have continued it" in fresh.stderr
    assert "skipping stage" not in fresh.stderr and _staging(fresh_out) == []

    got, want = pq.read_table(out / "scores.parquet"), pq.read_table(fresh_out / "scores.parquet")
    assert got.column_names == want.column_names and got.num_rows == want.num_rows == 2000
    for name in got.column_names:
        a, b = got.column(name).to_numpy(zero_copy_only=False), want.column(name).to_numpy(zero_copy_only=False)
        if a.dtype.kind == "f":
            np.testing.assert_array_equal(a, b, err_msg=name)
        else:
            assert list(a) == list(b), name
    fresh_summary = json.loads((fresh_out / "summary.json").read_text())
    assert {k: summary.get(k) for k in METRICS} == {k: fresh_summary.get(k) for k in METRICS}
