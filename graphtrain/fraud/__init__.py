"""Fraud-ring detection: synthetic transaction graphs, the tree baseline, ring detection,
evaluation and reports.

The stages and the module that owns each:

- ``generate`` (config in ``generator_config``): a synthetic transaction graph with planted rings
  (``typologies``, ``planting``, ``synthetic_accounts``, random draws in ``draws``), streamed to
  Parquet/CSV.
- ``transaction_graph``: a user's transaction and account tables loaded in memory (accounts
  numbered ``0 .. N-1``); ``tables`` reads and writes the files; ``datasets`` loads the public
  datasets (AMLSim, Amazon U-P-U, Tolokers); ``split`` makes train/val/test splits.
- ``baseline``: gradient-boosted trees on features plus neighbour aggregates (scores per account).
- ``rings``: from any model's scores to ranked rings with evidence (``ring_groups``,
  ``ring_shapes``, ``bridges``, ``peeling``).
- ``evaluate``: node-level and ring-level metrics; ``report``: one HTML page with figures.
- ``pipeline``: the stages above composed; model scores plug in as an array.
"""
