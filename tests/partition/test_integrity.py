"""Array integrity: header and size on every open; sha256 with a stamp that skips unchanged files."""
import json
import os
import shutil

import numpy as np
import pytest

from graphtrain.errors import FormatError
from graphtrain.partition import format as fmt
from graphtrain.partition import integrity

from tests.partition.test_format import _write_tiny_dataset

SRC = "part-0000/src.npy"


def backdate(root, pattern="*.npy", seconds=3600):
    """Set the arrays' mtime an hour back, as for a dataset written earlier (not "racily" new)."""
    for path in root.rglob(pattern):
        old = path.stat().st_mtime_ns - seconds * 10**9
        os.utime(path, ns=(old, old))


@pytest.fixture
def ds(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # never the real user cache
    root = _write_tiny_dataset(tmp_path / "ds")
    backdate(root)
    return root


def flip_last_byte(path):
    with open(path, "r+b") as fh:
        fh.seek(-1, os.SEEK_END)
        byte = fh.read(1)
        fh.seek(-1, os.SEEK_END)
        fh.write(bytes([byte[0] ^ 0x80]))


def test_truncated_and_extended_files_are_caught_on_open(ds):
    path = ds / SRC
    good = path.read_bytes()
    path.write_bytes(good[:-8])
    with pytest.raises(FormatError, match=rf"{SRC}: \d+ bytes, expected \d+ \(128 header \+ 16 data\); the file is truncated"):
        fmt.open_dataset(ds)
    path.write_bytes(good + b"\0")
    with pytest.raises(FormatError, match=f"{SRC}: .* has trailing bytes"):
        fmt.open_dataset(ds)
    path.write_bytes(good[:50])  # cut inside the header
    with pytest.raises(FormatError, match=f"{SRC}: unreadable .npy header"):
        fmt.open_dataset(ds)


def test_changed_header_is_caught_on_open(ds):
    path = ds / SRC
    np.save(path, np.array([3, 4], dtype=np.int32))  # same length, other dtype
    with pytest.raises(FormatError, match=f"{SRC}: expected dtype <i8 shape \\(2,\\), found <i4 \\(2,\\)"):
        fmt.open_dataset(ds)
    np.save(path, np.array([3, 4, 5], dtype=np.int64))
    with pytest.raises(FormatError, match=f"{SRC}: expected dtype <i8 shape \\(2,\\), found <i8 \\(3,\\)"):
        fmt.open_dataset(ds)
    path.write_bytes(b"not an array at all")
    with pytest.raises(FormatError, match=f"{SRC}: unreadable .npy header"):
        fmt.open_dataset(ds)


def test_flipped_byte_needs_the_checksum(ds):
    flip_last_byte(ds / SRC)
    fmt.open_dataset(ds)  # header and size are still right
    with pytest.raises(FormatError, match=f"{SRC}: sha256 mismatch \\(dataset corrupted or modified after partitioning\\)"):
        fmt.open_dataset(ds).verify(reuse_stamp=True)
    assert not (ds / fmt.STAMP_FILE).exists()  # nothing recorded for a failed verification


def test_stamp_is_reused_and_invalidated(ds):
    d = fmt.open_dataset(ds)
    first = d.verify(reuse_stamp=True)
    assert (first.files, first.hashed) == (8, 8) and first.stamp == ds / fmt.STAMP_FILE
    stamp = json.loads(first.stamp.read_text())
    assert stamp["dataset"] == str(ds.resolve()) and stamp["files"][SRC]["sha256"] == d.meta.files[SRC].sha256
    assert d.verify(reuse_stamp=True).hashed == 0  # nothing changed: nothing hashed
    assert d.verify().hashed == 8  # forced (--verify): everything hashed again
    flip_last_byte(ds / SRC)  # an in-place write changes mtime/ctime: only that file is hashed, and fails
    with pytest.raises(FormatError, match=f"{SRC}: sha256 mismatch"):
        d.verify(reuse_stamp=True)
    flip_last_byte(ds / SRC)  # restored content, new mtime: hashed once more, and passes
    assert d.verify(reuse_stamp=True).hashed == 1
    backdate(ds, SRC)  # once the file has settled its entry is stamped again
    assert d.verify(reuse_stamp=True).hashed == 1
    assert d.verify(reuse_stamp=True).hashed == 0


def test_files_changed_just_before_verification_are_not_stamped(ds):
    d = fmt.open_dataset(ds)
    assert d.verify(reuse_stamp=True).hashed == 8
    os.utime(ds / SRC)  # "modified" now: a write later in the same clock tick would not change its stat
    assert d.verify(reuse_stamp=True).hashed == 1  # so it is left out of the stamp ...
    assert d.verify(reuse_stamp=True).hashed == 1  # ... until it has been unchanged for RACY_WINDOW_NS
    assert SRC not in json.loads((ds / fmt.STAMP_FILE).read_text())["files"]


def test_a_copy_or_another_meta_is_hashed_again(ds, tmp_path):
    fmt.open_dataset(ds).verify(reuse_stamp=True)
    copy = tmp_path / "copy"
    shutil.copytree(ds, copy)  # stamp copied along, but it names another directory (and the inodes differ)
    backdate(copy)
    assert fmt.open_dataset(copy).verify(reuse_stamp=True).hashed == 8
    assert fmt.open_dataset(copy).verify(reuse_stamp=True).hashed == 0
    # a stamp entry only counts for the sha256 it was checked against
    meta = json.loads((ds / "meta.json").read_text())
    meta["files"][SRC]["sha256"] = "0" * 64
    (ds / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(FormatError, match=f"{SRC}: sha256 mismatch"):
        fmt.open_dataset(ds).verify(reuse_stamp=True)


def test_read_only_dataset_stamps_in_the_cache(ds, tmp_path, monkeypatch):
    if os.geteuid() == 0:  # root writes through permission bits: simulate the read-only directory
        real = integrity.stamp_paths
        monkeypatch.setattr(integrity, "stamp_paths", lambda root: [tmp_path / "nowhere" / "x" / "s.json", *real(root)[1:]])
        (tmp_path / "nowhere").write_text("a file, so nothing can be created below it")
    else:
        os.chmod(ds, 0o555)
    try:
        report = fmt.open_dataset(ds).verify(reuse_stamp=True)
        assert report.hashed == 8 and report.stamp.is_relative_to(tmp_path / "cache" / "graphtrain" / "verified")
        assert not (ds / fmt.STAMP_FILE).exists()
        assert fmt.open_dataset(ds).verify(reuse_stamp=True).hashed == 0
    finally:
        os.chmod(ds, 0o755)


def test_no_writable_stamp_location_still_verifies(ds, monkeypatch, caplog):
    monkeypatch.setattr(integrity, "stamp_paths", lambda root: [])
    with caplog.at_level("WARNING", logger="graphtrain"):
        assert fmt.open_dataset(ds).verify(reuse_stamp=True).stamp is None
    assert "hashed again on every run" in caplog.text
    assert fmt.open_dataset(ds).verify(reuse_stamp=True).hashed == 8


def test_sha256_data_matches_the_writer(tmp_path):
    arr = np.random.default_rng(0).normal(size=(1000, 7)).astype(np.float32)
    rec = fmt.write_array(tmp_path / "a.npy", arr)
    offset, _ = integrity.check_array_file(tmp_path / "a.npy", rec.dtype, rec.shape)
    assert integrity.sha256_data(tmp_path / "a.npy", offset) == rec.sha256
    np.save(tmp_path / "b.npy", arr)  # numpy's own writer (another header length) hashes the same
    offset_b, _ = integrity.check_array_file(tmp_path / "b.npy", rec.dtype, rec.shape)
    assert integrity.sha256_data(tmp_path / "b.npy", offset_b) == rec.sha256
