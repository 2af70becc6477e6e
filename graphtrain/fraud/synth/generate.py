"""Synthetic transaction graphs with planted laundering rings, streamed to Parquet or CSV.

Output directory (``FMT`` = ``parquet`` or ``csv``)::

    OUT/
    ├── transactions.FMT   src, dst (raw account IDs), amount (float64, currency), time (int64, epoch s)
    ├── accounts.FMT       account_id, the FEATURES columns, label (0/1, noisy)
    ├── rings.csv          ring_id, account_id, role, typology     -- ground truth of planted rings
    ├── lookalikes.csv     pattern_id, account_id, role, kind      -- legitimate look-alike patterns
    └── manifest.json      format_version, config, counts, file list (written last)

**Background.** ``num_accounts * edges_per_account`` transactions from the R-MAT stream of
:mod:`graphtrain.rmat` (power-law degrees; vertices mapped monotonically onto accounts, self-loops
moved to the next account), lognormal amounts, times uniform over ``days``.

**Planted.** Rings of the five typologies and their legitimate look-alikes (see
:mod:`graphtrain.fraud.synth.typologies`), members uniform over the account space, plus camouflage
transactions from ring members to random and to popular accounts (:mod:`graphtrain.fraud.synth.planting`).
Planted transactions are scattered at random positions among the background rows (see
:mod:`graphtrain.fraud.synth.placement`), so the file order says nothing about which rows are planted.

**Bounded memory.** The background and the account table are produced ``chunk_rows`` rows at a
time (about 200 bytes per row while a chunk is built and written); planted transactions are built
per slot of a million background rows, when the writer reaches it. What is held whole is the plan:
who is in which pattern, about 25 bytes per planted account (see :mod:`graphtrain.fraud.synth.planting`).
Output is deterministic for a seed and independent of ``chunk_rows``.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Dict

import numpy as np

from graphtrain._version import __version__
from graphtrain.fraud.synth.draws import lognormal_at, stream_key, uniform_at
from graphtrain.fraud.synth.placement import PlantedStream
from graphtrain.fraud.synth.planting import (
    CAMOUFLAGE_TX,
    LOOKALIKE_TX,
    RING_TX,
    PlantingPlan,
    Transactions,
    compress_rmat_ids,
    plan_patterns,
)
from graphtrain.fraud.synth.synthetic_accounts import (
    FEATURES,
    account_features,
    account_ids_int,
    account_ids_string,
    account_labels,
)
from graphtrain.fraud.data.tables import TableWriter
from graphtrain.fraud.data.transaction_graph import TransactionGraph, load_accounts, load_transaction_graph
from graphtrain.fraud.synth.generator_config import GeneratorConfig
from graphtrain.fraud.synth.typologies import BACKGROUND_MU, BACKGROUND_SIGMA, roles_of
from graphtrain.io import staged_directory
from graphtrain.log import get_logger
from graphtrain.rmat import rmat_edges

log = get_logger("fraud.generate")

FORMAT_VERSION = 1
MANIFEST_FILE = "manifest.json"
RINGS_FILE = "rings.csv"
LOOKALIKES_FILE = "lookalikes.csv"
@dataclass
class GenerateResult:
    """What :func:`generate` wrote: the output directory, file paths and counts."""

    out: Path
    files: Dict[str, str]
    counts: Dict[str, int]


def transactions_file(config: GeneratorConfig) -> str:
    return f"transactions.{config.file_format}"


def accounts_file(config: GeneratorConfig) -> str:
    return f"accounts.{config.file_format}"


def generate(config: GeneratorConfig, out, force: bool = False) -> GenerateResult:
    """Generate a transaction graph into the directory ``out`` (see the module docstring).

    Args:
        config: what to generate (validated here).
        out: output directory; built under a temporary name and renamed at the end.
        force: replace an existing generated directory (one with ``manifest.json``).

    Raises:
        ConfigError: an invalid option.
        OutputExistsError: ``out`` exists and ``force`` is not set (or it is not a generated directory).
    """
    config.validate()
    out = Path(out)
    with staged_directory(out, force=force, marker=MANIFEST_FILE) as tmp:
        plan = plan_patterns(
            num_accounts=config.num_accounts,
            scale=config.scale,
            num_edges=config.background_edges,
            num_rings=config.rings,
            num_lookalikes=config.lookalikes,
            ring_size=(config.min_ring_size, config.max_ring_size),
            camouflage=config.camouflage,
            rmat_abc=config.rmat_abc,
            start=config.start_time,
            period=config.period,
            seed=config.seed,
        )
        counts = {}
        counts.update(_write_accounts(tmp / accounts_file(config), config, plan))
        counts.update(_write_transactions(tmp / transactions_file(config), config, plan))
        counts.update(_write_ground_truth(tmp, config, plan))
        files = {
            "transactions": transactions_file(config),
            "accounts": accounts_file(config),
            "rings": RINGS_FILE,
            "lookalikes": LOOKALIKES_FILE,
        }
        manifest = {
            "format": "graphtrain-synthetic-transactions",
            "format_version": FORMAT_VERSION,
            "created_by": f"graphtrain {__version__}",
            "config": asdict(config),
            "counts": counts,
            "files": files,
            "columns": {
                "transactions": {"src": "src", "dst": "dst", "amount": "amount", "time": "time"},
                "accounts": {"id": "account_id", "label": "label", "features": list(FEATURES)},
            },
        }
        (tmp / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    log.info("wrote %s: %d accounts, %d transactions, %d rings", out, counts["accounts"], counts["transactions"], counts["rings"])
    return GenerateResult(out=out, files={k: str(out / v) for k, v in files.items()}, counts=counts)


def read_manifest(directory) -> dict:
    """The manifest of a generated directory (checks the format version)."""
    from graphtrain.errors import FormatError

    path = Path(directory) / MANIFEST_FILE
    if not path.is_file():
        raise FormatError(f"{directory}: no {MANIFEST_FILE}; not a directory written by graphtrain generate")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise FormatError(f"{path}: not valid JSON ({exc.msg})") from None
    if manifest.get("format_version") != FORMAT_VERSION:
        raise FormatError(f"{path}: format version {manifest.get('format_version')!r}, this graphtrain reads {FORMAT_VERSION}")
    return manifest


# -- writers ----------------------------------------------------------------------------------------
def _id_column(index: np.ndarray, config: GeneratorConfig):
    import pyarrow as pa

    if config.id_type == "string":
        return account_ids_string(index, config.seed)
    return pa.array(account_ids_int(index, config.seed))


def _id_type(config: GeneratorConfig):
    import pyarrow as pa

    return pa.string() if config.id_type == "string" else pa.int64()


def _write_accounts(path: Path, config: GeneratorConfig, plan: PlantingPlan) -> Dict[str, int]:
    import pyarrow as pa

    sample = account_features(np.zeros(1, np.int64), np.zeros(1, np.int8), config.seed)
    schema = pa.schema(
        [("account_id", _id_type(config))]
        + [(name, pa.from_numpy_dtype(sample[name].dtype)) for name in FEATURES]
        + [("label", pa.int64())]
    )
    positives = 0
    with TableWriter(path, schema) as writer:
        for start in range(0, config.num_accounts, config.chunk_rows):
            index = np.arange(start, min(start + config.chunk_rows, config.num_accounts), dtype=np.int64)
            classes = plan.class_of(index)
            columns = {"account_id": _id_column(index, config)}
            columns.update(account_features(index, classes, config.seed, config.feature_signal))
            columns["label"] = account_labels(index, classes, config.seed, config.missed_fraud_rate, config.false_report_rate)
            positives += int(columns["label"].sum())
            writer.write(pa.table(columns, schema=schema))
    return {"accounts": config.num_accounts, "labelled_fraud": positives}


def _background_chunk(config: GeneratorConfig, start: int, count: int) -> Transactions:
    """Background transactions ``[start, start + count)`` of the stream (pure function of the seed)."""
    seed = int(stream_key(config.seed, "background")) & 0x7FFF_FFFF_FFFF_FFFF
    u, v = rmat_edges(config.scale, start, count, seed=seed, abc=config.rmat_abc)
    n = config.num_accounts
    src = compress_rmat_ids(u, config.scale, n)
    dst = compress_rmat_ids(v, config.scale, n)
    dst = np.where(dst == src, (dst + 1) % n, dst)
    index = np.arange(start, start + count, dtype=np.int64)
    amount = lognormal_at(stream_key(config.seed, "background-amount"), index, BACKGROUND_MU, BACKGROUND_SIGMA)
    time = config.start_time + np.minimum(
        (uniform_at(stream_key(config.seed, "background-time"), index) * config.period).astype(np.int64), config.period - 1
    )
    return Transactions(src, dst, np.maximum(np.round(amount, 2), 0.01), time)


def _write_transactions(path: Path, config: GeneratorConfig, plan: PlantingPlan) -> Dict[str, int]:
    import pyarrow as pa

    planted = PlantedStream(plan, config.background_edges, config.seed)
    schema = pa.schema([("src", _id_type(config)), ("dst", _id_type(config)), ("amount", pa.float64()), ("time", pa.int64())])
    total_bg = config.background_edges
    chunks = max(1, math.ceil(total_bg / config.chunk_rows))
    counts = np.zeros(3, dtype=np.int64)  # ring, look-alike, camouflage transactions
    with TableWriter(path, schema) as writer:
        for c in range(chunks):
            start = c * config.chunk_rows
            count = min(config.chunk_rows, total_bg - start)
            bg = _background_chunk(config, start, count)
            extra, positions, kinds = planted.between(start, start + count)
            counts += np.bincount(kinds, minlength=3)
            cols = {f: np.insert(getattr(bg, f), positions - start, getattr(extra, f)) for f in Transactions.FIELDS}
            writer.write(pa.table({
                "src": _id_column(cols["src"], config),
                "dst": _id_column(cols["dst"], config),
                "amount": cols["amount"],
                "time": cols["time"],
            }, schema=schema))
            if chunks > 1 and (c + 1) % max(1, chunks // 10) == 0:
                log.info("transactions: chunk %d/%d", c + 1, chunks)
    return {
        "transactions": total_bg + int(counts.sum()),
        "background_transactions": total_bg,
        "ring_transactions": int(counts[RING_TX]),
        "lookalike_transactions": int(counts[LOOKALIKE_TX]),
        "camouflage_transactions": int(counts[CAMOUFLAGE_TX]),
    }


def _write_ground_truth(directory: Path, config: GeneratorConfig, plan: PlantingPlan, batch: int = 100_000) -> Dict[str, int]:
    import pyarrow as pa

    def write(path: Path, first: int, stop: int, id_name: str, kind_name: str) -> int:
        """Patterns ``[first, stop)`` as rows (pattern number from 1), in batches of patterns."""
        schema = pa.schema([(id_name, pa.int64()), ("account_id", _id_type(config)), ("role", pa.string()),
                            (kind_name, pa.string())])
        members = 0
        with TableWriter(path, schema) as writer:
            for lo in range(first, max(stop, first + 1), batch):
                hi = min(lo + batch, stop)
                sizes = np.diff(plan.offsets[lo : hi + 1]) if hi > lo else np.empty(0, np.int64)
                index = plan.members[plan.offsets[lo] : plan.offsets[hi]] if hi > lo else np.empty(0, np.int64)
                writer.write(pa.table({
                    id_name: np.repeat(np.arange(lo - first + 1, hi - first + 1, dtype=np.int64), sizes),
                    "account_id": _id_column(index, config),
                    "role": pa.array([r for p in range(lo, hi) for r in roles_of(plan.kinds[p], int(sizes[p - lo]))],
                                     type=pa.string()),
                    kind_name: pa.array([plan.kinds[p] for p in range(lo, hi) for _ in range(int(sizes[p - lo]))],
                                        type=pa.string()),
                }, schema=schema))
                members += int(index.size)
        return members

    ring_members = write(directory / RINGS_FILE, 0, plan.num_rings, "ring_id", "typology")
    look_members = write(directory / LOOKALIKES_FILE, plan.num_rings, plan.num_patterns, "pattern_id", "kind")
    return {
        "rings": plan.num_rings,
        "ring_members": ring_members,
        "lookalikes": plan.num_patterns - plan.num_rings,
        "lookalike_members": look_members,
    }


def load_generated(directory) -> TransactionGraph:
    """Load a directory written by ``graphtrain generate`` (columns from its manifest)."""
    manifest = read_manifest(directory)
    directory = Path(directory)
    acc_cols = manifest["columns"]["accounts"]
    tx_cols = manifest["columns"]["transactions"]
    accounts = load_accounts(directory / manifest["files"]["accounts"], acc_cols["id"], label=acc_cols["label"],
                             features=acc_cols["features"])
    return load_transaction_graph(directory / manifest["files"]["transactions"], accounts, src=tx_cols["src"],
                                  dst=tx_cols["dst"], amount=tx_cols["amount"], time=tx_cols["time"])
