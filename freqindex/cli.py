"""The `freqindex` command line: thin wrappers that parse, call one library function, and print.

Exit codes everywhere: 0 ok, 1 a check or gate failed, 2 bad usage or bad input, 3 a build failed.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from freqindex import __version__, settings
from freqindex.errors import FreqindexError, UsageError

app = typer.Typer(
    name="freqindex",
    help="Pretraining-corpus frequency index: build infini-gram suffix arrays with Spark, then count any "
    "string exactly, list the documents that hold it, and check the index.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


def _handle_errors(fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except FreqindexError as exc:
            err.print(f"[bold red]error:[/] {exc}", highlight=False, markup=True)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            err.print("interrupted")
            raise typer.Exit(130) from None
        except (typer.Exit, typer.Abort):
            raise
        except Exception as exc:  # a bug, not a user error: one line unless asked for the traceback
            if os.environ.get("FREQINDEX_DEBUG"):
                raise
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            err.print(
                f"[bold red]internal error:[/] {type(exc).__name__}: {first} "
                "(run with FREQINDEX_DEBUG=1 for the traceback)",
                highlight=False,
            )
            raise typer.Exit(3) from None

    return wrapper


def _print_json(obj) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def _version_callback(value: bool):
    if value:
        out.print(f"freqindex {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version_callback, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
):
    pass


@app.command("build")
@_handle_errors
def build_cli(
    ctx: typer.Context,
    inputs: Annotated[
        list[str] | None,
        typer.Argument(
            help="Files, directories or globs: .jsonl[.gz|.zst], .parquet, .txt, .tsv (id<TAB>text).",
            show_default=False,
        ),
    ] = None,
    output: Annotated[str | None, typer.Option("--output", "-o", help="Index directory to create.")] = None,
    format: Annotated[str, typer.Option("--format", help="auto | jsonl | parquet | text | tsv.")] = "auto",
    text_field: Annotated[
        str, typer.Option(help="JSON/Parquet field holding the text.")
    ] = settings.DEFAULT_TEXT_FIELD,
    id_field: Annotated[
        str | None,
        typer.Option(
            help="Field holding an external id \\[default: 'id' when present; else file and line identify a document]."
        ),
    ] = None,
    text_per_line: Annotated[
        bool,
        typer.Option(
            "--text-per-line",
            help=".txt inputs: one document per line (blank lines separate) instead of one per file.",
        ),
    ] = False,
    tags_field: Annotated[
        str | None,
        typer.Option(
            help="Image-caption corpora: a list-of-strings field of image tags, kept for concept tagging.",
            show_default=False,
        ),
    ] = None,
    tokenizer: Annotated[
        str,
        typer.Option(
            help="'bytes' (UTF-8 bytes, u8) or a Hugging Face tokenizer: local tokenizer.json / directory, or hub name."
        ),
    ] = "bytes",
    normalize: Annotated[
        str | None,
        typer.Option(
            help="simple | none \\[default: simple with bytes, none with a Hugging Face tokenizer].",
            show_default=False,
        ),
    ] = None,
    shards: Annotated[
        int | None,
        typer.Option(
            help="Number of shards \\[default: as many as --shard-size asks for].", show_default=False
        ),
    ] = None,
    shard_size: Annotated[
        str | None,
        typer.Option(
            "--shard-size",
            help="Target shard size in token bytes, e.g. 2GB, 512MiB; shards = ceil(tokens / size), whatever "
            "the cluster \\[default: 2GB: as large as one task sorts with libdivsufsort's 32-bit entries].",
            show_default=False,
        ),
    ] = None,
    strict: Annotated[
        bool,
        typer.Option("--strict", help="Stop at the first bad record (exit 2) instead of quarantining it."),
    ] = False,
    master: Annotated[
        str, typer.Option(help="Spark master: local[*], local[N], spark://HOST:PORT, yarn, k8s://...")
    ] = settings.DEFAULT_MASTER,
    conf: Annotated[
        list[str] | None,
        typer.Option("--conf", help="Extra Spark setting KEY=VALUE (repeatable).", show_default=False),
    ] = None,
    config: Annotated[
        str | None,
        typer.Option(
            help="TOML file with a \\[build] table; flags given on the command line win.", show_default=False
        ),
    ] = None,
    chunk_mb: Annotated[
        int | None,
        typer.Option(help="Split uncompressed line files into chunks of this many MiB.", show_default=False),
    ] = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace an existing index of other input/settings.")
    ] = False,
    concepts: Annotated[
        str | None,
        typer.Option(
            "--concepts",
            help="Also tag the index with this concept vocabulary (see `freqindex tag`).",
            show_default=False,
        ),
    ] = None,
    embed: Annotated[
        bool,
        typer.Option("--embed", help="Also embed the index with the default model (see `freqindex embed`)."),
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the resolved configuration and exit.")
    ] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print a machine-readable build summary.")] = False,
):
    """Index a corpus: Spark reads, validates and tokenizes it, then builds infini-gram suffix arrays.

    Malformed records are quarantined (file, line, reason) and counted; the build goes on. The index is
    written to a temporary directory and renamed into place when complete, so a killed build never leaves
    an index that looks complete: run the same command again and it resumes.

    Example: freqindex build corpus/ --output idx --format jsonl --shards 2
    """
    from freqindex.config import BuildConfig, load_toml

    table = load_toml(config) if config else {}

    def pick(name, value):
        src = ctx.get_parameter_source(name)
        if table and name in table and (src is None or src.name == "DEFAULT"):
            return table[name]
        return value

    conf_pairs = []
    for c in conf or []:
        k, sep, v = c.partition("=")
        if not sep or not k:
            raise UsageError(f"--conf expects KEY=VALUE, got {c!r}")
        conf_pairs.append((k.strip(), v.strip()))
    cfg_inputs = tuple(inputs or table.get("inputs", ()))
    cfg_output = output or table.get("output")
    if not cfg_inputs:
        raise UsageError("give at least one INPUT (file, directory or glob)")
    if not cfg_output:
        raise UsageError("--output DIR is required")
    cfg = BuildConfig(
        inputs=cfg_inputs,
        output=cfg_output,
        format=pick("format", format),
        text_field=pick("text_field", text_field),
        id_field=pick("id_field", id_field),
        text_per_line=pick("text_per_line", text_per_line),
        tags_field=pick("tags_field", tags_field),
        tokenizer=pick("tokenizer", tokenizer),
        normalize=pick("normalize", normalize),
        shards=pick("shards", shards),
        shard_size=pick("shard_size", shard_size),
        strict=pick("strict", strict),
        master=pick("master", master),
        chunk_bytes=(chunk_mb * 1024 * 1024) if chunk_mb else table.get("chunk_bytes", settings.CHUNK_BYTES),
        spark_conf=tuple(conf_pairs) or tuple(table.get("spark_conf", {}).items()),
    ).validate()
    if dry_run:
        _print_json(cfg.to_dict())
        return
    from jobs.build_index import run_build

    progress, on_progress = _progress(enabled=not json_out)

    def on_message(m: str) -> None:
        if not json_out:
            err.print(m, highlight=False)

    if not json_out:
        err.print(
            f"building {cfg.output} from {len(cfg.inputs)} input(s) on {cfg.master} "
            f"(tokenizer {cfg.tokenizer}, normalization {cfg.normalization})",
            highlight=False,
        )
    with progress:
        summary = run_build(
            cfg,
            overwrite=overwrite,
            on_progress=on_progress,
            on_message=on_message,
            keep_spark=concepts is not None or embed,
        )
        if concepts is not None:
            from jobs.tag_concepts import run_tag

            summary["concepts"] = run_tag(
                summary["output"], concepts, master=cfg.master, on_progress=on_progress, keep_spark=embed
            )
        if embed:
            from jobs.embed_index import run_embed

            summary["vectors"] = run_embed(summary["output"], master=cfg.master, on_progress=on_progress)
    if json_out:
        _print_json(summary)
        return
    if summary["status"] == "built":
        t = Table(show_header=False, box=None)
        for k in (
            "output",
            "documents",
            "tokens",
            "shards",
            "token_dtype",
            "input_files",
            "skipped_files",
            "quarantined",
            "blank_lines",
            "resumed_tasks",
            "seconds",
        ):
            t.add_row(k, f"{summary[k]:,}" if isinstance(summary[k], int) else str(summary[k]))
        err.print(t)
        if summary["quarantined"]:
            reasons = ", ".join(f"{k}: {v}" for k, v in sorted(summary["quarantine_by_reason"].items()))
            err.print(
                f"[yellow]quarantined {summary['quarantined']} bad record(s)[/] ({reasons}); see "
                f"{summary['output']}/quarantine/quarantine.parquet",
                highlight=False,
            )
    if "concepts" in summary:
        c = summary["concepts"]
        err.print(
            f"tagged {c['concepts']:,} concepts: {c['doc_concept_pairs']:,} (document, concept) pairs",
            highlight=False,
        )
    if "vectors" in summary:
        v = summary["vectors"]
        err.print(
            f"embedded {v['documents']:,} documents as {v['vectors']:,} vectors ({v['factory']})",
            highlight=False,
        )


def _open(index_dir: str):
    from freqindex.suffix.index import Index

    return Index.open(index_dir)


@app.command("count")
@_handle_errors
def count_cli(
    index_dir: Annotated[str, typer.Argument(metavar="DIR", help="Index directory.")],
    query: Annotated[
        str | None,
        typer.Argument(help="String to count; ' AND ' / ' OR ' make a CNF query.", show_default=False),
    ] = None,
    unit: Annotated[
        str, typer.Option(help="occurrences (overlapping matches) or docs (distinct documents).")
    ] = "occurrences",
    literal: Annotated[
        bool, typer.Option("--literal", help="Count the query as written: no AND/OR parsing.")
    ] = False,
    file: Annotated[
        str | None,
        typer.Option(
            "--file", help="One query per line; prints one JSON object per line.", show_default=False
        ),
    ] = None,
    max_clause_freq: Annotated[
        int, typer.Option(help="AND queries: subsample clauses above this count.")
    ] = settings.MAX_CLAUSE_FREQ,
    max_diff_tokens: Annotated[
        int, typer.Option(help="AND queries: clauses must fall within this many tokens.")
    ] = settings.MAX_DIFF_TOKENS,
    json_out: Annotated[bool, typer.Option("--json", help="Print {query, count, unit, approx}.")] = False,
):
    """Count a string exactly, normalized and tokenized exactly as the index was.

    With the default 'simple' normalization, ' dog ' (spaces kept) counts the whole word, also at document
    edges, while 'dog' also counts inside 'hotdogs'.

    Example: freqindex count idx " golden retriever " --unit docs --json
    """
    from freqindex.query.count import count

    idx = _open(index_dir)
    kw = dict(unit=unit, literal=literal, max_clause_freq=max_clause_freq, max_diff_tokens=max_diff_tokens)
    if file:
        if query is not None:
            raise UsageError("give either QUERY or --file, not both")
        try:
            lines = Path(file).read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"cannot read --file {file}: {exc}") from None
        for q in lines:
            if q == "":
                continue
            _print_json(count(idx, q, **kw).to_dict())
        return
    if query is None:
        raise UsageError("missing QUERY (or --file)")
    res = count(idx, query, **kw)
    if json_out:
        _print_json(res.to_dict())
    else:
        approx = " (approximate)" if res.approx else ""
        out.print(f"{res.count:,} {res.unit} of {query!r}{approx}", highlight=False)


@app.command("docs")
@_handle_errors
def docs_cli(
    index_dir: Annotated[str, typer.Argument(metavar="DIR", help="Index directory.")],
    query: Annotated[str, typer.Argument(help="String to look up (' OR ' alternatives allowed).")],
    limit: Annotated[
        int, typer.Option(help="Documents to show (the first by doc_id).")
    ] = settings.DEFAULT_DOCS_LIMIT,
    literal: Annotated[
        bool, typer.Option("--literal", help="Look the query up as written: no OR parsing.")
    ] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object per document.")] = False,
):
    """List documents that contain QUERY: doc_id, external id, source file and line, and a snippet.

    Example: freqindex docs idx " dog " --limit 5
    """
    from freqindex.query.docs import find_docs

    idx = _open(index_dir)
    n, hits = find_docs(idx, query, limit=limit, literal=literal)
    if json_out:
        for h in hits:
            _print_json(h.to_dict())
        return
    out.print(f"{n:,} document(s) contain {query!r}; showing {len(hits)}", highlight=False)
    t = Table("doc_id", "id", "source:line", "n", "snippet", show_lines=False)
    for h in hits:
        t.add_row(
            str(h.doc_id), h.ext_id or "", f"{Path(h.source).name}:{h.line}", str(h.occurrences), h.snippet
        )
    out.print(t)


@app.command("info")
@_handle_errors
def info_cli(
    index_dir: Annotated[str, typer.Argument(metavar="DIR", help="Index directory.")],
    json_out: Annotated[bool, typer.Option("--json", help="Print the whole manifest as JSON.")] = False,
):
    """Show what an index holds: documents, tokens, shards, tokenizer, normalization, quarantine, tools."""
    from freqindex.manifest import read_manifest

    m = read_manifest(index_dir)
    if json_out:
        _print_json(m)
        return
    c = m["counts"]
    t = Table(show_header=False, box=None)
    rows = [
        ("index", str(Path(index_dir).resolve())),
        ("created", m["created"]),
        ("documents", f"{c['documents']:,}"),
        ("tokens", f"{c['tokens']:,} ({m['token_dtype']})"),
        ("shards", str(len(m["shards"]))),
        ("tokenizer", m["tokenizer"]["name"]),
        ("normalization", f"{m['normalization']['name']} v{m['normalization']['version']}"),
        ("input files", f"{c['input_files']:,} ({c['input_bytes']:,} bytes of text)"),
        (
            "quarantined",
            f"{c['quarantined']:,}" + (f" {c['quarantine_by_reason']}" if c["quarantined"] else ""),
        ),
        ("blank lines", f"{c['blank_lines']:,}"),
        ("skipped files", _skipped_row(m.get("skipped_files") or [])),
        ("index bytes", f"{sum(f['size'] for f in m['files'].values()):,}"),
        ("tools", ", ".join(f"{k} {v}" for k, v in m["tools"].items())),
    ]
    for k, v in rows:
        t.add_row(k, v)
    out.print(t)


def _skipped_row(skipped: list) -> str:
    """Input files found and not read: count, then name (reason); older manifests list bare paths."""
    if not skipped:
        return "0"
    from freqindex.corpus.readers import describe_skipped

    pairs = [(s["path"], s["reason"]) if isinstance(s, dict) else (s, "unknown format") for s in skipped]
    return f"{len(pairs):,}: {describe_skipped(pairs)}"


@app.command("verify")
@_handle_errors
def verify_cli(
    index_dir: Annotated[str, typer.Argument(metavar="DIR", help="Index directory.")],
    json_out: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
):
    """Check every file of an index against the sizes and sha256 sums in its manifest (exit 1 on mismatch)."""
    from freqindex.errors import CheckFailedError
    from freqindex.manifest import verify

    try:
        res = verify(index_dir)
    except CheckFailedError as exc:
        if json_out:
            _print_json({"index": index_dir, "ok": False, "error": str(exc)})
            raise typer.Exit(1) from None
        raise
    if json_out:
        _print_json(res)
    else:
        out.print(
            f"ok: {res['files_checked']} files, {res['bytes_checked']:,} bytes match the manifest",
            highlight=False,
        )


@app.command("demo-corpus")
@_handle_errors
def demo_corpus_cli(
    out_dir: Annotated[str, typer.Argument(metavar="DIR", help="Where to write the corpus.")] = "demo/corpus",
    captions: Annotated[int, typer.Option(help="Number of image captions (TSV).")] = 20_000,
    articles: Annotated[
        int, typer.Option(help="Number of articles (.jsonl, .jsonl.gz, .jsonl.zst).")
    ] = 3_000,
    seed: Annotated[int, typer.Option(help="Random seed (the corpus is deterministic).")] = 0,
):
    """Write a small generated corpus in every input format, with a few planted bad records.

    Example: freqindex demo-corpus demo/corpus && freqindex build demo/corpus -o demo/index
    """
    from freqindex.demo import write_demo_corpus

    info = write_demo_corpus(out_dir, captions, articles, seed)
    out.print(
        f"wrote {info['documents']:,} documents (+{info['planted_bad_records']} planted bad records) to "
        f"{info['dir']}: {', '.join(info['files'])}",
        highlight=False,
    )


def _progress(enabled: bool = True):
    """A rich progress display on stderr (only on a terminal; otherwise plain lines) and the (description,
    done, total) callback that the Spark runner reports task progress through."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        disable=not (enabled and err.is_terminal),
    )
    tasks: dict[str, int] = {}
    lines = None
    if enabled and not err.is_terminal:  # a log: plain lines instead of a bar
        from freqindex.progress import LineProgress

        lines = LineProgress(lambda m: err.print(m, highlight=False))

    def on_progress(desc: str, done: int, total: int) -> None:
        if lines is not None:
            lines(desc, done, total)
        if desc not in tasks:
            tasks[desc] = progress.add_task(desc, total=total)
        progress.update(tasks[desc], completed=done, total=total)

    return progress, on_progress


@app.command("tag")
@_handle_errors
def tag_cli(
    index_dir: Annotated[
        str, typer.Argument(metavar="DIR", help="Index directory (bytes tokenizer, simple normalization).")
    ],
    concepts: Annotated[
        str,
        typer.Option(
            "--concepts",
            help="Vocabulary: JSON benchmark->names, .txt, .csv/.jsonl/.parquet with 'concept' \\[+ 'aliases'], or an eval set with --label-field.",
        ),
    ],
    exact: Annotated[bool, typer.Option("--exact", help="No singular/plural inflections.")] = False,
    label_field: Annotated[
        str | None,
        typer.Option(help="Take the concepts from this label field of an eval set.", show_default=False),
    ] = None,
    master: Annotated[str, typer.Option(help="Spark master.")] = settings.DEFAULT_MASTER,
    json_out: Annotated[bool, typer.Option("--json", help="Print a machine-readable summary.")] = False,
):
    """Tag every document with concept matches (Aho-Corasick, whole words) in Spark.

    Writes concepts/vocab.parquet and concepts/hits/ into the index (its other files stay untouched) and
    updates the manifest atomically. The `concept_*` views of `freqindex sql` read them.

    Example: freqindex tag idx --concepts ../shared/data/concepts/clip_benchmark_en_classnames.json
    """
    from jobs.tag_concepts import run_tag

    progress, on_progress = _progress()
    with progress:
        summary = run_tag(
            index_dir, concepts, exact=exact, label_field=label_field, master=master, on_progress=on_progress
        )
    for w in summary["warnings"]:
        err.print(f"[yellow]warning:[/] {w}", highlight=False)
    if json_out:
        _print_json(summary)
    else:
        err.print(
            f"tagged {summary['concepts']:,} concepts: {summary['doc_concept_pairs']:,} (document, concept) "
            f"pairs in {summary['seconds']} s",
            highlight=False,
        )


@app.command("concepts")
@_handle_errors
def concepts_cli(
    index_dir: Annotated[str, typer.Argument(metavar="DIR", help="Index directory.")],
    concepts: Annotated[
        str, typer.Option("--concepts", help="Vocabulary file (see `freqindex tag --help`).")
    ],
    source: Annotated[
        str, typer.Option(help="auto (tags when the index has them for this vocabulary) | tags | suffix.")
    ] = "auto",
    exact: Annotated[bool, typer.Option("--exact", help="No singular/plural inflections.")] = False,
    label_field: Annotated[
        str | None,
        typer.Option(help="Take the concepts from this label field of an eval set.", show_default=False),
    ] = None,
    out_file: Annotated[
        str | None,
        typer.Option("--out", help="Write the table (.parquet, .csv or .jsonl).", show_default=False),
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object per concept.")] = False,
):
    """Occurrences and document frequency of every concept, from tags or straight from the suffix arrays.

    `--source suffix` pads each form to whole words, counts it exactly, and ORs the forms (document
    frequency deduplicated across forms): a new vocabulary needs no rebuild.

    Example: freqindex concepts idx --concepts classnames.json --source suffix --out freq.parquet
    """
    from freqindex.concepts.vocab import load_vocabulary
    from freqindex.query.concepts import concept_counts

    idx = _open(index_dir)
    vocab = load_vocabulary(concepts, idx.normalizer, exact, label_field)
    for w in vocab.warnings:
        err.print(f"[yellow]warning:[/] {w}", highlight=False)
    src, rows = concept_counts(idx, vocab, source)
    if out_file:
        _write_rows(rows, out_file)
        err.print(f"wrote {len(rows):,} concepts ({src}) to {out_file}", highlight=False)
    if json_out:
        for r in rows:
            _print_json({**r, "source": src})
    elif not out_file:
        t = Table("benchmark", "concept", "occurrences", "doc_frequency", title=f"source: {src}")
        for r in rows:
            t.add_row(r["benchmark"] or "", r["concept"], f"{r['occurrences']:,}", f"{r['doc_frequency']:,}")
        out.print(t)


def _write_rows(rows: list[dict], path: str) -> None:
    import pyarrow as pa

    table = pa.Table.from_pylist(rows)
    _write_table(table, path)


def _write_table(table, path: str, fmt: str | None = None) -> None:
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    fmt = fmt or Path(path).suffix.lstrip(".").lower()
    if fmt == "parquet":
        pq.write_table(table, path)
    elif fmt == "csv":
        pcsv.write_csv(table, path)
    elif fmt in ("jsonl", "json"):
        with open(path, "w", encoding="utf-8") as f:
            for r in table.to_pylist():
                f.write(json.dumps(r, ensure_ascii=False, default=str) + "\n")
    else:
        raise UsageError(f"cannot write {path}: use .parquet, .csv or .jsonl")


@app.command("sql")
@_handle_errors
def sql_cli(
    index_dir: Annotated[str, typer.Argument(metavar="DIR", help="Index directory.")],
    query: Annotated[str | None, typer.Argument(help="One SELECT statement.", show_default=False)] = None,
    file: Annotated[
        str | None,
        typer.Option(
            "--file", help="Read the query from a .sql file (e.g. sql/top_concepts.sql).", show_default=False
        ),
    ] = None,
    fmt: Annotated[
        str, typer.Option("--format", help="table | csv | json | parquet (parquet needs --out).")
    ] = "table",
    out_file: Annotated[
        str | None, typer.Option("--out", help="Write the result to a file.", show_default=False)
    ] = None,
    export: Annotated[
        str | None,
        typer.Option(
            "--export", help="Write a DuckDB database file holding the views, then exit.", show_default=False
        ),
    ] = None,
    max_rows: Annotated[int, typer.Option(help="Rows shown in table format.")] = 200,
):
    """Read-only SQL (DuckDB) over the index's tables: docs, quarantine, concept_*, neighbors, neighbor_max.

    The views are defined in sql/views.sql; canned analyses live in sql/*.sql. The connection can read
    nothing outside the index directory and runs SELECT statements only.

    Example: freqindex sql idx "SELECT source, count(*) FROM docs GROUP BY ALL" --format csv
    """
    from freqindex.fsutil import read_text
    from freqindex.sqlcat import export_catalog, run_query

    if export:
        p = export_catalog(index_dir, export)
        err.print(f"wrote {p}: open it with `duckdb {p}` and query the views", highlight=False)
        return
    if (query is None) == (file is None):
        raise UsageError("give either a QUERY or --file")
    if file:
        try:
            query = read_text(file)
        except OSError as exc:
            raise UsageError(f"cannot read {file}: {exc.strerror}") from None
    if fmt not in ("table", "csv", "json", "parquet"):
        raise UsageError("--format must be table, csv, json or parquet")
    table = run_query(index_dir, query)
    if out_file:
        _write_table(table, out_file, None if fmt == "table" else ("jsonl" if fmt == "json" else fmt))
        err.print(f"wrote {table.num_rows:,} rows to {out_file}", highlight=False)
        return
    if fmt == "parquet":
        raise UsageError("--format parquet needs --out FILE")
    if fmt == "csv":
        import pyarrow.csv as pcsv

        buf = __import__("io").BytesIO()
        pcsv.write_csv(table, buf)
        sys.stdout.write(buf.getvalue().decode())
    elif fmt == "json":
        for r in table.to_pylist():
            sys.stdout.write(json.dumps(r, ensure_ascii=False, default=str) + "\n")
    else:
        t = Table(*table.column_names)
        for r in table.slice(0, max_rows).to_pylist():
            t.add_row(*["" if v is None else str(v) for v in r.values()])
        out.print(t)
        if table.num_rows > max_rows:
            err.print(
                f"({table.num_rows - max_rows:,} more rows; use --format csv or --out)", highlight=False
            )


@app.command("embed")
@_handle_errors
def embed_cli(
    index_dir: Annotated[str, typer.Argument(metavar="DIR", help="Index directory.")],
    model: Annotated[
        str,
        typer.Option(help="minilm-v1 (offline, the embed extra) | st:PATH_OR_NAME | clip:MODEL@CHECKPOINT."),
    ] = "minilm-v1",
    chunk_tokens: Annotated[
        str,
        typer.Option(
            help="Window sizes in model tokens (comma-separated): every document gets windows of each size."
        ),
    ] = "32,64,128",
    stride: Annotated[
        int | None,
        typer.Option(
            help="Tokens between window starts \\[default: half of each window].", show_default=False
        ),
    ] = None,
    faiss_factory: Annotated[
        str | None,
        typer.Option(
            help="FAISS factory string \\[default: by size: Flat, IVF-Flat, IVF-SQ8].", show_default=False
        ),
    ] = None,
    dtype: Annotated[str, typer.Option(help="float32 | float16 vector shards.")] = "float32",
    precomputed: Annotated[
        str | None,
        typer.Option(
            help="Use vectors shipped with the corpus: .npy file(s) aligned with doc_id, or Parquet with --vector-field and --id-field matched to external ids; --model then only embeds queries.",
            show_default=False,
        ),
    ] = None,
    vector_field: Annotated[
        str, typer.Option(help="Parquet list<float> column of --precomputed.")
    ] = "embedding",
    id_field: Annotated[
        str, typer.Option(help="Parquet id column of --precomputed (matched to external ids).")
    ] = "id",
    image_root: Annotated[
        str | None,
        typer.Option(
            help="Embed images instead (clip:MODEL only): each document's image is IMAGE_ROOT/<external id up to '#'>, as in caption dumps.",
            show_default=False,
        ),
    ] = None,
    master: Annotated[str, typer.Option(help="Spark master.")] = settings.DEFAULT_MASTER,
    json_out: Annotated[bool, typer.Option("--json", help="Print a machine-readable summary.")] = False,
):
    """Embed every document (every window of a long one) in Spark and build a FAISS index (cosine similarity).

    Writes vectors/ into the index (its other files stay untouched) and updates the manifest atomically.

    Windows of several sizes (default 32, 64 and 128 tokens, each every half window) because an eval item
    can sit anywhere inside a long document; `--chunk-tokens 128` is cheaper.

    Example: freqindex embed idx --chunk-tokens 64,128
    """
    from jobs.embed_index import run_embed

    progress, on_progress = _progress()
    with progress:
        try:
            sizes = tuple(int(x) for x in chunk_tokens.split(","))
        except ValueError:
            raise UsageError(f"--chunk-tokens takes comma-separated integers, got {chunk_tokens!r}") from None
        summary = run_embed(
            index_dir,
            model=model,
            chunk_tokens=sizes,
            stride=stride,
            factory=faiss_factory,
            dtype=dtype,
            master=master,
            on_progress=on_progress,
            image_root=image_root,
            precomputed=precomputed,
            vector_field=vector_field,
            id_field=id_field,
        )
    if json_out:
        _print_json(summary)
    else:
        err.print(
            f"embedded {summary['documents']:,} documents as {summary['vectors']:,} vectors "
            f"({summary['factory']}) in {summary['seconds']} s",
            highlight=False,
        )


@app.command("neighbors")
@_handle_errors
def neighbors_cli(
    index_dir: Annotated[str, typer.Argument(metavar="DIR", help="Index directory (embedded).")],
    eval_file: Annotated[str, typer.Option("--eval", help="Eval set: .jsonl, .json, .csv or .parquet.")],
    fields: Annotated[
        str | None,
        typer.Option(help="Fields that make up an item, joined by a newline (a,b).", show_default=False),
    ] = None,
    template: Annotated[
        str | None,
        typer.Option(help="Item text as a template, e.g. '{question}\\n{answer}'.", show_default=False),
    ] = None,
    id_field: Annotated[str, typer.Option(help="Item id field (else the row number).")] = "id",
    k: Annotated[int, typer.Option("-k", help="Documents per item.")] = 10,
    out_file: Annotated[
        str | None,
        typer.Option(
            "--out",
            help="Parquet or JSONL \\[default: DIR/evals/NAME/neighbors.parquet, the `neighbors` SQL view].",
            show_default=False,
        ),
    ] = None,
    json_out: Annotated[
        bool, typer.Option("--json", help="Print one JSON object per (item, document).")
    ] = False,
):
    """Top-k pretraining documents for every eval item: doc_id, external id, window, cosine similarity, snippet.

    The item is normalized and embedded with the index's own model. Example:
    freqindex neighbors idx --eval ../shared/data/evals/gsm8k/test.jsonl --fields question -k 5
    """
    from freqindex.evals import load_eval
    from freqindex.query.neighbors import NEIGHBOR_SCHEMA, max_similarity, neighbors

    idx = _open(index_dir)
    items = load_eval(eval_file, id_field, fields.split(",") if fields else None, template)
    name = Path(eval_file).name.split(".")[0]
    rows = neighbors(idx, items, k, name)
    import pyarrow as pa

    table = pa.Table.from_pylist(rows, schema=NEIGHBOR_SCHEMA)
    target = out_file or str(idx.path / "evals" / name / "neighbors.parquet")
    Path(target).parent.mkdir(parents=True, exist_ok=True)
    _write_table(table, target)
    if json_out:
        for r in rows:
            _print_json(r)
        return
    ms = max_similarity(rows)
    vals = sorted(ms.values())
    err.print(
        f"{len(items):,} items, {len(rows):,} neighbours written to {target}; max similarity median "
        f"{vals[len(vals) // 2]:.3f}, items >= 0.9: {sum(v >= 0.9 for v in vals):,}",
        highlight=False,
    )


@app.command("analyze")
@_handle_errors
def analyze_cli(
    index_dir: Annotated[
        str | None,
        typer.Argument(
            metavar="DIR",
            help="Index directory (--normalize simple; embedded for neighbour similarity). Not needed with "
            "--concept-counts.",
            show_default=False,
        ),
    ] = None,
    eval_file: Annotated[
        str | None,
        typer.Option("--eval", help="Eval set: .jsonl, .json, .csv or .parquet.", show_default=False),
    ] = None,
    results: Annotated[
        str | None,
        typer.Option(
            help="Per-item model results: long (id, model, correct|score) or GSM8K's wide layout.",
            show_default=False,
        ),
    ] = None,
    out_dir: Annotated[
        str | None,
        typer.Option(
            "--out",
            help="Output directory \\[default: DIR/evals/NAME/analysis; per concept: DIR/evals/NAME/concept_analysis].",
            show_default=False,
        ),
    ] = None,
    concept_field: Annotated[
        str | None,
        typer.Option(help="Item field holding its concept(s) (a class label or a list).", show_default=False),
    ] = None,
    concepts: Annotated[
        str | None,
        typer.Option(
            "--concepts",
            help="Per item: mapping file id, concept (one row per pair, or a list). Per concept: the class-name "
            "vocabulary to count on DIR (see `freqindex tag --help`).",
            show_default=False,
        ),
    ] = None,
    auto_concepts: Annotated[
        bool,
        typer.Option(
            "--auto-concepts",
            help="Extract concepts: nouns and proper nouns by spaCy's part-of-speech tagger, stop words dropped.",
        ),
    ] = False,
    fields: Annotated[
        str | None,
        typer.Option(
            help="Fields that make up an item's text, joined by a newline (a,b).", show_default=False
        ),
    ] = None,
    id_field: Annotated[str, typer.Option(help="Item id field (else the row number).")] = "id",
    aggregate: Annotated[
        str, typer.Option(help="Several concepts per item: min, gmean or max of their frequencies.")
    ] = "min",
    similarity: Annotated[
        str,
        typer.Option(help="auto (neighbors when the index has vectors, else verbatim), neighbors, verbatim."),
    ] = "auto",
    prune_threshold: Annotated[
        float, typer.Option(help="Prune documents at least this similar to any item, then refit.")
    ] = 0.9,
    prune_sweep: Annotated[
        str | None,
        typer.Option(help="Also refit at these thresholds, e.g. 0.8,0.85,0.95.", show_default=False),
    ] = None,
    bootstrap: Annotated[
        int | None,
        typer.Option(
            help="Bootstrap draws over concepts for every interval \\[default: 200 per item, 1000 per concept].",
            show_default=False,
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Bootstrap seed.")] = 0,
    json_out: Annotated[bool, typer.Option("--json", help="Print summary.json.")] = False,
    concept_results: Annotated[
        str | None,
        typer.Option(
            help="Per-concept analysis: per-class results with columns model, benchmark, concept, accuracy "
            "(fraction or percent).",
            show_default=False,
        ),
    ] = None,
    concept_counts: Annotated[
        str | None,
        typer.Option(
            help="Per concept, without an index: counts with columns benchmark, concept, count.",
            show_default=False,
        ),
    ] = None,
    count: Annotated[
        str, typer.Option(help="Per concept on DIR: auto, caption, tags or matched document frequency.")
    ] = "auto",
    count_column: Annotated[str, typer.Option(help="Per concept: the COUNTS column to use.")] = "count",
    pruned_count_column: Annotated[
        str | None,
        typer.Option(
            help="Per concept: COUNTS column of counts after pruning near-copies.", show_default=False
        ),
    ] = None,
    test_items: Annotated[
        str | None,
        typer.Option(
            help="Per concept on DIR with vectors: test items (benchmark + vector or text) whose near-copies "
            "(similarity >= --prune-threshold) are not counted.",
            show_default=False,
        ),
    ] = None,
    bins: Annotated[int, typer.Option(help="Per concept: bin edges of the published binned fit.")] = 12,
    accuracy_scale: Annotated[
        str, typer.Option(help="Per concept: auto (detect), fraction or percent.")
    ] = "auto",
    exact: Annotated[
        bool, typer.Option("--exact", help="Per concept on DIR: no singular/plural inflections.")
    ] = False,
):
    """Is the frequency effect a similarity effect? Joins each item's concept frequency, its similarity to the
    corpus and per-model correctness; fits accuracy against log frequency raw, controlled for similarity,
    within similarity strata and after pruning near-copies; writes summary.json, items.parquet (the
    `analysis_items` SQL view), figures and report.html with a verdict per model.

    Per concept (--concept-results): per-class accuracy against how often each class occurs in pretraining
    (from DIR with --concepts VOCAB, or from --concept-counts), the study's binned fit, a slope with a fixed
    effect per benchmark, the same on pruned counts, and a verdict per model.

    Example: freqindex analyze idx --eval test.jsonl --results solutions.jsonl --auto-concepts

    Example: freqindex analyze --concept-counts counts.csv --concept-results results.csv --out out/
    """
    if concept_results is not None or concept_counts is not None:
        if eval_file or results or concept_field or auto_concepts or prune_sweep:
            raise UsageError(
                "--eval, --results, --concept-field, --auto-concepts and --prune-sweep belong to the per-item "
                "analysis; the per-concept one takes --concept-results"
            )
        return _analyze_concepts(
            index_dir,
            concepts,
            concept_results,
            concept_counts,
            count,
            count_column,
            pruned_count_column,
            test_items,
            prune_threshold,
            bins,
            1000 if bootstrap is None else bootstrap,
            seed,
            accuracy_scale,
            exact,
            out_dir,
            json_out,
        )
    if index_dir is None or eval_file is None or results is None:
        raise UsageError(
            "analyze needs DIR, --eval and --results (or --concept-results for the per-concept analysis)"
        )
    bootstrap = 200 if bootstrap is None else bootstrap
    from freqindex.analysis import core
    from freqindex.analysis.run import run_analysis
    from freqindex.evals import load_eval, load_results
    from freqindex.report.analysis import items_table, write_outputs

    chosen = [x for x in (concept_field, concepts, auto_concepts or None) if x]
    if len(chosen) != 1:
        raise UsageError(
            "say where concepts come from: exactly one of --concept-field, --concepts, --auto-concepts"
        )
    if bootstrap < 20 or bootstrap > 100_000:
        raise UsageError("--bootstrap takes 20 to 100000 draws")
    sweep = None
    if prune_sweep:
        try:
            sweep = [float(x) for x in prune_sweep.split(",") if x.strip()]
        except ValueError:
            raise UsageError(
                f"--prune-sweep takes comma-separated similarities, got {prune_sweep!r}"
            ) from None
        if any(not 0 < t <= 1 for t in sweep):
            raise UsageError("--prune-sweep thresholds must lie in (0, 1]")
    idx = _open(index_dir)
    items = load_eval(eval_file, id_field, fields.split(",") if fields else None)
    name = Path(eval_file).name.split(".")[0]
    res = load_results(results, items)
    progress, _ = _progress()
    with progress:
        task = progress.add_task("concepts", total=None)
        if concept_field:
            item_concepts, how = (
                core.concepts_from_field(items, concept_field),
                f"the field {concept_field!r}",
            )
        elif concepts:
            item_concepts, how = core.concepts_from_map(concepts, items), f"from {concepts}"
        else:
            item_concepts, how = (
                core.auto_concepts(items),
                "automatic (nouns and proper nouns by spaCy's part-of-speech tagger, stop words dropped)",
            )
        rows, summary = run_analysis(
            idx,
            items,
            res,
            item_concepts,
            eval_name=name,
            aggregate=aggregate,
            similarity=similarity,
            prune_threshold=prune_threshold,
            prune_sweep=sweep,
            n_boot=bootstrap,
            seed=seed,
            progress=lambda stage: progress.update(task, description=stage),
        )
    summary["settings"]["concepts"] = how
    target = Path(out_dir) if out_dir else idx.path / "evals" / name / "analysis"
    paths = write_outputs(target, rows, summary, name)
    view_file = idx.path / "evals" / name / "analysis.parquet"
    view_file.parent.mkdir(parents=True, exist_ok=True)
    _write_table(items_table(rows, name), str(view_file))
    if json_out:
        _print_json(json.loads(paths["summary.json"].read_text()))
        return
    for m, r in summary["models"].items():
        f = r["frequency"]
        ci = f.get("ci") or [float("nan"), float("nan")]
        err.print(
            f"{m}: accuracy {r['accuracy']:.3f}, frequency slope "
            f"{(f['slope'] if f['slope'] is not None else float('nan')):.3f} [{ci[0]:.3f}, {ci[1]:.3f}] -> "
            f"[bold]{r['verdict']}[/]",
            highlight=False,
        )
    err.print(f"report: {paths['report.html']}", highlight=False)


def _analyze_concepts(
    index_dir: str | None,
    concepts: str | None,
    concept_results: str | None,
    concept_counts: str | None,
    count: str,
    count_column: str,
    pruned_count_column: str | None,
    test_items: str | None,
    prune_threshold: float,
    bins: int,
    bootstrap: int,
    seed: int,
    accuracy_scale: str,
    exact: bool,
    out_dir: str | None,
    json_out: bool,
) -> None:
    """`analyze --concept-results`: run_concept_analysis, its outputs, and (on an index) the SQL view file."""
    from freqindex.analysis.per_concept import ConceptAnalysisConfig, run_concept_analysis
    from freqindex.report.per_concept import items_table, write_concept_outputs

    if concept_results is None:
        raise UsageError("--concept-counts goes with --concept-results RESULTS")
    name = Path(concept_results).name.split(".")[0]
    cfg = ConceptAnalysisConfig(
        results=concept_results,
        counts=concept_counts,
        index=index_dir,
        vocabulary=concepts,
        count=count,
        count_column=count_column,
        pruned_count_column=pruned_count_column,
        test_items=test_items,
        prune_threshold=prune_threshold,
        bins=bins,
        bootstrap=bootstrap,
        seed=seed,
        accuracy_scale=accuracy_scale,
        exact=exact,
        name=name,
    )
    cfg.validate()
    if out_dir is None and index_dir is None:
        raise UsageError("say where to write the outputs with --out DIR")
    progress, _ = _progress()
    with progress:
        task = progress.add_task("per-concept analysis", total=None)
        rows, summary = run_concept_analysis(
            cfg, progress=lambda stage: progress.update(task, description=stage)
        )
    target = Path(out_dir) if out_dir else Path(index_dir) / "evals" / name / "concept_analysis"
    paths = write_concept_outputs(target, rows, summary)
    if index_dir is not None:  # the `concept_analysis` SQL view reads DIR/evals/*/concept_analysis.parquet
        view_file = Path(index_dir) / "evals" / name / "concept_analysis.parquet"
        view_file.parent.mkdir(parents=True, exist_ok=True)
        _write_table(items_table(rows), str(view_file))
    for w in summary["warnings"]:
        err.print(f"[yellow]warning:[/] {w}", highlight=False)
    if json_out:
        _print_json(json.loads(paths["summary.json"].read_text()))
        return
    for m, r in summary["models"].items():
        ci = r["ci"] or [float("nan"), float("nan")]
        slope = r["slope"] if r["slope"] is not None else float("nan")
        rr = r["binned"]["pearson_r"]
        err.print(
            f"{m}: binned r {'n/a' if rr is None else f'{rr:.3f}'}, slope {slope:.2f} [{ci[0]:.2f}, {ci[1]:.2f}] "
            f"points per tenfold frequency -> [bold]{r['verdict']}[/]",
            highlight=False,
        )
    err.print(f"report: {paths['report.html']}", highlight=False)


@app.command("serve")
@_handle_errors
def serve_cli(
    index_dirs: Annotated[
        list[str],
        typer.Argument(
            metavar="DIR...", help="Index directories to serve; each is addressed by its directory name."
        ),
    ],
    host: Annotated[
        str, typer.Option(help="Address to bind. Anything but loopback requires --token-file.")
    ] = settings.DEFAULT_HOST,
    port: Annotated[int, typer.Option(help="TCP port (0: any free port).")] = settings.DEFAULT_PORT,
    token_file: Annotated[
        str | None,
        typer.Option(
            help="File holding the bearer token every request but /healthz must send.", show_default=False
        ),
    ] = None,
    workers: Annotated[
        int, typer.Option(help="Worker processes (each opens the indexes; the OS shares their memory maps).")
    ] = 1,
    timeout: Annotated[
        float, typer.Option(help="Per-request time limit in seconds (504 past it).")
    ] = settings.REQUEST_TIMEOUT_S,
    log_level: Annotated[
        str, typer.Option(help="uvicorn log level: critical, error, warning, info, debug.")
    ] = "info",
):
    """Serve indexes over HTTP: count, docs, concepts, neighbors, contamination, read-only SQL, /metrics and
    an OpenAPI spec at /docs and /openapi.json. SIGTERM finishes in-flight requests, then exits.

    Example: freqindex serve idx other-idx --port 8000      (then: curl -s localhost:8000/v1/indexes)
    """
    import ipaddress

    try:
        import fastapi  # noqa: F401
        import uvicorn
    except ImportError:
        raise UsageError("the server needs the serve extra: pip install 'freqindex[serve]'") from None
    from freqindex.server.app import ENV_CONFIG, create_app

    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    token = None
    if token_file:
        try:
            token = Path(token_file).read_text().strip()
        except OSError as exc:
            raise UsageError(f"cannot read --token-file {token_file}: {exc.strerror}") from None
        if len(token) < 16:
            raise UsageError("the token in --token-file must be at least 16 characters")
    elif not loopback:
        raise UsageError(f"binding {host} exposes the service: give --token-file (or bind 127.0.0.1)")
    if workers < 1 or not 0 < timeout <= 3600:
        raise UsageError("--workers must be >= 1 and --timeout in (0, 3600]")
    dirs = [str(Path(d).resolve()) for d in index_dirs]
    app_obj = create_app(dirs, token, timeout)  # open everything once here: bad indexes fail before binding
    kw = dict(
        host=host, port=port, log_level=log_level, timeout_graceful_shutdown=settings.GRACEFUL_SHUTDOWN_S
    )
    if workers == 1:
        uvicorn.run(app_obj, **kw)
    else:
        os.environ[ENV_CONFIG] = json.dumps(
            {
                "indexes": dirs,
                "token_file": str(Path(token_file).resolve()) if token_file else None,
                "timeout_s": timeout,
            }
        )
        uvicorn.run("freqindex.server.app:app_from_env", factory=True, workers=workers, **kw)


@app.command("contamination")
@_handle_errors
def contamination_cli(
    index_dir: Annotated[str, typer.Argument(metavar="DIR", help="Index directory.")],
    eval_file: Annotated[str, typer.Option("--eval", help="Eval set: .jsonl, .json, .csv or .parquet.")],
    fields: Annotated[
        str, typer.Option(help="Fields to check, each on its own (question or question,answer).")
    ] = "question",
    id_field: Annotated[str, typer.Option(help="Item id field (else the row number).")] = "id",
    out_dir: Annotated[
        str | None,
        typer.Option(
            "--out", help="Output directory \\[default: DIR/evals/NAME/contamination].", show_default=False
        ),
    ] = None,
    fail_above: Annotated[
        float | None,
        typer.Option(help="Gate: exit 1 when the dirty fraction exceeds this.", show_default=False),
    ] = None,
    results: Annotated[
        str | None,
        typer.Option(
            help="Per-item model results (long: id,model,correct; or GSM8K's wide layout) for the impact table.",
            show_default=False,
        ),
    ] = None,
    config: Annotated[
        str | None,
        typer.Option(
            help="Policy TOML: min_len, skip, clean_below, dirty_at, boilerplate_ceiling, fail_above, \\[fields.NAME] overrides.",
            show_default=False,
        ),
    ] = None,
    min_len: Annotated[
        int | None,
        typer.Option(
            help="Minimum match length in tokens \\[default: 50 for bytes, 13 for HF tokens].",
            show_default=False,
        ),
    ] = None,
    skip: Annotated[
        int | None,
        typer.Option(help="Bridge up to this many mismatching tokens between matches.", show_default=False),
    ] = None,
    definitions: Annotated[
        str,
        typer.Option(
            help="Classic definitions to report, by name: gpt3, palm, ig_mini (comma-separated) or all."
        ),
    ] = "all",
    json_out: Annotated[bool, typer.Option("--json", help="Print summary.json.")] = False,
):
    """Is this eval set in this corpus? Exact verbatim metrics per item from the suffix arrays, every
    standard definition (GPT-3, PaLM, 50-character / infini-gram mini), semantic similarity when the index
    has vectors, evidence for each hit, a report, and a CI gate.

    Example: freqindex contamination idx --eval test.jsonl --fields question --fail-above 0.01
    """
    from freqindex.contamination.check import check_items, load_policy, parse_definitions
    from freqindex.evals import load_eval
    from freqindex.report.contamination import write_outputs

    chosen = parse_definitions(definitions)
    idx = _open(index_dir)
    policy = load_policy(config, min_len=min_len, skip=skip, fail_above=fail_above)
    field_list = [f.strip() for f in fields.split(",") if f.strip()]
    items = load_eval(eval_file, id_field, field_list)
    name = Path(eval_file).name.split(".")[0]
    semantic = None
    if idx.manifest.get("vectors"):
        from freqindex.query.neighbors import neighbors

        rows = neighbors(idx, items, 1, name)
        semantic = {r["item_id"]: (r["similarity"], r["doc_id"]) for r in rows}
    progress, _ = _progress()
    with progress:
        task = progress.add_task("check items", total=len(items))
        records, summary = check_items(
            idx,
            items,
            field_list,
            policy,
            semantic,
            progress=lambda d, t: progress.update(task, completed=d),
            definitions=chosen,
        )
    imp = imp_png = None
    if results:
        from freqindex.contamination.impact import impact
        from freqindex.evals import load_results
        from freqindex.report.contamination import impact_png

        imp = impact(records, load_results(results, items))
        imp_png = impact_png(imp)
        summary["impact"] = imp
    gate_failed = policy.fail_above is not None and summary["dirty_fraction"] > policy.fail_above
    if policy.fail_above is not None:
        summary["gate"] = {"fail_above": policy.fail_above, "failed": gate_failed}
    target = Path(out_dir) if out_dir else idx.path / "evals" / name / "contamination"
    paths = write_outputs(target, records, summary, {it.id: it.row for it in items}, imp, imp_png)
    import pyarrow as pa

    flat = [
        {
            "eval": name,
            "id": r["id"],
            "bucket": r["bucket"],
            "coverage": r["coverage"],
            "longest_match_chars": r["longest_match"]["chars"],
            "gpt3": r["definitions"].get("gpt3"),
            "palm": r["definitions"].get("palm"),
            "ig_mini": r["definitions"].get("ig_mini"),
            "max_similarity": (r.get("semantic") or {}).get("max_similarity"),
            "evidence_doc_id": (r.get("evidence") or {}).get("doc_id"),
        }
        for r in records
    ]
    view_file = idx.path / "evals" / name / "contamination.parquet"
    view_file.parent.mkdir(parents=True, exist_ok=True)
    _write_table(pa.Table.from_pylist(flat, schema=_CONTAMINATION_SCHEMA()), str(view_file))
    if json_out:
        _print_json(summary)
    else:
        b = summary["buckets"]
        err.print(
            f"{summary['n_items']:,} items: {b['dirty']} dirty, {b['suspicious']} suspicious, {b['clean']} clean, "
            f"{b['uncheckable']} uncheckable (dirty fraction {summary['dirty_fraction']:.4f}); report: "
            f"{paths['report.html']}",
            highlight=False,
        )
    if gate_failed:
        err.print(
            f"[bold red]gate failed:[/] dirty fraction {summary['dirty_fraction']:.4f} exceeds "
            f"{policy.fail_above}",
            highlight=False,
        )
        raise typer.Exit(1)


def _CONTAMINATION_SCHEMA():
    import pyarrow as pa

    return pa.schema(
        [
            ("eval", pa.string()),
            ("id", pa.string()),
            ("bucket", pa.string()),
            ("coverage", pa.float64()),
            ("longest_match_chars", pa.int64()),
            ("gpt3", pa.bool_()),
            ("palm", pa.bool_()),
            ("ig_mini", pa.bool_()),
            ("max_similarity", pa.float64()),
            ("evidence_doc_id", pa.int64()),
        ]
    )


def main() -> None:
    app()


if __name__ == "__main__":
    main()
