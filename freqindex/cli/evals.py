"""Commands over an eval set: `neighbors`, `contamination`, `analyze`."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated

import typer

from freqindex.commands.analyze import AnalyzeConfig, AnalyzeOutcome, run_analyze
from freqindex.commands.contamination import ContaminationConfig, run_contamination
from freqindex.commands.neighbors import NeighborsConfig, run_neighbors
from freqindex.contamination.check import Policy, parse_definitions

from .common import (
    CacheDir,
    DryRun,
    EvalFile,
    IdField,
    IndexLocation,
    StorageOptions,
    app,
    config_option,
    dry_run_exit,
    err,
    fields_of,
    handle_errors,
    local_index,
    note,
    print_json,
    progress_bar,
    resolve,
    stage_spinner,
)

_N = NeighborsConfig
ItemFields = Annotated[
    str | None,
    typer.Option(help="Fields that make up an item, joined by a newline (a,b).", show_default=False),
]
Template = Annotated[
    str | None,
    typer.Option(help="Item text as a template, e.g. '{question}\\n{answer}'.", show_default=False),
]
NeighborsOut = Annotated[
    str | None,
    typer.Option(
        "--out",
        help="Parquet or JSONL \\[default: DIR/evals/NAME/neighbors.parquet, the `neighbors` SQL view].",
        show_default=False,
    ),
]
NeighborsFile = config_option("neighbors")
_NEIGHBORS_HELP = (
    "auto (exhaustive when the index has vectors, else candidates) | exhaustive (the FAISS index of "
    "`freqindex embed`) | candidates (embed only the windows of each item's candidate documents, found "
    "in the suffix arrays; no `embed` needed)."
)
NeighborsMode = Annotated[str, typer.Option("--neighbors", help=_NEIGHBORS_HELP)]
Candidates = Annotated[
    int | None,
    typer.Option(
        "--candidates",
        help="Candidate documents per item in candidates mode \\[default: 32].",
        show_default=False,
    ),
]


@app.command("neighbors")
@handle_errors
def neighbors_cli(
    ctx: typer.Context,
    index_dir: Annotated[str, typer.Argument(metavar="DIR", help="Index directory or URL (embedded).")] = "",
    eval_file: EvalFile = "",
    fields: ItemFields = None,
    template: Template = None,
    id_field: IdField = _N.id_field,
    k: Annotated[int, typer.Option("-k", help="Documents per item.")] = _N.k,
    out_file: NeighborsOut = None,
    config: NeighborsFile = None,
    dry_run: DryRun = False,
    json_out: Annotated[
        bool, typer.Option("--json", help="Print one JSON object per (item, document).")
    ] = False,
    neighbors: NeighborsMode = _N.neighbors,
    candidates: Candidates = None,
    cache_dir: CacheDir = None,
    storage_option: StorageOptions = None,
) -> None:
    """Top-k pretraining documents for every eval item: doc_id, external id, window, cosine similarity, snippet.

    The item is normalized and embedded with the index's own model. Example:
    freqindex neighbors idx --eval ../shared/data/evals/gsm8k/test.jsonl --fields question -k 5
    """
    cfg = resolve(
        ctx, NeighborsConfig, config=config, section="neighbors", **fields_of(NeighborsConfig, locals())
    )
    dry_run_exit(cfg, dry_run)
    res = run_neighbors(replace(cfg, index_dir=local_index(cfg.index_dir, cache_dir, storage_option)))
    if json_out:
        for r in res.rows:
            print_json(r)
        return
    median = res.median_max_similarity if res.median_max_similarity is not None else float("nan")
    note(
        f"{res.n_items:,} items, {len(res.rows):,} neighbours ({res.mode} mode) written to {res.written}; max "
        f"similarity median {median:.3f}, items >= 0.9: {res.items_at_least_0_9:,}"
    )


_C = ContaminationConfig
_P = Policy
CheckFields = Annotated[
    str, typer.Option(help="Fields to check, each on its own (question or question,answer).")
]
ContaminationOut = Annotated[
    str | None,
    typer.Option(
        "--out", help="Output directory \\[default: DIR/evals/NAME/contamination].", show_default=False
    ),
]
FailAbove = Annotated[
    float | None, typer.Option(help="Gate: exit 1 when the dirty fraction exceeds this.", show_default=False)
]
Results = Annotated[
    str | None,
    typer.Option(
        help="Per-item model results (long: id,model,correct; or GSM8K's wide layout) for the impact table.",
        show_default=False,
    ),
]
PolicyFile = config_option(
    "contamination",
    "the policy: min_len, skip, clean_below, dirty_at, boilerplate_ceiling, fail_above, \\[fields.NAME] overrides "
    "(top level or a \\[contamination] table)",
)
MinLen = Annotated[
    int | None,
    typer.Option(
        help="Minimum match length in tokens \\[default: 50 for bytes, 13 for HF tokens].", show_default=False
    ),
]
Skip = Annotated[int, typer.Option(help="Bridge up to this many mismatching tokens between matches.")]
Definitions = Annotated[
    str,
    typer.Option(
        help="Classic definitions to report, by name: gpt3, palm, ig_mini (comma-separated) or all."
    ),
]


@app.command("contamination")
@handle_errors
def contamination_cli(
    ctx: typer.Context,
    index_dir: IndexLocation,
    eval_file: EvalFile,
    fields: CheckFields = ",".join(_C.fields),
    id_field: IdField = _C.id_field,
    out_dir: ContaminationOut = None,
    fail_above: FailAbove = None,
    results: Results = None,
    config: PolicyFile = None,
    min_len: MinLen = None,
    skip: Skip = _P.skip,
    definitions: Definitions = "all",
    dry_run: DryRun = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print summary.json.")] = False,
    neighbors: Annotated[
        str,
        typer.Option(
            "--neighbors",
            help="Semantic similarity: "
            + _NEIGHBORS_HELP
            + " off: none. auto without the embed extra: none.",
        ),
    ] = "auto",
    candidates: Candidates = None,
    cache_dir: CacheDir = None,
    storage_option: StorageOptions = None,
) -> None:
    """Is this eval set in this corpus? Exact verbatim metrics per item from the suffix arrays, every
    standard definition (GPT-3, PaLM, 50-character / infini-gram mini), semantic similarity when the index
    has vectors, evidence for each hit, a report, and a CI gate.

    Example: freqindex contamination idx --eval test.jsonl --fields question --fail-above 0.01
    """
    policy = resolve(
        ctx, Policy, config=config, section="contamination", min_len=min_len, skip=skip, fail_above=fail_above
    )
    definitions = parse_definitions(definitions)
    cfg = resolve(ctx, ContaminationConfig, **fields_of(ContaminationConfig, locals()))  # with the policy
    dry_run_exit(cfg, dry_run)
    cfg = replace(cfg, index_dir=local_index(cfg.index_dir, cache_dir, storage_option))
    progress, on_progress = progress_bar()
    with progress:
        res = run_contamination(cfg, progress=on_progress)
    s = res.summary
    if json_out:
        print_json(s)
    else:
        b = s["buckets"]
        note(
            f"{s['n_items']:,} items: {b['dirty']} dirty, {b['suspicious']} suspicious, {b['clean']} clean, "
            f"{b['uncheckable']} uncheckable (dirty fraction {s['dirty_fraction']:.4f}); report: "
            f"{res.paths['report.html']}"
        )
    if res.gate_failed:
        err.print(
            f"[bold red]gate failed:[/] dirty fraction {s['dirty_fraction']:.4f} exceeds {cfg.policy.fail_above}",
            highlight=False,
        )
        raise typer.Exit(1)


_A = AnalyzeConfig
AnalyzeIndexDir = Annotated[
    str | None,
    typer.Argument(
        metavar="DIR",
        help="Index directory (--normalize simple; embedded for neighbour similarity). Not needed with "
        "--concept-counts.",
        show_default=False,
    ),
]
AnalyzeEval = Annotated[
    str | None,
    typer.Option("--eval", help="Eval set: .jsonl, .json, .csv or .parquet.", show_default=False),
]
AnalyzeResults = Annotated[
    str | None,
    typer.Option(
        help="Per-item model results: long (id, model, correct|score) or GSM8K's wide layout.",
        show_default=False,
    ),
]
AnalyzeOut = Annotated[
    str | None,
    typer.Option(
        "--out",
        help="Output directory \\[default: DIR/evals/NAME/analysis; per concept: DIR/evals/NAME/concept_analysis].",
        show_default=False,
    ),
]
ConceptField = Annotated[
    str | None,
    typer.Option(help="Item field holding its concept(s) (a class label or a list).", show_default=False),
]
ConceptMap = Annotated[
    str | None,
    typer.Option(
        "--concepts",
        help="Per item: mapping file id, concept (one row per pair, or a list). Per concept: the class-name "
        "vocabulary to count on DIR (see `freqindex tag --help`).",
        show_default=False,
    ),
]
AutoConcepts = Annotated[
    bool,
    typer.Option(
        "--auto-concepts",
        help="Extract concepts: nouns and proper nouns by spaCy's part-of-speech tagger, stop words dropped.",
    ),
]
TextFields = Annotated[
    str | None,
    typer.Option(help="Fields that make up an item's text, joined by a newline (a,b).", show_default=False),
]
Aggregate = Annotated[
    str, typer.Option(help="Several concepts per item: min, gmean or max of their frequencies.")
]
Similarity = Annotated[
    str,
    typer.Option(
        help="auto (neighbors when the index has vectors or the embed extra is installed, else "
        "verbatim), neighbors, verbatim."
    ),
]
PruneThreshold = Annotated[
    float, typer.Option(help="Prune documents at least this similar to any item, then refit.")
]
PruneSweep = Annotated[
    str | None, typer.Option(help="Also refit at these thresholds, e.g. 0.8,0.85,0.95.", show_default=False)
]
Bootstrap = Annotated[
    int | None,
    typer.Option(
        help="Bootstrap draws over concepts for every interval \\[default: 200 per item, 1000 per concept].",
        show_default=False,
    ),
]
Covariate = Annotated[
    str | None,
    typer.Option(
        help="distance: also fit accuracy against each item's distance from the corpus (mean ∞-gram "
        "surprisal) and the frequency slope controlled for it.",
        show_default=False,
    ),
]
ConceptResults = Annotated[
    str | None,
    typer.Option(
        help="Per-concept analysis: per-class results with columns model, benchmark, concept, accuracy "
        "(fraction or percent).",
        show_default=False,
    ),
]
ConceptCounts = Annotated[
    str | None,
    typer.Option(
        help="Per concept, without an index: counts with columns benchmark, concept, count.",
        show_default=False,
    ),
]
CountKind = Annotated[
    str, typer.Option(help="Per concept on DIR: auto, caption, tags or matched document frequency.")
]
CountColumn = Annotated[str, typer.Option(help="Per concept: the COUNTS column to use.")]
PrunedCountColumn = Annotated[
    str | None,
    typer.Option(help="Per concept: COUNTS column of counts after pruning near-copies.", show_default=False),
]
TestItems = Annotated[
    str | None,
    typer.Option(
        help="Per concept on DIR with vectors: test items (benchmark + vector or text) whose near-copies "
        "(similarity >= --prune-threshold) are not counted.",
        show_default=False,
    ),
]
Bins = Annotated[int, typer.Option(help="Per concept: bin edges of the published binned fit.")]
AccuracyScale = Annotated[str, typer.Option(help="Per concept: auto (detect), fraction or percent.")]
ExactForms = Annotated[
    bool, typer.Option("--exact", help="Per concept on DIR: no singular/plural inflections.")
]
AnalyzeFile = config_option("analyze")


@app.command("analyze")
@handle_errors
def analyze_cli(
    ctx: typer.Context,
    index_dir: AnalyzeIndexDir = None,
    eval_file: AnalyzeEval = None,
    results: AnalyzeResults = None,
    out_dir: AnalyzeOut = None,
    concept_field: ConceptField = None,
    concepts: ConceptMap = None,
    auto_concepts: AutoConcepts = _A.auto_concepts,
    fields: TextFields = None,
    id_field: IdField = _A.id_field,
    aggregate: Aggregate = _A.aggregate,
    similarity: Similarity = _A.similarity,
    prune_threshold: PruneThreshold = _A.prune_threshold,
    prune_sweep: PruneSweep = None,
    bootstrap: Bootstrap = None,
    seed: Annotated[int, typer.Option(help="Bootstrap seed.")] = _A.seed,
    covariate: Covariate = None,
    config: AnalyzeFile = None,
    dry_run: DryRun = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print summary.json.")] = False,
    concept_results: ConceptResults = None,
    concept_counts: ConceptCounts = None,
    count: CountKind = _A.count,
    count_column: CountColumn = _A.count_column,
    pruned_count_column: PrunedCountColumn = None,
    test_items: TestItems = None,
    bins: Bins = _A.bins,
    accuracy_scale: AccuracyScale = _A.accuracy_scale,
    exact: ExactForms = _A.exact,
    neighbors: NeighborsMode = _A.neighbors,
    candidates: Candidates = None,
    cache_dir: CacheDir = None,
    storage_option: StorageOptions = None,
) -> None:
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
    cfg = resolve(ctx, AnalyzeConfig, config=config, section="analyze", **fields_of(AnalyzeConfig, locals()))
    dry_run_exit(cfg, dry_run)
    if cfg.index_dir is not None:
        cfg = replace(cfg, index_dir=local_index(cfg.index_dir, cache_dir, storage_option))
    progress, on_stage = stage_spinner()
    with progress:
        res = run_analyze(cfg, progress=on_stage)
    for w in res.summary.get("warnings", []) if res.per_concept else []:
        err.print(f"[yellow]warning:[/] {w}", highlight=False)
    if json_out:
        print_json(res.summary)
    elif res.per_concept:
        _print_concept_verdicts(res)
    else:
        _print_verdicts(res)


def _print_verdicts(res: AnalyzeOutcome) -> None:
    for m, r in res.summary["models"].items():
        f = r["frequency"]
        ci = f.get("ci") or [float("nan"), float("nan")]
        slope = f["slope"] if f["slope"] is not None else float("nan")
        err.print(
            f"{m}: accuracy {r['accuracy']:.3f}, frequency slope {slope:.3f} [{ci[0]:.3f}, {ci[1]:.3f}] -> "
            f"[bold]{r['verdict']}[/]",
            highlight=False,
        )
    note(f"report: {res.paths['report.html']}")


def _print_concept_verdicts(res: AnalyzeOutcome) -> None:
    for m, r in res.summary["models"].items():
        ci = r["ci"] or [float("nan"), float("nan")]
        slope = r["slope"] if r["slope"] is not None else float("nan")
        rr = r["binned"]["pearson_r"]
        err.print(
            f"{m}: binned r {'n/a' if rr is None else f'{rr:.3f}'}, slope {slope:.2f} [{ci[0]:.2f}, {ci[1]:.2f}] "
            f"points per tenfold frequency -> [bold]{r['verdict']}[/]",
            highlight=False,
        )
    note(f"report: {res.paths['report.html']}")
