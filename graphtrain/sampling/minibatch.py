"""The one type that flows from sampler to model: :class:`MiniBatch`.

A mini-batch is the sampled computation graph of ``batch_size`` seed nodes, laid out the way PyG's
``trim_to_layer`` expects (hop order):

- ``n_id``: global node IDs. Positions ``[0, batch_size)`` are the seeds, in the order given; then
  the nodes first reached at hop 1, then those first reached at hop 2, ... (``num_sampled_nodes``
  gives the size of each group).
- ``edge_index``: int64 ``[2, num_edges]`` positions into ``n_id``; row 0 is the source (the sampled
  in-neighbour), row 1 the destination, so messages flow ``edge_index[0] -> edge_index[1]`` (PyG's
  default ``source_to_target``). Hop-1 edges (into seeds) come first, then hop-2 edges (into hop-1
  nodes), ... (``num_sampled_edges`` per hop).
- ``e_id``: global edge IDs of those edges (through the range book: partition + local position).

In temporal mode the same global node can appear more than once, once per distinct time bound:
``node_time[i]`` is the time bound under which entry ``i`` was expanded (its root seed's time), and
every sampled edge into entry ``i`` has time ``<= node_time[i]`` (``<`` in strict mode). A node
reached from seeds with different times is therefore never shared between them, which is what keeps
future edges out of every seed's receptive field.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional

import numpy as np

from graphtrain.errors import ConfigError


@dataclass
class MiniBatch:
    """Sampled computation graph of one batch of seeds (see the module docstring for the layout).

    Attributes:
        n_id: int64 ``[num_nodes]`` global node IDs, seeds first.
        edge_index: int64 ``[2, num_edges]`` local (source, destination) positions into ``n_id``.
        e_id: int64 ``[num_edges]`` global edge IDs.
        num_sampled_nodes: ``[batch_size, n_hop1, n_hop2, ...]`` (length = hops + 1).
        num_sampled_edges: ``[e_hop1, e_hop2, ...]`` (length = hops).
        node_time: int64 ``[num_nodes]`` time bound per entry (temporal mode only).
        x: float32 ``[num_nodes, F]`` node features (filled by the loader's feature fetch).
        y: int64 ``[batch_size]`` labels of the seeds (filled by the loader).
        edge_attrs: per-edge columns ``[num_edges]`` (e.g. ``time``, ``weight``), when requested
            (the loader's ``edge_features`` fills the raw columns its features read, as float64).
        edge_attr: float32 ``[num_edges, D]`` edge features of the edge-aware models, in edge order
            (the loader's ``edge_features``; :mod:`graphtrain.sampling.edge_features`), or None.
    """

    n_id: np.ndarray
    edge_index: np.ndarray
    e_id: np.ndarray
    num_sampled_nodes: List[int]
    num_sampled_edges: List[int]
    node_time: Optional[np.ndarray] = None
    x: Optional[np.ndarray] = None
    y: Optional[np.ndarray] = None
    edge_attrs: Dict[str, np.ndarray] = field(default_factory=dict)
    edge_attr: Optional[np.ndarray] = None

    @property
    def batch_size(self) -> int:
        return int(self.num_sampled_nodes[0])

    @property
    def num_hops(self) -> int:
        return len(self.num_sampled_edges)

    @property
    def num_nodes(self) -> int:
        return int(self.n_id.shape[0])

    @property
    def num_edges(self) -> int:
        return int(self.edge_index.shape[1])

    @property
    def seeds(self) -> np.ndarray:
        """Global IDs of the seed nodes, ``[batch_size]``."""
        return self.n_id[: self.batch_size]

    @property
    def seed_time(self) -> Optional[np.ndarray]:
        return None if self.node_time is None else self.node_time[: self.batch_size]

    def validate(self) -> "MiniBatch":
        """Check the layout invariants; raise :class:`ConfigError` describing the first violation."""
        n, e = self.num_nodes, self.num_edges
        if self.edge_index.shape != (2, e) or self.e_id.shape != (e,):
            raise ConfigError(f"edge_index must be [2, E] and e_id [E], got {self.edge_index.shape} and {self.e_id.shape}")
        if sum(self.num_sampled_nodes) != n or sum(self.num_sampled_edges) != e:
            raise ConfigError("num_sampled_nodes / num_sampled_edges do not add up to the node / edge counts")
        if len(self.num_sampled_nodes) != len(self.num_sampled_edges) + 1:
            raise ConfigError("num_sampled_nodes must have one more entry than num_sampled_edges")
        if e and (self.edge_index.min() < 0 or self.edge_index.max() >= n):
            raise ConfigError("edge_index refers to positions outside n_id")
        node_lo = 0
        edge_lo = 0
        for hop, ne in enumerate(self.num_sampled_edges):
            dst = self.edge_index[1, edge_lo : edge_lo + ne]
            dst_lo, dst_hi = node_lo, node_lo + self.num_sampled_nodes[hop]
            if ne and (dst.min() < dst_lo or dst.max() >= dst_hi):
                raise ConfigError(f"hop {hop + 1} edges must point into the nodes first reached at hop {hop}")
            src = self.edge_index[0, edge_lo : edge_lo + ne]
            if ne and src.max() >= dst_hi + self.num_sampled_nodes[hop + 1]:
                raise ConfigError(f"hop {hop + 1} edges have sources beyond the nodes reached by hop {hop + 1}")
            node_lo = dst_hi
            edge_lo += ne
        if self.node_time is not None and self.node_time.shape != (n,):
            raise ConfigError("node_time must have one entry per node")
        if self.x is not None and self.x.shape[0] != n:
            raise ConfigError("x must have one row per node")
        if self.edge_attr is not None and (self.edge_attr.ndim != 2 or self.edge_attr.shape[0] != e):
            raise ConfigError("edge_attr must be [num_edges, D]")
        if self.y is not None and self.y.shape[0] != self.batch_size:
            raise ConfigError("y must have one entry per seed")
        return self

    def to_pyg(self):
        """A ``torch_geometric.data.Data`` that PyG layers consume directly.

        Fields: ``x``, ``edge_index``, ``y``, ``n_id``, ``e_id``, ``batch_size``,
        ``num_sampled_nodes``, ``num_sampled_edges`` (for ``trim_to_layer``), ``node_time``,
        ``edge_attr`` and ``edge_<name>`` tensors when present. Arrays are shared with the batch where possible.
        """
        import torch
        from torch_geometric.data import Data

        def t(a):
            return None if a is None else torch.from_numpy(np.ascontiguousarray(a))

        data = Data(
            x=t(self.x),
            edge_index=t(self.edge_index),
            y=t(self.y),
            n_id=t(self.n_id),
            e_id=t(self.e_id),
        )
        data.batch_size = self.batch_size
        data.num_sampled_nodes = list(self.num_sampled_nodes)
        data.num_sampled_edges = list(self.num_sampled_edges)
        data.num_nodes = self.num_nodes
        if self.node_time is not None:
            data.node_time = t(self.node_time)
        if self.edge_attr is not None:
            data.edge_attr = t(self.edge_attr)
        for name, col in self.edge_attrs.items():
            data[f"edge_{name}"] = t(col)
        return data

    def to_dgl(self):
        """DGL message-flow blocks, ``blocks[0]`` for the first layer (needs dgl; see :mod:`graphtrain.sampling.dgl_blocks`).

        Raises:
            ImportError: dgl is not importable (it is an optional dependency).
        """
        from graphtrain.sampling.dgl_blocks import to_dgl_blocks

        return to_dgl_blocks(self)
