"""Commands that write an index with Spark: `build`, `tag`, `embed` (their run functions live in jobs/)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from freqindex.config import BuildConfig, EmbedConfig, TagConfig

from .common import (
    DryRun,
    IndexDir,
    JsonOut,
    Master,
    StorageOptions,
    app,
    config_option,
    dry_run_exit,
    err,
    fields_of,
    handle_errors,
    note,
    print_json,
    progress_bar,
    resolve,
)

_B = BuildConfig
Inputs = Annotated[
    list[str] | None,
    typer.Argument(
        help="Files, directories or globs, local or URLs (s3://, gs://, hdfs://, abfs://): "
        ".jsonl[.gz|.zst], .parquet, .txt, .tsv (id<TAB>text).",
        show_default=False,
    ),
]
Output = Annotated[
    str | None,
    typer.Option(
        "--output",
        "-o",
        help="Index directory, or URL (s3://bucket/idx, gs://, hdfs://, abfs://).",
        show_default=False,
    ),
]
Format = Annotated[str, typer.Option("--format", help="auto | jsonl | parquet | text | tsv.")]
TextField = Annotated[str, typer.Option(help="JSON/Parquet field holding the text.")]
BuildIdField = Annotated[
    str | None,
    typer.Option(
        help="Field holding an external id \\[default: 'id' when present; else file and line identify a document]."
    ),
]
TextPerLine = Annotated[
    bool,
    typer.Option(
        "--text-per-line",
        help=".txt inputs: one document per line (blank lines separate) instead of one per file.",
    ),
]
TagsField = Annotated[
    str | None,
    typer.Option(
        help="Image-caption corpora: a list-of-strings field of image tags, kept for concept tagging.",
        show_default=False,
    ),
]
Tokenizer = Annotated[
    str,
    typer.Option(
        help="'bytes' (UTF-8 bytes, u8) or a Hugging Face tokenizer: local tokenizer.json / directory, or hub name."
    ),
]
Normalize = Annotated[
    str | None,
    typer.Option(
        help="simple | none \\[default: simple with bytes, none with a Hugging Face tokenizer].",
        show_default=False,
    ),
]
Shards = Annotated[
    int | None,
    typer.Option(help="Number of shards \\[default: as many as --shard-size asks for].", show_default=False),
]
ShardSize = Annotated[
    str | None,
    typer.Option(
        "--shard-size",
        help="Target shard size in token bytes, e.g. 2GB, 512MiB; shards = ceil(tokens / size), whatever "
        "the cluster \\[default: 2GB: as large as one task sorts with libdivsufsort's 32-bit entries].",
        show_default=False,
    ),
]
Strict = Annotated[
    bool, typer.Option("--strict", help="Stop at the first bad record (exit 2) instead of quarantining it.")
]
Conf = Annotated[
    list[str] | None,
    typer.Option("--conf", help="Extra Spark setting KEY=VALUE (repeatable).", show_default=False),
]
ChunkMb = Annotated[
    int | None,
    typer.Option(help="Split uncompressed line files into chunks of this many MiB.", show_default=False),
]
SaMemGib = Annotated[
    int,
    typer.Option(
        help="Memory in GiB the suffix-array builds running at once on one executor may use (a shard that "
        "does not fit is built by infini-gram's bounded-memory indexer)."
    ),
]
Overwrite = Annotated[
    bool, typer.Option("--overwrite", help="Replace an existing index of other input/settings.")
]
BuildConcepts = Annotated[
    str | None,
    typer.Option(
        "--concepts",
        help="Also tag the index with this concept vocabulary (see `freqindex tag`).",
        show_default=False,
    ),
]
BuildEmbed = Annotated[
    bool, typer.Option("--embed", help="Also embed the index with the default model (see `freqindex embed`).")
]
AppendTo = Annotated[
    str | None,
    typer.Option(
        "--append-to",
        help="Add the INPUTs to this index (path or URL) as a new generation of shards, with its settings; "
        "inputs it already holds (same path, size, sha256) are skipped.",
        show_default=False,
    ),
]
ScratchDir = Annotated[
    str | None,
    typer.Option(
        help="Executor-local directory where tasks build before uploading to an --output URL "
        "\\[default: Spark's local directories, else the temp directory].",
        show_default=False,
    ),
]
BuildFile = config_option("build")
TagFile = config_option("tag")
EmbedFile = config_option("embed")
_SUMMARY_KEYS = (
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
)


@app.command("build")
@handle_errors
def build_cli(
    ctx: typer.Context,
    inputs: Inputs = None,
    output: Output = None,
    format: Format = _B.format,
    text_field: TextField = _B.text_field,
    id_field: BuildIdField = _B.id_field,
    text_per_line: TextPerLine = _B.text_per_line,
    tags_field: TagsField = _B.tags_field,
    tokenizer: Tokenizer = _B.tokenizer,
    normalize: Normalize = _B.normalize,
    shards: Shards = _B.shards,
    shard_size: ShardSize = None,
    strict: Strict = _B.strict,
    master: Master = _B.master,
    conf: Conf = None,
    config: BuildFile = None,
    chunk_mb: ChunkMb = None,
    sa_mem_gib: SaMemGib = _B.sa_mem_gib,
    overwrite: Overwrite = False,
    append_to: AppendTo = None,
    storage_option: StorageOptions = None,
    scratch_dir: ScratchDir = _B.scratch_dir,
    concepts: BuildConcepts = None,
    embed: BuildEmbed = False,
    dry_run: DryRun = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print a machine-readable build summary.")] = False,
) -> None:
    """Index a corpus: Spark reads, validates and tokenizes it, then builds infini-gram suffix arrays.

    Malformed records are quarantined (file, line, reason) and counted; the build goes on. The index is
    written to a temporary directory and renamed into place when complete, so a killed build never leaves
    an index that looks complete: run the same command again and it resumes.

    Inputs and --output may be URLs; then no filesystem is shared: tasks read their own chunks, build in
    local scratch and upload, and manifest.json is written last.

    Example: freqindex build corpus/ --output idx --format jsonl --shards 2

    Example: freqindex build s3://bucket/dump/ -o s3://bucket/idx --storage-option endpoint_url=http://minio:9000
    """
    cfg = resolve(
        ctx,
        BuildConfig,
        config=config,
        section="build",
        spark_conf=conf,
        storage_options=storage_option,
        chunk_bytes=chunk_mb * 1024 * 1024 if chunk_mb else None,
        **fields_of(BuildConfig, locals()),
    )
    cfg.check_follow_ups(concepts, embed, overwrite)
    dry_run_exit(cfg, dry_run)
    from jobs.build_index import run_build

    if not json_out:
        note(
            f"building {cfg.output} from {len(cfg.inputs)} input(s) on {cfg.master} "
            f"(tokenizer {cfg.tokenizer}, normalization {cfg.normalization})"
        )
    progress, on_progress = progress_bar(enabled=not json_out)
    with progress:
        summary = run_build(
            cfg,
            overwrite=overwrite,
            concepts=concepts,
            embed=embed,
            on_progress=on_progress,
            on_message=None if json_out else note,
        )
    if json_out:
        print_json(summary)
    else:
        _print_build_summary(summary)


def _print_build_summary(summary: dict) -> None:
    if summary["status"] in ("built", "appended"):
        t = Table(show_header=False, box=None)
        for k in (*(("generation",) if summary["status"] == "appended" else ()), *_SUMMARY_KEYS):
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
        note(f"tagged {c['concepts']:,} concepts: {c['doc_concept_pairs']:,} (document, concept) pairs")
    if "vectors" in summary:
        v = summary["vectors"]
        note(f"embedded {v['documents']:,} documents as {v['vectors']:,} vectors ({v['factory']})")


_T = TagConfig
TagIndexDir = Annotated[
    str, typer.Argument(metavar="DIR", help="Index directory (bytes tokenizer, simple normalization).")
]
Vocabulary = Annotated[
    str,
    typer.Option(
        "--concepts",
        help="Vocabulary: JSON benchmark->names, .txt, .csv/.jsonl/.parquet with 'concept' \\[+ 'aliases'], or an eval set with --label-field.",
        show_default=False,
    ),
]
Exact = Annotated[bool, typer.Option("--exact", help="No singular/plural inflections.")]
LabelField = Annotated[
    str | None,
    typer.Option(help="Take the concepts from this label field of an eval set.", show_default=False),
]


@app.command("tag")
@handle_errors
def tag_cli(
    ctx: typer.Context,
    index_dir: TagIndexDir = "",
    concepts: Vocabulary = "",
    exact: Exact = _T.exact,
    label_field: LabelField = _T.label_field,
    master: Master = _T.master,
    config: TagFile = None,
    dry_run: DryRun = False,
    json_out: JsonOut = False,
) -> None:
    """Tag every document with concept matches (Aho-Corasick, whole words) in Spark.

    Writes concepts/vocab.parquet and concepts/hits/ into the index (its other files stay untouched) and
    updates the manifest atomically. The `concept_*` views of `freqindex sql` read them.

    Example: freqindex tag idx --concepts ../shared/data/concepts/clip_benchmark_en_classnames.json
    """
    cfg = resolve(ctx, TagConfig, config=config, section="tag", **fields_of(TagConfig, locals()))
    dry_run_exit(cfg, dry_run)
    from jobs.tag_concepts import run_tag

    progress, on_progress = progress_bar()
    with progress:
        summary = run_tag(cfg, on_progress=on_progress)
    for w in summary["warnings"]:
        err.print(f"[yellow]warning:[/] {w}", highlight=False)
    if json_out:
        print_json(summary)
    else:
        note(
            f"tagged {summary['concepts']:,} concepts: {summary['doc_concept_pairs']:,} (document, concept) "
            f"pairs in {summary['seconds']} s"
        )


_E = EmbedConfig
Model = Annotated[
    str, typer.Option(help="minilm-v1 (offline, the embed extra) | st:PATH_OR_NAME | clip:MODEL@CHECKPOINT.")
]
ChunkTokens = Annotated[
    str,
    typer.Option(
        help="Window sizes in model tokens (comma-separated): every document gets windows of each size."
    ),
]
Stride = Annotated[
    int | None,
    typer.Option(help="Tokens between window starts \\[default: half of each window].", show_default=False),
]
FaissFactory = Annotated[
    str | None,
    typer.Option(
        help="FAISS factory string \\[default: by size: Flat, IVF-Flat, IVF-SQ8].", show_default=False
    ),
]
Dtype = Annotated[str, typer.Option(help="float32 | float16 vector shards.")]
Precomputed = Annotated[
    str | None,
    typer.Option(
        help="Use vectors shipped with the corpus: .npy file(s) aligned with doc_id, or Parquet with --vector-field and --id-field matched to external ids; --model then only embeds queries.",
        show_default=False,
    ),
]
VectorField = Annotated[str, typer.Option(help="Parquet list<float> column of --precomputed.")]
PrecomputedIdField = Annotated[
    str, typer.Option(help="Parquet id column of --precomputed (matched to external ids).")
]
ImageRoot = Annotated[
    str | None,
    typer.Option(
        help="Embed images instead (clip:MODEL only): each document's image is IMAGE_ROOT/<external id up to '#'>, as in caption dumps.",
        show_default=False,
    ),
]

Device = Annotated[
    str,
    typer.Option(
        help="auto | cpu | cuda: where each task embeds; auto uses the GPU of the executor running the task when torch sees one (fp16 there), else its CPU."
    ),
]


@app.command("embed")
@handle_errors
def embed_cli(
    ctx: typer.Context,
    index_dir: IndexDir = "",
    model: Model = _E.model,
    chunk_tokens: ChunkTokens = ",".join(map(str, _E.chunk_tokens)),
    stride: Stride = _E.stride,
    faiss_factory: FaissFactory = _E.faiss_factory,
    dtype: Dtype = _E.dtype,
    precomputed: Precomputed = _E.precomputed,
    vector_field: VectorField = _E.vector_field,
    id_field: PrecomputedIdField = _E.id_field,
    image_root: ImageRoot = _E.image_root,
    master: Master = _E.master,
    device: Device = _E.device,
    config: EmbedFile = None,
    dry_run: DryRun = False,
    json_out: JsonOut = False,
) -> None:
    """Embed every document (every window of a long one) in Spark and build a FAISS index (cosine similarity).

    Writes vectors/ into the index (its other files stay untouched) and updates the manifest atomically.

    Windows of several sizes (default 32, 64 and 128 tokens, each every half window) because an eval item
    can sit anywhere inside a long document; `--chunk-tokens 128` is cheaper.

    Interrupted (killed, a failed task)? Run the same command again: the blocks of documents already
    embedded are kept in INDEX/.vectors.partial/ and only the rest are embedded. Other settings start over.

    Example: freqindex embed idx --chunk-tokens 64,128
    """
    cfg = resolve(ctx, EmbedConfig, config=config, section="embed", **fields_of(EmbedConfig, locals()))
    dry_run_exit(cfg, dry_run)
    from jobs.embed_index import run_embed

    progress, on_progress = progress_bar()
    with progress:
        summary = run_embed(cfg, on_progress=on_progress)
    if json_out:
        print_json(summary)
    else:
        resumed = summary.get("resumed_tasks", 0)
        note(
            f"embedded {summary['documents']:,} documents as {summary['vectors']:,} vectors "
            f"({summary['factory']}) in {summary['seconds']} s"
            + (f"; {resumed} of {summary['tasks']} tasks were done by an interrupted run" if resumed else "")
        )
