"""Money-flow evidence around a set of accounts: temporal cycles, amount-conserving chains, fan bursts.

Works on the **flow edges**: the transactions with at least one endpoint in the set (ring finding
passes the flow candidates, :func:`graphtrain.fraud.rings.ring_groups.flow_candidates`), self-loops
dropped, less the **standing relationships**: payer -> payee pairs whose transactions span longer
than the ``recurring_quantile`` of same-account gaps (payroll, rent, subscriptions and invoices
recur; laundering moves in bursts). Every transaction of the set is in the subgraph that ring
finding runs on (:mod:`graphtrain.fraud.data.touching_subgraph`), so the flow edges, and everything
below, are the same there as on the whole graph. A structure may pass through an account outside
the set, but never two in a row (the transaction between them is no flow edge).

- **Temporal cycles**: ``a -> b -> ... -> a`` over distinct accounts, 3 to ``max_hops`` hops, each
  hop no earlier than the one before and at most ``hop_window`` after it.
- **Amount-conserving chains**: a hop ``a -> b`` (amount ``x1``, time ``t1``) followed by ``b -> c``
  (``c != a``) at ``t1 <= t2 <= t1 + hop_window`` forwarding most of what arrived:
  ``(1 - tolerance) * x1 <= x2 <= x1``. Both hops are chain edges.
- **Fan bursts**: an account of the set that, within ``hop_window``, receives from (fan-in) or
  sends to (fan-out) more distinct accounts of the set than its own pace makes plausible: at least
  ``max(min_fan, c)`` where ``c`` is the smallest count whose Poisson tail probability, at the
  account's mean rate of flow edges over the time span of the set's transactions, is below ``fan_p``. The
  edges in such a window are fan edges.

The time unit is the input's (seconds for the generator and the shared datasets); ``hop_window``
comes from the data (:func:`hop_window`). Cost: each detector is one pass over the flow edges sorted
by account and time; the cycle search visits at most ``budget`` partial paths per starting edge and
the chain search at most ``budget`` earlier in-edges per edge, so the work is ``O(E log E + E *
budget)`` in the worst case and near ``O(E log E)`` on sparse graphs. Memory: a few int64/float64
arrays of the flow edges' length.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np
from numba import njit

from graphtrain.fraud.data.transaction_graph import TransactionGraph
from graphtrain.ordering import csr_order, sorted_pairs

FLOW_KINDS = ("cycle", "chain", "fan_in", "fan_out")


@dataclass
class FlowEvidence:
    """Which flow edges take part in which flow structure.

    Attributes:
        edges: int64 ``[F]`` indices into the graph's transactions of the flow edges.
        cycle, chain, fan_in, fan_out: bool ``[F]``: the flow edge is on a temporal cycle, a hop of
            an amount-conserving chain, a spoke of a fan-in / fan-out burst.
        hop_window: the window used (time unit of the input); 0 when the graph has no times.
        standing: int64 indices into the graph's transactions of the pairs left out as standing
            relationships (transactions among the accounts spanning more than the recurrence span).
    """

    edges: np.ndarray
    cycle: np.ndarray
    chain: np.ndarray
    fan_in: np.ndarray
    fan_out: np.ndarray
    hop_window: int
    standing: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))

    @property
    def any(self) -> np.ndarray:
        """bool ``[F]``: the flow edge is evidence of any kind."""
        return self.cycle | self.chain | self.fan_in | self.fan_out

    def kind(self, name: str) -> np.ndarray:
        return getattr(self, name)


def _gaps(graph: TransactionGraph, accounts: np.ndarray) -> np.ndarray:
    """Positive gaps between consecutive transactions of the same account, over ``accounts`` (bool ``[N]``)."""
    if graph.time is None:
        return np.empty(0, dtype=np.int64)
    a = np.concatenate([graph.src[accounts[graph.src]], graph.dst[accounts[graph.dst]]])
    t = np.concatenate([graph.time[accounts[graph.src]], graph.time[accounts[graph.dst]]]).astype(np.int64)
    a, t = sorted_pairs(a, t)
    gaps = np.diff(t)[a[1:] == a[:-1]]
    return gaps[gaps > 0]


def _quantile(gaps: np.ndarray, q: float) -> int:
    return int(np.quantile(gaps, q)) if gaps.size else 0


def hop_window(graph: TransactionGraph, accounts: np.ndarray, quantile: float = 0.5) -> int:
    """Longest delay between receiving and passing money on: the ``quantile`` of the gaps between
    consecutive transactions of the same account, over the transactions of ``accounts`` (bool
    ``[N]``). Money moved on faster than an account's usual pace is what ties a flow together; the
    median gap is the data's own time scale (hours to days for payments), so no constant is tuned to
    one dataset. 0 when there are no times or no gaps."""
    return _quantile(_gaps(graph, accounts), quantile)


# -- kernels (arrays sorted by account, then time) ------------------------------------------------
@njit(cache=True)
def _cycle_edges(indptr, dst, time, window, max_hops, budget, out):
    """Mark in ``out`` (bool, edge order = out-edge CSR order) every edge on a temporal cycle of 3 to
    ``max_hops`` hops found from its earliest edge, visiting at most ``budget`` hops per start edge."""
    num_edges = dst.size
    path_nodes = np.empty(max_hops + 1, dtype=np.int64)
    path_edges = np.empty(max_hops, dtype=np.int64)
    pos = np.empty(max_hops + 1, dtype=np.int64)
    src_of = np.empty(num_edges, dtype=np.int64)
    for a in range(indptr.size - 1):
        for e in range(indptr[a], indptr[a + 1]):
            src_of[e] = a
    for e0 in range(num_edges):
        a = src_of[e0]
        b = dst[e0]
        if a == b:
            continue
        path_nodes[0] = a
        path_nodes[1] = b
        path_edges[0] = e0
        depth = 1
        pos[1] = indptr[b] + np.searchsorted(time[indptr[b]:indptr[b + 1]], time[e0])
        steps = 0
        while depth >= 1 and steps < budget:
            node = path_nodes[depth]
            p = pos[depth]
            t_last = time[path_edges[depth - 1]]
            if p >= indptr[node + 1] or time[p] > t_last + window:
                depth -= 1
                continue
            pos[depth] = p + 1
            steps += 1
            nxt = dst[p]
            if nxt == a:
                if depth + 1 >= 3:
                    for k in range(depth):
                        out[path_edges[k]] = True
                    out[p] = True
                continue
            if depth + 1 >= max_hops:
                continue
            seen = False
            for k in range(depth + 1):
                if path_nodes[k] == nxt:
                    seen = True
                    break
            if seen:
                continue
            path_edges[depth] = p
            depth += 1
            path_nodes[depth] = nxt
            pos[depth] = indptr[nxt] + np.searchsorted(time[indptr[nxt]:indptr[nxt + 1]], time[p])


@njit(cache=True)
def _chain_edges(in_indptr, in_src, in_time, in_amount, in_id, src, dst, time, amount, window, tolerance, budget, out):
    """For each edge ``b -> c`` (arrays ``src``/``dst``/``time``/``amount``, ids = positions), look
    back over ``b``'s in-edges (CSR by destination, time-sorted, ``in_id`` their positions) within
    ``window`` for one it forwards; mark both in ``out``."""
    for e in range(src.size):
        b = src[e]
        c = dst[e]
        lo, hi = in_indptr[b], in_indptr[b + 1]
        first = lo + np.searchsorted(in_time[lo:hi], time[e] - window)
        seen = 0
        for q in range(first, hi):
            if in_time[q] > time[e] or seen >= budget:
                break
            seen += 1
            if in_src[q] == c:
                continue
            x1 = in_amount[q]
            if amount[e] <= x1 and amount[e] >= (1.0 - tolerance) * x1:
                out[e] = True
                out[in_id[q]] = True


@njit(cache=True)
def _fan_edges(indptr, other, time, window, need, num_accounts, out):
    """Per account (CSR ``indptr`` over its time-sorted edges, ``other`` the counterparty): mark the
    edges of every ``window`` holding at least ``need[account]`` distinct counterparties."""
    count = np.zeros(num_accounts, dtype=np.int64)
    for a in range(indptr.size - 1):
        lo, hi = indptr[a], indptr[a + 1]
        distinct = 0
        start = lo
        marked = lo - 1
        for i in range(lo, hi):
            o = other[i]
            if count[o] == 0:
                distinct += 1
            count[o] += 1
            while time[i] - time[start] > window:
                count[other[start]] -= 1
                if count[other[start]] == 0:
                    distinct -= 1
                start += 1
            if distinct >= need[a]:
                for k in range(max(start, marked + 1), i + 1):
                    out[k] = True
                marked = i
        for i in range(start, hi):
            count[other[i]] = 0


def _recurring(src: np.ndarray, dst: np.ndarray, time: np.ndarray, n: int, span: int) -> np.ndarray:
    """bool per edge: its payer -> payee pair transacts over more than ``span`` (first to last)."""
    key = src * n + dst
    pairs, inv = np.unique(key, return_inverse=True)
    first = np.full(pairs.size, np.iinfo(np.int64).max)
    last = np.full(pairs.size, np.iinfo(np.int64).min)
    np.minimum.at(first, inv, time)
    np.maximum.at(last, inv, time)
    return (last - first)[inv] > span


def _fan_need(degree: np.ndarray, window: int, span: int, min_fan: int, p: float) -> np.ndarray:
    """Per account: the fewest distinct counterparties in one window that its own pace (``degree``
    flow edges over ``span``) makes less likely than ``p`` (Poisson tail), and at least ``min_fan``."""
    from scipy.stats import poisson

    values, inverse = np.unique(degree, return_inverse=True)  # one tail per distinct degree
    rate = values * (window / max(span, 1))
    need = poisson.isf(p, np.maximum(rate, 1e-12)) + 1  # smallest c with P(X >= c) <= p
    return np.maximum(need, min_fan).astype(np.int64)[inverse]


def find_flow_evidence(graph: TransactionGraph, accounts: np.ndarray, *, max_hops: int = 6, tolerance: float = 0.1,
                       min_fan: int = 3, fan_p: float = 1e-3, window_quantile: float = 0.5, budget: int = 4096,
                       recurring_quantile: Optional[float] = 0.9, window: Optional[int] = None) -> FlowEvidence:
    """Flow structures around the set ``accounts`` (bool ``[N]``); see the module docstring.

    Args:
        graph: directed transactions with times (without times, or undirected, nothing is found).
        accounts: bool ``[N]``.
        max_hops: longest temporal cycle (hops = accounts).
        tolerance: share of an incoming amount a chain hop may keep (fees, skims).
        min_fan: fewest distinct counterparties of a fan burst.
        fan_p: Poisson tail probability below which a window's counterparties count as a burst.
        window_quantile: quantile of same-account transaction gaps used as the hop window.
        budget: most partial paths per cycle start edge, in-edges scanned per chain edge.
        recurring_quantile: pairs whose transactions span more than this quantile of the
            same-account gaps are standing relationships and no flow edges (None: keep all).
        window: the hop window, overriding the quantile (time unit of the input).
    """
    accounts = np.asarray(accounts, dtype=bool)
    s, d = graph.src, graph.dst
    idx = np.flatnonzero((accounts[s] | accounts[d]) & (s != d)) if graph.directed else np.empty(0, np.int64)
    f = idx.size
    empty = np.zeros(f, dtype=bool)
    if graph.time is None or f == 0:
        return FlowEvidence(idx, empty, empty.copy(), empty.copy(), empty.copy(), 0)
    gaps = _gaps(graph, accounts)
    w = int(window) if window is not None else _quantile(gaps, window_quantile)
    n = graph.num_accounts
    span = int(graph.time[idx].max() - graph.time[idx].min())  # of all the set's transactions
    standing = np.empty(0, dtype=np.int64)
    if recurring_quantile is not None:
        recurring = _recurring(s[idx], d[idx], graph.time[idx].astype(np.int64), n,
                               _quantile(gaps, recurring_quantile))
        idx, standing = idx[~recurring], idx[recurring]
        f = idx.size
        empty = np.zeros(f, dtype=bool)
        if f == 0:
            return FlowEvidence(idx, empty, empty.copy(), empty.copy(), empty.copy(), w, standing)
    src, dst, time = s[idx], d[idx], graph.time[idx].astype(np.int64)
    amount = graph.amount[idx].astype(np.float64) if graph.amount is not None else None

    by_src, out_ptr = csr_order(src, time, n)
    by_dst, in_ptr = csr_order(dst, time, n)
    cycle = np.zeros(f, dtype=bool)
    mark = np.zeros(f, dtype=bool)
    _cycle_edges(out_ptr, dst[by_src], time[by_src], w, max_hops, budget, mark)
    cycle[by_src] = mark

    chain = np.zeros(f, dtype=bool)
    if amount is not None:
        _chain_edges(in_ptr, src[by_dst], time[by_dst], amount[by_dst], by_dst, src, dst, time, amount,
                     w, float(tolerance), budget, chain)

    # fan spokes: only between two accounts of the set (a busy account's unrelated payers are no burst)
    both = np.flatnonzero(accounts[src] & accounts[dst])
    fs, fd, ft = src[both], dst[both], time[both]
    fans = []
    for key, other in ((fd, fs), (fs, fd)):
        order, ptr = csr_order(key, ft, n)
        need = _fan_need(np.bincount(key, minlength=n), w, span, min_fan, fan_p)
        mark = np.zeros(both.size, dtype=bool)
        _fan_edges(ptr, other[order], ft[order], w, need, n, mark)
        got = np.zeros(f, dtype=bool)
        got[both[order[mark]]] = True
        fans.append(got)
    return FlowEvidence(idx, cycle, chain, fans[0], fans[1], w, standing)
