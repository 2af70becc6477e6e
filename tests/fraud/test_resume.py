"""Stage records and resumable staging directories (the pieces of ``detect-rings --resume``), without Ray.

The end-to-end test -- ``graphtrain detect-rings`` killed with SIGKILL in the middle of scoring, then
resumed -- is tests/cli/test_resume_cli.py.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from graphtrain.errors import ConfigError
from graphtrain.fraud.pipeline.stages import STAGES_DIR, StageLog
from graphtrain.io import (RUN_FINGERPRINT, STAGING_OWNER, _owner_record, file_identity, fingerprint_changes,
                           staged_directory)


def _dead_pid() -> int:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    return gone.pid


def _fingerprint(tmp_path: Path, epochs: int = 40) -> dict:
    return {"arguments": {"--epochs": epochs, "--src": "payer"}, "inputs": {"transactions file": file_identity(tmp_path / "tx.csv")}}


def _dead_run(final: Path, fingerprint: dict, stages=("partition",), name: str = "dead") -> Path:
    """A staging directory beside ``final`` as a killed run leaves it: owner record of a dead process,
    fingerprint, records of ``stages`` and their outputs."""
    tmp = final.parent / f".{final.name}.tmp-{name}"
    (tmp / STAGES_DIR).mkdir(parents=True)
    (tmp / STAGING_OWNER).write_text(json.dumps({**_owner_record(), "pid": _dead_pid(), "start_ticks": None}))
    (tmp / RUN_FINGERPRINT).write_text(json.dumps(fingerprint))
    for stage in stages:
        (tmp / f"{stage}.out").write_text(stage)
        (tmp / STAGES_DIR / f"{stage}.json").write_text(json.dumps({"stage": stage, "seconds": 1.0, "finished": 1.0,
                                                                     "outputs": [f"{stage}.out"], "data": {}}))
    return tmp


@pytest.fixture
def tx(tmp_path) -> Path:
    path = tmp_path / "tx.csv"
    path.write_text("payer,payee\n" + "".join(f"{i},{i + 1}\n" for i in range(1000)))
    return path


def test_fingerprint_changes_name_the_argument_and_the_file(tmp_path, tx):
    before = _fingerprint(tmp_path)
    assert fingerprint_changes(before, _fingerprint(tmp_path)) == []
    assert fingerprint_changes(before, _fingerprint(tmp_path, epochs=10)) == ["--epochs: 40 -> 10"]
    with open(tx, "a") as f:
        f.write("5,6\n")
    assert fingerprint_changes(before, _fingerprint(tmp_path)) == [
        f"transactions file tx.csv changed (size {before['inputs']['transactions file']['size']} -> {tx.stat().st_size} bytes)"]
    # same size, other bytes; and only the modification time
    before = _fingerprint(tmp_path)
    tx.write_text(tx.read_text().replace("0,1\n", "9,1\n", 1))
    assert fingerprint_changes(before, _fingerprint(tmp_path)) == ["transactions file tx.csv changed (its content: same size, other bytes)"]
    before = _fingerprint(tmp_path)
    os.utime(tx, ns=(1, 1))
    assert fingerprint_changes(before, _fingerprint(tmp_path))[0].startswith("transactions file tx.csv changed (modified")


def test_file_identity_hashes_both_ends_of_a_large_file(tmp_path):
    path = tmp_path / "big.bin"
    path.write_bytes(b"a" * (3 << 20))
    before = file_identity(path)
    with open(path, "r+b") as f:
        f.seek((3 << 20) - 10)
        f.write(b"b")
    after = file_identity(path)
    assert after["size"] == before["size"] and after["head_tail_sha256"] != before["head_tail_sha256"]


def test_resume_adopts_a_dead_runs_directory_with_the_same_fingerprint(tmp_path, tx, caplog):
    final = tmp_path / "out"
    dead = _dead_run(final, _fingerprint(tmp_path))
    caplog.set_level("INFO", logger="graphtrain")
    with staged_directory(final, marker="m.json", fingerprint=_fingerprint(tmp_path), keep=STAGES_DIR, resume=True) as tmp:
        assert tmp == dead and (tmp / "partition.out").read_text() == "partition"
        assert json.loads((tmp / STAGING_OWNER).read_text())["pid"] == os.getpid()  # owned by this run now
        (tmp / "m.json").write_text("{}")
    assert f"resuming: adopted {dead}" in caplog.text and "finished stages: partition" in caplog.text
    assert (final / "partition.out").is_file() and (final / RUN_FINGERPRINT).is_file() and not dead.exists()


def test_resume_after_a_change_is_refused_naming_it_and_deletes_nothing(tmp_path, tx):
    final = tmp_path / "out"
    dead = _dead_run(final, _fingerprint(tmp_path))
    with pytest.raises(ConfigError, match=r"cannot resume .*: --epochs: 40 -> 10\. Rerun with the same arguments"):
        with staged_directory(final, fingerprint=_fingerprint(tmp_path, epochs=10), keep=STAGES_DIR, resume=True):
            pytest.fail("must not start")
    tx.write_text("payer,payee\n1,2\n")
    with pytest.raises(ConfigError, match=r"transactions file tx.csv changed \(size \d+ -> 16 bytes\)"):
        with staged_directory(final, fingerprint=_fingerprint(tmp_path), keep=STAGES_DIR, resume=True):
            pytest.fail("must not start")
    assert (dead / "partition.out").is_file() and (dead / STAGES_DIR / "partition.json").is_file()
    assert not final.exists()


def test_without_resume_the_dead_directory_is_removed_and_the_log_says_resume_would_have_continued(tmp_path, tx, caplog):
    final = tmp_path / "out"
    dead = _dead_run(final, _fingerprint(tmp_path))
    other = _dead_run(final, _fingerprint(tmp_path, epochs=3), name="other")
    caplog.set_level("INFO", logger="graphtrain")
    with staged_directory(final, marker="m.json", fingerprint=_fingerprint(tmp_path), keep=STAGES_DIR) as tmp:
        assert tmp not in (dead, other) and not (tmp / STAGES_DIR).exists()
        (tmp / "m.json").write_text("{}")
    assert not dead.exists() and not other.exists()
    assert f"removed {dead}" in caplog.text
    assert "same arguments and inputs: --resume would have continued it" in caplog.text
    assert "of a run with other arguments or inputs (--epochs: 3 -> 40)" in caplog.text


def test_a_live_owners_directory_is_never_adopted(tmp_path, tx, caplog):
    final = tmp_path / "out"
    live = _dead_run(final, _fingerprint(tmp_path))
    (live / STAGING_OWNER).write_text(json.dumps(_owner_record()))  # this process: alive
    caplog.set_level("INFO", logger="graphtrain")
    with staged_directory(final, marker="m.json", fingerprint=_fingerprint(tmp_path), keep=STAGES_DIR, resume=True) as tmp:
        assert tmp != live
        (tmp / "m.json").write_text("{}")
    assert (live / "partition.out").is_file() and "nothing to resume" in caplog.text


def test_two_runs_resuming_at_once_do_not_both_adopt_the_dead_runs_directory(tmp_path, tx, monkeypatch):
    """The first run is held between finding the dead run's directory and recording itself as its owner
    (the window where the directory still looks dead); a second run started then waits for it
    (io.setup_lock), finds the directory owned by a live run, and starts afresh."""
    import threading

    from graphtrain import io

    final = tmp_path / "out"
    dead = _dead_run(final, _fingerprint(tmp_path))
    found_first, second_scanning, release_first = threading.Event(), threading.Event(), threading.Event()
    real = io._adoptable

    def adoptable(*args):
        got = real(*args)
        if not found_first.is_set():
            found_first.set()
            release_first.wait(timeout=30)
        else:
            second_scanning.set()
        return got

    monkeypatch.setattr(io, "_adoptable", adoptable)
    got, errors = {}, []

    def run(name):
        try:
            with staged_directory(final, marker="m.json", fingerprint=_fingerprint(tmp_path), keep=STAGES_DIR,
                                  resume=True) as tmp:
                got[name] = tmp
                if name == "second":
                    raise ConfigError("stop before writing")  # leaves the first run's output alone
                (tmp / "m.json").write_text("{}")
        except ConfigError:
            pass
        except BaseException as e:  # noqa: BLE001 -- reported below
            errors.append(e)

    first = threading.Thread(target=run, args=("first",))
    first.start()
    assert found_first.wait(timeout=30)
    second = threading.Thread(target=run, args=("second",))
    second.start()
    second_scanning.wait(timeout=2)  # with the lock the second run cannot scan before the first is set up
    release_first.set()
    first.join(timeout=60)
    second.join(timeout=60)
    assert not errors and got["first"] == dead and got["second"] != dead
    assert (final / "partition.out").is_file()


def test_a_crash_keeps_a_directory_with_finished_stages_and_a_user_error_removes_it(tmp_path, tx, caplog):
    final = tmp_path / "out"
    caplog.set_level("INFO", logger="graphtrain")
    with pytest.raises(RuntimeError):
        with staged_directory(final, fingerprint=_fingerprint(tmp_path), keep=STAGES_DIR) as tmp:
            raise RuntimeError("no stage finished yet")
    assert not tmp.exists()
    with pytest.raises(RuntimeError):
        with staged_directory(final, fingerprint=_fingerprint(tmp_path), keep=STAGES_DIR) as tmp:
            stages = StageLog(tmp)
            stages.begin("partition")
            stages.finish("partition")
            raise RuntimeError("a crash after a stage")
    assert (tmp / STAGES_DIR / "partition.json").is_file() and "rerun with the same arguments and --resume" in caplog.text
    record = json.loads((tmp / STAGING_OWNER).read_text())
    (tmp / STAGING_OWNER).write_text(json.dumps({**record, "pid": _dead_pid(), "start_ticks": None}))  # the process ended
    with pytest.raises(ConfigError):
        with staged_directory(final, fingerprint=_fingerprint(tmp_path), keep=STAGES_DIR, resume=True) as again:
            assert again == tmp
            raise ConfigError("a bad label")  # a user's error: resuming would not help
    assert not tmp.exists()


def test_an_unfinished_stage_is_run_again_and_so_is_every_stage_after_it(tmp_path):
    root = tmp_path / "run"
    root.mkdir()
    first = StageLog(root)
    assert first.done("partition") is None  # a fresh run trusts nothing
    for name in ("partition", "features"):
        first.begin(name, [f"{name}.out"])
        (root / f"{name}.out").write_text(name)
        first.finish(name, [f"{name}.out"], {"n": 1})
    (root / "model_inputs.out").write_text("half")  # begun, never recorded
    (root / "train.out").write_text("stale")
    (root / STAGES_DIR / "train.json").write_text(json.dumps({"stage": "train", "outputs": ["train.out"]}))

    resumed = StageLog(root, trusted=True)
    assert resumed.done("partition")["data"] == {"n": 1} and resumed.done("features") is not None
    assert resumed.done("model_inputs") is None
    assert resumed.done("train") is None  # its earlier stage has no record: not trusted
    assert resumed.resuming
    resumed.begin("model_inputs", ["model_inputs.out"])
    assert not (root / "model_inputs.out").exists() and not resumed.resuming
    resumed.finish("model_inputs")
    assert resumed.done("train") is None  # a stage before it ran again
    assert resumed.skipped == ["partition", "features"]

    (root / "features.out").unlink()
    assert StageLog(root, trusted=True).done("features") is None  # its output is gone


def test_a_released_output_is_deleted_and_its_stage_still_counts_as_finished(tmp_path):
    root = tmp_path / "run"
    root.mkdir()
    log = StageLog(root)
    log.begin("partition")
    log.finish("partition")
    log.begin("features", ["tables", "split.npy"])
    (root / "tables").mkdir()
    (root / "tables" / "base.npy").write_bytes(b"t")
    (root / "split.npy").write_bytes(b"s")
    log.finish("features", ["tables", "split.npy"], {"n": 1})
    log.release("features", ["tables"])
    assert not (root / "tables").exists() and (root / "split.npy").is_file()
    record = log.read("features")
    assert record["outputs"] == ["split.npy"] and record["released"] == ["tables"] and record["data"] == {"n": 1}
    assert StageLog(root, trusted=True).done("features") is not None  # not run again for what it released
    log.release("baseline", ["split.npy"])  # a stage without a record: nothing happens
    assert (root / "split.npy").is_file()
    (root / "split.npy").unlink()
    assert StageLog(root, trusted=True).done("features") is None  # an output it did not release is gone


def test_a_resumed_run_never_rebuilds_the_feature_tables_from_features_the_models_inputs_replaced(tmp_path):
    from types import SimpleNamespace

    from graphtrain.fraud.pipeline.detect import ModelOptions, _features_stage
    from graphtrain.fraud.pipeline.pipeline import FEATURES_DIR, PipelineConfig

    root = tmp_path / "run"
    root.mkdir()
    log = StageLog(root)
    for name, outputs in (("partition", []), ("features", [FEATURES_DIR]), ("baseline", []), ("model_inputs", [])):
        log.begin(name)
        log.finish(name, outputs)  # the tables it names were never written: gone, as if deleted by hand
    data = SimpleNamespace(labels=lambda: np.zeros(4, dtype=np.int64))  # read before the check, nothing else is
    with pytest.raises(ConfigError, match=r"own features they are built from were already replaced by the model's "
                                          r"inputs\. Rerun without --resume"):
        _features_stage(data, root, ModelOptions(), PipelineConfig(), StageLog(root, trusted=True), "accounts", False)


def test_demo_resume_refuses_data_generated_with_other_settings(tmp_path):
    from graphtrain.fraud.pipeline.detect import run_generated
    from graphtrain.fraud.synth.generate import generate
    from graphtrain.fraud.synth.generator_config import GeneratorConfig

    generate(GeneratorConfig(num_accounts=500, seed=1), tmp_path / "demo" / "data")
    with pytest.raises(ConfigError, match=r"generated with other settings: seed: 1 -> 2\. Rerun with the same settings"):
        run_generated(tmp_path / "demo", GeneratorConfig(num_accounts=500, seed=2), resume=True)
    assert sorted(p.name for p in (tmp_path / "demo").iterdir()) == ["data"]  # nothing started, nothing deleted
