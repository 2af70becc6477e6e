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

**Resumable runs** (the fraud pipeline): ``staged_directory(..., fingerprint=..., keep="stages",
resume=...)`` stores the run's fingerprint (:data:`RUN_FINGERPRINT`: its arguments and each input
file's :func:`file_identity`) at the start. A run that crashes or is killed after recording finished
work in ``keep`` leaves its staging directory in place (neither the in-process cleanup nor the
watcher removes it); with ``resume`` the next run of the same output adopts the newest such
directory of a dead owner -- only if its fingerprint is the same; otherwise it refuses, naming what
changed, and deletes nothing (:func:`fingerprint_changes`). Without ``resume`` it is reclaimed as
above, and the log says whether ``--resume`` would have continued it.

Runs that start at once on one host take turns for that set-up (:func:`setup_lock`: an ``flock`` on
the output's parent directory, held from the scan of the staging directories until the new or
adopted one records its owner), so two runs resuming the same output never adopt the same directory,
and no run removes a dead run's directory that another has just adopted.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import socket
import sys
import time
import uuid
from pathlib import Path
from typing import Dict, Iterator, List, Optional

from graphtrain.errors import ConfigError, GraphtrainError, OutputExistsError
from graphtrain.log import get_logger

DATASET_MARKER = "meta.json"  # a partitioned dataset's metadata file (graphtrain.partition.format.META_FILE)
STAGING_OWNER = ".graphtrain-staging.json"  # inside a staging directory: who is writing it (removed before the rename)
RUN_FINGERPRINT = "run_fingerprint.json"  # inside a resumable run's directory: its arguments and inputs (kept)
IDENTITY_BYTES = 1 << 20  # file_identity hashes this many bytes at each end of a file

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
# is done, or its process is gone) and remove the directory if it is still there (not renamed into place),
# unless its "keep" subdirectory (argv[2], if given) records finished work to resume from.
_ORPHAN_WATCH = ("import os, shutil, sys\nsys.stdin.buffer.read()\n"
                 "keep = os.path.join(sys.argv[1], sys.argv[2]) if len(sys.argv) > 2 else None\n"
                 "if not (keep and os.path.isdir(keep) and os.listdir(keep)):\n"
                 "    shutil.rmtree(sys.argv[1], ignore_errors=True)\n")


def _finished_work(tmp: Path, keep: Optional[str]) -> List[str]:
    """The names of the files in ``tmp/keep`` (a resumable run's records of finished work), sorted."""
    if not keep or not (tmp / keep).is_dir():
        return []
    return sorted(p.stem for p in (tmp / keep).iterdir() if p.is_file())


def _watch_staging(tmp: Path, keep: Optional[str] = None):
    """A small process that removes ``tmp`` once this process closes its stdin or exits, however it exits.

    A writer can be ended where no ``finally`` runs: SIGKILL, the OOM killer, or Ray's exit of a
    driver whose cluster went away ("Failed to connect to GCS within 60 seconds"). The watcher is in
    a session of its own, so Ctrl-C in the terminal reaches only the writer (whose own cleanup runs).
    None if it cannot be started (the in-process cleanup still runs). With ``keep``, a directory
    whose ``keep`` subdirectory holds a file is left for a resumed run (or the next run's reclaim).
    """
    import subprocess
    import sys

    try:
        return subprocess.Popen([sys.executable, "-I", "-S", "-c", _ORPHAN_WATCH, str(tmp), *([keep] if keep else [])],
                                stdin=subprocess.PIPE,
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


def _read_json(path: Path) -> Optional[dict]:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def _staging_dirs(final: Path) -> List[Path]:
    if not final.parent.is_dir():
        return []
    return [tmp for tmp in sorted(final.parent.glob(f".{final.name}.tmp-*")) if tmp.is_dir() and not tmp.is_symlink()]


def _resume_hint(tmp: Path, keep: Optional[str], fingerprint: Optional[dict]) -> str:
    """What a resumed run could have done with the dead run's directory ``tmp`` (for the log)."""
    done = _finished_work(tmp, keep)
    if not done:
        return ""
    if fingerprint is None:
        return f"; it held finished stages ({', '.join(done)})"
    old = _read_json(tmp / RUN_FINGERPRINT)
    changes = fingerprint_changes(old, fingerprint) if old is not None else ["no fingerprint"]
    if not changes:
        return f"; it held finished stages ({', '.join(done)}) of a run with the same arguments and inputs: --resume would have continued it"
    return f"; it held finished stages ({', '.join(done)}) of a run with other arguments or inputs ({changes[0]})"


@contextlib.contextmanager
def setup_lock(final) -> Iterator[None]:
    """Exclusive, across processes on this host, while a writer of ``final`` scans, reclaims, adopts or
    creates its staging directory (an ``flock`` on ``final``'s parent directory: no file is created;
    released when the block ends or the process dies). Hold it only for that set-up (milliseconds).
    Where the directory cannot be opened or locked (a file system without ``flock``), the set-up runs
    without it, as before this lock existed."""
    try:
        fd = os.open(Path(final).parent, os.O_RDONLY)
    except OSError:
        yield
        return
    try:
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def reclaim_dead_staging(final, keep: Optional[str] = None, fingerprint: Optional[dict] = None,
                         spare: Optional[Path] = None) -> List[Path]:
    """Remove the staging directories (``.NAME.tmp-*`` beside ``final``) of writers that are no longer
    running; log each removal with its owner and size, and each one left alone with the reason.

    Args:
        keep, fingerprint: a resumable writer's (see :func:`staged_directory`): the log says when a
            removed directory held finished work that ``--resume`` would have continued.
        spare: a directory not to remove (the one a resumed run adopts).

    Returns:
        the directories removed.
    """
    from graphtrain.units import format_size

    final = Path(final)
    removed = []
    for tmp in _staging_dirs(final):
        if spare is not None and tmp == spare:
            continue
        record = _read_json(tmp / STAGING_OWNER)
        if record is None:
            log.warning("%s is a staging directory with no readable owner record (an older graphtrain, or a writer "
                        "starting this instant); left alone: remove it by hand if no run is writing %s", tmp, final)
            continue
        alive = owner_alive(record)
        if alive is False:
            size = _tree_bytes(tmp)
            hint = _resume_hint(tmp, keep, fingerprint)
            shutil.rmtree(tmp, ignore_errors=True)
            removed.append(tmp)
            log.warning("removed %s (%s): the staging directory of a run that died without cleaning up (%s; "
                        "that process is no longer running)%s", tmp, format_size(size), _describe(record), hint)
        elif alive:
            log.warning("%s is being written by a run still in progress (%s); left alone. Two runs writing %s at "
                        "once: the one that finishes last replaces the other's output", tmp, _describe(record), final)
        else:
            log.info("%s belongs to a run on another host (%s); left alone: this host cannot tell whether it still "
                     "runs", tmp, _describe(record))
    return removed


# -- fingerprints of resumable runs -----------------------------------------------------------------
def file_identity(path) -> Dict[str, object]:
    """What tells a changed input file apart without reading all of it: the absolute ``path``, ``size``
    (bytes), ``mtime_ns`` and ``head_tail_sha256``, the SHA-256 of its first and last
    :data:`IDENTITY_BYTES` (1 MiB each; the whole file when smaller than 2 MiB)."""
    path = Path(path).resolve()
    st = path.stat()
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        digest.update(f.read(IDENTITY_BYTES))
        if st.st_size > IDENTITY_BYTES:
            f.seek(max(IDENTITY_BYTES, st.st_size - IDENTITY_BYTES))
            digest.update(f.read(IDENTITY_BYTES))
    return {"path": str(path), "size": int(st.st_size), "mtime_ns": int(st.st_mtime_ns),
            "head_tail_sha256": digest.hexdigest()}


def _file_change(name: str, old: Optional[dict], new: Optional[dict]) -> str:
    if old is None or new is None:
        return f"{name}: {'none' if old is None else old.get('path')} -> {'none' if new is None else new.get('path')}"
    if old.get("path") != new.get("path"):
        return f"{name}: {old.get('path')} -> {new.get('path')}"
    where = f"{name} {Path(str(new.get('path'))).name} changed"
    if old.get("size") != new.get("size"):
        return f"{where} (size {old.get('size')} -> {new.get('size')} bytes)"
    if old.get("head_tail_sha256") != new.get("head_tail_sha256"):
        return f"{where} (its content: same size, other bytes)"
    return f"{where} (modified: mtime_ns {old.get('mtime_ns')} -> {new.get('mtime_ns')})"


def fingerprint_changes(old: dict, new: dict) -> List[str]:
    """What differs between two run fingerprints ``{"arguments": {name: value}, "inputs": {name:
    file_identity or None}}``, one phrase each (``"--epochs: 40 -> 10"``, ``"transactions file tx.csv
    changed (size 1024 -> 2048 bytes)"``); empty when they are the same."""
    new = json.loads(json.dumps(new))  # compare as stored (tuples are lists in JSON)
    changes = []
    old_args, new_args = old.get("arguments") or {}, new.get("arguments") or {}
    for name in list(old_args) + [n for n in new_args if n not in old_args]:
        if old_args.get(name) != new_args.get(name):
            changes.append(f"{name}: {json.dumps(old_args.get(name))} -> {json.dumps(new_args.get(name))}")
    old_in, new_in = old.get("inputs") or {}, new.get("inputs") or {}
    for name in list(old_in) + [n for n in new_in if n not in old_in]:
        if old_in.get(name) != new_in.get(name):
            changes.append(_file_change(name, old_in.get(name), new_in.get(name)))
    return changes


def _adoptable(final: Path, fingerprint: dict, keep: Optional[str]) -> Optional[Path]:
    """The newest staging directory of ``final`` whose owner is dead and that holds a fingerprint and
    finished work; None if there is none. Raises :class:`ConfigError` (deleting nothing) when its
    fingerprint differs from ``fingerprint``."""
    found = []
    for tmp in _staging_dirs(final):
        record, old = _read_json(tmp / STAGING_OWNER), _read_json(tmp / RUN_FINGERPRINT)
        if record is None or old is None or owner_alive(record) is not False or not _finished_work(tmp, keep):
            continue
        found.append((record.get("created", 0), tmp, old))
    if not found:
        return None
    _, tmp, old = max(found, key=lambda item: item[0])
    changes = fingerprint_changes(old, fingerprint)
    if changes:
        raise ConfigError(f"cannot resume {final} from {tmp.name}: {'; '.join(changes)}. Rerun with the same arguments "
                          "and inputs, or without --resume to start afresh (that removes it)")
    return tmp


@contextlib.contextmanager
def staged_directory(final, force: bool = False, marker: str = DATASET_MARKER, *, fingerprint: Optional[dict] = None,
                     keep: Optional[str] = None, resume: bool = False) -> Iterator[Path]:
    """Build a directory under a temporary sibling and rename it to ``final`` on success.

    Args:
        final: the directory to create.
        force: replace an existing graphtrain output of this kind (or empty directory) at ``final``.
        marker: the file that marks a directory this kind of writer made (``meta.json`` for
            datasets, the default; other graphtrain outputs name their own manifest); only such a
            directory (or an empty one) is replaced with ``force``.
        fingerprint: a resumable run's ``{"arguments": {...}, "inputs": {...}}`` (JSON; input files
            as :func:`file_identity`), stored as :data:`RUN_FINGERPRINT` in the directory.
        keep: a resumable run's subdirectory of records of finished work: when the writer fails with
            anything but a :class:`~graphtrain.errors.GraphtrainError` (a crash, Ctrl-C) or dies
            without cleanup once it holds a file, the staging directory is left for ``resume``.
        resume: adopt the newest staging directory of a dead run of ``final`` with finished work in
            ``keep`` (the caller skips what is recorded there); one with another fingerprint is refused.

    Raises:
        OutputExistsError: ``final`` exists and ``force`` is not set, or it exists and is not a
            graphtrain output of this kind (never deleted, even with ``force``).
        ConfigError: ``resume`` and the dead run's fingerprint differs (the message names what
            changed; nothing is deleted).

    On an exception inside the block the temporary directory is removed and ``final`` is untouched;
    if the process dies without Python cleanup, a watcher process removes it (:func:`_watch_staging`);
    if the watcher dies too, the next writer of ``final`` does (:func:`reclaim_dead_staging`).
    A resumable directory with finished work is kept instead (see ``keep``).
    """
    final = Path(final)
    if resume and fingerprint is None:
        raise ValueError("resume needs the run's fingerprint")
    if final.exists() or final.is_symlink():
        if not force:
            raise OutputExistsError(f"{final} already exists; pass --force to replace it")
        if not _is_replaceable(final, marker):
            raise OutputExistsError(
                f"{final} exists and is not a graphtrain dataset or output (no {marker}); refusing to replace it even with --force"
            )
    final.parent.mkdir(parents=True, exist_ok=True)
    with setup_lock(final):  # until the directory records its owner: another run sees it as this run's
        adopted = _adoptable(final, fingerprint, keep) if resume else None
        reclaim_dead_staging(final, keep=keep, fingerprint=fingerprint, spare=adopted)
        if adopted is not None:
            tmp = adopted
            dead = _read_json(tmp / STAGING_OWNER) or {}
            log.warning("resuming: adopted %s, the staging directory of a run that died (%s), with finished stages: %s",
                        tmp, _describe(dead), ", ".join(_finished_work(tmp, keep)))
        else:
            if resume:
                log.warning("nothing to resume for %s: no staging directory of a dead run with finished stages beside it; "
                            "starting afresh", final)
            tmp = _temp_sibling(final)
            tmp.mkdir()
            if fingerprint is not None:
                write_text_atomic(tmp / RUN_FINGERPRINT, json.dumps(fingerprint, indent=1) + "\n")
        write_text_atomic(tmp / STAGING_OWNER, json.dumps(_owner_record()))
    watcher = _watch_staging(tmp, keep)
    try:
        try:
            yield tmp
        except BaseException as exc:
            done = _finished_work(tmp, keep)
            if done and not isinstance(exc, GraphtrainError):
                log.warning("kept %s with finished stages (%s) after %s: rerun with the same arguments and --resume "
                            "to continue from them; the next run without --resume removes it", tmp, ", ".join(done),
                            type(exc).__name__)
            else:
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
            watcher.stdin.close()  # done: tmp is renamed or removed (or kept), the watcher finds nothing to remove
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
