"""Numba kernels of the partitioner (internal). Pure functions over arrays; no Python objects.

Keys are 64-bit hashes (``mix64`` of int IDs -- a bijection -- or the string hash of
:func:`graphtrain.kernels.rng.hash_bytes`). For string keys, equal hashes are confirmed by
comparing the bytes (``offsets``/``data`` buffers), so hash collisions never merge two IDs.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

_M1_INV = np.uint64(pow(0xBF58476D1CE4E5B9, -1, 1 << 64))
_M2_INV = np.uint64(pow(0x94D049BB133111EB, -1, 1 << 64))


def unmix64_np(h: np.ndarray) -> np.ndarray:
    """Inverse of :func:`graphtrain.kernels.rng.mix64_np`: recovers int IDs from their hashes."""
    z = np.asarray(h, dtype=np.uint64).copy()
    with np.errstate(over="ignore"):
        z ^= (z >> np.uint64(31)) ^ (z >> np.uint64(62))
        z *= _M2_INV
        z ^= (z >> np.uint64(27)) ^ (z >> np.uint64(54))
        z *= _M1_INV
        z ^= (z >> np.uint64(30)) ^ (z >> np.uint64(60))
    return z.view(np.int64)


@njit(cache=True, nogil=True)
def _bytes_equal(offsets, data, i, j):
    a0, a1 = offsets[i], offsets[i + 1]
    b0, b1 = offsets[j], offsets[j + 1]
    if a1 - a0 != b1 - b0:
        return False
    for k in range(a1 - a0):
        if data[a0 + k] != data[b0 + k]:
            return False
    return True


@njit(cache=True, nogil=True)
def _bytes_less(offsets, data, i, j):
    a0, a1 = offsets[i], offsets[i + 1]
    b0, b1 = offsets[j], offsets[j + 1]
    n = min(a1 - a0, b1 - b0)
    for k in range(n):
        if data[a0 + k] != data[b0 + k]:
            return data[a0 + k] < data[b0 + k]
    return a1 - a0 < b1 - b0


def group_shift(num_groups: int) -> int:
    """Shift that maps a uint64 hash to one of ``num_groups`` (a power of two) groups by its top bits."""
    bits = int(num_groups).bit_length() - 1
    if num_groups < 1 or (1 << bits) != num_groups:
        raise ValueError(f"number of groups must be a power of two, got {num_groups}")
    return 64 - bits


@njit(cache=True, nogil=True)
def group_of(hv, shift, num_groups):
    """Group of hash ``hv``: bits ``[shift, shift + log2(num_groups))`` (0 with one group).

    With ``shift = group_shift(G)`` these are the top bits; a smaller shift selects the next bits,
    which splits keys that already share their top bits (one bucket) into sub-groups in hash order.
    """
    if shift >= 64:
        return np.int64(0)
    return np.int64((hv >> np.uint64(shift)) & np.uint64(num_groups - 1))


@njit(cache=True, nogil=True)
def group_order(h, shift, num_groups):
    """Stable counting sort of positions by group :func:`group_of` ``(h, shift, num_groups)``.

    Returns:
        ``(starts, order)``: group ``g`` holds positions ``order[starts[g]:starts[g + 1]]``.
    """
    n = h.shape[0]
    starts = np.zeros(num_groups + 1, dtype=np.int64)
    for i in range(n):
        starts[group_of(h[i], shift, num_groups) + 1] += 1
    for g in range(num_groups):
        starts[g + 1] += starts[g]
    fill = starts[:-1].copy()
    order = np.empty(n, dtype=np.int64)
    for i in range(n):
        g = group_of(h[i], shift, num_groups)
        order[fill[g]] = i
        fill[g] += 1
    return starts, order


@njit(cache=True, nogil=True)
def _regrow(tkeys, tvals, cap):
    """Re-insert an open-addressing table (inline uint64 keys, int64 values; -1 = empty) into ``cap`` slots."""
    new_keys = np.empty(cap, dtype=np.uint64)
    new_vals = np.full(cap, -1, dtype=np.int64)
    mask = np.uint64(cap - 1)
    for s in range(tvals.shape[0]):
        if tvals[s] >= 0:
            t = np.int64(tkeys[s] & mask)
            while new_vals[t] >= 0:
                t = (t + 1) & np.int64(cap - 1)
            new_keys[t] = tkeys[s]
            new_vals[t] = tvals[s]
    return new_keys, new_vals


@njit(cache=True, nogil=True)
def dedupe_small(h, offsets, data, is_string, max_distinct):
    """Distinct keys of ``h`` in first-seen order, if there are at most ``max_distinct`` of them.

    One growing open-addressing table holding the hashes inline, read in input order: the fastest
    method while the table stays cache-resident. Gives up (returns ``first`` of length 0 and
    ``ok = False``) once more than ``max_distinct`` distinct keys appear; use
    :func:`dedupe_grouped` then.

    Returns:
        ``(ok, first, inverse)`` as in :func:`dedupe_grouped` (one group).
    """
    n = h.shape[0]
    cap = 1024
    tkeys = np.empty(cap, dtype=np.uint64)
    tvals = np.full(cap, -1, dtype=np.int64)
    first = np.empty(max(1, min(n, 1024)), dtype=np.int64)
    inverse = np.empty(n, dtype=np.int64)
    nu = 0
    for i in range(n):
        hv = h[i]
        slot = np.int64(hv & np.uint64(cap - 1))
        while True:
            u = tvals[slot]
            if u == -1:
                if nu == max_distinct:
                    return False, first[:0].copy(), inverse[:0].copy()
                if nu == first.shape[0]:
                    grown = np.empty(min(n, 2 * first.shape[0]), dtype=np.int64)
                    grown[:nu] = first[:nu]
                    first = grown
                first[nu] = i
                tkeys[slot] = hv
                tvals[slot] = nu
                inverse[i] = nu
                nu += 1
                if 2 * nu > cap:  # keep the load factor <= 1/2
                    cap *= 2
                    tkeys, tvals = _regrow(tkeys, tvals, cap)
                break
            if tkeys[slot] == hv and (not is_string or _bytes_equal(offsets, data, i, first[u])):
                inverse[i] = u
                break
            slot = (slot + 1) & np.int64(cap - 1)
    return True, first[:nu].copy(), inverse


SMALL_DISTINCT = 1 << 20  # a table of 2M slots x 16 bytes = 32 MiB: about an L3 cache


def dedupe(h, offsets, data, is_string):
    """``(first, inverse)`` of ``h`` in some order: single table when few keys are distinct, radix groups otherwise."""
    ok, first, inverse = dedupe_small(h, offsets, data, is_string, SMALL_DISTINCT)
    if ok:
        return first, inverse
    groups = groups_for(h.shape[0])
    first, _, inverse = dedupe_grouped(h, group_shift(groups), groups, offsets, data, is_string, False)
    return first, inverse


@njit(cache=True, nogil=True)
def _dedupe_run(hg, pos, lo, hi, offsets, data, is_string, firstg, lin):
    """De-duplicate ``hg[lo:hi]`` with a growing inline-key table (load <= 1/2).

    ``pos[k]`` is element ``k``'s position in the caller's original order (for byte compares).
    Writes ``firstg[lo + u]`` (grouped position of distinct key ``u``'s first occurrence) and
    ``lin[k]`` (distinct index of element ``k``); returns the number of distinct keys.
    """
    cap = 64
    while cap < 2 * min(hi - lo, 4096):
        cap *= 2
    tkeys = np.empty(cap, dtype=np.uint64)
    tvals = np.full(cap, -1, dtype=np.int64)
    nu = 0
    for k in range(lo, hi):
        hv = hg[k]
        slot = np.int64(hv & np.uint64(cap - 1))
        while True:
            u = tvals[slot]
            if u == -1:
                firstg[lo + nu] = k
                tkeys[slot] = hv
                tvals[slot] = nu
                lin[k] = nu
                nu += 1
                if 2 * nu > cap:  # keep the load factor <= 1/2
                    cap *= 2
                    tkeys, tvals = _regrow(tkeys, tvals, cap)
                break
            if tkeys[slot] == hv and (not is_string or _bytes_equal(offsets, data, pos[k], pos[firstg[lo + u]])):
                lin[k] = u
                break
            slot = (slot + 1) & np.int64(cap - 1)
    return nu


@njit(cache=True, parallel=True)
def dedupe_grouped(h, shift, num_groups, offsets, data, is_string, sort_uniques):
    """Distinct keys of ``h``, grouped by :func:`group_of`, with the index of each element's key.

    Keys are radix-partitioned by hash bits into groups first, so each group's table is small
    (cache-resident) whether few or all keys are distinct; groups run in parallel.

    Args:
        h: uint64 ``[n]`` key hashes.
        shift, num_groups: group of a key is ``group_of(h, shift, num_groups)``; keys sorted by
            group then hash are in global hash order when the groups are the top bits (or the
            next bits of keys sharing their top bits).
        offsets, data: string buffers of the keys when ``is_string`` (else pass empties).
        is_string: confirm equal hashes by comparing bytes.
        sort_uniques: order each group's distinct keys by (hash, bytes); otherwise first-seen order.

    Returns:
        ``(first, ustarts, inverse)``: ``first[u]`` is the position in ``h`` of distinct key ``u``'s
        first occurrence; distinct keys of group ``g`` are ``u in [ustarts[g], ustarts[g + 1])``;
        ``inverse[i]`` is the distinct-key index of element ``i``.
    """
    n = h.shape[0]
    starts, order = group_order(h, shift, num_groups)
    hg = np.empty(n, dtype=np.uint64)
    for k in prange(n):
        hg[k] = h[order[k]]
    firstg = np.empty(n, dtype=np.int64)
    lin = np.empty(n, dtype=np.int64)
    ucount = np.zeros(num_groups, dtype=np.int64)
    for g in prange(num_groups):
        lo = starts[g]
        hi = starts[g + 1]
        if hi == lo:
            continue
        nu = _dedupe_run(hg, order, lo, hi, offsets, data, is_string, firstg, lin)
        ucount[g] = nu
        if sort_uniques and nu > 1:
            keys = np.empty(nu, dtype=np.uint64)
            for u in range(nu):
                keys[u] = hg[firstg[lo + u]]
            perm = np.argsort(keys)
            if is_string:
                orig = np.empty(nu, dtype=np.int64)
                for u in range(nu):
                    orig[u] = order[firstg[lo + u]]
                _sort_collision_runs(keys, perm, orig, 0, offsets, data)
            rank = np.empty(nu, dtype=np.int64)
            sorted_first = np.empty(nu, dtype=np.int64)
            for r in range(nu):
                rank[perm[r]] = r
                sorted_first[r] = firstg[lo + perm[r]]
            for r in range(nu):
                firstg[lo + r] = sorted_first[r]
            for k in range(lo, hi):
                lin[k] = rank[lin[k]]
    ustarts = np.zeros(num_groups + 1, dtype=np.int64)
    for g in range(num_groups):
        ustarts[g + 1] = ustarts[g] + ucount[g]
    first = np.empty(ustarts[num_groups], dtype=np.int64)
    inverse = np.empty(n, dtype=np.int64)
    for g in prange(num_groups):
        lo = starts[g]
        for u in range(ucount[g]):
            first[ustarts[g] + u] = order[firstg[lo + u]]
        for k in range(lo, starts[g + 1]):
            inverse[order[k]] = ustarts[g] + lin[k]
    return first, ustarts, inverse


def groups_for(n: int, at_least: int = 1, per_group: int = 16384, most: int = 1 << 16) -> int:
    """Power-of-two group count giving about ``per_group`` keys per group (>= ``at_least``)."""
    g = max(1, at_least)
    while g < most and n / g > per_group:
        g *= 2
    return g


@njit(cache=True, nogil=True)
def count_roles(inverse, num_first_role, num_keys):
    """Per distinct key: occurrences among elements ``[0, k)`` and among ``[k, n)`` (``k = num_first_role``)."""
    a = np.zeros(num_keys, dtype=np.int64)
    b = np.zeros(num_keys, dtype=np.int64)
    for i in range(num_first_role):
        a[inverse[i]] += 1
    for i in range(num_first_role, inverse.shape[0]):
        b[inverse[i]] += 1
    return a, b


@njit(cache=True, nogil=True)
def _sort_collision_runs(keys, perm, first_tmp, lo, offsets, data):
    """Within runs of equal hash (distinct strings that collide), order by bytes (insertion sort)."""
    nu = perm.shape[0]
    r = 0
    while r < nu:
        e = r + 1
        while e < nu and keys[perm[e]] == keys[perm[r]]:
            e += 1
        for a in range(r + 1, e):
            x = perm[a]
            b = a - 1
            while b >= r and _bytes_less(offsets, data, first_tmp[lo + x], first_tmp[lo + perm[b]]):
                perm[b + 1] = perm[b]
                b -= 1
            perm[b + 1] = x
        r = e




@njit(cache=True, nogil=True)
def label_order(labels, num_labels):
    """Stable counting sort by small non-negative int labels: ``(starts, order)`` as in :func:`group_order`."""
    n = labels.shape[0]
    starts = np.zeros(num_labels + 1, dtype=np.int64)
    for i in range(n):
        starts[labels[i] + 1] += 1
    for g in range(num_labels):
        starts[g + 1] += starts[g]
    fill = starts[:-1].copy()
    order = np.empty(n, dtype=np.int64)
    for i in range(n):
        g = labels[i]
        order[fill[g]] = i
        fill[g] += 1
    return starts, order


@njit(cache=True, nogil=True)
def csr_from_pairs(key_start, num_keys, keys, values):
    """CSR of ``(key, value)`` pairs with keys in ``[key_start, key_start + num_keys)``, stable.

    Returns:
        ``(indptr int64 [num_keys + 1], values_sorted, order)``: values of key ``key_start + i``
        are ``values_sorted[indptr[i]:indptr[i + 1]]`` in input order; ``order`` is the permutation.
    """
    n = keys.shape[0]
    indptr = np.zeros(num_keys + 1, dtype=np.int64)
    for i in range(n):
        indptr[keys[i] - key_start + 1] += 1
    for k in range(num_keys):
        indptr[k + 1] += indptr[k]
    fill = indptr[:-1].copy()
    order = np.empty(n, dtype=np.int64)
    for i in range(n):
        k = keys[i] - key_start
        order[fill[k]] = i
        fill[k] += 1
    out = np.empty(n, dtype=values.dtype)
    for j in range(n):
        out[j] = values[order[j]]
    return indptr, out, order


@njit(cache=True, nogil=True)
def ranks_in_part(part, node_bounds):
    """Global ID of each rid: ``node_bounds[part[r]] + (number of earlier rids in the same part)``."""
    fill = node_bounds[:-1].copy()
    g = np.empty(part.shape[0], dtype=np.int64)
    for r in range(part.shape[0]):
        p = part[r]
        g[r] = fill[p]
        fill[p] += 1
    return g


@njit(cache=True, nogil=True)
def _insertion_sort(order, lo, hi, key1, key2, has_key1):
    """Stable insertion sort of ``order[lo:hi]`` by (key1, key2) (key1 skipped if not has_key1)."""
    for a in range(lo + 1, hi):
        x = order[a]
        b = a - 1
        while b >= lo:
            y = order[b]
            if has_key1:
                if key1[y] < key1[x] or (key1[y] == key1[x] and key2[y] <= key2[x]):
                    break
            elif key2[y] <= key2[x]:
                break
            order[b + 1] = y
            b -= 1
        order[b + 1] = x


@njit(cache=True, parallel=True)
def sort_bin(local_dst, num_nodes, src, time, has_time, want_dups):
    """Order one bin's edges by (destination, time, source), stably, and flag repeated (src, dst) pairs.

    Args:
        local_dst: int64 ``[m]`` destination relative to the bin's first node, in ``[0, num_nodes)``.
        src: int64 ``[m]`` global source IDs.
        time: int64 ``[m]`` edge times (ignored unless ``has_time``).
        want_dups: compute ``dup``.

    Returns:
        ``(indptr [num_nodes + 1], order [m], dup [m] bool)``: the edges of node ``i`` are
        ``order[indptr[i]:indptr[i + 1]]``; ``dup[j]`` marks sorted position ``j`` as a repeat of an
        earlier (in sorted order) edge with the same source and destination.
    """
    m = local_dst.shape[0]
    indptr = np.zeros(num_nodes + 1, dtype=np.int64)
    for i in range(m):
        indptr[local_dst[i] + 1] += 1
    for v in range(num_nodes):
        indptr[v + 1] += indptr[v]
    fill = indptr[:-1].copy()
    order = np.empty(m, dtype=np.int64)
    for i in range(m):
        v = local_dst[i]
        order[fill[v]] = i
        fill[v] += 1
    dup = np.zeros(m if want_dups else 0, dtype=np.bool_)
    for v in prange(num_nodes):
        lo = indptr[v]
        hi = indptr[v + 1]
        d = hi - lo
        if d < 2:
            continue
        if d <= 32:
            _insertion_sort(order, lo, hi, time, src, has_time)
        else:
            seg = order[lo:hi].copy()
            p1 = np.argsort(src[seg], kind="mergesort")
            seg = seg[p1]
            if has_time:
                p2 = np.argsort(time[seg], kind="mergesort")
                seg = seg[p2]
            order[lo:hi] = seg
        if want_dups:
            if not has_time:
                for j in range(lo + 1, hi):
                    if src[order[j]] == src[order[j - 1]]:
                        dup[j] = True
            else:
                s = np.empty(d, dtype=np.int64)
                for j in range(d):
                    s[j] = src[order[lo + j]]
                p = np.argsort(s, kind="mergesort")  # equal sources keep time order
                for j in range(1, d):
                    if s[p[j]] == s[p[j - 1]]:
                        dup[lo + p[j]] = True
    return indptr, order, dup


@njit(cache=True, nogil=True)
def count_outside(src, lo, hi):
    """Number of ``src`` values outside ``[lo, hi)``."""
    c = 0
    for i in range(src.shape[0]):
        if src[i] < lo or src[i] >= hi:
            c += 1
    return c


@njit(cache=True, nogil=True)
def plan_bins(node_bounds, degree_by_global, max_edges):
    """Cut each partition's node range into bins of at most ``max_edges`` in-edges (>= 1 node each).

    Returns:
        int64 bin boundaries in global-ID space; every partition boundary is a bin boundary.
    """
    out = [np.int64(0)]
    for p in range(node_bounds.shape[0] - 1):
        lo, hi = node_bounds[p], node_bounds[p + 1]
        acc = 0
        for g in range(lo, hi):
            d = degree_by_global[g]
            if acc > 0 and acc + d > max_edges:
                out.append(np.int64(g))
                acc = 0
            acc += d
        if out[-1] != hi:
            out.append(np.int64(hi))
    res = np.empty(len(out), dtype=np.int64)
    for i in range(len(out)):
        res[i] = out[i]
    return res
