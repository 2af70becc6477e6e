"""The shapes planted into synthetic transaction graphs: five laundering typologies and four
legitimate look-alikes.

Each function takes the member accounts (int64 indices, in role order), a :class:`Draws` cursor of
its own, and the simulated period, and returns a :class:`PlantedPattern`: the members, their roles
and the pattern's transactions. Amounts are in currency units (rounded to cents), times in integer
seconds since the Unix epoch, all inside ``[start, start + period)``.

Laundering rings (label 1) act in **bursts**: a few rounds inside a window of one to seven days,
amounts of one ring close to each other (structuring), money moving on within hours.

- ``fan_in``: sources -> one collector.          roles ``collector`` (member 0), ``source``
- ``fan_out``: one distributor -> recipients.    roles ``distributor`` (member 0), ``recipient``
- ``cycle``: m0 -> m1 -> ... -> m0, a fee skimmed per hop, each hop hours after the last.  role ``link``
- ``scatter_gather``: origin -> intermediates -> beneficiary, the gather after the scatter.
  roles ``origin`` (member 0), ``intermediate``, ``beneficiary`` (last member)
- ``bipartite``: a dense block of senders x receivers.  roles ``sender`` (first half), ``receiver``

Legitimate look-alikes (label 0, the hard negatives) have the same local shapes but act
**regularly** over the whole period (monthly), as real payroll, subscriptions, shared households
and supply chains do:

- ``payroll`` (fan-out): ``employer`` -> ``employee``s, the same salary each payday.
- ``subscription`` (fan-in): ``customer``s -> ``merchant``, the same price each month.
- ``shared_household`` (cycle): ``household`` members pass rent shares around each month.
- ``supplier_block`` (bipartite): ``buyer``s x ``supplier``s with monthly invoices.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, List

import numpy as np

from graphtrain.fraud.synth.draws import Draws

HOUR = 3600
DAY = 24 * HOUR
MONTH = 30 * DAY

# background amounts are lognormal(BACKGROUND_MU, BACKGROUND_SIGMA); rings move somewhat larger sums
BACKGROUND_MU = 4.0
BACKGROUND_SIGMA = 1.1
RING_MU = 4.6
RING_SIGMA = 0.6


@dataclass
class PlantedPattern:
    """One planted ring or look-alike.

    Attributes:
        kind: typology (``fan_in``, ...) or look-alike kind (``payroll``, ...).
        members: int64 ``[k]`` distinct account indices.
        roles: ``[k]`` role name of each member (str array).
        src, dst: int64 ``[m]`` account indices of the pattern's transactions (both in ``members``).
        amount: float64 ``[m]`` > 0, rounded to cents.
        time: int64 ``[m]`` seconds since the epoch.
    """

    kind: str
    members: np.ndarray
    roles: np.ndarray
    src: np.ndarray
    dst: np.ndarray
    amount: np.ndarray
    time: np.ndarray


def roles_of(kind: str, k: int) -> List[str]:
    """Role of each of the ``k`` members of a pattern of this kind, in member order.

    The hub is member 0 (collector, distributor, origin, employer, merchant); a scatter-gather's
    beneficiary is the last member; blocks have their senders (buyers) in the first half.
    """
    half = k // 2
    layouts = {
        "fan_in": ["collector"] + ["source"] * (k - 1),
        "fan_out": ["distributor"] + ["recipient"] * (k - 1),
        "cycle": ["link"] * k,
        "scatter_gather": ["origin"] + ["intermediate"] * (k - 2) + ["beneficiary"],
        "bipartite": ["sender"] * half + ["receiver"] * (k - half),
        "payroll": ["employer"] + ["employee"] * (k - 1),
        "subscription": ["merchant"] + ["customer"] * (k - 1),
        "shared_household": ["household"] * k,
        "supplier_block": ["buyer"] * half + ["supplier"] * (k - half),
    }
    return layouts[kind]


def _pattern(kind, members, roles, src, dst, amount, time) -> PlantedPattern:
    return PlantedPattern(
        kind=kind,
        members=np.asarray(members, dtype=np.int64),
        roles=np.asarray(roles, dtype=object),
        src=np.asarray(src, dtype=np.int64),
        dst=np.asarray(dst, dtype=np.int64),
        amount=np.maximum(np.round(np.asarray(amount, dtype=np.float64), 2), 0.01),
        time=np.asarray(time, dtype=np.int64),
    )


def _burst(draws: Draws, start: int, period: int):
    """Round start times of a ring: 1-3 rounds inside a 1-7 day window placed uniformly in the period."""
    length = int(draws.uniform(1, 1, 7)[0] * DAY)
    length = min(length, max(period - 2 * DAY, DAY))
    window_start = start + int(draws.uniform(1, 0, max(period - length - 2 * DAY, 1))[0])
    rounds = draws.integer(1, 3)
    return window_start + np.sort((draws.uniform(rounds) * length).astype(np.int64))


def _paydays(draws: Draws, start: int, period: int) -> np.ndarray:
    """Monthly dates (business hours) over the whole period, from a random first day in month one."""
    first = start + int(draws.uniform(1, 0, min(MONTH, period) - DAY)[0]) // DAY * DAY + 9 * HOUR
    return np.arange(first, start + period - 8 * HOUR, MONTH, dtype=np.int64)


def _ring_base(draws: Draws) -> float:
    return float(draws.lognormal(1, RING_MU, RING_SIGMA)[0])


# -- laundering typologies ------------------------------------------------------------------------
def fan_in(members, draws: Draws, start: int, period: int) -> PlantedPattern:
    """Sources send similar amounts just below a per-ring cap to one collector, within hours."""
    k = len(members)
    base = _ring_base(draws)
    src, dst, amount, time = [], [], [], []
    for t in _burst(draws, start, period):
        src.append(members[1:])
        dst.append(np.full(k - 1, members[0]))
        amount.append(base * draws.uniform(k - 1, 0.85, 1.0))
        time.append(t + (draws.uniform(k - 1) * 6 * HOUR).astype(np.int64))
    return _pattern("fan_in", members, roles_of("fan_in", k), *map(np.concatenate, (src, dst, amount, time)))


def fan_out(members, draws: Draws, start: int, period: int) -> PlantedPattern:
    """A distributor splits a sum into near-equal parts sent to recipients within hours."""
    k = len(members)
    base = _ring_base(draws)
    src, dst, amount, time = [], [], [], []
    for t in _burst(draws, start, period):
        src.append(np.full(k - 1, members[0]))
        dst.append(members[1:])
        amount.append(base * draws.uniform(k - 1, 0.9, 1.1))
        time.append(t + (draws.uniform(k - 1) * 6 * HOUR).astype(np.int64))
    return _pattern("fan_out", members, roles_of("fan_out", k), *map(np.concatenate, (src, dst, amount, time)))


def cycle(members, draws: Draws, start: int, period: int) -> PlantedPattern:
    """Money goes round m0 -> m1 -> ... -> m0; each hop keeps a 1-3% fee and follows 1-12 hours later."""
    k = len(members)
    members = np.asarray(members)
    base = _ring_base(draws)
    src, dst, amount, time = [], [], [], []
    for t in _burst(draws, start, period):
        fee = draws.uniform(1, 0.01, 0.03)[0]
        src.append(members)
        dst.append(np.roll(members, -1))
        amount.append(base * draws.uniform(1, 0.9, 1.1)[0] * (1.0 - fee) ** np.arange(k))
        time.append(t + np.cumsum(draws.uniform(k, HOUR, 12 * HOUR)).astype(np.int64))
    return _pattern("cycle", members, roles_of("cycle", k), *map(np.concatenate, (src, dst, amount, time)))


def scatter_gather(members, draws: Draws, start: int, period: int) -> PlantedPattern:
    """origin -> each intermediate (within hours) -> beneficiary (2-48 hours after each receipt, minus a fee)."""
    members = np.asarray(members)
    mid = members[1:-1]
    m = len(mid)
    base = _ring_base(draws)
    src, dst, amount, time = [], [], [], []
    for t in _burst(draws, start, period):
        sent = base * draws.uniform(m, 0.9, 1.0)
        t_in = t + (draws.uniform(m) * 6 * HOUR).astype(np.int64)
        t_out = t_in + draws.uniform(m, 2 * HOUR, 48 * HOUR).astype(np.int64)
        src += [np.full(m, members[0]), mid]
        dst += [mid, np.full(m, members[-1])]
        amount += [sent, sent * (1.0 - draws.uniform(m, 0.01, 0.04))]
        time += [t_in, t_out]
    return _pattern("scatter_gather", members, roles_of("scatter_gather", len(members)), *map(np.concatenate, (src, dst, amount, time)))


def _dense_pairs(draws: Draws, s: int, r: int, density: float):
    """Sender/receiver index pairs of a random block with the given density; every member has a pair."""
    keep = draws.uniform(s * r).reshape(s, r) < density
    keep[np.arange(max(s, r)) % s, np.arange(max(s, r)) % r] = True
    si, ri = np.nonzero(keep)
    return si, ri


def bipartite(members, draws: Draws, start: int, period: int) -> PlantedPattern:
    """Senders (first half) x receivers: 70-95% of all pairs transact in each of the ring's rounds, within two days."""
    members = np.asarray(members)
    s = len(members) // 2
    senders, receivers = members[:s], members[s:]
    si, ri = _dense_pairs(draws, s, len(receivers), draws.uniform(1, 0.7, 0.95)[0])
    base = _ring_base(draws)
    src, dst, amount, time = [], [], [], []
    for t in _burst(draws, start, period):
        n = si.size
        src.append(senders[si])
        dst.append(receivers[ri])
        amount.append(base * draws.uniform(n, 0.8, 1.2))
        time.append(t + (draws.uniform(n) * 2 * DAY).astype(np.int64))
    return _pattern("bipartite", members, roles_of("bipartite", len(members)), *map(np.concatenate, (src, dst, amount, time)))


# -- legitimate look-alikes -----------------------------------------------------------------------
def payroll(members, draws: Draws, start: int, period: int) -> PlantedPattern:
    """An employer pays each employee the same salary (+-1%) every month on payday."""
    k = len(members)
    salary = float(draws.lognormal(1, RING_MU + 0.4, 0.5)[0]) * draws.uniform(k - 1, 0.8, 1.25)
    src, dst, amount, time = [], [], [], []
    for t in _paydays(draws, start, period):
        src.append(np.full(k - 1, members[0]))
        dst.append(members[1:])
        amount.append(salary * draws.uniform(k - 1, 0.99, 1.01))
        time.append(t + (draws.uniform(k - 1) * 2 * HOUR).astype(np.int64))
    return _pattern("payroll", members, roles_of("payroll", k), *map(np.concatenate, (src, dst, amount, time)))


def subscription(members, draws: Draws, start: int, period: int) -> PlantedPattern:
    """Customers pay a merchant the same price every month, each on their own day of the month."""
    k = len(members)
    price = float(draws.lognormal(1, RING_MU - 0.3, 0.5)[0])
    offset = (draws.uniform(k - 1) * 25 * DAY).astype(np.int64)
    src, dst, amount, time = [], [], [], []
    for t in _paydays(draws, start, period):
        src.append(members[1:])
        dst.append(np.full(k - 1, members[0]))
        amount.append(np.full(k - 1, price))
        time.append(np.minimum(t + offset, start + period - 1))
    return _pattern("subscription", members, roles_of("subscription", k), *map(np.concatenate, (src, dst, amount, time)))


def shared_household(members, draws: Draws, start: int, period: int) -> PlantedPattern:
    """Household members pass rent shares round a cycle every month, a day or two apart."""
    k = len(members)
    members = np.asarray(members)
    share = float(draws.lognormal(1, RING_MU, 0.4)[0])
    src, dst, amount, time = [], [], [], []
    for t in _paydays(draws, start, period):
        src.append(members)
        dst.append(np.roll(members, -1))
        amount.append(share * draws.uniform(k, 0.95, 1.05))
        time.append(np.minimum(t + np.cumsum(draws.uniform(k, 6 * HOUR, 2 * DAY)).astype(np.int64), start + period - 1))
    return _pattern("shared_household", members, roles_of("shared_household", k), *map(np.concatenate, (src, dst, amount, time)))


def supplier_block(members, draws: Draws, start: int, period: int) -> PlantedPattern:
    """Buyers (first half) pay most of the suppliers an invoice every month; each pair's invoice varies +-5%."""
    members = np.asarray(members)
    s = len(members) // 2
    buyers, suppliers = members[:s], members[s:]
    si, ri = _dense_pairs(draws, s, len(suppliers), draws.uniform(1, 0.6, 0.9)[0])
    invoice = draws.lognormal(si.size, RING_MU + 0.5, 0.6)
    src, dst, amount, time = [], [], [], []
    for t in _paydays(draws, start, period):
        src.append(buyers[si])
        dst.append(suppliers[ri])
        amount.append(invoice * draws.uniform(si.size, 0.95, 1.05))
        time.append(np.minimum(t + (draws.uniform(si.size) * 5 * DAY).astype(np.int64), start + period - 1))
    return _pattern("supplier_block", members, roles_of("supplier_block", len(members)), *map(np.concatenate, (src, dst, amount, time)))


PatternFn = Callable[[np.ndarray, Draws, int, int], PlantedPattern]

# name -> (function, smallest member count)
TYPOLOGIES: Dict[str, tuple] = {
    "fan_in": (fan_in, 3),
    "fan_out": (fan_out, 3),
    "cycle": (cycle, 3),
    "scatter_gather": (scatter_gather, 4),
    "bipartite": (bipartite, 4),
}
LOOKALIKES: Dict[str, tuple] = {
    "payroll": (payroll, 3),
    "subscription": (subscription, 3),
    "shared_household": (shared_household, 3),
    "supplier_block": (supplier_block, 4),
}
# roles that mark a business account (employers, merchants, buyers and suppliers)
BUSINESS_ROLES = frozenset({"employer", "merchant", "buyer", "supplier"})
# the hub of each typology (used by the feature model: hubs are more often registered as businesses)
HUB_ROLES = frozenset({"collector", "distributor", "origin", "beneficiary"})

