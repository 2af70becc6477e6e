"""What ``graphtrain generate`` makes: :class:`GeneratorConfig`, one frozen dataclass whose field
help texts are also the command-line help (imports nothing heavy, so the CLI stays fast).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional, Tuple

from graphtrain.errors import ConfigError

DAY = 86400
ID_TYPES = ("string", "int64")
FILE_FORMATS = ("parquet", "csv")


def _opt(default, help_text, **extra):
    return field(default=default, metadata={"help": help_text, **extra})


@dataclass(frozen=True)
class GeneratorConfig:
    """What to generate. Field help texts are the ``graphtrain generate`` option help."""

    num_accounts: int = _opt(20_000, "number of accounts", flag="--accounts")
    edges_per_account: float = _opt(8.0, "background transactions per account (R-MAT, power-law degrees)")
    rmat_abc: Tuple[float, float, float] = _opt(
        (0.45, 0.22, 0.22), "R-MAT quadrant probabilities a,b,c of the background (Graph500 uses 0.57,0.19,0.19, "
        "which leaves a third of the accounts without any transaction)")
    num_rings: Optional[int] = _opt(None, "laundering rings to plant (default: one per 400 accounts, at least 5)", flag="--rings")
    num_lookalikes: Optional[int] = _opt(None, "legitimate look-alike patterns: payroll, subscriptions, households, "
                                               "supplier blocks (default: as many as rings)", flag="--lookalikes")
    min_ring_size: int = _opt(4, "smallest ring in members (scatter-gather and bipartite rings have at least 4)")
    max_ring_size: int = _opt(12, "largest ring (members)")
    camouflage: int = _opt(3, "each ring member sends 1..N camouflage transactions to random and popular accounts (0: none)")
    feature_signal: float = _opt(1.0, "strength of the ring members' feature shifts (0: features carry no signal)")
    missed_fraud_rate: float = _opt(0.05, "fraction of ring members labelled 0 (fraud not yet caught)")
    false_report_rate: float = _opt(0.0005, "fraction of other accounts labelled 1 (wrong reports)")
    days: int = _opt(90, "length of the simulated period in days")
    start_time: int = _opt(1_704_067_200, "start of the period, seconds since the epoch (default 2024-01-01)")
    id_type: str = _opt("string", "raw account IDs: 'string' (AC + 19 digits) or 'int64' (sparse integers)", choices=ID_TYPES)
    file_format: str = _opt("parquet", "format of transactions and accounts", flag="--format", choices=FILE_FORMATS)
    chunk_rows: int = _opt(1 << 20, "rows generated and written at a time (bounds memory)")
    seed: int = _opt(0, "random seed")

    @property
    def rings(self) -> int:
        return self.num_rings if self.num_rings is not None else max(5, self.num_accounts // 400)

    @property
    def lookalikes(self) -> int:
        return self.num_lookalikes if self.num_lookalikes is not None else self.rings

    @property
    def background_edges(self) -> int:
        return int(round(self.num_accounts * self.edges_per_account))

    @property
    def scale(self) -> int:
        """R-MAT scale: the smallest with ``2**scale >= num_accounts``."""
        return max(1, math.ceil(math.log2(max(self.num_accounts, 2))))

    @property
    def period(self) -> int:
        return int(self.days) * DAY

    def validate(self) -> "GeneratorConfig":
        """Raise :class:`ConfigError` naming the first invalid option."""
        def need(ok, option, message):
            if not ok:
                raise ConfigError(f"--{option}: {message}")

        need(self.num_accounts >= 100, "accounts", f"need at least 100 accounts, got {self.num_accounts}")
        need(self.num_accounts < (1 << 62), "accounts", "must be below 2**62")
        need(self.edges_per_account >= 0, "edges-per-account", f"must be >= 0, got {self.edges_per_account}")
        a, b, c = self.rmat_abc
        need(min(a, b, c) > 0 and a + b + c < 1, "rmat-abc", f"need a, b, c > 0 and a + b + c < 1, got {self.rmat_abc}")
        need(self.num_rings is None or self.num_rings >= 0, "rings", f"must be >= 0, got {self.num_rings}")
        need(self.num_lookalikes is None or self.num_lookalikes >= 0, "lookalikes", f"must be >= 0, got {self.num_lookalikes}")
        need(3 <= self.min_ring_size <= self.max_ring_size, "min-ring-size",
             f"need 3 <= min-ring-size <= max-ring-size, got {self.min_ring_size} and {self.max_ring_size}")
        need(self.max_ring_size <= 1000, "max-ring-size", f"must be <= 1000, got {self.max_ring_size}")
        need(0 <= self.camouflage <= 100, "camouflage", f"must be in [0, 100], got {self.camouflage}")
        need(self.feature_signal >= 0, "feature-signal", f"must be >= 0, got {self.feature_signal}")
        need(0 <= self.missed_fraud_rate <= 1, "missed-fraud-rate", f"must be in [0, 1], got {self.missed_fraud_rate}")
        need(0 <= self.false_report_rate <= 1, "false-report-rate", f"must be in [0, 1], got {self.false_report_rate}")
        need(self.days >= 14, "days", f"need at least 14 days, got {self.days}")
        need(self.start_time >= 0, "start-time", f"must be >= 0, got {self.start_time}")
        need(self.id_type in ID_TYPES, "id-type", f"must be one of {ID_TYPES}, got {self.id_type!r}")
        need(self.file_format in FILE_FORMATS, "format", f"must be one of {FILE_FORMATS}, got {self.file_format!r}")
        need(self.chunk_rows >= 1, "chunk-rows", f"must be >= 1, got {self.chunk_rows}")
        planted_max = (self.rings + self.lookalikes) * self.max_ring_size
        need(planted_max <= self.num_accounts // 2, "rings",
             f"{self.rings} rings and {self.lookalikes} look-alikes of up to {self.max_ring_size} members need up to "
             f"{planted_max} accounts, more than half of the {self.num_accounts} accounts; plant fewer or add accounts")
        return self
