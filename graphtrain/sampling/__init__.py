"""Neighbour sampling: seeds -> :class:`MiniBatch` (PyG hop order) -> PyG ``Data`` or DGL blocks.

Modules, in the order data flows:

- :mod:`~graphtrain.sampling.hop` -- the one-hop boundary (:class:`HopSampler`, :class:`LocalHopSampler`).
- :mod:`~graphtrain.sampling.neighbor` -- :class:`NeighborSampler` (keys, hop loop, unique + relabel).
- :mod:`~graphtrain.sampling.minibatch` -- :class:`MiniBatch`, ``to_pyg()``, ``to_dgl()``.
- :mod:`~graphtrain.sampling.features` -- features/labels by global ID through the range book.
- :mod:`~graphtrain.sampling.loader` -- :class:`NodeLoader` (shuffled batches, prefetch).
- :mod:`~graphtrain.sampling.dgl_blocks` -- the DGL conversion (dgl optional).
"""
