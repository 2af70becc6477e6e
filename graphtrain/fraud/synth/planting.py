"""Who is in which planted ring or look-alike, and each pattern's transactions on demand.

:func:`plan_patterns` draws the members of every pattern up front -- a few int arrays, about 25
bytes per planted account and 20 per pattern -- and :meth:`PlantingPlan.transactions` builds the
transactions of one pattern (its typology's, plus a ring's camouflage) only when the writer needs
them. So memory does not grow with the number of planted transactions, and nothing depends on the
order in which patterns are built: pattern ``p``'s transactions are a pure function of
``(seed, p)``.

Members are drawn uniformly over the whole account index space (so, after partitioning, rings
cross partitions) and no account is in two patterns. Ring members are ordinary accounts, as money
mules are: accounts whose expected background degree exceeds ``HUB_DEGREE_FACTOR`` times the mean
(the R-MAT hubs, about 5% of the accounts with the default parameters) are never ring members.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Tuple

import numpy as np

from graphtrain.fraud.synth.draws import Draws, below_at, child_key, lognormal_at, stream_key, uniform_at
from graphtrain.fraud.synth.typologies import (
    BACKGROUND_MU,
    BACKGROUND_SIGMA,
    BUSINESS_ROLES,
    HUB_ROLES,
    LOOKALIKES,
    TYPOLOGIES,
    PlantedPattern,
    roles_of,
)
from graphtrain.rmat import rmat_edges

# ring members are drawn among accounts whose expected background degree is at most this many times the mean
HUB_DEGREE_FACTOR = 4.0

# account classes used by the feature model (synthetic_accounts.py)
NORMAL, RING_MEMBER, RING_HUB, LOOKALIKE_PERSON, LOOKALIKE_BUSINESS = 0, 1, 2, 3, 4

# what a planted transaction is (counted in the generator's summary)
RING_TX, LOOKALIKE_TX, CAMOUFLAGE_TX = 0, 1, 2


@dataclass
class Transactions:
    """Column arrays of transactions between account indices (all ``[m]``)."""

    src: np.ndarray
    dst: np.ndarray
    amount: np.ndarray
    time: np.ndarray

    FIELDS = ("src", "dst", "amount", "time")

    @classmethod
    def concat(cls, parts: List["Transactions"]) -> "Transactions":
        if not parts:
            return cls(np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.float64), np.empty(0, np.int64))
        return cls(*(np.concatenate([getattr(p, f) for p in parts]) for f in cls.FIELDS))

    def take(self, index) -> "Transactions":
        return Transactions(*(getattr(self, f)[index] for f in self.FIELDS))

    def __len__(self) -> int:
        return int(self.src.shape[0])


@dataclass
class PlantingPlan:
    """The planted patterns of one generated graph: patterns ``0 .. num_rings - 1`` are laundering
    rings (ring ID = pattern + 1), the rest legitimate look-alikes.

    Attributes:
        kinds: typology or look-alike kind of each pattern ``[P]``.
        num_rings: how many of the patterns are rings.
        offsets: int64 ``[P + 1]``; pattern ``p``'s members are ``members[offsets[p]:offsets[p+1]]``.
        members: int64 account indices of all patterns' members (in role order).
        planted_index: int64 sorted indices of every planted account.
        planted_class: int8 class of each (``RING_MEMBER``, ``RING_HUB``, ``LOOKALIKE_*``).
        settings: ``(num_accounts, scale, rmat_abc, camouflage, start, period, seed)``.
    """

    kinds: List[str]
    num_rings: int
    offsets: np.ndarray
    members: np.ndarray
    planted_index: np.ndarray
    planted_class: np.ndarray
    settings: tuple

    @property
    def num_patterns(self) -> int:
        return len(self.kinds)

    def members_of(self, p: int) -> np.ndarray:
        return self.members[self.offsets[p] : self.offsets[p + 1]]

    def pattern(self, p: int) -> PlantedPattern:
        """Pattern ``p`` with its typology's transactions (a pure function of the seed and ``p``)."""
        _, _, _, _, start, period, seed = self.settings
        is_ring = p < self.num_rings
        table, stream, number = (TYPOLOGIES, "ring", p) if is_ring else (LOOKALIKES, "lookalike", p - self.num_rings)
        draws = Draws(child_key(stream_key(seed, stream), number))
        return table[self.kinds[p]][0](self.members_of(p), draws, start, period)

    def transactions(self, p: int) -> Tuple[Transactions, np.ndarray]:
        """All transactions pattern ``p`` plants, and the kind of each (``RING_TX``, ``LOOKALIKE_TX``, ``CAMOUFLAGE_TX``)."""
        pat = self.pattern(p)
        own = Transactions(pat.src, pat.dst, pat.amount, pat.time)
        if p >= self.num_rings:
            return own, np.full(len(own), LOOKALIKE_TX, dtype=np.int8)
        camo = self._camouflage(p)
        kinds = np.concatenate([np.full(len(own), RING_TX, np.int8), np.full(len(camo), CAMOUFLAGE_TX, np.int8)])
        return Transactions.concat([own, camo]), kinds

    def _camouflage(self, ring: int) -> Transactions:
        """1..``camouflage`` transactions from each member of ring ``ring``: half to uniform accounts, half to popular ones."""
        num_accounts, scale, abc, camouflage, start, period, seed = self.settings
        if camouflage <= 0:
            return Transactions.concat([])
        members = self.members_of(ring)
        key = child_key(stream_key(seed, "camouflage"), ring)
        counts = 1 + below_at(child_key(key, 0), np.arange(members.size), camouflage)
        src = np.repeat(members, counts)
        j = np.arange(src.size, dtype=np.int64)
        uniform_dst = np.minimum((uniform_at(child_key(key, 1), j) * num_accounts).astype(np.int64), num_accounts - 1)
        popular_dst = popular_accounts(num_accounts, scale, src.size, int(child_key(key, 2)) & 0x7FFF_FFFF_FFFF_FFFF, abc)
        dst = np.where(uniform_at(child_key(key, 3), j) < 0.5, uniform_dst, popular_dst)
        dst = np.where(dst == src, (dst + 1) % num_accounts, dst)
        amount = np.maximum(np.round(lognormal_at(child_key(key, 4), j, BACKGROUND_MU, BACKGROUND_SIGMA), 2), 0.01)
        time = start + np.minimum((uniform_at(child_key(key, 5), j) * period).astype(np.int64), period - 1)
        return Transactions(src, dst, amount, time)

    def class_of(self, index: np.ndarray) -> np.ndarray:
        """int8 class of each account index (``NORMAL`` for accounts in no pattern)."""
        index = np.asarray(index, dtype=np.int64)
        out = np.full(index.shape, NORMAL, dtype=np.int8)
        if self.planted_index.size:
            pos = np.minimum(np.searchsorted(self.planted_index, index), self.planted_index.size - 1)
            found = self.planted_index[pos] == index
            out[found] = self.planted_class[pos[found]]
        return out


def distinct_accounts(num_accounts: int, count: int, key, accept=None, exclude=None) -> np.ndarray:
    """``count`` distinct account indices drawn uniformly from ``[0, num_accounts)``, in draw order.

    Args:
        accept: optional function ``indices -> bool mask``; rejected draws are skipped.
        exclude: optional indices that are never chosen.
    """
    exclude = np.empty(0, np.int64) if exclude is None else np.unique(np.asarray(exclude, dtype=np.int64))
    if count > num_accounts - exclude.size:
        raise ValueError(f"cannot draw {count} distinct accounts from {num_accounts}")
    chosen = np.empty(0, dtype=np.int64)
    drawn = 0
    while chosen.size < count:
        batch = max(2 * (count - chosen.size), 64)
        idx = drawn + np.arange(batch, dtype=np.int64)
        if num_accounts < (1 << 32):
            cand = below_at(key, idx, num_accounts)
        else:
            cand = np.minimum((uniform_at(key, idx) * num_accounts).astype(np.int64), num_accounts - 1)
        drawn += batch
        ok = ~np.isin(cand, exclude)
        if accept is not None:
            ok &= accept(cand)
        allc = np.concatenate([chosen, cand[ok]])
        _, first = np.unique(allc, return_index=True)
        chosen = allc[np.sort(first)]
        if drawn > 64 * count + 4096 and chosen.size < count:
            raise ValueError(f"only {chosen.size} of {count} accounts found after {drawn} draws; too few accounts qualify")
    return chosen[:count]


def _popcount(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.uint64)
    count = np.zeros(x.shape, dtype=np.int64)
    while np.any(x):
        count += (x & np.uint64(1)).astype(np.int64)
        x = x >> np.uint64(1)
    return count


def expected_degree(index: np.ndarray, num_accounts: int, scale: int, abc, num_edges: int) -> np.ndarray:
    """Expected background degree (in + out) of each account under the R-MAT stream.

    An R-MAT vertex with ``k`` one-bits is a source with probability ``(a+b)**(scale-k) * (c+d)**k``
    and a destination with probability ``(a+c)**(scale-k) * (b+d)**k``; an account sums over the one
    or two vertices that :func:`compress_rmat_ids` maps onto it.
    """
    a, b, c = abc
    d = 1.0 - a - b - c
    index = np.asarray(index, dtype=np.int64)
    ratio = num_accounts / float(1 << scale)
    base = np.floor(index / ratio).astype(np.int64)
    total = np.zeros(index.shape, dtype=np.float64)
    for offset in (-1, 0, 1, 2):
        vert = base + offset
        valid = (vert >= 0) & (vert < (1 << scale))
        vert = np.where(valid, vert, 0)
        hit = valid & (compress_rmat_ids(vert, scale, num_accounts) == index)
        ones = _popcount(vert)
        p_src = (a + b) ** (scale - ones) * (c + d) ** ones
        p_dst = (a + c) ** (scale - ones) * (b + d) ** ones
        total += np.where(hit, p_src + p_dst, 0.0)
    return total * num_edges


def pattern_sizes(kinds: List[str], table: dict, size_range: Tuple[int, int], key) -> List[int]:
    """Member count of each pattern: uniform in ``[max(low, smallest for its kind), high]``."""
    low, high = size_range
    draws = Draws(key)
    sizes = []
    for kind in kinds:
        lo = max(low, table[kind][1])
        sizes.append(draws.integer(lo, max(high, lo)))
    return sizes


def popular_accounts(num_accounts: int, scale: int, count: int, seed_value: int, abc) -> np.ndarray:
    """``count`` accounts drawn with probability proportional to their expected background in-degree
    (destinations of an R-MAT stream with the background's parameters)."""
    _, dst = rmat_edges(scale, 0, count, seed=seed_value, abc=abc)
    return compress_rmat_ids(dst, scale, num_accounts)


def compress_rmat_ids(v: np.ndarray, scale: int, num_accounts: int) -> np.ndarray:
    """Map R-MAT vertices ``[0, 2**scale)`` monotonically onto accounts ``[0, num_accounts)``."""
    idx = (v.astype(np.float64) * (num_accounts / float(1 << scale))).astype(np.int64)
    return np.minimum(idx, num_accounts - 1)


def _classes(kinds: List[str], sizes: List[int], num_rings: int) -> np.ndarray:
    out = []
    for p, (kind, size) in enumerate(zip(kinds, sizes)):
        roles = roles_of(kind, size)
        if p < num_rings:
            out += [RING_HUB if r in HUB_ROLES else RING_MEMBER for r in roles]
        else:
            out += [LOOKALIKE_BUSINESS if r in BUSINESS_ROLES else LOOKALIKE_PERSON for r in roles]
    return np.asarray(out, dtype=np.int8)


def plan_patterns(
    num_accounts: int,
    scale: int,
    num_edges: int,
    num_rings: int,
    num_lookalikes: int,
    ring_size: Tuple[int, int],
    camouflage: int,
    rmat_abc,
    start: int,
    period: int,
    seed: int,
) -> PlantingPlan:
    """Draw every pattern's kind, size and members.

    Rings cycle through the five typologies in order (ring ``r`` has typology ``r mod 5``), look-alikes
    through the four look-alike kinds, so every kind is present once there are enough patterns.
    """
    ring_kinds = [list(TYPOLOGIES)[r % len(TYPOLOGIES)] for r in range(num_rings)]
    look_kinds = [list(LOOKALIKES)[r % len(LOOKALIKES)] for r in range(num_lookalikes)]
    ring_sizes = pattern_sizes(ring_kinds, TYPOLOGIES, ring_size, stream_key(seed, "ring-size"))
    look_sizes = pattern_sizes(look_kinds, LOOKALIKES, ring_size, stream_key(seed, "lookalike-size"))
    total = sum(ring_sizes) + sum(look_sizes)
    if total > num_accounts // 2:
        raise ValueError(f"{total} planted accounts do not fit in half of {num_accounts} accounts")
    # mules are ordinary accounts: no ring member among the background's hubs
    cap = HUB_DEGREE_FACTOR * 2.0 * num_edges / num_accounts

    def ordinary(cand):
        return expected_degree(cand, num_accounts, scale, rmat_abc, num_edges) <= cap

    ring_members = distinct_accounts(num_accounts, sum(ring_sizes), stream_key(seed, "members"), accept=ordinary)
    look_members = distinct_accounts(num_accounts, sum(look_sizes), stream_key(seed, "lookalike-members"), exclude=ring_members)
    members = np.concatenate([ring_members, look_members])
    kinds, sizes = ring_kinds + look_kinds, ring_sizes + look_sizes
    offsets = np.zeros(len(sizes) + 1, dtype=np.int64)
    np.cumsum(sizes, out=offsets[1:])
    classes = _classes(kinds, sizes, num_rings)
    order = np.argsort(members)
    return PlantingPlan(kinds, num_rings, offsets, members, members[order], classes[order],
                        (num_accounts, scale, tuple(rmat_abc), camouflage, start, period, seed))
