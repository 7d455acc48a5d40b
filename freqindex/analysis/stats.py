"""Statistics of ``freqindex analyze``: logistic fits (statsmodels GLM, binomial family), Spearman
correlations and chi-square tails (scipy), and intervals from a bootstrap over *concepts*.

Items that share a concept are not independent (one concept's frequency is shared by all of them), so every
interval resamples concepts with replacement, keeping all items of a drawn concept, and refits: the 2.5 and
97.5 percentiles of the refitted coefficient are the 95% interval. A draw is expressed as integer frequency
weights per item (how many times its concept was drawn), so no data is copied.

Verdict rule (per model; "significant" = the 95% interval excludes 0 with a positive slope):

- ``no_frequency_effect``: the raw frequency slope is not significantly positive;
- ``frequency_effect_persists``: the raw slope is, the frequency coefficient stays significantly positive
  when similarity is in the model, adding frequency to a similarity-only model is significant (likelihood
  ratio test, p < alpha), and the slope after pruning near-copies is still significantly positive;
- ``explained_by_similarity``: the raw slope is significant, but with similarity in the model the frequency
  coefficient's interval includes 0 (or the likelihood ratio test is not significant), while similarity's
  own coefficient is significantly positive;
- ``inconclusive``: anything else (e.g. the effect vanishes under control but similarity does not explain
  it, or the controlled effect persists but pruning removes it).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from freqindex.extras import require

VERDICTS = ("frequency_effect_persists", "explained_by_similarity", "no_frequency_effect", "inconclusive")


@dataclass
class Fit:
    params: np.ndarray  # intercept first
    llf: float
    ok: bool


def _glm(y: np.ndarray, X: np.ndarray, w: np.ndarray | None = None, start=None) -> Fit:
    sm = require("statsmodels.api", "analyze", "analyze")
    PerfectSeparationWarning = require(
        "statsmodels.tools.sm_exceptions", "analyze", "analyze"
    ).PerfectSeparationWarning

    if w is not None:
        keep = w > 0
        y, X, w = y[keep], X[keep], w[keep]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PerfectSeparationWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        try:
            r = sm.GLM(y, X, family=sm.families.Binomial(), freq_weights=w).fit(
                start_params=start, maxiter=50
            )
        except (ValueError, np.linalg.LinAlgError):
            return Fit(np.full(X.shape[1], np.nan), float("nan"), False)
    params = np.asarray(r.params, dtype=float)
    ok = bool(np.all(np.isfinite(params)))
    return Fit(params, float(r.llf), ok)


def design(*cols: np.ndarray) -> np.ndarray:
    return np.column_stack([np.ones(len(cols[0]))] + [np.asarray(c, dtype=float) for c in cols])


class ConceptBootstrap:
    """Cluster bootstrap draws over concept groups, shared by every fit of one model (same draws)."""

    def __init__(self, groups: np.ndarray, n_boot: int, seed: int = 0):
        _, self.codes = np.unique(groups, return_inverse=True)
        self.n_groups = int(self.codes.max()) + 1 if len(self.codes) else 0
        rng = np.random.default_rng(seed)
        self.draws = (
            [
                np.bincount(rng.integers(0, self.n_groups, self.n_groups), minlength=self.n_groups)
                for _ in range(n_boot)
            ]
            if self.n_groups
            else []
        )

    def weights(self, mask: np.ndarray | None = None):
        for d in self.draws:
            w = d[self.codes].astype(float)
            yield w if mask is None else w[mask]


def coef_with_ci(
    y: np.ndarray, X: np.ndarray, boot: ConceptBootstrap, which: list[int], mask: np.ndarray | None = None
) -> dict:
    """Coefficients ``which`` of the logistic fit with bootstrap 95% intervals."""
    if mask is not None:
        y, X = y[mask], X[mask]
    n = int(len(y))
    out = {"n": n}
    if n < 10 or len(np.unique(y)) < 2 or any(np.ptp(X[:, j]) == 0 for j in which):
        for j in which:
            out[j] = {"slope": None, "ci": None}
        return out
    full = _glm(y, X)
    samples = []
    for w in boot.weights(mask):
        if w.sum() < 10:
            continue
        f = _glm(y, X, w, start=full.params if full.ok else None)
        if f.ok:
            samples.append(f.params)
    s = np.asarray(samples)
    for j in which:
        slope = float(full.params[j]) if full.ok else None
        ci = (
            [float(np.percentile(s[:, j], 2.5)), float(np.percentile(s[:, j], 97.5))]
            if len(s) >= 20
            else None
        )
        out[j] = {"slope": slope, "ci": ci}
    out["llf"] = full.llf
    out["params"] = full.params.tolist() if full.ok else None
    out["bootstrap_draws"] = len(s)
    return out


def binned(x: np.ndarray, y: np.ndarray, n_bins: int = 8) -> list[dict]:
    """Accuracy in quantile bins of ``x`` (ties kept together)."""
    if len(x) == 0:
        return []
    edges = np.unique(np.quantile(x, np.linspace(0, 1, n_bins + 1)))
    if len(edges) < 2:
        return [
            {
                "lo": float(x.min()),
                "hi": float(x.max()),
                "n": int(len(x)),
                "accuracy": float(y.mean()),
                "x_mean": float(x.mean()),
            }
        ]
    idx = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, len(edges) - 2)
    out = []
    for b in range(len(edges) - 1):
        m = idx == b
        if m.any():
            out.append(
                {
                    "lo": float(edges[b]),
                    "hi": float(edges[b + 1]),
                    "n": int(m.sum()),
                    "accuracy": float(y[m].mean()),
                    "x_mean": float(x[m].mean()),
                }
            )
    return out


def spearman(x: np.ndarray, y: np.ndarray) -> dict:
    from scipy.stats import spearmanr

    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return {"rho": None, "p": None}
    r = spearmanr(x, y)
    return {"rho": float(r.statistic), "p": float(r.pvalue)}


def lr_test(llf_full: float, llf_reduced: float, df: int = 1) -> dict:
    from scipy.stats import chi2

    if not (np.isfinite(llf_full) and np.isfinite(llf_reduced)):
        return {"statistic": None, "p": None}
    stat = max(0.0, 2.0 * (llf_full - llf_reduced))
    return {"statistic": float(stat), "p": float(chi2.sf(stat, df))}


def _sig_pos(d: dict | None) -> bool:
    return bool(d and d.get("ci") and d["ci"][0] > 0)


def _includes_zero(d: dict | None) -> bool:
    return bool(d and d.get("ci") and d["ci"][0] <= 0 <= d["ci"][1])


def verdict(m: dict, alpha: float = 0.05) -> tuple[str, str]:
    """(verdict, one-line reason) from a model's summary block (see the module docstring)."""
    raw, ctl, sim = m["frequency"], m["frequency_controlled"], m["similarity_controlled"]
    lr_p = (m.get("lr_test") or {}).get("p")
    pruned = m.get("pruned") or {}
    if raw.get("ci") is None:
        return "inconclusive", "too little data or no variation to fit the frequency slope"
    if not _sig_pos(raw):
        return (
            "no_frequency_effect",
            f"the raw frequency slope's 95% interval {_fmt(raw['ci'])} is not above 0",
        )
    lr_sig = lr_p is not None and lr_p < alpha
    if _sig_pos(ctl) and lr_sig:
        if pruned.get("ci") is None or _sig_pos(pruned):
            return "frequency_effect_persists", (
                f"frequency slope {_fmt(raw['ci'])} stays positive controlling for similarity {_fmt(ctl['ci'])}, "
                f"LR test p={lr_p:.2g}"
                + (f", and after pruning near-copies {_fmt(pruned['ci'])}" if pruned.get("ci") else "")
            )
        return (
            "inconclusive",
            f"controlled slope {_fmt(ctl['ci'])} persists but pruning near-copies removes it {_fmt(pruned['ci'])}",
        )
    if (_includes_zero(ctl) or not lr_sig) and _sig_pos(sim):
        return "explained_by_similarity", (
            f"raw frequency slope {_fmt(raw['ci'])} vanishes controlling for similarity {_fmt(ctl['ci'])} "
            f"(LR test p={lr_p:.2g}), similarity coefficient {_fmt(sim['ci'])}"
            if lr_p is not None
            else f"raw frequency slope {_fmt(raw['ci'])} vanishes controlling for similarity {_fmt(ctl['ci'])}"
        )
    return "inconclusive", (
        f"raw slope {_fmt(raw['ci'])}, controlled {_fmt(ctl.get('ci'))}, similarity "
        f"{_fmt(sim.get('ci'))}: neither rule applies"
    )


def _fmt(ci) -> str:
    return "[n/a]" if not ci else f"[{ci[0]:.3g}, {ci[1]:.3g}]"


def analyze_model(
    y: np.ndarray,
    log_freq: np.ndarray,
    sim: np.ndarray,
    groups: np.ndarray,
    pruned_log_freq: dict[float, np.ndarray],
    prune_threshold: float,
    n_boot: int = 200,
    seed: int = 0,
    n_bins: int = 8,
    alpha: float = 0.05,
    covariate: np.ndarray | None = None,
    covariate_name: str | None = None,
) -> dict:
    """Every statistic for one model (see the module docstring and the README for the schema). With a
    ``covariate`` (the items' distance from the corpus) also ``distance``: does accuracy track it, and does
    the frequency effect survive it (the same fits and bootstrap draws, with the covariate in place of
    similarity)."""
    y = np.asarray(y, dtype=float)
    boot = ConceptBootstrap(groups, n_boot, seed)
    out: dict = {
        "n_items": int(len(y)),
        "n_concepts": boot.n_groups,
        "accuracy": float(y.mean()) if len(y) else None,
    }
    f1 = coef_with_ci(y, design(log_freq), boot, [1])
    out["frequency"] = {
        **f1[1],
        "intercept": (f1.get("params") or [None])[0],
        "spearman": spearman(log_freq, y),
        "bins": binned(log_freq, y, n_bins),
    }
    s1 = coef_with_ci(y, design(sim), boot, [1])
    out["similarity"] = {
        **s1[1],
        "intercept": (s1.get("params") or [None])[0],
        "spearman": spearman(sim, y),
        "bins": binned(sim, y, n_bins),
    }
    both = coef_with_ci(y, design(log_freq, sim), boot, [1, 2])
    out["frequency_controlled"] = both[1]
    out["similarity_controlled"] = both[2]
    out["lr_test"] = lr_test(both.get("llf", float("nan")), s1.get("llf", float("nan")))
    strata = []
    if len(sim):
        edges = np.unique(np.quantile(sim, [0, 1 / 3, 2 / 3, 1]))
        idx = np.clip(np.searchsorted(edges, sim, side="right") - 1, 0, max(0, len(edges) - 2))
        for b in range(max(1, len(edges) - 1)):
            m = idx == b
            st = coef_with_ci(y, design(log_freq), boot, [1], mask=m)
            strata.append(
                {
                    "similarity_lo": float(edges[b]),
                    "similarity_hi": float(edges[min(b + 1, len(edges) - 1)]),
                    "n": int(m.sum()),
                    "accuracy": float(y[m].mean()) if m.any() else None,
                    **st[1],
                }
            )
    out["stratified"] = strata
    sweep = []
    for t, plf in sorted(pruned_log_freq.items()):
        p = coef_with_ci(y, design(plf), boot, [1])
        sweep.append({"threshold": t, **p[1], "spearman": spearman(plf, y)})
    main = next((s for s in sweep if s["threshold"] == prune_threshold), None)
    out["pruned"] = {k: v for k, v in (main or {"slope": None, "ci": None}).items()}
    if len(sweep) > 1:
        out["pruned_sweep"] = sweep
    out["verdict"], out["verdict_reason"] = verdict(out, alpha)
    if covariate is not None:
        out["distance"] = covariate_fits(y, log_freq, np.asarray(covariate, dtype=float), boot, n_bins, alpha)
        out["distance"]["measure"] = covariate_name
    return out


def covariate_fits(
    y: np.ndarray, log_freq: np.ndarray, cov: np.ndarray, boot: ConceptBootstrap, n_bins: int, alpha: float
) -> dict:
    """Accuracy against the covariate alone (slope, interval, Spearman, bins), and the frequency slope with the
    covariate in the model, with a likelihood-ratio test of adding frequency to the covariate-only model.
    ``frequency_survives``: the controlled frequency slope's interval lies above 0 and the test is
    significant."""
    c1 = coef_with_ci(y, design(cov), boot, [1])
    both = coef_with_ci(y, design(log_freq, cov), boot, [1, 2])
    lr = lr_test(both.get("llf", float("nan")), c1.get("llf", float("nan")))
    survives = _sig_pos(both[1]) and lr.get("p") is not None and lr["p"] < alpha
    return {
        "accuracy_vs_distance": {**c1[1], "spearman": spearman(cov, y), "bins": binned(cov, y, n_bins)},
        "frequency_controlled": both[1],
        "distance_controlled": both[2],
        "lr_test": lr,
        "frequency_survives": bool(survives),
    }


__all__ = [
    "analyze_model",
    "covariate_fits",
    "verdict",
    "VERDICTS",
    "coef_with_ci",
    "design",
    "ConceptBootstrap",
    "binned",
    "spearman",
    "lr_test",
]
