"""A user's transactions and accounts in memory, and the tables they come from (the fraud stages' lowest layer).

- :mod:`~graphtrain.fraud.data.tables` -- Parquet/CSV/TSV files: read, check columns, write.
- :mod:`~graphtrain.fraud.data.transaction_graph` -- :class:`TransactionGraph` and :class:`AccountTable`:
  raw account IDs numbered ``0 .. N-1`` once, features, labels, a given split.
- :mod:`~graphtrain.fraud.data.datasets` -- public datasets (AMLSim, Amazon U-P-U, Tolokers) prepared into
  that shape (``graphtrain prepare-data``).
"""
from graphtrain._lazy import lazy_exports

_LAZY = {
    "TransactionGraph": "graphtrain.fraud.data.transaction_graph",
    "AccountTable": "graphtrain.fraud.data.transaction_graph",
    "load_accounts": "graphtrain.fraud.data.transaction_graph",
    "load_transaction_graph": "graphtrain.fraud.data.transaction_graph",
    "read_table": "graphtrain.fraud.data.tables",
    "write_table": "graphtrain.fraud.data.tables",
    "check_columns": "graphtrain.fraud.data.tables",
}

__all__, __getattr__, __dir__ = lazy_exports(__name__, _LAZY)
