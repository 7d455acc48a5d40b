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
from freqindex.commands.index import IndexConfig, PullConfig, run_info, run_pull, run_verify
from freqindex.commands.query import (
    CountConfig,
    DocsConfig,
    count_file_failures,
    run_count,
    run_count_file,
    run_docs,
)
from freqindex.commands.sql import SqlConfig, run_sql
from freqindex.config import load_config
from freqindex.errors import CheckFailedError

from .common import (
    CacheDir,
    IndexLocation,
    StorageOptions,
    app,
    err,
    fields_of,
    handle_errors,
    local_index,
    note,
    out,
    print_json,
)

Query = Annotated[
    str | None, typer.Argument(help="String to count; ' AND ' / ' OR ' make a CNF query.", show_default=False)
]
Unit = Annotated[str, typer.Option(help="occurrences (overlapping matches) or docs (distinct documents).")]
Literal = Annotated[bool, typer.Option("--literal", help="Count the query as written: no AND/OR parsing.")]
QueryFile = Annotated[
    str | None,
    typer.Option(
        "--file",
        help="One query per line; prints one JSON object per line (with its line number; a bad query "
        "gets an error object, the others are still counted, and the exit code is then 2).",
        show_default=False,
    ),
]
MaxDiffTokens = Annotated[
    int, typer.Option(help="AND queries (occurrences): the other clauses must start within this many tokens.")
]


@app.command("count")
@handle_errors
def count_cli(
    index_dir: IndexLocation,
    query: Query = None,
    unit: Unit = CountConfig.unit,
    literal: Literal = CountConfig.literal,
    file: QueryFile = None,
    max_diff_tokens: MaxDiffTokens = CountConfig.max_diff_tokens,
    json_out: Annotated[bool, typer.Option("--json", help="Print {query, count, unit, approx}.")] = False,
    cache_dir: CacheDir = None,
    storage_option: StorageOptions = None,
) -> None:
    """Count a string exactly, normalized and tokenized exactly as the index was.

    With the default 'simple' normalization, ' dog ' (spaces kept) counts the whole word, also at document
    edges, while 'dog' also counts inside 'hotdogs'.

    Example: freqindex count idx " golden retriever " --unit docs --json
    """
    index_dir = local_index(index_dir, cache_dir, storage_option)
    cfg = load_config(CountConfig, overrides=fields_of(CountConfig, locals()))
    if cfg.file is None:
        (res,) = run_count(cfg)
        if json_out:
            print_json(res.to_dict())
        else:
            approx = " (approximate)" if res.approx else ""
            out.print(f"{res.count:,} {res.unit} of {query!r}{approx}", highlight=False)
        return
    from freqindex.query.count import CountError

    bad, total = [], 0
    for line, res in run_count_file(cfg):
        total += 1
        if isinstance(res, CountError):
            bad.append(line)
        print_json({"line": line, **res.to_dict()})
    count_file_failures(bad, total)


@app.command("docs")
@handle_errors
def docs_cli(
    index_dir: IndexLocation,
    query: Annotated[str, typer.Argument(help="String to look up (' OR ' alternatives allowed).")],
    limit: Annotated[int, typer.Option(help="Documents to show (the first by doc_id).")] = DocsConfig.limit,
    literal: Annotated[
        bool, typer.Option("--literal", help="Look the query up as written: no OR parsing.")
    ] = DocsConfig.literal,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object per document.")] = False,
    cache_dir: CacheDir = None,
    storage_option: StorageOptions = None,
) -> None:
    """List documents that contain QUERY: doc_id, external id, source file and line, and a snippet.

    Example: freqindex docs idx " dog " --limit 5
    """
    index_dir = local_index(index_dir, cache_dir, storage_option)
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
    index_dir: IndexLocation,
    json_out: Annotated[bool, typer.Option("--json", help="Print the whole manifest as JSON.")] = False,
    storage_option: StorageOptions = None,
) -> None:
    """Show what an index holds: documents, tokens, shards, tokenizer, normalization, quarantine, tools."""
    overrides = dict(index_dir=index_dir, storage_options=storage_option)
    res = run_info(load_config(IndexConfig, overrides=overrides))
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
    index_dir: IndexLocation,
    json_out: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    storage_option: StorageOptions = None,
) -> None:
    """Check an index against its manifest: every file's size and sha256, and its eval outputs.

    The manifest's own checksum and consistency, every file against the sizes and sha256 sums in the
    manifest, and the eval outputs declared in evals/catalog.json (exit 1 naming the first problem).

    A URL is checked in place: the manifest, then each object's size and its sha256 streamed from the store.
    """
    try:
        overrides = dict(index_dir=index_dir, storage_options=storage_option)
        res = run_verify(load_config(IndexConfig, overrides=overrides))
    except CheckFailedError as exc:
        if json_out:
            print_json({"index": index_dir, "ok": False, "error": str(exc)})
            raise typer.Exit(1) from None
        raise
    if json_out:
        print_json(res)
    else:
        out.print(
            f"ok: {res['files_checked']} files, {res['bytes_checked']:,} bytes match the manifest; "
            f"{res['eval_outputs_checked']} eval outputs ({res['eval_files_checked']} files) match "
            "evals/catalog.json",
            highlight=False,
        )


@app.command("pull")
@handle_errors
def pull_cli(
    url: Annotated[
        str, typer.Argument(metavar="URL", help="Index URL (s3://bucket/idx, gs://, hdfs://, abfs://).")
    ],
    dest: Annotated[str, typer.Argument(metavar="DIR", help="Local directory to copy the index into.")],
    workers: Annotated[int, typer.Option(help="Files downloaded at once.")] = PullConfig.workers,
    storage_option: StorageOptions = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Copy an index from object storage into a local directory, every file checked against the manifest.

    Parallel and resumable: run it again after an interruption and files already verified are kept, a cut-off
    download continues. The manifest is written last, so DIR opens as an index only when complete.

    Example: freqindex pull s3://bucket/idx idx && freqindex count idx " dog "
    """
    overrides = dict(url=url, dest=dest, workers=workers, storage_options=storage_option)
    res = run_pull(load_config(PullConfig, overrides=overrides))
    if json_out:
        print_json(res)
    else:
        out.print(
            f"pulled {res['index']} into {res['dir']}: {res['files']} files ({res['downloaded']} downloaded, "
            f"{res['kept']} already there and verified), every one checked against the manifest",
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
    index_dir: IndexLocation,
    concepts: Vocabulary,
    source: Source = ConceptsConfig.source,
    exact: Annotated[
        bool, typer.Option("--exact", help="No singular/plural inflections.")
    ] = ConceptsConfig.exact,
    label_field: LabelField = None,
    out_file: OutTable = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object per concept.")] = False,
    cache_dir: CacheDir = None,
    storage_option: StorageOptions = None,
) -> None:
    """Occurrences and document frequency of every concept, from tags or straight from the suffix arrays.

    `--source suffix` pads each form to whole words, counts it exactly, and ORs the forms (document
    frequency deduplicated across forms): a new vocabulary needs no rebuild.

    Example: freqindex concepts idx --concepts classnames.json --source suffix --out freq.parquet
    """
    index_dir = local_index(index_dir, cache_dir, storage_option)
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
    index_dir: IndexLocation,
    query: SqlQuery = None,
    file: SqlFile = None,
    format: SqlFormat = SqlConfig.format,
    out_file: SqlOut = None,
    export: Export = None,
    max_rows: Annotated[int, typer.Option(help="Rows shown in table format.")] = settings.CLI_SQL_TABLE_ROWS,
    cache_dir: CacheDir = None,
    storage_option: StorageOptions = None,
) -> None:
    """Read-only SQL (DuckDB) over the index's tables: docs, quarantine, concept_*, neighbors, neighbor_max.

    The views are defined in sql/views.sql; canned analyses live in sql/*.sql. The connection can read
    nothing outside the index directory and runs SELECT statements only.

    Example: freqindex sql idx "SELECT source, count(*) FROM docs GROUP BY ALL" --format csv
    """
    index_dir = local_index(index_dir, cache_dir, storage_option)
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
