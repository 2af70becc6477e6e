"""Lazy package exports: names resolved from their modules on first use, so importing a package stays cheap."""
from __future__ import annotations

import importlib
from typing import Callable, Dict, List, Tuple


def lazy_exports(package: str, names: Dict[str, str], eager: Tuple[str, ...] = ()) -> Tuple[List[str], Callable, Callable]:
    """``(__all__, __getattr__, __dir__)`` for ``package`` exporting ``names`` (name -> defining module).

    A name whose module is the name's own full path (``{"partition": "graphtrain.partition"}`` in
    ``graphtrain``) resolves to that module. ``eager`` names are defined in the package itself and
    only listed in ``__all__``.
    """
    exported = [*eager, *names]

    def __getattr__(name: str):
        if name in names:
            module = importlib.import_module(names[name])
            return module if names[name] == f"{package}.{name}" else getattr(module, name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__():
        import sys

        return sorted(set(vars(sys.modules[package])) | set(exported))

    return exported, __getattr__, __dir__
