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
:mod:`graphtrain.fraud.typologies`), members uniform over the account space, plus camouflage
transactions from ring members to random and to popular accounts (:mod:`graphtrain.fraud.planting`).
Each planted transaction is inserted at a uniformly random position of the background stream, so
the file order says nothing about which rows are planted.

**Bounded memory.** The background and the account table are produced ``chunk_rows`` rows at a time
(about 200 bytes per row while a chunk is built and written); only the planted accounts and
transactions are held whole (about 50 bytes per planted transaction, see
:mod:`graphtrain.fraud.planting`), which is independent of the background's size. Output is
deterministic for a seed and independent of ``chunk_rows``.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Dict

import numpy as np

from graphtrain._version import __version__
from graphtrain.fraud.draws import lognormal_at, stream_key, uniform_at
from graphtrain.fraud.planting import PlantingPlan, Transactions, compress_rmat_ids, plan_patterns
from graphtrain.fraud.synthetic_accounts import (
    FEATURES,
    account_features,
    account_ids_int,
    account_ids_string,
    account_labels,
)
from graphtrain.fraud.tables import TableWriter
from graphtrain.fraud.generator_config import GeneratorConfig
from graphtrain.fraud.typologies import BACKGROUND_MU, BACKGROUND_SIGMA
from graphtrain.log import get_logger
from graphtrain.partition.format import staged_directory
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


def _planted_positions(planted: Transactions, background_edges: int, seed: int):
    """Sort the planted transactions by a uniform insertion position in ``[0, background_edges]``."""
    j = np.arange(len(planted), dtype=np.int64)
    pos = np.minimum((uniform_at(stream_key(seed, "planted-position"), j) * (background_edges + 1)).astype(np.int64), background_edges)
    order = np.argsort(pos, kind="stable")
    sorted_planted = Transactions(*(getattr(planted, f)[order] for f in ("src", "dst", "amount", "time")))
    return sorted_planted, pos[order]


def _write_transactions(path: Path, config: GeneratorConfig, plan: PlantingPlan) -> Dict[str, int]:
    import pyarrow as pa

    rings = plan.ring_transactions()
    looks = plan.lookalike_transactions()
    planted, positions = _planted_positions(Transactions.concat([rings, looks, plan.camouflage]), config.background_edges, config.seed)
    schema = pa.schema([("src", _id_type(config)), ("dst", _id_type(config)), ("amount", pa.float64()), ("time", pa.int64())])
    total_bg = config.background_edges
    chunks = max(1, math.ceil(total_bg / config.chunk_rows))
    with TableWriter(path, schema) as writer:
        for c in range(chunks):
            start = c * config.chunk_rows
            count = min(config.chunk_rows, total_bg - start)
            bg = _background_chunk(config, start, count)
            lo = np.searchsorted(positions, start, side="left")
            hi = positions.size if c == chunks - 1 else np.searchsorted(positions, start + count, side="left")
            at = positions[lo:hi] - start
            cols = {f: np.insert(getattr(bg, f), at, getattr(planted, f)[lo:hi]) for f in ("src", "dst", "amount", "time")}
            writer.write(pa.table({
                "src": _id_column(cols["src"], config),
                "dst": _id_column(cols["dst"], config),
                "amount": cols["amount"],
                "time": cols["time"],
            }, schema=schema))
            if chunks > 1 and (c + 1) % max(1, chunks // 10) == 0:
                log.info("transactions: chunk %d/%d", c + 1, chunks)
    return {
        "transactions": total_bg + len(planted),
        "background_transactions": total_bg,
        "ring_transactions": len(rings),
        "lookalike_transactions": len(looks),
        "camouflage_transactions": len(plan.camouflage),
    }


def _write_ground_truth(directory: Path, config: GeneratorConfig, plan: PlantingPlan) -> Dict[str, int]:
    import pyarrow as pa

    from graphtrain.fraud.tables import write_table

    def table(patterns, id_name, kind_name):
        sizes = [p.members.size for p in patterns]
        members = np.concatenate([p.members for p in patterns]) if patterns else np.empty(0, np.int64)
        return pa.table({
            id_name: pa.array(np.repeat(np.arange(1, len(patterns) + 1, dtype=np.int64), sizes)),
            "account_id": _id_column(members, config),
            "role": pa.array([r for p in patterns for r in p.roles], type=pa.string()),
            kind_name: pa.array([p.kind for p, s in zip(patterns, sizes) for _ in range(s)], type=pa.string()),
        })

    write_table(directory / RINGS_FILE, table(plan.rings, "ring_id", "typology"))
    write_table(directory / LOOKALIKES_FILE, table(plan.lookalikes, "pattern_id", "kind"))
    return {
        "rings": len(plan.rings),
        "ring_members": int(sum(p.members.size for p in plan.rings)),
        "lookalikes": len(plan.lookalikes),
        "lookalike_members": int(sum(p.members.size for p in plan.lookalikes)),
    }
