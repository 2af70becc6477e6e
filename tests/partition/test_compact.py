"""Compact storage (format version 2, issue 20 item 7): int32 indices, integer columns as int32
offsets, float32 columns -- values read back, the int64 fallbacks, and samplers that give the same
batches from compact and wide storage of one graph."""
from __future__ import annotations

import json

import numba
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from graphtrain import columns
from graphtrain.cli import main
from graphtrain.errors import ConfigError, FormatError
from graphtrain.partition import open_dataset
from graphtrain.partition.partitioner import partition_arrays
from graphtrain.sampling.neighbor import NeighborSampler

I64 = np.iinfo(np.int64)


def _edges(seed=0, n=400, e=5000, t_lo=1_600_000_000, t_hi=1_700_000_000):
    rs = np.random.default_rng(seed)
    raw = rs.choice(10**12, n, replace=False)
    src = raw[rs.integers(0, n, e)]
    dst = raw[(rs.pareto(1.0, e) * 7).astype(np.int64) % n]
    return raw, src, dst, {
        "eid": np.arange(e, dtype=np.int64),  # which input row an edge is
        "time": rs.integers(t_lo, t_hi, e),
        "amount": rs.lognormal(4, 2, e),
    }


def _write(path, raw, src, dst, attrs, num_parts=3, **kw):
    partition_arrays(src, dst, path, num_parts, edge_attrs=attrs, time_column="time", node_ids=raw, **kw)
    return open_dataset(path, verify=True)


def _read_back(ds):
    """Every stored edge's columns, ordered by the input row (``eid``), as the readers see them."""
    got = {c.name: [] for c in ds.meta.edge_columns}
    for p in range(ds.num_parts):
        g = ds.graph(p)
        for name in got:
            got[name].append(np.asarray(g.edge_attrs[name][0 : g.num_edges]))
    got = {k: np.concatenate(v) for k, v in got.items()}
    order = np.argsort(got["eid"], kind="stable")
    return {k: v[order] for k, v in got.items()}


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """One graph stored compactly (the default) and wide (limits forced to 0: every array int64)."""
    root = tmp_path_factory.mktemp("compact")
    raw, src, dst, attrs = _edges()
    compact = _write(root / "compact", raw, src, dst, attrs, float32_columns=("amount",))
    mp = pytest.MonkeyPatch()
    mp.setattr(columns, "INDEX_LIMIT", 0)
    mp.setattr(columns, "OFFSET_RANGE_LIMIT", -1)
    try:
        wide = _write(root / "wide", raw, src, dst, {**attrs, "amount": attrs["amount"].astype(np.float32).astype(np.float64)})
    finally:
        mp.undo()
    return attrs, compact, wide


def test_compact_dtypes_and_values_read_back(pair):
    attrs, ds, _ = pair
    g = ds.graph(1)
    assert g.indptr.dtype == np.int32 and g.src.dtype == np.int32
    assert isinstance(g.edge_attrs["time"], columns.OffsetColumn) and g.edge_attrs["time"].stored.dtype == np.int32
    assert g.edge_attrs["time"].dtype == np.int64 and g.time[0:3].dtype == np.int64
    assert g.edge_attrs["amount"].dtype == np.float32
    meta = ds.meta
    assert meta.format_version == 2
    assert meta.edge_column("time").offset == int(attrs["time"].min())
    assert meta.edge_column("eid").offset == 0
    got = _read_back(ds)
    assert np.array_equal(got["eid"], attrs["eid"])
    assert np.array_equal(got["time"], attrs["time"]) and got["time"].dtype == np.int64  # lossless
    rel = np.abs(got["amount"].astype(np.float64) - attrs["amount"]) / np.abs(attrs["amount"])
    err = meta.edge_column("amount").max_rel_error
    assert rel.max() == pytest.approx(err, rel=1e-12) and 0 < err <= 2.0**-24  # recorded, and what float32 promises


def test_bytes_per_edge_recorded(pair):
    _, ds, wide = pair
    E = ds.meta.num_edges
    st_c, st_w = ds.meta.storage, wide.meta.storage
    # compact: src 4 + eid 4 + time 4 + amount 4 per edge, indptr 4 per node and partition
    assert st_c["edge_bytes"] == E * 16 + 4 * (ds.meta.num_nodes + ds.num_parts)
    assert st_w["edge_bytes"] == E * 32 + 8 * (ds.meta.num_nodes + ds.num_parts)
    assert st_c["edge_bytes_per_edge"] == round(st_c["edge_bytes"] / E, 2)
    assert st_c["index_dtypes"] == {"indptr": "int32", "src": "int32"}
    assert st_w["index_dtypes"] == {"indptr": "int64", "src": "int64"}
    assert st_c["dataset_bytes_per_edge"] < st_w["dataset_bytes_per_edge"]


def test_wide_fallback_when_ranges_do_not_fit(pair):
    attrs, _, wide = pair
    g = wide.graph(0)
    assert g.indptr.dtype == np.int64 and g.src.dtype == np.int64
    assert isinstance(g.time, np.ndarray) and g.time.dtype == np.int64 and wide.meta.edge_column("time").offset is None
    assert np.array_equal(_read_back(wide)["time"], attrs["time"])


def test_a_range_wider_than_int32_stays_int64(tmp_path):
    raw, src, dst, attrs = _edges(e=600)
    attrs["time"] = np.random.default_rng(2).integers(-(2**40), 2**40, 600)  # no forced limit: the range itself
    ds = _write(tmp_path / "ds", raw, src, dst, attrs)
    assert ds.meta.edge_column("time").offset is None and ds.graph(0).time.dtype == np.int64
    assert ds.meta.edge_column("eid").offset == 0  # the narrow column beside it is still compact
    assert np.array_equal(_read_back(ds)["time"], attrs["time"])


def test_extreme_values_round_trip_exactly(tmp_path):
    raw, src, dst, attrs = _edges(e=300)
    t = np.random.default_rng(3).integers(I64.max - 2**31 + 2, I64.max, 300)  # base near the top of int64
    attrs["time"] = t
    ds = _write(tmp_path / "ds", raw, src, dst, attrs, num_parts=2)
    got = _read_back(ds)["time"]
    assert np.array_equal(got, t)


def _batches(ds, temporal=None, backend="cpu", seed=7, **kw):
    sampler = NeighborSampler(ds.graph(), [6, 4], temporal=temporal, backend=backend, seed=seed, **kw)
    n = ds.meta.num_nodes
    seeds = np.arange(0, n, 3)
    rs = np.random.default_rng(5)
    lo, hi = 1_600_000_000, 1_700_000_000
    # bounds inside the range, below every edge, above every edge, at int64's ends
    times = np.concatenate([rs.integers(lo, hi, seeds.size - 4), [lo - 10**12, hi + 10**12, I64.min, I64.max]])
    out = []
    for b in range(0, seeds.size, 50):
        out.append(sampler.sample(seeds[b : b + 50], times[b : b + 50] if temporal else None, batch_index=b))
    return out


def _same(a, b):
    assert np.array_equal(a.n_id, b.n_id) and np.array_equal(a.edge_index, b.edge_index)
    assert np.array_equal(a.e_id, b.e_id)
    assert a.num_sampled_nodes == b.num_sampled_nodes and a.num_sampled_edges == b.num_sampled_edges
    if a.node_time is not None:
        assert np.array_equal(a.node_time, b.node_time)


@pytest.mark.parametrize("temporal,strict", [(None, False), ("uniform", False), ("uniform", True), ("recent", False)])
@pytest.mark.parametrize("backend", ["cpu", "reference"])
def test_sampling_is_identical_on_compact_and_wide_storage(pair, temporal, strict, backend):
    _, compact, wide = pair
    a = _batches(compact, temporal, backend, strict=strict)
    b = _batches(wide, temporal, backend, strict=strict)
    assert sum(x.e_id.size for x in a) > 300  # the batches sample something
    for x, y in zip(a, b):
        _same(x, y)
    if temporal:  # and every sampled edge respects its bound (compared in the original domain)
        g = wide.graph()
        t = np.concatenate([np.asarray(wide.graph(p).time) for p in range(wide.num_parts)])
        for x in a:
            bound = x.node_time[x.edge_index[1]]
            assert np.all(t[x.e_id] < bound) if strict else np.all(t[x.e_id] <= bound)
        assert g.num_edges == t.size


def test_sampling_one_partition_merged_and_whole_batches_match(pair):
    """A LocalHopSampler over one memory-mapped partition (its whole-batch kernel, the path of
    ``NodeLoader(sampling_threads=T)``) and the merged graph of a worker's run give the wide batches."""
    from graphtrain.sampling.hop import LocalHopSampler
    from graphtrain.sampling.shard import merge_graphs

    _, compact, wide = pair
    # one partition: one hop (its sources lie in other partitions); the merged run of all three: two hops
    for c, w, fanouts in [(compact.graph(0), wide.graph(0), [5]),
                          (merge_graphs([compact.graph(p) for p in range(3)]), merge_graphs([wide.graph(p) for p in range(3)]),
                           [5, 3])]:
        assert c.src.dtype == np.int32 and w.src.dtype == np.int64
        seeds = np.arange(c.node_start, c.node_stop, 2)
        times = np.random.default_rng(1).integers(1_600_000_000, 1_700_000_000, seeds.size)
        for temporal in (None, "uniform", "recent"):
            from graphtrain.sampling.hop import HopOptions

            opts = HopOptions(fanout=5, temporal=temporal)
            got = [LocalHopSampler(g, "cpu").sample_batch(seeds, times if temporal else None, fanouts, opts, np.uint64(11))
                   for g in (c, w)]
            _same(*got)
            hop = [LocalHopSampler(g, "cpu").sample_hop(seeds, np.arange(seeds.size, dtype=np.uint64),
                                                        times if temporal else None, opts) for g in (c, w)]
            assert all(np.array_equal(x, y) for x, y in zip(*hop))


@pytest.mark.cudasim
def test_cuda_simulator_matches_cpu_on_compact_storage(pair):
    """The CUDA kernels (run by the simulator where there is no GPU) read int32 indices and offsets."""
    from graphtrain.kernels import cpu, cuda
    from graphtrain.sampling.hop import LocalHopSampler

    _, compact, _ = pair
    g = compact.graph(1)
    hg = LocalHopSampler(g, "cpu")._hop_graph(None)
    assert hg.indptr.dtype == np.int32 and hg.time.dtype == np.int32 and hg.time_base is not None
    local = np.arange(0, g.num_nodes, 2, dtype=np.int64)[:40]
    keys = np.arange(local.size, dtype=np.uint64) * np.uint64(977)
    bounds = np.random.default_rng(0).integers(1_600_000_000, 1_700_000_000, local.size)
    dev = cuda.prepare(hg)  # tests/conftest.py turns the simulator on where there is no GPU
    for recent in (False, True):
        want = cpu.sample_hop(hg, local, keys, 4, time_bound=bounds, recent=recent)
        got = cuda.sample_hop(dev, local, keys, 4, time_bound=bounds, recent=recent)
        assert all(np.array_equal(x, y) for x, y in zip(want, got))


def test_kernels_compile_once_per_dtype(pair):
    """Numba compiles one specialisation for int32 storage; later calls add none."""
    from graphtrain.kernels import cpu

    _, compact, _ = pair
    _batches(compact, "uniform")
    before = {k: len(f.signatures) for k, f in (("slots", cpu._sample_slots), ("batch", cpu._sample_batch))}
    _batches(compact, "uniform", seed=9)
    _batches(compact, "uniform", seed=10)
    after = {k: len(f.signatures) for k, f in (("slots", cpu._sample_slots), ("batch", cpu._sample_batch))}
    assert before == after and before["slots"] >= 1


def test_version_1_datasets_open_and_unknown_versions_are_refused(pair, tmp_path):
    import shutil

    _, _, wide = pair
    old = tmp_path / "v1"
    shutil.copytree(wide.path, old)
    meta = json.loads((old / "meta.json").read_text())
    meta["format_version"] = 1
    meta.pop("storage")
    for c in meta["edge_columns"]:
        del c["offset"], c["max_rel_error"]
    (old / "meta.json").write_text(json.dumps(meta))
    ds = open_dataset(old, verify=True)
    _same(_batches(ds, "uniform")[0], _batches(wide, "uniform")[0])
    meta["format_version"] = 3
    (old / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(FormatError, match="version 3 is not supported.*re-partition"):
        open_dataset(old)


def test_float32_columns_bad_names_and_ranges(tmp_path):
    raw, src, dst, attrs = _edges(e=200)
    with pytest.raises(ConfigError, match="'fee', which is not an edge column"):
        partition_arrays(src, dst, tmp_path / "a", 1, edge_attrs=attrs, node_ids=raw, float32_columns=("fee",))
    attrs["amount"][7] = 1e300
    with pytest.raises(ConfigError, match="beyond float32's range"):
        partition_arrays(src, dst, tmp_path / "b", 1, edge_attrs=attrs, node_ids=raw, float32_columns=("amount",))
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
    # an integer column named there stays lossless
    ds = _write(tmp_path / "c", raw, src, dst, _edges(e=200)[3], float32_columns=("time",))
    assert ds.meta.edge_column("time").dtype == "int64" and ds.meta.edge_column("time").offset is not None


def test_cli_float32_columns_and_summary(tmp_path, capsys):
    import pyarrow as pa
    import pyarrow.parquet as pq

    raw, src, dst, attrs = _edges(e=500)
    pq.write_table(pa.table({"s": src, "d": dst, "t": attrs["time"], "amt": attrs["amount"]}), tmp_path / "e.parquet")
    code = main(["partition", str(tmp_path / "e.parquet"), "--out", str(tmp_path / "ds"), "-p", "2", "--src", "s",
                 "--dst", "d", "--time", "t", "--edge-columns", "amt", "--float32-columns", "amt", "--no-progress"])
    out = capsys.readouterr().out
    assert code == 0 and "of them edge arrays" in out
    ds = open_dataset(tmp_path / "ds")
    assert ds.meta.edge_column("amt").dtype == "float32" and ds.graph(0).edge_attrs["amt"].dtype == np.float32


@settings(max_examples=300, deadline=None)
@given(values=st.lists(st.integers(-(2**62), 2**62), min_size=1, max_size=20),
       width=st.integers(0, 2**31 - 2),
       bounds=st.lists(st.one_of(st.integers(I64.min, I64.max), st.integers(-(2**62), 2**62)), min_size=1, max_size=20),
       strict=st.booleans())
def test_stored_bounds_keep_every_comparison(values, width, bounds, strict):
    """For values in ``[base, base + width]`` (a column stored as offsets) and any int64 bound,
    comparing in the stored domain answers as comparing the values."""
    base = values[0]
    v = np.clip(np.asarray(values, dtype=np.int64), base, base + width)
    b = np.asarray(bounds + [int(x) for x in v[:3]], dtype=np.int64)  # bounds equal to values too
    stored = (v - base).astype(np.int32)
    sb = columns.stored_bounds(b, base)
    want = v[:, None] < b[None, :] if strict else v[:, None] <= b[None, :]
    got = stored[:, None] < sb[None, :] if strict else stored[:, None] <= sb[None, :]
    assert np.array_equal(want, got)
    from graphtrain.kernels.hop_graph import stored_bounds_nb

    assert np.array_equal(stored_bounds_nb(b, np.int64(base), True), sb)


def test_the_kernels_bound_past_the_range_is_the_columns():
    from graphtrain.kernels.hop_graph import STORED_ABOVE

    assert STORED_ABOVE == columns.OFFSET_RANGE_LIMIT + 1 == np.iinfo(np.int32).max


def test_offset_column_reads_like_an_int64_array():
    col = columns.OffsetColumn(np.array([0, 5, 2], dtype=np.int32), 10**12)
    assert col[1] == 10**12 + 5 and col[[2, 0]].tolist() == [10**12 + 2, 10**12]
    assert np.array_equal(np.asarray(col), [10**12, 10**12 + 5, 10**12 + 2])
    assert int(np.max(col)) == 10**12 + 5 and int(col.min()) == 10**12 and len(col) == 3
    assert np.array_equal(col // 10**12, [1, 1, 1]) and col.astype(np.float64).dtype == np.float64
    assert col.nbytes == 12 and col.dtype == np.int64


def test_non_finite_floats_neither_count_as_error_nor_as_range():
    """NaN and infinities are float32 values too: they are stored as they are, and neither make the
    recorded error NaN nor a column 'beyond float32's range'."""
    from graphtrain.partition.compact import ColumnRanges, plan_encoding

    v = np.array([1.1, np.nan, np.inf, -np.inf, 0.0, -3.3])
    assert columns.float32_error(v) == pytest.approx(abs(float(np.float32(1.1)) - 1.1) / 1.1)
    ranges = ColumnRanges()
    ranges.add("amount", v)
    assert ranges.ranges["amount"] == (-3.3, 1.1)
    enc = plan_encoding({"amount": np.dtype(np.float64)}, ranges, ("amount",), 10, 100)
    assert enc.stored["amount"] == np.float32
    assert np.array_equal(enc.encode("amount", v), v.astype(np.float32), equal_nan=True)


@pytest.mark.parametrize("backend", ["cpu", "reference"])
def test_weighted_sampling_reads_a_float32_column_as_its_float64_copy(pair, backend):
    """A float32 weight column is read as stored (no float64 copy); the draws are those of the same
    values stored as float64 (the wide dataset holds the amounts rounded to float32)."""
    _, compact, wide = pair
    assert compact.graph(0).edge_attrs["amount"].dtype == np.float32 and wide.graph(0).edge_attrs["amount"].dtype == np.float64
    for replace in (False, True):
        a = _batches(compact, None, backend, weight="amount", replace=replace)
        b = _batches(wide, None, backend, weight="amount", replace=replace)
        assert sum(x.e_id.size for x in a) > 300
        for x, y in zip(a, b):
            _same(x, y)
