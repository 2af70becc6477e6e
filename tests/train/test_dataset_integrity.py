"""A dataset with one flipped feature byte is refused on the driver, before any worker starts."""
import os
import shutil

import pytest

from graphtrain.cli import main
from graphtrain.errors import FormatError
from graphtrain.train import Trainer, predict
from graphtrain.train.trainer import _Launcher

STAMP_FILE = ".verified.json"  # graphtrain.partition.integrity.STAMP_FILE
FEATURES = "part-0001/node_feat.npy"
MISMATCH = r"part-0001/node_feat\.npy: sha256 mismatch \(dataset corrupted or modified after partitioning\)"


@pytest.fixture
def no_workers(monkeypatch):
    """Fail the test if a worker group is started (the refusal must come first)."""
    def refuse(self, *args, **kwargs):
        raise AssertionError("a worker group was started on a corrupted dataset")

    monkeypatch.setattr(_Launcher, "run", refuse)  # Trainer.fit/evaluate and predict() all start workers here


@pytest.fixture
def dataset_copy(labelled_dataset, tmp_path):
    """A private copy of the session dataset (its stamp, if any, left behind)."""
    copy = tmp_path / "ds"
    shutil.copytree(labelled_dataset, copy, ignore=shutil.ignore_patterns(STAMP_FILE))
    for path in copy.rglob("*.npy"):  # written an hour ago, as a dataset partitioned earlier (not "racily" new:
        old = path.stat().st_mtime_ns - 3600 * 10**9  # integrity.RACY_WINDOW_NS), whatever the session fixture's age
        os.utime(path, ns=(old, old))
    return copy


def flip_byte(path, offset=-3):
    """Flip one data byte in place, the ordinary way (the file's mtime and ctime change)."""
    with open(path, "r+b") as fh:
        fh.seek(offset, os.SEEK_END)
        byte = fh.read(1)
        fh.seek(-1, os.SEEK_CUR)
        fh.write(bytes([byte[0] ^ 0x01]))


def test_fit_refuses_a_flipped_feature_byte_without_a_stamp(dataset_copy, no_workers):
    flip_byte(dataset_copy / FEATURES)
    assert not (dataset_copy / STAMP_FILE).exists()
    with pytest.raises(FormatError, match=MISMATCH):
        Trainer(dataset_copy, epochs=1).fit()


def test_fit_refuses_a_byte_flipped_after_a_verified_open(dataset_copy, no_workers):
    Trainer(dataset_copy, epochs=1)  # first open hashes everything and records the stamp
    assert (dataset_copy / STAMP_FILE).is_file()
    flip_byte(dataset_copy / FEATURES)
    with pytest.raises(FormatError, match=MISMATCH):
        Trainer(dataset_copy, epochs=1).fit()
    # verify=False skips the hashing (sizes and headers are still checked)
    Trainer(dataset_copy, epochs=1, verify=False)


def test_predict_refuses_a_flipped_feature_byte(dataset_copy, tmp_path, no_workers, monkeypatch):
    import graphtrain.train.checkpoint as checkpoint

    monkeypatch.setattr(checkpoint, "resolve_checkpoint", lambda path: path)  # the dataset is checked first
    monkeypatch.setattr(checkpoint, "read_manifest", lambda path: None)
    flip_byte(dataset_copy / FEATURES)
    with pytest.raises(FormatError, match=MISMATCH):
        predict(dataset_copy, tmp_path / "ck", tmp_path / "scores.parquet")


def test_train_cli_exits_non_zero_naming_the_file(dataset_copy, no_workers, capsys):
    flip_byte(dataset_copy / FEATURES)
    code = main(["train", str(dataset_copy), "--epochs", "1", "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "graphtrain train: error:" in err and "Traceback" not in err
    assert f"{FEATURES}: sha256 mismatch" in err
    # --no-verify gets past the hashing (and would train)
    with pytest.raises(AssertionError, match="a worker group was started"):
        main(["train", str(dataset_copy), "--epochs", "1", "--no-progress", "--no-verify"])
