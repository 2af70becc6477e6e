"""A transaction graph in memory, with accounts numbered ``0 .. N-1``, loaded from a user's tables.

This is what the tree baseline, ring detection, evaluation and report work on. Raw account IDs are
mapped to row numbers of the account table once, here; results go back out with raw IDs.

Memory: about 40 bytes per transaction (src, dst, amount, time; plus the raw-ID lookup while
loading) and ``4 * F`` bytes plus the raw ID per account. It is meant for graphs of up to some
hundred million transactions; the partitioned, out-of-core path is ``graphtrain partition``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional, Sequence

import numpy as np

from graphtrain.errors import ConfigError, InputError
from graphtrain.fraud.data.tables import read_table
from graphtrain.split import SPLIT_CODES

UNKNOWN_ACCOUNTS = ("error", "add")
REVERSE_CHECK_EDGES = 1_000_000  # edges (about) whose reverse an undirected edge list is checked for
_CHECK_CHUNK = 1 << 22


@dataclass
class AccountTable:
    """Accounts in row order (row number = account index).

    Attributes:
        ids: ``[N]`` raw account IDs: int64, or object array of str; a subgraph extracted from a
            dataset with string IDs holds them as a pyarrow string array instead (no Python object
            per account). Read one with :meth:`raw_id`, order by them with :meth:`id_rank`.
        features: float32 ``[N, F]``; NaN where unknown.
        feature_names: the ``F`` column names.
        labels: int64 ``[N]``: 1 fraud, 0 not, -1 unknown.
        split: int8 ``[N]`` (0 train, 1 val, 2 test, -1 none) or None when the table has no split.
    """

    ids: np.ndarray
    features: np.ndarray
    feature_names: List[str]
    labels: np.ndarray
    split: Optional[np.ndarray] = None
    _rank: Optional[np.ndarray] = field(default=None, init=False, repr=False, compare=False)

    @property
    def num_accounts(self) -> int:
        return int(self.labels.shape[0])

    def raw_id(self, row: int):
        """Account ``row``'s raw ID as a Python ``int`` or ``str``."""
        value = self.ids[int(row)]
        if hasattr(value, "as_py"):  # a pyarrow scalar
            return value.as_py()
        return value.item() if hasattr(value, "item") else value

    def id_rank(self) -> np.ndarray:
        """int64 ``[N]``: each account's position in raw-ID order (numbers by value, strings by code
        point: UTF-8 byte order is the same). Computed once; the IDs are distinct."""
        if self._rank is None:
            if isinstance(self.ids, np.ndarray):
                order = np.argsort(self.ids, kind="stable")
            else:
                import pyarrow.compute as pc

                order = pc.sort_indices(self.ids).to_numpy()
            rank = np.empty(order.size, dtype=np.int64)
            rank[order] = np.arange(order.size)
            self._rank = rank
        return self._rank

    def index_of(self, raw_ids) -> np.ndarray:
        """int64 account index of each raw ID, -1 for IDs not in the table."""
        import pandas as pd

        return pd.Index(self.ids).get_indexer(np.asarray(raw_ids, dtype=self.ids.dtype)).astype(np.int64)


@dataclass
class TransactionGraph:
    """Transactions between accounts ``0 .. N-1``.

    Attributes:
        accounts: the account table.
        src, dst: int64 ``[E]`` account indices (payer, payee).
        amount: float64 ``[E]`` or None.
        time: int64 ``[E]`` (seconds, or the input's time unit) or None.
        directed: False when each undirected edge is stored in both directions (then ``in`` and
            ``out`` neighbourhoods are the same).
    """

    accounts: AccountTable
    src: np.ndarray
    dst: np.ndarray
    amount: Optional[np.ndarray] = None
    time: Optional[np.ndarray] = None
    directed: bool = True

    @property
    def num_accounts(self) -> int:
        return self.accounts.num_accounts

    @property
    def num_edges(self) -> int:
        return int(self.src.shape[0])

    def validate(self) -> "TransactionGraph":
        n, e = self.num_accounts, self.num_edges
        a = self.accounts
        if a.features.shape != (n, len(a.feature_names)) or len(a.ids) != n:
            raise ConfigError("account ids, features and labels disagree in length")
        if a.split is not None and a.split.shape != (n,):
            raise ConfigError("split has the wrong length")
        if self.dst.shape != (e,) or (e and (min(self.src.min(), self.dst.min()) < 0 or max(self.src.max(), self.dst.max()) >= n)):
            raise ConfigError(f"transaction endpoints must be account indices in [0, {n})")
        for name in ("amount", "time"):
            col = getattr(self, name)
            if col is not None and col.shape != (e,):
                raise ConfigError(f"{name} has {col.shape[0]} values for {e} transactions")
        return self


# -- loading --------------------------------------------------------------------------------------
def raw_id_column(table, column: str):
    import pyarrow as pa

    col = table.column(column).combine_chunks()
    if pa.types.is_integer(col.type):
        if col.null_count:
            return col.to_numpy(zero_copy_only=False), "int64"  # floats with NaN; caught by the null check
        return col.to_numpy().astype(np.int64), "int64"
    return col.cast(pa.string()).to_numpy(zero_copy_only=False), "string"


def _first_empty_row(table, column: str) -> Optional[int]:
    """1-based row of the first null (or, for text, empty) value of ``column``; None if there is none."""
    import pyarrow as pa
    import pyarrow.compute as pc

    col = table.column(column)
    empty = col.is_null()
    if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
        empty = pc.or_(empty, pc.equal(pc.utf8_length(col), 0))
    mask = empty.to_numpy(zero_copy_only=False)
    if not mask.any():
        return None
    return int(np.flatnonzero(mask)[0]) + 1


def _labels(table, column: str, path) -> np.ndarray:
    import pyarrow as pa

    col = table.column(column).combine_chunks()
    if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
        text = np.asarray([None if v is None else v.strip().lower() for v in col.to_pylist()], dtype=object)
        mapping = {"1": 1, "0": 0, "true": 1, "false": 0, "": -1, None: -1}
        bad = [i for i, v in enumerate(text) if v not in mapping]
        if bad:
            raise InputError(path, f"label {text[bad[0]]!r} is not 0/1/true/false or empty", row=bad[0] + 1, column=column)
        return np.asarray([mapping[v] for v in text], dtype=np.int64)
    if pa.types.is_boolean(col.type):
        values = col.to_numpy(zero_copy_only=False)
        return np.where(col.is_null().to_numpy(zero_copy_only=False), -1, values.astype(bool)).astype(np.int64)
    if not (pa.types.is_integer(col.type) or pa.types.is_floating(col.type)):
        raise InputError(path, f"labels must be 0/1, found type {col.type}", column=column)
    values = col.to_numpy(zero_copy_only=False).astype(np.float64)
    known = ~np.isnan(values)
    bad = np.flatnonzero(known & (values != 0) & (values != 1))
    if bad.size:
        raise InputError(path, f"label {values[bad[0]]:g} is not 0 or 1 (leave unknown labels empty)", row=int(bad[0]) + 1, column=column)
    return np.where(known, values, -1).astype(np.int64)


def _split(table, column: str, path) -> np.ndarray:
    values = table.column(column).cast("string").to_pylist()
    codes = np.full(len(values), -1, dtype=np.int8)
    for i, v in enumerate(values):
        key = "" if v is None else v.strip().lower()
        if key in SPLIT_CODES:
            codes[i] = SPLIT_CODES[key]
        elif key:
            raise InputError(path, f"split value {v!r} is not train, val, test or empty", row=i + 1, column=column)
    return codes


def _numeric(table, column: str, path, what: str) -> np.ndarray:
    import pyarrow as pa

    col = table.column(column).combine_chunks()
    if pa.types.is_boolean(col.type):
        col = col.cast(pa.int8())
    if not (pa.types.is_integer(col.type) or pa.types.is_floating(col.type)):
        raise InputError(path, f"{what} column must be numeric, found type {col.type}", column=column)
    return col.to_numpy(zero_copy_only=False).astype(np.float64)


def _times(table, column: str, path) -> np.ndarray:
    import pyarrow as pa

    col = table.column(column).combine_chunks()
    row = _first_empty_row(table, column)
    if row is not None:
        raise InputError(path, "empty time", row=row, column=column)
    if pa.types.is_timestamp(col.type):
        return col.cast(pa.timestamp("s")).cast(pa.int64()).to_numpy()
    if pa.types.is_integer(col.type):
        return col.to_numpy().astype(np.int64)
    if pa.types.is_floating(col.type):
        return np.floor(col.to_numpy()).astype(np.int64)
    raise InputError(path, f"time column must be integer or timestamp, found type {col.type}", column=column)


def load_accounts(path, id_column: str, label: Optional[str] = None, split: Optional[str] = None,
                  features: Optional[Sequence[str]] = None) -> AccountTable:
    """Read an account table.

    Args:
        path: Parquet or CSV file.
        id_column: raw account ID column (unique, no empty values).
        label: 0/1 label column (empty = unknown); None = no labels (all -1).
        split: column with ``train``/``val``/``test`` (empty = none); None = no split.
        features: numeric feature columns; None = every numeric column other than ID, label and split.

    Raises:
        InputError: missing file or column, duplicate or empty IDs, bad labels or split values,
            non-numeric features.
    """
    import pyarrow as pa

    table = read_table(path)
    wanted = [id_column] + [c for c in (label, split) if c] + list(features or [])
    missing = [c for c in wanted if c not in table.column_names]
    if missing:
        raise InputError(path, f"no column {missing[0]!r} (columns are {', '.join(map(repr, table.column_names))})", column=missing[0])
    if table.num_rows == 0:
        raise InputError(path, "no accounts (the table is empty)")
    row = _first_empty_row(table, id_column)
    if row is not None:
        raise InputError(path, "empty account ID", row=row, column=id_column)
    ids, _ = raw_id_column(table, id_column)
    import pandas as pd

    dup = pd.Index(ids).duplicated()
    if dup.any():
        i = int(np.flatnonzero(dup)[0])
        raise InputError(path, f"account ID {ids[i]!r} appears more than once", row=i + 1, column=id_column)
    if features is None:
        skip = {id_column, label, split}
        features = [f.name for f in table.schema if f.name not in skip
                    and (pa.types.is_integer(f.type) or pa.types.is_floating(f.type) or pa.types.is_boolean(f.type))]
    feats = np.empty((table.num_rows, len(features)), dtype=np.float32)
    for j, name in enumerate(features):
        feats[:, j] = _numeric(table, name, path, "feature")
    return AccountTable(
        ids=ids,
        features=feats,
        feature_names=list(features),
        labels=_labels(table, label, path) if label else np.full(table.num_rows, -1, dtype=np.int64),
        split=_split(table, split, path) if split else None,
    )


def load_transaction_graph(
    edges,
    accounts: AccountTable,
    src: str = "src",
    dst: str = "dst",
    amount: Optional[str] = None,
    time: Optional[str] = None,
    unknown_accounts: str = "error",
    directed: bool = True,
) -> TransactionGraph:
    """Read a transaction edge list and number its endpoints by the account table's rows.

    Args:
        edges: Parquet or CSV file of transactions.
        accounts: from :func:`load_accounts`.
        src, dst: payer and payee columns (raw account IDs).
        amount, time: optional amount (numeric) and time (integer or timestamp; stored in seconds)
            columns.
        unknown_accounts: ``"error"`` (default): an endpoint missing from the account table is an
            error; ``"add"``: such accounts are appended (features NaN, label unknown).
        directed: False if the list holds each undirected edge in both directions; checked with
            :func:`check_both_directions` (on a sample of about ``REVERSE_CHECK_EDGES`` edges when
            the list is longer).

    Raises:
        InputError: missing file or column, empty endpoints, unknown accounts, bad amounts or times;
            with ``directed=False``, an edge whose reverse is not in the list.
    """
    if unknown_accounts not in UNKNOWN_ACCOUNTS:
        raise ConfigError(f"unknown_accounts must be one of {UNKNOWN_ACCOUNTS}, got {unknown_accounts!r}")
    columns = [src, dst] + [c for c in (amount, time) if c]
    table = read_table(edges, columns)
    for col in (src, dst):
        row = _first_empty_row(table, col)
        if row is not None:
            raise InputError(edges, "empty account ID", row=row, column=col)
    s_raw, s_kind = raw_id_column(table, src)
    d_raw, d_kind = raw_id_column(table, dst)
    if not (accounts.ids.dtype.kind in "iu" and s_kind == d_kind == "int64"):
        # some side has text IDs: compare everything as text
        if accounts.ids.dtype.kind in "iu":
            accounts = _with_string_ids(accounts)
        s_raw = s_raw if s_kind == "string" else s_raw.astype(str).astype(object)
        d_raw = d_raw if d_kind == "string" else d_raw.astype(str).astype(object)
    s_idx, d_idx = accounts.index_of(s_raw), accounts.index_of(d_raw)
    for col, raw, idx in ((src, s_raw, s_idx), (dst, d_raw, d_idx)):
        if (idx < 0).any() and unknown_accounts == "error":
            i = int(np.flatnonzero(idx < 0)[0])
            raise InputError(edges, f"account {raw[i]!r} is not in the account table "
                                    "(add it there, or let unknown accounts be added)", row=i + 1, column=col)
    if (s_idx < 0).any() or (d_idx < 0).any():
        accounts, s_idx, d_idx = _add_unknown(accounts, s_raw, d_raw, s_idx, d_idx)
    amt = None
    if amount:
        amt = _numeric(table, amount, edges, "amount")
        bad = np.flatnonzero(~np.isfinite(amt))
        if bad.size:
            raise InputError(edges, "empty or non-finite amount", row=int(bad[0]) + 1, column=amount)
    graph = TransactionGraph(
        accounts=accounts, src=s_idx, dst=d_idx, amount=amt,
        time=_times(table, time, edges) if time else None, directed=directed,
    )
    graph.validate()
    if not directed:
        check = check_both_directions(graph.src, graph.dst, graph.num_accounts)
        if check.missing >= 0:
            i, ids = check.missing, graph.accounts.ids
            a, b = ids[graph.src[i]], ids[graph.dst[i]]
            raise InputError(edges, f"the edge list is said to be undirected (--undirected), but the edge {a!r} -> {b!r} "
                                    f"has no reverse {b!r} -> {a!r} ({check.without_reverse} of the {check.checked} "
                                    f"edges checked{' (a hash sample)' if check.sampled else ''} have none); give each "
                                    "edge in both directions, or leave out --undirected to use every transaction in "
                                    "both directions", row=i + 1)
    return graph


@dataclass
class ReverseCheck:
    """What :func:`check_both_directions` found.

    Attributes:
        missing: index of the first checked edge whose reverse is not in the list; -1 if none.
        without_reverse: how many checked edges have no reverse.
        checked: how many edges were checked.
        sampled: True when only a hash sample of the edges was checked.
    """

    missing: int
    without_reverse: int
    checked: int
    sampled: bool


def check_both_directions(src: np.ndarray, dst: np.ndarray, num_nodes: int, sample: int = REVERSE_CHECK_EDGES,
                          seed: int = 0) -> ReverseCheck:
    """Check that every edge ``u -> v`` of an edge list has its reverse ``v -> u`` in the list.

    Method: with more than ``sample`` edges, only the edges whose *unordered* pair ``{u, v}`` hashes
    below ``sample / E`` of the hash range are checked (about ``sample`` of them; an edge and its
    reverse have the same pair, so they are kept or skipped together, and a list in both directions
    passes exactly). The kept pairs ``u * N + v`` are sorted and each one's reverse ``v * N + u`` is
    looked up by binary search. One pass over the edges in chunks of 4M: memory about 50 bytes per
    kept edge plus 100 MB, time linear in ``E``. A list that holds one direction only fails on the
    first kept edge; a list with a few missing reverses may pass on a sample.
    """
    from graphtrain.kernels.rng import combine_np, seed_key

    src = np.asarray(src, dtype=np.int64)
    dst = np.asarray(dst, dtype=np.int64)
    e, n = src.shape[0], np.uint64(max(int(num_nodes), 1))
    sampled = e > sample
    if sampled:
        key = seed_key(seed)
        cut = np.uint64(min(int(sample / e * 2.0**64), 2**64 - 1))
        parts = []
        for start in range(0, e, _CHECK_CHUNK):
            s, d = src[start:start + _CHECK_CHUNK], dst[start:start + _CHECK_CHUNK]
            pair = np.minimum(s, d).astype(np.uint64) * n + np.maximum(s, d).astype(np.uint64)
            parts.append(start + np.flatnonzero(combine_np(key, pair) < cut))
        rows = np.concatenate(parts) if parts else np.empty(0, np.int64)
    else:
        rows = np.arange(e, dtype=np.int64)
    s, d = src[rows].astype(np.uint64), dst[rows].astype(np.uint64)
    forward = np.sort(s * n + d)
    reverse = d * n + s
    pos = np.minimum(np.searchsorted(forward, reverse), max(forward.size - 1, 0))
    lacking = np.flatnonzero(forward[pos] != reverse) if forward.size else np.empty(0, np.int64)
    return ReverseCheck(missing=int(rows[lacking[0]]) if lacking.size else -1, without_reverse=int(lacking.size),
                        checked=int(rows.size), sampled=sampled)


def _with_string_ids(accounts: AccountTable) -> AccountTable:
    ids = accounts.ids.astype(str).astype(object)
    return AccountTable(ids, accounts.features, accounts.feature_names, accounts.labels, accounts.split)


def _add_unknown(accounts: AccountTable, s_raw, d_raw, s_idx, d_idx):
    import pandas as pd

    missing = pd.unique(np.concatenate([s_raw[s_idx < 0], d_raw[d_idx < 0]]))
    n_new = len(missing)
    ids = np.concatenate([accounts.ids, np.asarray(missing, dtype=accounts.ids.dtype)])
    feats = np.concatenate([accounts.features, np.full((n_new, accounts.features.shape[1]), np.nan, np.float32)])
    labels = np.concatenate([accounts.labels, np.full(n_new, -1, np.int64)])
    split = None if accounts.split is None else np.concatenate([accounts.split, np.full(n_new, -1, np.int8)])
    grown = AccountTable(ids, feats, accounts.feature_names, labels, split)
    return grown, grown.index_of(s_raw), grown.index_of(d_raw)
