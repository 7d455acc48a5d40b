"""`freqindex analyze --concept-counts` at scale: 4,000 concepts x 36 models, 1,000 bootstrap draws, end to end
(reading the CSV files, matching names, every fit, the pruned refit, items.parquet, the figure, report.html),
beside the naive bootstrap (one statsmodels OLS fit with benchmark dummies per draw), timed on a few draws and
extrapolated to the same work.

Data: 4,000 classes in 18 benchmarks with counts drawn log-uniformly over 0..10^5 and a pruned count column
(0-40% removed); 36 models whose per-class accuracy (50 test images per class) rises with log frequency at
different rates, two of them with none.

    python benchmarks/bench_concept_analysis.py --out bench-out [--concepts 4000] [--models 36] [--bootstrap 1000]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import StageTimer  # noqa: E402


def make_inputs(root: Path, n_concepts: int, n_models: int, seed: int = 0) -> tuple[Path, Path]:
    rng = np.random.default_rng(seed)
    bench = rng.choice([f"bench{b:02d}" for b in range(18)], n_concepts)
    count = np.floor(10 ** rng.uniform(0, 5, n_concepts)) * (rng.random(n_concepts) > 0.3)
    pruned = np.floor(count * rng.uniform(0.6, 1.0, n_concepts))
    names = [f"Class {i}" for i in range(n_concepts)]
    counts = pd.DataFrame({"benchmark": bench, "concept": names, "count": count, "count_pruned": pruned})
    x = np.log10(np.maximum(count, 1))
    rows = []
    for m in range(n_models):
        slope = 0.0 if m < 2 else rng.uniform(0.02, 0.1)
        p = np.clip(rng.uniform(0.05, 0.2) + slope * x, 0, 1)
        rows.append(
            pd.DataFrame(
                {
                    "model": f"model-{m:02d}",
                    "benchmark": bench,
                    "concept": names,
                    "accuracy": rng.binomial(50, p) * 2.0,
                }
            )
        )
    root.mkdir(parents=True, exist_ok=True)
    counts.to_csv(root / "counts.csv", index=False)
    pd.concat(rows).to_csv(root / "results.csv", index=False)
    return root / "counts.csv", root / "results.csv"


def naive_seconds_per_draw(table: pd.DataFrame, draws: int = 5) -> float:
    """Seconds (wall) of one statsmodels OLS fit (slope + benchmark dummies) on the resampled concepts of one
    model: what a per-draw bootstrap pays for each of models x draws x 2 (raw and pruned) fits."""
    import statsmodels.api as sm

    g = table[table["model"] == table["model"].iloc[0]]
    x = np.log10(np.maximum(g["count"].to_numpy(dtype=float), 1))
    y = g["accuracy"].to_numpy(dtype=float)
    dummies = pd.get_dummies(g["benchmark"]).to_numpy(dtype=float)
    rng = np.random.default_rng(0)
    t = time.perf_counter()
    for _ in range(draws):
        d = rng.integers(0, len(g), len(g))
        sm.OLS(y[d], np.column_stack([x[d], dummies[d]])).fit()
    return (time.perf_counter() - t) / draws


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="bench-out")
    ap.add_argument("--concepts", type=int, default=4000)
    ap.add_argument("--models", type=int, default=36)
    ap.add_argument("--bootstrap", type=int, default=1000)
    a = ap.parse_args()
    out = Path(a.out).resolve()
    counts, results = make_inputs(out / "concept-analysis-input", a.concepts, a.models)

    from freqindex.analysis.concept_run import run_concept_analysis
    from freqindex.analysis.per_concept import ConceptAnalysisConfig
    from freqindex.report.per_concept import write_concept_outputs

    cfg = ConceptAnalysisConfig(
        results=str(results), counts=str(counts), pruned_count_column="count_pruned", bootstrap=a.bootstrap
    )
    progress = StageTimer()

    load_before = os.getloadavg()[0]
    t0, c0 = time.perf_counter(), time.process_time()
    rows, summary = run_concept_analysis(cfg, progress=progress)
    analysis_s, analysis_cpu = time.perf_counter() - t0, time.process_time() - c0
    progress.finish()
    t, c = time.perf_counter(), time.process_time()
    write_concept_outputs(out / "concept-analysis", rows, summary)
    write_s, write_cpu = time.perf_counter() - t, time.process_time() - c
    per_draw = naive_seconds_per_draw(rows)
    fits = a.models * a.bootstrap * 2  # raw and pruned counts
    res = {
        "concepts": a.concepts,
        "models": a.models,
        "bootstrap": a.bootstrap,
        "rows": int(len(rows)),
        "analysis_seconds": round(analysis_s, 2),
        "analysis_stages_seconds": progress.stages,
        "outputs_seconds": round(write_s, 2),
        "total_seconds": round(analysis_s + write_s, 2),
        "total_cpu_seconds": round(analysis_cpu + write_cpu, 2),
        "load_average_before": round(load_before, 2),
        "target_seconds": 30,
        "naive_statsmodels_seconds_per_draw": round(per_draw, 4),
        "naive_bootstrap_seconds_extrapolated": round(per_draw * fits, 1),
        "verdicts": {
            v: sum(m["verdict"] == v for m in summary["models"].values())
            for v in sorted({m["verdict"] for m in summary["models"].values()})
        },
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "concept_analysis.json").write_text(json.dumps(res, indent=2))
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
