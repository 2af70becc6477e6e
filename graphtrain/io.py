"""Staged and atomic output: a file or directory appears whole under its final name, or not at all.

Every writer of a graphtrain output uses these, whatever it writes (datasets, checkpoints' JSON,
generated data, the fraud pipeline's output and report, scores):

- :func:`staged_directory` -- build a directory under a temporary sibling, rename it into place at
  the end; a failed run leaves neither a half-written output nor the temporary directory (a watcher
  process removes it even when the writer dies where no Python cleanup runs).
- :func:`staged_file` -- the same for one file.
- :func:`write_text_atomic` -- replace a small text file (JSON metadata, manifests) in one rename.

With ``force`` an existing output is replaced only if it is one of graphtrain's (it holds the
writer's marker file) or an empty directory; anything else is refused, never deleted.

A staging directory whose writer *and* watcher both died (the machine or container went down, the
OOM killer or a cgroup kill took the whole process tree) stays behind; at a billion edges it holds
tens of GB. So each one records its owner (:data:`STAGING_OWNER`: pid, host, boot ID, the process's
start time), and the next writer of the same output removes the staging directories of dead owners
before it starts, and logs which and why (:func:`reclaim_dead_staging`); one whose owner is still
running, or on another host, is left alone.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import sys
import time
import uuid
from pathlib import Path
from typing import Iterator, List, Optional

from graphtrain.errors import OutputExistsError
from graphtrain.log import get_logger

DATASET_MARKER = "meta.json"  # a partitioned dataset's metadata file (graphtrain.partition.format.META_FILE)
STAGING_OWNER = ".graphtrain-staging.json"  # inside a staging directory: who is writing it (removed before the rename)

log = get_logger("io")


def _temp_sibling(final: Path, kind: str = "tmp") -> Path:
    return final.parent / f".{final.name}.{kind}-{uuid.uuid4().hex[:8]}"


def write_text_atomic(path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary sibling and one rename (readers see old or new, never half)."""
    path = Path(path)
    tmp = _temp_sibling(path)
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _is_replaceable(path: Path, marker: str) -> bool:
    """Only graphtrain outputs (holding ``marker``) or empty directories may be replaced with ``force``."""
    if path.is_dir():
        return (path / marker).is_file() or not any(path.iterdir())
    return False


# Run by the watcher of a staging directory: wait until the writer's end of the pipe closes (the writer
# is done, or its process is gone) and remove the directory if it is still there (not renamed into place).
_ORPHAN_WATCH = "import shutil, sys\nsys.stdin.buffer.read()\nshutil.rmtree(sys.argv[1], ignore_errors=True)\n"


def _watch_staging(tmp: Path):
    """A small process that removes ``tmp`` once this process closes its stdin or exits, however it exits.

    A writer can be ended where no ``finally`` runs: SIGKILL, the OOM killer, or Ray's exit of a
    driver whose cluster went away ("Failed to connect to GCS within 60 seconds"). The watcher is in
    a session of its own, so Ctrl-C in the terminal reaches only the writer (whose own cleanup runs).
    None if it cannot be started (the in-process cleanup still runs).
    """
    import subprocess
    import sys

    try:
        return subprocess.Popen([sys.executable, "-I", "-S", "-c", _ORPHAN_WATCH, str(tmp)], stdin=subprocess.PIPE,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    except OSError:
        return None


# -- owners of staging directories ----------------------------------------------------------------
def _boot_id() -> Optional[str]:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return None


def _start_ticks(pid: int) -> Optional[int]:
    """Start time of process ``pid`` in clock ticks since boot (tells a reused pid apart); None if unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    try:
        return int(stat[stat.rindex(")") + 2 :].split()[19])  # field 22; the command name may hold spaces
    except (ValueError, IndexError):
        return None


def _owner_record() -> dict:
    argv = list(sys.argv)
    if argv and argv[0].replace(os.sep, "/").endswith("graphtrain/cli/__main__.py"):
        argv[0] = "graphtrain"  # python -m graphtrain.cli
    return {"pid": os.getpid(), "host": socket.gethostname(), "boot_id": _boot_id(), "start_ticks": _start_ticks(os.getpid()),
            "created": round(time.time(), 3), "command": " ".join(argv)[:300]}


def owner_alive(record: dict) -> Optional[bool]:
    """Whether the process that wrote the owner ``record`` still runs: True, False, or None when this
    host cannot tell (another host, e.g. on a shared filesystem)."""
    if record.get("host") != socket.gethostname():
        return None
    boot = _boot_id()
    if record.get("boot_id") and boot and record["boot_id"] != boot:
        return False  # the machine restarted since
    pid = record.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by another user
    started = record.get("start_ticks")
    return started is None or _start_ticks(pid) in (None, started)  # a different start time: the pid was reused


def _tree_bytes(path: Path) -> int:
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(root, f)).st_blocks * 512
            except OSError:
                pass
    return total


def _describe(record: dict) -> str:
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(record.get("created", 0)))
    command = f", `{record['command']}`" if record.get("command") else ""
    return f"pid {record.get('pid')} on {record.get('host')}, started {when}{command}"


def reclaim_dead_staging(final) -> List[Path]:
    """Remove the staging directories (``.NAME.tmp-*`` beside ``final``) of writers that are no longer
    running; log each removal with its owner and size, and each one left alone with the reason.

    Returns:
        the directories removed.
    """
    from graphtrain.units import format_size

    final = Path(final)
    removed = []
    if not final.parent.is_dir():
        return removed
    for tmp in sorted(final.parent.glob(f".{final.name}.tmp-*")):
        if not tmp.is_dir() or tmp.is_symlink():
            continue  # a staged_file's temporary file, or not ours
        try:
            record = json.loads((tmp / STAGING_OWNER).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            log.warning("%s is a staging directory with no readable owner record (an older graphtrain, or a writer "
                        "starting this instant); left alone: remove it by hand if no run is writing %s", tmp, final)
            continue
        alive = owner_alive(record)
        if alive is False:
            size = _tree_bytes(tmp)
            shutil.rmtree(tmp, ignore_errors=True)
            removed.append(tmp)
            log.warning("removed %s (%s): the staging directory of a run that died without cleaning up (%s; "
                        "that process is no longer running)", tmp, format_size(size), _describe(record))
        elif alive:
            log.warning("%s is being written by a run still in progress (%s); left alone. Two runs writing %s at "
                        "once: the one that finishes last replaces the other's output", tmp, _describe(record), final)
        else:
            log.info("%s belongs to a run on another host (%s); left alone: this host cannot tell whether it still "
                     "runs", tmp, _describe(record))
    return removed


@contextlib.contextmanager
def staged_directory(final, force: bool = False, marker: str = DATASET_MARKER) -> Iterator[Path]:
    """Build a directory under a temporary sibling and rename it to ``final`` on success.

    Args:
        final: the directory to create.
        force: replace an existing graphtrain output of this kind (or empty directory) at ``final``.
        marker: the file that marks a directory this kind of writer made (``meta.json`` for
            datasets, the default; other graphtrain outputs name their own manifest); only such a
            directory (or an empty one) is replaced with ``force``.

    Raises:
        OutputExistsError: ``final`` exists and ``force`` is not set, or it exists and is not a
            graphtrain output of this kind (never deleted, even with ``force``).

    On an exception inside the block the temporary directory is removed and ``final`` is untouched;
    if the process dies without Python cleanup, a watcher process removes it (:func:`_watch_staging`);
    if the watcher dies too, the next writer of ``final`` does (:func:`reclaim_dead_staging`).
    """
    final = Path(final)
    if final.exists() or final.is_symlink():
        if not force:
            raise OutputExistsError(f"{final} already exists; pass --force to replace it")
        if not _is_replaceable(final, marker):
            raise OutputExistsError(
                f"{final} exists and is not a graphtrain dataset or output (no {marker}); refusing to replace it even with --force"
            )
    final.parent.mkdir(parents=True, exist_ok=True)
    reclaim_dead_staging(final)
    tmp = _temp_sibling(final)
    tmp.mkdir()
    (tmp / STAGING_OWNER).write_text(json.dumps(_owner_record()), encoding="utf-8")
    watcher = _watch_staging(tmp)
    try:
        try:
            yield tmp
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        (tmp / STAGING_OWNER).unlink(missing_ok=True)
        old = None
        if final.exists():
            old = _temp_sibling(final, "old")
            os.rename(final, old)
        os.rename(tmp, final)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if watcher is not None:
            watcher.stdin.close()  # done: tmp is renamed or removed, the watcher finds nothing to remove
            try:
                watcher.wait(timeout=2)
            except Exception:  # noqa: BLE001 -- a slow watcher is reaped by subprocess later
                pass


@contextlib.contextmanager
def staged_file(final, force: bool = False) -> Iterator[Path]:
    """Write a file under a temporary sibling name and rename it to ``final`` on success.

    Raises:
        OutputExistsError: ``final`` exists and ``force`` is not set, or it is a directory.
    """
    final = Path(final)
    if final.is_dir():
        raise OutputExistsError(f"{final} is a directory; give a file name")
    if final.exists() and not force:
        raise OutputExistsError(f"{final} already exists; pass --force to replace it")
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_sibling(final)
    try:
        yield tmp
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            tmp.unlink()
