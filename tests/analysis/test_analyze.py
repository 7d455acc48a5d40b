"""`freqindex analyze` on synthetic worlds with known truth, statistics against direct statsmodels/scipy fits,
and the CLI end to end (outputs, SQL view, errors).

World (a): an item's correctness depends only on its concept's corpus frequency (near-copies of items are
planted at random, independent of frequency). World (b): correctness depends only on whether the corpus
holds a near-copy of the item, and near-copies are planted more often for frequent concepts.
"""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from freqindex.analysis.run import run_analysis
from freqindex.build import build_index, run_in_process
from freqindex.config import BuildConfig
from freqindex.evals import load_eval
from freqindex.suffix.index import Index
from tests.conftest import cli

SYL = ["ka", "lo", "mi", "nu", "pe", "ra", "si", "to", "vu", "za", "be", "do", "fi", "gu", "ho", "ju"]


def _word(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(SYL) for _ in range(n))


def make_world(
    root: Path,
    kind: str,
    seed: int,
    n_concepts: int = 60,
    per_concept: int = 12,
    max_log10_freq: float = 3.3,
    copy_context: int = 5,
) -> dict:
    """A synthetic world: ``kind`` "a" (correctness follows frequency, near-copies at random) or "b"
    (correctness follows near-copies, which are more likely for frequent concepts). A near-copy is the
    question lower-cased without its "?", between ``copy_context`` filler words on each side."""
    rng = random.Random(seed)
    concepts = list(dict.fromkeys(_word(rng, 4) for _ in range(n_concepts * 2)))[:n_concepts]
    filler = list(dict.fromkeys(_word(rng, 3) for _ in range(3000)))
    filler = [w for w in filler if w not in set(concepts)]
    docs, items, results = [], [], []
    for c in concepts:
        f = int(10 ** rng.uniform(0, max_log10_freq))  # 1 .. 2000 documents by default
        for _ in range(f):
            words = [rng.choice(filler) for _ in range(8)]
            words.insert(rng.randrange(9), c)
            docs.append(" ".join(words))
        lf = math.log10(1 + f)
        for _ in range(per_concept):
            words = [rng.choice(filler) for _ in range(18)]
            words.insert(rng.randrange(19), c)
            text = " ".join(words).capitalize() + "?"
            iid = f"q{len(items)}"
            if kind == "a":
                copy = rng.random() < 0.25
                p = 1 / (1 + math.exp(-(-2.5 + 1.4 * lf)))
            else:
                copy = rng.random() < min(0.95, 0.03 + 0.27 * lf)
                p = 0.85 if copy else 0.15
            if copy:  # a near-copy: lower-cased, punctuation dropped, inside a longer document
                docs.append(
                    " ".join(
                        [rng.choice(filler) for _ in range(copy_context)]
                        + [text.lower().rstrip("?")]
                        + [rng.choice(filler) for _ in range(copy_context)]
                    )
                )
            items.append({"id": iid, "question": text, "concept": c})
            results.append({"id": iid, "model": "m1", "correct": rng.random() < p})
    rng.shuffle(docs)
    root.mkdir(parents=True, exist_ok=True)
    (root / "corpus.txt").write_text("\n".join(docs) + "\n")
    (root / "eval.jsonl").write_text("".join(json.dumps(r) + "\n" for r in items))
    (root / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in results))
    build_index(
        BuildConfig(inputs=(str(root / "corpus.txt"),), output=str(root / "idx"), text_per_line=True),
        run_in_process,
    )
    return {"root": root, "items": items}


def _analyze(world: dict, **kw):
    from freqindex.evals import load_results

    root = world["root"]
    idx = Index.open(root / "idx")
    items = load_eval(str(root / "eval.jsonl"), fields=["question"])
    res = load_results(str(root / "results.jsonl"), items)
    concepts = {it.id: [it.row["concept"]] for it in items}
    return run_analysis(idx, items, res, concepts, similarity="verbatim", **kw)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_synthetic_worlds_verdicts(tmp_path, seed):
    a = make_world(tmp_path / "a", "a", seed)
    _, sa = _analyze(a, n_boot=100, seed=seed)
    assert sa["models"]["m1"]["verdict"] == "frequency_effect_persists", sa["models"]["m1"]["verdict_reason"]
    b = make_world(tmp_path / "b", "b", seed + 100)
    _, sb = _analyze(b, n_boot=100, seed=seed)
    assert sb["models"]["m1"]["verdict"] == "explained_by_similarity", sb["models"]["m1"]["verdict_reason"]
    # pruning removed the planted near-copies (verbatim similarity 1.0 >= 0.9)
    assert sb["data"]["pruned_documents"]["0.9"] > 0


def test_no_effect_world(tmp_path):
    """Correctness independent of everything: no frequency effect."""
    w = make_world(tmp_path / "n", "a", 9)
    rows = [json.loads(ln) for ln in (w["root"] / "results.jsonl").read_text().splitlines()]
    rng = random.Random(0)
    for r in rows:
        r["correct"] = rng.random() < 0.5
    (w["root"] / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    item_rows, s = _analyze(w, n_boot=100)
    # the data hold no positive effect: a direct statsmodels fit, clustered by concept as the bootstrap is,
    # has a 95% interval that is not above 0; so the one right verdict is the rule's first
    import statsmodels.api as sm

    y = np.array([r["correct"] for r in item_rows])
    lf = np.array([r["log10_frequency"] for r in item_rows])
    groups = np.unique([r["primary_concept"] for r in item_rows], return_inverse=True)[1]
    fit = sm.Logit(y, sm.add_constant(lf)).fit(disp=0, cov_type="cluster", cov_kwds={"groups": groups})
    assert fit.conf_int()[1][0] <= 0
    m1 = s["models"]["m1"]
    assert m1["frequency"]["ci"][0] <= 0 and m1["verdict"] == "no_frequency_effect", m1["verdict_reason"]


@pytest.fixture(scope="module")
def cli_world(tmp_path_factory):
    root = tmp_path_factory.mktemp("analyze")
    w = make_world(root / "w", "b", 42)
    # a second model (long layout: id, model, correct) whose correctness follows frequency
    rows = [json.loads(ln) for ln in (root / "w" / "results.jsonl").read_text().splitlines()]
    rng = random.Random(5)
    freq_of = {}
    for it in w["items"]:
        freq_of[it["id"]] = it["concept"]
    extra = [{"id": r["id"], "model": "m2", "correct": rng.random() < 0.5} for r in rows]
    (root / "w" / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows + extra))
    out = root / "w" / "out"
    r = cli(
        "analyze",
        str(root / "w" / "idx"),
        "--eval",
        str(root / "w" / "eval.jsonl"),
        "--fields",
        "question",
        "--results",
        str(root / "w" / "results.jsonl"),
        "--concept-field",
        "concept",
        "--out",
        str(out),
        "--similarity",
        "verbatim",
        "--prune-sweep",
        "0.6,0.95",
        "--bootstrap",
        "100",
        "--json",
        check=0,
    )
    return {"root": root / "w", "out": out, "summary": json.loads(r.stdout)}


def test_cli_outputs_and_sql_view(cli_world):
    out, s = cli_world["out"], cli_world["summary"]
    assert set(s["models"]) == {"m1", "m2"}
    assert s["models"]["m1"]["verdict"] == "explained_by_similarity"
    for m in s["models"].values():
        for key in (
            "n_items",
            "accuracy",
            "frequency",
            "similarity",
            "frequency_controlled",
            "stratified",
            "pruned",
            "verdict",
        ):
            assert key in m
        assert [p["threshold"] for p in m["pruned_sweep"]] == [0.6, 0.9, 0.95]
    for f in (
        "summary.json",
        "items.parquet",
        "report.html",
        "accuracy_vs_frequency.png",
        "similarity_vs_frequency.png",
        "slopes.png",
    ):
        assert (out / f).stat().st_size > 0, f
    html = (out / "report.html").read_text()
    for section in ("Question", "Data", "Figures", "Numbers", "Verdict", "Caveats"):
        assert f"<h2>{section}</h2>" in html
    r = cli(
        "sql",
        str(cli_world["root"] / "idx"),
        "SELECT model, count(*) AS n, avg(correct) AS acc FROM analysis_items GROUP BY model ORDER BY model",
        "--format",
        "json",
        check=0,
    )
    got = [json.loads(ln) for ln in r.stdout.splitlines()]  # --format json: one object per row and line
    t = pq.read_table(out / "items.parquet").to_pandas()
    by_model = t.groupby("model")["correct"]
    assert got == [
        {"model": m, "n": int(n), "acc": pytest.approx(float(a))}
        for m, n, a in zip(by_model.size().index, by_model.size(), by_model.mean())
    ]


def test_statistics_equal_direct_fits(cli_world):
    """Every number in summary.json against statsmodels/scipy run directly on items.parquet."""
    import statsmodels.api as sm
    from scipy.stats import chi2, spearmanr

    t = pq.read_table(cli_world["out"] / "items.parquet").to_pandas()
    s = cli_world["summary"]
    for model, g in t.groupby("model"):
        m = s["models"][model]
        y = g["correct"].to_numpy()
        lf = g["log10_frequency"].to_numpy()
        sim = g["similarity"].to_numpy()
        assert m["n_items"] == len(g) and m["accuracy"] == pytest.approx(y.mean())
        f1 = sm.Logit(y, sm.add_constant(lf)).fit(disp=0)
        assert m["frequency"]["slope"] == pytest.approx(f1.params[1], rel=1e-4, abs=1e-6)
        assert m["frequency"]["spearman"]["rho"] == pytest.approx(spearmanr(lf, y).statistic)
        s1 = sm.Logit(y, sm.add_constant(sim)).fit(disp=0)
        assert m["similarity"]["slope"] == pytest.approx(s1.params[1], rel=1e-4, abs=1e-6)
        both = sm.Logit(y, sm.add_constant(np.column_stack([lf, sim]))).fit(disp=0)
        assert m["frequency_controlled"]["slope"] == pytest.approx(both.params[1], rel=1e-4, abs=1e-6)
        assert m["similarity_controlled"]["slope"] == pytest.approx(both.params[2], rel=1e-4, abs=1e-6)
        lr = 2 * (both.llf - s1.llf)
        assert m["lr_test"]["statistic"] == pytest.approx(lr, rel=1e-4, abs=1e-6)
        assert m["lr_test"]["p"] == pytest.approx(chi2.sf(lr, 1), rel=1e-3, abs=1e-9)
        pl = np.log10(1 + g["pruned_frequency"].to_numpy())
        pr = sm.Logit(y, sm.add_constant(pl)).fit(disp=0)
        assert m["pruned"]["slope"] == pytest.approx(pr.params[1], rel=1e-4, abs=1e-6)
        edges = np.unique(np.quantile(sim, [0, 1 / 3, 2 / 3, 1]))
        for st in m["stratified"]:
            sel = (sim >= st["similarity_lo"]) & (
                (sim < st["similarity_hi"]) | (st["similarity_hi"] == edges[-1])
            )
            assert st["n"] == int(sel.sum())
            if st["slope"] is not None:
                fs = sm.Logit(y[sel], sm.add_constant(lf[sel])).fit(disp=0)
                assert st["slope"] == pytest.approx(fs.params[1], rel=1e-3, abs=1e-5)
        # the bootstrap-over-concepts interval agrees with a cluster-robust (by concept) Wald interval
        cr = sm.Logit(y, sm.add_constant(lf)).fit(
            disp=0, cov_type="cluster", cov_kwds={"groups": g["primary_concept"].astype("category").cat.codes}
        )
        lo, hi = cr.conf_int()[1]
        ci = m["frequency"]["ci"]
        width = hi - lo
        assert abs(ci[0] - lo) < 0.4 * width and abs(ci[1] - hi) < 0.4 * width, (ci, (lo, hi))
        # frequencies are document frequencies of the concept as a whole word, by brute force
    docs = [f" {d} " for d in (cli_world["root"] / "corpus.txt").read_text().splitlines()]
    for concept, fr in t.groupby("primary_concept")["frequency"].first().head(8).items():
        forms = {concept, concept + "s"}
        assert fr == sum(any(f" {f} " in d for f in forms) for d in docs), concept


def test_bad_input_errors(cli_world, tmp_path):
    root = cli_world["root"]
    base = [
        "analyze",
        str(root / "idx"),
        "--eval",
        str(root / "eval.jsonl"),
        "--results",
        str(root / "results.jsonl"),
    ]
    r = cli(*base, check=2)
    assert "exactly one of --concept-field" in r.stderr
    r = cli(*base, "--concept-field", "nope", check=2)
    assert "no field 'nope'" in r.stderr
    r = cli(*base, "--concept-field", "concept", "--aggregate", "median", check=2)
    assert "unknown --aggregate" in r.stderr
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "q0", "model": "m", "correct": "maybe"}\n')
    r = cli(*base[:-1], str(bad), "--concept-field", "concept", check=2)
    assert "is not a boolean" in r.stderr
    assert "Traceback" not in r.stderr


def test_auto_concepts_are_nouns_without_stop_words():
    pytest.importorskip("spacy", reason="the analyze extra is not installed")
    from freqindex.analysis.core import auto_concepts
    from freqindex.evals import EvalItem

    items = [
        EvalItem(
            "1", "Janet's ducks lay 16 eggs per day. She bakes muffins for her friends every morning.", {}
        ),
        EvalItem("2", "It is what it is.", {}),
    ]
    got = auto_concepts(items)
    assert {"ducks", "eggs", "muffins", "friends", "morning", "janet"} <= set(got["1"])
    assert not {"she", "her", "per", "lay", "bakes", "every"} & set(got["1"])
    assert got["2"] == []
