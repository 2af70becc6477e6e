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

Processes on one host compile each of graphtrain's kernel signatures once: a compile of a graphtrain
signature cached here holds an ``flock`` on a lock file beside the function's cache index
(:func:`compile_lock`). Another process that needs that signature waits, then Numba finds it in
the cache and loads it, instead of compiling it too (two Ray workers starting on a
fresh cache; the test suite's two processes). Compiles of one process are serialised by Numba's own
lock first, and a compile holds the locks of the functions it compiles as callees, so locks are taken
in call order: no cycle. Where the lock file cannot be created or locked, the compile runs unlocked.

:func:`configure` runs when ``graphtrain`` is imported; it imports nothing heavy.
"""
from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import os
import re
from pathlib import Path
from typing import Iterator, Optional, Tuple

from graphtrain._import_hooks import when_imported

_PACKAGE = Path(__file__).resolve().parent
# a jit decorator (``@njit``, ``@numba.njit``, ``@cuda.jit``, ``@vectorize``), or a jit applied in an
# expression (``f = jit(f)``, with a jit passed into a factory as in kernels/hop_body.py)
_JIT_CODE = re.compile(rb"^[ \t]*@(?:\w+\.)*(?:n?jit|vectorize|guvectorize|stencil)\b"
                       rb"|[=:,(][ \t]*(?:\w+\.)*n?jit\([\w)]", re.MULTILINE)
_CACHING = "numba.core.caching"
_DISPATCHER = "numba.core.dispatcher"
_HELD = set()  # lock files this process holds (a recursive compile of a held function does not lock again)


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


def lock_path(dispatcher, args: tuple = ()) -> Optional[str]:
    """The compile lock file of one signature (argument types ``args``) of a Numba dispatcher cached by
    graphtrain's locator (beside its cache index), or None for any other dispatcher."""
    cache = getattr(dispatcher, "_cache", None)
    locator = getattr(getattr(cache, "_impl", None), "locator", None)
    index = getattr(getattr(cache, "_cache_file", None), "_index_path", None)
    if type(locator).__name__ != "GraphtrainCacheLocator" or not index:
        return None
    return f"{index}.{hashlib.sha256(str(tuple(args)).encode()).hexdigest()[:16]}.lock"


@contextlib.contextmanager
def compile_lock(dispatcher, args: tuple = ()) -> Iterator[None]:
    """Exclusive across this host's processes while ``dispatcher`` (a graphtrain function cached by
    :func:`cache_dir`) compiles the signature of argument types ``args``; nothing for any other
    dispatcher, or where the lock cannot be taken."""
    path = lock_path(dispatcher, args)
    if path is None or path in _HELD:
        yield
        return
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError:
        yield
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError:
            pass
        _HELD.add(path)
        try:
            yield
        finally:
            _HELD.discard(path)
    finally:
        os.close(fd)  # releases the lock


def _lock_compiles(dispatcher_module) -> None:
    """Wrap ``Dispatcher.compile`` so that a graphtrain function's compile holds :func:`compile_lock`
    (taken inside Numba's own compiler lock: one thread of a process at a time)."""
    cls = dispatcher_module.Dispatcher
    compile = cls.compile
    if getattr(compile, "_graphtrain_compile_lock", False):
        return
    from numba.core import sigutils
    from numba.core.compiler_lock import global_compiler_lock

    @functools.wraps(compile)
    def compile_locked(self, sig):
        if lock_path(self) is None:
            return compile(self, sig)
        args, _ = sigutils.normalize_signature(sig)
        with global_compiler_lock, compile_lock(self, args):
            return compile(self, sig)

    compile_locked._graphtrain_compile_lock = True
    cls.compile = compile_locked


def configure() -> None:
    """Have Numba cache graphtrain's kernels in :func:`cache_dir`, one compile per signature on this
    host (see the module docstring)."""
    when_imported(_CACHING, _register)
    when_imported(_DISPATCHER, _lock_compiles)
