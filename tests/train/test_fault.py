"""Fault tolerance: SIGKILL one worker mid-epoch; the run resumes from its last checkpoint and ends
with the metrics of an uninterrupted run. A run that gives up leaves a usable checkpoint."""
import os
import signal
import threading
import time

import pytest

from graphtrain.errors import GraphtrainError
from graphtrain.train import Trainer, predict

pytestmark = pytest.mark.ray
RUN = dict(model="sage", fanouts=[5, 5], batch_size=16, epochs=3, num_workers=2, hidden=16, lr=0.01,
           checkpoint_every=2, num_cpus=4, progress=False)


def _kill_rank1_mid_epoch(trainer, epoch=1, timeout=120.0):
    """Wait for a mid-epoch checkpoint of ``epoch``, then SIGKILL worker 1; return what was seen."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        prog = trainer.progress
        if prog is not None and 1 in prog.worker_pids:
            mid = [c for c in prog.checkpoints if c["epoch"] == epoch and c["batch"] > 0]
            if mid:
                os.kill(prog.worker_pids[1], signal.SIGKILL)
                return mid[0]
        time.sleep(0.01)
    raise AssertionError("no mid-epoch checkpoint appeared")


def _fit_in_thread(trainer):
    box = {}

    def target():
        try:
            box["result"] = trainer.fit()
        except BaseException as exc:  # handed to the test thread
            box["error"] = exc

    th = threading.Thread(target=target)
    th.start()
    return th, box


def test_sigkill_mid_epoch_resumes_from_the_last_checkpoint(ray_local, labelled_dataset, tmp_path):
    clean = Trainer(labelled_dataset, checkpoint_dir=tmp_path / "clean", **RUN).fit()
    trainer = Trainer(labelled_dataset, checkpoint_dir=tmp_path / "killed", **RUN)
    th, box = _fit_in_thread(trainer)
    seen = _kill_rank1_mid_epoch(trainer)
    th.join(300)
    assert not th.is_alive() and "error" not in box, box.get("error")
    r = box["result"]
    assert r["restarts"] == 1 and len(trainer.restarts) == 1
    resumed = trainer.restarts[0]
    # resumed from the newest checkpoint written before the kill landed: the one the test saw, or a
    # later one the workers wrote while the kill was on its way (rank 0 cannot pass rank 1's death)
    assert (resumed["epoch"], resumed["batch"]) >= (seen["epoch"], seen["batch"])
    assert resumed["batch"] > 0 or resumed["epoch"] > seen["epoch"]
    assert r["epochs_run"] == clean["epochs_run"] == 3
    # the resumed run re-draws exactly what the uninterrupted one drew: same metrics (tolerance for float sums)
    for split in ("val", "test"):
        for k in ("auc", "ap"):
            assert r[split][k] == pytest.approx(clean[split][k], abs=0.02)
    assert r["history"][-1]["loss"] == pytest.approx(clean["history"][-1]["loss"], rel=0.05)


def test_a_run_that_gives_up_leaves_its_last_checkpoint_usable(ray_local, labelled_dataset, tmp_path):
    trainer = Trainer(labelled_dataset, checkpoint_dir=tmp_path / "ck", max_restarts=0, **RUN)
    th, box = _fit_in_thread(trainer)
    _kill_rank1_mid_epoch(trainer, epoch=0)
    th.join(300)
    assert isinstance(box.get("error"), GraphtrainError)
    last = trainer.latest_checkpoint()
    assert last is not None and str(last) in str(box["error"])
    out = predict(labelled_dataset, tmp_path / "ck", tmp_path / "scores.parquet", num_workers=2, num_cpus=4)
    assert out["rows"] == 600 and out["checkpoint"] == last
    # and training can resume from it
    r = Trainer(labelled_dataset, checkpoint_dir=tmp_path / "ck", resume=True, **RUN).fit()
    assert r["epochs_run"] == 3 and r["val"]["auc"] > 0.6
