"""DuckDB over an index's Parquet tables: sandboxed read-only queries, and an exportable catalog file.

The connection can read only the index directory (``allowed_directories`` with external access disabled,
then the configuration is locked), and only SELECT-like statements run.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import duckdb

from freqindex.errors import UsageError
from freqindex.manifest import read_manifest

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
_ALLOWED = {duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN}


def _sql_literal_path(p: Path) -> str:
    return str(p).replace("'", "''")


def view_statements(index_dir: str | Path) -> list[str]:
    """The statements of sql/views.sql, filled in for this index (absolute paths)."""
    root = Path(index_dir).resolve()
    m = read_manifest(root)
    text = resources.files("sql").joinpath("views.sql").read_text(encoding="utf-8")
    idx = _sql_literal_path(root)
    tagged = "concepts" in m and (root / "concepts" / "vocab.parquet").is_file()
    vocab = f"read_parquet('{idx}/concepts/vocab.parquet')" if tagged else _EMPTY_VOCAB
    hits = f"read_parquet('{idx}/concepts/hits/*.parquet')" if tagged else _EMPTY_HITS
    has_neighbors = any((root / "evals").glob("*/neighbors.parquet")) if (root / "evals").is_dir() else False
    nb = f"read_parquet('{idx}/evals/*/neighbors.parquet')" if has_neighbors else _EMPTY_NEIGHBORS
    has_cont = any((root / "evals").glob("*/contamination.parquet")) if (root / "evals").is_dir() else False
    cont = f"read_parquet('{idx}/evals/*/contamination.parquet')" if has_cont else _EMPTY_CONTAMINATION
    has_an = any((root / "evals").glob("*/analysis.parquet")) if (root / "evals").is_dir() else False
    an = f"read_parquet('{idx}/evals/*/analysis.parquet')" if has_an else _EMPTY_ANALYSIS
    text = (
        text.replace("{index}", idx)
        .replace("{concept_vocab}", vocab)
        .replace("{concept_hits}", hits)
        .replace("{neighbors}", nb)
        .replace("{contamination}", cont)
        .replace("{analysis}", an)
    )
    body = "\n".join(ln for ln in text.splitlines() if not ln.strip().startswith("--"))
    return [s.strip() for s in body.split(";") if s.strip()]


def open_catalog(index_dir: str | Path) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with the index's views that can read nothing outside the index."""
    root = Path(index_dir).resolve()
    stmts = view_statements(root)
    con = duckdb.connect(":memory:")
    con.execute(f"SET allowed_directories=['{_sql_literal_path(root)}/']")
    con.execute("SET enable_external_access=false")
    con.execute("SET autoinstall_known_extensions=false")
    con.execute("SET autoload_known_extensions=false")
    for s in stmts:
        con.execute(s)
    con.execute("SET lock_configuration=true")
    return con


def run_query(index_dir: str | Path, sql: str, max_rows: int | None = None, on_open=None):
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


def export_catalog(index_dir: str | Path, out: str | Path) -> Path:
    """Write a DuckDB database file holding the views (over the index's Parquet files by absolute path)."""
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
