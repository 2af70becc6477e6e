"""staged_directory leaves no temporary ``.OUT.tmp-*`` directory behind, on any failure path."""
import subprocess
import sys
import time
from pathlib import Path

import pytest

from graphtrain.io import staged_directory

REPO = Path(__file__).resolve().parents[2]


def _leftovers(parent: Path, name: str):
    return sorted(p.name for p in parent.glob(f".{name}.tmp-*"))


def _wait_gone(parent: Path, name: str, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while _leftovers(parent, name) and time.monotonic() < deadline:
        time.sleep(0.05)
    return _leftovers(parent, name)


@pytest.mark.parametrize("exc", [RuntimeError("ray failed"), KeyboardInterrupt()])
def test_an_exception_removes_the_staging_directory(tmp_path, exc):
    with pytest.raises(type(exc)):
        with staged_directory(tmp_path / "out") as tmp:
            (tmp / "x").write_text("half")
            raise exc
    assert not (tmp_path / "out").exists() and _leftovers(tmp_path, "out") == []


def test_success_renames_and_leaves_nothing(tmp_path):
    with staged_directory(tmp_path / "out", marker="summary.json") as tmp:
        (tmp / "summary.json").write_text("{}")
    assert (tmp_path / "out" / "summary.json").exists()
    assert _wait_gone(tmp_path, "out", 2.0) == [] and (tmp_path / "out" / "summary.json").exists()


@pytest.mark.parametrize("how", ["os._exit", "SIGKILL"])
def test_a_process_killed_without_cleanup_leaves_no_staging_directory(tmp_path, how):
    """Ray ends a driver whose cluster went away with a C++ exit ("Failed to connect to GCS within 60
    seconds"): no finally, no atexit. The staging directory must still go."""
    code = (f"import os, signal, sys\nsys.path.insert(0, {str(REPO)!r})\n"
            "from graphtrain.io import staged_directory\n"
            f"with staged_directory({str(tmp_path / 'out')!r}) as tmp:\n"
            "    (tmp / 'part').write_bytes(b'x' * 1000)\n"
            "    print(tmp, flush=True)\n"
            + ("    os._exit(1)\n" if how == "os._exit" else "    os.kill(os.getpid(), signal.SIGKILL)\n"))
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert res.returncode != 0 and ".out.tmp-" in res.stdout, res.stderr
    assert _wait_gone(tmp_path, "out") == []
    assert not (tmp_path / "out").exists()
