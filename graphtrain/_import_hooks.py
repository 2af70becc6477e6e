"""Run a callback right after a module is first imported, without importing it ourselves.

graphtrain adjusts two Numba internals (:mod:`graphtrain._jit_cache`, :mod:`graphtrain._numba_inline`)
but ``import graphtrain`` must not import Numba. :func:`when_imported` calls ``callback(module)`` at
once if the module is already imported, else once, right after its first import (a finder put first
in ``sys.meta_path`` that wraps the module's loader and then removes itself).
"""
from __future__ import annotations

import importlib.abc
import importlib.util
import sys
from typing import Callable


class _AfterImport(importlib.abc.MetaPathFinder):
    """Calls ``callback(module)`` right after ``name`` is first executed, then leaves ``sys.meta_path``."""

    def __init__(self, name: str, callback: Callable) -> None:
        self.name, self.callback = name, callback

    def find_spec(self, name, path, target=None):
        if name != self.name:
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None:
            return spec
        exec_module = spec.loader.exec_module
        callback = self.callback

        def exec_then_call(module):
            exec_module(module)
            callback(module)

        spec.loader.exec_module = exec_then_call
        return spec


def when_imported(name: str, callback: Callable) -> None:
    """``callback(module)`` now if ``name`` is imported, else right after its first import (once per
    ``(name, callback)``: a second registration of the same pair before the import adds nothing)."""
    if name in sys.modules:
        callback(sys.modules[name])
    elif not any(isinstance(f, _AfterImport) and f.name == name and f.callback is callback for f in sys.meta_path):
        sys.meta_path.insert(0, _AfterImport(name, callback))
