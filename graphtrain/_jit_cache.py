"""Where Numba keeps graphtrain's compiled kernels, keyed by every source that compiled them.

Numba's on-disk cache (``cache=True``) checks only the file that defines a cached function, not
the modules whose functions it inlines (``kernels/hop_body.py``, ``kernels/rows.py`` and
``kernels/prefetch.py`` into ``kernels/cpu.py``, ``rng.py`` into everything). After an in-place
update a stale kernel would run silently. So graphtrain's kernels are cached in a directory named
by a digest of every graphtrain module with jitted code (:func:`jit_sources`, found by scanning the
package for jit decorators and calls, including a ``jit`` passed into a factory as in
``kernels/hop_body.py``; ``tests/test_jit_cache.py`` checks the scan against every compiled
function the package holds): any change to any of them starts a fresh cache.

Only graphtrain's own functions go there. A cache locator (:class:`GraphtrainCacheLocator`) is put
first in Numba's list when ``numba.core.caching`` is imported (or at once, if it already was);
it claims only functions defined in graphtrain's source files, so other libraries' Numba caches
stay where Numba puts them, and no environment variable is changed. The directory is
``$NUMBA_CACHE_DIR/graphtrain-numba-<digest>`` when the user has set ``NUMBA_CACHE_DIR``, else
``$XDG_CACHE_HOME/graphtrain/numba-<digest>`` (``~/.cache`` by default). A user's
``NUMBA_CACHE_LOCATOR_CLASSES`` replaces Numba's locator list, and is respected as it is.

:func:`configure` runs when ``graphtrain`` is imported; it imports nothing heavy.
"""
from __future__ import annotations

import functools
import hashlib
import os
import re
from pathlib import Path
from typing import Tuple

from graphtrain._import_hooks import when_imported

_PACKAGE = Path(__file__).resolve().parent
# a jit decorator (``@njit``, ``@numba.njit``, ``@cuda.jit``, ``@vectorize``), or a jit applied in an
# expression (``f = jit(f)``, with a jit passed into a factory as in kernels/hop_body.py)
_JIT_CODE = re.compile(rb"^[ \t]*@(?:\w+\.)*(?:n?jit|vectorize|guvectorize|stencil)\b"
                       rb"|[=:,(][ \t]*(?:\w+\.)*n?jit\([\w)]", re.MULTILINE)
_CACHING = "numba.core.caching"


def jit_sources(package: Path = None) -> Tuple[str, ...]:
    """Package-relative paths (sorted) of graphtrain's modules that jit a function, this one aside."""
    package = package or _PACKAGE
    return tuple(sorted(
        path.relative_to(package).as_posix() for path in package.rglob("*.py")
        if path.name != "_jit_cache.py" and "__pycache__" not in path.parts and _JIT_CODE.search(path.read_bytes())
    ))


def source_digest(package: Path = None) -> str:
    """Short digest of the bytes of every module in :func:`jit_sources`, in a fixed order."""
    package = package or _PACKAGE
    sha = hashlib.sha256()
    for rel in jit_sources(package):
        sha.update(rel.encode() + b"\0")
        sha.update((package / rel).read_bytes())
    return sha.hexdigest()[:16]


@functools.lru_cache(maxsize=1)
def cache_dir() -> Path:
    """This process's cache directory of graphtrain's kernels (see the module docstring)."""
    user = os.environ.get("NUMBA_CACHE_DIR")
    if user:
        return Path(user) / f"graphtrain-numba-{source_digest()}"
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "graphtrain" / f"numba-{source_digest()}"


def _is_graphtrain_source(py_file) -> bool:
    try:
        return Path(py_file).resolve().is_relative_to(_PACKAGE)
    except (OSError, ValueError):
        return False


def _locator_class(caching):
    """:class:`GraphtrainCacheLocator`, built on ``numba.core.caching``'s base classes."""

    class GraphtrainCacheLocator(caching._SourceFileBackedLocatorMixin, caching._CacheLocator):
        """Caches a function of graphtrain's own sources in :func:`cache_dir`; declines all others."""

        def __init__(self, py_func, py_file):
            self._py_file = py_file
            self._lineno = py_func.__code__.co_firstlineno
            self._cache_path = str(cache_dir() / self.get_suitable_cache_subpath(py_file))

        def get_cache_path(self):
            return self._cache_path

        @classmethod
        def from_function(cls, py_func, py_file):
            if not _is_graphtrain_source(py_file):
                return None
            return super().from_function(py_func, py_file)

    return GraphtrainCacheLocator


def locator_classes(caching) -> list:
    """Numba's list of cache locator classes (``CacheImpl._locator_classes``; ``_CacheImpl`` before 0.61)."""
    impl = getattr(caching, "CacheImpl", None) or caching._CacheImpl
    return impl._locator_classes


def _register(caching) -> None:
    """Put graphtrain's locator first in Numba's locator list (once)."""
    classes = locator_classes(caching)
    if not any(getattr(c, "__name__", "") == "GraphtrainCacheLocator" for c in classes):
        classes.insert(0, _locator_class(caching))


def configure() -> None:
    """Have Numba cache graphtrain's kernels in :func:`cache_dir` (see the module docstring)."""
    when_imported(_CACHING, _register)
