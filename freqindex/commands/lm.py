"""The ∞-gram commands: `prob` (probability of a continuation), `ntd` (next-token distribution), `distance`
(how far eval items sit from the corpus), `priming` (keywords the corpus makes unlikely) and `frontier`
(candidate texts scored against the corpus's own profile).

Batch files (``--file``) are answered line by line: a bad line gets an error record, the others are answered;
:func:`raise_bad_lines` then raises :class:`freqindex.errors.BadLinesError` (exit 2) naming them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from freqindex import settings
from freqindex.errors import BadLinesError, UsageError
from freqindex.evals import eval_name, load_eval
from freqindex.suffix.index import Index

from .common import open_index


@dataclass(frozen=True)
class BatchOutcome:
    """The answers of a single query (line 0) or of a batch file: records and errors by line number."""

    records: dict[int, dict] = field(default_factory=dict)
    errors: dict[int, str] = field(default_factory=dict)

    def lines(self) -> list[dict]:
        """One object per line, in order: ``{line, ...record}`` or ``{line, error}``."""
        out = []
        for line in sorted(set(self.records) | set(self.errors)):
            rec = self.errors.get(line)
            out.append(
                {"line": line, "error": rec} if rec is not None else {"line": line, **self.records[line]}
            )
        return out


def raise_bad_lines(path: str | None, errors: dict[int, str]) -> None:
    """After a batch file's answers were written: its bad lines as one BadLinesError (exit 2)."""
    if path is not None and errors:
        raise BadLinesError(path, sorted(errors.items()))


def _parse_lines(
    file: str | None, names: tuple[str, ...], single: dict | None, parse: Callable[[dict], Any]
) -> tuple[list[int], list[Any], dict[int, str]]:
    """(good line numbers, their parsed queries, errors by line) of a batch file, or of the one query
    ``single`` (line 0; its error is raised, not collected)."""
    from freqindex.query.prob import read_batch

    lines = [(0, single)] if file is None else []
    errors: dict[int, str] = {}
    for b in read_batch(file, names) if file is not None else ():
        if b.error:
            errors[b.line] = b.error
        else:
            lines.append((b.line, b.fields))
    good, parsed = [], []
    for line, obj in lines:
        try:
            parsed.append(parse(obj))
            good.append(line)
        except UsageError as exc:
            if file is None:
                raise
            errors[line] = str(exc)
    return good, parsed, errors


# --- prob ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProbConfig:
    """``context`` + ``next``, or ``file`` (JSONL of {context, next} or {context_ids, next_ids}); ``n``: also
    the n-gram probability with the last n-1 context tokens."""

    index_dir: str = ""
    context: str | None = None
    next: str | None = None
    file: str | None = None
    n: int | None = None


def _prob_query(idx: Index, obj: dict):
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


def run_prob(cfg: ProbConfig, *, index: Index | None = None) -> BatchOutcome:
    """The ∞-gram probability (and with ``n`` the n-gram one) of every query, chained over its tokens."""
    from freqindex.query.prob import chained, infgram_probs, ngram_probs

    idx = open_index(cfg.index_dir, index)
    if (cfg.file is None) == (cfg.context is None and cfg.next is None):
        raise UsageError("give --context and --next, or --file")
    if cfg.file is None and (cfg.context is None or cfg.next is None):
        raise UsageError("give both --context and --next")
    single = {"context": cfg.context, "next": cfg.next}
    good, queries, errors = _parse_lines(cfg.file, ("context", "next"), single, lambda o: _prob_query(idx, o))
    inf = infgram_probs(idx, queries) if queries else []
    ng = ngram_probs(idx, queries, cfg.n) if queries and cfg.n is not None else [None] * len(queries)
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
            rec["ngram"] = {"n": cfg.n, "prob": chained(ntoks), "tokens": [t.to_dict() for t in ntoks]}
        records[line] = rec
    return BatchOutcome(records, errors)


# --- ntd ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NtdConfig:
    """``context`` or ``file`` (JSONL of {context} or {context_ids}); ``top``: the K most frequent next
    tokens; ``infgram``: the longest suffix of the context that occurs; ``max_support``: subsample like the
    engine above this many occurrences (None: exact)."""

    index_dir: str = ""
    context: str | None = None
    file: str | None = None
    top: int = 10
    infgram: bool = False
    max_support: int | None = None

    def validate(self) -> NtdConfig:
        if self.top < 1:
            raise UsageError("--top must be at least 1")
        if self.max_support is not None and self.max_support < 1:
            raise UsageError("--max-support must be at least 1")
        return self


def _ntd_context(idx: Index, obj: dict) -> tuple[list[int], str | None]:
    from freqindex.query.prob import check_ids, encode_text

    if "context_ids" in obj:
        return check_ids(idx, obj["context_ids"], "context_ids", allow_empty=True), obj.get("context")
    if "context" in obj:
        return encode_text(idx, obj["context"], "context"), obj.get("context")
    raise UsageError("expected the field context (or context_ids)")


def run_ntd(cfg: NtdConfig, *, index: Index | None = None) -> BatchOutcome:
    """The next-token distribution (top ``cfg.top``) after every context."""
    from freqindex.query.prob import next_tokens, token_strings

    cfg.validate()
    idx = open_index(cfg.index_dir, index)
    if (cfg.file is None) == (cfg.context is None):
        raise UsageError("give --context or --file")
    parse = lambda o: _ntd_context(idx, o)  # noqa: E731
    good, parsed, errors = _parse_lines(cfg.file, ("context",), {"context": cfg.context}, parse)
    ctxs = [c for c, _ in parsed]
    res = next_tokens(idx, ctxs, cfg.max_support, cfg.infgram) if ctxs else []
    records = {}
    for line, (c, text), r in zip(good, parsed, res):
        top_items = r.top(cfg.top)
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
    return BatchOutcome(records, errors)


# --- distance -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DistanceConfig:
    """``fields`` (joined by a newline) or ``template`` make up an item; ``out_file``: also write the rows
    (.parquet, .csv, .jsonl); they always go to ``INDEX/evals/NAME/distance.parquet`` (the `distance` view)
    when the index is writable."""

    index_dir: str = ""
    eval_file: str = ""
    fields: tuple[str, ...] | None = None
    template: str | None = None
    id_field: str = settings.DEFAULT_ID_FIELD
    out_file: str | None = None


@dataclass(frozen=True)
class DistanceOutcome:
    rows: list[dict]  # one per item: eval, id, token counts and every measure of freqindex.query.distance
    view_file: str | None  # the `distance` view's file (None: the index is read-only)
    note: str | None  # why the view's file was not written
    medians: dict[str, float]  # median over the items of the summary's measures


def _distance_schema():
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


def run_distance(cfg: DistanceConfig, *, index: Index | None = None) -> DistanceOutcome:
    """Each item's distance from the corpus: mean and max per-token ∞-gram surprisal, zero-probability share,
    mean effective context, novel n-gram shares, the longest match."""
    import statistics

    from freqindex.query.distance import item_distances
    from freqindex.report.tables import rows_table, write_table

    idx = open_index(cfg.index_dir, index)
    items = load_eval(cfg.eval_file, cfg.id_field, list(cfg.fields) if cfg.fields else None, cfg.template)
    name = eval_name(cfg.eval_file)
    rows = [{"eval": name, **d.to_dict()} for d in item_distances(idx, [(it.id, it.text) for it in items])]
    table = rows_table(rows, _distance_schema())
    view_file = note = None
    try:  # the `distance` SQL view reads the declared evals/NAME/distance.parquet
        view_file = str(idx.publish_eval(name, "distance", table))
    except UsageError as exc:  # a read-only index: the rows still go to --out / the caller
        note = f"the `distance` view was not written ({exc})"
    if cfg.out_file:
        write_table(table, cfg.out_file)

    def med(k: str) -> float:
        v = [r[k] for r in rows if r[k] is not None]
        return statistics.median(v) if v else float("nan")

    keys = ("mean_surprisal", "novel_13", "mean_context", "longest_match_tokens")
    return DistanceOutcome(rows, view_file, note, {k: med(k) for k in keys})


# --- priming ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PrimingConfig:
    """``file``: JSONL of {context, keyword} (or {context_ids, keyword_ids}), or .tsv context<TAB>keyword;
    ``threshold``: flag keywords whose probability is below it; ``out_file``: also write the records."""

    index_dir: str = ""
    file: str = ""
    threshold: float = 1e-3
    out_file: str | None = None

    def validate(self) -> PrimingConfig:
        if not 0 < self.threshold < 1:
            raise UsageError("--threshold must lie in (0, 1)")
        return self


def run_priming(cfg: PrimingConfig, *, index: Index | None = None) -> BatchOutcome:
    """Each keyword's chained ∞-gram probability after its context, flagged below the threshold; with
    ``out_file`` every line's object (records and errors) is written there as JSON lines."""
    import json

    from freqindex.fsutil import atomic_write_bytes
    from freqindex.query.priming import make_query, priming

    cfg.validate()
    idx = open_index(cfg.index_dir, index)
    good, queries, errors = _parse_lines(cfg.file, ("context", "keyword"), None, lambda o: make_query(idx, o))
    records = dict(zip(good, priming(idx, queries, cfg.threshold))) if queries else {}
    res = BatchOutcome(records, errors)
    if cfg.out_file:
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in res.lines())
        atomic_write_bytes(cfg.out_file, text.encode())
    return res


# --- frontier -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FrontierConfig:
    """``candidates``: .jsonl objects (text in ``field``, id in ``id_field``, else the line number) or .txt
    (one a line); the band is ``band`` percentiles of the corpus profile of ``measure``, or absolute
    ``min_value``/``max_value``; ``profile_*``: the profile sample and its cache (default
    ``INDEX/evals/_profile``)."""

    index_dir: str = ""
    candidates: str = ""
    out_dir: str = ""
    field: str = "text"
    id_field: str = "id"
    measure: str = "novel_13"
    band: str = "5,95"  # LO,HI
    min_value: float | None = None
    max_value: float | None = None
    tolerance: float = 1.645
    min_tokens: int = 16
    profile_size: int = 500
    profile_seed: int = 0
    profile_max_tokens: int = 4096
    profile_cache: str | None = None

    def validate(self) -> FrontierConfig:
        self.percentiles()
        return self

    def percentiles(self) -> tuple[float, float]:
        try:
            pct = tuple(float(x) for x in self.band.split(","))
        except ValueError:
            raise UsageError(f"--band takes two percentiles LO,HI, got {self.band!r}") from None
        if len(pct) != 2:
            raise UsageError(f"--band takes two percentiles LO,HI, got {self.band!r}")
        return pct


@dataclass(frozen=True)
class FrontierOutcome:
    summary: dict  # what summary.json holds
    paths: dict[str, str]  # summary.json, report.html, kept/rejected candidates, scores.parquet
    errors: dict[int, str]  # bad lines of the candidates file
    note: str | None  # why the profile cache was not written where asked


def read_candidates(
    path: str, field: str, id_field: str
) -> tuple[list[tuple[str, str, dict]], dict[int, str]]:
    """(id, text, row) per good line of a candidates file, and the bad lines' errors. Ids come from
    ``id_field``, else the line number; a repeated id is an error."""
    from freqindex.query.prob import read_batch

    good, bad = [], {}
    seen: set[str] = set()
    for b in read_batch(path, (field,)):
        text, raw_id = b.fields.get(field), b.fields.get(id_field)
        cid = str(raw_id) if raw_id not in (None, "") else str(b.line)
        if b.error:
            bad[b.line] = b.error
        elif not isinstance(text, str) or not text.strip():
            bad[b.line] = f"no non-empty string field {field!r}"
        elif cid in seen:
            bad[b.line] = f"candidate id {cid!r} appears twice"
        else:
            seen.add(cid)
            good.append((cid, text, b.fields))
    return good, bad


def run_frontier(
    cfg: FrontierConfig, *, progress: Callable[[str, int, int], None] | None = None
) -> FrontierOutcome:
    """Score the candidates by their distance from the corpus, compare them with the corpus's own profile
    (built or read from its cache) and write the kept and rejected candidates, scores and the report."""
    from freqindex.query.frontier import (
        ProfileSettings,
        load_or_build_profile,
        make_band,
        score_candidates,
        summarize,
    )
    from freqindex.report.frontier import write_outputs

    idx = open_index(cfg.index_dir)
    good, bad = read_candidates(cfg.candidates, cfg.field, cfg.id_field)
    if not good:
        raise_bad_lines(cfg.candidates, bad)
        raise UsageError(f"{cfg.candidates}: no candidates")
    prof_settings = ProfileSettings(cfg.profile_size, cfg.profile_seed, cfg.profile_max_tokens).validate()
    on_profile = (lambda d, t: progress("corpus profile", d, t)) if progress else None
    prof, path, built, note = load_or_build_profile(
        idx, prof_settings, cfg.profile_cache, progress=on_profile
    )
    limits = (cfg.min_value, cfg.max_value)
    b = make_band(prof, cfg.measure, cfg.percentiles(), limits, cfg.tolerance, cfg.min_tokens)
    records = score_candidates(idx, [(c, t) for c, t, _ in good], b, prof)
    summary = summarize(records, b, prof, prof_settings)
    summary["profile"]["cache"] = str(path) if path else None
    summary["profile"]["built_now"] = built
    summary["bad_lines"] = [{"line": ln, "error": m} for ln, m in sorted(bad.items())]
    texts, rows = {c: t for c, t, _ in good}, {c: row for c, _, row in good}
    paths = write_outputs(Path(cfg.out_dir), records, texts, rows, summary, prof)
    return FrontierOutcome(summary, {k: str(v) for k, v in paths.items()}, bad, note)
