"""Range partitioning of raw edge lists into contiguous-ID partitions, and the on-disk dataset format.

- :class:`RangePartitionBook` (``book.py``): the only ID-range type.
- ``format.py``: the dataset directory (``open_dataset``).
- :func:`partition` / :func:`partition_arrays` (``partitioner.py``): the streaming pipeline.
- :class:`IdMap` (``idmap.py``): batched raw <-> global node-ID lookups.

The package itself is callable: ``graphtrain.partition(edges, out, num_parts, ...)`` is
:func:`partition` (so ``from graphtrain import partition`` names one thing whether or not the
package was imported before). Heavy modules are imported on first use, so ``import
graphtrain.partition`` stays cheap.
"""
import sys
import types

from graphtrain._lazy import lazy_exports
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

__all__, __getattr__, __dir__ = lazy_exports(__name__, _LAZY, eager=("RangePartitionBook",))


class _CallablePackage(types.ModuleType):
    """``graphtrain.partition(...)`` calls :func:`graphtrain.partition.partitioner.partition`."""

    def __call__(self, *args, **kwargs):
        from graphtrain.partition.partitioner import partition

        return partition(*args, **kwargs)


sys.modules[__name__].__class__ = _CallablePackage
