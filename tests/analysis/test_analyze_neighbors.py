"""`analyze --similarity neighbors` in both neighbour modes on the synthetic worlds of test_analyze.py (kept
small so that embedding every document for the exhaustive mode stays cheap): the same verdicts."""

from __future__ import annotations

import pytest

from freqindex.analysis.run import run_analysis
from freqindex.build import run_in_process
from freqindex.evals import load_eval, load_results
from freqindex.suffix.index import Index
from tests.analysis.test_analyze import make_world

pytest.importorskip("sentence_transformers", reason="the embed extra is not installed")
pytest.importorskip("statsmodels", reason="the analyze extra is not installed")


def _run(world: dict, mode: str, cache):
    root = world["root"]
    idx = Index.open(root / "idx")
    items = load_eval(str(root / "eval.jsonl"), fields=["question"])
    res = load_results(str(root / "results.jsonl"), items)
    concepts = {it.id: [it.row["concept"]] for it in items}
    # 10 candidates per item (not the default 50): a near-copy shares every rare word of its item and ranks
    # first; similarity is the best neighbour and pruning takes neighbours >= 0.9, so the top 10 decide both
    cand = 10 if mode == "candidates" else None
    _, summary = run_analysis(
        idx,
        items,
        res,
        concepts,
        similarity="neighbors",
        neighbors_mode=mode,
        candidates=cand,
        n_boot=100,
        seed=1,
    )
    return summary


@pytest.mark.parametrize(
    "kind,seed,expected", [("a", 1, "frequency_effect_persists"), ("b", 101, "explained_by_similarity")]
)
def test_same_verdicts_in_both_modes(tmp_path, monkeypatch, kind, seed, expected):
    from freqindex.vectors.stage import run_embedding

    monkeypatch.setenv("FREQINDEX_CACHE_DIR", str(tmp_path / "cache"))
    # near-copies as documents of their own (no filler around them): MiniLM puts them near 1.0 in both modes,
    # so pruning at 0.9 removes them; with filler around, a copy's best window mixes in unrelated words
    w = make_world(tmp_path / kind, kind, seed, n_concepts=40, max_log10_freq=2.3, copy_context=0)
    cand = _run(w, "candidates", tmp_path)
    run_embedding(str(tmp_path / kind / "idx"), run_in_process, factory="Flat")  # the embed defaults
    ex = _run(w, "exhaustive", tmp_path)
    assert (
        cand["settings"]["neighbors_mode"] == "candidates"
        and ex["settings"]["neighbors_mode"] == "exhaustive"
    )
    mc, me = cand["models"]["m1"], ex["models"]["m1"]
    assert mc["verdict"] == me["verdict"] == expected, (mc["verdict_reason"], me["verdict_reason"])
