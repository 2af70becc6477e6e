"""Random variates for the synthetic-data generator, drawn from graphtrain's one counter-based RNG.

Every value is a pure function of a stream key and a draw index (see :mod:`graphtrain.kernels.rng`),
so a generated table does not depend on how it is cut into chunks, nor on the order in which
chunks are produced. Two forms:

- ``*_at(key, index)``: vectorised, the draw for element ``index`` of a stream (e.g. edge number
  ``e`` of the background stream); used for everything generated in chunks.
- :class:`Draws`: a sequential cursor over one stream, for the small, in-memory planted patterns
  whose draws happen in a fixed program order.

Keys come from :func:`stream_key` (the user's seed and a stream name) and :func:`child_key`.
"""
from __future__ import annotations

import numpy as np

from graphtrain.kernels.rng import combine_np, hash_bytes, rand_below_np, rand_unit_np, seed_key

_TWO_PI = 2.0 * np.pi


def stream_key(seed: int, name: str) -> np.uint64:
    """Key of the named stream (e.g. ``"amount"``) under a user seed; distinct names give independent streams."""
    data = np.frombuffer(name.encode("utf-8"), dtype=np.uint8)
    return child_key(seed_key(seed), int(hash_bytes(data, 0, data.size)))


def child_key(key, value: int) -> np.uint64:
    """Key of sub-stream ``value`` (any int >= 0, e.g. a pattern number) of stream ``key``."""
    return combine_np(np.uint64(key), np.uint64(int(value) % (1 << 64)))


def _counters(index) -> np.ndarray:
    return np.asarray(index, dtype=np.int64).astype(np.uint64)


def uniform_at(key, index) -> np.ndarray:
    """float64 uniform in ``[0, 1)`` for each draw index (int array, >= 0)."""
    return rand_unit_np(key, _counters(index))


def below_at(key, index, n) -> np.ndarray:
    """int64 uniform in ``[0, n)`` for each draw index; ``n`` (broadcast) in ``[1, 2**32)``."""
    return rand_below_np(key, _counters(index), n)


def normal_at(key, index) -> np.ndarray:
    """float64 standard normal per draw index (Box-Muller on draws ``2 * index`` and ``2 * index + 1``)."""
    c = _counters(index) * np.uint64(2)
    u1 = rand_unit_np(key, c)
    u2 = rand_unit_np(key, c + np.uint64(1))
    return np.sqrt(-2.0 * np.log1p(-u1)) * np.cos(_TWO_PI * u2)


def lognormal_at(key, index, mu: float, sigma: float) -> np.ndarray:
    """float64 ``exp(mu + sigma * N(0, 1))`` per draw index."""
    return np.exp(mu + sigma * normal_at(key, index))


class Draws:
    """A cursor over one stream: each call consumes the next ``n`` draw indices.

    The values depend only on the key and on the sequence of calls, so code that makes the same
    calls in the same order gets the same numbers.
    """

    def __init__(self, key):
        self.key = np.uint64(key)
        self._next = 0

    def _take(self, n: int) -> np.ndarray:
        start = self._next
        self._next += int(n)
        return np.arange(start, start + int(n), dtype=np.int64)

    def uniform(self, n: int, low: float = 0.0, high: float = 1.0) -> np.ndarray:
        """float64 ``[n]`` uniform in ``[low, high)``."""
        return low + (high - low) * uniform_at(self.key, self._take(n))

    def integers(self, n: int, low: int, high: int) -> np.ndarray:
        """int64 ``[n]`` uniform in ``[low, high]`` (both ends included)."""
        return low + below_at(self.key, self._take(n), high - low + 1)

    def integer(self, low: int, high: int) -> int:
        """One int uniform in ``[low, high]``."""
        return int(self.integers(1, low, high)[0])

    def normal(self, n: int) -> np.ndarray:
        """float64 ``[n]`` standard normal."""
        return normal_at(self.key, self._take(n))

    def lognormal(self, n: int, mu: float, sigma: float) -> np.ndarray:
        """float64 ``[n]`` lognormal."""
        return lognormal_at(self.key, self._take(n), mu, sigma)
