"""Optional dependencies: probed once, each named with the ``setup.py`` extra that installs it.

The core install (``pip install graphtrain``) partitions, samples and trains. Features that need
more check here at their entry point, before any long stage, and raise
:class:`~graphtrain.errors.MissingDependencyError` saying what to install:

============  ===================  ===========================================================
extra         modules              needed by
============  ===================  ===========================================================
``metis``     pymetis              ``partition --method metis``
``fraud``     pandas, scipy        ``detect-rings``, ``demo``, ``prepare-data``, the tree baseline,
                                   ring detection and evaluation (:mod:`graphtrain.fraud`)
``report``    matplotlib           the fraud pipeline's HTML report figures
``tune``      optuna, pydantic     ``graphtrain tune`` (Ray Tune's Optuna search; Ray Tune needs pydantic)
``dgl``       dgl                  ``MiniBatch.to_dgl()`` (DGL 2.1 needs torch <= 2.2.1; its own
                                   ImportError, ``graphtrain.sampling.dgl_blocks.DGL_MISSING``)
============  ===================  ===========================================================

``pip install 'graphtrain[all]'`` (what the Makefile installs) has every extra but ``dgl``.
Probing finds the module without importing it, so it costs nothing at ``import graphtrain``.
"""
from __future__ import annotations

import functools
import importlib.util

from graphtrain.errors import MissingDependencyError

# module -> (extra, pip requirement)
EXTRAS = {
    "pymetis": ("metis", "pymetis"),
    "pandas": ("fraud", "pandas"),
    "scipy": ("fraud", "scipy"),
    "matplotlib": ("report", "matplotlib"),
    "optuna": ("tune", "optuna"),
    "pydantic": ("tune", "pydantic"),
    "dgl": ("dgl", "dgl"),
}
FRAUD_MODULES = ("pandas", "scipy", "matplotlib")


@functools.lru_cache(maxsize=None)
def available(module: str) -> bool:
    """Whether ``module`` can be imported (probed once per process, without importing it)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def require(*modules: str, feature: str) -> None:
    """Raise :class:`MissingDependencyError` naming the extras to install if any of ``modules`` is missing."""
    missing = [m for m in modules if not available(m)]
    if not missing:
        return
    extras = sorted({EXTRAS[m][0] for m in missing if m in EXTRAS})
    pips = " ".join(EXTRAS.get(m, (None, m))[1] for m in missing)
    raise MissingDependencyError(
        f"{feature} needs {', '.join(missing)}, which is not installed; install it with "
        f"pip install 'graphtrain[{','.join(extras)}]' (or pip install {pips})")
