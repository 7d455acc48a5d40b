"""The analysis end to end: concepts -> frequencies (and pruned frequencies) -> similarity -> per-model fits.

``summary.json`` schema (``schema_version`` 1)::

    {"schema_version": 1, "question": str, "settings": {...}, "data": {n_items, n_items_with_concepts,
     n_concepts, similarity, prune_threshold, pruned_documents: {T: n}, index: {...}},
     "models": {MODEL: {n_items, n_concepts, accuracy,
        frequency:   {slope, ci, spearman: {rho, p}, bins: [{lo, hi, n, accuracy, x_mean}]},
        similarity:  {slope, ci, spearman, bins},
        frequency_controlled: {slope, ci}, similarity_controlled: {slope, ci}, lr_test: {statistic, p},
        stratified: [{similarity_lo, similarity_hi, n, accuracy, slope, ci}],
        pruned: {threshold, slope, ci, spearman}, pruned_sweep: [...] (with --prune-sweep),
        verdict, verdict_reason}}}

Slopes are logistic-regression coefficients: per unit of log10(1 + document frequency), per unit of
similarity; intervals are 95% bootstrap intervals over concepts.
"""

from __future__ import annotations

import hashlib
import json
import math

import numpy as np

from freqindex.analysis import core
from freqindex.analysis.stats import analyze_model
from freqindex.errors import UsageError
from freqindex.evals import EvalItem
from freqindex.suffix.index import Index

QUESTION = (
    "Is the frequency effect (accuracy rising with the log of how often an item's concepts appear in "
    "pretraining) a similarity effect (the corpus holding near-copies of the items)?"
)


def run_analysis(
    index: Index,
    items: list[EvalItem],
    results: dict[str, dict[str, float]],
    item_concepts: dict[str, list[str]],
    *,
    eval_name: str = "eval",
    aggregate: str = "min",
    similarity: str = "auto",
    prune_threshold: float = 0.9,
    prune_sweep: list[float] | None = None,
    n_boot: int = 200,
    seed: int = 0,
    progress=None,
    covariate: str | None = None,
    neighbors_mode: str = "auto",
    candidates: int | None = None,
) -> tuple[list[dict], dict]:
    """(per item x model rows, summary). ``covariate="distance"`` adds each item's distance from the corpus
    (mean per-token ∞-gram surprisal, :mod:`freqindex.query.distance`) to the fits: ``models[M]["distance"]``.
    ``neighbors_mode`` / ``candidates``: how neighbour similarity is found (exhaustive over the index's
    vectors, or candidates mode; see freqindex.query.neighbors)."""
    if aggregate not in core.AGGREGATES:
        raise UsageError(f"unknown --aggregate {aggregate!r}; choose min, gmean or max")
    if not 0 < prune_threshold <= 1:
        raise UsageError("--prune-threshold takes a similarity in (0, 1]")
    if not results:
        raise UsageError("no model results matched the eval items")
    step = progress or (lambda name: None)
    names = sorted({c for cs in item_concepts.values() for c in cs})
    step("concept frequencies")
    docs = core.concept_doc_ids(index, names)
    freq = {c: int(d.size) for c, d in docs.items()}
    step("similarity")
    sim = core.similarity(
        index, items, similarity, eval_name, neighbors_mode=neighbors_mode, candidates=candidates
    )
    thresholds = sorted(set([prune_threshold] + list(prune_sweep or [])))
    if sim.kind == "verbatim" and min(thresholds) < 0.5:
        raise UsageError("with --similarity verbatim, pruning thresholds must be at least 0.5")
    pruned_sets = {t: core.pruned_docs(sim, t) for t in thresholds}
    pruned_freq = {
        t: {
            c: int(d.size - np.isin(d, p, assume_unique=True).sum()) if p.size else int(d.size)
            for c, d in docs.items()
        }
        for t, p in pruned_sets.items()
    }
    distance = None
    if covariate is not None:
        if covariate != "distance":
            raise UsageError(f"unknown --covariate {covariate!r}; choose distance")
        from freqindex.query.distance import item_distances

        step("distance")
        distance = {d.id: d for d in item_distances(index, [(it.id, it.text) for it in items])}
    step("fits")
    per_item = {}
    for it in items:
        cs = [c for c in item_concepts.get(it.id, []) if c in freq]
        if not cs:
            continue
        f, k = core.aggregate([freq[c] for c in cs], aggregate)
        pf = {t: core.aggregate([pruned_freq[t][c] for c in cs], aggregate)[0] for t in thresholds}
        per_item[it.id] = {"concepts": cs, "primary_concept": cs[k], "frequency": f, "pruned": pf}
    rows = []
    models = {}
    for model in sorted(results):
        res = results[model]
        ids = [it.id for it in items if it.id in per_item and it.id in res]
        y = np.array([res[i] for i in ids], dtype=float)
        lf = np.array([math.log10(1 + per_item[i]["frequency"]) for i in ids])
        s = np.array([sim.value[i] for i in ids], dtype=float)
        groups = np.array([per_item[i]["primary_concept"] for i in ids], dtype=object)
        plf = {t: np.array([math.log10(1 + per_item[i]["pruned"][t]) for i in ids]) for t in thresholds}
        cov = None
        if distance is not None:
            cov = np.array([distance[i].mean_surprisal for i in ids], dtype=float)
            if np.isnan(cov).any():  # one-token items have no scored token: the median stands in
                cov = np.where(np.isnan(cov), np.nanmedian(cov), cov)
        m = analyze_model(
            y,
            lf,
            s,
            groups,
            plf,
            prune_threshold,
            n_boot=n_boot,
            seed=seed,
            covariate=cov,
            covariate_name="mean_surprisal" if cov is not None else None,
        )
        m["pruned"] = {"threshold": prune_threshold, **m["pruned"]}
        models[model] = m
        for i, yy in zip(ids, y.tolist()):
            p = per_item[i]
            rows.append(
                {
                    "id": i,
                    "model": model,
                    "correct": yy,
                    "concepts": p["concepts"],
                    "primary_concept": p["primary_concept"],
                    "frequency": p["frequency"],
                    "log10_frequency": math.log10(1 + p["frequency"]),
                    "pruned_frequency": p["pruned"][prune_threshold],
                    "similarity": sim.value[i],
                    "similarity_doc_id": sim.doc.get(i),
                    "longest_match_chars": sim.longest_chars[i],
                    "longest_match_fraction": sim.longest_fraction[i],
                }
            )
    summary = {
        "schema_version": 1,
        "question": QUESTION,
        "settings": {
            "aggregate": aggregate,
            "similarity": sim.kind,
            "neighbors_mode": sim.neighbors_mode,
            "prune_threshold": prune_threshold,
            "prune_sweep": thresholds if prune_sweep else None,
            "bootstrap": n_boot,
            "seed": seed,
            "frequency": "documents holding any form of the concept (whole word), log10(1 + df)",
            "covariate": covariate,
        },
        "data": {
            "eval": eval_name,
            "n_items": len(items),
            "n_items_with_concepts": len(per_item),
            "n_concepts": len(names),
            "concepts_with_zero_frequency": sum(1 for v in freq.values() if v == 0),
            "similarity": sim.kind,
            "pruned_documents": {str(t): int(p.size) for t, p in pruned_sets.items()},
            "index": {
                "path": str(index.path),
                "documents": index.total_docs,
                "manifest_sha256": hashlib.sha256(
                    json.dumps(index.manifest, sort_keys=True).encode()
                ).hexdigest(),
            },
        },
        "models": models,
    }
    return rows, summary


__all__ = ["run_analysis", "QUESTION"]
