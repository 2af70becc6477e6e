"""A run killed with its watcher leaves a staging directory; the next run of the same output removes it
(and says so), while a staging directory whose writer still runs is left alone. The partitioner
deletes its spill as soon as it is consumed.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import psutil
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from graphtrain.io import STAGING_OWNER, _owner_record, _start_ticks, owner_alive, reclaim_dead_staging, staged_directory
from graphtrain.partition.partitioner import Tuning, partition_arrays
from graphtrain.partition.spill import SpillDir

REPO = Path(__file__).resolve().parents[2]


def _env():
    return dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))


def _cli(*args):
    return [sys.executable, "-m", "graphtrain.cli", *map(str, args)]


def _staging(parent: Path, name: str):
    return sorted(p for p in parent.glob(f".{name}.tmp-*") if p.is_dir())


@pytest.fixture(scope="module")
def edge_file(tmp_path_factory) -> Path:
    """2M R-MAT edges with scrambled IDs: about 11 ingest chunks at --memory-limit 384M, a run of a few seconds."""
    from graphtrain.rmat import rmat_chunks, scramble_ids

    path = tmp_path_factory.mktemp("orphans") / "edges.parquet"
    schema = pa.schema([("src", pa.int64()), ("dst", pa.int64())])
    with pq.ParquetWriter(path, schema) as writer:
        for src, dst in rmat_chunks(19, 2_000_000, chunk_edges=1 << 20, seed=3):
            writer.write_table(pa.table({"src": scramble_ids(src, 3), "dst": scramble_ids(dst, 3)}, schema=schema))
    return path


def _write_owner(tmp: Path, **record) -> None:
    tmp.mkdir()
    (tmp / "spill.bin").write_bytes(b"x" * 4096)
    (tmp / STAGING_OWNER).write_text(json.dumps({**_owner_record(), **record}))


def test_sigkill_of_writer_and_watcher_leaves_an_orphan_that_the_next_run_removes(tmp_path, edge_file):
    out = tmp_path / "ds"
    cmd = _cli("partition", edge_file, "--out", out, "--num-parts", 2, "--memory-limit", "384M", "--threads", 1,
               "--no-progress")
    proc = subprocess.Popen(cmd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        staging = []
        while time.monotonic() < deadline and proc.poll() is None:
            staging = _staging(tmp_path, "ds")
            if staging and any((staging[0] / "_spill").glob("echunk_*")):
                break  # ingesting: spill on disk
            time.sleep(0.01)
        assert proc.poll() is None and staging, "the run ended before it could be killed mid-run"
        watchers = [c for c in psutil.Process(proc.pid).children(recursive=True) if "rmtree" in " ".join(c.cmdline())]
        assert len(watchers) == 1, "the staging directory's watcher process was not found"
        assert os.getsid(watchers[0].pid) != os.getsid(proc.pid)  # its own session: a killpg alone misses it
        os.killpg(proc.pid, signal.SIGKILL)  # the writer's whole process group...
        watchers[0].kill()  # ...and the watcher: as when the machine, the container or its cgroup goes down
        proc.wait(timeout=30)
        watchers[0].wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    time.sleep(0.5)
    orphans = _staging(tmp_path, "ds")
    assert orphans == staging and not out.exists()  # what a dead run leaves beside --out
    record = json.loads((orphans[0] / STAGING_OWNER).read_text())
    assert record["pid"] == proc.pid and record["host"] == socket.gethostname()
    assert owner_alive(record) is False

    small = tmp_path / "small.csv"  # the next run of the same --out (a small input keeps the test short)
    small.write_text("src,dst\n1,2\n2,3\n3,1\n")
    res = subprocess.run([small if str(a) == str(edge_file) else a for a in cmd], env=_env(), capture_output=True,
                         text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    assert f"removed {orphans[0]}" in res.stderr and "no longer running" in res.stderr and f"pid {proc.pid}" in res.stderr
    assert (out / "meta.json").is_file()
    assert _staging(tmp_path, "ds") == [] and not (out / STAGING_OWNER).exists()


def test_a_live_writers_staging_directory_is_left_alone_and_a_dead_ones_removed(tmp_path, caplog):
    final = tmp_path / "out"
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        live, dead, reused, foreign, unowned = (tmp_path / f".out.tmp-{k}" for k in ("live", "dead", "reused", "foreign", "none"))
        _write_owner(live, pid=sleeper.pid, start_ticks=_start_ticks(sleeper.pid))
        gone = subprocess.Popen([sys.executable, "-c", "pass"])
        gone.wait()
        _write_owner(dead, pid=gone.pid, start_ticks=None)
        _write_owner(reused, pid=sleeper.pid, start_ticks=(_start_ticks(sleeper.pid) or 0) + 12345)  # the pid was reused
        _write_owner(foreign, host=socket.gethostname() + "-elsewhere")
        unowned.mkdir()
        caplog.set_level("INFO", logger="graphtrain")
        with staged_directory(final, marker="m.json") as tmp:
            (tmp / "m.json").write_text("{}")
        assert sorted(p.name for p in _staging(tmp_path, "out")) == sorted(p.name for p in (live, foreign, unowned))
        text = caplog.text
        assert f"removed {dead}" in text and f"removed {reused}" in text
        assert f"{live} is being written by a run still in progress" in text and f"pid {sleeper.pid}" in text
        assert f"{foreign} belongs to a run on another host" in text
        assert f"{unowned} is a staging directory with no readable owner record" in text
        assert (final / "m.json").is_file() and not (final / STAGING_OWNER).exists()
    finally:
        sleeper.kill()
        sleeper.wait()
    assert reclaim_dead_staging(final) == [live]  # its writer has now died


def test_owner_alive_tells_this_process_and_a_restarted_machine():
    me = _owner_record()
    assert owner_alive(me) is True
    assert owner_alive({**me, "boot_id": "another-boot"}) is False
    assert owner_alive({**me, "host": "elsewhere"}) is None


def test_partition_reclaims_a_dead_staging_directory_before_its_disk_check(tmp_path, monkeypatch):
    """The dead run's disk counts as free: the check runs after the orphan is gone."""
    import graphtrain.plan as plan

    out = tmp_path / "ds"
    _write_owner(tmp_path / ".ds.tmp-dead", pid=2**22 + 7, start_ticks=None)  # above pid_max: no such process
    seen = []
    real = plan.check_disk
    monkeypatch.setattr(plan, "check_disk", lambda *a, **k: seen.append(_staging(tmp_path, "ds")) or real(*a, **k))
    partition_arrays(np.arange(100), np.arange(1, 101), out, 2)
    assert seen == [[]] and (out / "meta.json").is_file()


def test_spill_is_deleted_as_soon_as_it_is_consumed(tmp_path, monkeypatch):
    """When the partitions' CSC arrays are written, the ingest chunks' spill, the ID map's per-chunk key
    order and its rids of edge keys are gone; only the destination bins are left (and the sorted IDs)."""
    import graphtrain.partition.partitioner as pt

    listings = []
    real = pt.write_edge_bins

    def spy(root, bins, *a, **k):
        listings.append(sorted(p.name for p in (root / "_spill").iterdir()))
        return real(root, bins, *a, **k)

    monkeypatch.setattr(pt, "write_edge_bins", spy)
    rs = np.random.default_rng(0)
    src, dst = rs.integers(0, 3000, 20_000), rs.integers(0, 3000, 20_000)
    ids = np.arange(3000)
    summary = partition_arrays(src, dst, tmp_path / "ds", 3, edge_attrs={"t": rs.integers(0, 9, 20_000)}, time_column="t",
                               node_ids=ids, node_features=rs.normal(size=(3000, 2)), node_labels=ids % 2,
                               tuning=Tuning(chunk_rows=1024, num_buckets=8, bin_edges=4096, bin_nodes=512))
    (names,) = listings
    assert not [n for n in names if n.startswith(("echunk_", "edge_order_", "edge_rid_", "edge_h_", "edge_din"))], names
    assert [n for n in names if n.startswith("ebin_")]
    assert 0 < summary.spill_peak_bytes < summary.spill_bytes
    assert summary.dataset_bytes > 0 and summary.dataset_bytes_per_edge == round(summary.dataset_bytes / 20_000, 2)


def test_spill_dir_counts_bytes_on_disk_and_their_peak(tmp_path):
    spill = SpillDir(tmp_path / "s")
    spill.append("a", np.zeros(100, np.int64))
    spill.append("b", np.zeros(50, np.int32))
    spill.remove("a")
    spill.write("b", np.zeros(10, np.int64))
    spill.remove("missing")
    assert (spill.live_bytes, spill.peak_bytes, spill.bytes_written) == (80, 1000, 1080)
    spill.close()
    assert sum(p.stat().st_size for p in spill.root.iterdir()) == spill.live_bytes
