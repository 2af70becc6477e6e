"""Shared test configuration.

- CUDA kernels are exercised on Numba's CUDA simulator unless a real NVIDIA GPU is present
  (``NUMBA_ENABLE_CUDASIM`` must be set before numba.cuda is imported, hence here).
- ``SHARED_DATA`` is the repository's sibling ``shared/data`` folder with the real fraud datasets.
- Hypothesis: the ``ci`` profile (loaded when ``CI`` is set, or with ``HYPOTHESIS_PROFILE=ci``) draws
  examples from a fixed seed (``derandomize``: the same examples on every run) and keeps no example
  database; the ``dev`` profile (otherwise) draws at random. Both print the ``@reproduce_failure``
  blob of a failing example. A test's own ``@settings`` sets only example counts, deadlines and
  health checks.
- ``OMP_WAIT_POLICY=passive`` unless set: OpenMP threads (scikit-learn's tree, torch) sleep rather
  than spin between parallel regions. The suite runs Ray workers and CLI subprocesses beside the
  test process on two cores, and spinning threads there starve them: one tree test took 127 s with
  the default policy and 16 s passive on the loaded machine (2026-12-06). Set before any test module
  loads an OpenMP runtime; subprocesses and Ray workers inherit it.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path


def _has_nvidia_gpu() -> bool:
    return Path("/dev/nvidia0").exists() or shutil.which("nvidia-smi") is not None and os.system("nvidia-smi -L >/dev/null 2>&1") == 0


os.environ.setdefault("OMP_WAIT_POLICY", "passive")

if "NUMBA_ENABLE_CUDASIM" not in os.environ and not _has_nvidia_gpu():
    os.environ["NUMBA_ENABLE_CUDASIM"] = "1"

import pytest  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402

settings.register_profile("ci", derandomize=True, database=None, deadline=None, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev"))

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("GRAPHTRAIN_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path of ../shared/data; the tests that use it fail (not skip) when it is missing, since CI has it."""
    if not SHARED_DATA.is_dir():
        pytest.fail(f"shared data folder {SHARED_DATA} not found (set GRAPHTRAIN_SHARED_DATA)")
    return SHARED_DATA


RAY_CPUS = 4  # logical CPUs of the tests' local Ray: 4 workers fit on the 2-core machine


@pytest.fixture
def ray_local():
    """This process's local Ray with ``RAY_CPUS`` CPUs, started on first use and shared by the session.

    A Ray an earlier test started smaller (a pipeline run with ``num_cpus=2`` joins or starts the
    process's Ray) is replaced, so no test depends on which tests ran before it in its process.
    """
    import ray

    from graphtrain.train.group import connect

    if ray.is_initialized() and ray.cluster_resources().get("CPU", 0) < RAY_CPUS:
        ray.shutdown()
    connect(num_cpus=RAY_CPUS)
    yield ray
