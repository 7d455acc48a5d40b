"""The per-concept analysis on an index: counts equal `freqindex concepts` (caption, tag and matched document
frequencies of Flickr8k captions with image tags, CLIP_benchmark class names), the `concept_analysis` SQL view,
and the similarity control from the index's vectors against a brute-force cosine search."""

from __future__ import annotations

import json
import random
import re

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from freqindex.analysis.concept_run import run_concept_analysis
from freqindex.analysis.per_concept import ConceptAnalysisConfig
from freqindex.build import build_index, run_in_process
from freqindex.concepts.stage import run_tagging
from freqindex.concepts.vocab import load_vocabulary
from freqindex.config import BuildConfig
from freqindex.errors import BadInputError
from freqindex.text.normalize import get_normalizer
from tests.conftest import DATA, FLICKR, cli
from tests.reference import ref_normalize

CLASSNAMES = DATA / "concepts" / "clip_benchmark_en_classnames.json"


@pytest.fixture(scope="module")
def flickr(tmp_path_factory):
    """All 40,460 Flickr8k captions; each caption's image tags are the words (3+ letters) of the image's
    other four captions, a deterministic stand-in for an image tagger that sees the same picture."""
    root = tmp_path_factory.mktemp("flickr_concepts")
    by_image: dict[str, list[tuple[str, str]]] = {}
    for line in FLICKR.read_text(encoding="utf-8").splitlines():
        key, caption = line.split("\t", 1)
        by_image.setdefault(key.split("#")[0], []).append((key, caption))
    rows = []
    for caps in by_image.values():
        for i, (key, caption) in enumerate(caps):
            words = {
                w for j, (_, c) in enumerate(caps) if j != i for w in re.findall(r"[a-z]{3,}", c.lower())
            }
            rows.append({"id": key, "text": caption, "tags": sorted(words)})
    (root / "caps.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    build_index(
        BuildConfig(inputs=(str(root / "caps.jsonl"),), output=str(root / "idx"), tags_field="tags"),
        run_in_process,
    )
    vocab = load_vocabulary(str(CLASSNAMES), get_normalizer("simple"))
    run_tagging(str(root / "idx"), vocab, run_in_process, str(CLASSNAMES))
    rng = random.Random(3)
    results = [
        {"model": m, "benchmark": c.benchmark, "concept": c.concept, "accuracy": rng.randint(0, 100)}
        for m in ("clip-a", "clip-b")
        for c in vocab.concepts
    ]
    results.append({"model": "clip-a", "benchmark": "pets", "concept": "Dragon", "accuracy": 10})
    results.append({"model": "clip-a", "benchmark": "birds2024", "concept": "owl", "accuracy": 10})
    pd.DataFrame(results).to_parquet(root / "results.parquet")
    reference = cli("concepts", root / "idx", "--concepts", CLASSNAMES, "--json", check=0)
    return root, vocab, [json.loads(ln) for ln in reference.stdout.splitlines()]


def test_counts_from_the_index_equal_freqindex_concepts(flickr):
    root, vocab, reference = flickr
    ref = {(r["benchmark"], r["concept"]): r for r in reference}
    assert all(r["source"] == "tags" for r in reference)
    columns = {
        "caption": "caption_doc_frequency",
        "tags": "tag_doc_frequency",
        "matched": "matched_doc_frequency",
    }
    seen = {}
    for kind, column in columns.items():
        rows, s = run_concept_analysis(
            ConceptAnalysisConfig(
                results=str(root / "results.parquet"),
                index=str(root / "idx"),
                vocabulary=str(CLASSNAMES),
                count=kind,
                bootstrap=50,
            )
        )
        assert s["data"]["counts"]["count"] == kind
        got = rows[rows["model"] == "clip-b"]
        assert len(got) == len(vocab.concepts) == len(reference)
        for b, c, n in zip(got["benchmark"], got["concept"], got["count"]):
            assert n == ref[(b, c)][column], (kind, b, c)
        seen[kind] = got["count"].sum()
        um = s["unmatched"]
        assert {(x["benchmark"], x["concept"]) for x in um["no_count"]} == {
            ("pets", "Dragon"),
            ("birds2024", "owl"),
        }
        assert um["benchmarks_only_in_results"] == ["birds2024"]
        assert any("skipped concept" in w for w in s["warnings"])  # CLEVR's empty class name, listed
    # the three kinds really differ on this corpus (tags come from the other captions of the image)
    assert seen["matched"] < seen["caption"] < seen["tags"]
    # ... and a few by brute force over the captions: documents holding a form as whole words
    caps = [json.loads(ln) for ln in (root / "caps.jsonl").read_text().splitlines()]
    texts = [f" {ref_normalize(r['text'])} " for r in caps]
    for c in [
        c for c in vocab.concepts if c.concept in ("tennis ball", "forest", "Beagle", "river", "motorbike")
    ]:
        n = sum(any(f" {f} " in t for f in c.forms) for t in texts)
        assert ref[(c.benchmark, c.concept)]["caption_doc_frequency"] == n, c.concept


def test_other_vocabulary_counts_captions_from_the_suffix_arrays(flickr, tmp_path):
    """A vocabulary the index was not tagged with: caption counts straight from the suffix arrays (equal to a
    brute force over the captions); tag counts need tagging first (a one-line error)."""
    from freqindex.errors import UsageError

    root, _, _ = flickr
    (tmp_path / "vocab.txt").write_text("dog\nbeach\ntennis ball\n")
    pd.DataFrame(
        [
            {"model": "m", "benchmark": b, "concept": c, "accuracy": 50.0}
            for b in ("x", "y")
            for c in ("dog", "beach")
        ]
    ).to_csv(tmp_path / "results.csv", index=False)
    cfg = dict(
        results=str(tmp_path / "results.csv"), index=str(root / "idx"), vocabulary=str(tmp_path / "vocab.txt")
    )
    rows, s = run_concept_analysis(ConceptAnalysisConfig(**cfg, bootstrap=20))
    assert s["data"]["counts"]["source"] == "suffix" and s["data"]["counts"]["count"] == "caption"
    texts = [
        f" {ref_normalize(json.loads(ln)['text'])} " for ln in (root / "caps.jsonl").read_text().splitlines()
    ]
    forms = {"dog": ("dog", "dogs"), "beach": ("beach", "beaches")}
    for c, n in zip(rows["concept"], rows["count"]):
        assert n == sum(any(f" {f} " in t for f in forms[c]) for t in texts), c
    assert len(rows) == 4  # a vocabulary without benchmarks matches the name in every benchmark
    assert s["unmatched"]["no_result"] == [{"benchmark": None, "concept": "tennis ball"}]
    with pytest.raises(UsageError, match="not tagged with this vocabulary"):
        run_concept_analysis(ConceptAnalysisConfig(**cfg, count="tags"))


def test_cli_on_an_index_writes_the_sql_view(flickr):
    root, vocab, reference = flickr
    p = cli(
        "analyze",
        root / "idx",
        "--concepts",
        CLASSNAMES,
        "--concept-results",
        root / "results.parquet",
        "--bootstrap",
        "50",
        "--json",
        check=0,
    )
    s = json.loads(p.stdout)
    assert s["data"]["counts"]["count"] == "matched"  # auto on a tagged image-caption index
    out = root / "idx" / "evals" / "results" / "concept_analysis"
    assert (out / "report.html").is_file() and (out / "accuracy_vs_concept_frequency.png").is_file()
    r = cli(
        "sql",
        root / "idx",
        "SELECT model, count(*) AS n, sum(count) AS total FROM concept_analysis GROUP BY model ORDER BY model",
        "--format",
        "json",
        check=0,
    )
    got = (
        json.loads(r.stdout)
        if r.stdout.lstrip().startswith("[")
        else [json.loads(x) for x in r.stdout.split("\n") if x]
    )
    t = pq.read_table(out / "items.parquet").to_pandas()
    want = t.groupby("model")["count"].agg(["size", "sum"])
    assert [(g["model"], g["n"], g["total"]) for g in got] == [
        (m, int(w["size"]), float(w["sum"])) for m, w in want.iterrows()
    ]
    matched = {(r["benchmark"], r["concept"]): r["matched_doc_frequency"] for r in reference}
    g = t[t["model"] == "clip-a"]
    assert all(n == matched[(b, c)] for b, c, n in zip(g["benchmark"], g["concept"], g["count"]))


# --- similarity control from the index's vectors -------------------------------------------------------------

WORDS = ["dog", "cat", "horse", "kite", "boat", "bicycle", "tree", "beach", "ball", "bird"]
FILLER = ["a", "the", "on", "near", "with", "big", "small", "red", "blue", "running", "sitting", "in", "park"]


@pytest.fixture(scope="module")
def embedded(tmp_path_factory):
    """250 short captions whose vectors are their all-MiniLM-L6-v2 embeddings (shipped with the corpus)."""
    pytest.importorskip("sentence_transformers", reason="the embed extra is not installed")
    from freqindex.vectors.embedders import load_embedder
    from freqindex.vectors.stage import run_embedding

    root = tmp_path_factory.mktemp("pruning")
    rng = random.Random(11)
    docs = []
    for i in range(250):
        words = rng.sample(FILLER, 5) + rng.sample(WORDS, rng.randint(1, 3))
        rng.shuffle(words)
        docs.append(f"{' '.join(words)} number {i}")
    (root / "caps.txt").write_text("\n".join(docs) + "\n")
    build_index(
        BuildConfig(inputs=(str(root / "caps.txt"),), output=str(root / "idx"), text_per_line=True),
        run_in_process,
    )
    emb = load_embedder("minilm-v1")
    vecs = emb.encode([ref_normalize(d) for d in docs])
    np.save(root / "vecs.npy", vecs)
    run_embedding(str(root / "idx"), run_in_process, precomputed=str(root / "vecs.npy"))
    return root, docs, vecs, emb


def test_pruning_by_test_item_similarity_equals_brute_force(embedded, tmp_path):
    from freqindex.analysis.concept_index import documents_near
    from freqindex.suffix.index import Index

    root, docs, vecs, emb = embedded
    rng = np.random.default_rng(0)
    # benchmark "photos": noisy copies of 12 documents' vectors (cosine about 0.95) and 4 random directions;
    # benchmark "sketches": 6 captions given as text, re-cased and re-punctuated (the same after normalization)
    picks = rng.choice(len(docs), 12, replace=False)
    noisy = vecs[picks] + rng.normal(0, 0.012, vecs[picks].shape)
    items = [{"benchmark": "photos", "vector": v.tolist(), "text": None} for v in noisy]
    items += [
        {"benchmark": "photos", "vector": rng.normal(size=vecs.shape[1]).tolist(), "text": None}
        for _ in range(4)
    ]
    copied = rng.choice(len(docs), 6, replace=False)
    items += [{"benchmark": "sketches", "vector": None, "text": docs[i].upper() + "!"} for i in copied]
    pd.DataFrame(items).to_parquet(tmp_path / "test_items.parquet")
    vocab = {"photos": WORDS[:5], "sketches": WORDS[5:]}
    (tmp_path / "vocab.json").write_text(json.dumps(vocab))
    results = [
        {"model": "m", "benchmark": b, "concept": c, "accuracy": float(rng.uniform(0, 1))}
        for b, cs in vocab.items()
        for c in cs
    ]
    pd.DataFrame(results).to_csv(tmp_path / "results.csv", index=False)
    threshold = 0.9
    rows, s = run_concept_analysis(
        ConceptAnalysisConfig(
            results=str(tmp_path / "results.csv"),
            index=str(root / "idx"),
            vocabulary=str(tmp_path / "vocab.json"),
            test_items=str(tmp_path / "test_items.parquet"),
            prune_threshold=threshold,
            bootstrap=50,
        )
    )
    # brute force: exact cosine of every test item with every document vector
    unit = vecs / np.linalg.norm(vecs, axis=1, keepdims=True)
    q_photos = noisy / np.linalg.norm(noisy, axis=1, keepdims=True)
    q_sketch = emb.encode([ref_normalize(docs[i].upper() + "!") for i in copied])
    near = {
        "photos": set(np.flatnonzero((unit @ q_photos.T).max(axis=1) >= threshold).tolist()),
        "sketches": set(np.flatnonzero((unit @ q_sketch.T).max(axis=1) >= threshold).tolist()),
    }
    assert set(picks.tolist()) <= near["photos"] and set(copied.tolist()) <= near["sketches"]
    assert s["data"]["pruning"]["documents_removed_per_benchmark"] == {b: len(v) for b, v in near.items()}
    texts = [f" {ref_normalize(d)} " for d in docs]
    for b, c, n, pn in zip(rows["benchmark"], rows["concept"], rows["count"], rows["pruned_count"]):
        holding = {i for i, t in enumerate(texts) if f" {c} " in t}  # the corpus holds no plural forms
        assert n == len(holding), c
        assert pn == len(holding - near[b]), (b, c)
    assert all(m["pruned"]["source"].startswith("index documents") for m in s["models"].values())
    # before any CLI run wrote a view file, the view exists, empty, with the columns of items.parquet
    from freqindex.report.per_concept import items_schema
    from freqindex.sqlcat import run_query

    empty = run_query(root / "idx", "SELECT * FROM concept_analysis")
    assert empty.num_rows == 0 and empty.schema.names == items_schema().names
    pd.DataFrame([{"benchmark": "photos", "caption": "x"}]).to_csv(tmp_path / "bad_items.csv", index=False)
    with pytest.raises(BadInputError, match="need a 'vector' or a 'text' column"):
        run_concept_analysis(
            ConceptAnalysisConfig(
                results=str(tmp_path / "results.csv"),
                index=str(root / "idx"),
                vocabulary=str(tmp_path / "vocab.json"),
                test_items=str(tmp_path / "bad_items.csv"),
            )
        )
    # the growing-k search finds the same documents as the brute force when it starts from k=2
    idx = Index.open(root / "idx")
    dense = np.repeat(q_photos[:1], 3, axis=0)
    got = documents_near(idx, dense, 0.5, start_k=2)
    assert set(got.tolist()) == set(np.flatnonzero(unit @ q_photos[0] >= 0.5).tolist())
