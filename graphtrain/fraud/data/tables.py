"""Reading and writing the fraud pipelines' tabular files (Parquet or CSV, by file name).

The format follows the name: ``.parquet`` / ``.pq`` is Parquet; ``.csv``, ``.tsv``, ``.txt`` and
their ``.gz`` forms are delimited text (tab for ``.tsv``). Readers check that the requested
columns exist and raise :class:`~graphtrain.errors.InputError` naming the file and column.
"""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional, Sequence

from graphtrain.errors import ConfigError, InputError

PARQUET_SUFFIXES = (".parquet", ".pq")
TEXT_SUFFIXES = (".csv", ".tsv", ".txt")


def file_kind(path) -> str:
    """``"parquet"`` or ``"csv"`` (delimited text, maybe gzip) from the file name."""
    name = Path(path).name.lower()
    if name.endswith(".gz"):
        name = name[:-3]
    if name.endswith(PARQUET_SUFFIXES):
        return "parquet"
    if name.endswith(TEXT_SUFFIXES):
        return "csv"
    raise ConfigError(f"{path}: cannot tell the file format from its name; use .parquet, .csv, .tsv (optionally .gz)")


def _delimiter(path) -> str:
    name = Path(path).name.lower()
    return "\t" if name.endswith((".tsv", ".tsv.gz")) else ","


def read_table(path, columns: Optional[Sequence[str]] = None):
    """Read a whole Parquet/CSV file into a pyarrow Table, keeping only ``columns`` (all when None).

    Raises:
        InputError: the file is missing or unreadable, or a requested column is absent.
    """
    import pyarrow as pa
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    path = Path(path)
    if not path.is_file():
        raise InputError(path, "no such file")
    kind = file_kind(path)
    try:
        if kind == "parquet":
            names = pq.read_schema(path).names
        else:
            opts = pcsv.ParseOptions(delimiter=_delimiter(path))
            names = None
    except (pa.ArrowException, OSError) as exc:
        raise InputError(path, f"cannot read ({exc})") from None
    try:
        if kind == "parquet":
            _check_columns(path, names, columns)
            table = pq.read_table(path, columns=list(columns) if columns is not None else None)
        else:
            table = pcsv.read_csv(path, parse_options=opts)
            _check_columns(path, table.column_names, columns)
            if columns is not None:
                table = table.select(list(columns))
    except pa.ArrowInvalid as exc:
        raise InputError(path, f"malformed file ({exc})") from None
    except (pa.ArrowException, OSError) as exc:
        raise InputError(path, f"cannot read ({exc})") from None
    return table


def read_columns(path) -> List[str]:
    """The column names of a Parquet/CSV file, from its schema or its first block only (cheap at any size).

    Raises:
        InputError: the file is missing or unreadable.
    """
    import pyarrow as pa
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    path = Path(path)
    if not path.is_file():
        raise InputError(path, "no such file")
    try:
        if file_kind(path) == "parquet":
            return list(pq.read_schema(path).names)
        reader = pcsv.open_csv(path, parse_options=pcsv.ParseOptions(delimiter=_delimiter(path)))
        names = list(reader.schema.names)
        reader.close()
        return names
    except pa.ArrowInvalid as exc:
        raise InputError(path, f"malformed file ({exc})") from None
    except (pa.ArrowException, OSError) as exc:
        raise InputError(path, f"cannot read ({exc})") from None


def check_columns(path, columns: Sequence[Optional[str]]) -> List[str]:
    """Check from the header alone that ``path`` has every column of ``columns`` (None entries skipped).

    Returns the file's column names. Raises :class:`InputError` naming the file and the first missing column.
    """
    names = read_columns(path)
    _check_columns(path, names, [c for c in columns if c])
    return names


def _check_columns(path, names, columns) -> None:
    for col in columns or ():
        if col not in names:
            raise InputError(path, f"no column {col!r} (columns are {', '.join(map(repr, names))})", column=col)


class TableWriter:
    """Append pyarrow tables with a fixed schema to one Parquet (one row group per write) or CSV file."""

    def __init__(self, path, schema):
        import pyarrow.csv as pcsv
        import pyarrow.parquet as pq

        self.path = Path(path)
        self.kind = file_kind(self.path)
        self.schema = schema
        self.rows = 0
        if self.kind == "parquet":
            self._writer = pq.ParquetWriter(self.path, schema)
        else:
            options = pcsv.WriteOptions(quoting_style="needed", delimiter=_delimiter(self.path))
            self._writer = pcsv.CSVWriter(self.path, schema, write_options=options)

    def write(self, table) -> None:
        table = table.select(self.schema.names).cast(self.schema)
        if self.kind == "parquet":
            self._writer.write_table(table, row_group_size=max(table.num_rows, 1))
        else:
            self._writer.write_table(table)
        self.rows += table.num_rows

    def close(self) -> None:
        self._writer.close()

    def __enter__(self) -> "TableWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def write_table(path, table) -> None:
    """Write a whole pyarrow table (Parquet or CSV by name)."""
    with TableWriter(path, table.schema) as writer:
        writer.write(table)
