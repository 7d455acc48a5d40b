"""The spark-submit entry points, called as spark-submit calls them (``main(argv)``, in-process, real Spark
local[1]) on a tiny corpus: build from a TOML file with a flag that wins, tag, embed; results checked against
brute force, and a bad config is a one-line error with exit code 2."""

from __future__ import annotations

import json
import re

import pytest

from freqindex.commands.query import CountConfig, run_count
from freqindex.manifest import read_manifest
from freqindex.suffix.index import Index
from jobs import build_index, embed_index, tag_concepts
from tests.reference import ref_normalize

pytestmark = pytest.mark.spark

ANIMALS = ["dog", "cat", "horse", "parrot", "dogs"]
DOCS = [f"Doc {i}: a {ANIMALS[i % 5]} and a red ball in the park, day {i}." for i in range(40)]


def _summary(stdout: str) -> dict:
    """The JSON summary an entry point prints last (after any progress messages)."""
    start = 0 if stdout.startswith("{") else stdout.rindex("\n{\n") + 1
    return json.loads(stdout[start:])


def test_build_tag_embed_entry_points(tmp_path, capsys):
    (tmp_path / "c.jsonl").write_text(
        "".join(json.dumps({"id": f"d{i}", "text": t}) + "\n" for i, t in enumerate(DOCS))
    )
    out = tmp_path / "idx"
    cfg = tmp_path / "build.toml"
    cfg.write_text(
        f'[build]\ninputs = ["{tmp_path / "c.jsonl"}"]\noutput = "{out}"\nshards = 2\nsa_mem_gib = 2\n'
        'master = "local[1]"\n'
    )
    assert build_index.main(["--config", str(cfg), "--shards", "1"]) == 0
    summary = _summary(capsys.readouterr().out)
    m = read_manifest(out)
    assert summary["documents"] == len(DOCS) == m["counts"]["documents"]
    assert len(m["shards"]) == 1  # the flag wins over the file
    assert (
        m["config"]["sa_mem_gib"] == 2 and m["config"]["master"] == "local[1]"
    )  # the file reached the build
    stored = [f" {ref_normalize(t)} " for t in DOCS]
    (dog,) = run_count(CountConfig(index_dir=str(out), queries=(" dog ",)))
    assert dog.count == sum(s.count(" dog ") for s in stored) == 8

    vocab = tmp_path / "vocab.txt"
    vocab.write_text("dog\nparrot\nball\n")
    assert tag_concepts.main([str(out), str(vocab), "--master", "local[1]"]) == 0
    tagged = _summary(capsys.readouterr().out)
    assert tagged["concepts"] == 3
    idx = Index.open(out)
    from freqindex.commands.concepts import ConceptsConfig, run_concepts

    res = run_concepts(ConceptsConfig(index_dir=str(out), concepts=str(vocab), source="tags"), index=idx)
    want = {
        name: sum(1 for s in stored if re.search(rf" (?:{'|'.join(forms)}) ", s))
        for name, forms in {
            "dog": ["dog", "dogs"],
            "parrot": ["parrot", "parrots"],
            "ball": ["ball", "balls"],
        }.items()
    }
    assert res.source == "tags" and {r["concept"]: r["doc_frequency"] for r in res.rows} == want

    pytest.importorskip("sentence_transformers", reason="the embed extra is not installed")
    assert embed_index.main([str(out), "--chunk-tokens", "32", "--master", "local[1]"]) == 0
    embedded = _summary(capsys.readouterr().out)
    vec = read_manifest(out)["vectors"]
    assert embedded["documents"] == len(DOCS) and vec["model"] == "minilm-v1" and vec["chunk_tokens"] == [32]
    from freqindex.commands.neighbors import NeighborsConfig, run_neighbors
    from freqindex.evals import EvalItem

    items = [EvalItem("q", DOCS[7], {"text": DOCS[7]})]
    top = run_neighbors(NeighborsConfig(index_dir=str(out), k=1), items=items, write=False).rows[0]
    assert top["doc_id"] == 7 and top["similarity"] > 0.99


def test_entry_point_errors_are_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text('[build]\ninputs = ["x.jsonl"]\noutput = "y"\nshard = 2\n')
    assert build_index.main(["--config", str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "shard" in err[0] and "Traceback" not in err[0]
    assert tag_concepts.main([str(tmp_path / "no-index"), str(bad)]) == 2
    assert "no index at" in capsys.readouterr().err
    assert embed_index.main([str(tmp_path), "--dtype", "float8"]) == 2
    assert "--dtype" in capsys.readouterr().err
