"""Training budgets for huge graphs (issue 20, item 5): ``max_steps``, ``train_sample``, ``val_sample``.

The samples are exact per class, new each epoch (train) or fixed (val), and the same on any worker
count (an audited run on 1 and 2 workers); a run cut by ``max_steps`` ends like a normal run and
resumes exactly from a checkpoint inside its sampled, truncated last epoch.
"""
import json
import shutil

import numpy as np
import pytest
import torch

from graphtrain.cli import build_parser, main
from graphtrain.errors import ConfigError
from graphtrain.partition import open_dataset
from graphtrain.train import Trainer, predict
from graphtrain.train.checkpoint import LATEST, load_states, read_manifest
from graphtrain.train.config import TrainConfig
from graphtrain.train.splits import StratifiedSample, stratified_quotas, systematic_positions

FAST = dict(hidden=16, lr=0.01, num_cpus=4, progress=False)


# -- the sample, without workers ---------------------------------------------------------------------
def test_stratified_quotas():
    assert stratified_quotas([80, 20], 10).tolist() == [8, 2]
    assert stratified_quotas([33, 33, 34], 10).tolist() == [3, 3, 4]  # largest remainder
    assert stratified_quotas([5, 5], 100).tolist() == [5, 5]  # more than there are: all of them
    assert stratified_quotas([998, 2], 10).tolist() == [9, 1]  # a present class is never sampled away
    assert stratified_quotas([998, 2, 0], 1).tolist() == [1, 0, 0]  # ... unless n is below the classes present
    rs = np.random.default_rng(1)
    for _ in range(200):
        totals = rs.integers(0, 1000, rs.integers(2, 6))
        n = int(rs.integers(1, totals.sum() + 2))
        q = stratified_quotas(totals, n)
        assert q.sum() == min(n, totals.sum()) and np.all(q <= totals)
        if n < totals.sum() and n >= np.count_nonzero(totals) + len(totals):
            assert np.all(np.abs(q - n * totals / totals.sum()) < 1 + len(totals))


def test_the_picked_positions_are_the_systematic_rule():
    """``systematic_positions`` enumerates exactly the ranks ``floor((r+1) q / T) > floor(r q / T)`` of
    a window ``r = (first + k) mod T``, ``k < m`` (checked against the rule itself, near 2**32 too)."""
    rs = np.random.default_rng(0)
    for _ in range(2000):
        T = int(rs.integers(1, 300))
        q, m, first = int(rs.integers(1, T + 1)), int(rs.integers(0, T + 1)), int(rs.integers(0, 10**6))
        k = np.arange(m)
        r = (first + k) % T
        assert np.array_equal(np.sort(systematic_positions(first, m, q, T)), k[(r + 1) * q // T > r * q // T])
    T, q, first = 2**32 - 1, 2**31 + 5, 2**40
    rule = [k for k in range(1000) if ((first + k) % T + 1) * q // T > (first + k) % T * q // T]  # Python ints
    assert np.sort(systematic_positions(first, 1000, q, T)).tolist() == rule


def _sample(labels, bounds, parts, n, seed=0, stream=1):
    """A StratifiedSample of the labelled nodes of partitions ``parts`` (as one worker holds them)."""
    C = int(labels.max()) + 1
    counts = np.array([np.bincount(labels[a:b][labels[a:b] >= 0], minlength=C) for a, b in zip(bounds[:-1], bounds[1:])])
    held = []
    for p in parts:
        a, b = bounds[p], bounds[p + 1]
        offsets = np.flatnonzero(labels[a:b] >= 0).astype(np.int32)
        held.append((p, a, {c: offsets[labels[a:b][offsets] == c] for c in range(C)}))
    return StratifiedSample(held, counts, n, seed, stream)


def test_the_sample_is_exact_per_class_new_each_epoch_and_the_same_on_any_worker_count():
    rs = np.random.default_rng(0)
    labels = rs.choice([-1, 0, 0, 0, 0, 1, 2], 6000)
    bounds = [0, 900, 900, 2500, 4100, 5200, 6000]
    P = len(bounds) - 1
    whole = _sample(labels, bounds, range(P), 700)
    quotas = whole.quotas
    assert quotas.sum() == 700 and whole.size == 700
    seen = []
    for epoch in range(4):
        picked = whole.pick(epoch)
        assert picked.size == 700 and np.all(np.diff(picked) > 0) and np.all(labels[picked] >= 0)
        assert np.bincount(labels[picked], minlength=3).tolist() == quotas.tolist()
        for a, b in zip(bounds[:-1], bounds[1:]):  # every partition gives its share of each class (+-1)
            for c in range(3):
                share = np.count_nonzero(labels[picked[(picked >= a) & (picked < b)]] == c)
                assert abs(share - np.count_nonzero(labels[a:b] == c) * quotas[c] / whole.totals[c]) < 1
        # the same sample however the partitions are dealt out to workers
        for runs in ([0, 3, 6], [0, 1, 2, 4, 6], [0, 5, 6]):
            workers = [_sample(labels, bounds, range(lo, hi), 700).pick(epoch) for lo, hi in zip(runs[:-1], runs[1:])]
            assert np.array_equal(np.concatenate(workers), picked)
        seen.append(picked)
    assert all(not np.array_equal(seen[0], s) for s in seen[1:])  # a new sample every epoch
    assert not np.array_equal(_sample(labels, bounds, range(P), 700, seed=1).pick(0), seen[0])
    assert not np.array_equal(_sample(labels, bounds, range(P), 700, stream=2).pick(0), seen[0])
    # every labelled node is drawn with probability q_c / T_c
    hits = np.zeros(labels.size)
    for epoch in range(200):
        hits[whole.pick(epoch)] += 1
    for c in range(3):
        rate = hits[labels == c].mean() / 200
        assert rate == pytest.approx(quotas[c] / whole.totals[c], rel=1e-9)  # exact per epoch, so on average
        assert hits[labels == c].min() > 0
    assert _sample(labels, bounds, range(P), 10**6).everything


def test_budget_config_errors_and_help(labelled_dataset, capsys):
    for bad in (dict(max_steps=0), dict(train_sample=-1), dict(val_sample=0), dict(max_steps=1.5),
                dict(train_sample=True)):
        (name, value), = bad.items()
        with pytest.raises(ConfigError, match=rf"{name} must be a positive integer"):
            TrainConfig(**bad).validate()
    with pytest.raises(ConfigError, match=r"max_steps \(5\) is below min_steps \(10\)"):
        TrainConfig(max_steps=5, min_steps=10).validate()
    TrainConfig(max_steps=10, min_steps=10, train_sample=1, val_sample=1).validate()
    defaults = TrainConfig()
    assert (defaults.max_steps, defaults.train_sample, defaults.val_sample) == (None, None, None)
    assert TrainConfig.from_dict({"epochs": 3}).max_steps is None  # a checkpoint of before the options
    with pytest.raises(ConfigError, match="train_sample 1 is below the 2 workers"):
        Trainer(labelled_dataset, num_workers=2, train_sample=1, verify=False)
    assert main(["train", str(labelled_dataset), "--max-steps", "0", "--no-verify"]) == 2
    assert "max_steps must be a positive integer (or None: off), got 0" in capsys.readouterr().err
    assert main(["train", str(labelled_dataset), "--min-steps", "9", "--max-steps", "3", "--no-verify"]) == 2
    assert "max_steps (3) is below min_steps (9)" in capsys.readouterr().err
    text = " ".join(build_parser()._subparsers._group_actions[0].choices["train"].format_help().split())
    for option in ("--max-steps N", "--train-sample N", "--val-sample N"):
        assert option in text
    assert "stratified (by label) random sample of N training seeds" in text
    assert "the final metrics still score the whole val and test splits" in text


# -- training runs ------------------------------------------------------------------------------------
@pytest.mark.ray
def test_samples_are_stratified_and_the_same_on_1_and_2_workers(ray_local, eight_part_dataset, tmp_path):
    ds = open_dataset(eight_part_dataset)
    labels = np.concatenate([np.asarray(ds.partition(p).labels) for p in range(ds.num_parts)])
    runs = {}
    for w in (1, 2):
        runs[w] = r = Trainer(eight_part_dataset, "sage", [5, 5], 50, 2, num_workers=w, checkpoint_dir=tmp_path / f"w{w}",
                              audit=True, train_sample=100, val_sample=40, **FAST).fit()
        roles = r.audit["roles"]
        train_nodes, val_nodes = np.flatnonzero(roles == 0), np.flatnonzero(roles == 1)
        assert (r.train_sample, r.val_sample) == (100, 40)
        # the epoch's batches count the sample: 100 seeds over w workers in batches of 50
        assert r.batches_per_epoch == -(-(100 // w) // 50) and r.global_step == 2 * r.batches_per_epoch
        epochs = r.audit["epochs"]
        assert len(epochs) == 2
        quotas = stratified_quotas(np.bincount(labels[train_nodes]), 100)
        for e in epochs:  # 100 training nodes, each class in the split's proportion (+-1)
            assert e["seeds"].size == 100 and np.all(np.isin(e["seeds"], train_nodes))
            assert np.array_equal(e["labels"], labels[e["seeds"]])
            assert np.bincount(e["labels"], minlength=2).tolist() == quotas.tolist()
        assert not np.array_equal(epochs[0]["seeds"], epochs[1]["seeds"])  # a new sample each epoch
        # validation during training: the same 40 validation nodes every time; the final metrics: all of val
        sample = r.audit["val_sample"]
        assert sample.size == 40 and np.all(np.isin(sample, val_nodes))
        assert np.bincount(labels[sample]).tolist() == stratified_quotas(np.bincount(labels[val_nodes]), 40).tolist()
        assert [h["val"]["count"] for h in r.history] == [40, 40] and [h["val_sample"] for h in r.history] == [40, 40]
        assert r.val["count"] == val_nodes.size > 40 and r.test["count"] > 40 and r.val["auc"] > 0.6
        assert json.loads(json.dumps(r.to_dict()))["train_sample"] == 100
    for e1, e2 in zip(runs[1].audit["epochs"], runs[2].audit["epochs"]):
        for k in ("seeds", "labels", "feature_digests"):
            assert np.array_equal(e1[k], e2[k])
    assert np.array_equal(runs[1].audit["val_sample"], runs[2].audit["val_sample"])


def _history(result):
    return [{k: v for k, v in h.items() if k != "seconds"} for h in result.history]


@pytest.mark.ray
def test_max_steps_ends_a_sampled_run_and_it_resumes_exactly(ray_local, labelled_dataset, tmp_path):
    # 120 sampled seeds on 2 workers in batches of 16: 4 steps an epoch; 10 steps end epoch 2 after 2 batches
    run = dict(model="sage", fanouts=[5, 5], batch_size=16, epochs=5, num_workers=2, max_steps=10, train_sample=120,
               val_sample=30, checkpoint_every=1, keep_checkpoints=50, **FAST)
    clean = Trainer(labelled_dataset, checkpoint_dir=tmp_path / "clean", **run).fit()
    assert clean.batches_per_epoch == 4 and clean.global_step == 10 and clean.epochs_run == 3
    assert clean.max_steps_reached and not clean.stopped_early
    assert [h["batches"] for h in clean.history] == [4, 4, 2]
    assert all(h["val"] is not None and h["val"]["count"] == 30 for h in clean.history)  # validated at the cut too
    final = read_manifest(clean.checkpoint)
    assert final.finished and final.global_step == 10 and final.epoch == 3 and final.batch == 0
    # no checkpoint was taken at the step that reached the budget: the epoch's end follows at once
    ckpts = sorted(p for p in (tmp_path / "clean").iterdir() if p.name.startswith("step-"))
    assert max(read_manifest(p).global_step for p in ckpts if not read_manifest(p).finished) == 9
    # the final checkpoint scores every node
    out = predict(labelled_dataset, clean.checkpoint, tmp_path / "scores.parquet", num_workers=1, num_cpus=4)
    assert out["rows"] == 600
    # resume from inside the truncated, sampled last epoch: the same run, bit for bit
    (mid,) = [p for p in ckpts if (read_manifest(p).epoch, read_manifest(p).batch) == (2, 1)]
    root = tmp_path / "resumed"
    root.mkdir()
    shutil.copytree(mid, root / mid.name)
    (root / LATEST).write_text(json.dumps({"format_version": 1, "checkpoint": mid.name}))
    with pytest.raises(ConfigError, match=r"mid-epoch.*train_sample 120; this run has train_sample 100"):
        Trainer(labelled_dataset, checkpoint_dir=root, resume=True, **dict(run, train_sample=100)).fit()
    r = Trainer(labelled_dataset, checkpoint_dir=root, resume=True, **run).fit()
    assert r.global_step == 10 and r.max_steps_reached and r.restarts == 0
    assert _history(r) == _history(clean) and r.val == clean.val and r.test == clean.test
    a, b = (load_states(x.checkpoint, names=("model",))["model"] for x in (r, clean))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.ray
def test_max_steps_with_early_stopping_and_at_an_epoch_end(ray_local, labelled_dataset, tmp_path):
    # 419 training nodes, batches of 64: 7 steps an epoch; 14 steps end the second epoch
    r = Trainer(labelled_dataset, "sage", [4], 64, 6, num_workers=1, checkpoint_dir=tmp_path / "a", max_steps=14,
                **FAST).fit()
    assert r.batches_per_epoch == 7 and r.global_step == 14 and r.epochs_run == 2
    assert r.max_steps_reached and not r.stopped_early and r.train_sample is None and r.val_sample is None
    assert [h["val"] is not None for h in r.history] == [True, True] and "val_sample" not in r.history[0]
    # samples at least as large as the splits: the whole splits, exactly the run without them
    s = Trainer(labelled_dataset, "sage", [4], 64, 6, num_workers=1, checkpoint_dir=tmp_path / "s", max_steps=14,
                train_sample=10**6, val_sample=10**6, **FAST).fit()
    assert s.val_sample == r.val["count"] and s.train.seeds == r.train.seeds == 2 * s.train_sample  # one worker: no padding
    assert [{**h, "seconds": 0} for h in s.history] == [{**h, "seconds": 0, "val_sample": s.val_sample} for h in r.history]
    assert s.val == r.val and s.test == r.test
    # early stopping ends the run before the step budget: nothing improves by 1.0, patience 1
    r = Trainer(labelled_dataset, "sage", [4], 64, 6, num_workers=1, checkpoint_dir=tmp_path / "b", max_steps=30,
                min_steps=10, patience=1, min_delta=1.0, **FAST).fit()
    assert r.stopped_early and not r.max_steps_reached and r.global_step == 14 and r.best_epoch == 0
