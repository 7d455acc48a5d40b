"""Golden end-to-end tests through the CLI on a small real example (see tests/golden/README.md).

A few hundred real documents (GSM8K train questions, WikiText-2 paragraphs) with five GSM8K test questions
planted in them, 150 GSM8K test questions as the eval set, and the four real models' results of
example_model_solutions.jsonl (GSM8K's wide layout, keyed by question text). The whole chain runs through
`python -m freqindex.cli` once per module: build, count (both units), docs, tag + concepts, contamination,
analyze (--auto-concepts, verbatim similarity), embed + analyze (neighbour similarity), sql. Every output is
compared with the files in tests/golden/expected/, which a person has read: numbers to a tolerance, text
exactly. Absolute paths, timestamps, durations and tool versions are taken out before comparing.

Regenerate the expected files (then read the diff before committing it):

    FREQINDEX_REGEN_GOLDEN=1 pytest tests/golden

Beside the golden files, the same run is checked against independent references: counts against a brute
force, the planted questions against the contamination buckets and the nearest neighbours, per-model
accuracy against the solutions file read directly. `tag` and `embed` are killed mid-stage
(``FREQINDEX_FAULTS=POINT=kill``) and rerun: the module's own tag is the rerun of a killed one (its outputs
must be the golden ones); the embed rerun, on a copy, keeps the killed run's parts and forces the IVF path
of FAISS, its vectors equal the module's uninterrupted run's and its recall is checked against exact search.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from freqindex.faults import ENV as FAULTS_ENV
from tests.conftest import DATA, GSM8K_TEST, GSM8K_TRAIN, REPO, WIKITEXT, cli
from tests.reference import BruteCorpus, read_lines_docs, ref_normalize

pytestmark = pytest.mark.spark

HERE = Path(__file__).resolve().parent
EXPECTED = HERE / "expected"
REGEN = os.environ.get("FREQINDEX_REGEN_GOLDEN") == "1"
SOLUTIONS = DATA / "evals" / "gsm8k" / "example_model_solutions.jsonl"
N_TRAIN, N_WIKI, N_EVAL = 300, 80, 150
PLANTED_VERBATIM = (7, 42, 101)  # test questions copied verbatim as documents of their own
PLANTED_INSIDE = (23, 131)  # ... and inside a WikiText-2 paragraph
QUERIES = [
    " dollars ",
    " apples ",
    " how many ",
    " per hour ",
    " the ",
    "ing ",
    " zzqx ",
    " dollars  OR  cents ",
]
DOCS_QUERY = " per hour "
# numbers: |actual - expected| <= ABS + REL * |expected|. Exact counts and fits on them agree to rounding;
# anything computed from embeddings gets the looser pair (MiniLM's float sums vary with CPU kernels/threads)
TOL_EXACT = (1e-9, 1e-6)
TOL_EMBED = (2e-3, 2e-3)
VOLATILE_KEYS = {"seconds", "timings", "added", "created", "tools", "manifest_sha256", "embed_seconds"}
VOLATILE_KEYS |= {"faiss_seconds", "resumed_tasks", "executor_python"}  # the interpreter's path


# ---------------------------------------------------------------- the example and the run


def _wiki_paragraphs() -> list[str]:
    return [p for p in read_lines_docs(WIKITEXT) if not p.strip().startswith("=") and len(p) >= 200]


def _make_example(root: Path) -> dict:
    """Write the corpus and the eval set; return the paths and every good document's text (for the brute
    force)."""
    corpus = root / "corpus"
    corpus.mkdir(parents=True)
    train = [json.loads(x)["question"] for x in GSM8K_TRAIN.read_text().splitlines()[:N_TRAIN]]
    test = [json.loads(x) for x in GSM8K_TEST.read_text().splitlines()[:N_EVAL]]
    wiki = _wiki_paragraphs()
    with open(corpus / "gsm8k-train.jsonl", "w") as f:
        for k, q in enumerate(train):
            f.write(json.dumps({"id": f"train-{k}", "text": q}) + "\n")
    (corpus / "wikitext.txt").write_text("\n".join(wiki[:N_WIKI]) + "\n")
    planted = [test[k]["question"] for k in PLANTED_VERBATIM]
    planted += [
        f"{wiki[N_WIKI + j]} {test[k]['question']} {wiki[N_WIKI + 10 + j]}"
        for j, k in enumerate(PLANTED_INSIDE)
    ]
    ids = [f"planted-{k}" for k in PLANTED_VERBATIM + PLANTED_INSIDE]
    lines = [json.dumps({"id": i, "text": t}) for i, t in zip(ids, planted)]
    lines.insert(2, '{"id": "broken", "text": "this record is cut off')  # one bad record for the quarantine
    (corpus / "planted.jsonl").write_text("\n".join(lines) + "\n")
    evals = root / "gsm8k-test.jsonl"
    with open(evals, "w") as f:
        for k, r in enumerate(test):
            f.write(json.dumps({"id": f"test-{k}", "question": r["question"], "answer": r["answer"]}) + "\n")
    # documents in doc_id order: input files sorted by name, then line order
    return {"corpus": corpus, "eval": evals, "texts": train + planted + wiki[:N_WIKI], "test": test}


def _stable(obj, root: Path):
    """``obj`` without what legitimately varies between runs: durations, timestamps, tool versions, the
    manifest's hash, and absolute paths (replaced by <WORK>, <DATA>, <REPO>)."""
    if isinstance(obj, dict):
        return {k: _stable(v, root) for k, v in obj.items() if k not in VOLATILE_KEYS}
    if isinstance(obj, list):
        return [_stable(v, root) for v in obj]
    if isinstance(obj, str):
        for path, name in ((root, "<WORK>"), (DATA, "<DATA>"), (REPO, "<REPO>")):
            obj = obj.replace(str(path), name)
        return obj
    return obj


def _jsonl(text: str) -> list[dict]:
    return [json.loads(x) for x in text.splitlines() if x.strip()]


def _run(*args, env=None) -> str:
    return cli(*args, check=0, env=env).stdout


@pytest.fixture(scope="module")
def golden(tmp_path_factory):
    """The whole chain, once: every command's output (made stable) by golden file name, and the paths."""
    root = tmp_path_factory.mktemp("golden")
    ex = _make_example(root)
    idx, ev, out = root / "idx", ex["eval"], {}
    out["build.json"] = json.loads(
        _run(
            "build",
            ex["corpus"],
            "-o",
            idx,
            "--text-per-line",
            "--shards",
            "2",
            "--master",
            "local[2]",
            "--json",
        )
    )
    qfile = root / "queries.txt"
    qfile.write_text("".join(q + "\n" for q in QUERIES))
    occ = _jsonl(_run("count", idx, "--file", qfile))
    docs = _jsonl(_run("count", idx, "--file", qfile, "--unit", "docs"))
    out["counts.jsonl"] = [
        {"query": o["query"], "occurrences": o["count"], "docs": d["count"]} for o, d in zip(occ, docs)
    ]
    hits = _jsonl(_run("docs", idx, DOCS_QUERY, "--limit", "1000", "--json"))
    out["docs.jsonl"] = sorted(
        ({**h, "source": Path(h["source"]).name} for h in hits), key=lambda h: h["doc_id"]
    )
    vocab = HERE / "concepts.txt"
    # tag killed at its last moment before publishing (every hits part written), then run again: the golden
    # tag outputs are the rerun's (one Spark job less than a separate uninterrupted run); what the kill left
    # is checked by test_tag_killed_then_rerun_gives_the_golden_outputs
    _killed_run("tag-tasks-done", "tag", idx, "--concepts", vocab, "--master", "local[2]")
    killed_tag = {
        "partial_parts": len(list((idx / ".concepts.partial" / "hits").glob("part-*.parquet"))),
        "manifest_stages": set(json.loads((idx / "manifest.json").read_text())),
        "concepts_dir": (idx / "concepts").exists(),
        "verify": cli("verify", idx).returncode,
        "sources": {r["source"] for r in _jsonl(_run("concepts", idx, "--concepts", vocab, "--json"))},
    }
    out["tag.json"] = json.loads(_run("tag", idx, "--concepts", vocab, "--master", "local[2]", "--json"))
    out["concepts.jsonl"] = _jsonl(_run("concepts", idx, "--concepts", vocab, "--json"))
    shutil.copytree(idx, root / "pre-embed")
    cont = root / "contamination"
    common = ["--eval", ev, "--fields", "question", "--results", SOLUTIONS]
    out["contamination_summary.json"] = json.loads(
        _run("contamination", idx, *common, "--out", cont, "--json")
    )
    out["contamination_flagged.jsonl"] = [
        {k: r.get(k) for k in ("id", "bucket", "coverage", "longest_match", "definitions", "evidence")}
        for r in _jsonl((cont / "items.jsonl").read_text())
        if r["bucket"] != "clean" or any(r["definitions"].values())
    ]
    for f in out["contamination_flagged.jsonl"]:
        if f["evidence"]:
            f["evidence"] = {**f["evidence"], "source": Path(f["evidence"]["source"]).name}
    ana = ["analyze", idx, *common, "--auto-concepts", "--json"]
    out["analysis_verbatim.json"] = json.loads(
        _run(*ana, "--similarity", "verbatim", "--out", root / "a-verbatim")
    )
    out["analysis_items.jsonl"] = _per_item(root / "a-verbatim" / "items.parquet")
    # local[1]: one Python worker, so MiniLM is loaded once for the tasks (and once by the driver's check)
    out["embed.json"] = json.loads(
        _run("embed", idx, "--chunk-tokens", "64", "--master", "local[1]", "--json")
    )
    out["analysis_neighbors.json"] = json.loads(
        _run(*ana, "--similarity", "neighbors", "--out", root / "a-neighbors")
    )
    out["sql.jsonl"] = [
        {"sql": q, "rows": _jsonl(_run("sql", idx, q, "--format", "json"))}
        for q in (
            "SELECT code, count(*) AS n FROM quarantine GROUP BY code ORDER BY code",
            "SELECT concept, occurrences, doc_frequency FROM concept_freq ORDER BY doc_frequency DESC, concept",
            "SELECT bucket, count(*) AS n FROM contamination GROUP BY bucket ORDER BY bucket",
            "SELECT model, count(*) AS n, round(avg(correct), 6) AS accuracy FROM analysis_items "
            "GROUP BY model ORDER BY model",
        )
    ]
    stable = {name: _stable(v, root) for name, v in out.items()}
    return {"root": root, "idx": idx, "example": ex, "out": stable, "raw": out, "killed_tag": killed_tag}


def _per_item(items_parquet: Path) -> list[dict]:
    """items.parquet (one row per item and model) as one row per item: concepts, frequency, similarity,
    longest match, and each model's correctness."""
    by_id: dict[str, dict] = {}
    for r in pq.read_table(items_parquet).to_pylist():
        row = by_id.setdefault(
            r["id"],
            {
                "id": r["id"],
                "concepts": r["concepts"],
                "primary_concept": r["primary_concept"],
                "frequency": r["frequency"],
                "similarity": r["similarity"],
                "longest_match_chars": r["longest_match_chars"],
                "correct": {},
            },
        )
        row["correct"][r["model"]] = r["correct"]
    return sorted(by_id.values(), key=lambda r: int(r["id"].split("-")[1]))


# ---------------------------------------------------------------- comparison


NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:e[-+]?\d+)?")


def _number(text: str) -> int | float:
    return float(text) if any(c in text for c in ".e") else int(text)


def _close(a: int | float, e: int | float, tol) -> bool:
    """Integers (counts, ids) exactly; other numbers within the tolerance."""
    if isinstance(a, int) and isinstance(e, int):
        return a == e
    a, e = float(a), float(e)
    return (math.isnan(a) and math.isnan(e)) or abs(a - e) <= tol[0] + tol[1] * abs(e)


def _diff(actual, expected, tol, path="$", loose=()) -> list[str]:
    """Every difference between ``actual`` and ``expected`` (JSON values), as "path: actual, expected".
    Keys in ``loose`` (anywhere) are compared with the embeddings' tolerance, TOL_EMBED."""
    mismatch = [f"{path}: {actual!r}, expected {expected!r}"]
    if isinstance(expected, dict) and isinstance(actual, dict):
        out = (
            [f"{path}: keys {sorted(set(actual) ^ set(expected))} differ"]
            if set(actual) != set(expected)
            else []
        )
        for k in expected:
            if k in actual:
                out += _diff(actual[k], expected[k], TOL_EMBED if k in loose else tol, f"{path}.{k}", loose)
        return out
    if isinstance(expected, list) and isinstance(actual, list):
        if len(actual) != len(expected):
            return [f"{path}: {len(actual)} entries, expected {len(expected)}"]
        pairs = enumerate(zip(actual, expected))
        return [d for i, (a, e) in pairs for d in _diff(a, e, tol, f"{path}[{i}]", loose)]
    if isinstance(expected, bool) or isinstance(actual, bool):
        return [] if actual is expected else mismatch
    if isinstance(expected, int | float) and isinstance(actual, int | float):
        return [] if _close(actual, expected, tol) else mismatch
    if isinstance(expected, str) and isinstance(actual, str):  # numbers printed in a text (verdict reasons)
        same_text = NUMBER.sub("#", actual) == NUMBER.sub("#", expected)
        pairs = zip(NUMBER.findall(actual), NUMBER.findall(expected))
        if same_text and all(_close(_number(a), _number(e), tol) for a, e in pairs):
            return []
    return [] if actual == expected else mismatch


def check_golden(name: str, actual, tol=TOL_EXACT, loose=()) -> None:
    """Compare with tests/golden/expected/NAME (written first when FREQINDEX_REGEN_GOLDEN=1); the values
    under keys named in ``loose`` come from embeddings and get TOL_EMBED."""
    path = EXPECTED / name
    if REGEN:
        EXPECTED.mkdir(exist_ok=True)
        if name.endswith(".jsonl"):
            text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in actual)
        else:
            text = json.dumps(actual, indent=2, ensure_ascii=False) + "\n"
        path.write_text(text, encoding="utf-8")
    assert path.is_file(), (
        f"{path} is missing: run FREQINDEX_REGEN_GOLDEN=1 pytest tests/golden, then read it"
    )
    text = path.read_text(encoding="utf-8")
    expected = _jsonl(text) if name.endswith(".jsonl") else json.loads(text)
    problems = _diff(actual, expected, tol, loose=loose)
    assert not problems, f"{name} differs from the golden file:\n" + "\n".join(problems[:25])


# ---------------------------------------------------------------- golden files + independent references


def test_build_counts_and_docs(golden):
    out, ex = golden["out"], golden["example"]
    check_golden("build.json", out["build.json"])
    check_golden("counts.jsonl", out["counts.jsonl"])
    check_golden("docs.jsonl", out["docs.jsonl"])
    # the same counts by brute force over the documents, normalized independently
    brute = BruteCorpus([f" {ref_normalize(t)} ".encode() for t in ex["texts"]])
    assert out["build.json"]["documents"] == len(ex["texts"]) and out["build.json"]["quarantined"] == 1
    for row in out["counts.jsonl"]:
        alts = [ref_normalize(a, keep_edges=True) for a in row["query"].split(" OR ")]
        occ = sum(brute.count(a.encode()) for a in alts)
        docs = len({d for a in alts for d in _doc_ids(brute, a.encode())})
        assert (row["occurrences"], row["docs"]) == (occ, docs), row
    assert {h["doc_id"] for h in out["docs.jsonl"]} == set(_doc_ids(brute, DOCS_QUERY.encode()))
    m = json.loads((golden["idx"] / "manifest.json").read_text())
    assert m["tokenizer"]["vocab_size"] == m["engine"]["vocab_size"] == 255


def _doc_ids(brute: BruteCorpus, q: bytes) -> list[int]:
    pos = np.array(brute.positions(q), dtype=np.int64)
    return sorted(set((np.searchsorted(brute.starts, pos, side="right") - 1).tolist())) if pos.size else []


def test_concepts(golden):
    check_golden("tag.json", golden["out"]["tag.json"])
    check_golden("concepts.jsonl", golden["out"]["concepts.jsonl"])


def test_contamination(golden):
    out = golden["out"]
    # "semantic": no vectors yet, so the similarity pass runs in candidate mode (MiniLM on candidate windows)
    check_golden("contamination_summary.json", out["contamination_summary.json"], loose=("semantic",))
    check_golden("contamination_flagged.jsonl", out["contamination_flagged.jsonl"])
    dirty = {r["id"] for r in out["contamination_flagged.jsonl"] if r["bucket"] == "dirty"}
    assert dirty == {f"test-{k}" for k in PLANTED_VERBATIM + PLANTED_INSIDE}  # exactly the planted copies
    for r in out["contamination_flagged.jsonl"]:
        if r["id"] in dirty:
            assert r["coverage"] == 1.0 and r["evidence"]["ext_id"] == f"planted-{r['id'].split('-')[1]}"
    # the semantic pass: a question alone in a document is its own nearest window (cosine 1), and nothing but
    # planted questions comes near 0.9 (the two inside WikiText paragraphs share their window with other text)
    docs = pq.read_table(golden["idx"] / "docs").to_pandas().set_index("doc_id")["ext_id"]
    items = {r["id"]: r for r in _jsonl((golden["root"] / "contamination" / "items.jsonl").read_text())}
    for k in PLANTED_VERBATIM:
        sem = items[f"test-{k}"]["semantic"]
        assert sem["max_similarity"] > 0.99 and docs[sem["doc_id"]] == f"planted-{k}"
    near = {i for i, r in items.items() if r["semantic"]["max_similarity"] >= 0.8}
    assert {f"test-{k}" for k in PLANTED_VERBATIM} <= near <= dirty
    semantic = out["contamination_summary.json"]["semantic"]
    assert semantic["mode"] == "candidates" and semantic["at_least_0.9"] == sum(
        r["semantic"]["max_similarity"] >= 0.9 for r in items.values()
    )


def test_analysis_verbatim_auto_concepts_wide_results(golden):
    """analyze --auto-concepts --similarity verbatim with GSM8K's wide results layout."""
    out, ex = golden["out"], golden["example"]
    check_golden("analysis_verbatim.json", out["analysis_verbatim.json"])
    check_golden("analysis_items.jsonl", out["analysis_items.jsonl"])
    check_golden("sql.jsonl", out["sql.jsonl"])
    # the wide layout, read here directly: every eval question has each model's is_correct
    by_question = {json.loads(x)["question"]: json.loads(x) for x in SOLUTIONS.read_text().splitlines()}
    models = out["analysis_verbatim.json"]["models"]
    assert set(models) == {"6b_finetuning", "6b_verification", "175b_finetuning", "175b_verification"}
    for model, m in models.items():
        want = [by_question[r["question"]][model]["is_correct"] for r in ex["test"]]
        assert m["n_items"] == N_EVAL and m["accuracy"] == pytest.approx(sum(want) / len(want))
    items = {r["id"]: r for r in out["analysis_items.jsonl"]}
    # "Janet's ducks lay 16 eggs per day ... bakes muffins for her friends ... farmers' market": nouns by hand
    assert {"ducks", "eggs", "breakfast", "muffins", "friends", "market"} <= set(items["test-0"]["concepts"])
    assert not {"she", "her", "every", "day's"} & set(items["test-0"]["concepts"])
    for k in PLANTED_VERBATIM + PLANTED_INSIDE:  # verbatim similarity: the whole question is in the corpus
        assert items[f"test-{k}"]["similarity"] == 1.0


def test_analysis_neighbors(golden):
    """analyze --similarity neighbors on the same index, embedded (windows of 64 tokens)."""
    out = golden["out"]
    check_golden("embed.json", out["embed.json"])
    check_golden("analysis_neighbors.json", out["analysis_neighbors.json"], TOL_EMBED)
    items = {r["id"]: r for r in pq.read_table(golden["root"] / "a-neighbors" / "items.parquet").to_pylist()}
    docs = pq.read_table(golden["idx"] / "docs").to_pandas().set_index("doc_id")["ext_id"]
    for k in PLANTED_VERBATIM:  # a question alone in a document is its own nearest neighbour
        r = items[f"test-{k}"]
        assert r["similarity"] > 0.99 and docs[r["similarity_doc_id"]] == f"planted-{k}"
    assert out["analysis_neighbors.json"]["settings"]["similarity"] == "neighbors"


# ---------------------------------------------------------------- crash and resume


def _killed_run(point: str, *args) -> None:
    """Run the CLI with a fault point that kills; it must die by SIGKILL there. Its Spark JVM (same process
    group) goes too."""
    p = subprocess.Popen(
        [sys.executable, "-m", "freqindex.cli", *map(str, args)],
        cwd=REPO,
        env={**os.environ, FAULTS_ENV: f"{point}=kill"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    _, err = p.communicate(timeout=900)
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    assert p.returncode == -signal.SIGKILL, f"exit {p.returncode}, expected a kill at {point}\n{err}"


def _table(path: Path):
    """A Parquet table or directory in a canonical row order (part files may split rows differently)."""
    t = pq.read_table(path)
    return t.sort_by([(c, "ascending") for c in t.column_names])


def test_tag_killed_then_rerun_gives_the_golden_outputs(golden):
    """The module's tag ran after a tag killed with every hits part written, before publishing."""
    killed = golden["killed_tag"]
    assert killed["partial_parts"] > 0  # killed mid-stage, its work on disk
    # the index did not look tagged: no concepts in the manifest or on disk, it verified, and `concepts`
    # counted from the suffix arrays
    assert "concepts" not in killed["manifest_stages"] and not killed["concepts_dir"]
    assert killed["verify"] == 0 and killed["sources"] == {"suffix"}
    # the rerun started clean, published, and gave the outputs of the uninterrupted run the golden files
    # were first made from (tag.json and concepts.jsonl are compared by test_concepts)
    idx = golden["idx"]
    assert not (idx / ".concepts.partial").exists() and (idx / "concepts" / "vocab.parquet").is_file()
    assert golden["out"]["tag.json"]["doc_concept_pairs"] == pq.read_table(idx / "concepts" / "hits").num_rows
    assert {r["source"] for r in golden["raw"]["concepts.jsonl"]} == {"tags"}
    cli("verify", idx, check=0)


def test_embed_killed_then_rerun_on_the_ivf_path(golden, tmp_path):
    """Killed after every vector part is written, before FAISS; the rerun keeps those parts (it embeds
    nothing again) and forces an IVF index (64 lists, 16 probed): the vectors equal the uninterrupted
    (exact, Flat) run's, and the IVF index finds >= 90% of the exact top 10."""
    import faiss

    idx = tmp_path / "idx"
    shutil.copytree(golden["root"] / "pre-embed", idx)
    args = ["embed", idx, "--chunk-tokens", "64", "--master", "local[1]"]
    _killed_run("embed-vectors-written", *args, "--faiss-factory", "IVF64,Flat")
    assert any((idx / ".vectors.partial").glob("part-*.npy"))
    assert "vectors" not in json.loads((idx / "manifest.json").read_text()) and not (idx / "vectors").exists()
    # not embedded: the FAISS path refuses and says so (auto would fall back to candidate mode)
    ev = golden["example"]["eval"]
    p = cli("neighbors", idx, "--eval", ev, "--fields", "question", "-k", "1", "--neighbors", "exhaustive")
    assert p.returncode == 2 and "Traceback" not in p.stderr and "embed" in p.stderr, p.stderr
    summary = json.loads(_run(*args, "--faiss-factory", "IVF64,Flat", "--json"))
    assert (summary["factory"], summary["nprobe"]) == ("IVF64,Flat", 16)
    assert summary["resumed_tasks"] == summary["tasks"] >= 1  # every part was written before the kill
    ref = golden["idx"] / "vectors"
    names = sorted(f.name for f in ref.glob("part-*"))
    assert names == sorted(f.name for f in (idx / "vectors").glob("part-*"))
    for name in names:
        if name.endswith(".npy"):
            assert np.allclose(np.load(idx / "vectors" / name), np.load(ref / name), atol=1e-5)
        else:
            assert pq.read_table(idx / "vectors" / name).equals(pq.read_table(ref / name))
    assert not (idx / ".vectors.partial").exists()
    cli("verify", idx, check=0)
    vectors = np.concatenate([np.load(idx / "vectors" / n) for n in names if n.endswith(".npy")])
    index = faiss.read_index(str(idx / "vectors" / "index.faiss"))
    ivf = faiss.extract_index_ivf(index)
    assert ivf.nlist == 64 and index.ntotal == len(vectors)
    ivf.nprobe = 16
    rng = np.random.default_rng(0)
    queries = vectors[rng.choice(len(vectors), 100, replace=False)]
    _, approx = index.search(queries, 10)
    exact = faiss.IndexFlatIP(vectors.shape[1])
    exact.add(vectors)
    _, truth = exact.search(queries, 10)
    recall = np.mean([len(set(a) & set(t)) / 10 for a, t in zip(approx, truth)])
    assert recall >= 0.9, recall
