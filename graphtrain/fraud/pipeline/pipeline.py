"""The fraud pipeline's tree stages and its stages after scoring: baseline (:func:`baseline_stage`,
before training in ``detect-rings``), the stacked tree (:func:`stacked_tree`), then rings ->
evaluation -> report (:func:`write_stages`).

They read the pipeline's dataset (:class:`~graphtrain.fraud.data.transaction_dataset.TransactionDataset`),
with accounts indexed by global ID: the tree baseline's features partition by partition
(:mod:`graphtrain.fraud.pipeline.dataset_baseline`: a bounded training sample, scores in chunks), the
rings on the transactions touching the candidate accounts (:mod:`graphtrain.fraud.data.touching_subgraph`,
which gives the rings of the whole graph), scores.parquet written a partition at a time.
:func:`run_stages` takes a graph in memory and writes it as ``OUT/dataset`` first.

Scores come in as an array aligned with the accounts (:class:`ModelScores`), from any model: the
``graphtrain detect-rings`` / ``demo`` commands (:mod:`graphtrain.fraud.pipeline.detect`) pass the trained
GNN's scores here. Without model scores the run uses the tree baseline's scores and
says so everywhere (``scores_from_baseline: true`` in the summary, a banner on the report).

Output directory::

    OUT/
    ├── dataset/              the accounts and transactions, partitioned (graphtrain.fraud.data.transaction_dataset)
    ├── summary.json          format_version, score source, every metric, counts, settings (last)
    ├── scores.parquet        account_id, score, baseline_score, label, split
    ├── rings.parquet / .csv  one row per ring (see graphtrain.fraud.rings.rings)
    ├── ring_members.parquet / .csv
    ├── report/               index.html + PNGs (see graphtrain.fraud.evaluation.report)
    └── stages/               baseline.json, rings.json: the stages' records (graphtrain.fraud.pipeline.stages)

Which scores find the rings: with model scores, the one of the GNN, the tree baseline and their
blend that does best on held-out validation accounts (``ring_score`` in the summary; a warning in
``warnings`` and on the report when the GNN trails the tree on validation), see
:mod:`graphtrain.fraud.evaluation.ring_score`. Without model scores, the tree's.

The shipped score (``shipped_score``, with ``shipped_auc``, ``shipped_ap``, ...) is the candidate --
GNN, tree, blend, or the stacked tree when the model's cross-fitted scores came with it
(:mod:`graphtrain.fraud.pipeline.stacking`: ``stack_*`` metrics, the ``stack_score`` column) -- with
the best held-out validation AP, without the rings' gate.

Thresholds: each score's metrics use its best-F1-macro threshold on validation (``threshold``,
``baseline_threshold``, ...). The rings' core threshold is calibrated to the whole scored
population (:func:`graphtrain.fraud.evaluation.ring_score.population_threshold`: at most about the estimated
population fraud share of accounts; ``ring_threshold``, ``flagged_fraction``); rings grow with
accounts scoring at least halfway between the median score and that threshold.
"""
from __future__ import annotations

import json
import math
import shutil
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Dict, Optional, Tuple

import numpy as np

from graphtrain._version import __version__
from graphtrain.errors import ConfigError
from graphtrain.fraud.data.transaction_dataset import TransactionDataset
from graphtrain.fraud.data.transaction_graph import TransactionGraph
from graphtrain.fraud.evaluation.blend import blend_scores, scaled_ranks
from graphtrain.fraud.evaluation.evaluate import TrueRings, load_true_rings, metrics_at_chosen_threshold, ring_metrics
from graphtrain.fraud.evaluation.report import ReportData, write_report
from graphtrain.fraud.evaluation.ring_score import choose_ring_score, population_threshold
from graphtrain.fraud.pipeline.baseline import BaselineResult
from graphtrain.fraud.pipeline.dataset_baseline import SCORES_FILE as BASELINE_SCORES_FILE
from graphtrain.fraud.pipeline.memory_budget import (candidate_degrees, limit_ring_candidates, resolve_memory_limit,
                                                     ring_transaction_budget)
from graphtrain.fraud.pipeline.stages import StageLog
from graphtrain.fraud.rings.ring_groups import flow_candidates
from graphtrain.fraud.rings.rings import (MEMBERS_BASENAME, RINGS_BASENAME, RingConfig, detect_rings, no_rings_reason,
                                          write_rings)
from graphtrain.io import staged_directory, write_text_atomic
from graphtrain.log import get_logger
from graphtrain.optional import FRAUD_MODULES, require
from graphtrain.progress import Progress
from graphtrain.split import TRAIN, VAL, carve_validation, stratified_split

log = get_logger("fraud.pipeline")

FORMAT_VERSION = 1
SUMMARY_FILE = "summary.json"
DATASET_DIR = "dataset"
WORK_DIR = "work"  # scratch tables of the stages (removed at the end)
FEATURES_DIR = f"{WORK_DIR}/features"  # the tree baseline's account feature tables
STACK_DIR = "stack"  # the stacked tree's scores, inside WORK_DIR
BASELINE_FILE = f"{WORK_DIR}/{BASELINE_SCORES_FILE}"  # the tree baseline's scores (stage baseline)
STACK_FILE = f"{WORK_DIR}/{STACK_DIR}/{BASELINE_SCORES_FILE}"  # the stacked tree's
SCORES_FILE = "scores.parquet"
REPORT_DIR = "report"
RING_FILES = tuple(f"{base}.{ext}" for base in (RINGS_BASENAME, MEMBERS_BASENAME) for ext in ("parquet", "csv"))  # write_rings's
RING_STEPS = ("scores", "subgraph", "rings", "files", "report")  # the steps of the rings stage's progress bar


@dataclass(frozen=True)
class PipelineConfig:
    """Settings of the stages after scoring.

    Attributes:
        seed: seed of the split (when the data has none), the baseline and community detection.
        train_fraction, val_fraction: stratified split used when the accounts have no split column.
        baseline_hops: neighbour-aggregation hops of the tree baseline (0-2).
        baseline_folds: cross-fitting folds for the baseline's scores of train accounts.
        baseline_max_train: most labelled training accounts the tree is fitted on (a stratified
            sample beyond that; :mod:`graphtrain.fraud.pipeline.dataset_baseline`).
        ring_min_size, ring_max_size: see :class:`graphtrain.fraud.rings.rings.RingConfig`.
        grow: grow rings with accounts scoring between the median and the threshold (see module doc).
        blend: with model scores, also score every account with the rank blend of the model and the
            tree baseline (:mod:`graphtrain.fraud.evaluation.blend`, weight chosen on validation AP): the
            ``blend_score`` column of scores.parquet and ``blend_*`` metrics, and a candidate for the
            rings' score (module doc). ``auc``, ``ap``, ... stay the model's.
        weight_is_money: the transactions' weight column (``TransactionGraph.amount``) is money
            (``--amount``): the report says "amount". False for any other edge weight (a rating, a
            count; ``--edge-weight``): the report says "edge weight".
        top_rings, bad_cases: how many rings and bad cases the report draws.
        title: report title.
        memory_limit: the run's memory limit (a size such as ``"8G"``, bytes, or None: half the
            machine's memory). Ring finding's candidates are cut to the transactions it leaves
            (:mod:`graphtrain.fraud.pipeline.memory_budget`; ``ring_memory_budget`` in the summary).
    """

    seed: int = 0
    train_fraction: float = 0.4
    val_fraction: float = 0.2
    baseline_hops: int = 2
    baseline_folds: int = 5
    baseline_max_train: int = 200_000
    ring_min_size: int = 3
    ring_max_size: int = 40
    grow: bool = True
    blend: bool = True
    top_rings: int = 6
    bad_cases: int = 4
    weight_is_money: bool = True
    title: str = "graphtrain fraud-ring report"
    memory_limit: Optional[object] = None


@dataclass
class ModelScores:
    """A model's fraud scores: float ``[N]`` aligned with the accounts (higher = riskier), and where they came from.

    ``stack_input``: the model's cross-fitted scores (float ``[N]``, no account's from a model trained
    on its label; :func:`graphtrain.fraud.pipeline.stacking.cross_fitted_scores`), or None. With
    them the stages also fit the stacked tree (the baseline's features plus this column) and offer
    its scores as a candidate.
    """

    scores: np.ndarray
    source: str
    stack_input: Optional[np.ndarray] = None


def choose_split(labels: np.ndarray, given: Optional[np.ndarray], config: PipelineConfig) -> Tuple[np.ndarray, str]:
    """The accounts' split (given, or stratified ``train_fraction/val_fraction/rest``) and a note saying which.

    ``labels`` and ``given`` (the split column's codes, or None) are indexed alike (account rows, or
    a dataset's global IDs). A given split with no labelled validation accounts gets them carved out
    of train: a stratified ``val_fraction / (train_fraction + val_fraction)`` of each class
    (:func:`carve_validation`, logged and in the note).
    """
    if given is not None:
        split = given
        if ((split == VAL) & (labels >= 0)).any() or not ((split == TRAIN) & (labels >= 0)).any():
            return split, "given (split column)"
        share = config.val_fraction / (config.train_fraction + config.val_fraction)
        split = carve_validation(split, labels, share, seed=config.seed)
        moved = int(((split == VAL) & (labels >= 0)).sum())
        note = (f"given (split column) without validation accounts: {moved} validation accounts carved out of train "
                f"(stratified {share:.3g} of each class, seed {config.seed})")
        log.info("split: %s", note)
        return split, note
    split = stratified_split(labels, (config.train_fraction, config.val_fraction), seed=config.seed)
    test = 1 - config.train_fraction - config.val_fraction
    return split, f"stratified {config.train_fraction:g}/{config.val_fraction:g}/{test:g} (seed {config.seed})"


def _clean(value):
    """JSON-safe numbers (NaN -> None)."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (float, np.floating)):
        return None if math.isnan(value) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    return value


def _check_scores(num_accounts: int, values, what: str = "model scores") -> np.ndarray:
    """``values`` as float64 ``[num_accounts]``; ConfigError naming ``what`` unless one finite value per account."""
    values = np.asarray(values, dtype=np.float64)
    if values.shape != (num_accounts,):
        raise ConfigError(f"{what}: need one score per account, got {values.shape} for {num_accounts} accounts")
    if not np.all(np.isfinite(values)):
        raise ConfigError(f"{what} contain NaN or infinity")
    return values


def _checked(num_accounts: int, model_scores: ModelScores) -> ModelScores:
    """``model_scores`` with its scores and stack input checked (:func:`_check_scores`) and as float64."""
    stack_input = model_scores.stack_input
    return ModelScores(_check_scores(num_accounts, model_scores.scores), model_scores.source,
                       None if stack_input is None else _check_scores(num_accounts, stack_input, "the stack's input"))


def run_stages(graph: TransactionGraph, out, model_scores: Optional[ModelScores] = None, true_rings=None,
               config: PipelineConfig = PipelineConfig(), force: bool = False) -> Dict[str, object]:
    """Baseline, rings, evaluation and report for one scored graph in memory, written to the directory ``out``.

    The graph is first written as a dataset (``OUT/dataset``, see
    :mod:`graphtrain.fraud.data.transaction_dataset`); every stage then reads that, as
    ``graphtrain detect-rings`` does.

    Args:
        graph: transactions and accounts (labels, features; a split if the data has one).
        out: output directory (staged; replaced only with ``force`` and only if it is a pipeline output).
        model_scores: the model's scores, aligned with ``graph``'s accounts; None = use the tree
            baseline's scores (and say so).
        true_rings: optional ground-truth rings file (``ring_id, account_id[, role, typology]``).
        config: stage settings.

    Returns:
        the summary (also written as ``summary.json``): ``auc``, ``ap``, ``f1_macro``,
        ``recall_at_k``, ``threshold``, ``baseline_auc``, ``baseline_ap``, ``baseline_f1_macro``,
        ``score_source``, ``scores_from_baseline``, ``rings``, and with ground truth
        ``ring_precision``, ``ring_recall``; plus counts and settings.
    """
    from graphtrain.fraud.data.transaction_dataset import partition_transaction_graph

    require(*FRAUD_MODULES, feature="the fraud pipeline")
    graph.validate()
    if model_scores is not None:
        model_scores = _checked(graph.num_accounts, model_scores)  # before anything is written
    out = Path(out)
    with staged_directory(out, force=force, marker=SUMMARY_FILE) as tmp:  # fails now if out exists
        data = partition_transaction_graph(graph, tmp / DATASET_DIR, seed=config.seed)
        if model_scores is not None:  # account rows -> global IDs
            rows = graph.accounts.index_of(data.raw_ids(np.arange(data.num_accounts)))
            stack_input = model_scores.stack_input
            model_scores = ModelScores(model_scores.scores[rows], model_scores.source,
                                       None if stack_input is None else stack_input[rows])
        if true_rings is not None and not isinstance(true_rings, TrueRings):
            true_rings = load_true_rings(true_rings, data)
        labels = data.labels()
        split = choose_split(labels, data.given_split(), config)
        stages = StageLog(tmp)
        baseline = baseline_stage(data, tmp, labels, split[0], config, stages)
        stack = None
        if model_scores is not None and model_scores.stack_input is not None:
            stack = stacked_tree(data, tmp, model_scores.stack_input, labels, split[0], config)
        summary = write_stages(data, tmp, out, model_scores, true_rings, config, baseline, stack=stack, split=split,
                               stages=stages)
    return summary


def feature_tables(data: TransactionDataset, tmp: Path, hops: int, progress=None):
    """The tree baseline's account feature tables (:func:`~graphtrain.fraud.data.account_aggregates.build_account_features`,
    ``hops`` hops), built into ``tmp/work/features`` from the dataset's own account features.

    Only before :func:`graphtrain.fraud.pipeline.detect.model_inputs` replaces those in the dataset
    with the GNN's inputs: ``detect-rings`` builds the tables once, in its ``features`` stage."""
    from graphtrain.fraud.data.account_aggregates import build_account_features

    return build_account_features(data.dataset, tmp / FEATURES_DIR, amount=data.amount, time=data.time, hops=hops,
                                  own_feature_names=data.own_feature_names, progress=progress)


def baseline_stage(data: TransactionDataset, tmp: Path, labels: np.ndarray, split: np.ndarray, config: PipelineConfig,
                   stages: StageLog, features=None, progress: bool = False) -> BaselineResult:
    """Stage ``baseline``: the tree baseline on the account feature tables (a bounded training sample,
    every account scored in chunks; :func:`~graphtrain.fraud.pipeline.dataset_baseline.run_dataset_baseline`),
    its float32 ``[N]`` scores by global ID in ``tmp/work/baseline_scores.npy``. Skipped, its scores
    read back, when ``stages`` records it finished.

    Args:
        labels, split: by global ID.
        features: the tables (:class:`~graphtrain.fraud.data.account_aggregates.AccountFeatures`) with
            at least ``config.baseline_hops`` hops, or None: built here (:func:`feature_tables`).
    """
    from graphtrain.fraud.pipeline.dataset_baseline import run_dataset_baseline

    done = stages.done("baseline")
    if done is not None:
        return BaselineResult(scores=np.load(tmp / BASELINE_FILE, mmap_mode="r"),
                              feature_names=done["data"]["feature_names"], params=done["data"]["params"])
    stages.begin("baseline", [BASELINE_FILE])
    if features is None or features.hops < config.baseline_hops:
        features = feature_tables(data, tmp, config.baseline_hops)
    with Progress(progress, "baseline: score", data.num_accounts, "accounts") as bar:
        baseline = run_dataset_baseline(features, labels, split, tmp / WORK_DIR, seed=config.seed,
                                        folds=config.baseline_folds, max_train=config.baseline_max_train,
                                        progress=bar.update)
    stages.finish("baseline", [BASELINE_FILE], {"feature_names": baseline.feature_names, "params": baseline.params})
    return baseline


def stacked_tree(data: TransactionDataset, tmp: Path, stack_input: np.ndarray, labels: np.ndarray, split: np.ndarray,
                 config: PipelineConfig, features=None, progress: bool = False) -> Tuple[np.ndarray, dict]:
    """The stacked tree (:mod:`graphtrain.fraud.pipeline.stacking`): the baseline's classifier on the
    account feature tables plus the GNN's cross-fitted scores ``stack_input`` (float ``[N]`` by global
    ID) as one more column. Returns its float64 ``[N]`` scores (also ``tmp/work/stack/baseline_scores.npy``)
    and its parameters. ``features``: as :func:`baseline_stage`'s."""
    from graphtrain.fraud.pipeline.dataset_baseline import run_dataset_baseline
    from graphtrain.fraud.pipeline.stacking import GNN_COLUMN, WithColumns

    stack_input = _check_scores(data.num_accounts, stack_input, "the stack's input")
    if features is None or features.hops < config.baseline_hops:
        features = feature_tables(data, tmp, config.baseline_hops)
    with Progress(progress, "stacked tree: score", data.num_accounts, "accounts") as bar:
        result = run_dataset_baseline(WithColumns(features, {GNN_COLUMN: stack_input}), labels, split,
                                      tmp / WORK_DIR / STACK_DIR, seed=config.seed, folds=config.baseline_folds,
                                      max_train=config.baseline_max_train, progress=bar.update)
    return np.asarray(result.scores, dtype=np.float64), result.params


def write_stages(data: TransactionDataset, tmp: Path, out: Path, model_scores: Optional[ModelScores], true_rings,
                 config: PipelineConfig, baseline: BaselineResult, stack: Optional[Tuple[np.ndarray, dict]] = None,
                 split: Optional[Tuple[np.ndarray, str]] = None, extra: Optional[Dict[str, object]] = None,
                 stages=None, progress: bool = False) -> Dict[str, object]:
    """Stage ``rings`` -- the choice of score, rings, evaluation, every output file and the report --
    into ``tmp``, an open staging directory that becomes ``out``, after the tree baseline
    (:func:`baseline_stage`).

    Args:
        data: the pipeline's dataset; accounts are indexed by global ID everywhere below.
        model_scores: scores by global ID, or None (the tree's are used). Its ``stack_input`` is not
            read here: the stacked tree comes as ``stack``.
        true_rings: :class:`TrueRings` by global ID, a rings file, or None.
        baseline: the tree baseline's scores by global ID.
        stack: the stacked tree's scores by global ID and parameters (:func:`stacked_tree`), or None.
        split: (codes by global ID, note); default :func:`choose_split`.
        extra: entries added to the summary.
        stages: the run's :class:`~graphtrain.fraud.pipeline.stages.StageLog` (``rings`` is recorded
            when it finishes; the ``baseline`` record's seconds go into the summary). Default: a fresh
            log in ``tmp``.
        progress: a progress bar on stderr over the rings' steps.
    """
    from graphtrain.fraud.data.touching_subgraph import high_risk_in_dataset, touching_subgraph
    from graphtrain.fraud.evaluation.report import select_bad_cases

    n = data.num_accounts
    scores = source = None
    if model_scores is not None:
        model_scores = _checked(n, model_scores)
        scores, source = model_scores.scores, model_scores.source
    labels = data.labels()
    split, split_note = split if split is not None else choose_split(labels, data.given_split(), config)
    truth = true_rings if true_rings is None or isinstance(true_rings, TrueRings) else load_true_rings(true_rings, data)
    work = tmp / WORK_DIR
    stages = stages or StageLog(tmp)
    stage: Dict[str, float] = {}
    baseline_scores = np.asarray(baseline.scores, dtype=np.float64)
    stack_scores = stack_params = stack_metrics = None
    if stack is not None:
        stack_scores, stack_params = _check_scores(n, stack[0], "the stacked tree's scores"), stack[1]
        stack_metrics = metrics_at_chosen_threshold(labels, stack_scores, split)
    recorded = stages.read("baseline")
    if recorded is not None:
        stage["baseline_seconds"] = round(recorded["seconds"], 2)
    stages.begin("rings", [SCORES_FILE, *RING_FILES, REPORT_DIR, SUMMARY_FILE])
    bar = Progress(progress, "rings", len(RING_STEPS), "steps")
    from_baseline = scores is None
    if from_baseline:
        scores = baseline_scores
        source = (f"tree baseline: {baseline.params['model']} on {baseline.params['num_features']} features "
                  f"(own + {config.baseline_hops}-hop neighbour aggregates), out-of-fold on train accounts")

    b_metrics = metrics_at_chosen_threshold(labels, baseline_scores, split)
    metrics = metrics_at_chosen_threshold(labels, scores, split)
    blend = blend_metrics = choice = None
    ranks = None if from_baseline else (scaled_ranks(scores), scaled_ranks(baseline_scores))  # shared by the two below
    if not from_baseline and config.blend:
        blend = blend_scores(scores, baseline_scores, labels, split, ranks=ranks)
        blend_metrics = metrics_at_chosen_threshold(labels, blend.scores, split)
    ring_name = "tree" if from_baseline else "gnn"
    if not from_baseline:
        choice = choose_ring_score(scores, baseline_scores, labels, split, blend=blend is not None, seed=config.seed,
                                   stack=stack_scores, ranks=ranks)
        ring_name = choice.name
    del ranks
    by_name = {"gnn": (scores, metrics), "tree": (baseline_scores, b_metrics),
               "blend": (blend.scores if blend is not None else None, blend_metrics),
               "stack": (stack_scores, stack_metrics)}
    ring_scores, ring_node_metrics = by_name[ring_name]
    shipped = choice.shipped if choice is not None else ring_name
    if from_baseline:
        ring_node_metrics = metrics
    population = population_threshold(ring_scores, labels, split)
    threshold = population.threshold
    grow = min(0.5 * (threshold + float(np.median(ring_scores))), threshold) if config.grow else None
    ring_config = RingConfig(threshold=threshold, grow_threshold=grow, min_size=config.ring_min_size,
                             max_size=config.ring_max_size, seed=config.seed)
    # rings need only the candidate accounts' transactions; the report's bad cases come along to be drawn
    t0 = time.perf_counter()
    bar.update()  # the scores' metrics, blend and threshold
    missed, alarms = select_bad_cases(labels, ring_scores, split, threshold, config.bad_cases)
    high_risk = high_risk_in_dataset(data.dataset, ring_scores, threshold, grow, ring_config.grow_min_share)
    flow = ring_config.flow and data.directed and data.time is not None  # money-flow rings reach the flow candidates
    inside = (high_risk | flow_candidates(ring_scores, ring_config)) if flow else high_risk.copy()
    # the candidates' transactions within what the memory limit leaves (the lowest-scoring left out)
    limit, per_degree = resolve_memory_limit(config.memory_limit), 1 if data.directed else 2
    bad = np.zeros(n, dtype=bool)  # the report's bad cases come along whatever their score: their share first
    bad[missed] = bad[alarms] = True
    budget = max(ring_transaction_budget(limit, n) - int(candidate_degrees(data.dataset, bad).sum()) * per_degree, 0)
    ring_cut = limit_ring_candidates(inside, ring_scores, candidate_degrees(data.dataset, inside), budget, per_degree)
    if ring_cut.cut:
        least = ring_cut.min_score
        high_risk &= inside
        ring_config = replace(ring_config, threshold=max(ring_config.threshold, least),
                              grow_threshold=None if grow is None else max(grow, least))
    inside |= bad
    sub = touching_subgraph(data.dataset, inside, amount=data.amount, time=data.time, with_features=False)
    stage["rings_subgraph_seconds"] = round(time.perf_counter() - t0, 2)  # candidates and their subgraph
    bar.update()  # the touching subgraph
    sub_scores = ring_scores[sub.global_ids]
    t_detect = time.perf_counter()
    rings = detect_rings(sub.graph, sub_scores, ring_config, high_risk=high_risk[sub.global_ids])
    stage["rings_detect_seconds"] = round(time.perf_counter() - t_detect, 2)  # detect_rings on the subgraph
    bar.update()  # the rings
    rings.members["account_index"] = sub.global_ids[rings.members["account_index"].to_numpy(dtype=np.int64)]
    warnings = list(choice.warnings) if choice is not None else []
    if ring_cut.cut:
        warnings.append(ring_cut.warning(limit))
    if not len(rings.rings):
        warnings.append(no_rings_reason(sub.graph, sub_scores, ring_config, high_risk=high_risk[sub.global_ids]))
    match = ring_metrics(rings.member_lists(), truth.members, n) if truth is not None else None
    stage["rings_seconds"] = round(time.perf_counter() - t0, 2)

    summary: Dict[str, object] = {
        "format_version": FORMAT_VERSION,
        "created_by": f"graphtrain {__version__}",
        "score_source": source,
        "scores_from_baseline": from_baseline,
        **{k: metrics[k] for k in ("auc", "ap", "f1_macro", "recall_at_k", "threshold")},
        "baseline_auc": b_metrics["auc"], "baseline_ap": b_metrics["ap"], "baseline_f1_macro": b_metrics["f1_macro"],
        "baseline_recall_at_k": b_metrics["recall_at_k"], "baseline_threshold": b_metrics["threshold"],
        **({f"blend_{k}": blend_metrics[k] for k in ("auc", "ap", "f1_macro", "recall_at_k", "threshold")}
           | {"blend_weight": blend.weight, "blend_val_ap": blend.val_ap} if blend is not None else {}),
        **({f"stack_{k}": stack_metrics[k] for k in ("auc", "ap", "f1_macro", "recall_at_k", "threshold")}
           | {"stack": stack_params} if stack_scores is not None else {}),
        "shipped_score": shipped,
        **{f"shipped_{k}": by_name[shipped][1][k] for k in ("auc", "ap", "f1_macro", "recall_at_k", "threshold")},
        "ring_score": ring_name, "ring_threshold": threshold, "flagged_fraction": population.flagged_fraction,
        "ring_threshold_calibration": population.as_dict(),
        **({"ring_score_choice": {"held_out_val_ap": choice.held_out_val_ap, "val": choice.val,
                                  "gnn_replaced": choice.gnn_replaced}}
           if choice else {}),
        "rings": len(rings.rings), "high_risk_accounts": rings.high_risk,
        "high_risk_fraction": rings.high_risk / max(n, 1),
        "ring_subgraph": {"accounts": int(sub.graph.num_accounts), "high_risk": int(high_risk.sum()),
                          "transactions": int(sub.graph.num_edges)},
        "ring_memory_budget": {"memory_limit_bytes": limit, **ring_cut.as_dict()},
        "accounts": n, "transactions": data.num_transactions,
        "test_accounts": metrics["test_accounts"], "test_positives": metrics["test_positives"],
        "split": split_note, "ring_config": asdict(ring_config), "baseline": baseline.params, "config": asdict(config),
        "report": str(out / REPORT_DIR / "index.html"),
        **(extra or {}),
    }
    summary["warnings"] = list(summary.get("warnings") or []) + warnings
    summary["stage_seconds"] = stage
    if match is not None:
        by_type: Dict[str, list] = {}
        for typology, hit in zip(truth.typologies, match.matched_true):
            by_type.setdefault(typology or "unknown", []).append(bool(hit))
        summary.update(ring_precision=match.precision, ring_recall=match.recall, true_rings=len(truth.members),
                       matched_true_rings=int(match.matched_true.sum()), matched_predicted_rings=int(match.matched_pred.sum()),
                       ring_recall_by_typology={t: float(np.mean(h)) for t, h in sorted(by_type.items())})
    summary = _clean(summary)

    t0 = time.perf_counter()
    _write_scores(tmp / SCORES_FILE, data, scores, baseline_scores, labels, split,
                  {"blend_score": blend.scores if blend is not None else None, "stack_score": stack_scores})
    write_rings(rings, tmp)
    bar.update()  # scores and rings files
    report = ReportData(
        title=config.title, graph=sub.graph, split=split, scores=ring_scores, score_source=source,
        scores_from_baseline=from_baseline, threshold=threshold, metrics=ring_node_metrics, rings=rings, summary=summary,
        baseline_scores=None if from_baseline else baseline_scores, baseline_metrics=None if from_baseline else b_metrics,
        blend_metrics=blend_metrics, blend_weight=blend.weight if blend is not None else None,
        ring_match=match, true_rings=truth, ring_score=ring_name, model_scores=None if from_baseline else scores,
        model_metrics=None if from_baseline else metrics, warnings=summary["warnings"],
        weight_is_money=config.weight_is_money, labels=labels, graph_ids=sub.global_ids, num_accounts=n,
        num_transactions=data.num_transactions)
    write_report(report, tmp / REPORT_DIR, top_rings=config.top_rings, bad_cases=config.bad_cases)
    bar.update()  # the report
    bar.close()
    stage["outputs_seconds"] = round(time.perf_counter() - t0, 2)  # scores, rings and report files
    summary["stage_seconds"] = dict(stage)
    del baseline, stack, stack_scores
    write_text_atomic(tmp / SUMMARY_FILE, json.dumps(summary, indent=2) + "\n")
    stages.finish("rings", [SCORES_FILE, *RING_FILES, REPORT_DIR, SUMMARY_FILE])
    shutil.rmtree(work, ignore_errors=True)  # scratch tables (the dataset stays)
    log.info("wrote %s (%d rings; scores from %s)", out, len(rings.rings), "the baseline" if from_baseline else source)
    return summary


def _write_scores(path: Path, data: TransactionDataset, scores, baseline_scores, labels, split,
                  others: Optional[Dict[str, Optional[np.ndarray]]] = None) -> None:
    """``scores.parquet``, one partition at a time: account_id (raw), score (the model's; the baseline's
    without one), baseline_score, [blend_score: the model's and the baseline's rank blend], [stack_score:
    the stacked tree's], label, split (``others``: name -> scores or None for the bracketed columns).
    The summary's ``ring_score`` and ``shipped_score`` say which of them the rings came from and which won."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    names = np.array(["train", "val", "test"], dtype=object)
    writer = None
    try:
        for p in range(data.num_parts):
            lo, hi = data.node_range(p)
            raw = data.dataset.raw_ids(p)
            columns = {"account_id": raw.cast(pa.string()) if isinstance(raw, pa.Array) else pa.array(np.asarray(raw)),
                       "score": pa.array(np.asarray(scores[lo:hi], dtype=np.float64)),
                       "baseline_score": pa.array(np.asarray(baseline_scores[lo:hi], dtype=np.float64))}
            for name, values in (others or {}).items():
                if values is not None:
                    columns[name] = pa.array(np.asarray(values[lo:hi], dtype=np.float64))
            lab, spl = labels[lo:hi], split[lo:hi]
            columns["label"] = pa.array(lab, mask=lab < 0)
            columns["split"] = pa.array(np.where(spl >= 0, names[np.clip(spl, 0, 2)], None), type=pa.string())
            table = pa.table(columns)
            if writer is None:
                writer = pq.ParquetWriter(str(path), table.schema)
            writer.write_table(table.cast(writer.schema))
    finally:
        if writer is not None:
            writer.close()


def generate_and_run(out, generator_config, config: PipelineConfig = PipelineConfig(), model_scores=None,
                     force: bool = False) -> Dict[str, object]:
    """Generate a transaction graph into ``out/data`` and run the stages into ``out/run`` (ground truth: its rings.csv).

    ``model_scores``, if given, is a function ``TransactionGraph -> ModelScores`` (the data only
    exists once generated); without it the run uses the baseline's scores.
    """
    from graphtrain.fraud.synth.generate import generate, load_generated

    out = Path(out)
    data = generate(generator_config, out / "data", force=force)
    graph = load_generated(data.out)
    scores = model_scores(graph) if model_scores is not None else None
    return run_stages(graph, out / "run", model_scores=scores, true_rings=data.files["rings"], config=config, force=force)
