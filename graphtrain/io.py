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
"""
from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from pathlib import Path
from typing import Iterator

from graphtrain.errors import OutputExistsError

DATASET_MARKER = "meta.json"  # a partitioned dataset's metadata file (graphtrain.partition.format.META_FILE)


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
    if the process dies without Python cleanup, a watcher process removes it (:func:`_watch_staging`).
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
    tmp = _temp_sibling(final)
    tmp.mkdir()
    watcher = _watch_staging(tmp)
    try:
        try:
            yield tmp
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
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
