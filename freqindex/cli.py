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
            from rich.markup import escape  # messages name extras like 'freqindex[embed]': not markup

            err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, markup=True)
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


CacheDirOpt = Annotated[
    str | None,
    typer.Option(
        "--cache-dir",
        help="Where an index given as a URL is cached locally \\[default: $FREQINDEX_CACHE_DIR, else the user "
        "cache directory, e.g. ~/.cache/freqindex].",
        show_default=False,
    ),
]
StorageOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--storage-option",
        help="KEY=VALUE for the filesystem of a URL (repeatable), e.g. endpoint_url=http://host:9000; "
        "SCHEME.KEY=VALUE applies to one scheme only. Credentials come from the usual environment.",
        show_default=False,
    ),
]


def _local_index(location: str, cache_dir: str | None, storage_option: list[str] | None) -> str:
    """The local directory of an index given as DIR or URL: a URL (s3://, gs://, hdfs://, abfs://) is opened
    through the verified local cache (freqindex.remote), which pulls what is missing or changed first."""
    from freqindex import storage

    if not storage.is_url(location):
        return storage.local_path(location) if location.startswith("file://") else location
    from freqindex.remote import local_index

    return local_index(
        location,
        cache_dir,
        storage.parse_storage_options(storage_option),
        on_message=lambda m: err.print(m, highlight=False),
    )


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
            help="Files, directories or globs, local or URLs (s3://, gs://, hdfs://, abfs://): "
            ".jsonl[.gz|.zst], .parquet, .txt, .tsv (id<TAB>text).",
            show_default=False,
        ),
    ] = None,
    output: Annotated[
        str | None,
        typer.Option(
            "--output", "-o", help="Index directory, or URL (s3://bucket/idx, gs://, hdfs://, abfs://)."
        ),
    ] = None,
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
    append_to: Annotated[
        str | None,
        typer.Option(
            "--append-to",
            help="Add the INPUTs to this index (path or URL) as a new generation of shards, with its settings; "
            "inputs it already holds (same path, size, sha256) are skipped.",
            show_default=False,
        ),
    ] = None,
    storage_option: StorageOpt = None,
    scratch_dir: Annotated[
        str | None,
        typer.Option(
            help="Executor-local directory where tasks build before uploading to an --output URL "
            "\\[default: Spark's local directories, else the temp directory].",
            show_default=False,
        ),
    ] = None,
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

    Inputs and --output may be URLs; then no filesystem is shared: tasks read their own chunks, build in
    local scratch and upload, and manifest.json is written last.

    Example: freqindex build corpus/ --output idx --format jsonl --shards 2

    Example: freqindex build s3://bucket/dump/ -o s3://bucket/idx --storage-option endpoint_url=http://minio:9000
    """
    from freqindex import storage
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
    cfg_append = pick("append_to", append_to)
    cfg_output = output or table.get("output") or cfg_append
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
        storage_options=storage.parse_storage_options(storage_option)
        or storage.parse_storage_options(table.get("storage_options")),
        scratch_dir=pick("scratch_dir", scratch_dir),
        append_to=cfg_append,
    ).validate()
    if cfg.append_to and (concepts is not None or embed or overwrite):
        raise UsageError(
            "--append-to extends the index's concept hits and vectors by itself (when it has them); "
            "--concepts, --embed and --overwrite do not apply"
        )
    if storage.is_url(cfg.output) and (concepts is not None or embed):
        raise UsageError(
            "--concepts and --embed write into a local index: build to a URL, then `freqindex pull` it and "
            "tag or embed the local copy (or build locally)"
        )
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
    if summary["status"] in ("built", "appended"):
        t = Table(show_header=False, box=None)
        for k in (
            *(("generation",) if summary["status"] == "appended" else ()),
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
                f"{summary['output']}/{summary.get('quarantine_file', 'quarantine/quarantine.parquet')}",
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
    index_dir: Annotated[
        str, typer.Argument(metavar="DIR", help="Index directory or URL (s3://, gs://, hdfs://, abfs://).")
    ],
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
            "--file",
            help="One query per line; prints one JSON object per line (with its line number; a bad query "
            "gets an error object, the others are still counted, and the exit code is then 2).",
            show_default=False,
        ),
    ] = None,
    max_diff_tokens: Annotated[
        int,
        typer.Option(help="AND queries (occurrences): the other clauses must start within this many tokens."),
    ] = settings.MAX_DIFF_TOKENS,
    json_out: Annotated[bool, typer.Option("--json", help="Print {query, count, unit, approx}.")] = False,
    cache_dir: CacheDirOpt = None,
    storage_option: StorageOpt = None,
):
    """Count a string exactly, normalized and tokenized exactly as the index was.

    With the default 'simple' normalization, ' dog ' (spaces kept) counts the whole word, also at document
    edges, while 'dog' also counts inside 'hotdogs'.

    Example: freqindex count idx " golden retriever " --unit docs --json
    """
    from freqindex.query.count import CountError, count, count_many

    idx = _open(_local_index(index_dir, cache_dir, storage_option))
    kw = dict(unit=unit, literal=literal, max_diff_tokens=max_diff_tokens)
    if file:
        if query is not None:
            raise UsageError("give either QUERY or --file, not both")
        try:  # utf-8-sig: a byte-order mark is not part of the first query
            text = Path(file).read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"cannot read --file {file}: {exc}") from None
        numbered = [(n, q.removesuffix("\r")) for n, q in enumerate(text.split("\n"), 1)]
        numbered = [(n, q) for n, q in numbered if q != ""]
        bad = []
        for i in range(0, len(numbered), settings.COUNT_FILE_BATCH):
            chunk = numbered[i : i + settings.COUNT_FILE_BATCH]
            results = count_many(idx, [q for _, q in chunk], on_error="return", **kw)
            for (n, _), res in zip(chunk, results):
                if isinstance(res, CountError):
                    bad.append(n)
                _print_json({"line": n, **res.to_dict()})
        if bad:
            shown_lines = ", ".join(map(str, bad[:10])) + (", ..." if len(bad) > 10 else "")
            lines = "line" if len(bad) == 1 else "lines"
            raise UsageError(
                f"{len(bad)} of {len(numbered)} queries could not be counted ({lines} {shown_lines})"
            )
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
    index_dir: Annotated[
        str, typer.Argument(metavar="DIR", help="Index directory or URL (s3://, gs://, hdfs://, abfs://).")
    ],
    query: Annotated[str, typer.Argument(help="String to look up (' OR ' alternatives allowed).")],
    limit: Annotated[
        int, typer.Option(help="Documents to show (the first by doc_id).")
    ] = settings.DEFAULT_DOCS_LIMIT,
    literal: Annotated[
        bool, typer.Option("--literal", help="Look the query up as written: no OR parsing.")
    ] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object per document.")] = False,
    cache_dir: CacheDirOpt = None,
    storage_option: StorageOpt = None,
):
    """List documents that contain QUERY: doc_id, external id, source file and line, and a snippet.

    Example: freqindex docs idx " dog " --limit 5
    """
    from freqindex.query.docs import find_docs

    idx = _open(_local_index(index_dir, cache_dir, storage_option))
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
    index_dir: Annotated[
        str, typer.Argument(metavar="DIR", help="Index directory or URL (s3://, gs://, hdfs://, abfs://).")
    ],
    json_out: Annotated[bool, typer.Option("--json", help="Print the whole manifest as JSON.")] = False,
    storage_option: StorageOpt = None,
):
    """Show what an index holds: documents, tokens, shards, tokenizer, normalization, quarantine, tools."""
    from freqindex import storage
    from freqindex.manifest import read_manifest

    if storage.is_url(index_dir):  # the manifest is all `info` reads: no need to pull the index
        from freqindex.remote import remote_manifest

        m, _ = remote_manifest(index_dir, storage.parse_storage_options(storage_option))
    else:
        m = read_manifest(index_dir)
    if json_out:
        _print_json(m)
        return
    c = m["counts"]
    t = Table(show_header=False, box=None)
    rows = [
        ("index", index_dir if storage.is_url(index_dir) else str(Path(index_dir).resolve())),
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
    index_dir: Annotated[
        str, typer.Argument(metavar="DIR", help="Index directory or URL (s3://, gs://, hdfs://, abfs://).")
    ],
    json_out: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    storage_option: StorageOpt = None,
):
    """Check an index: its manifest (checksum, consistency), every file against the sizes and sha256 sums in
    the manifest, and the eval outputs declared in evals/catalog.json (exit 1 naming the first problem).

    A URL is checked in place: the manifest, then each object's size and its sha256 streamed from the store.
    """
    from freqindex import storage
    from freqindex.errors import CheckFailedError
    from freqindex.manifest import verify

    try:
        if storage.is_url(index_dir):  # in place: sizes, then sha256 streamed from the store
            from freqindex.remote import verify_remote

            res = verify_remote(index_dir, storage.parse_storage_options(storage_option))
        else:
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
            f"ok: {res['files_checked']} files, {res['bytes_checked']:,} bytes match the manifest; "
            f"{res['eval_outputs_checked']} eval outputs ({res['eval_files_checked']} files) match "
            "evals/catalog.json",
            highlight=False,
        )


@app.command("pull")
@_handle_errors
def pull_cli(
    url: Annotated[
        str, typer.Argument(metavar="URL", help="Index URL (s3://bucket/idx, gs://, hdfs://, abfs://).")
    ],
    dest: Annotated[str, typer.Argument(metavar="DIR", help="Local directory to copy the index into.")],
    workers: Annotated[int, typer.Option(help="Files downloaded at once.")] = 8,
    storage_option: StorageOpt = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
):
    """Copy an index from object storage into a local directory, every file checked against the manifest.

    Parallel and resumable: run it again after an interruption and files already verified are kept, a cut-off
    download continues. The manifest is written last, so DIR opens as an index only when complete.

    Example: freqindex pull s3://bucket/idx idx && freqindex count idx " dog "
    """
    from freqindex import storage
    from freqindex.remote import pull

    if not storage.is_url(url):
        raise UsageError(f"pull takes an index URL (s3://, gs://, hdfs://, abfs://), got {url!r}")
    if workers < 1:
        raise UsageError("--workers must be at least 1")
    res = pull(url, dest, storage.parse_storage_options(storage_option), workers=workers)
    if json_out:
        _print_json(res)
    else:
        out.print(
            f"pulled {res['index']} into {res['dir']}: {res['files']} files ({res['downloaded']} downloaded, "
            f"{res['kept']} already there and verified), every one checked against the manifest",
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
    index_dir: Annotated[
        str, typer.Argument(metavar="DIR", help="Index directory or URL (s3://, gs://, hdfs://, abfs://).")
    ],
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
    cache_dir: CacheDirOpt = None,
    storage_option: StorageOpt = None,
):
    """Occurrences and document frequency of every concept, from tags or straight from the suffix arrays.

    `--source suffix` pads each form to whole words, counts it exactly, and ORs the forms (document
    frequency deduplicated across forms): a new vocabulary needs no rebuild.

    Example: freqindex concepts idx --concepts classnames.json --source suffix --out freq.parquet
    """
    from freqindex.concepts.vocab import load_vocabulary
    from freqindex.query.concepts import concept_counts

    idx = _open(_local_index(index_dir, cache_dir, storage_option))
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
    index_dir: Annotated[
        str, typer.Argument(metavar="DIR", help="Index directory or URL (s3://, gs://, hdfs://, abfs://).")
    ],
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
    cache_dir: CacheDirOpt = None,
    storage_option: StorageOpt = None,
):
    """Read-only SQL (DuckDB) over the index's tables: docs, quarantine, concept_*, neighbors, neighbor_max.

    The views are defined in sql/views.sql; canned analyses live in sql/*.sql. The connection can read
    nothing outside the index directory and runs SELECT statements only.

    Example: freqindex sql idx "SELECT source, count(*) FROM docs GROUP BY ALL" --format csv
    """
    from freqindex.fsutil import read_text
    from freqindex.sqlcat import export_catalog, run_query

    index_dir = _local_index(index_dir, cache_dir, storage_option)
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


_NEIGHBORS_HELP = (
    "auto (exhaustive when the index has vectors, else candidates) | exhaustive (the FAISS index of "
    "`freqindex embed`) | candidates (embed only the windows of each item's candidate documents, found "
    "in the suffix arrays; no `embed` needed)."
)
_CANDIDATES_HELP = "Candidate documents per item in candidates mode \\[default: 32]."


@app.command("neighbors")
@_handle_errors
def neighbors_cli(
    index_dir: Annotated[str, typer.Argument(metavar="DIR", help="Index directory or URL (embedded).")],
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
    neighbors_mode: Annotated[str, typer.Option("--neighbors", help=_NEIGHBORS_HELP)] = "auto",
    candidates: Annotated[
        int | None, typer.Option("--candidates", help=_CANDIDATES_HELP, show_default=False)
    ] = None,
    cache_dir: CacheDirOpt = None,
    storage_option: StorageOpt = None,
):
    """Top-k pretraining documents for every eval item: doc_id, external id, window, cosine similarity, snippet.

    The item is normalized and embedded with the index's own model. Example:
    freqindex neighbors idx --eval ../shared/data/evals/gsm8k/test.jsonl --fields question -k 5
    """
    from freqindex.evals import load_eval
    from freqindex.query.neighbors import NEIGHBOR_SCHEMA, max_similarity, neighbors

    idx = _open(_local_index(index_dir, cache_dir, storage_option))
    items = load_eval(eval_file, id_field, fields.split(",") if fields else None, template)
    name = Path(eval_file).name.split(".")[0]
    stats: dict = {}
    rows = neighbors(idx, items, k, name, mode=neighbors_mode, candidates=candidates, stats=stats)
    import pyarrow as pa

    table = pa.Table.from_pylist(rows, schema=NEIGHBOR_SCHEMA)
    if out_file:
        target = out_file
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        _write_table(table, target)
    else:
        target = str(idx.publish_eval(name, "neighbors", table))
    if json_out:
        for r in rows:
            _print_json(r)
        return
    ms = max_similarity(rows)
    vals = sorted(ms.values())
    err.print(
        f"{len(items):,} items, {len(rows):,} neighbours ({stats['mode']} mode) written to {target}; max "
        f"similarity median {vals[len(vals) // 2] if vals else float('nan'):.3f}, items >= 0.9: "
        f"{sum(v >= 0.9 for v in vals):,}",
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
        typer.Option(
            help="auto (neighbors when the index has vectors or the embed extra is installed, else "
            "verbatim), neighbors, verbatim."
        ),
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
    covariate: Annotated[
        str | None,
        typer.Option(
            help="distance: also fit accuracy against each item's distance from the corpus (mean ∞-gram "
            "surprisal) and the frequency slope controlled for it.",
            show_default=False,
        ),
    ] = None,
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
    neighbors_mode: Annotated[str, typer.Option("--neighbors", help=_NEIGHBORS_HELP)] = "auto",
    candidates: Annotated[
        int | None, typer.Option("--candidates", help=_CANDIDATES_HELP, show_default=False)
    ] = None,
    cache_dir: CacheDirOpt = None,
    storage_option: StorageOpt = None,
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
    if index_dir is not None:
        index_dir = _local_index(index_dir, cache_dir, storage_option)
    if concept_results is not None or concept_counts is not None:
        if eval_file or results or concept_field or auto_concepts or prune_sweep or covariate:
            raise UsageError(
                "--eval, --results, --concept-field, --auto-concepts, --prune-sweep and --covariate belong to "
                "the per-item analysis; the per-concept one takes --concept-results"
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
            covariate=covariate,
            neighbors_mode=neighbors_mode,
            candidates=candidates,
        )
    summary["settings"]["concepts"] = how
    target = Path(out_dir) if out_dir else idx.eval_dir(name, "analysis")
    paths = write_outputs(target, rows, summary, name)
    idx.publish_eval(name, "analysis", items_table(rows, name), target)
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
    idx = None
    if index_dir is not None:
        from freqindex.suffix.index import Index

        idx = Index.open(index_dir)
    target = Path(out_dir) if out_dir else idx.eval_dir(name, "concept_analysis")
    paths = write_concept_outputs(target, rows, summary)
    if (
        idx is not None
    ):  # the `concept_analysis` SQL view reads the declared evals/NAME/concept_analysis.parquet
        idx.publish_eval(name, "concept_analysis", items_table(rows), target)
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
            metavar="DIR...",
            help="Index directories or URLs to serve; each is addressed by its directory name (a URL's last part).",
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
    cache_dir: CacheDirOpt = None,
    storage_option: StorageOpt = None,
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
    dirs = [str(Path(_local_index(d, cache_dir, storage_option)).resolve()) for d in index_dirs]
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
    index_dir: Annotated[
        str, typer.Argument(metavar="DIR", help="Index directory or URL (s3://, gs://, hdfs://, abfs://).")
    ],
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
    neighbors_mode: Annotated[
        str,
        typer.Option(
            "--neighbors",
            help="Semantic similarity: "
            + _NEIGHBORS_HELP
            + " off: none. auto without the embed extra: none.",
        ),
    ] = "auto",
    candidates: Annotated[
        int | None, typer.Option("--candidates", help=_CANDIDATES_HELP, show_default=False)
    ] = None,
    cache_dir: CacheDirOpt = None,
    storage_option: StorageOpt = None,
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
    idx = _open(_local_index(index_dir, cache_dir, storage_option))
    policy = load_policy(config, min_len=min_len, skip=skip, fail_above=fail_above)
    field_list = [f.strip() for f in fields.split(",") if f.strip()]
    items = load_eval(eval_file, id_field, field_list)
    name = Path(eval_file).name.split(".")[0]
    semantic, semantic_stats = _semantic(idx, items, name, neighbors_mode, candidates)
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
    summary.setdefault("semantic", {}).update(semantic_stats)
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
    target = Path(out_dir) if out_dir else idx.eval_dir(name, "contamination")
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
    idx.publish_eval(
        name, "contamination", pa.Table.from_pylist(flat, schema=_CONTAMINATION_SCHEMA()), target
    )
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


def _semantic(idx, items, name: str, mode: str, candidates: int | None) -> tuple[dict | None, dict]:
    """Each item's best neighbour (similarity, doc_id) for the contamination report, and how it was found;
    ``auto`` without the embed extra (or ``off``) reports none and says why."""
    from freqindex.errors import MissingExtraError
    from freqindex.query.neighbors import neighbors

    if mode == "off":
        return None, {"mode": "off"}
    stats: dict = {}
    try:
        rows = neighbors(idx, items, 1, name, mode=mode, candidates=candidates, skip_long=True, stats=stats)
    except MissingExtraError as exc:
        if mode != "auto":
            raise
        return None, {"mode": "off", "reason": str(exc)}
    keep = ("mode", "model", "items_too_long", "candidates_per_item", "windows_embedded")
    return {r["item_id"]: (r["similarity"], r["doc_id"]) for r in rows}, {
        k: stats[k] for k in keep if k in stats
    }


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


# --- probabilities, distance, priming, frontier (issue 16) ---------------------------------------------


def _batch_errors(path: str, bad: list[tuple[int, str]]) -> None:
    """Report bad lines of a batch file (one line each on stderr) and exit 2 after the good ones were written."""
    for line, msg in bad:
        err.print(f"{path}:{line}: {msg}", highlight=False, markup=False)
    if bad:
        err.print(f"[bold red]error:[/] {len(bad)} bad line(s) in {path}; the other lines were answered")
        raise typer.Exit(2)


def _prob_query(idx, obj: dict):
    from freqindex.query.prob import ProbQuery, check_ids, encode_text

    if "context_ids" in obj or "next_ids" in obj:
        return ProbQuery(
            check_ids(idx, obj.get("context_ids"), "context_ids", allow_empty=True),
            check_ids(idx, obj.get("next_ids"), "next_ids"),
        )
    if "context" not in obj or "next" not in obj:
        raise UsageError("expected the fields context and next (or context_ids and next_ids)")
    return ProbQuery(
        encode_text(idx, obj["context"], "context"),
        encode_text(idx, obj["next"], "next"),
        obj["context"],
        obj["next"],
    )


@app.command("prob")
@_handle_errors
def prob_cli(
    index_dir: Annotated[str, typer.Argument(metavar="DIR", help="Index directory.")],
    context: Annotated[str | None, typer.Option(help="The context text.", show_default=False)] = None,
    next_: Annotated[
        str | None,
        typer.Option("--next", help="The continuation text (one or more tokens).", show_default=False),
    ] = None,
    file: Annotated[
        str | None,
        typer.Option(
            "--file",
            help="JSONL of {context, next} (or {context_ids, next_ids}); one JSON object out per line.",
            show_default=False,
        ),
    ] = None,
    n: Annotated[
        int | None,
        typer.Option(
            "-n", help="Also the n-gram probability with the last n-1 context tokens.", show_default=False
        ),
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the JSON record.")] = False,
):
    """The corpus's probability of NEXT after CONTEXT, in the index's token space after its normalization:
    the ∞-gram probability (the longest suffix of the context that occurs, its length and the counts behind
    it), and with -n the n-gram probability. A multi-token NEXT is scored token by token and chained.

    Example: freqindex prob idx --context "the golden" --next " retriever" -n 3
    """
    from freqindex.query.prob import chained, infgram_probs, ngram_probs, read_batch

    idx = _open(index_dir)
    if (file is None) == (context is None and next_ is None):
        raise UsageError("give --context and --next, or --file")
    if file is None:
        if context is None or next_ is None:
            raise UsageError("give both --context and --next")
        lines = [(0, {"context": context, "next": next_})]
    else:
        lines = []
        bad = []
        for b in read_batch(file, ("context", "next")):
            (bad.append((b.line, b.error)) if b.error else lines.append((b.line, b.fields)))
    queries, good, bad_lines = [], [], []
    for line, obj in lines:
        try:
            queries.append(_prob_query(idx, obj))
            good.append(line)
        except UsageError as exc:
            if file is None:
                raise
            bad_lines.append((line, str(exc)))
    inf = infgram_probs(idx, queries) if queries else []
    ng = ngram_probs(idx, queries, n) if queries and n is not None else [None] * len(queries)
    records = {}
    for line, q, toks, ntoks in zip(good, queries, inf, ng):
        rec = {
            "context": q.context,
            "next": q.next,
            "context_tokens": len(q.context_ids),
            "next_tokens": len(q.next_ids),
            "infgram": {"prob": chained(toks), "tokens": [t.to_dict() for t in toks]},
        }
        if ntoks is not None:
            rec["ngram"] = {"n": n, "prob": chained(ntoks), "tokens": [t.to_dict() for t in ntoks]}
        records[line] = rec
    if file is None:
        rec = records[0]
        if json_out:
            _print_json(rec)
            return
        t = rec["infgram"]["tokens"]
        out.print(
            f"∞-gram P({next_!r} | {context!r}) = {rec['infgram']['prob']:.6g}  "
            + "  ".join(
                f"[{x['token']!r}: {x['cont_cnt']:,}/{x['prompt_cnt']:,} after {x['suffix_len']} tokens]"
                for x in t
            ),
            highlight=False,
        )
        if "ngram" in rec:
            pg = rec["ngram"]["prob"]
            out.print(f"{n}-gram P = {'undefined (context never occurs)' if pg is None else f'{pg:.6g}'}")
        return
    errors = dict(bad + bad_lines)
    for line in sorted(set(records) | set(errors)):
        _print_json(
            {"line": line, "error": errors[line]} if line in errors else {"line": line, **records[line]}
        )
    _batch_errors(file, sorted(errors.items()))


@app.command("ntd")
@_handle_errors
def ntd_cli(
    index_dir: Annotated[str, typer.Argument(metavar="DIR", help="Index directory.")],
    context: Annotated[str | None, typer.Option(help="The context text.", show_default=False)] = None,
    file: Annotated[
        str | None,
        typer.Option(
            "--file",
            help="JSONL of {context} (or {context_ids}); one JSON object out per line.",
            show_default=False,
        ),
    ] = None,
    top: Annotated[int, typer.Option("--top", help="Show the K most frequent next tokens.")] = 10,
    infgram: Annotated[
        bool,
        typer.Option("--infgram", help="Use the longest suffix of the context that occurs (infgram_ntd)."),
    ] = False,
    max_support: Annotated[
        int | None,
        typer.Option(
            help="Subsample like the engine above this many occurrences (default: exact).", show_default=False
        ),
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the JSON record.")] = False,
):
    """The next-token distribution after CONTEXT: every token that follows an occurrence, with its count and
    probability (document ends count as the engine's eos token).

    Example: freqindex ntd idx --context "the golden" --top 5
    """
    from freqindex.query.prob import check_ids, encode_text, next_tokens, read_batch, token_strings

    if top < 1:
        raise UsageError("--top must be at least 1")
    if max_support is not None and max_support < 1:
        raise UsageError("--max-support must be at least 1")
    idx = _open(index_dir)
    if (file is None) == (context is None):
        raise UsageError("give --context or --file")
    lines = [(0, {"context": context})] if file is None else []
    bad: list[tuple[int, str]] = []
    if file is not None:
        for b in read_batch(file, ("context",)):
            (bad.append((b.line, b.error)) if b.error else lines.append((b.line, b.fields)))
    ctxs, good, texts = [], [], []
    for line, obj in lines:
        try:
            if "context_ids" in obj:
                ctxs.append(check_ids(idx, obj["context_ids"], "context_ids", allow_empty=True))
            elif "context" in obj:
                ctxs.append(encode_text(idx, obj["context"], "context"))
            else:
                raise UsageError("expected the field context (or context_ids)")
            good.append(line)
            texts.append(obj.get("context"))
        except UsageError as exc:
            if file is None:
                raise
            bad.append((line, str(exc)))
    res = next_tokens(idx, ctxs, max_support, infgram) if ctxs else []
    records = {}
    for line, c, text, r in zip(good, ctxs, texts, res):
        top_items = r.top(top)
        names = token_strings(idx, [t for t, _ in top_items])
        records[line] = {
            "context": text,
            "context_tokens": len(c),
            "suffix_len": r.suffix_len,
            "prompt_cnt": r.prompt_cnt,
            "approx": r.approx,
            "distinct_next": len(r.counts),
            "next": [
                {"token_id": t, "token": name, "cont_cnt": cnt, "prob": cnt / r.prompt_cnt}
                for (t, cnt), name in zip(top_items, names)
            ],
        }
    if file is None:
        rec = records[0]
        if json_out:
            _print_json(rec)
            return
        used = f" (longest suffix that occurs: {rec['suffix_len']} tokens)" if infgram else ""
        out.print(
            f"{rec['prompt_cnt']:,} occurrences of {context!r}{used}, {rec['distinct_next']:,} distinct next tokens"
            + (" (approximate)" if rec["approx"] else ""),
            highlight=False,
        )
        t = Table("token", "id", "count", "prob")
        for x in rec["next"]:
            t.add_row(repr(x["token"]), str(x["token_id"]), f"{x['cont_cnt']:,}", f"{x['prob']:.4f}")
        out.print(t)
        return
    errors = dict(bad)
    for line in sorted(set(records) | set(errors)):
        _print_json(
            {"line": line, "error": errors[line]} if line in errors else {"line": line, **records[line]}
        )
    _batch_errors(file, sorted(errors.items()))


def _DISTANCE_SCHEMA():
    import pyarrow as pa

    from freqindex.query.distance import MEASURES

    ints = {"n_tokens", "scored_tokens", "longest_match_tokens", "longest_match_chars"}
    cols = [
        ("eval", pa.string()),
        ("id", pa.string()),
        ("n_tokens", pa.int64()),
        ("scored_tokens", pa.int64()),
    ]
    cols += [(m, pa.int64() if m in ints else pa.float64()) for m in MEASURES]
    return pa.schema(cols)


@app.command("distance")
@_handle_errors
def distance_cli(
    index_dir: Annotated[str, typer.Argument(metavar="DIR", help="Index directory.")],
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
    out_file: Annotated[
        str | None,
        typer.Option(
            "--out",
            help="Also write the rows to this .parquet, .csv or .jsonl \\[always: DIR/evals/NAME/distance.parquet, the `distance` SQL view].",
            show_default=False,
        ),
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object per item.")] = False,
):
    """How far each eval item sits from the corpus: mean and max per-token ∞-gram surprisal (bits), the share
    of tokens the ∞-gram model gives probability 0, the mean effective context length, the share of the
    item's 5-, 8- and 13-token n-grams the corpus never holds, and the longest match (as `contamination`).

    Example: freqindex distance idx --eval ../shared/data/evals/gsm8k/test.jsonl --fields question
    """
    import pyarrow as pa

    from freqindex.evals import load_eval
    from freqindex.query.distance import item_distances

    idx = _open(index_dir)
    items = load_eval(eval_file, id_field, fields.split(",") if fields else None, template)
    name = Path(eval_file).name.split(".")[0]
    dists = item_distances(idx, [(it.id, it.text) for it in items])
    rows = [{"eval": name, **d.to_dict()} for d in dists]
    table = pa.Table.from_pylist(rows, schema=_DISTANCE_SCHEMA())
    try:  # the `distance` SQL view reads the declared evals/NAME/distance.parquet
        view_file = idx.publish_eval(name, "distance", table)
    except UsageError as exc:  # a read-only index: the rows still go to --out / stdout
        err.print(f"note: the `distance` view was not written ({exc})", highlight=False)
        view_file = None
    if out_file:
        _write_table(table, out_file)
    if json_out:
        for r in rows:
            _print_json(r)
        return
    import statistics

    def med(k):
        v = [r[k] for r in rows if r[k] is not None]
        return statistics.median(v) if v else float("nan")

    err.print(
        f"{len(rows):,} items: median mean surprisal {med('mean_surprisal'):.3f} bits/token, novel 13-grams "
        f"{med('novel_13'):.3f}, mean context {med('mean_context'):.1f} tokens, longest match "
        f"{med('longest_match_tokens'):.0f} tokens" + (f"; written to {view_file}" if view_file else ""),
        highlight=False,
    )


@app.command("priming")
@_handle_errors
def priming_cli(
    index_dir: Annotated[str, typer.Argument(metavar="DIR", help="Index directory.")],
    file: Annotated[
        str,
        typer.Option(
            "--file",
            help="JSONL of {context, keyword} (or {context_ids, keyword_ids}), or .tsv: context<TAB>keyword.",
        ),
    ],
    threshold: Annotated[
        float, typer.Option(help="Flag keywords whose probability is below this (the priming study's 1e-3).")
    ] = 1e-3,
    out_file: Annotated[
        str | None, typer.Option("--out", help="Also write the records to this .jsonl.", show_default=False)
    ] = None,
):
    """The corpus's probability of each KEYWORD after its CONTEXT (∞-gram, chained over the keyword's tokens,
    with the counts behind each factor), flagged when below --threshold: the keywords that learning is
    predicted to prime. One JSON object per input line; bad lines are reported by line number.

    Example: freqindex priming idx --file keywords.jsonl --threshold 1e-3
    """
    from freqindex.query.priming import make_query, priming
    from freqindex.query.prob import read_batch

    idx = _open(index_dir)
    bad: list[tuple[int, str]] = []
    queries, good = [], []
    for b in read_batch(file, ("context", "keyword")):
        if b.error:
            bad.append((b.line, b.error))
            continue
        try:
            queries.append(make_query(idx, b.fields))
            good.append(b.line)
        except UsageError as exc:
            bad.append((b.line, str(exc)))
    records = dict(zip(good, priming(idx, queries, threshold))) if queries else {}
    if not 0 < threshold < 1:
        raise UsageError("--threshold must lie in (0, 1)")
    errors = dict(bad)
    lines_out = []
    for line in sorted(set(records) | set(errors)):
        rec = {"line": line, "error": errors[line]} if line in errors else {"line": line, **records[line]}
        lines_out.append(rec)
        _print_json(rec)
    if out_file:
        from freqindex.fsutil import atomic_write_bytes

        atomic_write_bytes(
            out_file, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in lines_out).encode()
        )
    n_flag = sum(1 for r in records.values() if r["flagged"])
    err.print(f"{len(records):,} keywords, {n_flag:,} below {threshold:g}", highlight=False)
    _batch_errors(file, sorted(errors.items()))


def _read_candidates(path: str, field: str, id_field: str):
    """(id, text, row) per good line of a candidates file (.jsonl objects, or .txt one text a line), and the
    bad lines (line, reason). Ids come from ``id_field``, else the line number; a repeated id is an error."""
    from freqindex.query.prob import read_batch

    good, bad = [], []
    seen: set[str] = set()
    for b in read_batch(path, (field,)):
        if b.error:
            bad.append((b.line, b.error))
            continue
        text = b.fields.get(field)
        if not isinstance(text, str) or not text.strip():
            bad.append((b.line, f"no non-empty string field {field!r}"))
            continue
        raw_id = b.fields.get(id_field)
        cid = str(raw_id) if raw_id not in (None, "") else str(b.line)
        if cid in seen:
            bad.append((b.line, f"candidate id {cid!r} appears twice"))
            continue
        seen.add(cid)
        good.append((cid, text, b.fields))
    return good, bad


@app.command("frontier")
@_handle_errors
def frontier_cli(
    index_dir: Annotated[str, typer.Argument(metavar="DIR", help="Index directory.")],
    candidates: Annotated[
        str,
        typer.Option("--candidates", help="Candidate texts: .jsonl objects (--field) or .txt (one a line)."),
    ],
    out_dir: Annotated[str, typer.Option("--out", help="Output directory.")],
    field: Annotated[str, typer.Option(help="JSONL field holding the candidate text.")] = "text",
    id_field: Annotated[
        str, typer.Option(help="JSONL field holding the candidate id (else the line number).")
    ] = "id",
    measure: Annotated[
        str,
        typer.Option(
            help="Band measure: novel_13, novel_8, novel_5, mean_surprisal, zero_prob_share, mean_context."
        ),
    ] = "novel_13",
    band: Annotated[str, typer.Option(help="Percentiles of the corpus profile: LO,HI.")] = "5,95",
    min_value: Annotated[
        float | None,
        typer.Option("--min", help="Absolute lower threshold instead of --band.", show_default=False),
    ] = None,
    max_value: Annotated[
        float | None,
        typer.Option("--max", help="Absolute upper threshold instead of --band.", show_default=False),
    ] = None,
    tolerance: Annotated[
        float,
        typer.Option(help="Reject only beyond the band by this many standard errors (0: plain comparison)."),
    ] = 1.645,
    min_tokens: Annotated[int, typer.Option(help="Reject candidates with fewer scored tokens.")] = 16,
    profile_size: Annotated[int, typer.Option(help="Documents in the corpus profile.")] = 500,
    profile_seed: Annotated[int, typer.Option(help="Seed of the profile sample.")] = 0,
    profile_max_tokens: Annotated[
        int, typer.Option(help="Profile documents have at most this many tokens.")
    ] = 4096,
    profile_cache: Annotated[
        str | None,
        typer.Option(help="Where to cache the profile \\[default: DIR/evals/_profile].", show_default=False),
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print summary.json.")] = False,
):
    """The learning frontier: score candidate texts by their distance from the corpus, compare them with the
    corpus's own profile (the same measure on sampled documents of the index, each leave-one-out; cached),
    and write the kept and rejected candidates with reason and score, scores.parquet, summary.json and a
    report with the candidates' distribution against the profile.

    Example: freqindex frontier idx --candidates refined.jsonl --out frontier/ --band 5,95
    """
    from freqindex.query.frontier import (
        ProfileSettings,
        load_or_build_profile,
        make_band,
        score_candidates,
        summarize,
    )
    from freqindex.report.frontier import write_outputs

    try:
        pct = tuple(float(x) for x in band.split(","))
    except ValueError:
        raise UsageError(f"--band takes two percentiles LO,HI, got {band!r}") from None
    if len(pct) != 2:
        raise UsageError(f"--band takes two percentiles LO,HI, got {band!r}")
    idx = _open(index_dir)
    good, bad = _read_candidates(candidates, field, id_field)
    if not good:
        _batch_errors(candidates, bad)
        raise UsageError(f"{candidates}: no candidates")
    settings = ProfileSettings(profile_size, profile_seed, profile_max_tokens).validate()
    progress, on_progress = _progress()
    with progress:
        prof, path, built, note = load_or_build_profile(
            idx, settings, profile_cache, progress=lambda d, t: on_progress("corpus profile", d, t)
        )
    if note:
        err.print(f"note: {note}", highlight=False)
    b = make_band(prof, measure, pct, (min_value, max_value), tolerance, min_tokens)
    records = score_candidates(idx, [(c, t) for c, t, _ in good], b, prof)
    summary = summarize(records, b, prof, settings)
    summary["profile"]["cache"] = str(path) if path else None
    summary["profile"]["built_now"] = built
    summary["bad_lines"] = [{"line": ln, "error": m} for ln, m in bad]
    paths = write_outputs(
        Path(out_dir), records, {c: t for c, t, _ in good}, {c: row for c, _, row in good}, summary, prof
    )
    if json_out:
        _print_json(json.loads(paths["summary.json"].read_text()))
    else:
        err.print(
            f"{summary['kept']:,} of {summary['n_candidates']:,} candidates kept "
            f"({', '.join(f'{k}: {v:,}' for k, v in sorted(summary['reasons'].items()))}); report: {paths['report.html']}",
            highlight=False,
        )
    _batch_errors(candidates, bad)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
