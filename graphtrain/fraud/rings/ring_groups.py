"""Candidate rings: groups of high-risk accounts tied together by their transactions.

1. **High-risk accounts.** Accounts scoring at least ``threshold`` are the core; with
   ``grow_threshold``, accounts scoring at least that much join when they transact with two or more
   distinct core accounts that make up at least ``grow_min_share`` of their counterparties (rings
   are rarely scored uniformly; the share keeps hubs out).
2. **Components** of the high-risk accounts and the transactions among them (distinct account
   pairs, direction ignored), after cutting bridges with ``min_size`` or more accounts on both sides
   (two rings joined by one stray transaction, see :mod:`graphtrain.fraud.rings.bridges`).
3. **Cycles and communities.** A component whose shape is none of the typologies (see
   :mod:`graphtrain.fraud.rings.ring_shapes`) and that is large enough to hold two rings first gives up
   its cycle-shaped strongly connected parts (money going round); what is left is split into
   Louvain communities (modularity at resolution 0.5, seeded). A component that has a typology's
   shape is kept whole.
4. **Oversized groups** (more than ``max_size`` members) are cut by FRAUDAR-style peeling
   (:mod:`graphtrain.fraud.rings.peeling`): the densest block (scores as node priors, camouflage-resistant
   edge weights) becomes a group and the rest is split into components again, until nothing
   oversized is left.

Groups smaller than ``min_size`` are dropped at every step. Memory: O(E) booleans for the edge
mask plus O(edges among high-risk accounts); the community and peeling steps are in-memory graph
algorithms over the high-risk subgraph only.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional

import numpy as np

from graphtrain.errors import ConfigError
from graphtrain.fraud.data.transaction_graph import TransactionGraph
from graphtrain.fraud.rings.bridges import substantial_bridges
from graphtrain.fraud.rings.peeling import camouflage_resistant_weights, peel_densest
from graphtrain.fraud.rings.ring_shapes import guess_shape
from graphtrain.log import get_logger

log = get_logger("fraud.rings")

# below 1, Louvain prefers fewer, larger communities: rings joined by stray transactions still come
# apart, and a long cycle inside a merged group is less often cut into arcs
LOUVAIN_RESOLUTION = 0.5


@dataclass(frozen=True)
class RingConfig:
    """Ring detection settings.

    Attributes:
        threshold: accounts with score >= threshold are high-risk (the core).
        grow_threshold: accounts with score >= this (and below ``threshold``) join when linked to
            >= 2 distinct core accounts that make up at least ``grow_min_share`` of their
            counterparties; None = no growing.
        grow_min_share: see ``grow_threshold``.
        min_size: smallest ring reported (members).
        max_size: groups larger than this are cut by dense-subgraph peeling.
        seed: seed of the community detection.
    """

    threshold: float
    grow_threshold: Optional[float] = None
    grow_min_share: float = 0.25
    min_size: int = 3
    max_size: int = 40
    seed: int = 0

    def validate(self) -> "RingConfig":
        if not np.isfinite(self.threshold):
            raise ConfigError(f"ring threshold must be a finite number, got {self.threshold}")
        if self.grow_threshold is not None and not self.grow_threshold <= self.threshold:
            raise ConfigError(f"grow threshold {self.grow_threshold} must not exceed the threshold {self.threshold}")
        if not 0 <= self.grow_min_share <= 1:
            raise ConfigError(f"grow_min_share must be in [0, 1], got {self.grow_min_share}")
        if not 2 <= self.min_size <= self.max_size:
            raise ConfigError(f"need 2 <= min ring size <= max ring size, got {self.min_size} and {self.max_size}")
        return self


def high_risk_accounts(graph: TransactionGraph, scores: np.ndarray, config: RingConfig) -> np.ndarray:
    """bool ``[N]``: the core plus the grown accounts (step 1)."""
    core = scores >= config.threshold
    if config.grow_threshold is None:
        return core
    n = graph.num_accounts
    cand = (scores >= config.grow_threshold) & ~core
    s, d = graph.src, graph.dst
    touch = cand[s] | cand[d]
    c = np.where(cand[s[touch]], s[touch], d[touch])  # the candidate end (either, if both are)
    k = np.where(cand[s[touch]], d[touch], s[touch])
    pairs = np.unique(c * n + k)
    partners = np.bincount(pairs // n, minlength=n)
    links = np.bincount(pairs[core[pairs % n]] // n, minlength=n)
    share = links / np.maximum(partners, 1)
    return core | (cand & (links >= 2) & (share >= config.grow_min_share))


def undirected_pairs(n: int, src: np.ndarray, dst: np.ndarray, weight: np.ndarray):
    """Distinct unordered pairs ``(u < v)`` with the largest weight among their edges; self-loops dropped."""
    keep = src != dst
    u = np.minimum(src[keep], dst[keep])
    v = np.maximum(src[keep], dst[keep])
    key = u * n + v
    order = np.lexsort((-weight[keep], key))
    key, w = key[order], weight[keep][order]
    first = np.ones(key.size, dtype=bool)
    first[1:] = key[1:] != key[:-1]
    return key[first] // n, key[first] % n, w[first]


def components(n: int, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """int ``[n]`` connected-component label of each node of an undirected graph."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    adj = coo_matrix((np.ones(u.size), (u, v)), shape=(n, n)).tocsr()
    return connected_components(adj, directed=False)[1]


def _groups_of(labels: np.ndarray, nodes: np.ndarray) -> List[np.ndarray]:
    """Split ``nodes`` by their ``labels`` (sorted node arrays)."""
    lab = labels[nodes]
    order = np.argsort(lab, kind="stable")
    return [np.sort(g) for g in np.split(nodes[order], np.flatnonzero(np.diff(lab[order])) + 1)] if nodes.size else []


class _RiskSubgraph:
    """The high-risk accounts (local ids ``0 .. n-1``) with their distinct directed pairs and undirected weights."""

    def __init__(self, graph: TransactionGraph, risky: np.ndarray, scores: np.ndarray):
        self.accounts = np.flatnonzero(risky)
        n = self.n = self.accounts.size
        local = np.full(graph.num_accounts, -1, dtype=np.int64)
        local[self.accounts] = np.arange(n)
        inside = risky[graph.src] & risky[graph.dst]
        src, dst = local[graph.src[inside]], local[graph.dst[inside]]
        in_degree = np.bincount(graph.dst, minlength=graph.num_accounts)
        weight = camouflage_resistant_weights(in_degree[graph.dst[inside]])
        keep = src != dst
        key = np.unique(src[keep] * n + dst[keep])
        self.src, self.dst = key // n, key % n  # distinct directed pairs
        self.u, self.v, self.w = undirected_pairs(n, src, dst, weight)
        self.prior = np.clip(scores[self.accounts], 0.0, None)
        # each account's rank by raw ID: community detection visits nodes in this order, so the rings
        # do not depend on how accounts are numbered (account-table rows, or a dataset's global IDs)
        self.rank = np.empty(n, dtype=np.int64)
        self.rank[np.argsort(graph.accounts.ids[self.accounts], kind="stable")] = np.arange(n)

    def induced(self, nodes: np.ndarray, directed: bool):
        """Edges among ``nodes`` in positions of ``nodes``: ``(src, dst)`` directed or ``(u, v, w)`` undirected."""
        pos = np.full(self.n, -1, dtype=np.int64)
        pos[nodes] = np.arange(nodes.size)
        if directed:
            keep = (pos[self.src] >= 0) & (pos[self.dst] >= 0)
            return pos[self.src[keep]], pos[self.dst[keep]]
        keep = (pos[self.u] >= 0) & (pos[self.v] >= 0)
        return pos[self.u[keep]], pos[self.v[keep]], self.w[keep]

    def shape(self, nodes: np.ndarray) -> str:
        return guess_shape(nodes.size, *self.induced(nodes, directed=True))[0]


def _louvain(sub: _RiskSubgraph, nodes: np.ndarray, seed: int) -> List[np.ndarray]:
    import networkx as nx

    u, v, w = sub.induced(nodes, directed=False)
    # nodes and edges inserted in raw-ID order (networkx's Louvain visits them in insertion order)
    rank = np.argsort(np.argsort(sub.rank[nodes], kind="stable"), kind="stable")
    ru, rv = np.minimum(rank[u], rank[v]), np.maximum(rank[u], rank[v])
    order = np.lexsort((rv, ru))
    g = nx.Graph()
    g.add_nodes_from(range(nodes.size))
    g.add_weighted_edges_from(zip(ru[order].tolist(), rv[order].tolist(), w[order].tolist()))
    by_rank = nodes[np.argsort(rank)]
    parts = nx.community.louvain_communities(g, weight="weight", seed=seed, resolution=LOUVAIN_RESOLUTION)
    return [np.sort(by_rank[np.fromiter(p, dtype=np.int64)]) for p in parts]


def _cycles_apart(sub: _RiskSubgraph, nodes: np.ndarray, min_size: int) -> List[np.ndarray]:
    """Split off the cycle-shaped strongly connected parts of a group (none: empty list).

    Money that goes round is a strongly connected component of the directed transactions; the other
    typologies are acyclic, and stray transactions rarely close a loop, so a cycle ring joined to
    other rings is still its own strongly connected component.
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    src, dst = sub.induced(nodes, directed=True)
    adj = coo_matrix((np.ones(src.size), (src, dst)), shape=(nodes.size, nodes.size)).tocsr()
    labels = connected_components(adj, directed=True, connection="strong")[1]
    cycles = [c for c in _groups_of(labels, np.arange(nodes.size))
              if c.size >= min_size and sub.shape(nodes[c]) == "cycle"]
    if not cycles or (len(cycles) == 1 and cycles[0].size == nodes.size):
        return []
    rest = np.ones(nodes.size, dtype=bool)
    for c in cycles:
        rest[c] = False
    keep = rest[src] & rest[dst]
    left = components(nodes.size, src[keep], dst[keep])
    pieces = [nodes[c] for c in cycles]
    pieces += [nodes[p] for p in _groups_of(left, np.flatnonzero(rest))]
    return pieces


def _peel_apart(sub: _RiskSubgraph, nodes: np.ndarray, config: RingConfig) -> List[np.ndarray]:
    """Cut an oversized group by repeated densest-block peeling (step 4)."""
    done: List[np.ndarray] = []
    pending = [nodes]
    while pending:
        part = pending.pop()
        if part.size < config.min_size:
            continue
        if part.size <= config.max_size:
            done.append(part)
            continue
        u, v, w = sub.induced(part, directed=False)
        block = np.sort(peel_densest(part.size, u, v, w, sub.prior[part]).nodes[-config.max_size:])
        in_block = np.zeros(part.size, dtype=bool)
        in_block[block] = True
        keep = in_block[u] == in_block[v]  # edges inside the block or inside the rest
        labels = components(part.size, u[keep], v[keep])
        for piece in _groups_of(labels, np.arange(part.size)):
            if in_block[piece[0]]:
                done.extend([part[piece]] if piece.size >= config.min_size else [])
            else:
                pending.append(part[piece])
    return done


def find_groups(graph: TransactionGraph, scores: np.ndarray, config: RingConfig,
                high_risk: Optional[np.ndarray] = None) -> List[np.ndarray]:
    """Account indices of each candidate ring (sorted arrays; steps 1-4), in no particular order.

    ``high_risk``: step 1's bool ``[N]`` when already known (computed on a larger graph than ``graph``).
    """
    risky = high_risk if high_risk is not None else high_risk_accounts(graph, scores, config)
    sub = _RiskSubgraph(graph, risky, scores)
    cut = substantial_bridges(sub.n, sub.u, sub.v, config.min_size)
    labels = components(sub.n, sub.u[~cut], sub.v[~cut])
    groups: List[np.ndarray] = []
    pending = [c for c in _groups_of(labels, np.arange(sub.n)) if c.size >= config.min_size]
    while pending:
        group = pending.pop()
        if group.size >= 2 * config.min_size and sub.shape(group) == "other":
            parts = _cycles_apart(sub, group, config.min_size) or _louvain(sub, group, config.seed)
            if len(parts) > 1:
                pending.extend(p for p in parts if p.size >= config.min_size)
                continue
        groups.extend(_peel_apart(sub, group, config) if group.size > config.max_size else [group])
    log.info("rings: %d high-risk accounts, %d groups of >= %d", sub.n, len(groups), config.min_size)
    return [sub.accounts[g] for g in groups]
