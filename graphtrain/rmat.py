"""R-MAT power-law edge generator (Graph500 parameters by default), chunked and deterministic.

Edge ``e`` of the stream is a pure function of ``(seed, e)`` (counter-based RNG, see
:mod:`graphtrain.kernels.rng`), so any range of edges can be generated independently: a billion
edges stream out in chunks with bounded memory, in parallel, and a chunk is identical however the
stream is cut.

Vertex IDs come out in ``[0, 2**scale)`` with the R-MAT skew concentrated on low IDs;
:func:`scramble_ids` maps them bijectively onto sparse 64-bit integers (as Graph500 permutes
vertices), so the IDs a partitioner sees are neither contiguous nor ordered by degree.
"""
from __future__ import annotations

from typing import Iterator, Tuple

import numpy as np
from numba import njit, prange

from graphtrain.errors import ConfigError
from graphtrain.kernels.rng import combine, rand_u64, seed_key

GRAPH500 = (0.57, 0.19, 0.19)  # a, b, c; d = 1 - a - b - c


@njit(cache=True, parallel=True)
def _rmat_kernel(key, scale, edge_start, num_edges, t_a, t_ab, t_abc, src, dst):
    for i in prange(num_edges):
        ekey = combine(key, np.uint64(edge_start + i))
        u = np.int64(0)
        v = np.int64(0)
        draw = np.uint64(0)
        for level in range(scale):
            if level % 4 == 0:
                draw = rand_u64(ekey, np.uint64(level // 4))
            r = np.int64((draw >> np.uint64(16 * (level % 4))) & np.uint64(0xFFFF))
            bit = np.int64(1) << np.int64(scale - 1 - level)
            if r < t_a:
                pass
            elif r < t_ab:
                v |= bit
            elif r < t_abc:
                u |= bit
            else:
                u |= bit
                v |= bit
        src[i] = u
        dst[i] = v


def rmat_edges(scale: int, edge_start: int, num_edges: int, seed: int = 0, abc=GRAPH500) -> Tuple[np.ndarray, np.ndarray]:
    """Edges ``[edge_start, edge_start + num_edges)`` of the R-MAT stream.

    Args:
        scale: vertices are ``[0, 2**scale)``; 1 <= scale <= 62.
        edge_start: index of the first edge of the stream to generate.
        num_edges: how many edges.
        seed: stream seed.
        abc: quadrant probabilities ``(a, b, c)``; ``d = 1 - a - b - c`` (16-bit precision).

    Returns:
        ``(src, dst)`` int64 ``[num_edges]`` each.
    """
    if not 1 <= scale <= 62:
        raise ConfigError(f"scale must be in [1, 62], got {scale}")
    a, b, c = abc
    if min(a, b, c) < 0 or a + b + c > 1:
        raise ConfigError(f"R-MAT probabilities must be >= 0 and sum to <= 1, got {abc}")
    src = np.empty(num_edges, dtype=np.int64)
    dst = np.empty(num_edges, dtype=np.int64)
    thresholds = np.round(np.cumsum([a, b, c]) * 65536).astype(np.int64)
    _rmat_kernel(seed_key(seed), scale, edge_start, num_edges, thresholds[0], thresholds[1], thresholds[2], src, dst)
    return src, dst


def rmat_chunks(scale: int, num_edges: int, chunk_edges: int = 1 << 22, seed: int = 0, abc=GRAPH500) -> Iterator[Tuple[np.ndarray, np.ndarray]]:
    """Yield the R-MAT stream of ``num_edges`` edges in chunks of at most ``chunk_edges``."""
    for start in range(0, num_edges, chunk_edges):
        yield rmat_edges(scale, start, min(chunk_edges, num_edges - start), seed, abc)


def scramble_ids(ids: np.ndarray, seed: int = 0) -> np.ndarray:
    """Map vertex IDs in ``[0, 2**62)`` bijectively onto sparse IDs in ``[0, 2**62)`` (int64).

    Each step (xor with a salt, xor-shift, multiply by an odd constant modulo ``2**62``) is a
    bijection of ``[0, 2**62)``, so distinct vertices always get distinct IDs.
    """
    mask = np.uint64((1 << 62) - 1)
    x = (np.asarray(ids, dtype=np.int64).view(np.uint64) ^ seed_key(seed)) & mask
    with np.errstate(over="ignore"):
        x = ((x ^ (x >> np.uint64(31))) * np.uint64(0xBF58476D1CE4E5B9)) & mask
        x = ((x ^ (x >> np.uint64(29))) * np.uint64(0x94D049BB133111EB)) & mask
    x ^= x >> np.uint64(32)
    return x.view(np.int64)
