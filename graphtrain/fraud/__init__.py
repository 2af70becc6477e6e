"""Fraud-ring detection: synthetic transaction graphs, the tree baseline, ring detection,
evaluation and reports (see docs/fraud.md).

The stages and the modules that own them:

- generation: ``generator_config`` (the options), ``generate`` (streaming writer), ``typologies``
  (ring shapes and legitimate look-alikes), ``planting`` (who is in which pattern; transactions
  on demand), ``placement`` (where planted rows go in the stream), ``synthetic_accounts`` (IDs,
  features, noisy labels), ``draws`` (random variates from the counter-based RNG).
- data in memory: ``tables`` (Parquet/CSV files), ``transaction_graph`` (a user's transactions and
  accounts, numbered ``0 .. N-1``), ``datasets`` (AMLSim, Amazon U-P-U, Tolokers), ``split``.
- ``baseline``: gradient-boosted trees on features plus neighbour aggregates.
- rings from any model's scores: ``rings`` (ranked rings with evidence), ``ring_groups`` (which
  accounts form a group), ``ring_shapes`` (typology guess and roles), ``bridges``, ``peeling``.
- ``evaluate`` (node and ring metrics), ``report`` + ``report_figures`` (HTML page and PNGs).
- ``pipeline``: the stages after scoring, composed; model scores plug in as an array.
"""
