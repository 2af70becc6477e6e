"""Which Ray cluster graphtrain runs on (issue 19, items 1 and 10).

- Without ``--address`` it starts a private local Ray, whatever ``RAY_ADDRESS``, Ray's address file
  (the last ``ray start`` on the machine) or a running cluster say; another program's cluster is
  left alone, and a stale address file (a stopped cluster) neither delays nor breaks a run.
- ``--address HOST:PORT`` of a ``ray start --head`` cluster with token authentication (Ray turns it
  on whenever a token exists on the head) works with the token from ``~/.ray/auth_token`` or
  ``RAY_AUTH_TOKEN``; a missing or wrong token fails at once, saying what to set.
- A Ray failure leaves no ``.OUT.tmp-*`` staging directory behind.

The foreign clusters are real ``ray start --head`` processes on loopback (:mod:`tests.train.ray_head`), each in
a temp dir of its own and stopped by its own process. graphtrain runs in subprocesses, so this
process's session-wide Ray plays no part.
"""
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.train.ray_head import RayHead, free_ports

pytestmark = pytest.mark.ray

REPO = Path(__file__).resolve().parents[2]
FAST_MODEL = ["--epochs", "1", "--min-steps", "0", "--hidden", "8", "--fanouts", "3,3"]


def _env(**extra) -> dict:
    """This environment without Ray's client variables (a test's own Ray sets RAY_AUTH_MODE), plus ``extra``."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("RAY_ADDRESS", "RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH", "RAY_TMPDIR")}
    env.update(extra)
    return env


def _graphtrain(args, env, timeout=600):
    t0 = time.monotonic()
    res = subprocess.run([sys.executable, "-m", "graphtrain.cli", *map(str, args)], cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=timeout)
    return res, time.monotonic() - t0


@pytest.fixture(scope="module")
def tx_files(tmp_path_factory):
    """A tiny transaction log (300 accounts, 1500 transactions) and account table, as CSV."""
    root = tmp_path_factory.mktemp("tx")
    rs = np.random.default_rng(0)
    n, e = 300, 1500
    y = (rs.random(n) < 0.2).astype(int)
    src, dst = rs.integers(0, n, e), rs.integers(0, n, e)
    (root / "tx.csv").write_text("src,dst,amount\n" + "".join(
        f"a{s},a{d},{a:.2f}\n" for s, d, a in zip(src, dst, rs.random(e) * 100)))
    (root / "accounts.csv").write_text("account_id,label,f0\n" + "".join(
        f"a{i},{y[i]},{rs.normal() + 1.5 * y[i]:.3f}\n" for i in range(n)))
    return root


def _detect_args(tx_files, out, *extra):
    return ["detect-rings", "--edges", tx_files / "tx.csv", "--accounts", tx_files / "accounts.csv", "--label", "label",
            "--amount", "amount", "--num-parts", "1", "--no-blend", *FAST_MODEL, "--out", out, *extra]


def _staging_left(out: Path):
    return sorted(p.name for p in out.parent.glob(f".{out.name}.tmp-*"))


@pytest.mark.slow  # > 30 s on the 2-core machine
@pytest.mark.parametrize("named_by", ["RAY_ADDRESS", "address file"])
def test_detect_rings_runs_on_its_own_ray_and_leaves_another_cluster_alone(tx_files, tmp_path, named_by):
    with RayHead(num_cpus=1, env={"RAY_AUTH_MODE": "disabled"}) as foreign:
        before = foreign.resources()
        # the address file: TEMP/ray/ray_current_cluster, where a process with RAY_TMPDIR=TEMP looks
        env = _env(RAY_ADDRESS=foreign.address) if named_by == "RAY_ADDRESS" else _env(RAY_TMPDIR=str(foreign.root))
        out = tmp_path / "out"
        res, secs = _graphtrain(_detect_args(tx_files, out), env)
        assert res.returncode == 0, res.stderr[-3000:]
        assert (out / "summary.json").exists() and _staging_left(out) == []
        assert foreign.jobs() == [], "graphtrain joined the foreign cluster"
        assert foreign.resources() == before and before.get("CPU") == 1.0  # still answers, untouched
    print(f"detect-rings beside a foreign cluster ({named_by}): {secs:.1f} s")


def test_a_stale_address_file_neither_delays_nor_breaks_a_run(tmp_path):
    """The last `ray start --head` was stopped; Ray's address file still names its GCS."""
    head = RayHead(num_cpus=1, env={"RAY_AUTH_MODE": "disabled"})
    address_file = head.temp_dir / "ray_current_cluster"
    head.__enter__()
    stale = address_file.read_text()
    head.stop()  # head.root stays
    # a graceful stop of this very head removes the file; a killed head (or one stopped from
    # elsewhere) leaves it behind, naming a GCS nobody answers at
    address_file.write_text(stale)
    try:
        assert stale.strip().endswith(":" + head.address.split(":")[1])
        code = ("import ray\nfrom graphtrain.train.group import connect\nconnect()\n"
                "print('answer', ray.get(ray.remote(lambda: 42).remote()), ray.get_runtime_context().gcs_address)")
        t0 = time.monotonic()
        try:
            res = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=_env(RAY_TMPDIR=str(head.root)),
                                 capture_output=True, text=True, timeout=120)
        except subprocess.TimeoutExpired:
            pytest.fail("connect() was still retrying the stopped cluster's GCS after 120 s")
        secs = time.monotonic() - t0
        assert res.returncode == 0, res.stderr[-3000:]
        answer = res.stdout.split("answer ")[1].split()
        assert answer[0] == "42" and not answer[1].endswith(":" + head.address.split(":")[1])
        assert "Failed to connect to GCS" not in res.stderr
        assert secs < 60, f"took {secs:.0f} s"
    finally:
        import shutil

        shutil.rmtree(head.root, ignore_errors=True)


@pytest.fixture
def token_home(tmp_path):
    """A HOME whose ~/.ray/auth_token holds a fresh token (caches stay in the real ~/.cache)."""
    home = tmp_path / "home"
    (home / ".ray").mkdir(parents=True)
    token = secrets.token_hex(32)
    (home / ".ray" / "auth_token").write_text(token)
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return home, token, {"HOME": str(home), "XDG_CACHE_HOME": cache}


@pytest.mark.slow  # > 30 s on the 2-core machine
def test_train_joins_a_token_protected_cluster_with_the_default_token_file(labelled_dataset, tmp_path, token_home):
    """README's multi-node steps: `ray start --head` (token auth on, since a token exists), then
    `graphtrain train DIR --address HEAD:PORT` on a machine with the same ~/.ray/auth_token."""
    home, token, home_env = token_home
    with RayHead(num_cpus=1, env=home_env) as head:  # RAY_AUTH_MODE unset: Ray turns token auth on
        res, secs = _graphtrain(["train", labelled_dataset, "--address", head.address, *FAST_MODEL, "--batch-size", "64",
                                 "--checkpoint-dir", tmp_path / "ckpt", "--no-progress"], _env(**home_env))
        assert res.returncode == 0, res.stderr[-3000:]
        assert len(head.jobs()) == 1  # it ran there
        assert res.stderr.count("InvalidAuthToken") <= 1  # Ray's warning of the first probe (was 20 s of them)
    print(f"train on a token-protected cluster: {secs:.1f} s")


@pytest.mark.slow  # > 30 s on the 2-core machine
def test_token_from_env_and_clear_errors_without_the_right_token(labelled_dataset, tmp_path, token_home):
    home, token, home_env = token_home
    empty_home = tmp_path / "empty-home"
    empty_home.mkdir()
    no_token = {"HOME": str(empty_home), "XDG_CACHE_HOME": home_env["XDG_CACHE_HOME"]}
    code = ("import ray, sys\nfrom graphtrain.train.group import connect\nconnect(sys.argv[1])\n"
            "print('answer', ray.get(ray.remote(num_cpus=0)(lambda: 42).remote()))")
    with RayHead(num_cpus=1, env=home_env) as head:
        res = subprocess.run([sys.executable, "-c", code, head.address], cwd=REPO, env=_env(RAY_AUTH_TOKEN=token, **no_token),
                             capture_output=True, text=True, timeout=300)
        assert res.returncode == 0 and "answer 42" in res.stdout, res.stderr[-3000:]
        for env, expect in ((no_token, "uses token authentication and no token was found here"),
                            (dict(no_token, RAY_AUTH_TOKEN="0" * 64), "rejected the authentication token from RAY_AUTH_TOKEN"),
                            (dict(home_env, RAY_AUTH_MODE="disabled"), "RAY_AUTH_MODE=disabled here")):
            res, secs = _graphtrain(["train", labelled_dataset, "--address", head.address, *FAST_MODEL,
                                     "--checkpoint-dir", tmp_path / "ckpt", "--no-progress"], _env(**env), timeout=300)
            assert res.returncode == 2 and expect in res.stderr, res.stderr[-3000:]
            assert "RAY_AUTH_TOKEN" in res.stderr and "~/.ray/auth_token" in res.stderr
            assert "Traceback" not in res.stderr and res.stderr.strip().splitlines()[-1].startswith("graphtrain train: error:")
            assert res.stderr.count("InvalidAuthToken") <= 2  # Ray's warning of each probe (was 20 s of them)
            assert secs < 30, f"an authentication failure took {secs:.0f} s"
        assert len(head.jobs()) == 1  # only the RAY_AUTH_TOKEN run joined


def test_detect_rings_with_a_dead_address_fails_cleanly(tx_files, tmp_path):
    (port,) = free_ports(1)
    out = tmp_path / "out"
    res, secs = _graphtrain(_detect_args(tx_files, out, "--address", f"127.0.0.1:{port}"), _env())
    assert res.returncode == 2 and "cannot reach the Ray cluster at 127.0.0.1:" in res.stderr, res.stderr[-3000:]
    assert "Traceback" not in res.stderr
    assert not out.exists() and _staging_left(out) == []


@pytest.mark.slow  # > 30 s on the 2-core machine
def test_detect_rings_whose_cluster_dies_leaves_only_a_resumable_staging_directory(tx_files, tmp_path):
    """The cluster goes away mid-training: Ray ends the driver ('Failed to connect to GCS within N
    seconds') with no Python cleanup. What is left is the staging directory of a dead run holding
    only finished stages' records and outputs (issue 20: the next run resumes it with ``--resume`` or
    removes it, and says which) -- no record of the unfinished training stage, no output at ``out``."""
    from graphtrain.fraud.pipeline.stages import STAGES_DIR
    from graphtrain.io import reclaim_dead_staging

    out = tmp_path / "out"
    args = _detect_args(tx_files, out, "--address", "ADDR")
    args[args.index("--epochs") + 1] = "500"
    args += ["--patience", "500", "--batch-size", "16"]
    with RayHead(num_cpus=1, env={"RAY_AUTH_MODE": "disabled"}) as head:
        args[args.index("ADDR")] = head.address
        env = _env(RAY_gcs_rpc_server_reconnect_timeout_s="3", RAY_AUTH_MODE="disabled")
        proc = subprocess.Popen([sys.executable, "-m", "graphtrain.cli", *map(str, args)], cwd=REPO, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 300
        while not any((p / "checkpoints").exists() for p in tmp_path.glob(".out.tmp-*")):  # training started
            assert proc.poll() is None, proc.communicate()[1][-3000:]
            assert time.monotonic() < deadline, "training did not start"
            time.sleep(0.2)
        head.stop()
        _, err = proc.communicate(timeout=120)
    assert proc.returncode != 0 and not out.exists()
    left = _staging_left(out)
    assert len(left) == 1, (left, err[-2000:])
    finished = sorted(p.stem for p in (tmp_path / left[0] / STAGES_DIR).iterdir())
    assert finished == ["baseline", "features", "model_inputs", "partition"], finished  # training never finished
    removed = reclaim_dead_staging(out, keep=STAGES_DIR)  # what the next run without --resume does
    assert [p.name for p in removed] == left and _staging_left(out) == []


def test_released_after_ends_only_the_ray_its_block_started():
    import ray

    from graphtrain.train.group import connect, released_after

    if ray.is_initialized():
        ray.shutdown()
    with pytest.raises(RuntimeError):
        with released_after():
            connect(num_cpus=1)
            assert ray.is_initialized()
            raise RuntimeError("a stage failed")
    assert not ray.is_initialized()  # ended on error too
    connect(num_cpus=1)
    with released_after():
        connect(num_cpus=1)  # joins the process's Ray: a no-op
    assert ray.is_initialized()  # the process's own Ray is kept
    ray.shutdown()
