"""The raw <-> global node-ID map: built out of core at ingest, looked up in batches afterwards.

Building (:class:`IdMapBuilder`) -- no hash table of all raw IDs is ever held in memory:

1. Each ingest chunk's IDs are hashed (int IDs: ``mix64``, a bijection; strings: FNV-1a + mix64)
   and de-duplicated within the chunk, grouped by the top bits of the hash (the *bucket*). Each
   chunk appends its distinct keys to one spill stream per bucket and keeps, per ID occurrence, the
   index of its distinct key (``inverse``). Disk is the binding limit of a large run, and these
   streams are most of the spill, so a key costs as few bytes as it can (:data:`KEY_SPILL_DTYPES`):
   positions, lengths and degrees within a chunk are int32 (a chunk holds fewer than 2**31 IDs),
   and a string key spills its bytes but not its hash, which is recomputed from them.
2. :meth:`IdMapBuilder.finish` takes one bucket at a time, de-duplicates its keys across chunks and
   sorts them by (hash, bytes). The node's **dense rank** (``rid``) is its position in that global
   hash order, so bucket ``b`` owns a contiguous rid range and the sorted keys, written bucket after
   bucket, are the lookup table in ``idmap/`` as is. The rid of every spilled key goes back to a
   per-bucket stream, from which :meth:`IdMapBuilder.chunk_rids` rebuilds a chunk's rids.

Peak memory is one chunk or one bucket, set by the number of buckets (see the partitioner).

Lookup (:class:`IdMap`): ``to_global(raw)`` hashes the raw IDs and binary-searches the sorted
``idmap/hash.npy`` (memory-mapped), confirming string bytes on a hash match; ``to_raw(global)``
reads each owning partition's ``raw_id`` arrays through the range book. Both work in batches of any
size and never load the whole map.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np
import pyarrow as pa
from numba import njit

from graphtrain.errors import ConfigError, InputError
from graphtrain.kernels.rng import hash_int_ids, hash_strings
from graphtrain.partition import format as fmt
from graphtrain.partition._kernels import count_roles, dedupe, dedupe_grouped, group_order, group_shift, groups_for, unmix64_np
from graphtrain.partition.ingest import IdArray, StringIds, string_ids_from_arrow
from graphtrain.partition.spill import SpillDir

HASH_SCHEME = "splitmix64-v1"  # int IDs: mix64(id); string IDs: mix64(FNV-1a(bytes) ^ length)
_EMPTY_OFFSETS = np.zeros(1, dtype=np.int64)
_EMPTY_BYTES = np.zeros(0, dtype=np.uint8)
# dtype of each per-bucket (per-chunk for "order") spill stream of a distinct key of one chunk; "h"
# (the hash) only for int IDs, "len" and "bytes" only for strings, "row" only for node keys, "din"
# and "dout" (occurrences as destination and as source in the chunk) only for edge keys
KEY_SPILL_DTYPES = {"order": np.int32, "h": np.uint64, "len": np.int32, "bytes": np.uint8, "row": np.int64,
                    "din": np.int32, "dout": np.int32}
MAX_CHUNK_IDS = 2**31 - 1  # chunk-local positions, lengths and counts fit int32
INT32_RID_KEYS = 2**31 - 1  # rids (< the keys spilled over all chunks) are spilled as int32 up to this many keys


def hash_ids(ids: IdArray) -> np.ndarray:
    """uint64 hash of each ID (int64 array or :class:`StringIds`)."""
    if isinstance(ids, StringIds):
        return hash_strings(ids.offsets, ids.data)
    return hash_int_ids(ids)


def _buffers(ids: IdArray):
    if isinstance(ids, StringIds):
        return ids.offsets, ids.data, True
    return _EMPTY_OFFSETS, _EMPTY_BYTES, False


@dataclass
class MissingNode:
    """A raw ID used by an edge but absent from the node table."""

    raw: object


class DuplicateNodeError(Exception):
    """Internal: two node-table rows with the same ID (``rows`` are global node-row indices)."""

    def __init__(self, raw, rows):
        self.raw = raw
        self.rows = rows


class IdMapBuilder:
    """Assigns dense ranks (rids) to the distinct raw IDs of a stream of chunks, out of core.

    Args:
        spill: scratch streams.
        id_type: ``"int64"`` or ``"string"``.
        num_buckets: power of two; each bucket must fit in memory at :meth:`finish`.

    Chunks of two kinds are added: ``"edge"`` (edge endpoints) and ``"node"`` (node-table IDs,
    whose distinct keys also carry their node-table row for duplicate reports).
    """

    KINDS = ("edge", "node")

    def __init__(self, spill: SpillDir, id_type: str, num_buckets: int):
        if id_type not in fmt.ID_TYPES:
            raise ConfigError(f"id type must be one of {fmt.ID_TYPES}, got {id_type!r}")
        self.spill = spill
        self.id_type = id_type
        self.num_buckets = int(num_buckets)
        self.shift = group_shift(self.num_buckets)
        self._counts = {k: [] for k in self.KINDS}  # per chunk: int64 [num_buckets] distinct keys per bucket
        self._rid_dtype = np.dtype(np.int64)  # of the per-bucket rid streams: int32 when every spilled key fits (finish)
        self._seg_start = {}  # kind -> int64 [num_chunks, num_buckets] offsets into the rid streams
        self.num_nodes: Optional[int] = None
        self.bucket_bounds: Optional[np.ndarray] = None  # rid range of each bucket, int64 [K + 1]
        self.in_degree: Optional[np.ndarray] = None  # int64 [N] by rid, after finish
        self.out_degree: Optional[np.ndarray] = None
        self.max_bucket_keys = 0

    def _stream(self, kind: str, what: str, bucket: int) -> str:
        return f"{kind}_{what}_{bucket:05d}"

    # -- stage 1: chunks ------------------------------------------------------------------------
    @staticmethod
    def distinct_keys(ids: IdArray) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Hash and de-duplicate one chunk's IDs: ``(h, first, inverse)``.

        Pure and thread-safe (the kernels release the GIL), so it can run in a read-ahead thread
        while the previous chunk is spilled; pass the result to :meth:`add_chunk` as ``keys``.
        """
        h = hash_ids(ids)
        offsets, data, is_string = _buffers(ids)
        first, inverse = dedupe(h, offsets, data, is_string)
        return h, first, inverse

    def add_chunk(self, kind: str, ids: IdArray, rows: Optional[np.ndarray] = None,
                  num_sources: Optional[int] = None,
                  keys: Optional[Tuple[np.ndarray, np.ndarray, np.ndarray]] = None) -> np.ndarray:
        """De-duplicate one chunk's IDs and spill its distinct keys by bucket.

        Args:
            kind: ``"edge"`` or ``"node"``.
            ids: the chunk's IDs (int64 array or :class:`StringIds`).
            rows: for node chunks, int64 global node-table row of each ID.
            num_sources: for edge chunks, ``ids`` are ``[sources..., destinations...]`` and this is
                the number of sources; occurrences are counted per node into ``out_degree`` and
                ``in_degree``.
            keys: :meth:`distinct_keys` of ``ids`` if already computed.

        Returns:
            ``inverse``: int64 ``[len(ids)]`` index of each ID's distinct key within the chunk
            (pass it with :meth:`chunk_rids` to get rids once :meth:`finish` has run).

        Raises:
            DuplicateNodeError: a node chunk repeats an ID.
        """
        if self.num_nodes is not None:
            raise RuntimeError("add_chunk after finish")
        if len(ids) > MAX_CHUNK_IDS:
            raise ValueError(f"a chunk holds at most {MAX_CHUNK_IDS} IDs, got {len(ids)}")
        h, first, inverse = keys if keys is not None else self.distinct_keys(ids)
        is_string = isinstance(ids, StringIds)
        if kind == "node" and first.shape[0] != h.shape[0]:
            dup = int(np.flatnonzero(first[inverse] != np.arange(h.shape[0]))[0])
            raw = ids.take(np.array([dup])).to_arrow()[0].as_py() if is_string else int(ids[dup])
            raise DuplicateNodeError(raw, [int(rows[first[inverse[dup]]]), int(rows[dup])])
        uh = h[first]
        ustarts, order = group_order(uh, self.shift, self.num_buckets)  # distinct keys by bucket
        counts = np.diff(ustarts)
        self._counts[kind].append(counts)
        self.spill.write(self._stream(kind, "order", len(self._counts[kind]) - 1), order.astype(KEY_SPILL_DTYPES["order"]))
        grouped = first[order]  # input position of each distinct key, in bucket order
        ustr = ids.take(grouped) if is_string else None
        degrees = {}
        if kind == "edge":
            out_deg, in_deg = count_roles(inverse, num_sources, first.shape[0])
            degrees = {what: d[order].astype(KEY_SPILL_DTYPES[what]) for what, d in (("dout", out_deg), ("din", in_deg))}
        ugh = None if is_string else uh[order]
        for b in np.flatnonzero(counts):
            lo, hi = ustarts[b], ustarts[b + 1]
            if is_string:
                part = StringIds(ustr.offsets[lo : hi + 1] - ustr.offsets[lo], ustr.data[ustr.offsets[lo] : ustr.offsets[hi]])
                self.spill.append(self._stream(kind, "len", b), np.diff(part.offsets).astype(KEY_SPILL_DTYPES["len"]))
                self.spill.append(self._stream(kind, "bytes", b), part.data)
            else:
                self.spill.append(self._stream(kind, "h", b), ugh[lo:hi])
            if kind == "node":
                self.spill.append(self._stream(kind, "row", b), rows[grouped[lo:hi]])
            for what, per_key in degrees.items():
                self.spill.append(self._stream(kind, what, b), per_key[lo:hi])
        return inverse

    # -- stage 2: buckets -----------------------------------------------------------------------
    def finish(self, require_node_table: bool, on_bucket: Optional[Callable[[int], None]] = None) -> List[MissingNode]:
        """Assign rids bucket by bucket; spill the sorted lookup table (``idmap_h`` and strings).

        Args:
            require_node_table: node chunks were given; every edge ID must be among them, else the
                missing ones are returned (and, if kept, become nodes like the others).
            on_bucket: progress callback, called with each finished bucket's index.

        Returns:
            Up to 5 examples of edge IDs missing from the node table (empty if none or no table);
            ``self.num_missing`` counts them all.

        Raises:
            DuplicateNodeError: the node table repeats an ID across chunks.
        """
        is_string = self.id_type == "string"
        self.num_missing = 0
        examples: List[MissingNode] = []
        bounds = np.zeros(self.num_buckets + 1, dtype=np.int64)
        rid_base = 0
        in_deg: List[np.ndarray] = []
        out_deg: List[np.ndarray] = []
        spilled = sum(int(np.sum(c)) for kind in self.KINDS for c in self._counts[kind])
        self._rid_dtype = np.dtype(np.int32 if spilled <= INT32_RID_KEYS else np.int64)
        for b in range(self.num_buckets):
            offsets, data = _EMPTY_OFFSETS, _EMPTY_BYTES
            if is_string:  # the hashes of string keys are not spilled: they come from the bytes
                node_lens, edge_lens = (self.spill.read(self._stream(k, "len", b), KEY_SPILL_DTYPES["len"]) for k in ("node", "edge"))
                offsets = np.zeros(node_lens.size + edge_lens.size + 1, dtype=np.int64)
                np.cumsum(np.concatenate([node_lens, edge_lens]), dtype=np.int64, out=offsets[1:])
                data = np.concatenate([self.spill.read(self._stream(k, "bytes", b), np.uint8) for k in ("node", "edge")])
                keys = hash_strings(offsets, data)
                n_node = node_lens.size
            else:
                nh = self.spill.read(self._stream("node", "h", b), np.uint64)
                eh = self.spill.read(self._stream("edge", "h", b), np.uint64)
                keys = np.concatenate([nh, eh]) if nh.size else eh
                n_node = nh.size
            self.max_bucket_keys = max(self.max_bucket_keys, int(keys.size))
            groups = groups_for(keys.shape[0])
            first, _, inverse = dedupe_grouped(keys, max(self.shift - (groups.bit_length() - 1), 0), groups,
                                               offsets, data, is_string, True)
            if n_node:
                node_inv = inverse[:n_node]
                if np.unique(node_inv).size != n_node:  # same ID in two node chunks
                    rows = self.spill.read(self._stream("node", "row", b), KEY_SPILL_DTYPES["row"])
                    seen = {}
                    for i, u in enumerate(node_inv.tolist()):
                        if u in seen:
                            raw = self._raw_of(keys, offsets, data, i)
                            raise DuplicateNodeError(raw, [int(rows[seen[u]]), int(rows[i])])
                        seen[u] = i
            if require_node_table:
                edge_only = np.flatnonzero(first >= n_node)  # distinct keys first seen in an edge entry
                self.num_missing += int(edge_only.size)
                for u in edge_only[: max(0, 5 - len(examples))]:
                    examples.append(MissingNode(self._raw_of(keys, offsets, data, int(first[u]))))
            for kind, lo, hi in (("node", 0, n_node), ("edge", n_node, keys.size)):
                if hi > lo:
                    self.spill.write(self._stream(kind, "rid", b), (inverse[lo:hi] + rid_base).astype(self._rid_dtype))
            for what, acc in (("din", in_deg), ("dout", out_deg)):
                per_entry = self.spill.read(self._stream("edge", what, b), KEY_SPILL_DTYPES[what])
                acc.append(np.bincount(inverse[n_node:], weights=per_entry, minlength=first.shape[0]).astype(np.int64))
            self.spill.append("idmap_h", keys[first])
            if is_string:
                sorted_ids = StringIds(offsets, data).take(first)
                self.spill.append("idmap_len", np.diff(sorted_ids.offsets))
                self.spill.append("idmap_bytes", sorted_ids.data)
            for kind in ("node", "edge"):
                for what in ("h", "len", "bytes", "row", "din", "dout"):
                    self.spill.remove(self._stream(kind, what, b))
            rid_base += first.shape[0]
            bounds[b + 1] = rid_base
            if on_bucket is not None:
                on_bucket(b)
        self.num_nodes = rid_base
        self.bucket_bounds = bounds
        self.in_degree = np.concatenate(in_deg) if in_deg else np.zeros(0, np.int64)
        self.out_degree = np.concatenate(out_deg) if out_deg else np.zeros(0, np.int64)
        for kind in self.KINDS:
            counts = np.array(self._counts[kind], dtype=np.int64).reshape(-1, self.num_buckets)
            seg = np.zeros_like(counts)
            if counts.shape[0]:
                seg[1:] = np.cumsum(counts, axis=0)[:-1]
            self._seg_start[kind] = seg
        return examples

    def _raw_of(self, keys, offsets, data, i):
        if self.id_type == "string":
            return bytes(data[offsets[i] : offsets[i + 1]]).decode("utf-8")
        return int(unmix64_np(keys[i : i + 1])[0])

    def chunk_rids(self, kind: str, chunk: int) -> np.ndarray:
        """rid of each distinct key of chunk ``chunk`` (index with that chunk's ``inverse``)."""
        counts = self._counts[kind][chunk]
        seg = self._seg_start[kind][chunk]
        parts = [
            self.spill.read(self._stream(kind, "rid", b), self._rid_dtype, int(seg[b]), int(counts[b]))
            for b in np.flatnonzero(counts)
        ]
        by_bucket = np.concatenate(parts) if parts else np.empty(0, dtype=self._rid_dtype)
        rids = np.empty(by_bucket.shape[0], dtype=np.int64)
        rids[self.spill.read(self._stream(kind, "order", chunk), KEY_SPILL_DTYPES["order"])] = by_bucket
        return rids

    def num_chunks(self, kind: str) -> int:
        return len(self._counts[kind])

    def sorted_hashes(self, start: int, stop: int) -> np.ndarray:
        """Hashes of rids ``[start, stop)`` (the lookup table's hash column)."""
        return self.spill.read("idmap_h", np.uint64, start, stop - start)

    def sorted_raw(self, start: int, stop: int) -> IdArray:
        """Raw IDs of rids ``[start, stop)``."""
        if self.id_type == "int64":
            return unmix64_np(self.sorted_hashes(start, stop))
        return self._string_range(start, stop)

    def _string_range(self, start: int, stop: int) -> StringIds:
        if not hasattr(self, "_str_offsets"):
            lens = self.spill.read("idmap_len", np.int64)
            self._str_offsets = np.zeros(lens.size + 1, dtype=np.int64)
            np.cumsum(lens, out=self._str_offsets[1:])
        o = self._str_offsets
        data = self.spill.read("idmap_bytes", np.uint8, int(o[start]), int(o[stop] - o[start]))
        return StringIds(o[start : stop + 1] - o[start], data)


# -- lookup ------------------------------------------------------------------------------------------
@njit(cache=True)
def _find_strings(sorted_h, raw_offsets, raw_bytes, qh, q_offsets, q_bytes, pos):
    """For each query, scan the run of equal hashes from ``pos`` for identical bytes; -1 if absent."""
    out = np.full(qh.shape[0], -1, dtype=np.int64)
    n = sorted_h.shape[0]
    for i in range(qh.shape[0]):
        j = pos[i]
        qlo, qhi = q_offsets[i], q_offsets[i + 1]
        while j < n and sorted_h[j] == qh[i]:
            lo, hi = raw_offsets[j], raw_offsets[j + 1]
            if hi - lo == qhi - qlo:
                same = True
                for k in range(hi - lo):
                    if raw_bytes[lo + k] != q_bytes[qlo + k]:
                        same = False
                        break
                if same:
                    out[i] = j
                    break
            j += 1
    return out


class IdMap:
    """Batched raw <-> global node-ID lookups over a dataset's on-disk map (never loaded whole)."""

    def __init__(self, dataset: "fmt.Dataset"):
        self.dataset = dataset
        self.id_type = dataset.meta.id_type
        self._hash = dataset.idmap_array(fmt.IDMAP_HASH)
        self._global = dataset.idmap_array(fmt.IDMAP_GLOBAL)

    def _as_ids(self, raw) -> IdArray:
        if self.id_type == "int64":
            arr = np.asarray(raw)
            if arr.dtype.kind not in "iu":
                raise ConfigError(f"this dataset has integer IDs; got values of dtype {arr.dtype}")
            return arr.astype(np.int64, copy=False)
        if isinstance(raw, StringIds):
            return raw
        arr = raw if isinstance(raw, (pa.Array, pa.ChunkedArray)) else pa.array(list(raw), type=pa.large_string())
        if arr.null_count:
            raise ConfigError("raw IDs must not be null")
        return string_ids_from_arrow(arr)

    def to_global(self, raw, missing: str = "error") -> np.ndarray:
        """Global node ID of each raw ID.

        Args:
            raw: int IDs (array-like) or string IDs (list, pyarrow array or :class:`StringIds`).
            missing: ``"error"`` raises for an unknown ID; ``"ignore"`` returns -1 for it.

        Returns:
            int64 ``[n]`` global IDs.
        """
        if missing not in ("error", "ignore"):
            raise ConfigError(f"missing must be 'error' or 'ignore', got {missing!r}")
        ids = self._as_ids(raw)
        qh = hash_ids(ids)
        pos = np.searchsorted(self._hash, qh)
        if self.id_type == "int64":
            safe = np.minimum(pos, max(self._hash.shape[0] - 1, 0))
            found = (pos < self._hash.shape[0]) & (np.asarray(self._hash[safe]) == qh) if self._hash.shape[0] else np.zeros(qh.shape, bool)
            row = np.where(found, safe, -1)
        else:
            row = _find_strings(
                self._hash, self.dataset.idmap_array(fmt.IDMAP_RAW_OFFSETS), self.dataset.idmap_array(fmt.IDMAP_RAW_BYTES),
                qh, ids.offsets, ids.data, pos.astype(np.int64),
            )
        out = np.full(row.shape[0], -1, dtype=np.int64)
        ok = row >= 0
        out[ok] = self._global[row[ok]]
        if missing == "error" and not ok.all():
            bad = int(np.flatnonzero(~ok)[0])
            value = ids.take(np.array([bad])).to_arrow()[0].as_py() if isinstance(ids, StringIds) else int(ids[bad])
            raise ConfigError(f"raw ID {value!r} is not in the dataset ({int((~ok).sum())} of {ok.size} IDs unknown)")
        return out

    def to_raw(self, global_ids):
        """Raw ID of each global node ID: int64 array, or a pyarrow large_string array."""
        g = np.asarray(global_ids)
        part, local = self.dataset.book.node_to_local(g)
        if self.id_type == "int64":
            out = np.empty(g.shape[0], dtype=np.int64)
            for p in np.unique(part):
                sel = part == p
                out[sel] = np.asarray(self.dataset.raw_ids(int(p)))[local[sel]]
            return out
        pieces = []
        order = []
        for p in np.unique(part):
            sel = np.flatnonzero(part == p)
            pieces.append(self.dataset.raw_ids(int(p)).take(pa.array(local[sel])))
            order.append(sel)
        if not pieces:
            return pa.array([], type=pa.large_string())
        merged = pa.concat_arrays(pieces)
        inv = np.empty(g.shape[0], dtype=np.int64)
        inv[np.concatenate(order)] = np.arange(g.shape[0])
        return merged.take(pa.array(inv))
