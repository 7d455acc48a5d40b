"""The per-concept analysis end to end (``analyze --concept-results``): counts from a file
(:mod:`freqindex.analysis.per_concept`) or from an index (:mod:`freqindex.analysis.concept_index`), the fits,
and the rows of items.parquet. Kept apart from both so that neither imports the other."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from freqindex.analysis import concept_index, per_concept
from freqindex.analysis.per_concept import (
    QUESTION,
    ConceptAnalysisConfig,
    analyze_table,
    bin_index,
    log_count,
)


def run_concept_analysis(config: ConceptAnalysisConfig, progress=None) -> tuple[pd.DataFrame, dict]:
    """The per-concept analysis end to end: (rows, summary).

    ``rows``: one row per model and concept (the columns of items.parquet, see report/per_concept.py);
    ``summary``: ``{"level": "concept", "question", "settings", "data", "models": {MODEL: {binned: {pearson_r,
    p, bins: [{lo, hi, n, mean}]}, slope, ci, spearman, pruned, verdict, verdict_reason, ...}}, "unmatched",
    "warnings"}``. ``progress(stage)`` is called at each stage."""
    from freqindex.text.normalize import get_normalizer

    config.validate()
    step = progress or (lambda stage: None)
    pruned_source = None
    if config.index is not None:
        step("concept counts")
        inputs, data = concept_index.inputs_from_index(config, step)
        if config.test_items is not None:
            pruned_source = f"index documents below similarity {config.prune_threshold} to every test item"
    else:
        step("reading counts and results")
        inputs, data = per_concept.inputs_from_counts(config, get_normalizer("simple").document)
        if config.pruned_count_column is not None:
            pruned_source = f"column {config.pruned_count_column!r} of {config.counts}"
    table = inputs.table
    step("fits")
    models = analyze_table(
        table, bins=config.bins, n_boot=config.bootstrap, seed=config.seed, pruned_source=pruned_source
    )
    rows = _rows(table, config, models)
    name = config.name or Path(config.results).name.split(".")[0]
    summary = {
        "schema_version": 1,
        "level": "concept",
        "question": QUESTION,
        "settings": {
            "results": config.results,
            "counts": config.counts,
            "index": config.index,
            "concepts": config.vocabulary,
            "count": data["counts"].get("count", config.count_column),
            "pruned_count_column": config.pruned_count_column,
            "test_items": config.test_items,
            "prune_threshold": config.prune_threshold if config.test_items else None,
            "bins": config.bins,
            "bootstrap": config.bootstrap,
            "seed": config.seed,
            "accuracy_scale": config.accuracy_scale,
            "slope": "accuracy (percentage points) per log10(max(count, 1)), fixed effect per benchmark",
            "binned_x": "ln(max(count, 1)), pooled over benchmarks",
        },
        "data": {
            "name": name,
            "accuracy_scale_found": data["accuracy"]["scale"],
            "accuracy_scale_reason": data["accuracy"]["reason"],
            "accuracy_unit": "percent",
            "counts": data["counts"],
            "n_models": int(table["model"].nunique()),
            "n_concepts": int(table[["benchmark", "concept_key"]].drop_duplicates().shape[0]),
            "benchmarks": sorted(set(table["benchmark"])),
            "concepts_with_zero_count": int(
                (table.drop_duplicates(["benchmark", "concept_key"])["count"] == 0).sum()
            ),
            **{k: v for k, v in data.items() if k not in ("accuracy", "counts")},
        },
        "models": models,
        "unmatched": inputs.unmatched,
        "warnings": inputs.warnings,
    }
    return rows, summary


def _rows(table: pd.DataFrame, cfg: ConceptAnalysisConfig, models: dict) -> pd.DataFrame:
    """items.parquet: one row per model and concept, with the bin each concept fell in."""
    t = table.sort_values(["model", "benchmark", "concept_key"], kind="stable").reset_index(drop=True)
    name = cfg.name or Path(cfg.results).name.split(".")[0]
    out = pd.DataFrame(
        {
            "eval": name,
            "model": t["model"],
            "benchmark": t["benchmark"],
            "concept": t["concept"],
            "concept_key": t["concept_key"],
            "accuracy": t["accuracy"].astype(float),
            "count": t["count"].astype(float),
            "log_count": log_count(t["count"].to_numpy()),
            "log10_count": np.log10(np.maximum(t["count"].to_numpy(dtype=float), 1.0)),
        }
    )
    out["bin"] = 0
    pruned = "pruned_count" in t.columns
    out["pruned_count"] = t["pruned_count"].astype(float) if pruned else np.nan
    out["pruned_bin"] = pd.array([pd.NA] * len(out), dtype="Int64")
    for _, g in out.groupby("model", sort=False):
        out.loc[g.index, "bin"] = bin_index(g["count"].to_numpy(), cfg.bins)
        if pruned:
            ok = g["pruned_count"].notna()
            if ok.any():
                idx = g.index[ok.to_numpy()]
                out.loc[idx, "pruned_bin"] = bin_index(g.loc[idx, "pruned_count"].to_numpy(), cfg.bins)
    out["verdict"] = out["model"].map({m: b["verdict"] for m, b in models.items()})
    return out


__all__ = ["run_concept_analysis"]
