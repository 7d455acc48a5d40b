"""`analyze --covariate distance` on the synthetic worlds with known truth: where correctness follows planted
near-copies (world b) accuracy falls with distance from the corpus; where it follows concept frequency
(world a) the frequency effect survives distance. The fitted slope equals statsmodels run directly."""

from __future__ import annotations

import json

import numpy as np
import pytest

from freqindex.evals import load_eval
from freqindex.query.distance import item_distances
from freqindex.suffix.index import Index
from tests.analysis.test_analyze import _analyze, make_world
from tests.conftest import cli


def test_distance_covariate_known_truth(tmp_path):
    sm = pytest.importorskip("statsmodels.api")
    b = make_world(tmp_path / "b", "b", 7, n_concepts=40, per_concept=10)
    rows, s = _analyze(b, n_boot=30, covariate="distance")
    d = s["models"]["m1"]["distance"]
    assert d["measure"] == "mean_surprisal" and s["settings"]["covariate"] == "distance"
    assert d["accuracy_vs_distance"]["ci"][1] < 0, d["accuracy_vs_distance"]  # farther items fail more
    # the slope is statsmodels' on the same items
    items = load_eval(str(b["root"] / "eval.jsonl"), fields=["question"])
    dist = {
        x.id: x.mean_surprisal
        for x in item_distances(Index.open(b["root"] / "idx"), [(i.id, i.text) for i in items])
    }
    y = np.array([r["correct"] for r in rows])
    x = np.array([dist[r["id"]] for r in rows])
    fit = sm.GLM(y, sm.add_constant(x), family=sm.families.Binomial()).fit()
    assert d["accuracy_vs_distance"]["slope"] == pytest.approx(float(fit.params[1]), rel=1e-6)
    a = make_world(tmp_path / "a", "a", 8, n_concepts=40, per_concept=10)
    _, s = _analyze(a, n_boot=30, covariate="distance")
    assert s["models"]["m1"]["distance"]["frequency_survives"] is True, s["models"]["m1"]["distance"]
    # through the CLI: the report gains the distance section; a bad --covariate is a one-line error
    root = b["root"]
    args = ["analyze", root / "idx", "--eval", root / "eval.jsonl", "--fields", "question"]
    args += ["--results", root / "results.jsonl", "--concept-field", "concept", "--bootstrap", "20"]
    args += ["--similarity", "verbatim"]  # the covariate is the point here, not candidate-mode neighbours
    cli(*args, "--covariate", "distance", "--out", tmp_path / "out", check=0)
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert "distance" in summary["models"]["m1"]
    assert "Distance from the corpus" in (tmp_path / "out" / "report.html").read_text()
    p = cli(*args, "--covariate", "bogus", "--out", tmp_path / "out2")
    assert p.returncode == 2 and "unknown --covariate" in p.stderr
