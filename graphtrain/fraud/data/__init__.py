"""A user's transactions and accounts, on disk and in memory, and the tables they come from (the fraud stages' lowest layer).

- :mod:`~graphtrain.fraud.data.tables` -- Parquet/CSV/TSV files: read, check columns, write.
- :mod:`~graphtrain.fraud.data.transaction_dataset` -- :class:`TransactionDataset`: the pipeline's graph,
  a partitioned dataset streamed from the user's files (accounts by global ID); every stage reads it.
- :mod:`~graphtrain.fraud.data.account_aggregates` -- the tree baseline's account features, partition
  by partition, into memory-mapped tables.
- :mod:`~graphtrain.fraud.data.touching_subgraph` -- the transactions touching a set of accounts (ring
  candidates, report cases), as a small :class:`TransactionGraph`.
- :mod:`~graphtrain.fraud.data.transaction_graph` -- :class:`TransactionGraph` and :class:`AccountTable`:
  a graph in memory (accounts ``0 .. N-1``): small subgraphs, tests, and the in-memory references.
- :mod:`~graphtrain.fraud.data.datasets` -- public datasets (AMLSim, Amazon U-P-U, Tolokers) prepared into
  that shape (``graphtrain prepare-data``).
"""
from graphtrain._lazy import lazy_exports

_LAZY = {
    "TransactionGraph": "graphtrain.fraud.data.transaction_graph",
    "AccountTable": "graphtrain.fraud.data.transaction_graph",
    "load_accounts": "graphtrain.fraud.data.transaction_graph",
    "load_transaction_graph": "graphtrain.fraud.data.transaction_graph",
    "TransactionDataset": "graphtrain.fraud.data.transaction_dataset",
    "read_table": "graphtrain.fraud.data.tables",
    "write_table": "graphtrain.fraud.data.tables",
    "check_columns": "graphtrain.fraud.data.tables",
}

__all__, __getattr__, __dir__ = lazy_exports(__name__, _LAZY)
