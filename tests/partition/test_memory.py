"""Bounded memory: a run stays under --memory-limit; limits the runtime cannot honour are refused."""
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from graphtrain.errors import ConfigError
from graphtrain.partition.ingest import read_ahead
from graphtrain.partition.partitioner import PartitionOptions
from graphtrain.rmat import rmat_chunks, scramble_ids

REPO = Path(__file__).resolve().parents[2]


def test_limit_below_runtime_needs_is_refused():
    with pytest.raises(ConfigError, match="below"):
        PartitionOptions(num_parts=2, memory_limit="100M").validate()


def _within(seconds, fn):
    """Run ``fn()`` in a daemon thread and fail if it has not returned after ``seconds`` (a hang fails the test
    instead of stalling the suite); re-raises what ``fn`` raised."""
    outcome = {}

    def run():
        try:
            outcome["value"] = fn()
        except BaseException as exc:  # handed to the test
            outcome["error"] = exc

    thread = threading.Thread(target=run, name="test-within", daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        pytest.fail(f"{getattr(fn, '__name__', fn)} did not finish within {seconds} s (hung)")
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


def _read_ahead_threads():
    return [t for t in threading.enumerate() if t.name == "graphtrain-read-ahead"]


def test_read_ahead_reraises_where_it_happened():
    def gen():
        yield 1
        yield 2
        raise ValueError("row 3 is bad")

    def consume():
        got = []
        with pytest.raises(ValueError, match="row 3"):
            for x in read_ahead(gen()):
                got.append(x)
        return got

    assert _within(30, consume) == [1, 2]


def test_read_ahead_stops_its_producer_when_the_consumer_stops_early():
    produced = []

    def items():
        for i in range(1000):
            produced.append(i)
            yield i

    def stop_early():
        it = read_ahead(items())
        first = next(it)
        while len(produced) < 3:  # item 1 waits in the full queue, the producer holds item 2 ...
            time.sleep(0.001)
        time.sleep(0.05)  # ... and blocks putting it
        it.close()  # what a `break` out of a for loop does (once the generator is dropped)
        return first

    assert _within(30, stop_early) == 0
    assert not _read_ahead_threads()  # the producer has ended, not left blocked on a full queue
    assert len(produced) < 10  # and it stopped producing


@pytest.mark.slow
def test_peak_rss_stays_under_the_limit(tmp_path):
    path = tmp_path / "rmat.parquet"
    with pq.ParquetWriter(path, pa.schema([("src", pa.int64()), ("dst", pa.int64())])) as w:
        for s, d in rmat_chunks(19, 4_000_000, chunk_edges=1 << 20, seed=5):
            w.write_table(pa.table({"src": scramble_ids(s), "dst": scramble_ids(d)}))
    limit_mib = 400
    # peak anonymous memory, sampled: --memory-limit bounds that (see graphtrain.memory for why
    # file-backed pages -- library code, page cache -- are not counted)
    code = (
        "import sys, json; from graphtrain.memory import PeakMemory, peak_rss_bytes; from graphtrain.cli import main\n"
        "with PeakMemory() as peak: rc = main(sys.argv[1:])\n"
        "print(json.dumps({'rc': rc, 'anon': peak.peak_anon, 'rss': peak_rss_bytes()}))"
    )
    tiny = tmp_path / "tiny.csv"
    tiny.write_text("src,dst\n1,2\n2,3\n3,1\n")
    for source, out in ((tiny, "warm"), (path, "ds")):  # the first run fills Numba's cache: compiling is not data memory
        res = subprocess.run(
            [sys.executable, "-c", code, "partition", str(source), "--out", str(tmp_path / out), "-p", "4",
             "--memory-limit", f"{limit_mib}M", "--method", "ldg", "--no-progress", "--json"],
            cwd=REPO, capture_output=True, text=True, timeout=600,
        )
    last = json.loads(res.stdout.strip().splitlines()[-1])
    assert last["rc"] == 0, res.stderr
    summary = json.loads(res.stdout.strip().splitlines()[-2])
    assert summary["num_edges"] == 4_000_000
    assert 0 < summary["peak_anon_bytes"] <= last["anon"] + (8 << 20)  # the summary's own figure agrees
    assert last["anon"] < limit_mib * 2**20, (
        f"peak anonymous memory {last['anon'] / 2**20:.0f} MiB over the {limit_mib} MiB limit "
        f"(resident incl. file pages: {last['rss'] / 2**20:.0f} MiB)")


def test_peak_memory_sampler_sees_an_allocation():
    from graphtrain.memory import PeakMemory, rss_anon_bytes

    def allocate():
        before = rss_anon_bytes()
        with PeakMemory() as peak:  # leaving it joins the sampler thread
            block = np.ones(64 << 20, dtype=np.uint8)  # 64 MiB, touched
            time.sleep(0.05)
            del block
        return before, peak.peak_anon

    before, peak = _within(30, allocate)
    assert peak >= before + (60 << 20)
