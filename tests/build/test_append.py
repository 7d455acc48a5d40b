"""Corpora that grow: ``freqindex build NEW... --append-to INDEX``.

Build A, append B, append C (in process), and compare with a fresh build of A+B+C and with a brute-force
count: counts in both units, the docs table, the quarantine, concept hits and neighbours; no file of A
changes; an input already in the index is skipped; a killed append leaves A opening and verifying as before
and a rerun completes it; the infini-gram engine opens the grown ``sa/``; the CLI flag (one Spark run);
and an append to an index in an object store."""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from freqindex.build import build_index, run_in_process
from freqindex.build.append import append_index
from freqindex.concepts.stage import run_tagging
from freqindex.concepts.vocab import load_vocabulary
from freqindex.config import BuildConfig
from freqindex.errors import UsageError
from freqindex.manifest import SEAL_KEY, read_manifest, verify
from freqindex.query.count import count
from freqindex.suffix.index import Index
from freqindex.text.normalize import get_normalizer
from tests.conftest import DATA, REPO, WIKITEXT
from tests.reference import BruteCorpus, ref_normalize

CLASSNAMES = DATA / "concepts" / "clip_benchmark_en_classnames.json"
NAMES = ("a.jsonl", "b.jsonl", "c.jsonl")
SMALL = dict(shard_size=64 << 10)  # A of ~100 KB becomes 2 shards, each append 1


def _lines() -> list[str]:
    return [ln.strip() for ln in WIKITEXT.read_text(encoding="utf-8").splitlines() if len(ln.strip()) > 40]


def _write(path: Path, texts: list[str], bad_every: int = 0) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for i, t in enumerate(texts):
            f.write(json.dumps({"id": f"{path.stem}-{i}", "text": t}) + "\n")
            if bad_every and i % bad_every == 3:
                f.write('{"id": "broken", "text": \n' if i % 2 else '{"id": "no text"}\n')


def _sha(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def vocab():
    return load_vocabulary(str(CLASSNAMES), get_normalizer("simple"))


def _grow(root: Path, names: tuple[str, ...], stage, **settings) -> tuple[Path, Path, dict, list[str]]:
    """Build names[0] into root/idx, run ``stage`` on it, append the others one by one; build all of them
    afresh into root/fresh and run ``stage`` there. Returns (idx, fresh, sha256 of A's files, messages)."""
    build_index(
        BuildConfig(inputs=(str(root / names[0]),), output=str(root / "idx"), **settings), run_in_process
    )
    stage(root / "idx")
    shutil.copytree(root / "idx", root / "base")  # A as built, for the kill tests
    before = _sha(root / "idx")
    said: list[str] = []
    for name in names[1:]:
        cfg = BuildConfig(inputs=(str(root / name),), output=str(root / "idx"))
        assert append_index(cfg, run_in_process, on_message=said.append)["status"] == "appended"
    fresh = root / "fresh"
    build_index(
        BuildConfig(inputs=tuple(str(root / n) for n in names), output=str(fresh), **settings), run_in_process
    )
    stage(fresh)
    return root / "idx", fresh, before, said


@pytest.fixture(scope="module")
def grown(tmp_path_factory, vocab):
    """(root, grown index, fresh index, sha256 of A's files before the appends, messages): tagged."""
    root = tmp_path_factory.mktemp("append")
    lines = _lines()
    _write(root / "a.jsonl", lines[:260])
    _write(root / "b.jsonl", lines[260:330], bad_every=20)
    _write(root / "c.jsonl", lines[330:370])
    build_index(
        BuildConfig(inputs=(str(root / "a.jsonl"),), output=str(root / "plain"), **SMALL), run_in_process
    )

    def tag(idx: Path) -> None:
        run_tagging(str(idx), vocab, run_in_process, str(CLASSNAMES))

    return root, *_grow(root, NAMES, tag, **SMALL)


@pytest.fixture(scope="module")
def embedded(tmp_path_factory):
    """(grown index, fresh index, sha256 of A's files before the appends): embedded (a smaller corpus: the
    model runs on CPU)."""
    from freqindex.vectors.stage import run_embedding

    pytest.importorskip("faiss")
    root = tmp_path_factory.mktemp("append-vectors")
    lines = [ln[:400] for ln in _lines()[1000:]]
    _write(root / "a.jsonl", lines[:24])
    _write(root / "b.jsonl", lines[24:32])
    _write(root / "c.jsonl", lines[32:38])

    def embed(idx: Path) -> None:
        run_embedding(str(idx), run_in_process, chunk_tokens=(128,), stride=128, factory="Flat")

    return (*_grow(root, NAMES, embed)[:3], root)


def _brute(root: Path) -> BruteCorpus:
    docs = []
    for name in NAMES:
        for ln in (root / name).read_text(encoding="utf-8").splitlines():
            try:
                text = json.loads(ln)["text"]
            except (ValueError, KeyError):
                continue
            docs.append(f" {ref_normalize(text)} ".encode())
    return BruteCorpus(docs)


def test_generations_in_the_manifest(grown):
    _, idx, fresh, _, _ = grown
    m = read_manifest(idx)
    gens = m["generations"]
    assert [g["generation"] for g in gens] == [0, 1, 2]
    assert [(g["first_shard"], g["n_shards"]) for g in gens] == [(0, 2), (2, 1), (3, 1)]
    assert [g["inputs"][0]["path"].rsplit("/", 1)[1] for g in gens] == list(NAMES)
    assert all(len(g["inputs"][0]["sha256"]) == 64 for g in gens)
    assert [s["shard"] for s in m["shards"]] == [0, 1, 2, 3]
    f = read_manifest(fresh)
    for k in ("documents", "tokens", "input_bytes", "quarantined", "input_files"):
        assert m["counts"][k] == f["counts"][k], k
    assert m["counts"]["quarantine_by_reason"] == f["counts"]["quarantine_by_reason"]
    assert gens[1]["quarantine"] == "quarantine/quarantine-g00001.parquet"
    assert verify(idx)["ok"]


def test_counts_equal_a_fresh_build_and_brute_force(grown):
    root, idx, fresh, _, _ = grown
    a, b = Index.open(idx), Index.open(fresh)
    brute = _brute(root)
    rng = random.Random(7)
    queries = [" the ", " of the ", "ing ", " game ", "zq", " 19"]
    for _ in range(40):
        d = rng.choice(brute.docs).decode()
        i = rng.randrange(len(d) - 3)
        queries.append(d[i : i + rng.randrange(2, 12)])
    for q in queries:
        qb = q.encode()
        for unit, want in (("occurrences", brute.count(qb)), ("docs", brute.doc_count(qb))):
            got_a = count(a, q, unit=unit, literal=True).count
            assert got_a == count(b, q, unit=unit, literal=True).count == want, (q, unit)


def test_docs_and_quarantine_equal_a_fresh_build(grown):
    _, idx, fresh, _, _ = grown
    a, b = Index.open(idx), Index.open(fresh)
    cols = ["doc_id", "source", "line", "ext_id", "n_bytes", "n_tokens", "content_hash"]
    assert a.docs_table(cols).sort_by("doc_id").equals(b.docs_table(cols).sort_by("doc_id"))
    qa = pa.concat_tables(pq.read_table(p) for p in a.files_under("quarantine")).to_pylist()
    qb = pq.read_table(b.files_under("quarantine")[0]).to_pylist()
    assert qa == qb and len(qa) > 0
    from freqindex.sqlcat import open_catalog

    assert open_catalog(idx).execute("SELECT count(*) FROM quarantine").fetchone()[0] == len(qb)
    for ix in (0, 150, a.total_docs - 1):
        assert a.doc_text(ix) == b.doc_text(ix)


def test_concept_hits_equal_a_fresh_build(grown):
    _, idx, fresh, _, _ = grown
    a, b = Index.open(idx), Index.open(fresh)
    ha = a.concept_hits().sort_by([("doc_id", "ascending"), ("concept_id", "ascending")])
    hb = b.concept_hits().sort_by([("doc_id", "ascending"), ("concept_id", "ascending")])
    assert ha.equals(hb) and ha.num_rows > 0
    assert max(ha.column("doc_id").to_pylist()) >= a.manifest["generations"][1]["doc_start"]
    assert a.manifest["concepts"]["n_pairs"] == b.manifest["concepts"]["n_pairs"]


def test_vectors_and_neighbours_equal_a_fresh_build(embedded):
    from freqindex.evals.items import EvalItem
    from freqindex.query.neighbors import neighbors

    idx, fresh, before, _ = embedded
    a, b = Index.open(idx), Index.open(fresh)
    assert a.vectors.doc_id.tolist() == b.vectors.doc_id.tolist()
    assert a.manifest["vectors"]["n_vectors"] == b.manifest["vectors"]["n_vectors"]
    texts = [
        a.doc_text(d)[:200] for d in (5, a.manifest["generations"][1]["doc_start"] + 3, a.total_docs - 2)
    ]
    items = [EvalItem(str(i), t, {}) for i, t in enumerate(texts)]
    na, nb = neighbors(a, items, k=5), neighbors(b, items, k=5)
    assert [(r["item_id"], r["doc_id"]) for r in na] == [(r["item_id"], r["doc_id"]) for r in nb]
    assert np.allclose([r["similarity"] for r in na], [r["similarity"] for r in nb], atol=1e-4)
    after = _sha(idx)
    # the manifest is the commit point; the FAISS index is derived and now holds the new vectors too
    assert sorted(rel for rel, h in before.items() if after.get(rel) != h) == [
        "manifest.json",
        "vectors/index.faiss",
    ]


def test_no_file_of_the_first_build_changed(grown):
    _, idx, _, before, _ = grown
    after = _sha(idx)
    changed = sorted(rel for rel, h in before.items() if after.get(rel) != h)
    assert changed == ["manifest.json"]  # the commit point; every other file is byte for byte as it was
    assert not [p for p in idx.parent.iterdir() if p.name.startswith(".idx")]  # no partial or old left


def test_inputs_already_in_the_index_are_skipped(grown):
    root, idx, _, _, said = grown
    seal = read_manifest(idx)[SEAL_KEY]
    msgs: list[str] = []
    s = append_index(
        BuildConfig(inputs=(str(root / "b.jsonl"), str(root / "a.jsonl")), output=str(idx)),
        run_in_process,
        on_message=msgs.append,
    )
    assert s["status"] == "up-to-date" and len(s["already_indexed"]) == 2
    assert any("already in the index" in m and "b.jsonl" in m for m in msgs)
    assert read_manifest(idx)[SEAL_KEY] == seal
    with pytest.raises(UsageError, match="tokenizer"):
        append_index(
            BuildConfig(inputs=(str(root / "c.jsonl"),), output=str(idx), tokenizer="gpt2"), run_in_process
        )


def test_a_killed_append_of_an_embedded_index_resumes_without_doubling_vectors(embedded, tmp_path):
    idx, _, _, root = embedded
    index = tmp_path / "a"
    shutil.copytree(root / "base", index)
    before = _sha(index)
    proc = _append_in_subprocess(root, index, "driver-before-manifest=kill")
    assert proc.returncode == -9, proc.stderr
    assert _sha(index) == before and verify(index)["ok"]
    append_index(BuildConfig(inputs=(str(root / "b.jsonl"),), output=str(index)), run_in_process)
    m, grown = read_manifest(index), read_manifest(idx)
    want = grown["vectors"]["n_vectors"] - sum(  # A's and B's windows: the grown index less C's
        int(pq.read_metadata(idx / f"vectors/part-{i:05d}.parquet").num_rows)
        for i in range(m["vectors"]["parts"], grown["vectors"]["parts"])
    )
    assert m["vectors"]["n_vectors"] == want == Index.open(index).vectors.faiss_index.ntotal
    assert verify(index)["ok"]


def _append_in_subprocess(root: Path, index: Path, fault: str) -> subprocess.CompletedProcess:
    code = (
        "import sys; from freqindex.build import run_in_process; from freqindex.build.append import append_index;"
        "from freqindex.config import BuildConfig;"
        f"append_index(BuildConfig(inputs=({str(root / 'b.jsonl')!r},), output={str(index)!r}), run_in_process)"
    )
    env = {**os.environ, "FREQINDEX_FAULTS": fault, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("fault", ["shard-built=kill", "driver-before-manifest=kill"])
def test_a_killed_append_leaves_the_index_as_it_was(grown, tmp_path, fault):
    root = grown[0]
    index = tmp_path / "a"
    shutil.copytree(root / "plain", index)
    before = _sha(index)
    proc = _append_in_subprocess(root, index, fault)
    assert proc.returncode == -9, proc.stderr
    assert _sha(index) == before
    idx = Index.open(index)
    assert idx.total_docs == 260 and len(idx.manifest["generations"]) == 1
    assert verify(index)["ok"]
    msgs: list[str] = []
    s = append_index(
        BuildConfig(inputs=(str(root / "b.jsonl"),), output=str(index)),
        run_in_process,
        on_message=msgs.append,
    )
    assert s["status"] == "appended" and any("resuming" in m for m in msgs)
    assert Index.open(index).total_docs == 260 + 70 and verify(index)["ok"]
    assert {rel: h for rel, h in _sha(index).items() if rel in before and rel != "manifest.json"} == {
        rel: h for rel, h in before.items() if rel != "manifest.json"
    }


def test_the_engine_opens_the_grown_shards(grown):
    from infini_gram.engine import InfiniGramEngine

    _, idx, _, _, _ = grown
    index = Index.open(idx)
    eng = InfiniGramEngine(index_dir=str(idx / "sa"), eos_token_id=254, vocab_size=255, token_dtype="u8")
    for q in (" the ", " and ", "ing "):
        assert eng.count(input_ids=list(q.encode()))["count"] == count(index, q).count
    assert len(list((idx / "sa").glob("table.*"))) == 4


def test_the_cli_appends(grown, tmp_path):
    """`freqindex build C --append-to INDEX` (a small append on a local master runs without Spark)."""
    root = grown[0]
    index = tmp_path / "a"
    shutil.copytree(root / "plain", index)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [sys.executable, "-c", "from freqindex.cli import app; app(prog_name='freqindex')"]
        + ["build", str(root / "c.jsonl"), "--append-to", str(index)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "without starting Spark" in proc.stderr and "generation" in proc.stderr
    m = Index.open(index).manifest
    assert len(m["generations"]) == 2 and m["counts"]["documents"] == 260 + 40


@pytest.mark.spark
def test_an_append_in_spark_equals_one_in_process(grown, tmp_path):
    """The one Spark run: the append's tasks as Spark tasks give the same shard files."""
    from jobs.spark import spark_runner

    root = grown[0]
    for name in ("spark", "core"):
        shutil.copytree(root / "plain", tmp_path / name)
    cfg = BuildConfig(inputs=(str(root / "b.jsonl"),), output=str(tmp_path / "spark"), master="local[2]")
    with spark_runner("local[2]", "freqindex-test-append") as runner:
        assert append_index(cfg, runner)["status"] == "appended"
    append_index(BuildConfig(inputs=(str(root / "b.jsonl"),), output=str(tmp_path / "core")), run_in_process)
    for kind in ("tokenized", "offset", "table", "metadata", "metaoff"):
        assert (tmp_path / "spark" / f"sa/{kind}.2").read_bytes() == (
            tmp_path / "core" / f"sa/{kind}.2"
        ).read_bytes()
    assert verify(tmp_path / "spark")["ok"]


@pytest.mark.s3
def test_append_to_an_index_in_an_object_store(grown, tmp_path):
    from freqindex.remote import pull
    from tests.objectstore import moto_server, s3fs_for

    pytest.importorskip("s3fs")
    root, _, fresh, _, _ = grown
    with moto_server(tmp_path) as endpoint:
        fs = s3fs_for(endpoint)
        fs.mkdir("bkt")
        so = (("endpoint_url", endpoint),)
        url = "s3://bkt/idx"
        build_index(
            BuildConfig(inputs=(str(root / "a.jsonl"),), output=url, storage_options=so, **SMALL),
            run_in_process,
        )
        fs.invalidate_cache()
        tags = {p: fs.info(p)["ETag"] for p in fs.find("bkt/idx")}
        for name in ("b.jsonl", "c.jsonl"):
            cfg = BuildConfig(inputs=(str(root / name),), output=url, storage_options=so)
            assert append_index(cfg, run_in_process)["status"] == "appended"
        fs.invalidate_cache()
        now = {p: fs.info(p)["ETag"] for p in fs.find("bkt/idx")}
        assert {p: now.get(p) for p in tags if not p.endswith("manifest.json")} == {
            p: t for p, t in tags.items() if not p.endswith("manifest.json")
        }
        assert not [p for p in now if "_staging" in p]
        pull(url, tmp_path / "pulled", so)
    a, b = Index.open(tmp_path / "pulled"), Index.open(fresh)
    assert len(a.manifest["generations"]) == 3
    for q in (" the ", " of ", "ing "):
        for unit in ("occurrences", "docs"):
            assert count(a, q, unit=unit).count == count(b, q, unit=unit).count


def test_the_manifest_checks_its_generations(grown):
    import copy

    from freqindex.manifest import manifest_problem

    m = read_manifest(grown[1])
    assert manifest_problem(m) is None
    for edit, want in (
        (lambda g: g[1].update(first_shard=3), "generation 1 starts at shard 3"),
        (lambda g: g[2].update(n_docs=1), "generation 2 doc_start/n_docs"),
        (lambda g: g[1].update(quarantine="quarantine/quarantine.parquet"), "generation 1 quarantine"),
        (lambda g: g.pop(), "the generations cover 3 shards"),
    ):
        bad = copy.deepcopy(m)
        edit(bad["generations"])
        assert want in (manifest_problem(bad) or ""), want
