"""Machine tuning of the workers, in one place: :class:`RuntimeConfig` and :class:`WorkerRuntime`.

These settings change how fast a worker runs on a given machine, never what it computes (except
``fused_dropout``, which draws dropout masks from another generator: see below). They are
``TrainConfig.runtime``; the model and schedule fields stay on
:class:`~graphtrain.train.config.TrainConfig` itself. Each is off unless it is safe everywhere:

=================  =========  =================================================================
setting            default    what it does (module; measured gains: ``benchmarks/RESULTS.md``)
=================  =========  =================================================================
``prefetch``       2          batches the loader samples ahead in a background thread
``freeze_gc``      True       objects alive after setup kept out of garbage collections
                              (:mod:`~graphtrain.train.gc_freeze`; undone when the job ends)
``pin_cpus``       False      each worker pinned to ``threads_per_worker`` cores of its own
                              (:mod:`~graphtrain.train.affinity`; "CPU pinning")
``gloo_poller``    "normal"   ``"idle"``: gloo's socket-poller threads under ``SCHED_IDLE``
                              (:mod:`~graphtrain.train.gloo_threads`; "Gloo socket pollers");
                              ``"auto"``: idle on CPU workers, normal with ``use_gpu``
``fused_dropout``  False      the models' ReLU + dropout in one Numba pass on CPU
                              (:mod:`~graphtrain.train.dropout`; "Dropout kernel")
=================  =========  =================================================================

``gloo_poller`` changes the scheduling class of a third-party library's threads and
``fused_dropout`` the random stream of the masks, so both are opt-in. Without ``fused_dropout``
the models draw masks as ``torch.nn.functional.dropout`` does on CPU (``bernoulli_``), on the
tensor's device, from a generator seeded per layer from the training step's generator: CPU and GPU
runs draw them the same way. With it, CPU float tensors use graphtrain's counter RNG (the same
per-layer key); the masks are as random, but not the same draws as without it.

:class:`WorkerRuntime` applies the settings in a worker process and reports what it did
(:class:`RuntimeReport`, in each worker's training statistics).
"""
from __future__ import annotations

import contextlib
from dataclasses import asdict, dataclass, fields
from typing import Iterator, List, Optional

from graphtrain.errors import ConfigError
from graphtrain.log import get_logger

log = get_logger("train.runtime")

GLOO_POLLERS = ("auto", "idle", "normal")
FIELDS = ("prefetch", "freeze_gc", "pin_cpus", "gloo_poller", "fused_dropout")


@dataclass(frozen=True)
class RuntimeConfig:
    """How the workers use the machine (see the module docstring; ``TrainConfig.runtime``).

    Attributes:
        prefetch: batches each worker samples ahead in a background thread (0: in the training thread).
        freeze_gc: freeze the objects alive after a worker's setup out of Python's garbage
            collections while the job runs (:mod:`graphtrain.train.gc_freeze`).
        pin_cpus: pin each worker's threads to ``threads_per_worker`` cores of its own on its
            machine (:mod:`graphtrain.train.affinity`), so its prefetch thread overlaps
            communication with its own compute instead of competing with other workers.
        gloo_poller: scheduling of gloo's socket-poller threads in each worker of more than one
            (:mod:`graphtrain.train.gloo_threads`): ``"normal"`` (default) leaves them alone;
            ``"idle"`` runs them under ``SCHED_IDLE``, so a spinning poller no longer holds the core
            for a scheduler tick while the worker's own threads wait on it (Linux); ``"auto"``: idle
            on CPU workers, normal with ``use_gpu`` (not measured on GPU machines). Keep
            ``"normal"`` where other busy processes share the workers' cores: an idle thread gets
            ~0.3% of a busy core.
        fused_dropout: the shipped models' ReLU + dropout in one Numba pass on CPU float tensors
            (:mod:`graphtrain.train.dropout`; other tensors use the default path). Default: the
            ``torch.nn.functional.dropout`` algorithm on every device.
    """

    prefetch: int = 2
    freeze_gc: bool = True
    pin_cpus: bool = False
    gloo_poller: str = "normal"
    fused_dropout: bool = False

    def validate(self) -> "RuntimeConfig":
        if not isinstance(self.prefetch, int) or isinstance(self.prefetch, bool) or self.prefetch < 0:
            raise ConfigError(f"prefetch must be a non-negative integer, got {self.prefetch!r}")
        if self.gloo_poller not in GLOO_POLLERS:
            raise ConfigError(f"gloo_poller must be one of {GLOO_POLLERS}, got {self.gloo_poller!r}")
        for name in ("freeze_gc", "pin_cpus", "fused_dropout"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"{name} must be True or False, got {getattr(self, name)!r}")
        return self

    def idle_gloo_pollers(self, use_gpu: bool) -> bool:
        """Whether workers run gloo's socket pollers at idle priority (``gloo_poller`` resolved)."""
        return self.gloo_poller == "idle" or (self.gloo_poller == "auto" and not use_gpu)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Optional[dict]) -> "RuntimeConfig":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in (d or {}).items() if k in known})


@dataclass
class RuntimeReport:
    """What :class:`WorkerRuntime` did in one worker: the cores it pinned to (None: not pinned), the
    gloo poller threads it made idle, the objects it froze."""

    pinned_cores: Optional[List[int]] = None
    idle_gloo_pollers: int = 0
    frozen_objects: int = 0


class WorkerRuntime:
    """Applies a :class:`RuntimeConfig` in a worker process, in three places of its life:
    :meth:`pinned` around the whole job, :meth:`process_groups_started` once its gloo groups exist,
    :meth:`setup_frozen` around the work after setup."""

    def __init__(self, config: RuntimeConfig, threads: int, use_gpu: bool):
        self.config = config
        self.threads = threads
        self.use_gpu = use_gpu
        self.report = RuntimeReport()

    @contextlib.contextmanager
    def pinned(self, rank: int) -> Iterator[Optional[List[int]]]:
        """The body on ``threads`` cores of this worker's own (``pin_cpus``); yields them or None."""
        if not self.config.pin_cpus:
            yield None
            return
        from graphtrain.train.affinity import pinned_cores

        with pinned_cores(self.threads) as cores:
            log.info(f"worker {rank}: pinned to cores {cores}" if cores else f"worker {rank}: not pinned")
            self.report.pinned_cores = cores
            yield cores

    def process_groups_started(self, world: int) -> None:
        """Call once the process groups exist: their gloo pollers made idle when asked (``gloo_poller``)."""
        if world > 1 and self.config.idle_gloo_pollers(self.use_gpu):
            from graphtrain.train.gloo_threads import idle_gloo_pollers

            self.report.idle_gloo_pollers = len(idle_gloo_pollers())

    @contextlib.contextmanager
    def setup_frozen(self) -> Iterator[int]:
        """The body with the objects alive now frozen out of garbage collections (``freeze_gc``)."""
        if not self.config.freeze_gc:
            yield 0
            return
        from graphtrain.train.gc_freeze import setup_objects_frozen

        with setup_objects_frozen() as frozen:
            self.report.frozen_objects = frozen
            yield frozen
