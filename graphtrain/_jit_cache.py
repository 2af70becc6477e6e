"""Where Numba keeps graphtrain's compiled kernels, keyed by the source that compiled them.

Numba's on-disk cache (``cache=True``) checks only the file that defines a cached function, not
the modules whose functions it inlines (``kernels/hop_body.py`` into ``kernels/cpu.py``, ``rng.py``
into everything). After an in-place update a stale kernel would run silently. So, unless the user
has chosen ``NUMBA_CACHE_DIR`` themselves, the cache lives in a directory named by a digest of every
graphtrain source file that holds jitted code: any change to any of them starts a fresh cache.

This runs when ``graphtrain`` is imported, before Numba reads its configuration.
"""
from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent
JIT_SOURCES = (
    "kernels/rng.py",
    "kernels/hop_body.py",
    "kernels/hop_graph.py",
    "kernels/cpu.py",
    "kernels/cuda.py",
    "partition/_kernels.py",
    "partition/assign.py",
    "partition/idmap.py",
    "rmat.py",
)


def source_digest() -> str:
    """Short digest of the jitted-code sources (their bytes, in a fixed order)."""
    sha = hashlib.sha256()
    for rel in JIT_SOURCES:
        path = _PACKAGE / rel
        sha.update(rel.encode())
        sha.update(path.read_bytes() if path.exists() else b"")
    return sha.hexdigest()[:16]


def cache_dir() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "graphtrain" / f"numba-{source_digest()}"


def configure() -> None:
    """Point Numba's cache at :func:`cache_dir` unless ``NUMBA_CACHE_DIR`` is already set."""
    if os.environ.get("NUMBA_CACHE_DIR"):
        return
    path = str(cache_dir())
    os.environ["NUMBA_CACHE_DIR"] = path
    numba_config = sys.modules.get("numba.core.config")
    if numba_config is not None:  # numba was imported first: its config already read the environment
        numba_config.CACHE_DIR = path
