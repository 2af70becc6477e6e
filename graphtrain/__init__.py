"""graphtrain: distributed graph-learning training engine for fraud and risk graphs.

Importing ``graphtrain`` is cheap: it pulls in no torch, Ray, Numba or pyarrow. Sub-packages import
what they need:

- :mod:`graphtrain.partition` -- range partition book, on-disk dataset format, streaming partitioner.
- :mod:`graphtrain.kernels`   -- Numba sampling kernels (CPU, CUDA) and their NumPy references.
- :mod:`graphtrain.sampling`  -- neighbour sampler, mini-batches, loaders.
- :mod:`graphtrain.train`     -- Ray + torch.distributed trainer.
- :mod:`graphtrain.fraud`     -- synthetic transaction graphs, ring detection, reports.
"""
from graphtrain import _jit_cache
from graphtrain._version import __version__
from graphtrain.errors import GraphtrainError

_jit_cache.configure()

__all__ = ["__version__", "GraphtrainError"]
