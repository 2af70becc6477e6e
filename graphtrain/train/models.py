"""GraphSAGE, GAT and GCN node classifiers built from ``torch_geometric.nn`` layers.

Every model here is a :class:`GNN`: ``num_layers`` message-passing layers, ReLU + dropout between
them (:func:`graphtrain.train.dropout.keyed_relu_dropout`: ``F.dropout(F.relu(h))``'s algorithm with
the mask drawn from the training step's generator, or the opt-in fused CPU kernel), the last layer
producing class logits. Two ways to run it:

- **sampled mini-batches** (training): ``model(x, edge_index, num_sampled_nodes, num_sampled_edges)``
  on a :class:`~graphtrain.sampling.minibatch.MiniBatch` in PyG hop order. Before layer ``l`` the
  batch is cut to the nodes and edges layer ``l`` still needs (the cut of PyG's
  :func:`~torch_geometric.utils.trim_to_layer`), and only the nodes of hops ``0 .. L-1-l`` get layer-``l`` outputs (SAGE and GAT
  run bipartite, like DGL's blocks), so the last layer only computes the seeds; ``out[:batch_size]``
  are their logits.
- **layer-wise** (full-graph inference): :meth:`GNN.layer` applies one layer to a subgraph
  whose first rows are the destination nodes (see :mod:`graphtrain.train.inference`). GCN there
  needs every row's in-degree in the whole graph (``in_degree``; :attr:`GNN.needs_in_degrees`): its
  normalisation ``1 / sqrt(deg(src) deg(dst))`` uses the sources' degrees, which a subgraph of
  some destinations' in-edges does not hold. With them, layer-wise GCN is the full-graph GCN exactly.
  (A sampled batch is normalised by the batch's own degrees, as PyG's ``trim_to_layer`` does:
  sampled GCN approximates the full-graph model, it is not equal to it.)

A user model can replace these (``Trainer(model=my_module)``): any ``torch.nn.Module`` with
``forward(x, edge_index, num_sampled_nodes_per_hop, num_sampled_edges_per_hop) -> logits`` trains;
layer-wise inference also needs ``num_layers``, ``layer_out_channels(l)`` and ``layer(l, x, edge_index, num_dst)`` (outputs of the first ``num_dst`` nodes);
one whose ``needs_in_degrees`` is true is called ``layer(l, x, edge_index, num_dst, in_degree=...)``.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import List, Optional

import torch
from torch import nn

from graphtrain.errors import ConfigError
from graphtrain.train.config import MODELS
from graphtrain.train.dropout import LayerKey, draw_layer_key, keyed_relu_dropout


@dataclass(frozen=True)
class ModelConfig:
    """What is needed to rebuild a model (stored in every checkpoint's manifest).

    Attributes:
        name: ``"sage"``, ``"gat"`` or ``"gcn"``.
        in_channels: node feature width F.
        out_channels: number of classes.
        hidden_channels: width of the hidden layers (for GAT: all heads together).
        num_layers: message-passing layers (= sampling hops).
        dropout: dropout probability after each hidden layer.
        heads: attention heads of GAT's hidden layers (``hidden_channels`` must divide by it).
        activation_checkpointing: recompute each layer's activations in the backward pass instead of
            keeping them (less memory for deep or wide models, about one extra forward pass of time).
    """

    name: str
    in_channels: int
    out_channels: int
    hidden_channels: int = 128
    num_layers: int = 2
    dropout: float = 0.2
    heads: int = 2
    activation_checkpointing: bool = False

    def validate(self) -> "ModelConfig":
        if self.name not in MODELS:
            raise ConfigError(f"model must be one of {MODELS}, got {self.name!r}")
        for what, v in (("in_channels", self.in_channels), ("out_channels", self.out_channels),
                        ("hidden_channels", self.hidden_channels), ("num_layers", self.num_layers), ("heads", self.heads)):
            if not isinstance(v, int) or v < 1:
                raise ConfigError(f"{what} must be a positive integer, got {v!r}")
        if self.out_channels < 2:
            raise ConfigError(f"a classifier needs at least 2 classes, got out_channels={self.out_channels}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.name == "gat" and self.hidden_channels % self.heads:
            raise ConfigError(f"GAT hidden_channels ({self.hidden_channels}) must be a multiple of heads ({self.heads})")
        return self

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        return cls(**d).validate()


def _conv(name: str, c_in: int, c_out: int, heads: int, last: bool) -> nn.Module:
    from torch_geometric.nn import GATConv, GCNConv, SAGEConv

    if name == "sage":
        return SAGEConv(c_in, c_out, aggr="mean")
    if name == "gcn":
        return GCNConv(c_in, c_out, add_self_loops=True, normalize=True)
    if last:
        return GATConv(c_in, c_out, heads=1, concat=False)
    return GATConv(c_in, c_out // heads, heads=heads, concat=True)


class GNN(nn.Module):
    """A stack of PyG convolution layers for node classification (see the module docstring)."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config.validate()
        L = config.num_layers
        widths = [config.in_channels] + [config.hidden_channels] * (L - 1) + [config.out_channels]
        self.convs = nn.ModuleList(
            _conv(config.name, widths[l], widths[l + 1], config.heads, last=l == L - 1) for l in range(L)
        )
        self._widths = widths

    @property
    def num_layers(self) -> int:
        return len(self.convs)

    def layer_out_channels(self, l: int) -> int:
        return self._widths[l + 1]

    @property
    def needs_in_degrees(self) -> bool:
        """Whether :meth:`layer` on a subgraph needs ``in_degree`` to give the full-graph result (GCN)."""
        return self.config.name == "gcn"

    def layer(self, l: int, x: torch.Tensor, edge_index: torch.Tensor, num_dst: Optional[int] = None,
              in_degree: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Layer ``l`` on a (sub)graph: ``[N, in_l] -> [num_dst, out_l]`` (ReLU + dropout unless last).

        Only the first ``num_dst`` nodes (default: all) get outputs; every edge must point into them.
        SAGE and GAT run bipartite (sources ``x``, destinations ``x[:num_dst]``), so nodes that only
        send messages cost nothing beyond their rows of ``x``; GCN computes every row and slices.

        ``in_degree`` (GCN; ignored by SAGE and GAT): ``[N]`` in-degree of each row's node in the
        whole graph, self-loops not counted. GCN then normalises by these degrees instead of the
        subgraph's (see :func:`_gcn_with_degrees`).
        """
        return self._layer(l, x, edge_index, num_dst, in_degree, None)

    def _dropout_key(self) -> Optional[LayerKey]:
        """The mask key of one hidden layer's dropout (None: no dropout runs)."""
        return draw_layer_key() if self.training and self.config.dropout > 0 else None

    def _layer(self, l: int, x: torch.Tensor, edge_index: torch.Tensor, num_dst: Optional[int],
               in_degree: Optional[torch.Tensor], dropout_key: Optional[LayerKey]) -> torch.Tensor:
        """:meth:`layer` with the dropout mask's key given (drawn here when None and training)."""
        conv = self.convs[l]
        if in_degree is not None and self.config.name == "gcn":
            h = _gcn_with_degrees(conv, x, edge_index, x.shape[0] if num_dst is None else num_dst, in_degree)
        elif num_dst is None or num_dst == x.shape[0]:
            h = conv(x, edge_index)
        elif self.config.name in ("sage", "gat"):
            h = conv((x, x[:num_dst]), edge_index)
        else:
            h = conv(x, edge_index)[:num_dst]
        if l < self.num_layers - 1:
            key = dropout_key or self._dropout_key()
            h = torch.relu(h) if key is None else keyed_relu_dropout(h, self.config.dropout, key)
        return h

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor,
                num_sampled_nodes_per_hop: Optional[List[int]] = None,
                num_sampled_edges_per_hop: Optional[List[int]] = None) -> torch.Tensor:
        """Logits ``[N', out_channels]``; with hop counts the first ``batch_size`` rows are the seeds'."""
        L = self.num_layers
        # every hidden layer's mask key drawn up front: a checkpointed layer recomputed in the
        # backward pass redraws the same mask from its key
        keys = [self._dropout_key() for _ in range(L - 1)] + [None]
        for l in range(L):
            ei, num_dst = edge_index, None
            if num_sampled_nodes_per_hop is not None:
                # trim_to_layer's cut: layer l reads the nodes of hops 0..L-l and the edges of hops 1..L-l;
                # only the nodes of hops 0..L-1-l (all the edges point into them) need its output
                nodes, edges = num_sampled_nodes_per_hop, num_sampled_edges_per_hop
                x = x[: int(sum(nodes[: L - l + 1]))]
                ei = edge_index[:, : int(sum(edges[: L - l]))]
                num_dst = int(sum(nodes[: L - l]))
            if self.config.activation_checkpointing and self.training:
                from torch.utils.checkpoint import checkpoint

                x = checkpoint(self._layer, l, x, ei, num_dst, None, keys[l], use_reentrant=False)
            else:
                x = self._layer(l, x, ei, num_dst, None, keys[l])
        return x


def _gcn_with_degrees(conv, x: torch.Tensor, edge_index: torch.Tensor, num_dst: int,
                      in_degree: torch.Tensor) -> torch.Tensor:
    """``conv`` (a PyG ``GCNConv``) for the first ``num_dst`` rows, normalised by given degrees.

    The same function as ``conv(x, edge_index)`` on the graph whose in-degrees are ``in_degree``:
    like PyG's ``gcn_norm`` (``add_remaining_self_loops``), self-loop edges are dropped and every
    node gets one of weight 1, so ``d = in_degree + 1`` and the edge ``j -> i`` weighs
    ``1 / sqrt(d_j d_i)``; then ``lin``, the weighted sum into each destination, and ``bias``.
    """
    src, dst = edge_index[0], edge_index[1]
    other = src != dst
    src, dst = src[other], dst[other]
    inv_sqrt = (in_degree.float() + 1.0).rsqrt()
    h = conv.lin(x)
    w = (inv_sqrt[src] * inv_sqrt[dst]).to(h.dtype)
    loops = (inv_sqrt[:num_dst] * inv_sqrt[:num_dst]).to(h.dtype)
    out = (h[:num_dst] * loops.unsqueeze(1)).index_add(0, dst, h[src] * w.unsqueeze(1))
    if conv.bias is not None:
        out = out + conv.bias
    return out


def build_model(config: ModelConfig) -> GNN:
    return GNN(config)
