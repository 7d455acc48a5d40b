"""`freqindex analyze` per concept: the multimodal frequency study (Udandarao et al. 2024) on per-class results.

One row per (model, benchmark, concept): the model's zero-shot accuracy on that class, and how often the
class name occurs in pretraining. Frequencies come either from a COUNTS file (``benchmark, concept, count``
and any other count columns) or from an index (the document frequencies ``freqindex concepts`` reports:
caption, image-tag or matched counts; see analysis/concept_index.py). Names are matched per benchmark after
the index's normalization (``simple`` without an index); concepts without a count or without a result are
listed in ``summary["unmatched"]``, never dropped silently.

Statistics per model (accuracy always in percent; a fraction input is multiplied by 100 and the summary says
which scale was found):

1. the published binned fit, computed as the study's notebook did: x = ln(max(count, 1)) over all of the
   model's concepts pooled across benchmarks; ``bins`` (12) equal-width edges from min(x) to max(x)
   (numpy.linspace); a concept's bin = numpy.digitize(x, edges, right=True), so bin 0 holds the concepts at
   the minimum and bin i > 0 those in (edges[i-1], edges[i]]; mean accuracy per bin; Pearson r and p between
   edges[1:-1] and the means of bins 1 .. bins-2 (the two end bins dropped; an empty bin is left out);
2. the slope of accuracy (percentage points) on log10(max(count, 1)) by least squares with a fixed effect
   per benchmark (statsmodels OLS), a 95% percentile interval from a bootstrap over concepts, and Spearman's
   rho between count and accuracy (scipy, pooled). The bootstrap is vectorized: draw b resamples the
   model's n concepts (``numpy.random.default_rng(seed).integers(0, n, (draws, n))``, concepts ordered by
   benchmark then normalized name), turns the resample into integer weights, and solves every draw's
   weighted fixed-effect least squares at once from per-benchmark weighted sums (the within estimator);
3. the similarity control: the same fits on pruned counts (a COUNTS column named by
   ``pruned_count_column``, or recounted on an index without the documents that are at least
   ``prune_threshold`` similar to a test item of the benchmark), the paired bootstrap interval of the drop
   (raw slope minus pruned slope, the same draws), and a verdict.

Verdict rule (per model; "significant" = the 95% bootstrap interval lies above 0):

- ``no_frequency_effect``: the raw slope is not significantly positive;
- ``frequency_effect_persists``: it is, and the slope on pruned counts is still significantly positive;
- ``explained_by_similarity``: it is, the pruned slope is not significantly positive, and the drop (raw
  minus pruned) is significantly positive: removing the test sets' near-copies took the effect away;
- ``inconclusive``: anything else: no similarity control was given, the pruned slope is not significant
  but the drop is not either (pruning made the estimate noisier rather than smaller), or too little data.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from freqindex.analysis.stats import VERDICTS  # the same four names as the item-level analysis
from freqindex.errors import BadInputError, UsageError

QUESTION = (
    "Does a model's per-class accuracy rise with the log of how often the class occurs in pretraining, "
    "and does the rise survive removing the pretraining samples most similar to the test sets?"
)
COUNT_KINDS = ("auto", "caption", "tags", "matched")
ACCURACY_SCALES = ("auto", "fraction", "percent")
COUNTS_COLUMNS = ("benchmark", "concept", "count")
RESULTS_COLUMNS = ("model", "benchmark", "concept", "accuracy")
MIN_CONCEPTS = 10  # fewer concepts for a model: no slope, verdict inconclusive
MIN_DRAWS = 20  # fewer valid bootstrap draws: no interval
BOOTSTRAP_CELLS = 4_000_000  # bootstrap weights held at once (draws x concepts; 32 MB as float64)


@dataclass(frozen=True)
class ConceptAnalysisConfig:
    """Everything one per-concept analysis needs; the single source of truth from flags to code.

    Frequencies come from ``counts`` (a file) or from ``index`` + ``vocabulary`` (exactly one of the two).
    The similarity control is ``pruned_count_column`` (with ``counts``) or ``test_items`` (with an index that
    has vectors: rows of ``benchmark`` and a ``vector`` or a ``text``; documents at least
    ``prune_threshold`` similar to a test item of a benchmark are not counted for that benchmark).
    """

    results: str
    counts: str | None = None
    index: str | None = None
    vocabulary: str | None = None
    count: str = "auto"
    count_column: str = "count"
    pruned_count_column: str | None = None
    test_items: str | None = None
    prune_threshold: float = 0.9
    bins: int = 12
    bootstrap: int = 1000
    seed: int = 0
    accuracy_scale: str = "auto"
    exact: bool = False
    name: str | None = None

    def validate(self) -> None:
        """Raise UsageError on a combination of settings that cannot run."""
        if (self.counts is None) == (self.index is None):
            raise UsageError("give either an INDEX with --concepts VOCAB, or --concept-counts COUNTS")
        if self.index is not None and self.vocabulary is None:
            raise UsageError("counting concepts on an index needs --concepts VOCAB (class names)")
        if self.counts is not None and self.vocabulary is not None:
            raise UsageError("--concepts VOCAB counts on an index; with --concept-counts give no vocabulary")
        if self.count not in COUNT_KINDS:
            raise UsageError(f"unknown --count {self.count!r}; choose auto, caption, tags or matched")
        if self.counts is not None and self.count != "auto":
            raise UsageError("--count picks an index's counts; with --concept-counts use --count-column")
        if self.index is not None and self.pruned_count_column is not None:
            raise UsageError("--pruned-count-column reads a COUNTS file; on an index use --test-items")
        if self.counts is not None and self.test_items is not None:
            raise UsageError("--test-items prunes an index's documents; it needs INDEX, not --concept-counts")
        if self.pruned_count_column is not None and self.pruned_count_column == self.count_column:
            raise UsageError("--pruned-count-column names the same column as --count-column")
        if not 0 < self.prune_threshold <= 1:
            raise UsageError("--prune-threshold takes a similarity in (0, 1]")
        if not 5 <= self.bins <= 1000:
            raise UsageError("--bins takes 5 to 1000 bin edges")
        if not 20 <= self.bootstrap <= 100_000:
            raise UsageError("--bootstrap takes 20 to 100000 draws")
        if self.accuracy_scale not in ACCURACY_SCALES:
            raise UsageError(
                f"unknown --accuracy-scale {self.accuracy_scale!r}; choose auto, fraction or percent"
            )


@dataclass
class _Inputs:
    """The joined analysis table and everything that did not join."""

    table: pd.DataFrame  # model, benchmark, concept, concept_key, accuracy, count[, pruned_count]
    unmatched: dict
    warnings: list[str] = field(default_factory=list)


# --- reading ------------------------------------------------------------------------------------------------


def read_table(path: str, required: tuple[str, ...], what: str) -> pd.DataFrame:
    """A CSV/JSONL/JSON/Parquet table as strings-or-values, with ``required`` columns checked.

    CSV cells stay strings (a class named "NA" or "null" is a name, not a missing value); a missing file,
    an empty file or a missing column is a one-line error naming the file."""
    from freqindex.evals.tables import load_rows

    try:
        if path.lower().endswith(".csv") and Path(path).is_file():  # pandas' C parser: every cell a string
            try:
                df = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[], encoding="utf-8-sig")
            except pd.errors.EmptyDataError:
                df = pd.DataFrame()
            except pd.errors.ParserError as exc:
                raise BadInputError(f"{path}: bad CSV: {' '.join(str(exc).split())}") from None
        else:
            df = pd.DataFrame.from_records(load_rows(path, what))
    except UnicodeDecodeError as exc:
        raise BadInputError(f"{path}: not UTF-8 text ({exc.reason})") from None
    if df.empty:
        raise BadInputError(f"{path}: the {what} file has no rows")
    missing = [c for c in required if c not in df.columns]
    if missing:
        cols = ", ".join(str(c) for c in df.columns)
        raise BadInputError(
            f"{path}: the {what} file needs columns {', '.join(required)}; "
            f"missing {', '.join(missing)} (has {cols})"
        )
    return df


def _numeric(df: pd.DataFrame, column: str, path: str) -> np.ndarray:
    """``column`` as float; empty cells become NaN, anything else that is not a finite number is an error."""
    raw = df[column]
    if pd.api.types.is_bool_dtype(raw):
        raise BadInputError(f"{path}: {column} holds true/false, not numbers")
    if pd.api.types.is_numeric_dtype(raw):
        vals = raw.to_numpy(dtype=float)
        empty = np.isnan(vals)
    else:
        text = raw.map(lambda v: "bad" if isinstance(v, bool) else v)  # True/False are not numbers
        empty = (raw.isna() | (raw.astype(str).str.strip() == "")).to_numpy()
        vals = pd.to_numeric(text.where(~empty, None), errors="coerce").to_numpy(dtype=float)
    bad = np.flatnonzero((np.isnan(vals) & ~empty) | np.isinf(vals))
    if bad.size:
        i = int(bad[0])
        raise BadInputError(f"{path}: row {i + 1}: {column} {raw.iloc[i]!r} is not a number")
    return vals


def _names(df: pd.DataFrame, column: str, path: str) -> pd.Series:
    """``column`` as strings; an empty cell (null) is an error naming the row."""
    vals = df[column]
    if pd.api.types.infer_dtype(vals, skipna=False) == "string":
        return vals
    missing = np.flatnonzero(vals.isna().to_numpy())
    if missing.size:
        raise BadInputError(f"{path}: row {int(missing[0]) + 1}: {column} is empty")
    return vals.map(str)


def _keys(names: pd.Series, normalize) -> pd.Series:
    """Normalized concept names (one call per distinct name)."""
    cache = {n: normalize(n) for n in pd.unique(names)}
    return names.map(cache)


def _first_duplicate(df: pd.DataFrame, cols: list[str]) -> tuple[int, int] | None:
    dup = df.duplicated(cols, keep=False)
    if not dup.any():
        return None
    d = df[dup]
    first = d.iloc[0]
    mask = np.ones(len(d), dtype=bool)
    for c in cols:
        mask &= (d[c] == first[c]).to_numpy()
    rows = d.index[mask]
    return int(rows[0]) + 1, int(rows[1]) + 1


def load_results_table(path: str, normalize, scale: str = "auto") -> tuple[pd.DataFrame, dict, list[str]]:
    """RESULTS as a table (model, benchmark, concept, concept_key, accuracy in percent), the scale found,
    and warnings. Accuracies outside [0, 100], a non-number or a duplicated (model, benchmark, concept)
    after normalization are errors naming the rows."""
    df = read_table(path, RESULTS_COLUMNS, "results")
    warnings: list[str] = []
    out = pd.DataFrame(
        {
            "model": _names(df, "model", path).str.strip(),
            "benchmark": _names(df, "benchmark", path).str.strip(),
            "concept": _names(df, "concept", path),
        }
    )
    out["concept_key"] = _keys(out["concept"], normalize)
    acc = _numeric(df, "accuracy", path)
    missing = np.isnan(acc)
    low, high = np.nanmin(acc) if (~missing).any() else 0.0, np.nanmax(acc) if (~missing).any() else 0.0
    outside = np.flatnonzero(~missing & ((acc < 0) | (acc > 100)))
    if outside.size:
        i = int(outside[0])
        raise BadInputError(
            f"{path}: row {i + 1}: accuracy {acc[i]:g} is outside [0, 100] "
            f"({outside.size} such rows; give a fraction in [0, 1] or a percentage)"
        )
    found_auto = scale == "auto"
    if scale == "auto":
        scale = "fraction" if high <= 1 else "percent"
        reason = "every accuracy lies in [0, 1]" if scale == "fraction" else f"accuracies reach {high:g}"
    else:
        reason = "given with --accuracy-scale"
        if scale == "fraction" and high > 1:
            raise BadInputError(f"{path}: --accuracy-scale fraction, but accuracies reach {high:g}")
    if scale == "fraction":
        acc = acc * 100.0
        if found_auto and np.isin(acc[~missing], (0.0, 100.0)).all() and (~missing).sum() >= MIN_CONCEPTS:
            warnings.append(
                f"{path}: every accuracy is 0 or 1, read as fractions (0% or 100%); "
                "give --accuracy-scale percent if they are percentages"
            )
    out["accuracy"] = acc
    empty_name = (out["concept_key"] == "").to_numpy() | (out["model"] == "").to_numpy()
    empty_name |= (out["benchmark"] == "").to_numpy()
    if empty_name.any():
        rows = (np.flatnonzero(empty_name) + 1).tolist()
        warnings.append(
            f"{path}: skipped {len(rows)} rows with an empty model, benchmark or concept name "
            f"(rows {_row_list(rows)})"
        )
    if missing.any():
        rows = (np.flatnonzero(missing & ~empty_name) + 1).tolist()
        if rows:
            warnings.append(
                f"{path}: {len(rows)} rows have no accuracy and are left out (rows {_row_list(rows)})"
            )
    keep = ~(missing | empty_name)
    out = out[keep]
    if out.empty:
        raise BadInputError(f"{path}: no row has a model, benchmark, concept and accuracy")
    dup = _first_duplicate(out, ["model", "benchmark", "concept_key"])
    if dup is not None:
        r = out.loc[dup[0] - 1]
        raise BadInputError(
            f"{path}: rows {dup[0]} and {dup[1]} both give model {r['model']!r}, benchmark "
            f"{r['benchmark']!r}, concept {r['concept_key']!r} (after normalization)"
        )
    if scale == "percent":
        for model, g in out.groupby("model", sort=True):
            if g["accuracy"].max() <= 1 and len(g) >= MIN_CONCEPTS:
                warnings.append(
                    f"{path}: model {model!r} has every accuracy at or below 1 while the file is in percent; "
                    "check its scale"
                )
    found = {"scale": scale, "reason": reason, "min": float(low), "max": float(high)}
    return out.reset_index(drop=True), found, warnings


def load_counts_table(
    path: str, normalize, count_column: str, pruned_column: str | None
) -> tuple[pd.DataFrame, list[str], list[dict]]:
    """COUNTS as a table (benchmark, concept, concept_key, count[, pruned_count]), warnings, and the rows
    without a count. Negative or non-numeric counts are errors; two rows for one (benchmark, concept) are an
    error unless they agree (then merged with a warning)."""
    required = ("benchmark", "concept", count_column) + ((pruned_column,) if pruned_column else ())
    df = read_table(path, required, "counts")
    warnings: list[str] = []
    out = pd.DataFrame(
        {"benchmark": _names(df, "benchmark", path).str.strip(), "concept": _names(df, "concept", path)}
    )
    out["concept_key"] = _keys(out["concept"], normalize)
    out["count"] = _numeric(df, count_column, path)
    cols = ["count"]
    if pruned_column:
        out["pruned_count"] = _numeric(df, pruned_column, path)
        cols.append("pruned_count")
    for c, name in zip(cols, (count_column, pruned_column)):
        neg = np.flatnonzero(out[c].to_numpy() < 0)
        if neg.size:
            i = int(neg[0])
            raise BadInputError(f"{path}: row {i + 1}: {name} {out[c].iloc[i]:g} is negative")
    empty_name = ((out["concept_key"] == "") | (out["benchmark"] == "")).to_numpy()
    if empty_name.any():
        rows = (np.flatnonzero(empty_name) + 1).tolist()
        warnings.append(
            f"{path}: skipped {len(rows)} rows with an empty benchmark or concept (rows {_row_list(rows)})"
        )
        out = out[~empty_name]
    no_count = out[out["count"].isna()]
    without = [{"benchmark": b, "concept": c} for b, c in zip(no_count["benchmark"], no_count["concept"])]
    out = out[out["count"].notna()]
    dup = out.duplicated(["benchmark", "concept_key"], keep=False)
    if dup.any():
        d = out[dup]
        agree = d.groupby(["benchmark", "concept_key"])[cols].nunique(dropna=False).le(1).all(axis=1)
        if not agree.all():
            b, k = agree[~agree].index[0]
            rows = (d[(d["benchmark"] == b) & (d["concept_key"] == k)].index + 1).tolist()
            raise BadInputError(
                f"{path}: rows {rows[0]} and {rows[1]} give different counts for benchmark {b!r}, "
                f"concept {k!r} (after normalization)"
            )
        warnings.append(
            f"{path}: {int(dup.sum())} rows repeat a (benchmark, concept) with the same counts; merged"
        )
        out = out.drop_duplicates(["benchmark", "concept_key"])
    if pruned_column:
        over = out[out["pruned_count"] > out["count"]]
        if len(over):
            warnings.append(
                f"{path}: {len(over)} concepts have a {pruned_column} above their {count_column} "
                f"(first: {over['benchmark'].iloc[0]}/{over['concept'].iloc[0]}); pruning only removes samples"
            )
    if out.empty:
        raise BadInputError(f"{path}: no row has a benchmark, concept and {count_column}")
    return out.reset_index(drop=True), warnings, without


def _row_list(rows: list[int], limit: int = 8) -> str:
    head = ", ".join(map(str, rows[:limit]))
    return head + (f", ... {len(rows) - limit} more" if len(rows) > limit else "")


# --- joining ------------------------------------------------------------------------------------------------


def join_counts(
    results: pd.DataFrame,
    counts: pd.DataFrame,
    *,
    counts_label: str,
    results_label: str,
    without_count_rows: list[dict] | None = None,
) -> _Inputs:
    """Match results to counts per benchmark by normalized name. A ``counts`` row whose benchmark is None
    (a vocabulary without benchmarks) matches that name in every benchmark of the results.

    Benchmarks present in one input only are warnings (their concepts are listed as unmatched); no
    benchmark in common is an error."""
    warnings: list[str] = []
    bench_counts = {b for b in counts["benchmark"] if b is not None}
    bench_results = set(results["benchmark"])
    has_wildcard = counts["benchmark"].isna().any()
    only_counts = sorted(bench_counts - bench_results)
    only_results = sorted(bench_results - bench_counts) if not has_wildcard else []
    if bench_counts and not has_wildcard and not bench_counts & bench_results:
        raise BadInputError(
            f"no benchmark is in both {counts_label} ({', '.join(sorted(bench_counts)[:6])}) and "
            f"{results_label} ({', '.join(sorted(bench_results)[:6])})"
        )
    if only_counts:
        warnings.append(f"benchmarks only in {counts_label}, no results: {', '.join(only_counts)}")
    if only_results:
        warnings.append(f"benchmarks only in {results_label}, no counts: {', '.join(only_results)}")
    cols = [c for c in ("count", "pruned_count") if c in counts.columns]
    specific = counts[counts["benchmark"].notna()]
    table = results.merge(
        specific[["benchmark", "concept_key", *cols]], on=["benchmark", "concept_key"], how="left"
    )
    if has_wildcard:
        wild = counts[counts["benchmark"].isna()].set_index("concept_key")[cols]
        need = table["count"].isna()
        for c in cols:
            table.loc[need, c] = table.loc[need, "concept_key"].map(wild[c])
    matched = table["count"].notna()
    lost = table[~matched].drop_duplicates(["benchmark", "concept_key"])
    per_concept_models = table[~matched].groupby(["benchmark", "concept_key"]).size()
    no_count = [
        {"benchmark": b, "concept": c, "models": int(per_concept_models[(b, k)])}
        for b, c, k in zip(lost["benchmark"], lost["concept"], lost["concept_key"])
    ]
    no_count += [{**r, "models": 0, "reason": "empty count"} for r in without_count_rows or []]
    table = table[matched].reset_index(drop=True)
    used_specific = set(zip(table["benchmark"], table["concept_key"]))
    used_keys = set(table["concept_key"])
    no_result = [
        {"benchmark": b, "concept": c}
        for b, c, k in zip(counts["benchmark"], counts["concept"], counts["concept_key"])
        if ((b, k) not in used_specific if b is not None else k not in used_keys)
    ]
    # concepts that some models have and others lack
    key_cols = ["benchmark", "concept_key"]
    all_models = sorted(set(table["model"]))
    per_key = table.groupby(key_cols, sort=True)["model"].nunique()
    partial = per_key[per_key < len(all_models)]
    missing_results: dict[str, list[dict]] = {}
    if len(partial):
        names = table.drop_duplicates(key_cols).set_index(key_cols)["concept"]
        sub = table.merge(partial.index.to_frame(index=False), on=key_cols)
        present = sub.groupby(key_cols, sort=True)["model"].agg(set)
        for (b, k), models_with in present.items():
            for model in all_models:
                if model not in models_with:
                    missing_results.setdefault(model, []).append({"benchmark": b, "concept": names[(b, k)]})
        missing_results = {m: missing_results[m] for m in sorted(missing_results)}
    if no_count:
        warnings.append(
            f"{len(no_count)} concepts of {results_label} have no count in {counts_label} "
            f"(listed under unmatched.no_count)"
        )
    if no_result:
        warnings.append(
            f"{len(no_result)} concepts of {counts_label} have no result in {results_label} "
            f"(listed under unmatched.no_result)"
        )
    if missing_results:
        warnings.append(
            f"{len(missing_results)} models lack results for concepts other models have "
            "(listed under unmatched.missing_results)"
        )
    if table.empty:
        raise BadInputError(f"no concept of {results_label} matched a concept of {counts_label}")
    unmatched = {
        "no_count": no_count,
        "no_result": no_result,
        "missing_results": missing_results,
        "benchmarks_only_in_counts": only_counts,
        "benchmarks_only_in_results": only_results,
    }
    if "pruned_count" in table.columns:
        lacking = table[table["pruned_count"].isna()].drop_duplicates(["benchmark", "concept_key"])
        unmatched["no_pruned_count"] = [
            {"benchmark": b, "concept": c} for b, c in zip(lacking["benchmark"], lacking["concept"])
        ]
        if len(lacking):
            warnings.append(
                f"{len(lacking)} concepts have a count but no pruned count; the pruned fits leave them out"
            )
    return _Inputs(table, unmatched, warnings)


# --- statistics ---------------------------------------------------------------------------------------------


def log_count(count: np.ndarray) -> np.ndarray:
    """The study's x: ln(max(count, 1))."""
    return np.log(np.maximum(np.asarray(count, dtype=float), 1.0))


def binned_fit(count: np.ndarray, accuracy: np.ndarray, n_bins: int = 12) -> dict:
    """The published binned fit (see the module docstring): bins with their ln-count range, size and mean
    accuracy, and Pearson r and p between the inner edges and the inner bins' means."""
    from scipy.stats import pearsonr

    x = log_count(count)
    y = np.asarray(accuracy, dtype=float)
    edges = np.linspace(x.min(), x.max(), n_bins)
    which = np.digitize(x, edges, right=True)
    bins = []
    for i in range(n_bins):
        sel = which == i
        bins.append(
            {
                "lo": float(edges[i - 1] if i else edges[0]),
                "hi": float(edges[i]),
                "n": int(sel.sum()),
                "mean": float(y[sel].mean()) if sel.any() else None,
            }
        )
    inner = [(b["hi"], b["mean"]) for b in bins[1:-1] if b["mean"] is not None]
    r = p = None
    if len(inner) >= 3:
        ex, my = np.array(inner).T
        if np.ptp(ex) > 0 and np.ptp(my) > 0:
            res = pearsonr(ex, my)
            r, p = float(res.statistic), float(res.pvalue)
    return {"pearson_r": r, "p": p, "n_bins": n_bins, "inner_bins_used": len(inner), "bins": bins}


def bin_index(count: np.ndarray, n_bins: int) -> np.ndarray:
    """Each concept's bin in the binned fit."""
    x = log_count(count)
    return np.digitize(x, np.linspace(x.min(), x.max(), n_bins), right=True)


def fixed_effect_slope(x: np.ndarray, y: np.ndarray, groups: np.ndarray) -> float | None:
    """The least-squares slope of y on x with one intercept per group: the within estimator with unit
    weights (the same algebra as every bootstrap draw; tests check it against statsmodels OLS with group
    dummies). None when x does not vary within any group."""
    codes = np.unique(np.asarray(groups), return_inverse=True)[1]
    slope = float(weighted_fixed_effect_slopes(np.ones((1, len(x))), x, y, codes)[0, 0])
    return slope if math.isfinite(slope) else None


def bootstrap_weights(rng: np.random.Generator, n_draws: int, n: int) -> np.ndarray:
    """(n_draws, n) weights: how often each of ``n`` concepts was drawn in each resample, from
    ``rng.integers(0, n, (n_draws, n))`` (successive calls continue the same stream, so drawing in chunks
    gives the same draws as drawing at once)."""
    draws = rng.integers(0, n, size=(n_draws, n))
    flat = (draws + (np.arange(n_draws, dtype=np.int64) * n)[:, None]).ravel()
    return np.bincount(flat, minlength=n_draws * n).reshape(n_draws, n).astype(np.float64)


def weighted_fixed_effect_slopes(
    weights: np.ndarray, x: np.ndarray, ys: np.ndarray, codes: np.ndarray
) -> np.ndarray:
    """(draws, models) slopes of each column of ``ys`` on ``x`` with a fixed effect per group, by weighted
    least squares with each row of ``weights``, all at once.

    Within estimator: slope = sum_g [Sxy - Sx Sy / Sw] / sum_g [Sxx - Sx^2 / Sw] over groups g, where S are
    the weighted sums of a group (a group with no weight drops out). The group sums of all draws are one
    ``numpy.add.reduceat`` over the concepts ordered by group (no BLAS call, whose threads contend on a
    busy machine). x and y are centred first, which changes no slope and keeps the sums well conditioned.
    A draw with no variation of x within any group gives NaN."""
    w = np.asarray(weights, dtype=np.float64)
    x = np.asarray(x, dtype=np.float64)
    ys = np.asarray(ys, dtype=np.float64)
    if ys.ndim == 1:
        ys = ys[:, None]
    codes = np.asarray(codes)
    if np.any(codes[1:] < codes[:-1]):
        order = np.argsort(codes, kind="stable")
        w, x, ys, codes = w[:, order], x[order], ys[order], codes[order]
    x = x - x.mean()
    ys = ys - ys.mean(axis=0)
    starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]])

    def group_sums(v: np.ndarray) -> np.ndarray:
        return np.add.reduceat(w * v, starts, axis=1)

    sw = np.add.reduceat(w, starts, axis=1)
    safe = np.where(sw > 0, sw, 1.0)
    sx = group_sums(x)
    den = (group_sums(x * x) - sx * sx / safe).sum(axis=1)
    scale = (w * (x * x)).sum(axis=1)
    out = np.empty((w.shape[0], ys.shape[1]))
    for j in range(ys.shape[1]):
        y = ys[:, j]
        num = (group_sums(x * y) - sx * group_sums(y) / safe).sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[:, j] = num / den
    out[den <= 1e-12 * np.maximum(scale, 1e-300)] = np.nan
    return out


def percentile_ci(samples: np.ndarray) -> list[float] | None:
    """2.5 and 97.5 percentiles of the finite samples (None with fewer than MIN_DRAWS)."""
    s = samples[np.isfinite(samples)]
    if s.size < MIN_DRAWS:
        return None
    return [float(np.percentile(s, 2.5)), float(np.percentile(s, 97.5))]


def spearman(count: np.ndarray, accuracy: np.ndarray) -> dict:
    from scipy.stats import spearmanr

    if len(count) < 3 or np.ptp(count) == 0 or np.ptp(accuracy) == 0:
        return {"rho": None, "p": None}
    r = spearmanr(count, accuracy)
    return {"rho": float(r.statistic), "p": float(r.pvalue)}


def _sig_pos(ci) -> bool:
    return bool(ci) and ci[0] > 0


def _fmt(ci) -> str:
    return "[n/a]" if not ci else f"[{ci[0]:.3g}, {ci[1]:.3g}]"


def concept_verdict(m: dict) -> tuple[str, str]:
    """(verdict, one-line reason) from a model's summary block, by the rule in the module docstring."""
    if m.get("slope") is None or m.get("ci") is None:
        return "inconclusive", f"too little data for a slope ({m.get('n_concepts', 0)} concepts)"
    raw = f"slope {m['slope']:.3g} points per tenfold frequency, 95% CI {_fmt(m['ci'])}"
    if not _sig_pos(m["ci"]):
        return "no_frequency_effect", f"the {raw} is not above 0"
    pruned = m.get("pruned")
    if not pruned:
        return "inconclusive", (
            f"the {raw} is above 0, but no similarity control was given "
            "(--pruned-count-column or --test-items with --prune-threshold)"
        )
    if pruned.get("ci") is None:
        return "inconclusive", f"the {raw} is above 0, but the pruned counts leave too little data to refit"
    drop = pruned.get("difference") or {}
    tail = f"pruned slope {pruned['slope']:.3g} {_fmt(pruned['ci'])}, drop {_fmt(drop.get('ci'))}"
    if _sig_pos(pruned["ci"]):
        return "frequency_effect_persists", f"the {raw} stays above 0 on pruned counts: {tail}"
    if _sig_pos(drop.get("ci")):
        return (
            "explained_by_similarity",
            f"the {raw} vanishes on pruned counts and the drop is significant: {tail}",
        )
    return "inconclusive", f"the {raw} is not significant on pruned counts, nor is the drop: {tail}"


def _model_fits(
    counts: np.ndarray, acc: np.ndarray, codes: np.ndarray, slopes_boot: np.ndarray, n_bins: int
) -> dict:
    x = np.log10(np.maximum(counts, 1.0))
    enough = len(acc) >= MIN_CONCEPTS and np.ptp(x) > 0
    slope = fixed_effect_slope(x, acc, codes) if enough else None
    return {
        "binned": binned_fit(counts, acc, n_bins),
        "slope": slope,
        "ci": percentile_ci(slopes_boot) if enough else None,
        "bootstrap_draws": int(np.isfinite(slopes_boot).sum()) if enough else 0,
        "spearman": spearman(counts, acc),
    }


def _pruned_block(
    raw: dict,
    pruned: np.ndarray,
    counts: np.ndarray,
    acc: np.ndarray,
    codes: np.ndarray,
    raw_boot: np.ndarray,
    pruned_boot: np.ndarray,
    bins: int,
) -> dict:
    """The fits on pruned counts, and the drop (raw minus pruned slope) with its paired interval."""
    if len(pruned) >= 2:
        fits = _model_fits(pruned, acc, codes, pruned_boot, bins)
    else:
        fits = {"binned": None, "slope": None, "ci": None, "bootstrap_draws": 0, "spearman": None}
    both = raw["slope"] is not None and fits["slope"] is not None
    return {
        "n_concepts": int(len(pruned)),
        "concepts_with_lower_count": int((pruned < counts).sum()),
        **fits,
        "difference": {
            "slope": raw["slope"] - fits["slope"] if both else None,
            "ci": percentile_ci(raw_boot - pruned_boot) if both else None,
        },
    }


def analyze_table(
    table: pd.DataFrame,
    *,
    bins: int = 12,
    n_boot: int = 1000,
    seed: int = 0,
    pruned_source: str | None = None,
) -> dict[str, dict]:
    """Per model: binned fit, fixed-effect slope with bootstrap interval, Spearman, pruned fits and verdict.

    ``table`` has one row per (model, benchmark, concept_key) with ``accuracy`` (percent) and ``count``, and
    ``pruned_count`` when ``pruned_source`` says where pruned counts came from. Models with the same concepts
    share one set of bootstrap draws (so their intervals are comparable); the draws depend only on the seed
    and the model's concepts."""
    has_pruned = pruned_source is not None and "pruned_count" in table.columns
    table = table.sort_values(["model", "benchmark", "concept_key"], kind="stable")
    per_model = {m: g for m, g in table.groupby("model", sort=True)}
    # models with identical concept lists share draws and are solved together
    by_signature: dict[tuple, list[str]] = {}
    for m, g in per_model.items():
        by_signature.setdefault(tuple(zip(g["benchmark"], g["concept_key"])), []).append(m)
    models: dict[str, dict] = {}
    for _, names in by_signature.items():
        g0 = per_model[names[0]]
        n = len(g0)
        codes = np.unique(g0["benchmark"].to_numpy(), return_inverse=True)[1]
        counts = g0["count"].to_numpy(dtype=float)
        ys = np.column_stack([per_model[m]["accuracy"].to_numpy(dtype=float) for m in names])
        x = np.log10(np.maximum(counts, 1.0))
        raw_boot = np.full((n_boot, len(names)), np.nan)
        pruned_boot = np.full((n_boot, len(names)), np.nan)
        if has_pruned:
            pc = g0["pruned_count"].to_numpy(dtype=float)
            ok = np.isfinite(pc)
            pcodes = np.unique(g0["benchmark"].to_numpy()[ok], return_inverse=True)[1]
            px = np.log10(np.maximum(pc[ok], 1.0))
        if n >= 2:  # draws in chunks of about BOOTSTRAP_CELLS weights, the same stream as drawing at once
            rng = np.random.default_rng(seed)
            step = max(1, BOOTSTRAP_CELLS // n)
            for a in range(0, n_boot, step):
                w = bootstrap_weights(rng, min(step, n_boot - a), n)
                raw_boot[a : a + len(w)] = weighted_fixed_effect_slopes(w, x, ys, codes)
                if has_pruned and ok.sum() >= 2:
                    pruned_boot[a : a + len(w)] = weighted_fixed_effect_slopes(w[:, ok], px, ys[ok], pcodes)
        for j, m in enumerate(names):
            acc = ys[:, j]
            block = {
                "n_concepts": int(n),
                "n_benchmarks": int(codes.max()) + 1,
                "accuracy_mean": float(acc.mean()),
            }
            block.update(_model_fits(counts, acc, codes, raw_boot[:, j], bins))
            block["pruned"] = None
            if has_pruned:
                block["pruned"] = {
                    "source": pruned_source,
                    **_pruned_block(
                        block, pc[ok], counts[ok], acc[ok], pcodes, raw_boot[:, j], pruned_boot[:, j], bins
                    ),
                }
            block["verdict"], block["verdict_reason"] = concept_verdict(block)
            models[m] = block
    return {m: models[m] for m in sorted(models)}


# --- end to end ---------------------------------------------------------------------------------------------


def inputs_from_counts(cfg: ConceptAnalysisConfig, normalize) -> tuple[_Inputs, dict]:
    results, scale, w_res = load_results_table(cfg.results, normalize, cfg.accuracy_scale)
    counts, w_cnt, without = load_counts_table(
        cfg.counts, normalize, cfg.count_column, cfg.pruned_count_column
    )
    inputs = join_counts(
        results, counts, counts_label=cfg.counts, results_label=cfg.results, without_count_rows=without
    )
    inputs.warnings[:0] = w_res + w_cnt
    source = {
        "kind": "file",
        "path": cfg.counts,
        "count_column": cfg.count_column,
        "pruned_count_column": cfg.pruned_count_column,
        "normalization": "simple",
    }
    return inputs, {"accuracy": scale, "counts": source}


__all__ = [
    "ConceptAnalysisConfig",
    "analyze_table",
    "binned_fit",
    "fixed_effect_slope",
    "weighted_fixed_effect_slopes",
    "bootstrap_weights",
    "concept_verdict",
    "load_results_table",
    "load_counts_table",
    "join_counts",
    "QUESTION",
    "COUNT_KINDS",
    "VERDICTS",
]
