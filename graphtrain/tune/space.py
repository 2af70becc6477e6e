"""The search space of ``graphtrain tune``: every searched hyperparameter, in one place.

=================  ==========================  =====================================================
parameter          values                      becomes (:class:`~graphtrain.train.config.TrainConfig`)
=================  ==========================  =====================================================
``model``          ``config.MODELS``           ``model`` (every model the trainer ships)
``depth``          1, 2, 3                     ``len(fanouts)``: message-passing layers
``fanout``         5, 10, 15                   ``fanouts``: ``fanout`` at hop 1, halved at each
                                               further hop (at least 2): 15, 7, 3 at depth 3
``hidden``         32, 64, 128                 ``hidden``
``lr``             log-uniform [1e-3, 3e-2]    ``lr``
``dropout``        uniform [0, 0.5]            ``dropout``
``weight_decay``   0, 1e-5, 1e-4               ``weight_decay``
``class_weight``   ``config.CLASS_WEIGHTS``    ``class_weight`` (inverse-frequency loss weights or none)
``normalize``      True, False                 ``normalize``: standardise features on the training split
``aggregators``    mean; mean,max;             ``aggregators``: neighbour aggregations used together
                   mean,max,std;               (``sage``, ``sage_edge``; the other models aggregate
                   mean,max,std,sum            their own way and train with the default ``mean``)
``ego``            sum, concat                 ``ego``: own and neighbour transforms added, or kept
                                               side by side (H2GCN-style); ``sage``, ``sage_edge``
=================  ==========================  =====================================================

The ranges fit a 2-core machine at 20K accounts: depth 3 at fanout 15 samples at most 15 x 7 x 3
= 315 neighbours per seed at its last hop, and widths stay at or below 128 (first hops of 20 at
depth 3 -- 1,000 at the last hop -- kept two GAT trials from a single validation in 2.5 minutes on
AMLSim 20K on the shared machine). A parameter whose TrainConfig field
does not exist is left out of the space (:func:`search_space`), so an option added to TrainConfig
becomes searchable by one line in :data:`PARAMS`. Each trial trains the rest of TrainConfig at the
schedule of :class:`~graphtrain.tune.search.SearchOptions`.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Dict, Tuple

from graphtrain.train.config import CLASS_WEIGHTS, EGO_MODES, MODELS, TrainConfig

# the models whose layers take ``aggregators`` and ``ego`` (TrainConfig refuses them for the others)
HETEROPHILY_MODELS = ("sage", "sage_edge")
# aggregator sets, each a comma-joined choice (Tune's Optuna searcher takes scalar choices only)
AGGREGATOR_SETS = ("mean", "mean,max", "mean,max,std", "mean,max,std,sum")

KINDS = ("choice", "uniform", "loguniform")


@dataclass(frozen=True)
class Param:
    """One searched hyperparameter.

    Attributes:
        name: the parameter's name in a trial's configuration.
        kind: ``"choice"`` (one of ``values``), ``"uniform"`` or ``"loguniform"`` (``values`` is ``(low, high)``).
        values: the choices, or the bounds.
        field: the TrainConfig field it sets (the space leaves the parameter out when it does not exist).
    """

    name: str
    kind: str
    values: tuple
    field: str

    def to_tune(self):
        """The Ray Tune domain of this parameter."""
        from ray import tune

        if self.kind == "choice":
            return tune.choice(list(self.values))
        low, high = self.values
        return tune.loguniform(low, high) if self.kind == "loguniform" else tune.uniform(low, high)

    def contains(self, value) -> bool:
        if self.name == "aggregators" and isinstance(value, (list, tuple)):
            value = ",".join(value)
        if self.kind == "choice":
            return value in self.values
        low, high = self.values
        return isinstance(value, (int, float)) and not isinstance(value, bool) and low <= value <= high

    def describe(self) -> list:
        return [self.name, self.kind, list(self.values)]


PARAMS: Tuple[Param, ...] = (
    Param("model", "choice", tuple(MODELS), "model"),
    Param("depth", "choice", (1, 2, 3), "fanouts"),
    Param("fanout", "choice", (5, 10, 15), "fanouts"),
    Param("hidden", "choice", (32, 64, 128), "hidden"),
    Param("lr", "loguniform", (1e-3, 3e-2), "lr"),
    Param("dropout", "uniform", (0.0, 0.5), "dropout"),
    Param("weight_decay", "choice", (0.0, 1e-5, 1e-4), "weight_decay"),
    Param("class_weight", "choice", tuple(CLASS_WEIGHTS), "class_weight"),
    Param("normalize", "choice", (True, False), "normalize"),
    Param("aggregators", "choice", AGGREGATOR_SETS, "aggregators"),
    Param("ego", "choice", tuple(EGO_MODES), "ego"),
)


def search_space() -> Tuple[Param, ...]:
    """:data:`PARAMS` whose TrainConfig field exists."""
    have = {f.name for f in fields(TrainConfig)}
    return tuple(p for p in PARAMS if p.field in have)


def fanouts_of(depth: int, fanout: int) -> Tuple[int, ...]:
    """``fanout`` at hop 1, halved at each further hop, at least 2: ``fanouts_of(3, 15) == (15, 7, 3)``."""
    return tuple(max(2, fanout >> hop) for hop in range(depth))


def train_options(params: Dict[str, object]) -> Dict[str, object]:
    """The TrainConfig fields of one point of the space: ``depth`` and ``fanout`` become ``fanouts``,
    ``aggregators`` a tuple; a model outside :data:`HETEROPHILY_MODELS` gets the default ``("mean",)``
    and ``"sum"`` whatever the point drew (its layers have no such choice)."""
    out = {k: v for k, v in params.items() if k not in ("depth", "fanout")}
    if "depth" in params or "fanout" in params:
        out["fanouts"] = fanouts_of(int(params["depth"]), int(params["fanout"]))
    if isinstance(out.get("aggregators"), str):
        out["aggregators"] = tuple(out["aggregators"].split(","))
    if "model" in out and out["model"] not in HETEROPHILY_MODELS:
        if "aggregators" in out:
            out["aggregators"] = ("mean",)
        if "ego" in out:
            out["ego"] = "sum"
    for name in ("hidden",):
        if name in out:
            out[name] = int(out[name])
    for name in ("lr", "dropout", "weight_decay"):
        if name in out:
            out[name] = float(out[name])
    return out


def in_space(options: Dict[str, object], space: Tuple[Param, ...]) -> bool:
    """Whether TrainConfig ``options`` (as :func:`train_options` makes them) lie in ``space``."""
    by_name = {p.name: p for p in space}
    for p in space:
        if p.name in ("depth", "fanout"):
            continue
        if p.field not in options or not p.contains(options[p.field]):
            return False
    if "depth" in by_name:
        fanouts = tuple(options.get("fanouts", ()))
        if not any(fanouts == fanouts_of(d, f) for d in by_name["depth"].values for f in by_name["fanout"].values):
            return False
    return True
