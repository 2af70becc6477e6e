"""graphtrain's one random-number and hashing scheme: counter-based SplitMix64.

Every random draw is a pure function ``rand_u64(key, counter)`` of a 64-bit stream key and a draw
index, so a result never depends on thread count, scheduling or device: a CPU kernel, a CUDA
kernel and the NumPy reference that give the same draw index to the same key get the same number.
Keys are derived from the user's seed and from stable identifiers (batch number, hop, global node
ID) with :func:`combine`, never from a global generator.

The same finaliser :func:`mix64` (a bijection on uint64) hashes integer IDs for partitioning and
for the raw-ID map, and :func:`hash_bytes` hashes string IDs.

Two forms of each function:

- scalar, compiled from one source by :func:`make_rng_functions` for the CPU (``numba.njit``; the
  module-level names ``mix64``, ``rand_u64``, ...) and for CUDA (``numba.cuda.jit(device=True)``,
  see :mod:`graphtrain.kernels.cuda`). Arguments are ``np.uint64``.
- ``*_np``: vectorised NumPy over uint64 arrays (the reference implementations).

All arithmetic is modulo 2**64.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30 = np.uint64(30)
_S27 = np.uint64(27)
_S31 = np.uint64(31)
_S32 = np.uint64(32)
_S11 = np.uint64(11)
_ONE = np.uint64(1)
_FNV_OFFSET = np.uint64(0xCBF29CE484222325)
_FNV_PRIME = np.uint64(0x100000001B3)
_INV_2_53 = 1.0 / 9007199254740992.0


# -- one source, compiled per target -------------------------------------------------------------
def make_rng_functions(jit):
    """Compile the scalar RNG functions with ``jit`` (``numba.njit(...)`` or ``numba.cuda.jit(device=True)``).

    Returns:
        dict with ``mix64``, ``rand_u64``, ``combine``, ``rand_below``, ``rand_unit`` compiled for
        that target. Arguments and results are ``np.uint64`` (``rand_unit``: float64).
    """

    def mix64(z):
        """SplitMix64 finaliser: a bijection uint64 -> uint64 with good avalanche."""
        z = (z ^ (z >> _S30)) * _M1
        z = (z ^ (z >> _S27)) * _M2
        return z ^ (z >> _S31)

    mix64 = jit(mix64)

    def rand_u64(key, counter):
        """Draw number ``counter`` of the stream ``key``: the SplitMix64 sequence seeded at ``key``."""
        return mix64(key + (counter + _ONE) * GOLDEN)

    rand_u64 = jit(rand_u64)

    def combine(key, value):
        """Derive a child stream key from ``key`` and a uint64 ``value`` (e.g. hop or node ID)."""
        return mix64(key ^ mix64(value + GOLDEN))

    def rand_below(key, counter, n):
        """Uniform integer in ``[0, n)`` for ``1 <= n < 2**32`` (Lemire's multiply-shift on the top 32 bits)."""
        return ((rand_u64(key, counter) >> _S32) * n) >> _S32

    def rand_unit(key, counter):
        """Uniform float64 in ``[0, 1)`` with 53 random bits."""
        return float(rand_u64(key, counter) >> _S11) * _INV_2_53

    return {
        "mix64": mix64,
        "rand_u64": rand_u64,
        "combine": jit(combine),
        "rand_below": jit(rand_below),
        "rand_unit": jit(rand_unit),
    }


# -- CPU (numba.njit) forms -------------------------------------------------------------------------
_cpu = make_rng_functions(njit(cache=True, nogil=True))
mix64 = _cpu["mix64"]
rand_u64 = _cpu["rand_u64"]
combine = _cpu["combine"]
rand_below = _cpu["rand_below"]
rand_unit = _cpu["rand_unit"]


@njit(cache=True, nogil=True)
def hash_bytes(data, start, stop):
    """64-bit hash of ``data[start:stop]`` (uint8): FNV-1a over the bytes, then :func:`mix64`."""
    h = _FNV_OFFSET
    for i in range(start, stop):
        h = (h ^ np.uint64(data[i])) * _FNV_PRIME
    return mix64(h ^ np.uint64(stop - start))


@njit(cache=True, nogil=True)
def hash_strings(offsets, data):
    """Hash each string of an Arrow-style (offsets int64 [n + 1], data uint8) array; uint64 [n]."""
    n = offsets.size - 1
    out = np.empty(n, dtype=np.uint64)
    for i in range(n):
        out[i] = hash_bytes(data, offsets[i], offsets[i + 1])
    return out


# -- vectorised NumPy forms (references) ------------------------------------------------------------
def mix64_np(z: np.ndarray) -> np.ndarray:
    """Vectorised :func:`mix64` over a uint64 array (returns a new array)."""
    z = np.asarray(z, dtype=np.uint64)
    with np.errstate(over="ignore"):
        z = (z ^ (z >> _S30)) * _M1
        z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


def rand_u64_np(key, counter) -> np.ndarray:
    """Vectorised :func:`rand_u64`; ``key`` and ``counter`` broadcast (uint64)."""
    key = np.asarray(key, dtype=np.uint64)
    counter = np.asarray(counter, dtype=np.uint64)
    with np.errstate(over="ignore"):
        return mix64_np(key + (counter + _ONE) * GOLDEN)


def combine_np(key, value) -> np.ndarray:
    """Vectorised :func:`combine`."""
    key = np.asarray(key, dtype=np.uint64)
    value = np.asarray(value, dtype=np.uint64)
    with np.errstate(over="ignore"):
        return mix64_np(key ^ mix64_np(value + GOLDEN))


def rand_below_np(key, counter, n) -> np.ndarray:
    """Vectorised :func:`rand_below`; ``n`` broadcast, each in ``[1, 2**32)``. Returns int64."""
    n = np.asarray(n, dtype=np.uint64)
    with np.errstate(over="ignore"):
        return (((rand_u64_np(key, counter) >> _S32) * n) >> _S32).astype(np.int64)


def rand_unit_np(key, counter) -> np.ndarray:
    """Vectorised :func:`rand_unit`; float64."""
    return (rand_u64_np(key, counter) >> _S11).astype(np.float64) * _INV_2_53


@njit(cache=True, parallel=True)
def _mix64_array(x, out):
    for i in prange(x.shape[0]):
        out[i] = mix64(x[i])


def hash_int_ids(ids: np.ndarray) -> np.ndarray:
    """Hash int64 IDs to uint64 with :func:`mix64` (a bijection, so no collisions); parallel."""
    x = np.ascontiguousarray(ids, dtype=np.int64).view(np.uint64)
    out = np.empty(x.shape[0], dtype=np.uint64)
    _mix64_array(x, out)
    return out


def seed_key(seed: int) -> np.uint64:
    """Root stream key for a user seed (any Python int; taken modulo 2**64)."""
    return mix64_np(np.asarray([int(seed) % (1 << 64)], dtype=np.uint64))[0]
