"""Impact of contamination on reported accuracy: per model, accuracy on all items vs on clean items
(results loaded by :func:`freqindex.evals.load_results`)."""

from __future__ import annotations

import numpy as np


def _gain_ci(
    all_v: np.ndarray, clean_mask: np.ndarray, rng_seed: int = 0, n_resamples: int = 2000
) -> tuple[float, float]:
    """Bootstrap 95% interval of mean(all) - mean(clean), resampling items (scipy.stats.bootstrap)."""
    from scipy.stats import bootstrap

    def stat(values, mask, axis=-1):
        m = mask.astype(bool)
        tot = values.mean(axis=axis)
        cnt = np.maximum(m.sum(axis=axis), 1)
        clean = np.where(m, values, 0).sum(axis=axis) / cnt
        return tot - clean

    if clean_mask.all() or not clean_mask.any():
        return (0.0, 0.0)
    res = bootstrap(
        (all_v, clean_mask.astype(float)),
        stat,
        paired=True,
        vectorized=True,
        n_resamples=n_resamples,
        method="percentile",
        random_state=rng_seed,
    )
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def impact(
    records: list[dict],
    results: dict[str, dict[str, float]],
    thresholds: tuple[float, ...] = (0.2, 0.4, 0.6, 0.8),
) -> dict:
    """Per model: accuracy on all items and on clean items (bucket != dirty), gain with a bootstrap 95% CI,
    and a sweep: accuracy on items with coverage below each threshold."""
    cov = {r["id"]: r["coverage"] for r in records}
    bucket = {r["id"]: r["bucket"] for r in records}
    models = {}
    for model, by_id in sorted(results.items()):
        ids = [i for i in by_id if i in cov]
        if not ids:
            continue
        v = np.array([by_id[i] for i in ids], dtype=float)
        clean = np.array([bucket[i] != "dirty" for i in ids])
        lo, hi = _gain_ci(v, clean)
        sweep = []
        for t in thresholds:
            keep = np.array([(cov[i] is None) or cov[i] < t for i in ids])
            sweep.append(
                {
                    "coverage_below": t,
                    "n": int(keep.sum()),
                    "accuracy": float(v[keep].mean()) if keep.any() else None,
                }
            )
        models[model] = {
            "n_all": len(ids),
            "accuracy_all": float(v.mean()),
            "n_clean": int(clean.sum()),
            "accuracy_clean": float(v[clean].mean()) if clean.any() else float("nan"),
            "gain": float(v.mean() - (v[clean].mean() if clean.any() else v.mean())),
            "gain_ci": [lo, hi],
            "sweep": sweep,
        }
    return {"models": models}
