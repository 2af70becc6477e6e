"""GraphSAGE, GAT, GCN and edge-aware node classifiers built from ``torch_geometric.nn`` layers.

The models (``ModelConfig.name``, :data:`graphtrain.train.config.MODELS`):

- ``sage``, ``gat``, ``gcn``: PyG's ``SAGEConv`` (mean), ``GATConv``, ``GCNConv``; node features only.
- ``gine``: PyG's ``GINEConv`` (a 2-layer MLP of ``(1 + eps) x_i + sum_j relu(x_j + W e_ij)``; the
  MLP's hidden width is the layer's output width, the input width in the last layer).
- ``transformer``: PyG's ``TransformerConv(edge_dim=D)`` (attention whose keys and values add the
  projected edge features; ``heads`` heads in hidden layers, concatenated).
- ``sage_edge``: :class:`EgoNeighbourConv` with edge messages ``relu(x_j + W e_ij)``.
- ``bwgnn``: :class:`BetaWaveletGNN`, BWGNN's band-pass filters (Tang et al., ICML 2022): an MLP,
  then ``num_layers + 1`` beta-wavelet filters of the graph Laplacian side by side, then an MLP. Its
  hidden layers carry the Laplacian powers rather than a convolution's output (no ReLU between them).

The edge-aware ones (:data:`~graphtrain.train.config.EDGE_MODELS`) read ``edge_attr [E, D]``
(``ModelConfig.edge_dim = D``). ``aggregators`` and ``ego`` (heterophily options) apply to ``sage``
and ``sage_edge``: several neighbour aggregators at once (their outputs concatenated), and
``ego="concat"`` keeps a node's own transform and its neighbours' aggregate side by side in each
hidden layer's output (H2GCN's separation) instead of summing them (``sage`` with the defaults --
mean, sum -- is PyG's ``SAGEConv`` itself; any other choice builds :class:`EgoNeighbourConv`).

Every model here is a :class:`GNN`: ``num_layers`` message-passing layers, ReLU + dropout between
them (:func:`graphtrain.train.dropout.keyed_relu_dropout`: ``F.dropout(F.relu(h))``'s algorithm with
the mask drawn from the training step's generator, or the opt-in fused CPU kernel), the last layer
producing class logits. Two ways to run it:

- **sampled mini-batches** (training): ``model(x, edge_index, num_sampled_nodes, num_sampled_edges, edge_attr=None)``
  on a :class:`~graphtrain.sampling.minibatch.MiniBatch` in PyG hop order. Before layer ``l`` the
  batch is cut to the nodes and edges layer ``l`` still needs (the cut of PyG's
  :func:`~torch_geometric.utils.trim_to_layer`), and only the nodes of hops ``0 .. L-1-l`` get layer-``l`` outputs (SAGE and GAT
  run bipartite, like DGL's blocks), so the last layer only computes the seeds; ``out[:batch_size]``
  are their logits. ``edge_attr`` is cut with the edges.
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
Edge features reach a user model only when ``TrainConfig.edge_features`` is set: then it is called
with ``edge_attr=`` (float32 ``[E, D]``, standardised) in ``forward`` and ``layer``; without them the
contract above is unchanged.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import List, Optional, Sequence, Tuple

import torch
from torch import nn

from graphtrain.errors import ConfigError
from graphtrain.train.config import AGGREGATORS, EDGE_MODELS, EGO_MODES, MODELS
from graphtrain.train.dropout import LayerKey, draw_layer_key, keyed_relu_dropout


@dataclass(frozen=True)
class ModelConfig:
    """What is needed to rebuild a model (stored in every checkpoint's manifest).

    Attributes:
        name: a name of :data:`~graphtrain.train.config.MODELS`.
        in_channels: node feature width F.
        out_channels: number of classes.
        hidden_channels: width of the hidden layers (for GAT: all heads together).
        num_layers: message-passing layers (= sampling hops).
        dropout: dropout probability after each hidden layer.
        heads: attention heads of GAT's hidden layers (``hidden_channels`` must divide by it).
        activation_checkpointing: recompute each layer's activations in the backward pass instead of
            keeping them (less memory for deep or wide models, about one extra forward pass of time).
        edge_dim: width ``D`` of ``edge_attr`` (the edge-aware models need ``D >= 1``; 0: none).
        aggregators: neighbour aggregations of ``sage`` / ``sage_edge``, outputs concatenated.
        ego: ``"sum"`` (own and neighbour transforms added, as ``SAGEConv``) or ``"concat"`` (side by
            side in every hidden layer; the last layer sums, i.e. a linear map of the concatenation).
    """

    name: str
    in_channels: int
    out_channels: int
    hidden_channels: int = 128
    num_layers: int = 2
    dropout: float = 0.2
    heads: int = 2
    activation_checkpointing: bool = False
    edge_dim: int = 0
    aggregators: Tuple[str, ...] = ("mean",)
    ego: str = "sum"

    def validate(self) -> "ModelConfig":
        if self.name not in MODELS:
            raise ConfigError(f"model must be one of {MODELS}, got {self.name!r}")
        object.__setattr__(self, "aggregators", tuple(self.aggregators))
        check_heterophily_options(self.name, self.aggregators, self.ego)
        if not isinstance(self.edge_dim, int) or self.edge_dim < 0:
            raise ConfigError(f"edge_dim must be a non-negative integer, got {self.edge_dim!r}")
        if self.name in EDGE_MODELS and self.edge_dim < 1:
            raise ConfigError(f"model {self.name!r} reads edge features: it needs edge_dim >= 1 (TrainConfig.edge_features)")
        for what, v in (("in_channels", self.in_channels), ("out_channels", self.out_channels),
                        ("hidden_channels", self.hidden_channels), ("num_layers", self.num_layers), ("heads", self.heads)):
            if not isinstance(v, int) or v < 1:
                raise ConfigError(f"{what} must be a positive integer, got {v!r}")
        if self.out_channels < 2:
            raise ConfigError(f"a classifier needs at least 2 classes, got out_channels={self.out_channels}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.name in ("gat", "transformer") and self.hidden_channels % self.heads:
            raise ConfigError(f"{self.name} hidden_channels ({self.hidden_channels}) must be a multiple of heads ({self.heads})")
        return self

    def to_dict(self) -> dict:
        d = asdict(self)
        d["aggregators"] = list(self.aggregators)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        return cls(**d).validate()


def check_heterophily_options(model: str, aggregators: Sequence[str], ego: str) -> None:
    """``aggregators`` (distinct names of :data:`AGGREGATORS`) and ``ego`` (:data:`EGO_MODES`) are
    valid, and non-default only for the models that use them (``sage``, ``sage_edge``)."""
    aggregators = tuple(aggregators)
    if not aggregators or any(a not in AGGREGATORS for a in aggregators) or len(set(aggregators)) != len(aggregators):
        raise ConfigError(f"aggregators must be distinct names among {AGGREGATORS}, got {list(aggregators)}")
    if ego not in EGO_MODES:
        raise ConfigError(f"ego must be one of {EGO_MODES}, got {ego!r}")
    if model not in ("sage", "sage_edge", "custom") and (aggregators != ("mean",) or ego != "sum"):
        raise ConfigError(f"aggregators and ego apply to the sage and sage_edge models, not {model!r}")


class EgoNeighbourConv(nn.Module):
    """SAGE-style layer with several aggregators, optional edge messages and ego/neighbour concat.

    ``h_i = W_ego x_i  (+ or ||)  W_nbr [agg_1(m_ij) || ... || agg_k(m_ij)]`` over the in-edges
    ``j -> i``, with the message ``m_ij = x_j``, or ``relu(x_j + W_edge e_ij)`` when ``edge_dim > 0``
    (GINE's message). ``ego="concat"``: ``W_ego`` and ``W_nbr`` each give half of ``c_out`` (the
    neighbour half the odd column) and are concatenated; ``"sum"``: both give ``c_out`` and add.
    Shapes: ``x`` ``[N, c_in]`` or a (sources, destinations) pair; ``edge_attr`` ``[E, edge_dim]``;
    out ``[N_dst, c_out]``. A node without in-edges aggregates zeros.
    """

    def __init__(self, c_in: int, c_out: int, aggregators: Sequence[str] = ("mean",), ego: str = "sum",
                 edge_dim: int = 0):
        super().__init__()
        from torch_geometric.nn.aggr import MultiAggregation
        from torch_geometric.nn.resolver import aggregation_resolver

        aggregators = list(aggregators)
        self.aggr = (MultiAggregation(aggregators, mode="cat") if len(aggregators) > 1
                     else aggregation_resolver(aggregators[0]))
        self.concat = ego == "concat"
        c_ego = c_out // 2 if self.concat else c_out
        c_nbr = c_out - c_ego if self.concat else c_out
        self.lin_ego = nn.Linear(c_in, c_ego)
        self.lin_nbr = nn.Linear(c_in * len(aggregators), c_nbr, bias=False)
        self.lin_edge = nn.Linear(edge_dim, c_in) if edge_dim else None

    def forward(self, x, edge_index: torch.Tensor, edge_attr: Optional[torch.Tensor] = None) -> torch.Tensor:
        x_src, x_dst = x if isinstance(x, tuple) else (x, x)
        msg = x_src[edge_index[0]]
        if self.lin_edge is not None:
            if edge_attr is None:
                raise ConfigError("this layer reads edge features; call it with edge_attr")
            msg = torch.relu(msg + self.lin_edge(edge_attr.to(msg.dtype)))
        agg = self.aggr(msg, edge_index[1], dim_size=x_dst.shape[0])
        ego, nbr = self.lin_ego(x_dst), self.lin_nbr(agg)
        return torch.cat([ego, nbr], dim=-1) if self.concat else ego + nbr


def _conv(config: ModelConfig, c_in: int, c_out: int, last: bool) -> nn.Module:
    from torch_geometric.nn import GATConv, GCNConv, GINEConv, SAGEConv, TransformerConv

    name, heads, D = config.name, config.heads, config.edge_dim
    ego = "sum" if last else config.ego  # the last layer maps the concatenation to logits
    if name == "sage":
        if config.aggregators == ("mean",) and config.ego == "sum":
            return SAGEConv(c_in, c_out, aggr="mean")
        return EgoNeighbourConv(c_in, c_out, config.aggregators, ego)
    if name == "sage_edge":
        return EgoNeighbourConv(c_in, c_out, config.aggregators, ego, edge_dim=D)
    if name == "gcn":
        return GCNConv(c_in, c_out, add_self_loops=True, normalize=True)
    if name == "gine":
        width = c_in if last else c_out  # the last layer's MLP: no ReLU bottleneck of c_out (= classes) units
        mlp = nn.Sequential(nn.Linear(c_in, width), nn.ReLU(), nn.Linear(width, c_out))
        return GINEConv(mlp, train_eps=True, edge_dim=D)
    if name == "transformer":
        if last:
            return TransformerConv(c_in, c_out, heads=1, concat=False, edge_dim=D)
        return TransformerConv(c_in, c_out // heads, heads=heads, concat=True, edge_dim=D)
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
            _conv(config, widths[l], widths[l + 1], last=l == L - 1) for l in range(L)
        )
        self._widths = widths

    @property
    def num_layers(self) -> int:
        return len(self.convs)

    def layer_out_channels(self, l: int) -> int:
        return self._widths[l + 1]

    @property
    def reads_edges(self) -> bool:
        """Whether the layers read ``edge_attr`` (an edge-aware model)."""
        return self.config.name in EDGE_MODELS

    @property
    def needs_in_degrees(self) -> bool:
        """Whether :meth:`layer` on a subgraph needs ``in_degree`` to give the full-graph result (GCN)."""
        return self.config.name == "gcn"

    def layer(self, l: int, x: torch.Tensor, edge_index: torch.Tensor, num_dst: Optional[int] = None,
              in_degree: Optional[torch.Tensor] = None, edge_attr: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Layer ``l`` on a (sub)graph: ``[N, in_l] -> [num_dst, out_l]`` (ReLU + dropout unless last).

        Only the first ``num_dst`` nodes (default: all) get outputs; every edge must point into them.
        SAGE and GAT run bipartite (sources ``x``, destinations ``x[:num_dst]``), so nodes that only
        send messages cost nothing beyond their rows of ``x``; GCN computes every row and slices.

        ``in_degree`` (GCN; ignored by SAGE and GAT): ``[N]`` in-degree of each row's node in the
        whole graph, self-loops not counted. GCN then normalises by these degrees instead of the
        subgraph's (see :func:`_gcn_with_degrees`).

        ``edge_attr``: float32 ``[E, D]`` features of the edges (edge-aware models; ignored by the others).
        """
        return self._layer(l, x, edge_index, num_dst, in_degree, None, edge_attr)

    def _dropout_key(self) -> Optional[LayerKey]:
        """The mask key of one hidden layer's dropout (None: no dropout runs)."""
        return draw_layer_key() if self.training and self.config.dropout > 0 else None

    def _relu_dropout(self, h: torch.Tensor, dropout_key: Optional[LayerKey]) -> torch.Tensor:
        """``F.dropout(F.relu(h))`` with its mask from ``dropout_key`` (drawn here when None and training)."""
        key = dropout_key or self._dropout_key()
        return torch.relu(h) if key is None else keyed_relu_dropout(h, self.config.dropout, key)

    def _layer(self, l: int, x: torch.Tensor, edge_index: torch.Tensor, num_dst: Optional[int],
               in_degree: Optional[torch.Tensor], dropout_key: Optional[LayerKey],
               edge_attr: Optional[torch.Tensor] = None) -> torch.Tensor:
        """:meth:`layer` with the dropout mask's key given (drawn here when None and training)."""
        conv = self.convs[l]
        edge = {}
        if self.reads_edges:
            if edge_attr is None:
                raise ConfigError(f"model {self.config.name!r} reads edge features: call it with edge_attr "
                                  "(TrainConfig.edge_features)")
            edge = {"edge_attr": edge_attr.to(x.dtype)}
        if in_degree is not None and self.config.name == "gcn":
            h = _gcn_with_degrees(conv, x, edge_index, x.shape[0] if num_dst is None else num_dst, in_degree)
        elif num_dst is None or num_dst == x.shape[0]:
            h = conv(x, edge_index, **edge)
        elif self.config.name != "gcn":  # bipartite: sources x, destinations x[:num_dst]
            h = conv((x, x[:num_dst]), edge_index, **edge)
        else:
            h = conv(x, edge_index)[:num_dst]
        if l < self.num_layers - 1:
            h = self._relu_dropout(h, dropout_key)
        return h

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor,
                num_sampled_nodes_per_hop: Optional[List[int]] = None,
                num_sampled_edges_per_hop: Optional[List[int]] = None,
                edge_attr: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Logits ``[N', out_channels]``; with hop counts the first ``batch_size`` rows are the seeds'.
        ``edge_attr``: ``[E, D]`` edge features in ``edge_index``'s order (edge-aware models)."""
        L = self.num_layers
        # every hidden layer's mask key drawn up front: a checkpointed layer recomputed in the
        # backward pass redraws the same mask from its key
        keys = [self._dropout_key() for _ in range(L - 1)] + [None]
        for l in range(L):
            ei, ea, num_dst = edge_index, edge_attr, None
            if num_sampled_nodes_per_hop is not None:
                # trim_to_layer's cut: layer l reads the nodes of hops 0..L-l and the edges of hops 1..L-l;
                # only the nodes of hops 0..L-1-l (all the edges point into them) need its output
                nodes, edges = num_sampled_nodes_per_hop, num_sampled_edges_per_hop
                x = x[: int(sum(nodes[: L - l + 1]))]
                ei = edge_index[:, : int(sum(edges[: L - l]))]
                ea = None if edge_attr is None else edge_attr[: ei.shape[1]]
                num_dst = int(sum(nodes[: L - l]))
            if self.config.activation_checkpointing and self.training:
                from torch.utils.checkpoint import checkpoint

                x = checkpoint(self._layer, l, x, ei, num_dst, None, keys[l], ea, use_reentrant=False)
            else:
                x = self._layer(l, x, ei, num_dst, None, keys[l], ea)
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


def beta_wavelet_coefficients(order: int) -> torch.Tensor:
    """``theta`` float64 ``[order + 1, order + 1]``: row ``p`` holds the coefficients of ``L^0 .. L^order``
    in the beta wavelet ``beta_p(L) = (L / 2)^p (I - L / 2)^(order - p) / B(p + 1, order - p + 1)``.

    ``B`` is Euler's beta function (BWGNN's normalisation). Row 0 is a low-pass filter, row ``order``
    a high-pass one, the rows between band-passes; on a Laplacian with eigenvalues in ``[0, 2]`` each
    is a non-negative function of the eigenvalue.
    """
    theta = torch.zeros(order + 1, order + 1, dtype=torch.float64)
    for p in range(order + 1):
        q = order - p
        beta = math.exp(math.lgamma(p + 1) + math.lgamma(q + 1) - math.lgamma(order + 2))
        for j in range(q + 1):  # (L/2)^p (1 - L/2)^q = sum_j C(q, j) (-1/2)^j L^(p+j) / 2^p
            theta[p, p + j] = math.comb(q, j) * (-0.5) ** j * 0.5 ** p / beta
    return theta


class BetaWaveletGNN(GNN):
    """BWGNN: ``logits = MLP_out([beta_0(L) z || ... || beta_C(L) z])`` with ``z = MLP_in(x)``, ``C = num_layers``.

    ``L = I - D^-1 A`` is the random-walk Laplacian of the in-edges (``(L h)_i = h_i - mean_{j -> i}
    h_j``; a node without in-edges has ``L h_i = h_i``). It has the spectrum of BWGNN's symmetric
    normalised Laplacian, and its mean is what a sampled neighbourhood estimates, so sampled batches
    and layer-wise inference run it like the other models: layer ``l`` adds one power, and its
    output for ``num_dst`` rows is ``[z || L z || ... || L^(l+1) z]`` (``(l + 2) * hidden`` columns);
    the last layer applies the filters (:func:`beta_wavelet_coefficients`) and the output MLP.
    ``MLP_in`` is ``relu(W2 dropout(relu(W1 x)))``, ``MLP_out`` is ``W4 relu(W3 h)``, all of width
    ``hidden_channels``; dropout runs only in ``MLP_in`` (the first layer's mask key).
    """

    def __init__(self, config: ModelConfig):
        nn.Module.__init__(self)
        self.config = config.validate()
        C, h = config.num_layers, config.hidden_channels
        self.lin_in = nn.Linear(config.in_channels, h)
        self.lin_in2 = nn.Linear(h, h)
        self.lin_out = nn.Linear(h * (C + 1), h)
        self.lin_out2 = nn.Linear(h, config.out_channels)
        self.register_buffer("theta", beta_wavelet_coefficients(C).float())
        self._widths = [config.in_channels] + [(l + 2) * h for l in range(C - 1)] + [config.out_channels]

    @property
    def num_layers(self) -> int:
        return self.config.num_layers

    def _layer(self, l: int, x: torch.Tensor, edge_index: torch.Tensor, num_dst: Optional[int],
               in_degree: Optional[torch.Tensor], dropout_key: Optional[LayerKey],
               edge_attr: Optional[torch.Tensor] = None) -> torch.Tensor:
        h, C = self.config.hidden_channels, self.num_layers
        n_dst = x.shape[0] if num_dst is None else num_dst
        if l == 0:
            x = torch.relu(self.lin_in2(self._relu_dropout(self.lin_in(x), dropout_key)))
        top = x[:, -h:]  # the highest power so far, of every source row
        src, dst = edge_index[0], edge_index[1]
        deg = torch.bincount(dst, minlength=n_dst)[:n_dst].clamp(min=1).to(top.dtype)
        mean = torch.zeros(n_dst, h, dtype=top.dtype, device=top.device).index_add(0, dst, top[src]) / deg[:, None]
        powers = torch.cat([x[:n_dst], top[:n_dst] - mean], dim=1)
        if l < C - 1:
            return powers
        bands = torch.einsum("pk,nkh->nph", self.theta.to(powers.dtype), powers.view(n_dst, C + 1, h))
        return self.lin_out2(torch.relu(self.lin_out(bands.reshape(n_dst, (C + 1) * h))))


def build_model(config: ModelConfig) -> GNN:
    return BetaWaveletGNN(config) if config.name == "bwgnn" else GNN(config)
