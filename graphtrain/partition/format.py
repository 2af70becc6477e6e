"""The on-disk dataset format: one JSON metadata file plus memory-mappable ``.npy`` arrays.

This module is the only place that knows file names, dtypes and the metadata schema. Layout of a
dataset directory written by ``graphtrain partition`` (``P`` partitions, ``n_p`` nodes and ``e_p``
edges in partition ``p``, ``N`` nodes and ``E`` edges in all)::

    DIR/
    ├── meta.json                  format_version, counts, node/edge boundaries (the range book),
    │                              column schema, partition statistics, sha256 of every array
    ├── part-0000/
    │   ├── indptr.npy             int32*  [n_p + 1]  CSC offsets by local destination
    │   ├── src.npy                int32*  [e_p]      global source ID of each in-edge
    │   ├── edge_time.npy          int32** [e_p]      edge time (with --time); sorted within each
    │   │                                             destination's in-edges
    │   ├── edge_weight.npy        float64 [e_p]      edge weight (with --weight; float32 if listed
    │   │                                             in --float32-columns)
    │   ├── edge_<name>.npy        [e_p]              other edge columns (int32**, int64, float64,
    │   │                                             or float32 if listed in --float32-columns)
    │   ├── node_feat.npy          float32 [n_p, F]   node features (with a node table)
    │   ├── node_label.npy         int64   [n_p]      class label, -1 where unknown
    │   ├── node_split.npy         int8    [n_p]      0 train, 1 val, 2 test, -1 none
    │   ├── node_time.npy          int64   [n_p]      node time (with --node-time): when the node is
    │   │                                             scored (temporal training's seed time); int64
    │   │                                             max for nodes missing from the node table
    │   ├── raw_id.npy             int64   [n_p]      raw ID of each local node   (int IDs)
    │   ├── raw_id_offsets.npy     int64   [n_p + 1]  raw IDs as UTF-8 strings:   (string IDs)
    │   └── raw_id_bytes.npy       uint8   [...]      bytes[offsets[i]:offsets[i+1]]
    ├── part-0001/ ...
    ├── idmap/                     raw -> global lookup, sorted by hash(raw ID)
    │   ├── hash.npy               uint64  [N]  hash of each raw ID, ascending (ties by raw ID)
    │   ├── global_id.npy          int64   [N]  global ID of the raw ID in the same row
    │   ├── raw.npy                int64   [N]  the raw ID in the same row          (int IDs)
    │   ├── raw_offsets.npy        int64   [N + 1]                                 (string IDs)
    │   └── raw_bytes.npy          uint8   [...]
    └── .verified.json             (optional) stat and sha256 of each array at its last full
                                   verification (STAMP_FILE, graphtrain.partition.integrity)

Compact storage (format version 2, :mod:`graphtrain.columns`): ``*`` index arrays are int32 when
every value fits (``indptr`` when the largest partition has fewer than 2**31 - 1 edges, ``src``
when the graph has fewer than 2**31 - 1 nodes), else int64, the same for every partition. ``**``
integer edge columns are int32 offsets from the column's minimum (``EdgeColumn.offset``) when
``max - min`` fits, else int64 as given; :meth:`Dataset.graph` returns them as
:class:`~graphtrain.columns.OffsetColumn`, which reads back the int64 values. A float64 column
stored as float32 records its largest relative error in ``EdgeColumn.max_rel_error``.
``meta.json`` records ``storage``: bytes per edge of the edge arrays and of the whole dataset.
Version 1 datasets (every index and integer column int64, no ``offset``) still open: version 2
only adds fields and narrower dtypes, which the readers take as they find them.

Global node IDs of partition ``p`` are ``[node_bounds[p], node_bounds[p+1])``; its edges (the
in-edges of its nodes) have global edge IDs ``[edge_bounds[p], edge_bounds[p+1])`` in CSC order.
The global -> raw direction is the per-partition ``raw_id*`` arrays (local ID = global - start), so
a worker maps its own nodes back without touching anyone else's data.

Checksums are sha256 of each array's data bytes (the ``.npy`` header excluded; its dtype and shape
are checked against ``meta.json`` instead). Opening checks every array's header and file size;
:meth:`Dataset.verify` checks the checksums and records a ``.verified.json`` stamp so unchanged
files are not hashed again (:mod:`graphtrain.partition.integrity`).
Writers build the whole directory under a temporary sibling and rename it into place at the end
(:func:`graphtrain.io.staged_directory`), so a failed run never leaves a half-written dataset -- nor the temporary
directory, even when the process is ended where no Python cleanup runs (a watcher process removes it).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple, Union

import numpy as np

from graphtrain._version import __version__
from graphtrain.columns import OffsetColumn
from graphtrain.errors import FormatError
from graphtrain.graph import TIME, CSCGraph
from graphtrain.io import DATASET_MARKER, write_text_atomic
from graphtrain.partition.book import RangePartitionBook
from graphtrain.partition.integrity import STAMP_FILE, VerifyReport, check_array_file, verify_arrays
from graphtrain.partition.view import PartitionedGraph
from graphtrain.split import SPLIT_CODES  # noqa: F401 -- node_split.npy holds these codes

FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)  # version 1: all indices and integer columns int64 (read as they are)
META_FILE = DATASET_MARKER
IDMAP_DIR = "idmap"

# array file names (without .npy)
INDPTR = "indptr"
SRC = "src"
NODE_FEAT = "node_feat"
NODE_LABEL = "node_label"
NODE_SPLIT = "node_split"
NODE_TIME = "node_time"
RAW_ID = "raw_id"
RAW_ID_OFFSETS = "raw_id_offsets"
RAW_ID_BYTES = "raw_id_bytes"
IDMAP_HASH = "hash"
IDMAP_GLOBAL = "global_id"
IDMAP_RAW = "raw"
IDMAP_RAW_OFFSETS = "raw_offsets"
IDMAP_RAW_BYTES = "raw_bytes"

ID_TYPES = ("int64", "string")


def part_dir_name(part: int) -> str:
    return f"part-{part:04d}"


def edge_file(column: str) -> str:
    """Array name of an edge column stored under its graphtrain name (``time``, ``weight``, ...)."""
    return f"edge_{column}"


# -- metadata ---------------------------------------------------------------------------------------
@dataclass
class EdgeColumn:
    """One stored edge column.

    Attributes:
        name: graphtrain name, the file is ``edge_<name>.npy`` (``time`` and ``weight`` are roles).
        dtype: the values' dtype as readers see them: ``"int64"``, ``"float64"``, ``"float32"``
            (a float64 input column stored as float32) or ``"int8"`` (``reverse``, see
            ``PartitionOptions.add_reverse``).
        source: the column's name in the user's input (written back by ``export``).
        unit: for time columns read from a timestamp type, e.g. ``"s"``; else ``None``.
        offset: for an int64 column stored as int32 offsets, the base: value = stored + offset
            (lossless); None when stored as given.
        max_rel_error: for a float64 input column stored as float32, the largest
            ``|stored - input| / |input|`` over its values; None when stored as given.
    """

    name: str
    dtype: str
    source: str
    unit: Optional[str] = None
    offset: Optional[int] = None
    max_rel_error: Optional[float] = None


@dataclass
class NodeSchema:
    """What node data a dataset holds (all optional).

    Attributes:
        feature_names: source column names of the ``F`` feature columns (``node_feat.npy``).
        label: source column name of the label, if any; labels are int64 class IDs, -1 = unknown.
        num_classes: number of label classes (max label + 1).
        split: source column name of the train/val/test split, if any.
        label_values: if the input labels were strings, ``label_values[k]`` is class ``k``'s value.
        time: source column name of the node time (``node_time.npy``), if any.
        time_unit: its unit, as :attr:`EdgeColumn.unit` (``"s"``, ``"D"``, ... or None for integers).
    """

    feature_names: List[str] = field(default_factory=list)
    label: Optional[str] = None
    num_classes: Optional[int] = None
    split: Optional[str] = None
    label_values: Optional[List[str]] = None
    time: Optional[str] = None
    time_unit: Optional[str] = None


@dataclass
class FileRecord:
    """Integrity record of one array: dtype, shape and sha256 of its data bytes."""

    dtype: str
    shape: List[int]
    sha256: str


@dataclass
class DatasetMeta:
    """Everything in ``meta.json``. ``node_bounds``/``edge_bounds`` are the range partition book."""

    num_parts: int
    num_nodes: int
    num_edges: int
    node_bounds: List[int]
    edge_bounds: List[int]
    id_type: str
    edge_columns: List[EdgeColumn] = field(default_factory=list)
    node_schema: NodeSchema = field(default_factory=NodeSchema)
    time_sorted: bool = False
    id_columns: Dict[str, str] = field(default_factory=dict)  # {"src": input name, "dst": ..., "node_id": ...}
    partition_stats: Dict[str, object] = field(default_factory=dict)  # method, edge_cut, balance, seed
    ingest_stats: Dict[str, object] = field(default_factory=dict)  # inputs, rows, self loops, duplicates
    idmap: Dict[str, object] = field(default_factory=dict)  # {"hash": scheme name}
    storage: Dict[str, object] = field(default_factory=dict)  # edge_bytes, edge_bytes_per_edge, dataset_bytes_per_edge (no meta.json)
    files: Dict[str, FileRecord] = field(default_factory=dict)  # relative path -> record
    format_version: int = FORMAT_VERSION
    created_by: str = f"graphtrain {__version__}"

    @property
    def book(self) -> RangePartitionBook:
        return RangePartitionBook(self.node_bounds, self.edge_bounds)

    @property
    def edge_cut(self) -> Optional[int]:
        cut = self.partition_stats.get("edge_cut")
        return None if cut is None else int(cut)

    def edge_column(self, name: str) -> Optional[EdgeColumn]:
        return next((c for c in self.edge_columns if c.name == name), None)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=False) + "\n"

    @classmethod
    def from_json(cls, text: str, path: str = META_FILE) -> "DatasetMeta":
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as exc:
            raise FormatError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
        if not isinstance(raw, dict) or "format_version" not in raw:
            raise FormatError(f"{path}: no format_version; not a graphtrain dataset")
        version = raw["format_version"]
        if version not in READABLE_VERSIONS:
            raise FormatError(
                f"{path}: dataset format version {version} is not supported by graphtrain {__version__} "
                f"(it reads versions {', '.join(map(str, READABLE_VERSIONS))}); re-partition the input with "
                f"this version: graphtrain partition EDGES OUT ..."
            )
        try:
            raw["edge_columns"] = [EdgeColumn(**c) for c in raw.get("edge_columns", [])]
            raw["node_schema"] = NodeSchema(**raw.get("node_schema", {}))
            raw["files"] = {k: FileRecord(**v) for k, v in raw.get("files", {}).items()}
            meta = cls(**raw)
        except TypeError as exc:
            raise FormatError(f"{path}: unexpected metadata layout ({exc})") from None
        if meta.id_type not in ID_TYPES:
            raise FormatError(f"{path}: id_type must be one of {ID_TYPES}, got {meta.id_type!r}")
        book = meta.book  # validates the bounds
        if book.num_parts != meta.num_parts or book.num_nodes != meta.num_nodes or book.num_edges != meta.num_edges:
            raise FormatError(f"{path}: boundaries disagree with num_parts/num_nodes/num_edges")
        return meta


# -- writing ----------------------------------------------------------------------------------------
class NpyWriter:
    """Stream chunks into a ``.npy`` file, hashing the data bytes as they are written.

    Args:
        path: destination file.
        dtype: element dtype.
        shape: final shape; chunks are concatenated along axis 0. ``shape[0] = -1`` means the length
            is known only at :meth:`close`: the header is written with room for any length and
            rewritten in place (same size) at the end.
    """

    _HEADER_BYTES = 128  # fixed-size v1.0 header: room for 2-D shapes with 20-digit dimensions

    def __init__(self, path, dtype, shape: Tuple[int, ...]):
        self.path = Path(path)
        self.dtype = np.dtype(dtype)
        self.shape = tuple(int(s) for s in shape)
        self._open_length = self.shape[0] == -1
        self._rows_written = 0
        self._sha = hashlib.sha256()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(self.path, "wb")
        self._fh.write(self._header(self.shape if not self._open_length else (10**19,) + self.shape[1:]))

    def _header(self, shape) -> bytes:
        body = "{'descr': %r, 'fortran_order': False, 'shape': %r, }" % (np.lib.format.dtype_to_descr(self.dtype), tuple(shape))
        pad = self._HEADER_BYTES - 10 - len(body) - 1
        if pad < 0:
            raise ValueError(f"{self.path.name}: shape {shape} too large for the fixed .npy header")
        text = (body + " " * pad + "\n").encode("latin1")
        return b"\x93NUMPY\x01\x00" + len(text).to_bytes(2, "little") + text

    @property
    def rows_written(self) -> int:
        return self._rows_written

    def write(self, chunk) -> None:
        chunk = np.ascontiguousarray(chunk, dtype=self.dtype)
        if chunk.shape[1:] != self.shape[1:]:
            raise ValueError(f"{self.path.name}: chunk shape {chunk.shape} does not fit array shape {self.shape}")
        if not self._open_length and self._rows_written + chunk.shape[0] > self.shape[0]:
            raise ValueError(f"{self.path.name}: more than {self.shape[0]} rows written")
        if chunk.size:
            buf = memoryview(chunk).cast("B")
            self._sha.update(buf)
            self._fh.write(buf)
        self._rows_written += chunk.shape[0]

    def close(self) -> FileRecord:
        if self._open_length:
            self.shape = (self._rows_written,) + self.shape[1:]
            self._fh.seek(0)
            self._fh.write(self._header(self.shape))
        self._fh.close()
        if self._rows_written != self.shape[0]:
            raise ValueError(f"{self.path.name}: wrote {self._rows_written} of {self.shape[0]} rows")
        return FileRecord(dtype=self.dtype.str, shape=list(self.shape), sha256=self._sha.hexdigest())

    def abort(self) -> None:
        self._fh.close()


def write_array(path, array) -> FileRecord:
    """Write a whole array as ``.npy`` and return its record."""
    array = np.ascontiguousarray(array)
    writer = NpyWriter(path, array.dtype, array.shape)
    writer.write(array)
    return writer.close()


def edge_array_bytes(meta: DatasetMeta) -> int:
    """Data bytes of every partition's edge arrays (``indptr``, ``src``, ``edge_*``), from the records."""
    names = {INDPTR, SRC} | {edge_file(c.name) for c in meta.edge_columns}
    total = 0
    for rel, rec in meta.files.items():
        if Path(rel).stem in names and rel.startswith("part-"):
            total += int(np.prod(rec.shape, dtype=np.int64)) * np.dtype(rec.dtype).itemsize
    return total


def write_meta(directory, meta: DatasetMeta) -> None:
    """Write ``meta.json`` (last, so a directory with meta.json is complete)."""
    write_text_atomic(Path(directory) / META_FILE, meta.to_json())


# -- reading ----------------------------------------------------------------------------------------
@dataclass
class Partition:
    """One partition opened from disk: its graph and its nodes' data (arrays memory-mapped).

    Attributes:
        part: partition index.
        graph: in-edges of the partition's nodes (``node_start = node_bounds[part]``).
        features: float32 ``[n_p, F]`` or None.
        labels: int64 ``[n_p]`` (-1 = unknown) or None.
        split: int8 ``[n_p]`` (see ``SPLIT_CODES``; -1 = none) or None.
        time: int64 ``[n_p]`` node times or None.
    """

    part: int
    graph: CSCGraph
    features: Optional[np.ndarray] = None
    labels: Optional[np.ndarray] = None
    split: Optional[np.ndarray] = None
    time: Optional[np.ndarray] = None


class Dataset:
    """A partitioned dataset directory, opened read-only.

    Opening reads ``meta.json``, checks its version and that every listed array exists with the
    recorded dtype and shape and the size they imply (headers only). ``verify=True`` also checks
    every sha256 (:meth:`verify`).

    Raises:
        FormatError: missing directory or files, wrong version, shape/dtype/size mismatch, bad checksum.
    """

    def __init__(self, path, verify: bool = False):
        self.path = Path(path)
        meta_path = self.path / META_FILE
        if not self.path.is_dir():
            raise FormatError(f"{self.path}: no such dataset directory")
        if not meta_path.is_file():
            raise FormatError(f"{self.path}: no {META_FILE}; not a graphtrain dataset (or an unfinished one)")
        self.meta = DatasetMeta.from_json(meta_path.read_text(encoding="utf-8"), str(meta_path))
        self.book = self.meta.book
        for rel, rec in self.meta.files.items():
            check_array_file(self.path / rel, rec.dtype, rec.shape)
        if verify:
            self.verify()

    # -- integrity ------------------------------------------------------------------------------
    def verify(self, reuse_stamp: bool = False) -> VerifyReport:
        """Check every array's sha256 against ``meta.json`` and record the stamp (``STAMP_FILE``).

        Args:
            reuse_stamp: hash only the files whose size, mtime, ctime or inode changed since the
                last verification recorded in the stamp (default: hash everything).
        """
        return verify_arrays(self.path, self.meta.files, force=not reuse_stamp)

    def _load(self, rel: str, rec: Optional[FileRecord] = None) -> np.ndarray:
        rec = rec or self.meta.files.get(rel)
        if rec is None:
            raise FormatError(f"{self.path}: {rel} is not listed in {META_FILE}")
        path = self.path / rel
        check_array_file(path, rec.dtype, rec.shape)  # header and size; np.load trusts them from here
        try:
            arr = np.load(path, mmap_mode="r", allow_pickle=False)
        except (ValueError, OSError) as exc:
            raise FormatError(f"{path}: unreadable array ({exc})") from None
        if arr.size == 0:  # np.load cannot memory-map empty arrays portably; return a plain one
            arr = np.empty(arr.shape, dtype=arr.dtype)
        return arr

    def _part_array(self, part: int, name: str) -> Optional[np.ndarray]:
        rel = f"{part_dir_name(part)}/{name}.npy"
        return self._load(rel) if rel in self.meta.files else None

    # -- access ---------------------------------------------------------------------------------
    @property
    def num_parts(self) -> int:
        return self.meta.num_parts

    def graph(self, part: Optional[int] = None) -> Union[CSCGraph, PartitionedGraph]:
        """Memory-mapped in-edges of partition ``part``; without ``part``, of every node: a
        :class:`~graphtrain.partition.view.PartitionedGraph` view over all partitions (no copy)."""
        if part is None:
            return PartitionedGraph(tuple(self.graph(p) for p in range(self.num_parts)), self.book)
        self.book.node_range(part)  # range check
        attrs = {c.name: self._edge_column(part, c) for c in self.meta.edge_columns}
        return CSCGraph(
            indptr=self._part_array(part, INDPTR),
            src=self._part_array(part, SRC),
            node_start=int(self.book.node_bounds[part]),
            edge_start=int(self.book.edge_bounds[part]),
            num_global_nodes=self.meta.num_nodes,
            edge_attrs=attrs,
            time_sorted=self.meta.time_sorted and TIME in attrs,
        )

    def _edge_column(self, part: int, column: EdgeColumn):
        """One partition's edge column as readers see it (offset columns read back their values)."""
        stored = self._part_array(part, edge_file(column.name))
        return stored if column.offset is None else OffsetColumn(stored, column.offset)

    def partition(self, part: int) -> Partition:
        """Graph plus node features, labels and split of partition ``part`` (memory-mapped)."""
        return Partition(
            part=part,
            graph=self.graph(part),
            features=self._part_array(part, NODE_FEAT),
            labels=self._part_array(part, NODE_LABEL),
            split=self._part_array(part, NODE_SPLIT),
            time=self._part_array(part, NODE_TIME),
        )

    def raw_ids(self, part: int):
        """Raw IDs of partition ``part``'s nodes in local order: int64 array, or a pyarrow string array."""
        if self.meta.id_type == "int64":
            return self._part_array(part, RAW_ID)
        import pyarrow as pa

        offsets = np.asarray(self._part_array(part, RAW_ID_OFFSETS))
        data = np.asarray(self._part_array(part, RAW_ID_BYTES))
        return pa.LargeStringArray.from_buffers(len(offsets) - 1, pa.py_buffer(offsets), pa.py_buffer(data))

    def idmap_array(self, name: str) -> np.ndarray:
        """One array of the raw -> global map (``hash``, ``global_id``, ``raw``, ``raw_offsets``, ``raw_bytes``)."""
        return self._load(f"{IDMAP_DIR}/{name}.npy")


def open_dataset(path, verify: bool = False) -> Dataset:
    """Open a dataset directory written by ``graphtrain partition`` (see the module docstring)."""
    return Dataset(path, verify=verify)
