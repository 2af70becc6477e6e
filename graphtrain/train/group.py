"""Ray placement and start of the workers; failure detection. Ray places and restarts, we only ask.

- :func:`connect` joins the Ray cluster the user named (``address``: ``"auto"``, ``"HOST:PORT"`` of
  ``ray start --head``, or ``ray://...``), or else starts a private local one -- never a cluster
  named only by ``RAY_ADDRESS`` or by the address file Ray keeps for the last ``ray start`` on the
  machine. An unreachable address fails fast with a :class:`ConfigError` (a TCP probe before
  ``ray.init``); so does a token-protected cluster this process has no accepted token for (a GCS
  probe, which also turns on Ray's token mode here when the cluster uses it and a token is found).
- :class:`WorkerGroup` reserves one placement-group bundle per worker (``cpus_per_worker`` CPUs,
  one GPU with ``use_gpu``; ``SPREAD`` over the nodes), finds a rendezvous address on bundle 0's
  node, and runs :func:`~graphtrain.train.worker.run_worker` as one Ray task per bundle. Called
  from inside a placement group whose last ``W`` bundles each hold a worker's resources -- a Ray
  Tune trial with ``PlacementGroupFactory([{}] + [{"CPU": c}] * W)``, as ``graphtrain tune`` starts
  them (:mod:`graphtrain.tune.search`) -- it runs the workers in those bundles instead: the trial
  already holds their resources, so a second group would wait for CPUs that never free up. There
  :func:`connect` is a no-op too (Ray is initialised in a trial), so the workers share the
  trial's cluster.
  :meth:`WorkerGroup.run` waits for all of them; the first that fails makes it cancel (kill) the
  others -- they would otherwise wait in a collective -- and raise :class:`WorkerFailure`, or the
  worker's own :class:`~graphtrain.errors.GraphtrainError` when the failure is the user's input.
- :func:`released_after` ends what a block connected: a Ray the block started or joined is shut
  down when it exits (its idle worker processes, and a local cluster's own processes, give their
  memory back); a Ray the process had before the block is kept.
- :class:`ProgressChannel` is a tiny actor the workers post progress to (fire and forget: the
  dataclasses of :mod:`graphtrain.train.results`); the driver drains it while it waits.

Ray reuses task worker processes, so a second run on the same cluster skips the imports.
"""
from __future__ import annotations

import os
import socket
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, List, Optional, Sequence

from graphtrain.errors import ConfigError, GraphtrainError
from graphtrain.log import get_logger

log = get_logger("train.group")

_PACKAGE_PARENT = str(Path(__file__).resolve().parents[2])


class WorkerFailure(Exception):
    """A worker process died or raised an unexpected error; the run can resume from a checkpoint."""

    def __init__(self, rank: int, cause: BaseException):
        self.rank = rank
        self.cause = cause
        super().__init__(f"worker {rank} failed: {type(cause).__name__}: {str(cause).splitlines()[0] if str(cause) else ''}")


def check_address(address: str, timeout: float = 5.0) -> None:
    """Raise ConfigError unless ``HOST:PORT`` accepts TCP connections (``auto`` and ``ray://`` pass through)."""
    if address == "auto" or address.startswith("ray://"):
        return
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ConfigError(f"Ray address must be 'auto', 'ray://HOST:PORT' or 'HOST:PORT' (of `ray start --head`), got {address!r}")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            pass
    except OSError as exc:
        raise ConfigError(f"cannot reach the Ray cluster at {address} ({exc.strerror or exc}); start it with "
                          "`ray start --head` on the head node, or check the address and firewall") from None


def _token_source() -> str:
    """Where Ray reads this process's authentication token from, in its order of precedence."""
    if os.environ.get("RAY_AUTH_TOKEN"):
        return "RAY_AUTH_TOKEN"
    if os.environ.get("RAY_AUTH_TOKEN_PATH"):
        return f"RAY_AUTH_TOKEN_PATH ({os.environ['RAY_AUTH_TOKEN_PATH']})"
    return str(Path.home() / ".ray" / "auth_token")


def _gcs_accepts(address: str) -> bool:
    """Whether the GCS at ``HOST:PORT`` accepts this process's credentials (False: an authentication error)."""
    from ray._raylet import GcsClient
    from ray.exceptions import AuthenticationError

    try:
        GcsClient(address=address)
    except AuthenticationError:
        return False
    except Exception as exc:  # noqa: BLE001 -- anything else: no Ray cluster answers there
        raise ConfigError(f"cannot join the Ray cluster at {address}: no Ray GCS answered there "
                          f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); "
                          "give the HOST:PORT that `ray start --head` printed") from None
    return True


def authenticate(address: str) -> None:
    """Make this process's Ray use token authentication if the cluster at ``HOST:PORT`` requires it.

    Ray turns token authentication on for ``ray start --head`` whenever a token exists on the head
    (``~/.ray/auth_token``, written by any earlier local ``ray.init``), but a client that names the
    address turns it on only with ``RAY_AUTH_MODE=token``. So the GCS is asked first; if it refuses
    this process and ``RAY_AUTH_MODE`` is unset, token mode is turned on (for this process and its
    children) when a token is found (``RAY_AUTH_TOKEN``, ``RAY_AUTH_TOKEN_PATH`` or
    ``~/.ray/auth_token``) and the GCS asked again.

    Raises:
        ConfigError: the cluster refuses this process (no token, a wrong token, or ``RAY_AUTH_MODE``
            set to something else than ``token``), saying what to set; or no GCS answers at ``address``.
    """
    if _gcs_accepts(address):
        return
    from ray._raylet import AuthenticationTokenLoader

    where = ("copy the cluster's token (`ray get-auth-token` on the head node) to ~/.ray/auth_token on this "
             "machine, or set RAY_AUTH_TOKEN to it")
    mode = os.environ.get("RAY_AUTH_MODE")
    if mode is not None and mode.lower() != "token":
        raise ConfigError(f"the Ray cluster at {address} uses token authentication but RAY_AUTH_MODE={mode} here: "
                          f"unset RAY_AUTH_MODE (or set it to token) and {where}")
    if not AuthenticationTokenLoader.instance().has_token(ignore_auth_mode=True):
        raise ConfigError(f"the Ray cluster at {address} uses token authentication and no token was found here: {where}")
    if mode is None:
        from ray._private.authentication.authentication_token_setup import _enable_token_auth

        _enable_token_auth()  # RAY_AUTH_MODE=token for this process and its children, as ray.init does locally
        if _gcs_accepts(address):
            log.info("the Ray cluster at %s uses token authentication; joining with the token from %s", address,
                     _token_source())
            return
    raise ConfigError(f"the Ray cluster at {address} rejected the authentication token from {_token_source()}: "
                      f"{where} (the token of the head node's ~/.ray/auth_token, or the RAY_AUTH_TOKEN it was started with)")


def connect(address: Optional[str] = None, num_cpus: Optional[int] = None) -> None:
    """Join the Ray cluster at ``address``, or start a private local one (``num_cpus`` logical CPUs); no-op if connected.

    Without ``address`` a new local Ray is started even when ``RAY_ADDRESS`` is set or another
    cluster runs on the machine (``ray.init(address="local")``): graphtrain never joins a cluster
    the user did not name. A ``HOST:PORT`` address is checked first (:func:`check_address`,
    :func:`authenticate`).

    The job's workers get graphtrain's parent directory on ``PYTHONPATH``, so a source checkout
    works without installing (on a real cluster, install graphtrain on every node).
    """
    import ray

    if ray.is_initialized():
        return
    env = {"PYTHONPATH": os.pathsep.join(p for p in (_PACKAGE_PARENT, os.environ.get("PYTHONPATH")) if p)}
    kwargs = dict(runtime_env={"env_vars": env}, logging_level="WARNING", log_to_driver=True)
    if not address:
        ray.init(address="local", num_cpus=num_cpus, include_dashboard=False, **kwargs)
        return
    check_address(address)
    if address != "auto" and not address.startswith("ray://"):
        authenticate(address)
    try:
        ray.init(address=address, **kwargs)
    except (ConnectionError, RuntimeError, TimeoutError, ray.exceptions.AuthenticationError) as exc:
        raise ConfigError(f"cannot join the Ray cluster at {address}: {exc}") from None


@contextmanager
def released_after() -> Iterator[None]:
    """Shut Ray down when the block exits if the block connected it (:func:`connect`), on success or
    error; a Ray this process had before the block (the user's ``ray.init``, a Tune trial's) is left
    as it was.

    Ray keeps task worker processes alive for reuse, each holding its imports (torch) and the
    memory its last task touched; a local cluster also keeps its own processes. A job whose later
    stages run in the driver (the fraud pipeline's baseline and rings) gets that memory back here.
    """
    import ray

    before = ray.is_initialized()
    try:
        yield
    finally:
        if not before and ray.is_initialized():
            ray.shutdown()


def _progress_actor():
    import ray

    @ray.remote(num_cpus=0)
    class ProgressChannel:
        """Messages posted by workers, drained by the driver."""

        def __init__(self):
            self._items = []

        def put(self, item) -> None:
            self._items.append(item)

        def drain(self) -> list:
            items, self._items = self._items, []
            return items

    return ProgressChannel


def _free_port():
    """(node IP, a free TCP port) on the node this runs on."""
    import ray

    with socket.socket() as s:
        s.bind(("", 0))
        port = s.getsockname()[1]
    return ray.util.get_node_ip_address(), port


class WorkerGroup:
    """``num_workers`` Ray tasks, one per placement-group bundle (see the module docstring).

    Args:
        num_workers: W.
        cpus_per_worker: logical CPUs reserved per worker.
        use_gpu: reserve one GPU per worker.
        start_timeout_s: how long to wait for the cluster to have room for all bundles.
    """

    def __init__(self, num_workers: int, cpus_per_worker: float = 1.0, use_gpu: bool = False, start_timeout_s: float = 60.0):
        self.num_workers = num_workers
        self.cpus_per_worker = cpus_per_worker
        self.use_gpu = use_gpu
        self.start_timeout_s = start_timeout_s
        self.pg = None
        self.owns_pg = False
        self.first_bundle = 0
        self.progress = None

    def _inherited(self, bundle: dict):
        """The placement group this task runs in and the index of its first worker bundle, if its
        last ``num_workers`` bundles each hold ``bundle``; else None."""
        from ray.util import get_current_placement_group

        pg = get_current_placement_group()
        if pg is None:
            return None
        specs = pg.bundle_specs
        tail = specs[len(specs) - self.num_workers:] if len(specs) >= self.num_workers else []
        if not tail or any(spec.get(k, 0) < v for spec in tail for k, v in bundle.items()):
            return None
        return pg, len(specs) - self.num_workers

    def __enter__(self) -> "WorkerGroup":
        import ray
        from ray.util.placement_group import placement_group

        bundle = {"CPU": self.cpus_per_worker}
        if self.use_gpu:
            bundle["GPU"] = 1
        inherited = self._inherited(bundle)
        if inherited is not None:
            self.pg, self.first_bundle = inherited
            self.progress = _progress_actor().remote()
            return self
        total = ray.cluster_resources()
        need_cpu = self.cpus_per_worker * self.num_workers
        if total.get("CPU", 0) < need_cpu or (self.use_gpu and total.get("GPU", 0) < self.num_workers):
            raise ConfigError(f"{self.num_workers} workers need {need_cpu:g} CPUs{' and ' + str(self.num_workers) + ' GPUs' if self.use_gpu else ''}; "
                              f"the Ray cluster has {total.get('CPU', 0):g} CPUs and {total.get('GPU', 0):g} GPUs "
                              "(lower --cpus-per-worker or --num-workers, or add nodes)")
        self.pg = placement_group([dict(bundle) for _ in range(self.num_workers)], strategy="SPREAD")
        self.owns_pg = True
        ready, _ = ray.wait([self.pg.ready()], timeout=self.start_timeout_s)
        if not ready:
            ray.util.remove_placement_group(self.pg)
            self.pg = None
            raise ConfigError(f"the Ray cluster did not free {self.num_workers} x {bundle} within {self.start_timeout_s:g} s")
        self.progress = _progress_actor().remote()
        return self

    def __exit__(self, *exc) -> None:
        import ray

        if self.progress is not None:
            ray.kill(self.progress)
            self.progress = None
        if self.pg is not None and self.owns_pg:
            ray.util.remove_placement_group(self.pg)
        self.pg = None
        self.owns_pg = False

    def _strategy(self, rank: int):
        from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

        return PlacementGroupSchedulingStrategy(placement_group=self.pg, placement_group_bundle_index=self.first_bundle + rank)

    def rendezvous(self):
        """``(ip, port)`` for torch.distributed's TCP rendezvous, on bundle 0's node."""
        import ray

        task = ray.remote(num_cpus=0)(_free_port).options(scheduling_strategy=self._strategy(0))
        return ray.get(task.remote(), timeout=self.start_timeout_s)

    def run(self, make_task: Callable[[int, str, int], object], on_progress: Callable[[object], None],
            poll_s: float = 0.2) -> List[object]:
        """Run one worker per bundle and wait for all; returns each rank's result (a dataclass of
        :mod:`graphtrain.train.results`), in rank order.

        Args:
            make_task: ``(rank, master_addr, master_port) -> WorkerTask``.
            on_progress: called on the driver with each progress message the workers post.

        Raises:
            GraphtrainError: a worker rejected the input/configuration (not worth a restart).
            WorkerFailure: a worker died or failed otherwise (the caller may restart).
        """
        import ray
        from ray.exceptions import RayTaskError

        from graphtrain.train.worker import run_worker

        addr, port = self.rendezvous()
        remote = ray.remote(num_cpus=self.cpus_per_worker, num_gpus=1 if self.use_gpu else 0, max_retries=0)(run_worker)
        refs = [remote.options(scheduling_strategy=self._strategy(r)).remote(make_task(r, addr, port))
                for r in range(self.num_workers)]
        rank_of = {ref: r for r, ref in enumerate(refs)}
        results: List[Optional[object]] = [None] * self.num_workers
        pending = list(refs)
        try:
            while pending:
                done, pending = ray.wait(pending, num_returns=1, timeout=poll_s)
                self._drain(on_progress)
                for ref in done:
                    try:
                        results[rank_of[ref]] = ray.get(ref)
                    except RayTaskError as exc:
                        cause = getattr(exc, "cause", None)
                        if isinstance(cause, GraphtrainError):
                            raise cause from None
                        raise WorkerFailure(rank_of[ref], exc) from None
                    except ray.exceptions.RayError as exc:  # worker process died, node lost, ...
                        raise WorkerFailure(rank_of[ref], exc) from None
        except BaseException:
            for ref in pending:
                ray.cancel(ref, force=True)
            raise
        self._drain(on_progress)
        return results

    def _drain(self, on_progress) -> None:
        import ray

        for msg in ray.get(self.progress.drain.remote()):
            on_progress(msg)


def run_with_restarts(run_once: Callable[[Optional[str]], List[object]], latest: Callable[[], Optional[str]],
                      max_restarts: int, on_restart: Callable[[WorkerFailure, Optional[str]], None],
                      resume_from: Optional[str] = None) -> List[object]:
    """Call ``run_once(checkpoint)``; after a :class:`WorkerFailure`, again from the latest checkpoint.

    Args:
        run_once: starts a worker group from a checkpoint (None: from scratch) and returns its results.
        latest: the newest checkpoint written so far, or None.
        max_restarts: failures tolerated before giving up.
        on_restart: told about each failure and the checkpoint the next attempt starts from.
        resume_from: checkpoint of the first attempt.
    """
    failures = 0
    start = resume_from
    while True:
        try:
            return run_once(start)
        except WorkerFailure as exc:
            failures += 1
            start = latest() or resume_from
            if failures > max_restarts:
                where = f"; the last checkpoint is {start}" if start else "; no checkpoint was written"
                raise GraphtrainError(f"training failed {failures} times (limit --max-restarts {max_restarts}): {exc}{where}") from exc
            on_restart(exc, start)
