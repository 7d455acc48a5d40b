"""`bash infra/quickstart.sh`, the one command a newcomer runs: its whole chain, in this environment (no venv
or pip: FREQINDEX_QUICKSTART_SKIP_INSTALL=1), with the verbatim similarity and a small corpus (embedding, and
every command's outputs on real data, are tested in tests/golden). It must find the planted leak, reach the
verdicts the demo world was generated with, and end with the report's path and a summary."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.spark


def test_quickstart_runs_the_whole_chain(tmp_path):
    demo = tmp_path / "demo"
    env = {
        **os.environ,
        "FREQINDEX_QUICKSTART_SKIP_INSTALL": "1",
        "FREQINDEX_QUICKSTART_SIMILARITY": "verbatim",
        "FREQINDEX_DEMO_DIR": str(demo),
        # a fifth of the default corpus (779 documents): the same 384 questions, leak and verdicts, and the
        # test pays only for the chain's fixed costs (two Spark jobs, the analysis)
        "FREQINDEX_DEMO_CAPTIONS": "600",
        "FREQINDEX_DEMO_ARTICLES": "90",
        "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""),
    }
    p = subprocess.run(
        ["bash", "infra/quickstart.sh"], cwd=REPO, env=env, capture_output=True, text=True, timeout=1200
    )
    assert p.returncode == 0, p.stderr[-3000:]
    steps = [ln[2:].split()[1] for ln in p.stderr.splitlines() if ln.startswith("$ freqindex ")]
    assert steps == ["demo-corpus", "build", "count", "tag", "sql", "contamination", "analyze"]
    # the planted bad records are quarantined, each under its code
    m = json.loads((demo / "index" / "manifest.json").read_text())
    assert m["counts"]["quarantine_by_reason"] == {"malformed_json": 1, "empty_text": 1, "missing_text": 1}
    assert m["concepts"]["n_concepts"] == len((demo / "eval" / "concepts.txt").read_text().split("\n")) - 1
    # the contamination check finds exactly the planted leak
    truth = json.loads((demo / "eval" / "truth.json").read_text())
    items = [json.loads(x) for x in (demo / "contamination" / "items.jsonl").read_text().splitlines()]
    assert Counter(r["bucket"] for r in items) == {
        "dirty": len(truth["leaked_ids"]),
        "clean": len(items) - len(truth["leaked_ids"]),
    }
    assert {r["id"] for r in items if r["bucket"] == "dirty"} == set(truth["leaked_ids"])
    # the verdicts the world was generated with: one model learned from frequency, the other memorized leaks
    summary = json.loads((demo / "analysis" / "summary.json").read_text())
    assert summary["settings"]["similarity"] == "verbatim"
    verdicts = {k: v["verdict"] for k, v in summary["models"].items()}
    assert verdicts == {
        "frequency-learner": "frequency_effect_persists",
        "memorizer": "explained_by_similarity",
    }
    # it ends with the report's path and the plain-language summary
    report = demo / "analysis" / "report.html"
    assert report.stat().st_size > 0 and f"report: {report}" in p.stdout
    last = p.stdout.strip().splitlines()[-1]
    assert "exactly the planted copies" in last and str(report) in last
    assert "frequency-learner" in last and "memorizer" in last and "so it looks learned" in last
