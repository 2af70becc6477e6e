"""Checkpoint files: atomic switch of latest, retention, integrity and version checks."""
import json

import pytest
import torch

from graphtrain.errors import FormatError
from graphtrain.train import checkpoint as ck


def _manifest(step, finished=False):
    return ck.CheckpointManifest(epoch=step // 10, batch=step % 10, global_step=step, batches_per_epoch=10,
                                 num_workers=2, model={"name": "sage"}, train={"seed": 0},
                                 dataset={"path": "x"}, finished=finished)


def test_save_load_latest_and_retention(tmp_path):
    for step in (3, 7, 12):
        ck.save_checkpoint(tmp_path, _manifest(step), {"model": {"w": torch.full((2,), float(step))},
                                                        "optimizer": {"state": {}, "param_groups": []}}, keep=2)
    latest = ck.latest_checkpoint(tmp_path)
    assert latest.name == "step-000000012"
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == ["step-000000007", "step-000000012"]
    man = ck.read_manifest(tmp_path)
    assert (man.epoch, man.batch, man.global_step) == (1, 2, 12)
    states = ck.load_states(tmp_path)
    assert torch.equal(states["model"]["w"], torch.full((2,), 12.0)) and "best_model" not in states
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())  # no temporary leftovers


def test_corrupt_and_foreign_checkpoints_are_refused(tmp_path):
    path = ck.save_checkpoint(tmp_path, _manifest(1), {"model": {"w": torch.ones(3)}})
    (path / "model.pt").write_bytes(b"garbage")
    with pytest.raises(FormatError, match="checksum mismatch"):
        ck.load_states(path)
    man = json.loads((path / ck.MANIFEST).read_text())
    man["format_version"] = 99
    (path / ck.MANIFEST).write_text(json.dumps(man))
    with pytest.raises(FormatError, match="format version 99"):
        ck.read_manifest(path)
    with pytest.raises(FormatError, match="no such checkpoint"):
        ck.resolve_checkpoint(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FormatError, match="neither a checkpoint"):
        ck.resolve_checkpoint(tmp_path / "empty")


def test_a_manifest_with_the_old_flat_runtime_fields_still_loads(tmp_path):
    """Checkpoints written before RuntimeConfig (issue 18) hold prefetch, pin_cpus and gloo_poller in
    ``train``: they load into ``runtime``; a new manifest round-trips its nested ``runtime``."""
    from graphtrain.train.config import TrainConfig
    from graphtrain.train.runtime import RuntimeConfig

    old = {k: v for k, v in TrainConfig(hidden=16).to_dict().items() if k != "runtime"}
    old.update(prefetch=0, pin_cpus=True, gloo_poller="auto")
    man = _manifest(4)
    path = ck.save_checkpoint(tmp_path / "old", ck.CheckpointManifest(**{**man.__dict__, "train": old}),
                              {"model": {"w": torch.ones(1)}})
    cfg = TrainConfig.from_dict(ck.read_manifest(path).train).validate()
    assert cfg.hidden == 16 and cfg.runtime == RuntimeConfig(prefetch=0, pin_cpus=True, gloo_poller="auto")
    assert cfg.idle_gloo_pollers  # "auto" on CPU, as the old run had it
    new = TrainConfig(runtime=RuntimeConfig(fused_dropout=True, freeze_gc=False))
    path = ck.save_checkpoint(tmp_path / "new", ck.CheckpointManifest(**{**man.__dict__, "train": new.to_dict()}),
                              {"model": {"w": torch.ones(1)}})
    assert TrainConfig.from_dict(ck.read_manifest(path).train) == new
