"""The per-entry body of one-hop neighbour sampling, written once and compiled per target.

:func:`make_hop_functions` compiles the same Python source with ``numba.njit`` (used by
:mod:`graphtrain.kernels.cpu`) and with ``numba.cuda.jit(device=True)`` (used by
:mod:`graphtrain.kernels.cuda`); :mod:`graphtrain.kernels.reference` implements the same
algorithms in NumPy. Only integer arithmetic, float64 additions and one multiplication per draw are
used (no ``log``/``pow``, whose last bit differs between libm, NumPy's SIMD code and CUDA), so all
three agree bit for bit for the same stream keys.

Algorithms, for one frontier entry with destination ``v`` (local), stream key ``key`` and fanout
``k`` (draw ``j`` of the entry is ``rand_*(key, j)``; ``d`` = number of eligible in-edges):

- **eligible edges**: all of ``v``'s in-edges; in temporal mode only those with
  ``time <= bound`` (``< bound`` when ``strict``). With time-sorted in-edges that is a prefix of the
  segment found by binary search (O(log deg)); otherwise each edge is tested (O(deg) scans).
- **uniform, without replacement**: all eligible edges (in CSC order) when ``d <= k``; otherwise
  Robert Floyd's algorithm over virtual indices ``[0, d)``: at step ``j`` draw
  ``t = rand_below(key, j, d - k + j + 1)``; keep ``t`` unless already taken, else take
  ``d - k + j``. Output order is the order of the steps. O(k^2) per entry.
- **uniform, with replacement**: ``k`` draws ``rand_below(key, j, d)`` (none when ``d == 0``).
- **recent** (temporal): the ``min(k, d)`` eligible edges with the largest ``(time, position)``,
  most recent first. No randomness.
- **weighted, with replacement**: draw ``j`` takes the first eligible edge whose running weight sum
  exceeds ``rand_unit(key, j) * total`` (inverse CDF, sequential sums in CSC order). O(k * deg).
- **weighted, without replacement**: successive sampling -- each of ``k`` rounds picks one of the
  not-yet-chosen eligible edges with probability proportional to its weight (the distribution of
  Efraimidis-Spirakis exponential keys, computed without logarithms); all positive-weight eligible
  edges when there are at most ``k``. Output in ascending edge position. O(k * deg).

Edges of weight 0 are never drawn; an entry whose eligible weights sum to 0 gets no edges.
The body writes edge *positions* (local edge indices) into ``slots[base : base + k]`` and returns
how many it wrote; drivers turn positions into source IDs and edge IDs.
"""
from __future__ import annotations

import numpy as np


def make_hop_functions(jit, rng):
    """Compile the per-entry sampling body with ``jit`` using the RNG functions ``rng``.

    Args:
        jit: ``numba.njit(...)`` or ``numba.cuda.jit(device=True)``.
        rng: dict from :func:`graphtrain.kernels.rng.make_rng_functions` for the same target.

    Returns:
        dict with ``sample_entry`` (see :func:`sample_entry` below for the arguments).
    """
    rand_below = rng["rand_below"]
    rand_unit = rng["rand_unit"]

    def is_eligible(t, bound, strict):
        return t < bound or (t == bound and not strict)

    is_eligible = jit(is_eligible)

    def eligible_end(time, lo, hi, bound, strict):
        """First position in ``[lo, hi)`` whose time is past the bound (time-sorted segment)."""
        while lo < hi:
            mid = (lo + hi) >> 1
            if is_eligible(time[mid], bound, strict):
                lo = mid + 1
            else:
                hi = mid
        return lo

    eligible_end = jit(eligible_end)

    def edge_ok(weight, time, p, use_weight, scan, bound, strict):
        """Whether the edge at position ``p`` may be drawn (eligible in time, positive weight)."""
        if scan and not is_eligible(time[p], bound, strict):
            return False
        if use_weight and not weight[p] > 0.0:
            return False
        return True

    edge_ok = jit(edge_ok)

    def nth_eligible(time, lo, hi, bound, strict, r):
        """Position of the ``r``-th (0-based) time-eligible edge in ``[lo, hi)`` (unsorted segment)."""
        for p in range(lo, hi):
            if is_eligible(time[p], bound, strict):
                if r == 0:
                    return p
                r -= 1
        return hi - 1  # unreachable when r < number of eligible edges

    nth_eligible = jit(nth_eligible)

    def weighted_total(weight, time, lo, hi, scan, bound, strict, slots, base, nchosen):
        """Sum of weights of drawable edges in ``[lo, hi)`` except the sorted positions ``slots[base:base+nchosen]``."""
        total = 0.0
        c = 0
        for p in range(lo, hi):
            if c < nchosen and slots[base + c] == p:
                c += 1
                continue
            if edge_ok(weight, time, p, True, scan, bound, strict):
                total += weight[p]
        return total

    weighted_total = jit(weighted_total)

    def weighted_pick(weight, time, lo, hi, scan, bound, strict, slots, base, nchosen, u):
        """First drawable edge (skipping chosen ones) whose running weight sum exceeds ``u``."""
        acc = 0.0
        last = lo - 1
        c = 0
        for p in range(lo, hi):
            if c < nchosen and slots[base + c] == p:
                c += 1
                continue
            if edge_ok(weight, time, p, True, scan, bound, strict):
                acc += weight[p]
                last = p
                if acc > u:
                    return p
        return last  # u rounded up to the total: take the last drawable edge

    weighted_pick = jit(weighted_pick)

    def sample_weighted(weight, time, lo, hi, scan, bound, strict, key, k, replace, slots, base):
        npos = 0
        for p in range(lo, hi):
            if edge_ok(weight, time, p, True, scan, bound, strict):
                npos += 1
        if npos == 0:
            return 0
        if replace:
            total = weighted_total(weight, time, lo, hi, scan, bound, strict, slots, base, 0)
            for j in range(k):
                u = rand_unit(key, np.uint64(j)) * total
                slots[base + j] = weighted_pick(weight, time, lo, hi, scan, bound, strict, slots, base, 0, u)
            return k
        if npos <= k:
            c = 0
            for p in range(lo, hi):
                if edge_ok(weight, time, p, True, scan, bound, strict):
                    slots[base + c] = p
                    c += 1
            return c
        for j in range(k):
            total = weighted_total(weight, time, lo, hi, scan, bound, strict, slots, base, j)
            u = rand_unit(key, np.uint64(j)) * total
            p = weighted_pick(weight, time, lo, hi, scan, bound, strict, slots, base, j, u)
            # insert p into the sorted chosen positions slots[base : base + j]
            q = base + j
            while q > base and slots[q - 1] > p:
                slots[q] = slots[q - 1]
                q -= 1
            slots[q] = p
        return k

    sample_weighted = jit(sample_weighted)

    def sample_recent(time, lo, hi, scan, bound, strict, k, slots, base):
        if not scan:  # eligible edges are the time-sorted prefix [lo, hi)
            c = min(k, hi - lo)
            for j in range(c):
                slots[base + j] = hi - 1 - j
            return c
        c = 0
        prev_t = time[lo] if hi > lo else 0
        prev_p = hi  # (prev_t, prev_p) is the last one taken; the next is the largest pair below it
        for j in range(k):
            best = -1
            for p in range(lo, hi):
                t = time[p]
                if not is_eligible(t, bound, strict):
                    continue
                if j > 0 and (t > prev_t or (t == prev_t and p >= prev_p)):
                    continue
                if best < 0 or t > time[best] or (t == time[best] and p > best):
                    best = p
            if best < 0:
                break
            slots[base + j] = best
            prev_t = time[best]
            prev_p = best
            c += 1
        return c

    sample_recent = jit(sample_recent)

    def sample_entry(indptr, weight, time, v, key, bound, k, replace, use_weight, temporal, time_sorted, strict, recent, slots, base):
        """Sample up to ``k`` in-edges of local destination ``v``; write positions to ``slots[base:base+k]``.

        Args:
            indptr: int64 CSC offsets; weight: float64 per edge (read only if ``use_weight``);
            time: int64 per edge (read only if ``temporal``); v: local destination; key: uint64
            stream key; bound: int64 time bound (temporal); k: fanout (>= 1); flags as named.

        Returns:
            number of positions written (<= k).
        """
        lo = indptr[v]
        hi = indptr[v + 1]
        scan = False
        if temporal:
            if time_sorted:
                hi = eligible_end(time, lo, hi, bound, strict)
            else:
                scan = True
        if use_weight:
            return sample_weighted(weight, time, lo, hi, scan, bound, strict, key, k, replace, slots, base)
        if recent:
            return sample_recent(time, lo, hi, scan, bound, strict, k, slots, base)
        d = hi - lo
        if scan:
            d = 0
            for p in range(lo, hi):
                if is_eligible(time[p], bound, strict):
                    d += 1
        if d == 0:
            return 0
        if replace:
            c = k
            for j in range(k):
                slots[base + j] = np.int64(rand_below(key, np.uint64(j), np.uint64(d)))
        elif d <= k:
            c = d
            for j in range(d):
                slots[base + j] = j
        else:
            c = k
            for j in range(k):
                top = d - k + j
                t = np.int64(rand_below(key, np.uint64(j), np.uint64(top + 1)))
                for q in range(j):
                    if slots[base + q] == t:
                        t = top
                        break
                slots[base + j] = t
        # virtual indices -> edge positions
        for j in range(c):
            if scan:
                slots[base + j] = nth_eligible(time, lo, hi, bound, strict, slots[base + j])
            else:
                slots[base + j] += lo
        return c

    return {"sample_entry": jit(sample_entry)}
