"""A missing optional dependency is a one-line usage error naming the extra that installs it, never an
"internal error": the real CLI in a subprocess whose import path hides the package (a stand-in package
that raises ImportError, as an absent one does), on a small real index."""

from __future__ import annotations

import json
import os

import pytest

from freqindex.build import build_index, run_in_process
from freqindex.config import BuildConfig
from freqindex.errors import UsageError
from freqindex.extras import require
from tests.conftest import REPO, cli


def test_require_names_the_extra():
    with pytest.raises(UsageError, match=r"pip install 'freqindex\[embed\]'") as e:
        require("freqindex_no_such_module", "embed", "the embedder")
    assert "the embedder" in str(e.value)
    assert require("json", "embed").dumps([1]) == "[1]"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("extras")
    docs = [f"the {w} sat on the mat number {i}" for i, w in enumerate(["cat", "dog", "cow"] * 20)]
    (root / "c.txt").write_text("\n".join(docs) + "\n")
    build_index(
        BuildConfig(inputs=(str(root / "c.txt"),), output=str(root / "idx"), text_per_line=True),
        run_in_process,
    )
    items = [
        {"id": f"q{i}", "question": f"where did the {w} sit", "concept": w}
        for i, w in enumerate(["cat", "dog", "cow"] * 10)
    ]
    (root / "eval.jsonl").write_text("".join(json.dumps(r) + "\n" for r in items))
    results = [{"id": r["id"], "model": "m", "correct": i % 2 == 0} for i, r in enumerate(items)]
    (root / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in results))
    return root


def _hidden(root, package: str) -> dict:
    shadow = root / f"hide-{package}"
    (shadow / package).mkdir(parents=True, exist_ok=True)
    (shadow / package / "__init__.py").write_text(
        f"raise ImportError('{package} is hidden by this test', name='{package}')\n"
    )
    return {"PYTHONPATH": os.pathsep.join([str(shadow), str(REPO), os.environ.get("PYTHONPATH", "")])}


@pytest.mark.parametrize(
    "package,flags",
    [("statsmodels", ["--concept-field", "concept"]), ("spacy", ["--auto-concepts"])],
)
def test_analyze_without_its_extra(world, package, flags):
    args = ["analyze", world / "idx", "--eval", world / "eval.jsonl", "--results", world / "results.jsonl"]
    p = cli(
        *args,
        *flags,
        "--similarity",
        "verbatim",
        "--out",
        world / f"out-{package}",
        env=_hidden(world, package),
    )
    assert p.returncode == 2, (p.returncode, p.stderr)
    assert "pip install 'freqindex[analyze]'" in p.stderr and package in p.stderr
    assert "internal error" not in p.stderr and "Traceback" not in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1
