"""Collectives among the workers of a run: :class:`Exchange` (see :mod:`graphtrain.comm.exchange`).

The one collective layer of graphtrain: the sampling data plane sends hop requests, answers and
feature rows through it, and training uses it for its small reductions and gathers.
"""
from graphtrain.comm.exchange import Exchange, ExchangeStats, MessageFill

__all__ = ["Exchange", "ExchangeStats", "MessageFill"]
