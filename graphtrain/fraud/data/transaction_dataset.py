"""The fraud pipeline's graph: a partitioned dataset of transactions and accounts, on disk.

Every stage of ``detect-rings`` reads this, memory-mapped: training and scoring (the engine), the
tree baseline (:mod:`graphtrain.fraud.data.account_aggregates`), ring finding
(:mod:`graphtrain.fraud.data.touching_subgraph`) and the report. It is built by streaming the user's
files through the partitioner (:func:`partition_transaction_files`; bounded memory, whatever their
size) or, for a graph already in memory (tests, the Python API's ``run_stages``), from arrays
(:func:`partition_transaction_graph`).

Layout (a ``graphtrain partition`` dataset):

- accounts are the nodes (raw IDs in the on-disk ID map; global IDs ``0 .. N-1`` by partition);
  their labels (1 fraud, 0 not, -1 unknown), an optional split, and features;
- a directed transaction list is stored in both directions (``--add-reverse``: ``reverse`` 0 is
  the payee's in-edge from its payer, 1 the payer's in-edge from its payee), so a sampled
  neighbourhood holds payers and payees; an undirected one (``--undirected``: each edge given both
  ways) is stored as given;
- the amount and time are edge columns (:attr:`TransactionDataset.amount` / ``time`` name them).

Per-account arrays the stages pass around (scores, labels, split) are NumPy arrays indexed by
global ID, ``8 N`` bytes each at most; nothing per account or per transaction is a Python object.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, List, Optional, Sequence

import numpy as np

from graphtrain.errors import ConfigError
from graphtrain.graph import REVERSE, TIME

AMOUNT = "amount"  # the stored name of the amount (or edge weight) column
# Amounts are stored as float32 (half the bytes; relative error <= 6e-8, recorded in meta.json): their
# uses -- log-scaled features, sums and means accumulated in float64 -- need no more precision.
FLOAT32_COLUMNS = (AMOUNT,)


@dataclass
class TransactionDataset:
    """An opened fraud-pipeline dataset.

    Attributes:
        path: the dataset directory.
        dataset: :class:`graphtrain.partition.format.Dataset`.
        amount, time: stored edge column names of the amount and time, or None.
        directed: transactions stored in both directions with ``reverse`` (False: undirected input).
        own_feature_names: the account table's feature columns (the first ``len`` node features).
        num_transactions: input rows of the transaction list.
    """

    path: Path
    dataset: "object"
    amount: Optional[str]
    time: Optional[str]
    directed: bool
    own_feature_names: List[str] = field(default_factory=list)
    num_transactions: int = 0

    @classmethod
    def open(cls, path, own_feature_names: Optional[Sequence[str]] = None) -> "TransactionDataset":
        from graphtrain.partition import open_dataset

        ds = open_dataset(path)
        stored = {c.name for c in ds.meta.edge_columns}
        directed = REVERSE in stored
        rows = int(ds.meta.ingest_stats.get("input_rows") or (ds.meta.num_edges // (2 if directed else 1)))
        names = list(own_feature_names) if own_feature_names is not None else list(ds.meta.node_schema.feature_names)
        return cls(Path(path), ds, AMOUNT if AMOUNT in stored else None, TIME if TIME in stored else None,
                   directed, names, rows)

    @property
    def num_accounts(self) -> int:
        return int(self.dataset.meta.num_nodes)

    @property
    def num_parts(self) -> int:
        return int(self.dataset.num_parts)

    def node_range(self, part: int):
        return self.dataset.book.node_range(part)

    def _concat(self, what: str, default) -> Optional[np.ndarray]:
        arrays = [getattr(self.dataset.partition(p), what) for p in range(self.num_parts)]
        if any(a is None for a in arrays):
            return default
        return np.concatenate([np.asarray(a) for a in arrays])

    def labels(self) -> np.ndarray:
        """int64 ``[N]`` by global ID: 1 fraud, 0 not, -1 unknown."""
        return self._concat("labels", np.full(self.num_accounts, -1, dtype=np.int64)).astype(np.int64, copy=False)

    def given_split(self) -> Optional[np.ndarray]:
        """int8 ``[N]`` split codes of the account table's split column, or None."""
        if self.dataset.meta.node_schema.split is None:
            return None
        split = self._concat("split", None)
        return None if split is None else split.astype(np.int8, copy=False)

    def raw_ids(self, global_ids: np.ndarray) -> np.ndarray:
        """Raw account IDs of ascending or arbitrary ``global_ids``: int64, or an object array of str."""
        from graphtrain.partition.idmap import IdMap

        raw = IdMap(self.dataset).to_raw(np.asarray(global_ids, dtype=np.int64))
        return raw if isinstance(raw, np.ndarray) else np.asarray(raw.to_pylist(), dtype=object)

    def to_global(self, raw, missing: str = "ignore") -> np.ndarray:
        """Global ID of each raw account ID (-1 for unknown ones with ``missing="ignore"``)."""
        from graphtrain.partition.idmap import IdMap

        raw = np.asarray(raw)
        if self.dataset.meta.id_type == "int64":
            if raw.dtype.kind not in "iu":
                try:
                    raw = raw.astype(np.int64)
                except (TypeError, ValueError):
                    return np.full(raw.shape[0], -1, dtype=np.int64)
        else:
            raw = [str(v) for v in raw]
        return IdMap(self.dataset).to_global(raw, missing=missing)

    def write_node_arrays(self, *, split: Optional[np.ndarray] = None, split_name: str = "split",
                          features: Optional[Callable[[int, int], np.ndarray]] = None,
                          feature_names: Optional[Sequence[str]] = None) -> None:
        """Replace the node split and/or features of every partition (the dataset is being built: staged).

        Args:
            split: int8 ``[N]`` split codes by global ID.
            features: ``(start, stop) -> float32 [stop - start, F]`` rows of global IDs ``start .. stop-1``.
            feature_names: the ``F`` names.
        """
        from graphtrain.partition import format as fmt
        from graphtrain.partition.integrity import STAMP_FILE

        meta = self.dataset.meta
        for p in range(self.num_parts):
            lo, hi = self.node_range(p)
            part_dir = self.path / fmt.part_dir_name(p)
            if split is not None:
                rel = f"{fmt.part_dir_name(p)}/{fmt.NODE_SPLIT}.npy"
                meta.files[rel] = fmt.write_array(part_dir / f"{fmt.NODE_SPLIT}.npy", np.asarray(split[lo:hi], dtype=np.int8))
            if features is not None:
                rel = f"{fmt.part_dir_name(p)}/{fmt.NODE_FEAT}.npy"
                tmp = part_dir / f".{fmt.NODE_FEAT}.npy.tmp"
                writer = fmt.NpyWriter(tmp, np.float32, (hi - lo, len(feature_names)))
                for a in range(lo, hi, 1 << 16):
                    writer.write(features(a, min(a + (1 << 16), hi)))
                meta.files[rel] = writer.close()
                tmp.replace(part_dir / f"{fmt.NODE_FEAT}.npy")
        if split is not None:
            meta.node_schema.split = meta.node_schema.split or split_name
        if features is not None:
            meta.node_schema.feature_names = list(feature_names)
        fmt.write_meta(self.path, meta)
        (self.path / STAMP_FILE).unlink(missing_ok=True)  # the verification stamp predates the rewritten arrays
        self.dataset = type(self.dataset)(self.path)


@dataclass
class PartitionSpec:
    """How the pipeline partitions the user's files: sources, columns and options (see :func:`partition_spec`)."""

    edges: "object"
    accounts: "object"
    edge_columns: "object"
    node_columns: "object"
    options: "object"


def partition_spec(edges, accounts, *, src: str, dst: str, id: str, label: str, time: Optional[str] = None,
                   amount: Optional[str] = None, split: Optional[str] = None, features: Optional[Sequence[str]] = None,
                   undirected: bool = False, add_unknown_accounts: bool = False, num_parts: int = 2,
                   method: str = "hash", seed: int = 0, memory_limit=None, disk_check: bool = True,
                   progress: bool = False) -> PartitionSpec:
    """The partitioner's inputs for the pipeline: both directions (unless ``undirected``), the amount
    stored as ``amount`` and required finite, missing account features kept missing."""
    from graphtrain.partition import ingest
    from graphtrain.partition.partitioner import DEFAULT_MEMORY_LIMIT, EdgeColumns, NodeColumns, PartitionOptions

    edge_source = ingest.TableSource.from_paths([str(edges)])
    node_source = ingest.TableSource.from_paths([str(accounts)])
    if features is None:
        features = default_feature_columns(node_source, skip=(id, label, split))
    cols = EdgeColumns(src, dst, time=time, extra=(amount,) if amount else (), rename={amount: AMOUNT} if amount else None,
                       finite=(amount,) if amount else ())
    node_cols = NodeColumns(id, label=label, features=tuple(features), split=split)
    options = PartitionOptions(num_parts=num_parts, method=method, seed=seed,
                               memory_limit=memory_limit or DEFAULT_MEMORY_LIMIT, add_missing_nodes=add_unknown_accounts,
                               add_reverse=not undirected, missing_features="nan", disk_check=disk_check,
                               progress=progress, float32_columns=FLOAT32_COLUMNS if amount else ())
    return PartitionSpec(edge_source, node_source, cols, node_cols, options)


def partition_transaction_files(spec: PartitionSpec, out):
    """Stream the transaction and account files into a dataset at ``out`` (bounded memory).

    Returns ``(TransactionDataset, PartitionSummary)``. Bad rows raise :class:`InputError` naming the
    file, row and column; nothing is left at ``out`` then.
    """
    from graphtrain.partition.partitioner import partition

    summary = partition(spec.edges, spec.edge_columns, out, spec.options, spec.accounts, spec.node_columns)
    return TransactionDataset.open(out, own_feature_names=list(spec.node_columns.features)), summary


def default_feature_columns(node_source, skip) -> List[str]:
    """Every numeric (integer, float or boolean) column of the account table other than ``skip``."""
    import pyarrow as pa

    from graphtrain.partition import ingest

    types = ingest.peek_types(node_source, ingest.column_names(node_source))
    return [name for name, t in types.items() if name not in set(s for s in skip if s)
            and (pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t))]


def partition_transaction_graph(graph, out, *, split: Optional[np.ndarray] = None, num_parts: int = 2,
                                method: str = "hash", seed: int = 0) -> "TransactionDataset":
    """A :class:`~graphtrain.fraud.data.transaction_graph.TransactionGraph` in memory, written as a dataset at ``out``."""
    from graphtrain.partition.partitioner import partition_arrays
    from graphtrain.split import split_names

    graph.validate()
    attrs = {}
    if graph.amount is not None:
        attrs[AMOUNT] = graph.amount
    if graph.time is not None:
        attrs[TIME] = graph.time
    ids = graph.accounts.ids
    split = split if split is not None else graph.accounts.split
    feats = graph.accounts.features if graph.accounts.features.shape[1] else None
    partition_arrays(ids[graph.src], ids[graph.dst], out, num_parts, edge_attrs=attrs, node_ids=ids,
                     node_features=feats, node_labels=graph.accounts.labels,
                     node_split=list(split_names(split)) if split is not None else None,
                     time_column=TIME if graph.time is not None else None, add_reverse=graph.directed,
                     missing_features="nan", method=method, seed=seed,
                     float32_columns=FLOAT32_COLUMNS if graph.amount is not None else ())
    if graph.num_edges == 0:
        raise ConfigError("the graph has no transactions")
    return TransactionDataset.open(out, own_feature_names=graph.accounts.feature_names)


REVERSE_CHECK_EDGES = 1_000_000  # edges (about) of an undirected list checked for their reverse


def check_both_directions_in_file(edges, src: str, dst: str, sample: int = REVERSE_CHECK_EDGES, seed: int = 0) -> None:
    """Check, in one streaming pass, that an edge list said to be undirected holds each edge both ways.

    Edges are keyed by the 64-bit hashes of their raw endpoint IDs; a hash sample of about ``sample``
    edges (by the unordered pair, so an edge and its reverse are sampled together) is kept with its
    input rows, then each kept edge's reverse is looked up among them. Memory: the sample.

    Raises:
        InputError: naming the file and row of the first checked edge whose reverse is missing, and
            how many of the checked edges lack one.
    """
    import pyarrow as pa

    from graphtrain.errors import InputError
    from graphtrain.kernels.rng import combine_np, seed_key
    from graphtrain.partition import ingest
    from graphtrain.partition.idmap import hash_ids

    source = ingest.TableSource.from_paths([str(edges)])
    types = ingest.peek_types(source, [src, dst])
    id_type = "int64" if all(ingest.id_type_of(t) == "int64" for t in types.values()) else "string"
    arrow = pa.int64() if id_type == "int64" else pa.string()
    rows_total = max(int(source.estimated_rows() or 0), 1)
    cut = np.uint64(min(int(sample / rows_total * 2.0**64), 2**64 - 1))
    key = seed_key(seed)
    hs, hd, where = [], [], []
    for batch in ingest.iter_batches(source, [src, dst], 1 << 20, {src: arrow, dst: arrow}):
        if batch.num_rows == 0:
            continue
        a = hash_ids(ingest.read_ids(batch, src, id_type))
        b = hash_ids(ingest.read_ids(batch, dst, id_type))
        pair = np.minimum(a, b) * np.uint64(0x9E3779B97F4A7C15) ^ np.maximum(a, b)
        keep = np.flatnonzero(combine_np(key, pair) < cut) if rows_total > sample else np.arange(batch.num_rows)
        hs.append(a[keep])
        hd.append(b[keep])
        where += [(batch.where, batch.first_row, batch.unit, keep)]
    if not hs:
        return
    s, d = np.concatenate(hs), np.concatenate(hd)
    mix = seed_key(seed + 1)  # one 64-bit key per ordered pair (collisions: ~n^2 / 2^65)
    forward = np.sort(combine_np(mix, s * np.uint64(0x9E3779B97F4A7C15) + d))
    reverse = combine_np(mix, d * np.uint64(0x9E3779B97F4A7C15) + s)
    pos = np.minimum(np.searchsorted(forward, reverse), forward.size - 1)
    lacking = np.flatnonzero(forward[pos] != reverse)
    if not lacking.size:
        return
    i = int(lacking[0])
    for path, first, unit, keep in where:
        if i < keep.size:
            raise InputError(path, f"the edge list is said to be undirected (--undirected), but this edge has no "
                                   f"reverse ({lacking.size} of the {s.size} edges checked"
                                   f"{' (a hash sample)' if rows_total > sample else ''} have none); give each edge in "
                                   "both directions, or leave out --undirected to use every transaction in both directions",
                             row=first + int(keep[i]), column=f"{src}, {dst}", unit=unit)
        i -= keep.size
