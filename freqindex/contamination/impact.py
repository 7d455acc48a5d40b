"""Impact of contamination on reported accuracy: per model, accuracy on all items vs on clean items.

Results layouts: long (``id, model, correct`` or ``score``; .jsonl/.csv/.parquet), or wide (GSM8K's
example_model_solutions.jsonl: one row per item keyed by its question text, every model a key holding
``{"is_correct": bool}``). Wide rows are matched to eval items by the item's question text.
"""

from __future__ import annotations

import numpy as np

from freqindex.errors import BadInputError
from freqindex.evals import EvalItem, load_eval_rows


def load_results(
    path: str, items: list[EvalItem], key_field: str = "question"
) -> dict[str, dict[str, float]]:
    """model -> item id -> correctness (0..1)."""
    rows = load_eval_rows(path)
    if not rows:
        raise BadInputError(f"{path}: no results")
    out: dict[str, dict[str, float]] = {}
    if {"model"} <= set(rows[0]) and ({"correct"} <= set(rows[0]) or {"score"} <= set(rows[0])):
        ids = {it.id for it in items}
        for i, r in enumerate(rows, 1):
            v = r.get("correct", r.get("score"))
            if r.get("id") is None or v is None:
                raise BadInputError(f"{path}: row {i} needs id, model and correct (or score)")
            if str(r["id"]) in ids:
                out.setdefault(str(r["model"]), {})[str(r["id"])] = _as_score(v, path, i)
        return out
    by_text = {str(it.row.get(key_field, "")).strip(): it.id for it in items}
    for r in rows:
        item_id = by_text.get(str(r.get(key_field, "")).strip())
        if item_id is None:
            continue
        for model, v in r.items():
            if isinstance(v, dict) and "is_correct" in v:
                out.setdefault(model, {})[item_id] = float(bool(v["is_correct"]))
    if not out:
        raise BadInputError(
            f"{path}: no result matched an eval item (long layout needs id, model, correct; "
            f"the wide layout is matched by {key_field!r})"
        )
    return out


def _as_score(v, path: str, row: int) -> float:
    if isinstance(v, bool):
        return float(v)
    if isinstance(v, str):
        if v.strip().lower() in ("true", "yes", "1", "correct"):
            return 1.0
        if v.strip().lower() in ("false", "no", "0", "incorrect", "wrong"):
            return 0.0
    try:
        return float(v)
    except (TypeError, ValueError):
        raise BadInputError(f"{path}: row {row}: correctness {v!r} is not a boolean or a number") from None


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


def impact_png(imp: dict) -> str | None:
    if not imp["models"]:
        return None
    import base64
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.2))
    for model, d in imp["models"].items():
        xs = [s["coverage_below"] for s in d["sweep"] if s["accuracy"] is not None]
        ys = [s["accuracy"] for s in d["sweep"] if s["accuracy"] is not None]
        ax.plot(xs, ys, marker="o", label=model)
    ax.set_xlabel("keep items with coverage below")
    ax.set_ylabel("accuracy")
    ax.legend(fontsize=7)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()
