"""Tables written to files: the format follows the extension (or is given), one writer for every command."""

from __future__ import annotations

import json
from pathlib import Path

from freqindex.errors import UsageError

FORMATS = ("parquet", "csv", "jsonl", "json")


def write_table(table, path: str | Path, fmt: str | None = None) -> Path:
    """Write a pyarrow Table as Parquet, CSV or JSON lines (``json`` is JSON lines too), by ``fmt`` or else
    by the file's extension; another extension is a UsageError. Returns the path."""
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    path = Path(path)
    fmt = fmt or path.suffix.lstrip(".").lower()
    if fmt == "parquet":
        pq.write_table(table, str(path))
    elif fmt == "csv":
        pcsv.write_csv(table, str(path))
    elif fmt in ("jsonl", "json"):
        with open(path, "w", encoding="utf-8") as f:
            for r in table.to_pylist():
                f.write(json.dumps(r, ensure_ascii=False, default=str) + "\n")
    else:
        raise UsageError(f"cannot write {path}: use .parquet, .csv or .jsonl")
    return path


def rows_table(rows: list[dict], schema=None):
    """A list of dicts as a pyarrow Table (with an optional schema)."""
    import pyarrow as pa

    return pa.Table.from_pylist(rows, schema=schema)


def write_rows(rows: list[dict], path: str | Path, schema=None) -> Path:
    """:func:`write_table` for a list of dicts (with an optional pyarrow schema)."""
    return write_table(rows_table(rows, schema), path)
