"""Guess a ring's typology and its members' roles from the shape of its internal transactions.

Only the distinct directed pairs inside the ring count (repeated transactions between the same two
accounts are one pair). With ``n`` members, internal out- and in-degrees ``out_d``/``in_d``:

- ``cycle``: every member sends and receives, the pairs form one strongly connected cycle-like
  graph (at most ``n + n // 4`` pairs, every in/out degree at most 2).
- ``scatter_gather``: one member (origin) sends to at least 60% of the others, another
  (beneficiary) receives from at least 60% of the others, and the rest mostly both receive and send.
- ``bipartite``: members split into pure senders and pure receivers, at least two of each, and at
  least half of the sender x receiver pairs transact.
- ``fan_in``: one member receives from at least 60% of the others.
- ``fan_out``: one member sends to at least 60% of the others.
- ``other``: none of these.

The checks run in this order. Roles use the ground truth's names (see
:mod:`graphtrain.fraud.synth.typologies`); members of ``other`` rings are ``hub`` (degree at least
half the others) or ``member``.

An undirected graph has no payers and payees, so :func:`guess_undirected_shape` names no direction
roles: ``star`` (one member linked to at least 60% of the others: ``hub``, the rest ``member``),
``cycle`` (every member linked to exactly two others, ``member``), else ``other`` (``hub`` /
``member`` as above).
"""
from __future__ import annotations

from typing import List, Tuple

import numpy as np
from numba import njit

TYPOLOGY_GUESSES = ("cycle", "scatter_gather", "bipartite", "fan_in", "fan_out", "other")
HUB_SHARE = 0.6


def _distinct_pairs(n: int, src: np.ndarray, dst: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    keep = src != dst
    key = np.unique(src[keep].astype(np.int64) * n + dst[keep])
    return key // n, key % n


@njit(cache=True)
def _reaches_all(n, first, second):  # pragma: no cover - compiled
    """Whether every node ``0 .. n-1`` is reached from node 0 along the edges ``first[i] -> second[i]``."""
    indptr = np.zeros(n + 1, dtype=np.int64)
    for a in first:
        indptr[a + 1] += 1
    for i in range(n):
        indptr[i + 1] += indptr[i]
    fill = indptr[:-1].copy()
    heads = np.empty(first.size, dtype=np.int64)
    for i in range(first.size):
        heads[fill[first[i]]] = second[i]
        fill[first[i]] += 1
    seen = np.zeros(n, dtype=np.bool_)
    todo = np.empty(n, dtype=np.int64)
    seen[0], todo[0], top, count = True, 0, 1, 1
    while top:
        top -= 1
        x = todo[top]
        for k in range(indptr[x], indptr[x + 1]):
            y = heads[k]
            if not seen[y]:
                seen[y] = True
                todo[top] = y
                top += 1
                count += 1
    return count == n


def _strongly_connected(n: int, src: np.ndarray, dst: np.ndarray) -> bool:
    """Whether the directed graph on ``0 .. n-1`` (``n >= 1``) is one strongly connected component:
    node 0 reaches every node and every node reaches node 0. Linear time."""
    return bool(_reaches_all(n, src, dst) and _reaches_all(n, dst, src))


def guess_shape(n: int, src, dst) -> Tuple[str, List[str]]:
    """Typology guess and role per member of a ring with members ``0 .. n-1``.

    Args:
        n: number of members.
        src, dst: int ``[m]`` local indices of the ring's internal transactions (payer, payee).

    Returns:
        ``(typology, roles)``: one of :data:`TYPOLOGY_GUESSES` and ``n`` role names.
    """
    src = np.asarray(src, dtype=np.int64)
    dst = np.asarray(dst, dtype=np.int64)
    s, d = _distinct_pairs(n, src, dst)
    out_d = np.bincount(s, minlength=n)
    in_d = np.bincount(d, minlength=n)
    need = max(2, int(np.ceil(HUB_SHARE * (n - 1))))

    if n >= 3 and np.all(out_d >= 1) and np.all(in_d >= 1) and s.size <= n + n // 4 \
            and out_d.max() <= 2 and in_d.max() <= 2 and _strongly_connected(n, s, d):
        return "cycle", ["link"] * n

    if n >= 4:
        origin = int(np.argmax(out_d))
        in_rest = in_d.copy()
        in_rest[origin] = -1
        beneficiary = int(np.argmax(in_rest))
        need_sg = max(2, int(np.ceil(HUB_SHARE * (n - 2))))
        middle = np.ones(n, dtype=bool)
        middle[[origin, beneficiary]] = False
        relays = (in_d[middle] >= 1) & (out_d[middle] >= 1)
        if out_d[origin] >= need_sg and in_d[beneficiary] >= need_sg and relays.mean() >= 0.6:
            roles = ["intermediate"] * n
            roles[origin], roles[beneficiary] = "origin", "beneficiary"
            return "scatter_gather", roles

    senders = (in_d == 0) & (out_d > 0)
    receivers = (out_d == 0) & (in_d > 0)
    ns, nr = int(senders.sum()), int(receivers.sum())
    if ns >= 2 and nr >= 2 and ns + nr >= 0.9 * n and s.size >= 0.5 * ns * nr:
        return "bipartite", ["sender" if senders[i] else "receiver" if receivers[i] else "member" for i in range(n)]

    if n >= 3 and in_d.max() >= need:
        hub = int(np.argmax(in_d))
        roles = ["source"] * n
        roles[hub] = "collector"
        return "fan_in", roles
    if n >= 3 and out_d.max() >= need:
        hub = int(np.argmax(out_d))
        roles = ["recipient"] * n
        roles[hub] = "distributor"
        return "fan_out", roles

    degree = np.bincount(np.concatenate([s, d]), minlength=n)
    return "other", ["hub" if degree[i] >= max(2, (n - 1) / 2) else "member" for i in range(n)]


def guess_undirected_shape(n: int, src, dst) -> Tuple[str, List[str]]:
    """:func:`guess_shape` for an undirected graph (``src``/``dst`` pairs in either or both directions)."""
    src = np.asarray(src, dtype=np.int64)
    dst = np.asarray(dst, dtype=np.int64)
    lo, hi = np.minimum(src, dst), np.maximum(src, dst)
    u, v = _distinct_pairs(n, lo, hi)
    degree = np.bincount(np.concatenate([u, v]), minlength=n)
    need = max(2, int(np.ceil(HUB_SHARE * (n - 1))))
    if n >= 3 and u.size == n and np.all(degree == 2):
        return "cycle", ["member"] * n
    if n >= 3 and degree.max() >= need:
        hub = int(np.argmax(degree))
        roles = ["member"] * n
        roles[hub] = "hub"
        return "star", roles
    return "other", ["hub" if degree[i] >= max(2, (n - 1) / 2) else "member" for i in range(n)]
