"""Streaming readers for edge lists and node tables, with errors that name file, line and column.

Sources are CSV/TSV (optionally compressed: ``.gz``, ``.bz2``, ``.zst``), Parquet, or an in-memory
``pyarrow.Table``. Files are read batch by batch with pyarrow; memory use is bounded by the batch
size, never by the file size. Each batch comes out as a :class:`RowBatch`: the requested columns
plus where its rows came from, so that any later check can say ``file, line N, column 'x': ...``.

Column conversion (:func:`read_ids`, :func:`read_int_column`, :func:`read_float_column`, ...)
turns pyarrow columns into NumPy arrays of graphtrain's types and rejects nulls, text in numeric
columns, NaN where not allowed and invalid UTF-8, naming the first offending row.

IDs are either ``int64`` or UTF-8 strings. String IDs travel as an :class:`StringIds` pair of
Arrow-style buffers (``offsets`` int64 ``[n + 1]``, ``data`` uint8), which Numba kernels can hash
and compare without Python objects.
"""
from __future__ import annotations

import re
import sys
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from graphtrain.errors import ConfigError, InputError

FORMATS = ("csv", "tsv", "parquet")
_COMPRESSED = (".gz", ".bz2", ".zst", ".lz4")
_FORMAT_BY_SUFFIX = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".txt": "csv", ".parquet": "parquet", ".pq": "parquet"}


# -- sources ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TableSource:
    """Where the rows of one logical table (edge list or node table) come from.

    Attributes:
        paths: one or more files with the same columns (read in order), or empty for ``table``.
        table: an in-memory table instead of files.
        format: ``csv``, ``tsv`` or ``parquet``; detected from each file's extension when None.
        delimiter: field separator for text files (default ``,`` for csv, tab for tsv).
        header: whether text files start with a header line. Without one, columns are named by
            their 0-based position: ``"0"``, ``"1"``, ...
        quote_char: quoting character for text files; None disables quoting.
        name: display name of an in-memory table in messages.
    """

    paths: Tuple[Path, ...] = ()
    table: Optional[pa.Table] = None
    format: Optional[str] = None
    delimiter: Optional[str] = None
    header: bool = True
    quote_char: Optional[str] = '"'
    name: str = "<table>"

    @classmethod
    def from_paths(cls, paths: Union[str, Path, Sequence[Union[str, Path]]], **kw) -> "TableSource":
        if isinstance(paths, (str, Path)):
            paths = [paths]
        paths = tuple(Path(p) for p in paths)
        if not paths:
            raise ConfigError("no input files given")
        for p in paths:
            if not p.is_file():
                raise InputError(p, "no such file")
        if kw.get("format") is not None and kw["format"] not in FORMATS:
            raise ConfigError(f"--format must be one of {', '.join(FORMATS)}, got {kw['format']!r}")
        return cls(paths=paths, **kw)

    @classmethod
    def from_table(cls, table: pa.Table, name: str = "<table>") -> "TableSource":
        return cls(table=table, name=name)

    def file_format(self, path: Path) -> str:
        if self.format:
            return self.format
        suffixes = [s.lower() for s in path.suffixes]
        while suffixes and suffixes[-1] in _COMPRESSED:
            suffixes.pop()
        fmt = _FORMAT_BY_SUFFIX.get(suffixes[-1] if suffixes else "")
        if fmt is None:
            raise InputError(path, "cannot tell the file format from its name; pass --format csv, tsv or parquet")
        return fmt

    def estimated_rows(self) -> int:
        """An upper-leaning estimate of the number of data rows (exact for Parquet and tables)."""
        if self.table is not None:
            return self.table.num_rows
        total = 0
        for p in self.paths:
            if self.file_format(p) == "parquet":
                total += _parquet_file(p).metadata.num_rows
            else:
                size = p.stat().st_size
                if p.suffix.lower() in _COMPRESSED:
                    size *= 10  # typical ratio for numeric text; over-estimating only costs buckets
                total += size // 8 + 1  # short rows such as "1,2,3\n" are ~6-8 bytes
        return int(total)


@dataclass
class RowBatch:
    """One batch of rows from a source.

    Attributes:
        where: the file (or table name) the rows came from.
        first_row: line (text files, header counted) or 1-based row (Parquet, tables) of row 0.
        unit: ``"line"`` or ``"row"``.
        columns: requested column name -> pyarrow Array.
        num_rows: rows in the batch.
        row_offset: 0-based index of row 0 among all data rows of the source (all files).
    """

    where: str
    first_row: int
    unit: str
    columns: Dict[str, pa.Array]
    num_rows: int
    row_offset: int

    def error(self, index: int, message: str, column: Optional[str] = None) -> InputError:
        """An :class:`InputError` for row ``index`` of this batch."""
        return InputError(self.where, message, row=self.first_row + int(index), column=column, unit=self.unit)


# -- reading ----------------------------------------------------------------------------------------
def _parquet_file(path: Path) -> pq.ParquetFile:
    try:
        return pq.ParquetFile(path, pre_buffer=False)  # pre-buffering costs ~100 MB RSS and is slower here
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(path, f"not a readable Parquet file ({exc})") from None


def _resolve_columns(available: List[str], wanted: Sequence[str], where, header: bool) -> Dict[str, str]:
    """Map each wanted column (name, or 0-based position when there is no header) to a real name."""
    resolved = {}
    for col in wanted:
        if col in available:
            resolved[col] = col
        elif not header and col.isdigit() and int(col) < len(available):
            resolved[col] = available[int(col)]
        else:
            shown = ", ".join(available[:20]) + (" ..." if len(available) > 20 else "")
            hint = "" if header else " (no header: name columns by 0-based position)"
            raise InputError(where, f"no column {col!r}{hint}; columns are: {shown}")
    return resolved


_ROW_RE = re.compile(r"Row #(\d+)")
_COL_RE = re.compile(r"In CSV column #(\d+)")
_FIELDS_RE = re.compile(r"Expected (\d+) columns, got (\d+): (.*)", re.DOTALL)
_SNIFF_BYTES = 1 << 16


def shown_text(text: str, limit: int = 200, ascii_only: bool = False) -> str:
    """``text`` quoted for an error message: cut to ``limit`` characters, with backslashes, non-printable
    characters, U+FFFD (which stands for undecodable bytes) and, with ``ascii_only``, every non-ASCII
    character written as Python escapes."""
    cut = text if len(text) <= limit else text[:limit]
    out = "".join(c if c.isprintable() and c not in "\\\ufffd" and (c.isascii() or not ascii_only)
                  else c.encode("unicode_escape").decode("ascii") for c in cut)
    return f"'{out}'" + ("..." if len(text) > limit else "")


def _refuse_binary(path: Path) -> None:
    """A clear error for a file that is not text: a NUL byte among its first 64 KiB (decompressed)."""
    try:
        with pa.input_stream(str(path), compression="detect") as stream:
            head = stream.read(_SNIFF_BYTES)
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(path, f"cannot read it ({exc})") from None
    nul = head.find(b"\0")
    if nul >= 0:
        raise InputError(path, f"binary data (a NUL byte at offset {nul}): expected CSV or TSV text in UTF-8, "
                               "optionally compressed (.gz, .bz2, .zst), or a Parquet file (.parquet)")


@contextmanager
def _undecodable_rows_recorded(bad_rows: list):
    """While pyarrow reads a CSV: an invalid row that is not UTF-8 makes pyarrow's row handler fail
    before it calls ours, and Python prints that as "Exception ignored ... Traceback". Record it in
    ``bad_rows`` instead (the error that follows says the line is not UTF-8), print nothing."""
    previous = sys.unraisablehook

    def hook(unraisable):
        if isinstance(unraisable.exc_value, UnicodeDecodeError) and \
                getattr(unraisable.object, "__qualname__", "").startswith("_open_csv."):
            bad_rows.append({"undecodable": True})
            return
        previous(unraisable)

    sys.unraisablehook = hook
    try:
        yield
    finally:
        sys.unraisablehook = previous


def _translate_csv_error(exc: Exception, path: Path, names: List[str], bad_row: Optional[dict]) -> InputError:
    """Turn a pyarrow CSV error into an InputError with file, line and column."""
    if bad_row is not None and "text" in bad_row:
        return InputError(path, f"expected {bad_row['expected']} fields, found {bad_row['actual']}: "
                                f"{shown_text(bad_row['text'])}", row=bad_row["number"], unit="line")
    msg = str(exc)
    row = _ROW_RE.search(msg)
    fields = _FIELDS_RE.search(msg)
    if fields:
        undecodable = bad_row is not None and bad_row.get("undecodable")
        detail = f"expected {fields.group(1)} fields, found {fields.group(2)}: " \
                 f"{shown_text(fields.group(3), ascii_only=bool(undecodable))}"
        if undecodable:
            detail += " (not valid UTF-8: is this a CSV or TSV text file?)"
        return InputError(path, detail, row=int(row.group(1)) if row else None, unit="line")
    col = _COL_RE.search(msg)
    column = names[int(col.group(1))] if col and int(col.group(1)) < len(names) else None
    detail = msg.split(": ", 2)[-1] if "conversion error" in msg else msg
    if "invalid UTF8" in msg:
        detail = "invalid UTF-8 bytes (the file must be UTF-8 encoded)"
    elif "conversion error to" in msg:
        m = re.search(r"conversion error to (\w+): invalid value '(.*)'", msg)
        if m:
            kind = "an integer" if m.group(1).startswith(("int", "uint")) else "a number" if m.group(1) in ("double", "float") else m.group(1)
            detail = f"expected {kind}, got {m.group(2)!r}"
    return InputError(path, detail, row=int(row.group(1)) if row else None, column=column, unit="line")


def _open_csv(path: Path, source: TableSource, fmt: str, batch_bytes: int, include: Optional[List[str]], types: Dict[str, pa.DataType], bad_rows: list):
    delimiter = source.delimiter or ("\t" if fmt == "tsv" else ",")
    if len(delimiter) != 1:
        raise ConfigError(f"delimiter must be one character, got {delimiter!r}")

    def on_invalid(row):
        bad_rows.append({"number": row.number, "expected": row.expected_columns, "actual": row.actual_columns, "text": row.text})
        return "error"

    read_opts = pacsv.ReadOptions(use_threads=False, block_size=batch_bytes, autogenerate_column_names=not source.header)
    parse_opts = pacsv.ParseOptions(
        delimiter=delimiter,
        quote_char=source.quote_char if source.quote_char else False,
        invalid_row_handler=on_invalid,
    )
    convert_opts = pacsv.ConvertOptions(include_columns=include, column_types=types, check_utf8=True)
    stream = pa.input_stream(str(path), compression="detect")
    return pacsv.open_csv(stream, read_options=read_opts, parse_options=parse_opts, convert_options=convert_opts)


def _csv_column_names(path: Path, source: TableSource, fmt: str) -> List[str]:
    _refuse_binary(path)
    bad: list = []
    try:
        with _undecodable_rows_recorded(bad):
            reader = _open_csv(path, source, fmt, 1 << 16, None, {}, bad)
        names = reader.schema.names
        reader.close()
    except (pa.ArrowInvalid, OSError) as exc:
        raise _translate_csv_error(exc, path, [], bad[0] if bad else None) from None
    if not source.header:
        names = [str(i) for i in range(len(names))]
    return names


def peek_types(source: TableSource, columns: Sequence[str]) -> Dict[str, pa.DataType]:
    """The type pyarrow infers for each column from the first batch of the first file."""
    if source.table is not None:
        resolved = _resolve_columns(source.table.column_names, columns, source.name, True)
        return {c: source.table.schema.field(resolved[c]).type for c in columns}
    path = source.paths[0]
    fmt = source.file_format(path)
    if fmt == "parquet":
        schema = _parquet_file(path).schema_arrow
        resolved = _resolve_columns(schema.names, columns, path, True)
        return {c: schema.field(resolved[c]).type for c in columns}
    names = _csv_column_names(path, source, fmt)
    resolved = _resolve_columns(names, columns, path, source.header)
    real = [_real_csv_name(resolved[c], names, source) for c in columns]
    bad: list = []
    try:
        with _undecodable_rows_recorded(bad):
            reader = _open_csv(path, source, fmt, 1 << 20, real, {}, bad)
        schema = reader.schema
        reader.close()
    except (pa.ArrowInvalid, OSError) as exc:
        raise _translate_csv_error(exc, path, names, bad[0] if bad else None) from None
    return {c: schema.field(r).type for c, r in zip(columns, real)}


def _real_csv_name(name: str, names: List[str], source: TableSource) -> str:
    """pyarrow's own name of a column (``f0``, ``f1``, ... when there is no header)."""
    return name if source.header else f"f{names.index(name)}"


def iter_batches(
    source: TableSource,
    columns: Sequence[str],
    batch_rows: int,
    types: Optional[Dict[str, pa.DataType]] = None,
) -> Iterator[RowBatch]:
    """Yield the requested columns of every row of ``source``, batch by batch.

    Args:
        source: files or table.
        columns: column names (or positions, without a header) to read.
        batch_rows: target rows per batch (text files: approximate, batches are cut by bytes).
        types: pyarrow types to convert columns to while parsing text files (so conversion errors
            carry line numbers); Parquet and tables keep their own types.

    Raises:
        InputError: missing file or column, malformed row, unconvertible value, invalid UTF-8.
    """
    types = dict(types or {})
    row_offset = 0
    if source.table is not None:
        resolved = _resolve_columns(source.table.column_names, columns, source.name, True)
        for batch in source.table.to_batches(max_chunksize=batch_rows):
            cols = {c: batch.column(resolved[c]) for c in columns}
            yield RowBatch(source.name, row_offset + 1, "row", cols, batch.num_rows, row_offset)
            row_offset += batch.num_rows
        return
    for path in source.paths:
        fmt = source.file_format(path)
        file_row = 0
        if fmt == "parquet":
            pf = _parquet_file(path)
            resolved = _resolve_columns(pf.schema_arrow.names, columns, path, True)
            try:
                for batch in pf.iter_batches(batch_size=batch_rows, columns=sorted(set(resolved.values())), use_threads=False):
                    cols = {c: batch.column(resolved[c]) for c in columns}
                    yield RowBatch(str(path), file_row + 1, "row", cols, batch.num_rows, row_offset)
                    file_row += batch.num_rows
                    row_offset += batch.num_rows
            except (pa.ArrowInvalid, OSError) as exc:
                raise InputError(path, f"cannot read Parquet data after row {file_row} ({exc})") from None
            continue
        names = _csv_column_names(path, source, fmt)
        resolved = _resolve_columns(names, columns, path, source.header)
        real = {c: _real_csv_name(resolved[c], names, source) for c in columns}
        include = sorted(set(real.values()), key=lambda n: real_order(n, names, source))
        conv_types = {real[c]: t for c, t in types.items() if c in real}
        bad: list = []
        pos_names = [names[i] for i in range(len(names))]
        reader = None
        try:
            with _undecodable_rows_recorded(bad):
                reader = _open_csv(path, source, fmt, max(1 << 16, min(batch_rows * 24, 256 << 20)), include,
                                   conv_types, bad)
            first_line = 2 if source.header else 1
            for batch in _recording(reader, bad):
                cols = {c: batch.column(real[c]) for c in columns}
                yield RowBatch(str(path), first_line + file_row, "line", cols, batch.num_rows, row_offset)
                file_row += batch.num_rows
                row_offset += batch.num_rows
        except (pa.ArrowInvalid, OSError) as exc:
            raise _translate_csv_error(exc, path, _display_names(include, pos_names, source), bad[0] if bad else None) from None
        finally:
            if reader is not None:
                reader.close()


def _recording(reader, bad_rows: list):
    """``reader``'s batches, each read with undecodable invalid rows recorded (not printed)."""
    while True:
        with _undecodable_rows_recorded(bad_rows):
            try:
                batch = reader.read_next_batch()
            except StopIteration:
                return
        yield batch


def real_order(real_name: str, names: List[str], source: TableSource) -> int:
    return int(real_name[1:]) if not source.header else names.index(real_name)


def _display_names(include: List[str], names: List[str], source: TableSource) -> List[str]:
    """Column names in the order pyarrow numbers them in errors (``include`` order)."""
    return [n if source.header else str(int(n[1:])) for n in include]


# -- conversion to graphtrain types ---------------------------------------------------------------
@dataclass
class StringIds:
    """A batch of string IDs as Arrow-style buffers: ``data[offsets[i]:offsets[i + 1]]`` is ID ``i``."""

    offsets: np.ndarray  # int64 [n + 1], offsets[0] == 0
    data: np.ndarray  # uint8

    def __len__(self) -> int:
        return int(self.offsets.shape[0] - 1)

    def to_arrow(self) -> pa.LargeStringArray:
        return pa.LargeStringArray.from_buffers(len(self), pa.py_buffer(self.offsets), pa.py_buffer(self.data))

    def take(self, index: np.ndarray) -> "StringIds":
        return string_ids_from_arrow(self.to_arrow().take(pa.array(index)))

    @staticmethod
    def concat(parts: Sequence["StringIds"]) -> "StringIds":
        if not parts:
            return StringIds(np.zeros(1, np.int64), np.zeros(0, np.uint8))
        return string_ids_from_arrow(pa.concat_arrays([p.to_arrow() for p in parts]))


IdArray = Union[np.ndarray, StringIds]


def string_ids_from_arrow(arr: pa.Array) -> StringIds:
    """Buffers of a (large_)string array with no nulls, re-based to start at offset 0."""
    if isinstance(arr, pa.ChunkedArray):
        arr = pa.concat_arrays(arr.chunks) if arr.num_chunks != 1 else arr.chunk(0)
    if not pa.types.is_large_string(arr.type):
        arr = arr.cast(pa.large_string())
    bufs = arr.buffers()
    offsets = np.frombuffer(bufs[1], dtype=np.int64, count=len(arr) + 1, offset=arr.offset * 8)
    start, stop = int(offsets[0]), int(offsets[-1])
    data = np.frombuffer(bufs[2], dtype=np.uint8, count=stop - start, offset=start) if bufs[2] is not None and stop > start else np.zeros(0, np.uint8)
    return StringIds(offsets - start, data)


def _first_null(arr: pa.Array) -> int:
    return int(np.flatnonzero(np.asarray(arr.is_null()))[0])


def _combine(arr) -> pa.Array:
    if isinstance(arr, pa.ChunkedArray):
        return pa.concat_arrays(arr.chunks) if arr.num_chunks != 1 else arr.chunk(0)
    return arr


def _first_invalid_utf8(arr: pa.Array) -> int:
    for i, v in enumerate(arr.to_pylist()):
        if v is not None:
            try:
                v.decode("utf-8")
            except UnicodeDecodeError:
                return i
    return 0


def id_type_of(arrow_type: pa.DataType) -> str:
    """``"int64"`` for integer columns, ``"string"`` for anything textual."""
    if pa.types.is_integer(arrow_type):
        return "int64"
    return "string"


def read_ids(batch: RowBatch, column: str, id_type: str) -> IdArray:
    """IDs of one column as int64 (``id_type="int64"``) or :class:`StringIds` (``"string"``).

    Raises:
        InputError: a null/empty ID, a non-integer in an int64 ID column, invalid UTF-8.
    """
    arr = _combine(batch.columns[column])
    if arr.null_count:
        raise batch.error(_first_null(arr), "missing ID", column)
    t = arr.type
    if id_type == "int64":
        if pa.types.is_integer(t):
            if pa.types.is_uint64(t) and len(arr) and pc.max(arr).as_py() >= 2**63:
                raise batch.error(int(np.argmax(np.asarray(arr) >= 2**63)), "integer ID does not fit in int64", column)
            return np.asarray(arr.cast(pa.int64()))
        if pa.types.is_string(t) or pa.types.is_large_string(t):
            try:
                return np.asarray(arr.cast(pa.int64()))
            except pa.ArrowInvalid:
                vals = arr.to_pylist()
                for i, v in enumerate(vals):
                    try:
                        int(v)
                    except ValueError:
                        raise batch.error(i, f"expected an integer ID, got {v!r} (use --id-type string for text IDs)", column) from None
                raise
        if pa.types.is_floating(t):
            vals = np.asarray(arr)
            bad = np.flatnonzero(~np.isfinite(vals) | (vals != np.round(vals)))
            if bad.size:
                raise batch.error(int(bad[0]), f"expected an integer ID, got {vals[bad[0]]!r}", column)
            return vals.astype(np.int64)
        raise batch.error(0, f"cannot use a column of type {t} as integer IDs", column)
    # string IDs
    if pa.types.is_binary(t) or pa.types.is_large_binary(t):
        try:
            arr = arr.cast(pa.large_string())
        except pa.ArrowInvalid:
            raise batch.error(_first_invalid_utf8(arr), "invalid UTF-8 bytes in ID (the file must be UTF-8 encoded)", column) from None
    elif pa.types.is_integer(t):
        arr = arr.cast(pa.large_string())
    elif not (pa.types.is_string(t) or pa.types.is_large_string(t)):
        raise batch.error(0, f"cannot use a column of type {t} as IDs", column)
    ids = string_ids_from_arrow(arr)
    empty = np.flatnonzero(np.diff(ids.offsets) == 0)
    if empty.size:
        raise batch.error(int(empty[0]), "empty ID", column)
    return ids


def read_time_column(batch: RowBatch, column: str) -> Tuple[np.ndarray, Optional[str]]:
    """A time column as int64 plus its unit (``"s"``, ``"ms"``, ``"us"``, ``"ns"``, ``"D"`` or None for plain integers).

    Accepts integers, integral floats, timestamps and dates. Nulls and fractional times are errors.
    """
    arr = _combine(batch.columns[column])
    if arr.null_count:
        raise batch.error(_first_null(arr), "missing time", column)
    t = arr.type
    if pa.types.is_timestamp(t):
        if t.tz is not None:
            arr = arr.cast(pa.timestamp(t.unit))
        return np.asarray(arr.cast(pa.int64())), t.unit
    if pa.types.is_date32(t):
        return np.asarray(arr.cast(pa.int32())).astype(np.int64), "D"
    if pa.types.is_date64(t):
        return np.asarray(arr.cast(pa.int64())) // 86_400_000, "D"
    if pa.types.is_integer(t):
        return np.asarray(arr.cast(pa.int64())), None
    if pa.types.is_floating(t):
        vals = np.asarray(arr)
        bad = np.flatnonzero(~np.isfinite(vals) | (vals != np.round(vals)))
        if bad.size:
            raise batch.error(int(bad[0]), f"time must be an integer or a timestamp, got {vals[bad[0]]!r}", column)
        return vals.astype(np.int64), None
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return np.asarray(_text_to_numbers(batch, arr, column, pa.int64())), None
    raise batch.error(0, f"time column has type {t}; expected integers, timestamps or dates", column)


def _text_to_numbers(batch: RowBatch, arr: pa.Array, column: str, target: pa.DataType) -> pa.Array:
    """Cast a text column to ``target``, or fail naming the first value that is not a number."""
    if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
        raise batch.error(0, f"expected numbers, found a column of type {arr.type}", column)
    try:
        return arr.cast(target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        kind = "an integer" if pa.types.is_integer(target) else "a number"
        for i, v in enumerate(arr.to_pylist()):
            if v is None:
                continue
            try:
                pa.array([v]).cast(target)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                raise batch.error(i, f"expected {kind}, got {v!r}", column) from None
        raise


def read_float_column(batch: RowBatch, column: str, allow_null: bool = False, non_negative: bool = False) -> np.ndarray:
    """A numeric column as float64. Nulls become NaN if ``allow_null``, else are errors."""
    arr = _combine(batch.columns[column])
    t = arr.type
    if not (pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t) or pa.types.is_null(t)):
        arr = _text_to_numbers(batch, arr, column, pa.float64())
    if arr.null_count and not allow_null:
        raise batch.error(_first_null(arr), "missing value", column)
    vals = np.asarray(arr.cast(pa.float64()).fill_null(np.nan) if arr.null_count else arr.cast(pa.float64()))
    vals = np.array(vals, dtype=np.float64, copy=True)
    if non_negative:
        bad = np.flatnonzero(np.isnan(vals) | (vals < 0) | ~np.isfinite(vals))
        if bad.size:
            raise batch.error(int(bad[0]), f"weights must be finite and >= 0, got {vals[bad[0]]!r}", column)
    return vals


def read_number_column(batch: RowBatch, column: str) -> np.ndarray:
    """An extra numeric column: int64 for integer/boolean columns, float64 (nulls -> NaN) for floats."""
    arr = _combine(batch.columns[column])
    t = arr.type
    if pa.types.is_integer(t) or pa.types.is_boolean(t):
        if arr.null_count:
            raise batch.error(_first_null(arr), "missing value in an integer column", column)
        return np.asarray(arr.cast(pa.int64()))
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        _text_to_numbers(batch, arr, column, pa.float64())  # names the first non-number
    return read_float_column(batch, column, allow_null=True)


def number_dtype_of(arrow_type: pa.DataType) -> str:
    """Storage dtype of an extra numeric column of this pyarrow type."""
    if pa.types.is_integer(arrow_type) or pa.types.is_boolean(arrow_type):
        return "int64"
    if pa.types.is_floating(arrow_type) or pa.types.is_null(arrow_type):
        return "float64"
    raise ConfigError(f"edge and node columns must be numeric; a column of type {arrow_type} cannot be stored")


def read_split_column(batch: RowBatch, column: str, codes: Dict[str, int]) -> np.ndarray:
    """A train/val/test column as int8 codes (``codes``), -1 for null or empty values."""
    arr = _combine(batch.columns[column])
    if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
        arr = arr.cast(pa.string())
    lowered = pc.utf8_lower(pc.utf8_trim_whitespace(arr))
    out = np.full(len(arr), -1, dtype=np.int8)
    valid = np.zeros(len(arr), dtype=bool)
    for name, code in codes.items():
        hit = np.asarray(pc.equal(lowered, name).fill_null(False))
        out[hit] = code
        valid |= hit
    empty = np.asarray(pc.or_(pc.is_null(lowered), pc.equal(lowered, "")).fill_null(True))
    bad = np.flatnonzero(~valid & ~empty)
    if bad.size:
        raise batch.error(int(bad[0]), f"split must be one of {', '.join(codes)} (or empty), got {arr[int(bad[0])].as_py()!r}", column)
    return out


_TRUE = {"true", "t", "yes", "y", "1"}
_FALSE = {"false", "f", "no", "n", "0"}


def read_label_column(batch: RowBatch, column: str) -> np.ndarray:
    """Class labels as int64; -1 = unknown (null, empty, NaN or -1).

    Integer, boolean and integral float columns are taken as class numbers; text columns may hold
    booleans (``true``/``false``, ``yes``/``no``, ``1``/``0``). Anything else is an error: graphtrain
    does not guess which text value is the positive class.
    """
    arr = _combine(batch.columns[column])
    t = arr.type
    if pa.types.is_boolean(t) or pa.types.is_integer(t):
        vals = np.asarray(arr.cast(pa.int64()).fill_null(-1))
    elif pa.types.is_floating(t):
        f = np.asarray(arr.cast(pa.float64()).fill_null(np.nan))
        bad = np.flatnonzero(~np.isnan(f) & (f != np.round(f)))
        if bad.size:
            raise batch.error(int(bad[0]), f"label must be a class number, got {f[bad[0]]!r}", column)
        vals = np.where(np.isnan(f), -1, f).astype(np.int64)
    elif pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_null(t):
        vals = np.full(len(arr), -1, dtype=np.int64)
        for i, v in enumerate(arr.to_pylist()):
            if v is None or not v.strip():
                continue
            key = v.strip().lower()
            if key in _TRUE:
                vals[i] = 1
            elif key in _FALSE:
                vals[i] = 0
            else:
                raise batch.error(i, f"label must be a class number or a boolean, got {v!r}", column)
    else:
        raise batch.error(0, f"label column has type {t}; expected class numbers or booleans", column)
    bad = np.flatnonzero(vals < -1)
    if bad.size:
        raise batch.error(int(bad[0]), f"label must be >= 0 (or -1 / empty for unknown), got {int(vals[bad[0]])}", column)
    return vals


def column_names(source: TableSource) -> List[str]:
    """Column names of the first file (positions ``"0"``, ``"1"``, ... for text files without a header)."""
    if source.table is not None:
        return list(source.table.column_names)
    path = source.paths[0]
    fmt = source.file_format(path)
    if fmt == "parquet":
        return list(_parquet_file(path).schema_arrow.names)
    return _csv_column_names(path, source, fmt)


def expand_columns(patterns: Sequence[str], available: Sequence[str], where) -> List[str]:
    """Expand shell-style patterns (``f_*``) against ``available``; plain names pass through unchanged."""
    import fnmatch

    out: List[str] = []
    for pat in patterns:
        if any(ch in pat for ch in "*?["):
            hits = [c for c in available if fnmatch.fnmatchcase(c, pat)]
            if not hits:
                raise InputError(where, f"no column matches {pat!r}")
            out.extend(h for h in hits if h not in out)
        elif pat not in out:
            out.append(pat)
    return out


def read_ahead(iterator, depth: int = 1):
    """Yield ``iterator``'s items while a background thread produces the next ``depth`` ones.

    pyarrow parses and decodes without the GIL, so reading the next batch overlaps with processing
    the current one. Exceptions from the producer are re-raised in the consumer, at the position
    where they happened.
    """
    import queue
    import threading

    q: "queue.Queue" = queue.Queue(maxsize=depth)
    done = object()
    stop = threading.Event()

    def produce():
        try:
            for item in iterator:
                if stop.is_set():
                    return
                q.put((item, None))
            q.put((done, None))
        except BaseException as exc:  # handed to the consumer
            q.put((done, exc))

    thread = threading.Thread(target=produce, name="graphtrain-read-ahead", daemon=True)
    thread.start()
    try:
        while True:
            item, exc = q.get()
            if item is done:
                if exc is not None:
                    raise exc
                return
            yield item
    finally:
        stop.set()
        while thread.is_alive():  # unblock a producer waiting on a full queue
            try:
                q.get_nowait()
            except queue.Empty:
                pass
            thread.join(timeout=0.05)
