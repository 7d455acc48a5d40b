"""DuckDB over an index's Parquet tables: sandboxed read-only queries, and an exportable catalog file.

The connection can read only the index directory (``allowed_directories`` with external access disabled,
then the configuration is locked), and only SELECT-like statements run.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import duckdb

from freqindex.errors import BadInputError, UsageError
from freqindex.manifest import QUARANTINE_FILE
from freqindex.suffix.index import Index

_EMPTY_VOCAB = (
    "(SELECT NULL::BIGINT AS concept_id, NULL::VARCHAR AS concept, NULL::VARCHAR AS benchmark, "
    "NULL::VARCHAR[] AS forms WHERE false)"
)
_EMPTY_HITS = (
    "(SELECT NULL::BIGINT AS doc_id, NULL::BIGINT AS concept_id, NULL::BIGINT AS occurrences, "
    "NULL::BOOLEAN AS in_tags WHERE false)"
)
_EMPTY_NEIGHBORS = (
    "(SELECT NULL::VARCHAR AS eval, NULL::VARCHAR AS item_id, NULL::INTEGER AS rank, NULL::BIGINT AS doc_id, "
    "NULL::VARCHAR AS ext_id, NULL::INTEGER AS char_start, NULL::INTEGER AS char_end, "
    "NULL::FLOAT AS similarity, NULL::VARCHAR AS snippet, NULL::VARCHAR AS mode WHERE false)"
)
_EMPTY_CONTAMINATION = (
    "(SELECT NULL::VARCHAR AS eval, NULL::VARCHAR AS id, NULL::VARCHAR AS bucket, "
    "NULL::DOUBLE AS coverage, NULL::BIGINT AS longest_match_chars, NULL::BOOLEAN AS gpt3, "
    "NULL::BOOLEAN AS palm, NULL::BOOLEAN AS ig_mini, NULL::DOUBLE AS max_similarity, "
    "NULL::BIGINT AS evidence_doc_id WHERE false)"
)
_EMPTY_ANALYSIS = (
    "(SELECT NULL::VARCHAR AS eval, NULL::VARCHAR AS id, NULL::VARCHAR AS model, NULL::DOUBLE AS correct, "
    "NULL::VARCHAR[] AS concepts, NULL::VARCHAR AS primary_concept, NULL::DOUBLE AS frequency, "
    "NULL::DOUBLE AS log10_frequency, NULL::DOUBLE AS pruned_frequency, NULL::DOUBLE AS similarity, "
    "NULL::BIGINT AS similarity_doc_id, NULL::BIGINT AS longest_match_chars, "
    "NULL::DOUBLE AS longest_match_fraction WHERE false)"
)
_EMPTY_DISTANCE = (
    "(SELECT NULL::VARCHAR AS eval, NULL::VARCHAR AS id, NULL::BIGINT AS n_tokens, NULL::BIGINT AS scored_tokens, "
    "NULL::DOUBLE AS mean_surprisal, NULL::DOUBLE AS max_surprisal, NULL::DOUBLE AS zero_prob_share, "
    "NULL::DOUBLE AS mean_context, NULL::DOUBLE AS novel_5, NULL::DOUBLE AS novel_8, NULL::DOUBLE AS novel_13, "
    "NULL::BIGINT AS longest_match_tokens, NULL::BIGINT AS longest_match_chars WHERE false)"
)
_EMPTY_CONCEPT_ANALYSIS = (
    "(SELECT NULL::VARCHAR AS eval, NULL::VARCHAR AS model, NULL::VARCHAR AS benchmark, NULL::VARCHAR AS concept, "
    "NULL::VARCHAR AS concept_key, NULL::DOUBLE AS accuracy, NULL::DOUBLE AS count, NULL::DOUBLE AS log_count, "
    "NULL::DOUBLE AS log10_count, NULL::BIGINT AS bin, NULL::DOUBLE AS pruned_count, NULL::BIGINT AS pruned_bin, "
    "NULL::VARCHAR AS verdict WHERE false)"
)
_ALLOWED = {duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN}


def _sql_literal_path(p: Path) -> str:
    return str(p).replace("'", "''")


def _parquet(paths: list[Path], empty: str) -> str:
    """A ``read_parquet`` over exactly these files, or the empty typed table when there are none."""
    if not paths:
        return empty
    return "read_parquet([" + ", ".join(f"'{_sql_literal_path(p)}'" for p in paths) + "])"


def view_statements(index: str | Path | Index) -> list[str]:
    """The statements of sql/views.sql, filled in for this index: every view reads the files the manifest
    lists (docs, quarantine, concept tables) or that ``evals/catalog.json`` declares (eval outputs), by
    absolute path; a table the index does not have is an empty typed table."""
    idx = index if isinstance(index, Index) else Index.open(index)
    text = resources.files("sql").joinpath("views.sql").read_text(encoding="utf-8")
    vocab, hits = idx.concept_files() if idx.manifest.get("concepts") else (None, [])
    fill = {
        "{docs}": _parquet(idx.files_under("docs"), ""),
        "{quarantine}": _parquet(idx.files_under("quarantine") or [idx.file(QUARANTINE_FILE)], ""),
        "{concept_vocab}": _parquet([vocab] if vocab else [], _EMPTY_VOCAB),
        "{concept_hits}": _parquet(hits, _EMPTY_HITS),
        "{neighbors}": _parquet(idx.eval_tables("neighbors"), _EMPTY_NEIGHBORS),
        "{contamination}": _parquet(idx.eval_tables("contamination"), _EMPTY_CONTAMINATION),
        "{analysis}": _parquet(idx.eval_tables("analysis"), _EMPTY_ANALYSIS),
        "{concept_analysis}": _parquet(idx.eval_tables("concept_analysis"), _EMPTY_CONCEPT_ANALYSIS),
        "{distance}": _parquet(idx.eval_tables("distance"), _EMPTY_DISTANCE),
    }
    for key, value in fill.items():
        text = text.replace(key, value)
    body = "\n".join(ln for ln in text.splitlines() if not ln.strip().startswith("--"))
    return [s.strip() for s in body.split(";") if s.strip()]


def open_catalog(index_dir: str | Path | Index) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with the index's views that can read nothing outside the index."""
    idx = index_dir if isinstance(index_dir, Index) else Index.open(index_dir)
    root = idx.path
    stmts = view_statements(idx)
    con = duckdb.connect(":memory:")
    con.execute(f"SET allowed_directories=['{_sql_literal_path(root)}/']")
    con.execute("SET enable_external_access=false")
    con.execute("SET autoinstall_known_extensions=false")
    con.execute("SET autoload_known_extensions=false")
    for s in stmts:
        try:
            con.execute(s)
        except duckdb.IOException as exc:  # a table's files are missing: the index is damaged, not the query
            first = str(exc).strip().splitlines()[0].removeprefix("IO Error: ")
            raise BadInputError(
                f"{root} is damaged: {first} (`freqindex verify` names every bad file)"
            ) from None
    con.execute("SET lock_configuration=true")
    return con


def run_query(index_dir: str | Path | Index, sql: str, max_rows: int | None = None, on_open=None):
    """Run one read-only statement; returns a pyarrow Table (at most ``max_rows + 1`` rows when given, so a
    caller can tell it was cut). ``on_open(con)`` receives the connection (the server keeps it to interrupt
    a query past its time limit). DuckDB's message becomes a UsageError."""
    con = open_catalog(index_dir)
    if on_open is not None:
        on_open(con)
    try:
        stmts = con.extract_statements(sql)
    except duckdb.Error as exc:
        raise UsageError(_one_line(exc)) from None
    if len(stmts) != 1:
        raise UsageError(f"expected exactly one SQL statement, got {len(stmts)}")
    if stmts[0].type not in _ALLOWED:
        raise UsageError(f"only SELECT queries are allowed (got {stmts[0].type.name})")
    try:
        rel = con.sql(sql)
        if max_rows is not None and stmts[0].type == duckdb.StatementType.SELECT:
            rel = rel.limit(max_rows + 1)
        return rel.to_arrow_table()
    except duckdb.Error as exc:
        raise UsageError(_one_line(exc)) from None
    finally:
        con.close()


def export_catalog(index_dir: str | Path | Index, out: str | Path) -> Path:
    """Write a DuckDB database file holding the views (over the index's Parquet files by absolute path; the
    eval outputs declared when it is written)."""
    out = Path(out).resolve()
    if out.exists():
        raise UsageError(f"{out} already exists")
    stmts = view_statements(index_dir)
    tmp = out.with_name(out.name + ".tmp")
    tmp.unlink(missing_ok=True)
    con = duckdb.connect(str(tmp))
    try:
        for s in stmts:
            con.execute(s)
    finally:
        con.close()
    tmp.replace(out)
    return out


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())
