"""The ∞-gram commands: `prob`, `ntd`, `distance`, `priming`, `frontier` (run functions in
freqindex/commands/lm.py)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from freqindex.commands.lm import (
    BatchOutcome,
    DistanceConfig,
    FrontierConfig,
    NtdConfig,
    PrimingConfig,
    ProbConfig,
    raise_bad_lines,
    run_distance,
    run_frontier,
    run_ntd,
    run_priming,
    run_prob,
)
from freqindex.config import load_config

from .common import (
    CacheDir,
    IdField,
    IndexLocation,
    StorageOptions,
    app,
    fields_of,
    handle_errors,
    local_index,
    note,
    out,
    print_json,
    progress_bar,
)

Context = Annotated[str | None, typer.Option(help="The context text.", show_default=False)]
JsonRecord = Annotated[bool, typer.Option("--json", help="Print the JSON record.")]


def _print_json_answers(res: BatchOutcome, file: str | None, json_out: bool) -> dict | None:
    """A batch file's answers as one JSON object a line, in line order, then its bad lines (exit 2); a single
    query's record as JSON with ``--json``. Otherwise the single record, for the caller to print readably."""
    if file is not None:
        for obj in res.lines():
            print_json(obj)
        raise_bad_lines(file, res.errors)
        return None
    if json_out:
        print_json(res.records[0])
        return None
    return res.records[0]


@app.command("prob")
@handle_errors
def prob_cli(
    index_dir: IndexLocation,
    context: Context = None,
    next: Annotated[
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
    json_out: JsonRecord = False,
    cache_dir: CacheDir = None,
    storage_option: StorageOptions = None,
) -> None:
    """The corpus's probability of NEXT after CONTEXT: ∞-gram, and n-gram with -n.

    In the index's token space after its normalization: the ∞-gram probability (the longest suffix of the context that occurs, its length and the counts behind
    it), and with -n the n-gram probability. A multi-token NEXT is scored token by token and chained.

    Example: freqindex prob idx --context "the golden" --next " retriever" -n 3
    """
    index_dir = local_index(index_dir, cache_dir, storage_option)
    res = run_prob(load_config(ProbConfig, overrides=fields_of(ProbConfig, locals())))
    rec = _print_json_answers(res, file, json_out)
    if rec is None:
        return
    factors = "  ".join(
        f"[{x['token']!r}: {x['cont_cnt']:,}/{x['prompt_cnt']:,} after {x['suffix_len']} tokens]"
        for x in rec["infgram"]["tokens"]
    )
    out.print(f"∞-gram P({next!r} | {context!r}) = {rec['infgram']['prob']:.6g}  " + factors, highlight=False)
    if "ngram" in rec:
        pg = rec["ngram"]["prob"]
        out.print(f"{n}-gram P = {'undefined (context never occurs)' if pg is None else f'{pg:.6g}'}")


@app.command("ntd")
@handle_errors
def ntd_cli(
    index_dir: IndexLocation,
    context: Context = None,
    file: Annotated[
        str | None,
        typer.Option(
            "--file",
            help="JSONL of {context} (or {context_ids}); one JSON object out per line.",
            show_default=False,
        ),
    ] = None,
    top: Annotated[int, typer.Option("--top", help="Show the K most frequent next tokens.")] = NtdConfig.top,
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
    json_out: JsonRecord = False,
    cache_dir: CacheDir = None,
    storage_option: StorageOptions = None,
) -> None:
    """The next-token distribution after CONTEXT, with counts and probabilities.

    Every token that follows an occurrence of CONTEXT, with its count and probability (document ends count
    as the engine's eos token).

    Example: freqindex ntd idx --context "the golden" --top 5
    """
    index_dir = local_index(index_dir, cache_dir, storage_option)
    res = run_ntd(load_config(NtdConfig, overrides=fields_of(NtdConfig, locals())))
    rec = _print_json_answers(res, file, json_out)
    if rec is None:
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


@app.command("distance")
@handle_errors
def distance_cli(
    index_dir: IndexLocation,
    eval_file: Annotated[str, typer.Option("--eval", help="Eval set: .jsonl, .json, .csv or .parquet.")],
    fields: Annotated[
        str | None,
        typer.Option(help="Fields that make up an item, joined by a newline (a,b).", show_default=False),
    ] = None,
    template: Annotated[
        str | None,
        typer.Option(help="Item text as a template, e.g. '{question}\\n{answer}'.", show_default=False),
    ] = None,
    id_field: IdField = DistanceConfig.id_field,
    out_file: Annotated[
        str | None,
        typer.Option(
            "--out",
            help="Also write the rows to this .parquet, .csv or .jsonl \\[always: DIR/evals/NAME/distance.parquet, "
            "the `distance` SQL view].",
            show_default=False,
        ),
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object per item.")] = False,
    cache_dir: CacheDir = None,
    storage_option: StorageOptions = None,
) -> None:
    """How far each eval item sits from the corpus: surprisal, novel n-grams, longest match.

    Per item: the mean and max per-token ∞-gram surprisal (bits), the share
    of tokens the ∞-gram model gives probability 0, the mean effective context length, the share of the
    item's 5-, 8- and 13-token n-grams the corpus never holds, and the longest match (as `contamination`).

    Example: freqindex distance idx --eval ../shared/data/evals/gsm8k/test.jsonl --fields question
    """
    index_dir = local_index(index_dir, cache_dir, storage_option)
    res = run_distance(load_config(DistanceConfig, overrides=fields_of(DistanceConfig, locals())))
    if res.note:
        note(f"note: {res.note}")
    if json_out:
        for r in res.rows:
            print_json(r)
        return
    m = res.medians
    note(
        f"{len(res.rows):,} items: median mean surprisal {m['mean_surprisal']:.3f} bits/token, novel 13-grams "
        f"{m['novel_13']:.3f}, mean context {m['mean_context']:.1f} tokens, longest match "
        f"{m['longest_match_tokens']:.0f} tokens" + (f"; written to {res.view_file}" if res.view_file else "")
    )


@app.command("priming")
@handle_errors
def priming_cli(
    index_dir: IndexLocation,
    file: Annotated[
        str,
        typer.Option(
            "--file",
            help="JSONL of {context, keyword} (or {context_ids, keyword_ids}), or .tsv: context<TAB>keyword.",
        ),
    ],
    threshold: Annotated[
        float, typer.Option(help="Flag keywords whose probability is below this (the priming study's 1e-3).")
    ] = PrimingConfig.threshold,
    out_file: Annotated[
        str | None, typer.Option("--out", help="Also write the records to this .jsonl.", show_default=False)
    ] = None,
    cache_dir: CacheDir = None,
    storage_option: StorageOptions = None,
) -> None:
    """Each KEYWORD's probability after its CONTEXT, flagged below --threshold (predicted to prime).

    The ∞-gram probability, chained over the keyword's tokens, with the counts behind each factor; a
    keyword below --threshold is one that learning is predicted to prime. One JSON object per input line; bad lines are reported by line number.

    Example: freqindex priming idx --file keywords.jsonl --threshold 1e-3
    """
    index_dir = local_index(index_dir, cache_dir, storage_option)
    res = run_priming(load_config(PrimingConfig, overrides=fields_of(PrimingConfig, locals())))
    for obj in res.lines():
        print_json(obj)
    n_flag = sum(1 for r in res.records.values() if r["flagged"])
    note(f"{len(res.records):,} keywords, {n_flag:,} below {threshold:g}")
    raise_bad_lines(file, res.errors)


Measure = Annotated[
    str,
    typer.Option(
        help="Band measure: novel_13, novel_8, novel_5, mean_surprisal, zero_prob_share, mean_context."
    ),
]
Bound = Annotated[
    float | None, typer.Option(help="Absolute threshold instead of --band.", show_default=False)
]
_F = FrontierConfig


@app.command("frontier")
@handle_errors
def frontier_cli(
    index_dir: IndexLocation,
    candidates: Annotated[
        str,
        typer.Option("--candidates", help="Candidate texts: .jsonl objects (--field) or .txt (one a line)."),
    ],
    out_dir: Annotated[str, typer.Option("--out", help="Output directory.")],
    field: Annotated[str, typer.Option(help="JSONL field holding the candidate text.")] = _F.field,
    id_field: Annotated[
        str, typer.Option(help="JSONL field holding the candidate id (else the line number).")
    ] = _F.id_field,
    measure: Measure = _F.measure,
    band: Annotated[str, typer.Option(help="Percentiles of the corpus profile: LO,HI.")] = _F.band,
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
    ] = _F.tolerance,
    min_tokens: Annotated[
        int, typer.Option(help="Reject candidates with fewer scored tokens.")
    ] = _F.min_tokens,
    profile_size: Annotated[int, typer.Option(help="Documents in the corpus profile.")] = _F.profile_size,
    profile_seed: Annotated[int, typer.Option(help="Seed of the profile sample.")] = _F.profile_seed,
    profile_max_tokens: Annotated[
        int, typer.Option(help="Profile documents have at most this many tokens.")
    ] = _F.profile_max_tokens,
    profile_cache: Annotated[
        str | None,
        typer.Option(help="Where to cache the profile \\[default: DIR/evals/_profile].", show_default=False),
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print summary.json.")] = False,
    cache_dir: CacheDir = None,
    storage_option: StorageOptions = None,
) -> None:
    """The learning frontier: keep the candidate texts whose distance lies in the corpus's own band.

    Score candidate texts by their distance from the corpus, compare them with the corpus's own profile (the same measure on sampled documents of the index, each leave-one-out; cached),
    and write the kept and rejected candidates with reason and score, scores.parquet, summary.json and a
    report with the candidates' distribution against the profile.

    Example: freqindex frontier idx --candidates refined.jsonl --out frontier/ --band 5,95
    """
    index_dir = local_index(index_dir, cache_dir, storage_option)
    cfg = load_config(FrontierConfig, overrides=fields_of(FrontierConfig, locals()))
    progress, on_progress = progress_bar()
    with progress:
        res = run_frontier(cfg, progress=on_progress)
    if res.note:
        note(f"note: {res.note}")
    s = res.summary
    if json_out:
        import json
        from pathlib import Path

        print_json(json.loads(Path(res.paths["summary.json"]).read_text()))
    else:
        reasons = ", ".join(f"{k}: {v:,}" for k, v in sorted(s["reasons"].items()))
        note(
            f"{s['kept']:,} of {s['n_candidates']:,} candidates kept ({reasons}); report: {res.paths['report.html']}"
        )
    raise_bad_lines(candidates, res.errors)
