"""graphtrain: distributed graph-learning training engine for fraud and risk graphs.

The user-facing API, importable from here (each loads its module on first use, so ``import
graphtrain`` stays cheap: it pulls in no torch, Ray, Numba or pyarrow):

- :func:`partition` -- raw edge list (+ node table) -> partitioned dataset directory
  (:mod:`graphtrain.partition`; the package itself is callable as that function).
- :func:`open_dataset` -- open a dataset directory (``.graph()`` the whole graph, ``.partition(p)``).
- :class:`NeighborSampler`, :class:`NodeLoader`, :class:`MiniBatch` -- sampling (:mod:`graphtrain.sampling`).
- :class:`Trainer`, :func:`predict` -- Ray + torch.distributed training and scoring (:mod:`graphtrain.train`).
- :func:`detect_rings` -- the fraud-ring pipeline on a user's transactions and accounts;
  :func:`generate` -- a synthetic transaction graph with planted rings (:mod:`graphtrain.fraud`).

Sub-packages, in the order data flows (docs/layout.md is the map of where things live):

- :mod:`graphtrain.partition` -- range partition book, on-disk dataset format, streaming partitioner.
- :mod:`graphtrain.kernels`   -- Numba sampling kernels (CPU, CUDA) and their NumPy references.
- :mod:`graphtrain.comm`      -- the collective layer between workers.
- :mod:`graphtrain.sampling`  -- neighbour sampler, mini-batches, loaders.
- :mod:`graphtrain.train`     -- Ray + torch.distributed trainer.
- :mod:`graphtrain.fraud`     -- synthetic transaction graphs, ring detection, reports.
"""
from graphtrain import _jit_cache, _numba_inline
from graphtrain._lazy import lazy_exports
from graphtrain._version import __version__
from graphtrain.errors import GraphtrainError

_jit_cache.configure()
_numba_inline.install()

_LAZY = {
    "partition": "graphtrain.partition",  # the package itself, callable as graphtrain.partition.partitioner.partition
    "open_dataset": "graphtrain.partition.format",
    "NeighborSampler": "graphtrain.sampling.neighbor",
    "NodeLoader": "graphtrain.sampling.loader",
    "MiniBatch": "graphtrain.sampling.minibatch",
    "Trainer": "graphtrain.train.trainer",
    "predict": "graphtrain.train.trainer",
    "detect_rings": "graphtrain.fraud.pipeline.detect",
    "generate": "graphtrain.fraud.synth.generate",
}

__all__, __getattr__, __dir__ = lazy_exports(__name__, _LAZY, eager=("__version__", "GraphtrainError"))
