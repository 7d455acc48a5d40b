"""Embeddings (real all-MiniLM-L6-v2) and FAISS (real) : recall vs exact search, planted GSM8K questions,
Spark vs the pure core."""

from __future__ import annotations

import importlib.util
import json
import random
import shutil

import numpy as np
import pytest

from freqindex.errors import BadInputError, UsageError
from freqindex.evals import load_eval
from freqindex.vectors import ann
from tests.conftest import GSM8K_TEST, GSM8K_TRAIN, WIKITEXT, build, cli
from tests.reference import read_jsonl_docs, read_lines_docs

# per test, not per module: the FAISS and eval-loader tests need no embedder
needs_embed = pytest.mark.skipif(
    importlib.util.find_spec("sentence_transformers") is None, reason="the embed extra is not installed"
)


def test_default_index_recall_against_exact_search():
    """100k clustered 384-d vectors: the default (approximate) index finds >= 95% of the exact top 10."""
    rng = np.random.default_rng(0)
    n, d = 100_000, 384
    centers = rng.standard_normal((200, d)).astype(np.float32)
    x = centers[rng.integers(0, 200, n)] + 0.6 * rng.standard_normal((n, d)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    q = x[rng.choice(n, 500, replace=False)] + 0.05 * rng.standard_normal((500, d)).astype(np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    factory, nprobe = ann.choose_factory(n, exact_below=0)  # the approximate rule (exact below 250k)
    assert factory.startswith("IVF")
    index = ann.new_index(factory, d)
    sample = x[rng.choice(n, 40_000, replace=False)]
    index = ann.train(index, sample)
    for part in np.array_split(x, 4):  # built part by part, as the stage does
        index.add(part)
    _, approx = ann.search(index, q, 10, nprobe)
    _, exact = ann.exact_search(x, q, 10)
    assert ann.recall_at_k(approx, exact) >= 0.95


def test_eval_loader(tmp_path):
    p = tmp_path / "e.jsonl"
    p.write_text(
        '{"id": "a", "question": "Q1", "answer": "A1"}\n{"id": "b", "question": "Q2", "answer": "A2"}\n'
    )
    items = load_eval(str(p), fields=["question", "answer"])
    assert [(i.id, i.text) for i in items] == [("a", "Q1\nA1"), ("b", "Q2\nA2")]
    assert load_eval(str(p), template="Q: {question} A: {answer}")[1].text == "Q: Q2 A: A2"
    assert [i.id for i in load_eval(str(p), id_field="nope", fields=["question"])] == ["1", "2"]
    with pytest.raises(BadInputError, match="row 2 has no field 'hint'"):
        p2 = tmp_path / "f.jsonl"
        p2.write_text('{"question": "x", "hint": "h"}\n{"question": "y"}\n')
        load_eval(str(p2), fields=["question", "hint"])
    with pytest.raises(BadInputError, match="row 1 is an empty item"):
        p3 = tmp_path / "g.csv"
        p3.write_text('question\n" "\n')
        load_eval(str(p3), fields=["question"])
    with pytest.raises(UsageError):
        load_eval(str(tmp_path / "missing.jsonl"))


def _edit(q: str) -> str:
    """A light edit: case, punctuation and spacing changed, one small word swapped."""
    q = q.replace(",", "").replace("?", " ?").upper()
    return q.replace(" THE ", " THIS ", 1)


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    pytest.importorskip("sentence_transformers", reason="the embed extra is not installed")
    root = tmp_path_factory.mktemp("planted")
    rng = random.Random(0)
    test_items = [json.loads(ln) for ln in GSM8K_TEST.read_text().splitlines()]
    rng.shuffle(test_items)
    verbatim, edited, inside, unplanted = (
        test_items[0:15],
        test_items[15:30],
        test_items[30:45],
        test_items[45:85],
    )
    wiki = [p for p in read_lines_docs(WIKITEXT) if len(p) > 300]
    # distractors: long WikiText paragraphs (each gives ~15 windows, most of the embedding time) and GSM8K
    # train questions (the topical neighbours of the test questions)
    docs = [{"id": f"wiki-{i}", "text": t} for i, t in enumerate(wiki[:150])]
    docs += [
        {"id": f"train-{i}", "text": t} for i, t in enumerate(read_jsonl_docs(GSM8K_TRAIN, "question")[:1200])
    ]
    docs += [{"id": f"verbatim-{i}", "text": r["question"]} for i, r in enumerate(verbatim)]
    docs += [{"id": f"edited-{i}", "text": _edit(r["question"])} for i, r in enumerate(edited)]
    docs += [
        {"id": f"inside-{i}", "text": wiki[600 + i] + " " + r["question"] + " " + wiki[700 + i]}
        for i, r in enumerate(inside)
    ]
    rng.shuffle(docs)
    (root / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))
    build([root / "corpus.jsonl"], root / "idx", shards=2)
    p = cli("embed", root / "idx", "--master", "local[2]", "--json", check=0, timeout=1200)
    summary = json.loads(p.stdout)
    evals = root / "evals.jsonl"
    rows = (
        [{"id": f"verbatim-{i}", "question": r["question"]} for i, r in enumerate(verbatim)]
        + [{"id": f"edited-{i}", "question": r["question"]} for i, r in enumerate(edited)]
        + [{"id": f"inside-{i}", "question": r["question"]} for i, r in enumerate(inside)]
        + [{"id": f"unplanted-{i}", "question": r["question"]} for i, r in enumerate(unplanted)]
    )
    evals.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = root / "nb.jsonl"
    cli("neighbors", root / "idx", "--eval", evals, "--fields", "question", "-k", "5", "--out", out, check=0)
    nb = [json.loads(x) for x in out.read_text().splitlines()]
    return root, summary, nb


def test_planted_questions_are_their_own_top_neighbour(planted):
    root, summary, nb = planted
    assert summary["vectors"] > summary["documents"]  # long documents got several windows
    top = {r["item_id"]: r for r in nb if r["rank"] == 1}
    for kind in ("verbatim", "edited", "inside"):
        for i in range(15):
            r = top[f"{kind}-{i}"]
            assert r["ext_id"] == f"{kind}-{i}", (kind, i, r)
            if kind != "inside":
                assert r["similarity"] >= 0.9, (kind, i, r["similarity"])
    unplanted = sorted(top[f"unplanted-{i}"]["similarity"] for i in range(40))
    assert unplanted[len(unplanted) // 2] < 0.8 and sum(s >= 0.9 for s in unplanted) <= 2
    # ranks are 1..k with non-increasing similarity, and each document at most once per item
    by_item: dict[str, list] = {}
    for r in nb:
        by_item.setdefault(r["item_id"], []).append(r)
    for rows in by_item.values():
        assert [r["rank"] for r in rows] == list(range(1, len(rows) + 1))
        sims = [r["similarity"] for r in rows]
        assert sims == sorted(sims, reverse=True) and len({r["doc_id"] for r in rows}) == len(rows)


def test_neighbors_sql_view(planted):
    root, _, _ = planted
    p = cli(
        "neighbors", root / "idx", "--eval", root / "evals.jsonl", "--fields", "question", "-k", "3", check=0
    )
    # stderr holds freqindex's own lines only (no model-loading progress bar of transformers in between)
    assert "Loading weights" not in p.stderr and "it/s]" not in p.stderr, p.stderr
    out = cli(
        "sql",
        root / "idx",
        "SELECT count(*) AS n, count(DISTINCT item_id) AS items FROM neighbors",
        "--format",
        "json",
        check=0,
    ).stdout
    assert json.loads(out) == {"n": 85 * 3, "items": 85}
    mx = cli(
        "sql",
        root / "idx",
        "SELECT max_similarity FROM neighbor_max WHERE item_id = 'verbatim-0'",
        "--format",
        "json",
        check=0,
    ).stdout
    assert json.loads(mx)["max_similarity"] > 0.99


def test_spark_embedding_equals_the_pure_core(planted):
    """The Spark run's windows are exactly the pure core's (every document's window grid, computed here from
    the model's token spans) and its vectors are the model's vectors of those windows (400 of them, drawn at
    random, embedded again in this process). tests/jobs/test_cluster.py runs the whole embedding both ways,
    on a standalone cluster and in-process, and compares every vector."""
    import pyarrow.parquet as pq

    from freqindex.suffix.index import Index
    from freqindex.vectors.embedders import load_embedder, multi_windows

    root, _, _ = planted
    idx = Index.open(root / "idx")
    section = idx.manifest["vectors"]
    parts = sorted((root / "idx" / "vectors").glob("part-*.npy"))
    vectors = np.concatenate([np.load(p) for p in parts])
    meta = pq.read_table([str(p.with_suffix(".parquet")) for p in parts]).to_pydict()
    windows = list(zip(meta["doc_id"], meta["char_start"], meta["char_end"]))
    emb = load_embedder(section["model"])
    texts = [idx.doc_text(d) for d in range(idx.total_docs)]
    stride = None if section["stride"] == "half" else section["stride"]
    sizes = tuple(section["chunk_tokens"])
    expected = [
        (d, cs, ce)
        for d, sp in enumerate(emb.token_spans(texts))
        for cs, ce in multi_windows(sp, sizes, stride)
    ]
    assert len(windows) == len(vectors) == section["n_vectors"] and windows == expected
    take = np.random.default_rng(1).choice(len(windows), 400, replace=False)
    again = emb.encode([texts[windows[k][0]][windows[k][1] : windows[k][2]] for k in take])
    assert np.allclose(vectors[take], again, atol=1e-5)


@needs_embed
def test_an_interrupted_embedding_resumes(tmp_path):
    """A run that dies after some of its tasks keeps them: the rerun embeds only the others (a task whose
    record is missing, as when killed between its files and its record, is redone) and publishes what an
    uninterrupted run does; a rerun with other settings starts over."""
    from freqindex.build import run_in_process
    from freqindex.suffix.index import Index
    from freqindex.vectors.stage import run_embedding

    class Crash(Exception):
        pass

    def dies_at_third(description, fn, n):
        out = []
        for i in range(n):
            if i == 2:
                raise Crash
            out.append(fn(i))
        return out

    calls: list[int] = []

    def counted(description, fn, n):
        calls.append(n)
        return [fn(i) for i in range(n)]

    src = tmp_path / "q.jsonl"
    src.write_text("".join(ln + "\n" for ln in GSM8K_TRAIN.read_text().splitlines()[:60]))
    build([src], tmp_path / "ref", text_field="question")
    idx = tmp_path / "idx"
    shutil.copytree(tmp_path / "ref", idx)
    kw = {"chunk_tokens": (32,), "block_bytes": 2048}
    ref = run_embedding(str(tmp_path / "ref"), run_in_process, **kw)
    assert ref["tasks"] >= 5 and ref["resumed_tasks"] == 0

    with pytest.raises(Crash):
        run_embedding(str(idx), dies_at_third, **kw)
    assert "vectors" not in Index.open(idx).manifest and not (idx / "vectors").exists()
    assert len(list((idx / ".vectors.partial").glob("part-*.npy"))) == 2
    (idx / ".vectors.partial" / "resume" / "part-00001.json").unlink()  # task 1 never recorded
    summary = run_embedding(str(idx), counted, **kw)
    assert summary["resumed_tasks"] == 1 and calls == [ref["tasks"] - 1]
    assert not (idx / ".vectors.partial").exists()
    a, b = Index.open(tmp_path / "ref").manifest, Index.open(idx).manifest
    assert {k for k in a["files"] if k.startswith("vectors/")} == {
        k for k in b["files"] if k.startswith("vectors/")
    }
    assert {k: v for k, v in a["vectors"].items() if k != "added"} == {
        k: v for k, v in b["vectors"].items() if k != "added"
    }
    for f in sorted((tmp_path / "ref" / "vectors").glob("part-*")):
        if f.suffix == ".npy":
            assert np.allclose(np.load(f), np.load(idx / "vectors" / f.name), atol=1e-5)
        else:
            assert (idx / "vectors" / f.name).read_bytes() == f.read_bytes()
    cli("verify", idx, check=0)

    with pytest.raises(Crash):  # interrupted with one window size, rerun with another: nothing is kept
        run_embedding(str(idx), dies_at_third, chunk_tokens=(64,), block_bytes=2048)
    calls.clear()
    summary = run_embedding(str(idx), counted, chunk_tokens=(48,), block_bytes=2048)
    assert summary["resumed_tasks"] == 0 and calls == [summary["tasks"]]
    assert Index.open(idx).manifest["vectors"]["chunk_tokens"] == [48]


def test_open_clip_images_and_text_end_to_end(tmp_path):
    """A tiny open_clip config made here (no downloaded weights), a local checkpoint, generated images."""
    open_clip = pytest.importorskip("open_clip", reason="the clip extra is not installed")
    import torch
    from PIL import Image

    cfg = tmp_path / "tiny-clip-test.json"
    cfg.write_text(
        json.dumps(
            {
                "embed_dim": 32,
                "vision_cfg": {"image_size": 32, "layers": 1, "width": 64, "patch_size": 16},
                "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 1},
            }
        )
    )
    open_clip.add_model_config(str(cfg))
    torch.manual_seed(0)
    model = open_clip.create_model("tiny-clip-test")
    ckpt = tmp_path / "tiny.pt"
    torch.save(model.state_dict(), ckpt)
    imgs = tmp_path / "images"
    imgs.mkdir()
    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0), (0, 255, 255), (255, 0, 255)]
    lines = []
    for i, c in enumerate(colours):
        Image.new("RGB", (48, 40), c).save(imgs / f"img{i}.jpg")
        lines.append(f"img{i}.jpg#0\ta photo of colour number {i}")
    lines.append("missing.jpg#0\ta caption whose image is gone")
    (tmp_path / "caps.tsv").write_text("\n".join(lines) + "\n")
    build([tmp_path / "caps.tsv"], tmp_path / "idx", format="tsv")
    spec = f"clip:{cfg}@{ckpt}"
    p = cli(
        "embed",
        tmp_path / "idx",
        "--model",
        spec,
        "--image-root",
        imgs,
        "--master",
        "local[2]",
        "--json",
        check=0,
        timeout=900,
    )
    summary = json.loads(p.stdout)
    assert summary["vectors"] == 6 and summary["missing_images"] == 1
    # the stored vectors are the model's own normalized image embeddings
    _, _, preprocess = open_clip.create_model_and_transforms("tiny-clip-test", pretrained=str(ckpt))
    with torch.no_grad():
        ref = model.encode_image(
            torch.stack([preprocess(Image.open(imgs / f"img{i}.jpg").convert("RGB")) for i in range(6)])
        ).float()
        ref = torch.nn.functional.normalize(ref, dim=-1).numpy()
    got = np.concatenate([np.load(p) for p in sorted((tmp_path / "idx" / "vectors").glob("part-*.npy"))])
    assert np.allclose(got, ref, atol=1e-4)
    # text queries against the image index, through the text tower
    ev = tmp_path / "ev.jsonl"
    ev.write_text(json.dumps({"id": "q", "question": "a photo of colour number 3"}) + "\n")
    out = tmp_path / "nb.jsonl"
    cli("neighbors", tmp_path / "idx", "--eval", ev, "-k", "3", "--out", out, check=0)
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(rows) == 3 and all(-1.0 <= r["similarity"] <= 1.0001 for r in rows)
    # and the text path of the same model (windows of words) runs too
    p = cli(
        "embed",
        tmp_path / "idx",
        "--model",
        spec,
        "--chunk-tokens",
        "8",
        "--master",
        "local[1]",
        "--json",
        check=0,
        timeout=900,
    )
    assert json.loads(p.stdout)["vectors"] >= 7


@needs_embed
def test_precomputed_vectors(tmp_path):
    """Vectors shipped with the corpus (.npy aligned with documents; Parquet matched by id) are indexed as given."""
    from freqindex.vectors.embedders import load_embedder

    rows = [json.loads(x) for x in GSM8K_TEST.read_text().splitlines()[:40]]
    src = tmp_path / "c.jsonl"
    src.write_text(
        "".join(json.dumps({"id": f"d{i}", "text": r["question"]}) + "\n" for i, r in enumerate(rows))
    )
    build([src], tmp_path / "idx")
    emb = load_embedder("minilm-v1")
    vecs = emb.encode([r["question"] for r in rows]) * 3.0  # not normalized on purpose
    np.save(tmp_path / "v.npy", vecs)
    from freqindex.fsutil import sha256_file

    idx_dir = tmp_path / "idx"
    before = {p: sha256_file(p) for p in idx_dir.rglob("*") if p.is_file() and p.name != "manifest.json"}
    p = cli("embed", tmp_path / "idx", "--precomputed", tmp_path / "v.npy", "--json", check=0)
    assert json.loads(p.stdout)["vectors"] == 40
    after = {
        p: sha256_file(p)
        for p in idx_dir.rglob("*")
        if p.is_file() and p.name != "manifest.json" and "vectors" not in p.parts
    }
    assert before == after  # the embed stage keeps every file the index had
    assert cli("verify", idx_dir).returncode == 0  # and the manifest now vouches for the vectors too
    got = np.load(tmp_path / "idx" / "vectors" / "part-00000.npy")
    assert np.allclose(got, vecs / 3.0, atol=1e-5)
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(
        pa.table(
            {
                "id": [f"d{i}" for i in range(39, -1, -1)] + ["nope"],
                "embedding": [v.tolist() for v in vecs[::-1]] + [vecs[0].tolist()],
            }
        ),
        tmp_path / "v.parquet",
    )
    p = cli("embed", tmp_path / "idx", "--precomputed", tmp_path / "v.parquet", "--json", check=0)
    got2 = np.load(tmp_path / "idx" / "vectors" / "part-00000.npy")
    assert np.allclose(got2, vecs / 3.0, atol=1e-5)  # re-ordered by document
    ev = tmp_path / "ev.jsonl"
    ev.write_text(json.dumps({"id": "x", "question": rows[7]["question"]}) + "\n")
    out = tmp_path / "nb.jsonl"
    cli("neighbors", tmp_path / "idx", "--eval", ev, "-k", "1", "--out", out, check=0)
    r = json.loads(out.read_text())
    assert (
        r["ext_id"] == "d7" and r["similarity"] > 0.9
    )  # the item is normalized, the supplied vector was not
    bad = tmp_path / "short.npy"
    np.save(bad, vecs[:5])
    p = cli("embed", tmp_path / "idx", "--precomputed", bad)
    assert p.returncode == 2 and "align" in p.stderr
