"""Commands that read an index: `count`, `docs`, `info`, `verify`, `concepts`, `sql`."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from freqindex import settings
from freqindex.commands.concepts import ConceptsConfig, run_concepts
from freqindex.commands.index import IndexConfig, run_info, run_verify
from freqindex.commands.query import CountConfig, DocsConfig, run_count, run_docs
from freqindex.commands.sql import SqlConfig, run_sql
from freqindex.config import load_config
from freqindex.errors import CheckFailedError

from .common import IndexDir, app, err, fields_of, handle_errors, note, out, print_json

Query = Annotated[
    str | None, typer.Argument(help="String to count; ' AND ' / ' OR ' make a CNF query.", show_default=False)
]
Unit = Annotated[str, typer.Option(help="occurrences (overlapping matches) or docs (distinct documents).")]
Literal = Annotated[bool, typer.Option("--literal", help="Count the query as written: no AND/OR parsing.")]
QueryFile = Annotated[
    str | None,
    typer.Option("--file", help="One query per line; prints one JSON object per line.", show_default=False),
]
MaxClauseFreq = Annotated[int, typer.Option(help="AND queries: subsample clauses above this count.")]
MaxDiffTokens = Annotated[int, typer.Option(help="AND queries: clauses must fall within this many tokens.")]


@app.command("count")
@handle_errors
def count_cli(
    index_dir: IndexDir,
    query: Query = None,
    unit: Unit = CountConfig.unit,
    literal: Literal = CountConfig.literal,
    file: QueryFile = None,
    max_clause_freq: MaxClauseFreq = CountConfig.max_clause_freq,
    max_diff_tokens: MaxDiffTokens = CountConfig.max_diff_tokens,
    json_out: Annotated[bool, typer.Option("--json", help="Print {query, count, unit, approx}.")] = False,
) -> None:
    """Count a string exactly, normalized and tokenized exactly as the index was.

    With the default 'simple' normalization, ' dog ' (spaces kept) counts the whole word, also at document
    edges, while 'dog' also counts inside 'hotdogs'.

    Example: freqindex count idx " golden retriever " --unit docs --json
    """
    queries = (query,) if query is not None else ()
    cfg = load_config(CountConfig, overrides=fields_of(CountConfig, locals()))
    for res in run_count(cfg):
        if json_out or cfg.file is not None:
            print_json(res.to_dict())
        else:
            approx = " (approximate)" if res.approx else ""
            out.print(f"{res.count:,} {res.unit} of {res.query!r}{approx}", highlight=False)


@app.command("docs")
@handle_errors
def docs_cli(
    index_dir: IndexDir,
    query: Annotated[str, typer.Argument(help="String to look up (' OR ' alternatives allowed).")],
    limit: Annotated[int, typer.Option(help="Documents to show (the first by doc_id).")] = DocsConfig.limit,
    literal: Annotated[
        bool, typer.Option("--literal", help="Look the query up as written: no OR parsing.")
    ] = DocsConfig.literal,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object per document.")] = False,
) -> None:
    """List documents that contain QUERY: doc_id, external id, source file and line, and a snippet.

    Example: freqindex docs idx " dog " --limit 5
    """
    res = run_docs(load_config(DocsConfig, overrides=fields_of(DocsConfig, locals())))
    if json_out:
        for h in res.hits:
            print_json(h.to_dict())
        return
    out.print(f"{res.total_docs:,} document(s) contain {query!r}; showing {len(res.hits)}", highlight=False)
    t = Table("doc_id", "id", "source:line", "n", "snippet", show_lines=False)
    for h in res.hits:
        t.add_row(
            str(h.doc_id), h.ext_id or "", f"{Path(h.source).name}:{h.line}", str(h.occurrences), h.snippet
        )
    out.print(t)


@app.command("info")
@handle_errors
def info_cli(
    index_dir: IndexDir,
    json_out: Annotated[bool, typer.Option("--json", help="Print the whole manifest as JSON.")] = False,
) -> None:
    """Show what an index holds: documents, tokens, shards, tokenizer, normalization, quarantine, tools."""
    res = run_info(load_config(IndexConfig, overrides=dict(index_dir=index_dir)))
    if json_out:
        print_json(res.manifest)
        return
    t = Table(show_header=False, box=None)
    for k, v in res.rows:
        t.add_row(k, v)
    out.print(t)


@app.command("verify")
@handle_errors
def verify_cli(
    index_dir: IndexDir,
    json_out: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Check every file of an index against the sizes and sha256 sums in its manifest (exit 1 on mismatch)."""
    try:
        res = run_verify(load_config(IndexConfig, overrides=dict(index_dir=index_dir)))
    except CheckFailedError as exc:
        if json_out:
            print_json({"index": index_dir, "ok": False, "error": str(exc)})
            raise typer.Exit(1) from None
        raise
    if json_out:
        print_json(res)
    else:
        out.print(
            f"ok: {res['files_checked']} files, {res['bytes_checked']:,} bytes match the manifest",
            highlight=False,
        )


Vocabulary = Annotated[str, typer.Option("--concepts", help="Vocabulary file (see `freqindex tag --help`).")]
Source = Annotated[
    str, typer.Option(help="auto (tags when the index has them for this vocabulary) | tags | suffix.")
]
LabelField = Annotated[
    str | None,
    typer.Option(help="Take the concepts from this label field of an eval set.", show_default=False),
]
OutTable = Annotated[
    str | None, typer.Option("--out", help="Write the table (.parquet, .csv or .jsonl).", show_default=False)
]


@app.command("concepts")
@handle_errors
def concepts_cli(
    index_dir: IndexDir,
    concepts: Vocabulary,
    source: Source = ConceptsConfig.source,
    exact: Annotated[
        bool, typer.Option("--exact", help="No singular/plural inflections.")
    ] = ConceptsConfig.exact,
    label_field: LabelField = None,
    out_file: OutTable = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object per concept.")] = False,
) -> None:
    """Occurrences and document frequency of every concept, from tags or straight from the suffix arrays.

    `--source suffix` pads each form to whole words, counts it exactly, and ORs the forms (document
    frequency deduplicated across forms): a new vocabulary needs no rebuild.

    Example: freqindex concepts idx --concepts classnames.json --source suffix --out freq.parquet
    """
    cfg = load_config(ConceptsConfig, overrides=fields_of(ConceptsConfig, locals()))
    res = run_concepts(cfg)
    for w in res.warnings:
        err.print(f"[yellow]warning:[/] {w}", highlight=False)
    if res.written:
        note(f"wrote {len(res.rows):,} concepts ({res.source}) to {res.written}")
    if json_out:
        for r in res.rows:
            print_json({**r, "source": res.source})
    elif not res.written:
        t = Table("benchmark", "concept", "occurrences", "doc_frequency", title=f"source: {res.source}")
        for r in res.rows:
            t.add_row(r["benchmark"] or "", r["concept"], f"{r['occurrences']:,}", f"{r['doc_frequency']:,}")
        out.print(t)


SqlQuery = Annotated[str | None, typer.Argument(help="One SELECT statement.", show_default=False)]
SqlFile = Annotated[
    str | None,
    typer.Option(
        "--file", help="Read the query from a .sql file (e.g. sql/top_concepts.sql).", show_default=False
    ),
]
SqlFormat = Annotated[
    str, typer.Option("--format", help="table | csv | json | parquet (parquet needs --out).")
]
SqlOut = Annotated[str | None, typer.Option("--out", help="Write the result to a file.", show_default=False)]
Export = Annotated[
    str | None,
    typer.Option(
        "--export", help="Write a DuckDB database file holding the views, then exit.", show_default=False
    ),
]


@app.command("sql")
@handle_errors
def sql_cli(
    index_dir: IndexDir,
    query: SqlQuery = None,
    file: SqlFile = None,
    format: SqlFormat = SqlConfig.format,
    out_file: SqlOut = None,
    export: Export = None,
    max_rows: Annotated[int, typer.Option(help="Rows shown in table format.")] = settings.CLI_SQL_TABLE_ROWS,
) -> None:
    """Read-only SQL (DuckDB) over the index's tables: docs, quarantine, concept_*, neighbors, neighbor_max.

    The views are defined in sql/views.sql; canned analyses live in sql/*.sql. The connection can read
    nothing outside the index directory and runs SELECT statements only.

    Example: freqindex sql idx "SELECT source, count(*) FROM docs GROUP BY ALL" --format csv
    """
    cfg = load_config(SqlConfig, overrides=fields_of(SqlConfig, locals()))
    res = run_sql(cfg)
    if res.exported:
        note(f"wrote {res.exported}: open it with `duckdb {res.exported}` and query the views")
    elif res.written:
        note(f"wrote {res.table.num_rows:,} rows to {res.written}")
    else:
        _print_sql(res.table, cfg)


def _print_sql(table, cfg: SqlConfig) -> None:
    if cfg.format == "csv":
        import pyarrow.csv as pcsv

        buf = io.BytesIO()
        pcsv.write_csv(table, buf)
        sys.stdout.write(buf.getvalue().decode())
    elif cfg.format == "json":
        for r in table.to_pylist():
            sys.stdout.write(json.dumps(r, ensure_ascii=False, default=str) + "\n")
    else:
        t = Table(*table.column_names)
        for r in table.slice(0, cfg.max_rows).to_pylist():
            t.add_row(*["" if v is None else str(v) for v in r.values()])
        out.print(t)
        if table.num_rows > cfg.max_rows:
            note(f"({table.num_rows - cfg.max_rows:,} more rows; use --format csv or --out)")
