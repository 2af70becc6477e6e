"""``graphtrain tune`` end to end on a tiny dataset: a search, its configuration in ``train``, resume."""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from graphtrain.cli import main
from graphtrain.train.config_file import read_config_file
from graphtrain.tune.search import SEARCH_FILE, TRIALS_FILE
from graphtrain.tune.space import in_space, search_space

REPO = Path(__file__).resolve().parents[2]
SCHEDULE = ["--epochs", "2", "--min-steps", "0", "--batch-size", "128", "--patience", "2"]


def _rows(search_dir):
    import csv

    with open(search_dir / TRIALS_FILE) as f:
        return list(csv.DictReader(f))


@pytest.mark.ray
@pytest.mark.slow
def test_search_writes_a_config_in_the_space_that_train_applies(split_dataset, tmp_path, capsys):
    from graphtrain.train.checkpoint import latest_checkpoint, read_manifest

    sdir, out = tmp_path / "search", tmp_path / "best.json"
    # the budget is a limit: 2 trials of 2 epochs on 400 nodes end well within a minute on an idle 2-core
    # machine, but on the shared one at load 40 two trials did not reach a validation in 3 minutes
    code = main(["tune", str(split_dataset), "--trials", "2", "--time-budget", "5m", "--num-cpus", "2",
                 "--search-dir", str(sdir), "--out", str(out), *SCHEDULE])
    assert code == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    rows = _rows(sdir)
    assert summary["ended"] in ("complete", "time budget") and 1 <= len(rows) == summary["trials"] <= 2
    scored = [float(r["best_val_ap"]) for r in rows if int(r["validations"]) > 0]
    assert scored and summary["best_val_ap"] == max(scored)
    values = read_config_file(out)
    assert in_space(values, search_space())
    assert (values["epochs"], values["min_steps"], values["batch_size"], values["monitor"]) == (2, 0, 128, "ap")
    doc = json.loads(out.read_text())
    assert doc["search"]["val_ap"] == summary["best_val_ap"] and doc["search"]["search_dir"] == str(sdir)

    # train --config trains with the file's values, and a flag overrides the file
    ck = tmp_path / "ck"
    assert main(["train", str(split_dataset), "--config", str(out), "--hidden", "16", "--checkpoint-dir", str(ck),
                 "--no-progress"]) == 0
    trained = read_manifest(latest_checkpoint(ck)).train
    assert trained["hidden"] == 16
    for key in ("model", "lr", "dropout", "weight_decay", "class_weight", "normalize", "epochs", "batch_size"):
        assert trained[key] == values[key], key
    assert tuple(trained["fanouts"]) == values["fanouts"]


def _wait_for_trial(tmp: Path, nth: int, proc, timeout: float) -> None:
    """Return once the ``nth`` trial (1-based, in start order) has written its first checkpoint: it is mid-run.

    A trial's Trainer checkpoints into its own ``$TMPDIR/graphtrain-tune-trial-*`` (removed when the
    trial ends). Tune's ``result.json`` is no signal: Tune writes it to a staging directory and copies
    it to the search directory at its next sync, often after every trial has ended."""
    deadline, started = time.monotonic() + timeout, []
    while time.monotonic() < deadline:
        started += sorted(p.name for p in tmp.glob("graphtrain-tune-trial-*") if p.name not in started)
        if len(started) >= nth and (tmp / started[nth - 1] / "latest.json").exists():
            return
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    pytest.fail(f"trial {nth} did not checkpoint within {timeout} s")


@pytest.fixture
def short_tmpdir():
    """A private TMPDIR under /tmp, short because Ray puts its socket paths there; removed after."""
    path = Path(tempfile.mkdtemp(prefix="gt-tune-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.mark.ray
@pytest.mark.slow
def test_resume_continues_an_interrupted_search(split_dataset, tmp_path, short_tmpdir):
    sdir = tmp_path / "search"
    # the budget is a limit for both runs together (a resume gets the remainder); generous for a loaded machine
    # no early end of a trial: ASHA's grace period and the patience are the whole 12 epochs, so the last
    # trial is still running when the Ctrl-C after its first epoch arrives, however fast the machine
    args = ["tune", str(split_dataset), "--trials", "3", "--time-budget", "20m", "--num-cpus", "1",
            "--search-dir", str(sdir), "--epochs", "12", "--min-steps", "0", "--batch-size", "128",
            "--grace-period", "12", "--patience", "12"]
    env = dict(os.environ, PYTHONPATH=str(REPO), TMPDIR=str(short_tmpdir))  # the trials' checkpoints show which runs
    proc = subprocess.Popen([sys.executable, "-m", "graphtrain.cli", *args], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # one trial at a time (1 CPU): Ctrl-C lands in the last trial, 1 of its 12 epochs done
        _wait_for_trial(short_tmpdir, 3, proc, timeout=600)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    state = json.loads((sdir / SEARCH_FILE).read_text())
    # two trials ended; the last was stopped by Ctrl-C, and Tune reports it TERMINATED like the finished ones
    rows = _rows(sdir)
    assert state["ended"] == "interrupted" and state["trials"] == len(rows) == 3
    assert sorted(r["status"] for r in rows) == ["done", "done", "interrupted"], rows

    # another schedule is refused, naming what changed; the same arguments continue to all 3 trials
    p = subprocess.run([sys.executable, "-m", "graphtrain.cli", *args[:-1], "3", "--resume"], cwd=tmp_path, env=env,
                       capture_output=True, text=True)
    assert p.returncode == 2 and "cannot resume: the search's arguments changed (patience 12 -> 3)" in p.stderr
    p = subprocess.run([sys.executable, "-m", "graphtrain.cli", *args, "--resume"], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=1200)
    assert p.returncode == 0, p.stderr
    summary = json.loads(p.stdout.strip().splitlines()[-1])
    rows = _rows(sdir)
    assert summary["ended"] == "complete" and summary["trials"] == len(rows) == 3
    assert all(r["status"] == "done" for r in rows), rows
    resumed = json.loads((sdir / SEARCH_FILE).read_text())
    assert resumed["ended"] == "complete" and resumed["elapsed_s"] > state["elapsed_s"]  # the time counts on
    assert in_space(read_config_file(summary["config"]), search_space())
