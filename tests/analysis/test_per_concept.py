"""`freqindex analyze --concept-results`: the study's published fits reproduced from its released counts,
synthetic worlds with a known truth, every statistic against scipy/statsmodels run directly on items.parquet,
and bad input through the CLI.

Published values come from ../shared/data/evals/udandarao2024_cc3m/published_fits.json (the authors' own
notebook output), never from the code under test.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from freqindex.analysis.concept_run import run_concept_analysis
from freqindex.analysis.per_concept import ConceptAnalysisConfig, analyze_table
from freqindex.errors import FreqindexError
from freqindex.report.per_concept import write_concept_outputs
from tests.conftest import DATA, cli

CC3M = DATA / "evals" / "udandarao2024_cc3m"
BENCHES = ["alpha", "beta", "gamma", "delta", "eps"]


@pytest.fixture(scope="module")
def cc3m(tmp_path_factory):
    out = tmp_path_factory.mktemp("cc3m")
    r = cli(
        "analyze",
        "--concept-counts",
        CC3M / "counts.csv",
        "--concept-results",
        CC3M / "results.csv",
        "--out",
        out,
        "--json",
        check=0,
    )
    return out, json.loads(r.stdout)


def test_published_binned_fits_are_reproduced(cc3m):
    """All six models: Pearson r and every bin mean equal the authors' saved values to 1e-6."""
    _, s = cc3m
    published = json.loads((CC3M / "published_fits.json").read_text())
    assert set(s["models"]) == set(published)
    for model, pub in published.items():
        b = s["models"][model]["binned"]
        assert abs(b["pearson_r"] - pub["pearson_r"]) <= 1e-6, model
        assert len(b["bins"]) == len(pub["bin_means"]) == 12
        for got, want in zip(b["bins"], pub["bin_means"]):
            assert abs(got["mean"] - want) <= 1e-6, model
        for got, edge in zip(b["bins"], pub["bin_edges_ln"]):
            assert abs(got["hi"] - edge) <= 1e-6, model
    assert s["level"] == "concept"
    assert s["data"]["accuracy_scale_found"] == "percent"
    assert s["unmatched"]["no_count"] == [] and s["unmatched"]["no_result"] == []
    # no similarity control in the released counts: a positive slope cannot be called persistent
    for m in s["models"].values():
        assert m["verdict"] == "inconclusive" and "no similarity control" in m["verdict_reason"]


def _binned(count: np.ndarray, acc: np.ndarray, n_bins: int = 12):
    from scipy.stats import pearsonr

    x = np.log(np.maximum(count, 1))
    edges = np.linspace(x.min(), x.max(), n_bins)
    b = np.digitize(x, edges, right=True)
    means = [acc[b == i].mean() if (b == i).any() else None for i in range(n_bins)]
    pts = [(edges[i], means[i]) for i in range(1, n_bins - 1) if means[i] is not None]
    r = pearsonr([p[0] for p in pts], [p[1] for p in pts])
    return edges, b, means, r


def _check_model(m: dict, g: pd.DataFrame, count_col: str, n_bins: int = 12) -> None:
    """Binned fit, fixed-effect slope, Spearman of one model against scipy/statsmodels on the table."""
    import statsmodels.formula.api as smf
    from scipy.stats import spearmanr

    count = g[count_col].to_numpy(dtype=float)
    acc = g["accuracy"].to_numpy(dtype=float)
    edges, b, means, r = _binned(count, acc, n_bins)
    assert m["binned"]["pearson_r"] == pytest.approx(r.statistic, abs=1e-12)
    assert m["binned"]["p"] == pytest.approx(r.pvalue, rel=1e-9)
    for i, got in enumerate(m["binned"]["bins"]):
        assert got["n"] == int((b == i).sum())
        assert got["hi"] == pytest.approx(edges[i]) and got["lo"] == pytest.approx(edges[max(i - 1, 0)])
        assert (got["mean"] is None) == (means[i] is None)
        if means[i] is not None:
            assert got["mean"] == pytest.approx(means[i], abs=1e-12)
    d = pd.DataFrame({"y": acc, "x": np.log10(np.maximum(count, 1)), "bench": g["benchmark"].to_numpy()})
    fit = smf.ols("y ~ x + C(bench)", d).fit()
    assert m["slope"] == pytest.approx(fit.params["x"], rel=1e-9, abs=1e-9)
    rho = spearmanr(count, acc)
    assert m["spearman"]["rho"] == pytest.approx(rho.statistic, abs=1e-12)
    assert m["spearman"]["p"] == pytest.approx(rho.pvalue, rel=1e-9, abs=1e-300)
    # the percentile bootstrap interval agrees with a heteroscedasticity-robust Wald interval
    lo, hi = fit.get_robustcov_results("HC1").conf_int()[list(fit.params.index).index("x")]
    width = hi - lo
    assert abs(m["ci"][0] - lo) < 0.25 * width and abs(m["ci"][1] - hi) < 0.25 * width, (m["ci"], (lo, hi))
    assert m["ci"][0] < m["slope"] < m["ci"][1]


def test_statistics_equal_direct_fits_on_items_parquet(cc3m):
    out, s = cc3m
    t = pq.read_table(out / "items.parquet").to_pandas()
    assert len(t) == 6 * 4469
    for model, g in t.groupby("model"):
        m = s["models"][model]
        assert m["n_concepts"] == len(g)
        assert m["accuracy_mean"] == pytest.approx(g["accuracy"].mean())
        _check_model(m, g, "count")
    # the bin column is the bin the published fit put each concept in
    g = t[t["model"] == "RN50/class"]
    _, b, _, _ = _binned(g["count"].to_numpy(), g["accuracy"].to_numpy())
    assert (g["bin"].to_numpy() == b).all()
    for f in ("summary.json", "items.parquet", "report.html", "accuracy_vs_concept_frequency.png"):
        assert (out / f).stat().st_size > 0
    html = (out / "report.html").read_text()
    for section in ("Question", "Data", "Figure", "Numbers", "Verdict", "Unmatched", "Caveats"):
        assert f"<h2>{section}</h2>" in html


# --- synthetic worlds -------------------------------------------------------------------------------------


def _world(seed: int, n: int = 300, slope: float = 8.0, kind: str = "law", fraction: bool = False):
    """Per-class accuracies from a known law: 50 test images per class, P(correct) = offset of the benchmark
    + slope/100 per log10(max(count, 1)) (``law``), or independent of the count (``none``)."""
    rng = np.random.default_rng(seed)
    bench = rng.choice(BENCHES, n)
    offset = dict(zip(BENCHES, rng.uniform(0.05, 0.25, len(BENCHES))))
    count = np.floor(10 ** rng.uniform(0, 4, n))
    x = np.log10(np.maximum(count, 1))
    p = np.array([offset[b] for b in bench]) + (slope / 100 * x if kind == "law" else 0.2)
    acc = rng.binomial(50, p) / 50
    counts = pd.DataFrame({"benchmark": bench, "concept": [f"class {i}" for i in range(n)], "count": count})
    results = pd.DataFrame(
        {
            "model": "m",
            "benchmark": bench,
            "concept": [f"Class {i}!" for i in range(n)],  # matched after normalization
            "accuracy": acc if fraction else acc * 100,
        }
    )
    return counts, results


def _write(df: pd.DataFrame, path: Path) -> str:
    if path.suffix == ".parquet":
        df.to_parquet(path)
    elif path.suffix == ".jsonl":
        df.to_json(path, orient="records", lines=True)
    else:
        df.to_csv(path, index=False)
    return str(path)


def test_bootstrap_interval_covers_the_true_slope():
    """100 seeds of a known log-linear law: the 95% interval covers the true slope in at least 90. (The
    analysis core on in-memory tables; reading files is covered by the other tests.)"""
    covered = 0
    for seed in range(100):
        counts, results = _world(seed)
        table = results.assign(concept_key=counts["concept"], count=counts["count"])
        lo, hi = analyze_table(table, seed=seed)["m"]["ci"]
        covered += lo <= 8.0 <= hi
    assert covered >= 90, covered


def test_no_dependence_gives_no_frequency_effect(tmp_path):
    """Accuracy independent of frequency: no_frequency_effect in at least 18 of 20 worlds (a 95% interval
    lies above 0 by chance about once in 40)."""
    verdicts = []
    for seed in range(20):
        counts, results = _world(seed, kind="none", fraction=True)
        c = _write(counts, tmp_path / "c.parquet")
        r = _write(results, tmp_path / "r.jsonl")
        _, s = run_concept_analysis(ConceptAnalysisConfig(results=r, counts=c, seed=seed))
        assert s["data"]["accuracy_scale_found"] == "fraction"
        verdicts.append(s["models"]["m"]["verdict"])
    assert verdicts.count("no_frequency_effect") >= 18, verdicts


def _pruned_world(seed: int, n: int = 300, kind: str = "persists"):
    """``persists``: accuracy follows the concept's frequency; pruning removes a random 0-30% of each count.
    ``explained``: accuracy follows only the number of near-copies of the test images in the corpus, which
    pruning removes; the frequency left after pruning is crossed with the near-copies in a balanced design
    (every benchmark holds every pair of levels once), so it carries no information about accuracy."""
    rng = np.random.default_rng(seed)
    i = np.arange(n)
    bench = np.array(BENCHES[:3])[i % 3]
    if kind == "persists":
        base = np.floor(10 ** rng.uniform(0, 3, n))
        count = base
        pruned = np.floor(base * rng.uniform(0.7, 1.0, n))
        driver = np.log10(np.maximum(count, 1))
    else:
        base = np.floor(10 ** (0.3 * ((i // 3) % 10)))
        level = (i // 30) % 10
        copies = np.where(level < 5, 0, np.floor(10 ** (1 + 0.7 * (level - 5))))
        count = base + copies
        pruned = base
        driver = np.log10(1 + copies)
    acc = rng.binomial(40, np.clip(0.1 + 0.1 * driver, 0, 1)) / 40 * 100
    counts = pd.DataFrame({"benchmark": bench, "concept": [f"c{j}" for j in i], "count": count})
    counts["count_pruned"] = pruned
    results = pd.DataFrame({"model": "m", "benchmark": bench, "concept": counts["concept"], "accuracy": acc})
    return counts, results


@pytest.mark.parametrize("kind", ["persists", "explained"])
def test_similarity_control_verdicts(tmp_path, kind):
    want = {"persists": "frequency_effect_persists", "explained": "explained_by_similarity"}[kind]
    for seed in (1, 2, 3):
        counts, results = _pruned_world(seed, kind=kind)
        cfg = ConceptAnalysisConfig(
            results=_write(results, tmp_path / "r.csv"),
            counts=_write(counts, tmp_path / "c.csv"),
            pruned_count_column="count_pruned",
            seed=seed,
        )
        _, s = run_concept_analysis(cfg)
        m = s["models"]["m"]
        assert m["verdict"] == want, m["verdict_reason"]


def test_pruned_fits_and_bootstrap_recomputed_draw_by_draw(tmp_path):
    """A CLI run with 40 draws: the raw, pruned and drop intervals equal percentiles of 40 statsmodels fits on
    the resampled concepts (draws rebuilt from the documented scheme), and every other number equals a direct
    fit on items.parquet."""
    import statsmodels.api as sm

    counts, results = _pruned_world(7, n=150, kind="explained")
    results = pd.concat([results, results.assign(model="m2", accuracy=results["accuracy"][::-1].to_numpy())])
    out = tmp_path / "out"
    r = cli(
        "analyze",
        "--concept-counts",
        _write(counts, tmp_path / "c.csv"),
        "--concept-results",
        _write(results, tmp_path / "r.csv"),
        "--pruned-count-column",
        "count_pruned",
        "--bootstrap",
        "40",
        "--seed",
        "11",
        "--bins",
        "8",
        "--out",
        out,
        "--json",
        check=0,
    )
    s = json.loads(r.stdout)
    t = pq.read_table(out / "items.parquet").to_pandas()
    for model, g in t.groupby("model"):
        g = g.sort_values(["benchmark", "concept_key"])
        m = s["models"][model]
        for block, col in ((m, "count"), (m["pruned"], "pruned_count")):
            import statsmodels.formula.api as smf
            from scipy.stats import spearmanr

            count = g[col].to_numpy(dtype=float)
            acc = g["accuracy"].to_numpy()
            _, _, means, rr = _binned(count, acc, 8)
            assert block["binned"]["pearson_r"] == pytest.approx(rr.statistic, abs=1e-12)
            assert [b["mean"] for b in block["binned"]["bins"]] == pytest.approx(means, abs=1e-12)
            d = pd.DataFrame(
                {"y": acc, "x": np.log10(np.maximum(count, 1)), "bench": g["benchmark"].to_numpy()}
            )
            assert block["slope"] == pytest.approx(smf.ols("y ~ x + C(bench)", d).fit().params["x"], rel=1e-9)
            assert block["spearman"]["rho"] == pytest.approx(spearmanr(count, acc).statistic, abs=1e-12)
            assert block["binned"]["p"] == pytest.approx(rr.pvalue, rel=1e-9)
        assert m["pruned"]["n_concepts"] == len(g)
        assert m["pruned"]["concepts_with_lower_count"] == int((g["pruned_count"] < g["count"]).sum())
        assert m["pruned"]["difference"]["slope"] == pytest.approx(m["slope"] - m["pruned"]["slope"])
        n = len(g)
        draws = np.random.default_rng(11).integers(0, n, size=(40, n))
        bench = pd.get_dummies(g["benchmark"]).to_numpy(dtype=float)
        acc = g["accuracy"].to_numpy()
        slopes = {"count": [], "pruned_count": []}
        for d in draws:
            keep = bench[d].sum(0) > 0
            for col in slopes:
                x = np.log10(np.maximum(g[col].to_numpy(dtype=float), 1))[d]
                fit = sm.OLS(acc[d], np.column_stack([x, bench[d][:, keep]])).fit()
                slopes[col].append(fit.params[0])
        raw, pruned = np.array(slopes["count"]), np.array(slopes["pruned_count"])
        assert m["ci"] == pytest.approx([np.percentile(raw, 2.5), np.percentile(raw, 97.5)], abs=1e-8)
        assert m["pruned"]["ci"] == pytest.approx(
            [np.percentile(pruned, 2.5), np.percentile(pruned, 97.5)], abs=1e-8
        )
        diff = raw - pruned
        assert m["pruned"]["difference"]["ci"] == pytest.approx(
            [np.percentile(diff, 2.5), np.percentile(diff, 97.5)], abs=1e-8
        )
        # and the verdict follows the documented rule from those intervals
        sig = lambda ci: ci is not None and ci[0] > 0  # noqa: E731
        if not sig(m["ci"]):
            want = "no_frequency_effect"
        elif sig(m["pruned"]["ci"]):
            want = "frequency_effect_persists"
        elif sig(m["pruned"]["difference"]["ci"]):
            want = "explained_by_similarity"
        else:
            want = "inconclusive"
        assert m["verdict"] == want
        assert (g["pruned_bin"].to_numpy() == _binned(g["pruned_count"].to_numpy(), acc, 8)[1]).all()


# --- matching and bad input ---------------------------------------------------------------------------------


def test_unmatched_concepts_are_listed_never_dropped(tmp_path):
    counts = pd.DataFrame(
        {
            "benchmark": ["pets"] * 12 + ["cars", "cars", "flowers"],
            "concept": [f"breed {i}" for i in range(11)] + ["Golden Retriever", "sedan", "NA", "rose"],
            "count": list(range(1, 12)) + [500, 3, 7, 9],
        }
    )
    rows = [("m1", "pets", f"Breed {i}", 10 + i) for i in range(11)] + [
        ("m1", "pets", "golden retriever!", 90)
    ]
    rows += [("m2", b, c, a) for (_, b, c, a) in rows[:-1]]  # m2 lacks the golden retriever
    rows += [("m1", "cars", "NA", 20), ("m1", "cars", "truck", 30), ("m1", "birds", "owl", 40)]
    results = pd.DataFrame(rows, columns=["model", "benchmark", "concept", "accuracy"])
    c, r = _write(counts, tmp_path / "c.csv"), _write(results, tmp_path / "r.csv")
    rows, s = run_concept_analysis(ConceptAnalysisConfig(results=r, counts=c, bootstrap=50))
    write_concept_outputs(tmp_path / "o", rows, s)
    assert any("benchmarks only in" in w for w in s["warnings"])
    um = s["unmatched"]
    assert {(x["benchmark"], x["concept"]) for x in um["no_count"]} == {("cars", "truck"), ("birds", "owl")}
    assert {(x["benchmark"], x["concept"]) for x in um["no_result"]} == {
        ("cars", "sedan"),
        ("flowers", "rose"),
    }
    assert um["missing_results"] == {
        "m2": [{"benchmark": "cars", "concept": "NA"}, {"benchmark": "pets", "concept": "golden retriever!"}]
    }
    assert um["benchmarks_only_in_counts"] == ["flowers"] and um["benchmarks_only_in_results"] == ["birds"]
    t = pq.read_table(tmp_path / "o" / "items.parquet").to_pandas()
    assert len(t) == 13 + 11  # every matched (model, concept); "NA" is a class name, not a missing value
    assert t.loc[(t["model"] == "m1") & (t["concept"] == "golden retriever!"), "count"].item() == 500
    assert s["models"]["m1"]["n_concepts"] == 13
    html = (tmp_path / "o" / "report.html").read_text()
    assert "truck" in html and "sedan" in html and "owl" in html


def _bad(tmp_path: Path, counts_text: str, results_text: str, **kw) -> str:
    """The library's error for these inputs: a FreqindexError (one line, exit 2 in the CLI), nothing else."""
    (tmp_path / "c.csv").write_text(counts_text)
    (tmp_path / "r.csv").write_text(results_text)
    cfg = ConceptAnalysisConfig(
        **{"results": str(tmp_path / "r.csv"), "counts": str(tmp_path / "c.csv"), **kw}
    )
    with pytest.raises(FreqindexError) as info:
        run_concept_analysis(cfg)
    assert info.value.exit_code == 2 and "\n" not in str(info.value)
    return str(info.value)


GOOD_C = "benchmark,concept,count\npets,dog,5\npets,cat,7\n"
GOOD_R = "model,benchmark,concept,accuracy\nm,pets,dog,50\nm,pets,cat,60\n"


def test_bad_input_errors(tmp_path):
    assert "needs columns benchmark, concept, count; missing count" in _bad(
        tmp_path, "benchmark,concept,n\npets,dog,5\n", GOOD_R
    )
    assert "missing accuracy" in _bad(tmp_path, GOOD_C, "model,benchmark,concept,acc\nm,pets,dog,5\n")
    assert "has no rows" in _bad(tmp_path, "", GOOD_R)
    assert "has no rows" in _bad(tmp_path, GOOD_C, "model,benchmark,concept,accuracy\n")
    assert "row 3: accuracy 140 is outside [0, 100]" in _bad(tmp_path, GOOD_C, GOOD_R + "m,pets,bird,140\n")
    assert "outside [0, 100]" in _bad(tmp_path, GOOD_C, GOOD_R + "m,pets,bird,-0.5\n")
    assert "rows 1 and 3 both give model 'm', benchmark 'pets', concept 'dog'" in _bad(
        tmp_path, GOOD_C, GOOD_R + "m,pets,Dog.,70\n"
    )
    assert "is not a number" in _bad(tmp_path, GOOD_C, GOOD_R + "m,pets,bird,high\n")
    assert "negative" in _bad(tmp_path, GOOD_C + "pets,bird,-3\n", GOOD_R)
    assert "different counts" in _bad(tmp_path, GOOD_C + "pets,Cat,8\n", GOOD_R)
    assert "no benchmark is in both" in _bad(tmp_path, "benchmark,concept,count\ncars,suv,5\n", GOOD_R)
    assert "accuracies reach 60" in _bad(tmp_path, GOOD_C, GOOD_R, accuracy_scale="fraction")
    assert "--pruned-count-column" in _bad(tmp_path, GOOD_C, GOOD_R, pruned_count_column="count")
    assert "missing pruned" in _bad(tmp_path, GOOD_C, GOOD_R, pruned_count_column="pruned")
    assert "--bins" in _bad(tmp_path, GOOD_C, GOOD_R, bins=2)
    assert "--count-column" in _bad(tmp_path, GOOD_C, GOOD_R, count="tags")
    assert "not found" in _bad(tmp_path, GOOD_C, GOOD_R, counts=str(tmp_path / "nope.csv"))


def test_cli_bad_input_is_one_line_exit_2_and_warnings_are_listed(tmp_path):
    (tmp_path / "c.csv").write_text("benchmark,concept,n\npets,dog,5\n")
    (tmp_path / "r.csv").write_text(GOOD_R + "m,pets,Dog.,70\n")
    args = ["analyze", "--concept-counts", tmp_path / "c.csv", "--concept-results", tmp_path / "r.csv"]
    for extra, message in (
        (["--out", tmp_path / "o"], "both give model 'm'"),  # results are read first
        ([], "--out DIR"),
        (["--eval", "x.jsonl", "--out", tmp_path / "o"], "per-item analysis"),
    ):
        p = cli(*args, *extra)
        assert p.returncode == 2 and message in p.stderr, p.stderr
        assert "Traceback" not in p.stderr and len(p.stderr.strip().splitlines()) == 1, p.stderr
    # a benchmark in one file only: a listed warning (stderr, summary.json), the rest is analysed
    (tmp_path / "c.csv").write_text(
        "benchmark,concept,count\n" + "".join(f"pets,c{i},{i}\n" for i in range(12)) + "cars,suv,4\n"
    )
    (tmp_path / "r.csv").write_text(
        "model,benchmark,concept,accuracy\n"
        + "".join(f"m,pets,c{i},{i / 20}\n" for i in range(12))
        + "m,birds,owl,0.5\n"
    )
    p = cli(*args, "--out", tmp_path / "o", "--json", "--bootstrap", "50")
    assert p.returncode == 0, p.stderr
    assert "warning: benchmarks only in" in p.stderr and "Traceback" not in p.stderr
    s = json.loads(p.stdout)
    assert any("only in" in w and "cars" in w for w in s["warnings"])
    assert any("only in" in w and "birds" in w for w in s["warnings"])
    assert s["unmatched"]["no_count"] == [{"benchmark": "birds", "concept": "owl", "models": 1}]
    assert s["data"]["accuracy_scale_found"] == "fraction"
    assert math.isclose(s["models"]["m"]["accuracy_mean"], 100 * np.mean([i / 20 for i in range(12)]))
