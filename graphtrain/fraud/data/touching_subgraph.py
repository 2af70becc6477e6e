"""The transactions that touch a set of accounts, extracted from a partitioned dataset into a small
in-memory :class:`~graphtrain.fraud.data.transaction_graph.TransactionGraph`.

Ring finding looks only at high-risk accounts: which of them transact with each other, their
in-degree in the whole graph (camouflage-resistant weights), their money flows and the outside
accounts two members share. All of that is in the transactions with **at least one endpoint in the
set**; the accounts at the other end come along as boundary accounts (their own transactions with
accounts outside the set are not loaded). So ring finding on :func:`touching_subgraph` of the
accounts scored at or above the lowest ring threshold gives the rings of the whole graph, in time
and memory linear in the set's transactions, not in the graph's (plus 9 bytes per account of the
whole graph while the extracted accounts are renumbered).

The dataset is read partition by partition, a block of in-edges at a time; with ``reverse``
(``--add-reverse``) only the copies as given (``reverse`` 0) are taken, so each transaction comes
once; an undirected dataset (each edge stored both ways) keeps both of its copies, as the
in-memory undirected graph does.

Accounts of the result are numbered ``0 .. k-1`` in global-ID order; ``global_ids`` maps them back.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional

import numpy as np
from numba import njit

from graphtrain.fraud.data.transaction_graph import AccountTable, TransactionGraph
from graphtrain.graph import REVERSE
from graphtrain.ordering import row_blocks

BLOCK_EDGES = 1 << 22


@njit(cache=True)
def _touching_edges(indptr, src, reverse, inside, lo, a, b):  # pragma: no cover - compiled
    """In-edges of destination rows ``[a, b)`` (partition-local; global ID ``lo + row``) with an endpoint
    ``inside``, the stored reverse copies (``reverse`` 1; an empty array: none stored) left out.
    Returns ``(offsets, dst)``: int64 ``[k]`` each, the edges' positions from ``indptr[a]`` and their
    destinations' global IDs, in storage order. One pass over the block."""
    e0 = indptr[a]
    offsets = np.empty(indptr[b] - e0, dtype=np.int64)
    dst = np.empty(indptr[b] - e0, dtype=np.int64)
    k = 0
    with_reverse = reverse.size > 0
    for row in range(a, b):
        d = lo + row
        d_inside = inside[d]
        for e in range(indptr[row], indptr[row + 1]):
            if with_reverse and reverse[e - e0] != 0:
                continue
            if d_inside or inside[src[e - e0]]:
                offsets[k] = e - e0
                dst[k] = d
                k += 1
    return offsets[:k], dst[:k]


@njit(cache=True)
def _grown_rows(indptr, src, cand, core, lo, a, b, min_share, grown):  # pragma: no cover - compiled
    """For each candidate destination row in ``[a, b)``: ``grown[lo + row]`` when at least two of its
    distinct counterparties (sources of its in-edges ``src``, offsets from ``indptr[a]``) are core and
    they are at least ``min_share`` of them (:func:`high_risk_in_dataset`)."""
    e0 = indptr[a]
    for row in range(a, b):
        if not cand[lo + row]:
            continue
        partners = np.sort(src[indptr[row] - e0 : indptr[row + 1] - e0])
        distinct = links = 0
        for i in range(partners.size):
            if i == 0 or partners[i] != partners[i - 1]:
                distinct += 1
                if core[partners[i]]:
                    links += 1
        grown[lo + row] = links >= 2 and links / max(distinct, 1) >= min_share


@dataclass
class Subgraph:
    """A :class:`TransactionGraph` over a set of accounts and their counterparties.

    Attributes:
        graph: accounts ``0 .. k-1`` (raw IDs, own features, labels, split) and the touching transactions.
        global_ids: int64 ``[k]`` the dataset's global ID of each account, ascending.
        inside: bool ``[k]``: the account is in the requested set (False: a boundary counterparty).
    """

    graph: TransactionGraph
    global_ids: np.ndarray
    inside: np.ndarray


def _gather(dataset, global_ids: np.ndarray, what: str):
    """Per-account values of ``what`` (``features``, ``labels``, ``split`` or ``raw``) for ascending
    ``global_ids``: numpy arrays; string raw IDs as one pyarrow string array."""
    out: List = []
    book = dataset.book
    for p in range(dataset.num_parts):
        lo, hi = book.node_range(p)
        a, b = np.searchsorted(global_ids, [lo, hi])
        if a == b:
            continue
        local = global_ids[a:b] - lo
        if what == "raw":  # int64, or the string IDs kept in Arrow (no Python object per account)
            raw = dataset.raw_ids(p)
            out.append(np.asarray(raw)[local] if dataset.meta.id_type == "int64" else raw.take(local))
        else:
            values = getattr(dataset.partition(p), what)
            out.append(None if values is None else np.asarray(values[local]))
    if not out:
        return None
    if any(v is None for v in out):
        return None
    if what == "raw" and dataset.meta.id_type != "int64":
        import pyarrow as pa

        return pa.concat_arrays(out)
    return np.concatenate(out)


def touching_subgraph(dataset, inside: np.ndarray, *, amount: Optional[str] = "amount", time: Optional[str] = "time",
                      with_features: bool = True, feature_names: Optional[List[str]] = None,
                      block_edges: int = BLOCK_EDGES) -> Subgraph:
    """The accounts ``inside`` (bool ``[N]`` by global ID) and every transaction with an endpoint among them.

    Args:
        dataset: an opened dataset (``open_dataset``), directed with ``reverse`` or undirected.
        inside: bool ``[N]``, indexed by global node ID.
        amount, time: stored edge column names (None or absent: not loaded).
        with_features: load the accounts' node features (False: an account table without features;
            ring finding needs none).
        feature_names: names of the dataset's node features for the account table (default: the dataset's).
        block_edges: in-edges read at a time.
    """
    meta = dataset.meta
    stored = {c.name for c in meta.edge_columns}
    directed = REVERSE in stored
    amount = amount if amount in stored else None
    time = time if time in stored else None
    inside = np.asarray(inside, dtype=bool)
    srcs, dsts, amounts, times = [], [], [], []
    for p in range(dataset.num_parts):
        lo, _ = dataset.book.node_range(p)
        graph = dataset.graph(p)
        indptr = np.asarray(graph.indptr, dtype=np.int64)
        for a, b in row_blocks(indptr, block_edges):  # destination rows [a, b): their in-edges [e0, e1)
            e0, e1 = int(indptr[a]), int(indptr[b])
            block_src = np.asarray(graph.src[e0:e1])
            reverse = np.asarray(graph.edge_attrs[REVERSE][e0:e1]) if directed else np.empty(0, np.int8)
            offsets, dst = _touching_edges(indptr, block_src, reverse, inside, lo, a, b)
            if not offsets.size:
                continue
            srcs.append(block_src[offsets].astype(np.int64))
            dsts.append(dst)
            if amount:
                amounts.append(np.asarray(graph.edge_attrs[amount][e0:e1])[offsets].astype(np.float64))
            if time:
                times.append(np.asarray(graph.edge_attrs[time][e0:e1])[offsets].astype(np.int64))
    src = np.concatenate(srcs) if srcs else np.empty(0, np.int64)
    dst = np.concatenate(dsts) if dsts else np.empty(0, np.int64)
    member = inside.copy()  # the accounts inside and their counterparties, by global ID
    member[src] = True
    member[dst] = True
    ids = np.flatnonzero(member)
    k = ids.size
    local = np.full(inside.size, -1, dtype=np.int64)  # global ID -> row of the account table
    local[ids] = np.arange(k)
    del member
    feats = _gather(dataset, ids, "features") if with_features else None
    names = list(feature_names if feature_names is not None else meta.node_schema.feature_names)
    if feats is None:
        feats, names = np.zeros((k, 0), dtype=np.float32), []
    labels = _gather(dataset, ids, "labels")
    split = _gather(dataset, ids, "split")
    raw = _gather(dataset, ids, "raw")
    if raw is None:  # no accounts
        raw = np.empty(0, dtype=np.int64 if meta.id_type == "int64" else object)
    table = AccountTable(ids=raw, features=np.asarray(feats, dtype=np.float32),
                         feature_names=names,
                         labels=np.asarray(labels, dtype=np.int64) if labels is not None else np.full(k, -1, np.int64),
                         split=np.asarray(split, dtype=np.int8) if split is not None else None)
    g = TransactionGraph(table, local[src], local[dst],
                         amount=np.concatenate(amounts) if amount else None,
                         time=np.concatenate(times) if time else None, directed=directed)
    return Subgraph(g.validate(), ids, inside[ids])


def high_risk_in_dataset(dataset, scores: np.ndarray, threshold: float, grow_threshold: Optional[float],
                         grow_min_share: float, block_edges: int = BLOCK_EDGES) -> np.ndarray:
    """Ring finding's step 1 on the whole dataset: bool ``[N]`` by global ID, exactly
    :func:`graphtrain.fraud.rings.ring_groups.high_risk_accounts` on the whole graph.

    The core is every account scoring ``>= threshold``. A candidate (``grow_threshold <= score <
    threshold``) joins when at least two distinct core accounts are among its counterparties and
    they are at least ``grow_min_share`` of its distinct counterparties. Every counterparty of an
    account is a source of one of its own in-edges (a directed dataset stores each transaction as an
    in-edge of both ends; an undirected one stores each edge both ways), so each candidate is decided
    from its own in-edges, a block of whole destinations at a time: memory is one block, not the
    candidates' transactions.
    """
    scores = np.asarray(scores, dtype=np.float64)
    core = scores >= threshold
    if grow_threshold is None:
        return core
    cand = (scores >= grow_threshold) & ~core
    grown = np.zeros_like(core)
    for p in range(dataset.num_parts):
        lo, hi = dataset.book.node_range(p)
        if not cand[lo:hi].any():
            continue
        graph = dataset.graph(p)
        indptr = np.asarray(graph.indptr, dtype=np.int64)
        for a, b in row_blocks(indptr, block_edges):
            if cand[lo + a : lo + b].any():
                block_src = np.asarray(graph.src[int(indptr[a]) : int(indptr[b])])
                _grown_rows(indptr, block_src, cand, core, lo, a, b, float(grow_min_share), grown)
    return core | grown
