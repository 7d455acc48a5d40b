"""`sql`: read-only DuckDB SQL over the index's tables, or an exported catalog."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from freqindex import settings
from freqindex.errors import UsageError
from freqindex.fsutil import read_text
from freqindex.report.tables import write_table

FORMATS = ("table", "csv", "json", "parquet")


@dataclass(frozen=True)
class SqlConfig:
    """One SELECT, as ``query`` or in a ``file``. ``limit``: at most this many rows come back (None: all;
    the server always sets one). ``max_rows``: rows the CLI shows in table format. ``export``: write a
    DuckDB database holding the views instead of querying."""

    index_dir: str = ""
    query: str | None = None
    file: str | None = None
    format: str = "table"
    out_file: str | None = None
    export: str | None = None
    max_rows: int = settings.CLI_SQL_TABLE_ROWS
    limit: int | None = None

    def validate(self) -> SqlConfig:
        if self.export:
            return self
        if (self.query is None) == (self.file is None):
            raise UsageError("give either a QUERY or --file")
        if self.format not in FORMATS:
            raise UsageError("--format must be table, csv, json or parquet")
        if self.format == "parquet" and not self.out_file:
            raise UsageError("--format parquet needs --out FILE")
        if self.limit is not None and not 1 <= self.limit <= settings.MAX_SQL_ROWS:
            raise UsageError(f"max_rows must be between 1 and {settings.MAX_SQL_ROWS}")
        return self


@dataclass(frozen=True)
class SqlOutcome:
    table: object | None  # pyarrow Table (None after an export)
    truncated: bool  # more rows than ``limit`` existed
    written: str | None  # out_file
    exported: str | None  # the catalog file


def run_sql(cfg: SqlConfig, *, on_open: Callable | None = None) -> SqlOutcome:
    """Run the statement in the sandboxed catalog (``on_open(con)`` receives the DuckDB connection, so a
    caller can interrupt it), write ``out_file`` when given; or export the catalog."""
    from freqindex.sqlcat import export_catalog, run_query

    if cfg.export:
        return SqlOutcome(None, False, None, str(export_catalog(cfg.index_dir, cfg.export)))
    query = cfg.query
    if cfg.file is not None:
        try:
            query = read_text(cfg.file)
        except OSError as exc:
            raise UsageError(f"cannot read {cfg.file}: {exc.strerror}") from None
    table = run_query(cfg.index_dir, query, cfg.limit, on_open=on_open)
    truncated = cfg.limit is not None and table.num_rows > cfg.limit
    if truncated:
        table = table.slice(0, cfg.limit)
    if cfg.out_file:
        fmt = None if cfg.format == "table" else ("jsonl" if cfg.format == "json" else cfg.format)
        write_table(table, cfg.out_file, fmt)
    return SqlOutcome(table, truncated, cfg.out_file, None)
