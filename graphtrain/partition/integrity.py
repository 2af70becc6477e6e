"""Integrity of a dataset's ``.npy`` arrays: cheap structural checks and sha256 with a stamp.

Two levels, both against the records in ``meta.json`` (dtype, shape and sha256 of each array's
data bytes, written while partitioning):

* :func:`check_array_file` -- on every open: the file exists, its ``.npy`` header parses, dtype,
  shape and C order match the record, and the file size is exactly header + data (so a truncated
  or extended file is caught). A few hundred bytes read per array.
* :func:`verify_arrays` -- the sha256 of every array's data bytes, streamed from disk. The first
  full verification records a stamp (:data:`STAMP_FILE`, JSON) with each file's size, mtime, ctime
  and inode and the sha256 it matched; later calls hash only the files whose stat changed (an
  ordinary write changes mtime and ctime; a copy changes the inode), unless ``force``. As in git's
  "racily clean" rule, a file modified less than :data:`RACY_WINDOW_NS` before the verification
  is not recorded (file timestamps are coarse: a second write in the same clock tick would leave
  the stat unchanged), so it is hashed again next time.

The stamp lives in the dataset directory. Where that is not writable (a read-only share), it goes
to ``$XDG_CACHE_HOME/graphtrain/verified/`` (default ``~/.cache``), keyed by the directory's real
path; where neither is writable the arrays are hashed on every run and a warning says so.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Protocol, Sequence, Tuple

import numpy as np

from graphtrain._version import __version__
from graphtrain.errors import FormatError
from graphtrain.log import get_logger

log = get_logger("integrity")

STAMP_FILE = ".verified.json"
STAMP_VERSION = 1
MISMATCH = "sha256 mismatch (dataset corrupted or modified after partitioning)"
_CHUNK_BYTES = 4 << 20
RACY_WINDOW_NS = 2_000_000_000  # > any file timestamp granularity but FAT's


class ArrayRecord(Protocol):
    """What :func:`verify_arrays` reads of a record (``format.FileRecord``)."""

    dtype: str
    shape: Sequence[int]
    sha256: str


@dataclass
class VerifyReport:
    """What :func:`verify_arrays` did: ``hashed`` of ``files`` arrays hashed (``hashed_bytes`` bytes in
    ``seconds``), the rest matched the stamp; ``stamp``: where the stamp was read or written (None: nowhere)."""

    files: int
    hashed: int
    hashed_bytes: int
    seconds: float
    stamp: Optional[Path]


# -- cheap checks ------------------------------------------------------------------------------------
def read_npy_header(path: Path) -> Tuple[np.dtype, Tuple[int, ...], bool, int]:
    """``(dtype, shape, fortran_order, data_offset)`` of a ``.npy`` file (FormatError if it has none)."""
    try:
        with open(path, "rb") as fh:
            version = np.lib.format.read_magic(fh)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
            elif version == (2, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh)
            else:
                raise ValueError(f"unsupported .npy version {version}")
            return dtype, tuple(shape), bool(fortran), fh.tell()
    except FileNotFoundError:
        raise FormatError(f"{path}: missing (listed in meta.json)") from None
    except (ValueError, OSError, SyntaxError) as exc:
        raise FormatError(f"{path}: unreadable .npy header ({exc})") from None


def check_array_file(path: Path, dtype: str, shape) -> Tuple[int, os.stat_result]:
    """Check one array file's header and size against its record; return ``(data_offset, stat)``.

    Raises:
        FormatError: naming the file and what is wrong.
    """
    path = Path(path)
    if path.exists() and not path.is_file():
        raise FormatError(f"{path}: not a regular file (listed in meta.json)")
    found, found_shape, fortran, offset = read_npy_header(path)
    if found.str != dtype or list(found_shape) != list(shape):
        raise FormatError(f"{path}: expected dtype {dtype} shape {tuple(shape)}, found {found.str} {found_shape}")
    if fortran and len(found_shape) > 1:
        raise FormatError(f"{path}: Fortran-ordered array; graphtrain writes C order")
    st = path.stat()
    expected = offset + int(np.prod(found_shape, dtype=np.int64)) * found.itemsize
    if st.st_size != expected:
        what = "truncated" if st.st_size < expected else "has trailing bytes"
        raise FormatError(f"{path}: {st.st_size} bytes, expected {expected} ({offset} header + "
                          f"{expected - offset} data); the file is {what}")
    return offset, st


def sha256_data(path: Path, offset: int) -> str:
    """sha256 of a file's bytes from ``offset`` on (an array's data), streamed in 4 MiB reads."""
    sha = hashlib.sha256()
    buf = memoryview(bytearray(_CHUNK_BYTES))
    with open(path, "rb", buffering=0) as fh:
        fh.seek(offset)
        while True:
            n = fh.readinto(buf)
            if not n:
                break
            sha.update(buf[:n])
    return sha.hexdigest()


# -- stamps ----------------------------------------------------------------------------------------
def _stat_entry(st: os.stat_result) -> Dict[str, int]:
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "ctime_ns": st.st_ctime_ns, "ino": st.st_ino}


def _cache_stamp(root: Path) -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    key = hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:24]
    return base / "graphtrain" / "verified" / f"{key}.json"


def stamp_paths(root: Path) -> List[Path]:
    """Where a stamp of ``root`` may be: in the directory, then in the user's cache."""
    return [Path(root) / STAMP_FILE, _cache_stamp(Path(root))]


def read_stamp(root: Path) -> Tuple[Dict[str, dict], Optional[Path]]:
    """The file entries of ``root``'s stamp and where it was found (``{}, None`` if none is usable)."""
    for path in stamp_paths(root):
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if (isinstance(raw, dict) and raw.get("stamp_version") == STAMP_VERSION
                and raw.get("dataset") == str(Path(root).resolve()) and isinstance(raw.get("files"), dict)):
            return raw["files"], path
        log.debug("%s: ignoring a stamp of another dataset or version", path)
    return {}, None


def write_stamp(root: Path, files: Mapping[str, dict]) -> Optional[Path]:
    """Record verified file entries (atomically); return where, or None if no location was writable."""
    text = json.dumps({"stamp_version": STAMP_VERSION, "dataset": str(Path(root).resolve()),
                       "created_by": f"graphtrain {__version__}", "verified_at": time.time(), "files": dict(files)},
                      indent=1) + "\n"
    for path in stamp_paths(root):
        tmp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:8]}")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(text, encoding="utf-8")
            os.replace(tmp, path)
            return path
        except OSError as exc:
            log.debug("cannot write the verification stamp %s (%s)", path, exc)
            try:
                tmp.unlink(missing_ok=True)
            except OSError:
                pass
    return None


# -- full verification -----------------------------------------------------------------------------
def verify_arrays(root, records: Mapping[str, ArrayRecord], force: bool = False) -> VerifyReport:
    """Check the sha256 of every array in ``records`` (relative path -> record), hashing only the
    files changed since the stamp unless ``force``; record the stamp.

    Raises:
        FormatError: a header, size or checksum mismatch, naming the file.
    """
    root = Path(root)
    t0 = time.perf_counter()
    settled_before = time.time_ns() - RACY_WINDOW_NS  # files last changed before this may be stamped
    stamped, stamp_path = ({}, None) if force else read_stamp(root)
    entries: Dict[str, dict] = {}
    hashed = hashed_bytes = 0
    for rel, rec in records.items():
        path = root / rel
        offset, st = check_array_file(path, rec.dtype, rec.shape)  # stat before hashing: a write during it shows
        entry = {"sha256": rec.sha256, **_stat_entry(st)}
        if stamped.get(rel) != entry:
            if sha256_data(path, offset) != rec.sha256:
                raise FormatError(f"{path}: {MISMATCH}")
            hashed += 1
            hashed_bytes += st.st_size - offset
        if min(st.st_mtime_ns, st.st_ctime_ns) < settled_before:
            entries[rel] = entry
    if entries != stamped:
        stamp_path = write_stamp(root, entries)
        if stamp_path is None:
            log.warning("%s: cannot record a verification stamp (read-only dataset and cache); the arrays will be "
                        "hashed again on every run (pass --no-verify / verify=False to skip)", root)
    seconds = time.perf_counter() - t0
    if hashed:
        log.info("%s: verified the sha256 of %d of %d arrays (%.1f MB in %.1f s)", root, hashed, len(records),
                 hashed_bytes / 1e6, seconds)
    return VerifyReport(len(records), hashed, hashed_bytes, seconds, stamp_path)
