"""Range partitioning of raw edge lists into contiguous-ID partitions, and the on-disk dataset format.

- :class:`RangePartitionBook` (``book.py``): the only ID-range type.
- ``format.py``: the dataset directory (``open_dataset``).
- :func:`partition` / :func:`partition_arrays` (``partitioner.py``): the streaming pipeline.
- :class:`IdMap` (``idmap.py``): batched raw <-> global node-ID lookups.

Heavy modules are imported on first use, so ``import graphtrain.partition`` stays cheap.
"""
from graphtrain.partition.book import RangePartitionBook

_LAZY = {
    "open_dataset": "graphtrain.partition.format",
    "Dataset": "graphtrain.partition.format",
    "partition": "graphtrain.partition.partitioner",
    "partition_arrays": "graphtrain.partition.partitioner",
    "PartitionOptions": "graphtrain.partition.partitioner",
    "EdgeColumns": "graphtrain.partition.partitioner",
    "NodeColumns": "graphtrain.partition.partitioner",
    "PartitionSummary": "graphtrain.partition.partitioner",
    "TableSource": "graphtrain.partition.ingest",
    "IdMap": "graphtrain.partition.idmap",
}

__all__ = ["RangePartitionBook", *_LAZY]


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'graphtrain.partition' has no attribute {name!r}")
