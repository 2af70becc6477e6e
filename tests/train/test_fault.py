"""Fault tolerance: SIGKILL one worker mid-epoch; the run resumes from its last checkpoint and ends
exactly where an uninterrupted run ends (metrics, loss history, final weights). Epoch-end
checkpoints resume on another worker count; mid-epoch ones refuse to. A run that gives up leaves a
usable checkpoint."""
import json
import os
import shutil
import signal
import threading
import time

import pytest
import torch

from graphtrain.errors import ConfigError, GraphtrainError
from graphtrain.train import Trainer, predict
from graphtrain.train.checkpoint import LATEST, load_states, read_manifest

pytestmark = pytest.mark.ray
RUN = dict(model="sage", fanouts=[5, 5], batch_size=16, epochs=3, num_workers=2, hidden=16, lr=0.01,
           checkpoint_every=2, num_cpus=4, progress=False)


def _kill_rank1_mid_epoch(trainer, epoch=1, timeout=120.0):
    """Wait for a mid-epoch checkpoint of ``epoch``, then SIGKILL worker 1; return what was seen."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        prog = trainer.progress
        if prog is not None and 1 in prog.worker_pids:
            mid = [c for c in prog.checkpoints if c.epoch == epoch and c.batch > 0]
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


def _history(result):
    """The loss and validation history (of a fit() result or a list of records) without wall times,
    the only fields allowed to differ."""
    history = result if isinstance(result, list) else result.history
    return [{k: v for k, v in h.items() if k != "seconds"} for h in history]


def _final_weights(result):
    return load_states(result.checkpoint, names=("model",))["model"]


def _assert_same_weights(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_sigkill_mid_epoch_resumes_exactly(ray_local, labelled_dataset, tmp_path):
    clean = Trainer(labelled_dataset, checkpoint_dir=tmp_path / "clean", **RUN).fit()
    trainer = Trainer(labelled_dataset, checkpoint_dir=tmp_path / "killed", **RUN)
    th, box = _fit_in_thread(trainer)
    seen = _kill_rank1_mid_epoch(trainer)
    th.join(300)
    assert not th.is_alive() and "error" not in box, box.get("error")
    r = box["result"]
    assert r.restarts == 1 and len(trainer.restarts) == 1
    resumed = trainer.restarts[0]
    # resumed from the newest checkpoint written before the kill landed: the one the test saw, or a
    # later one the workers wrote while the kill was on its way (rank 0 cannot pass rank 1's death)
    assert (resumed["epoch"], resumed["batch"]) >= (seen.epoch, seen.batch)
    assert resumed["batch"] > 0 or resumed["epoch"] > seen.epoch
    assert r.epochs_run == clean.epochs_run == 3
    # the resumed run re-draws exactly what the uninterrupted one drew: the same metrics, the same
    # loss of every epoch (the interrupted epoch's too) and the same final weights, bit for bit
    assert r.val == clean.val and r.test == clean.test
    assert _history(r) == _history(clean)
    assert r.best_epoch == clean.best_epoch
    _assert_same_weights(_final_weights(r), _final_weights(clean))


def _epoch_end_checkpoint(src_root, epoch, dst_root):
    """Copy the epoch-end checkpoint of ``src_root`` that starts ``epoch`` into ``dst_root`` as its latest."""
    found = [p for p in src_root.iterdir() if p.is_dir() and p.name.startswith("step-")
             and read_manifest(p).epoch == epoch and read_manifest(p).batch == 0 and not read_manifest(p).finished]
    assert len(found) == 1, sorted(p.name for p in src_root.iterdir())
    dst_root.mkdir()
    shutil.copytree(found[0], dst_root / found[0].name)
    (dst_root / LATEST).write_text(json.dumps({"format_version": 1, "checkpoint": found[0].name}))
    return read_manifest(found[0])


def test_an_epoch_end_checkpoint_resumes_on_any_worker_count(ray_local, labelled_dataset, tmp_path):
    run = dict(RUN, checkpoint_every=0, keep_checkpoints=3)
    first = Trainer(labelled_dataset, checkpoint_dir=tmp_path / "w2", **run).fit()
    for workers in (2, 1, 4):
        root = tmp_path / f"resumed-on-{workers}"
        man = _epoch_end_checkpoint(tmp_path / "w2", 2, root)
        r = Trainer(labelled_dataset, checkpoint_dir=root, resume=True, **dict(run, num_workers=workers)).fit()
        assert r.num_workers == workers and r.epochs_run == 3 and r.restarts == 0
        # the two epochs of the 2-worker run are kept as they were; only the third ran here
        assert _history(r)[:2] == _history(first)[:2] == _history(man.history)
        assert r.train.batches == workers * r.batches_per_epoch
        final = read_manifest(r.checkpoint)
        assert final.finished and final.num_workers == workers
        assert final.global_step == man.global_step + r.batches_per_epoch
        if workers == 2:  # on the same count, exactly the uninterrupted run
            assert _history(r) == _history(first) and r.val == first.val and r.test == first.test
            _assert_same_weights(_final_weights(r), _final_weights(first))
        else:  # it went on from the checkpoint's model: its third epoch's loss is below a fresh first epoch's
            assert r.history[2]["loss"] < first.history[0]["loss"]


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
    # it was taken mid-epoch: another worker count or batch size is refused on the driver, before
    # any worker starts, naming the checkpoint and both settings
    man = read_manifest(last)
    assert man.batch > 0 and man.num_workers == 2
    t4 = Trainer(labelled_dataset, checkpoint_dir=tmp_path / "ck", resume=True, **dict(RUN, num_workers=4))
    with pytest.raises(ConfigError, match=r"mid-epoch.*2 workers.*4 workers") as info:
        t4.fit()
    assert str(last) in str(info.value) and t4.progress is None
    with pytest.raises(ConfigError, match=r"mid-epoch.*batch size 16.*batch size 32"):
        Trainer(labelled_dataset, checkpoint_dir=tmp_path / "ck", resume=True, **dict(RUN, batch_size=32)).fit()
    # and training resumes from it with the same settings
    r = Trainer(labelled_dataset, checkpoint_dir=tmp_path / "ck", resume=True, **RUN).fit()
    assert r.epochs_run == 3 and r.val["auc"] > 0.6
