"""Bounded memory: a run stays under --memory-limit; limits the runtime cannot honour are refused."""
import json
import subprocess
import sys
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


def test_read_ahead_reraises_where_it_happened():
    def gen():
        yield 1
        yield 2
        raise ValueError("row 3 is bad")

    got = []
    with pytest.raises(ValueError, match="row 3"):
        for x in read_ahead(gen()):
            got.append(x)
    assert got == [1, 2]
    # an early stop of the consumer does not hang the producer
    for x in read_ahead(iter(range(1000))):
        break


@pytest.mark.slow
def test_peak_rss_stays_under_the_limit(tmp_path):
    path = tmp_path / "rmat.parquet"
    with pq.ParquetWriter(path, pa.schema([("src", pa.int64()), ("dst", pa.int64())])) as w:
        for s, d in rmat_chunks(19, 4_000_000, chunk_edges=1 << 20, seed=5):
            w.write_table(pa.table({"src": scramble_ids(s), "dst": scramble_ids(d)}))
    limit_mib = 400
    code = (
        "import resource, sys, json; from graphtrain.cli import main; "
        "rc = main(sys.argv[1:]); print(json.dumps({'rc': rc, 'rss': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))"
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
    assert last["rss"] < limit_mib * 2**20, f"peak RSS {last['rss'] / 2**20:.0f} MiB over the {limit_mib} MiB limit"
