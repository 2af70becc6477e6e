"""Neighbour sampling: seeds -> :class:`MiniBatch` (PyG hop order) -> PyG ``Data`` or DGL blocks.

Modules, in the order data flows:

- :mod:`~graphtrain.sampling.hop` -- the one-hop boundary (:class:`HopSampler`, :class:`LocalHopSampler`).
- :mod:`~graphtrain.sampling.neighbor` -- :class:`NeighborSampler` (keys, hop loop, unique + relabel).
- :mod:`~graphtrain.sampling.minibatch` -- :class:`MiniBatch`, ``to_pyg()``, ``to_dgl()``.
- :mod:`~graphtrain.sampling.features` -- features/labels by global ID through the range book.
- :mod:`~graphtrain.sampling.loader` -- :class:`NodeLoader` (shuffled batches, prefetch).
- :mod:`~graphtrain.sampling.dgl_blocks` -- the DGL conversion (dgl optional).
- :mod:`~graphtrain.sampling.partitioned` -- a whole dataset sampled in one process, partition by partition.

Across workers (over :class:`graphtrain.comm.Exchange`):

- :mod:`~graphtrain.sampling.distributed_sampler` -- :class:`CollectiveHopSampler` (the batch-level
  hooks of sampling together) and :class:`DistributedHopSampler` (hops answered by their owners).
- :mod:`~graphtrain.sampling.remote_features` -- :class:`DistributedNodeData`, ``fetch_node_rows``,
  the hot-node feature cache; :mod:`~graphtrain.sampling.feature_carry` -- rows carried in hop answers.
- :mod:`~graphtrain.sampling.shard` -- a worker's run of partitions (:func:`open_worker_shard`).
"""
