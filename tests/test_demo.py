"""The generated demo world (freqindex/demo.py): deterministic, every planted thing where it should be."""

from __future__ import annotations

import gzip
import json

import pyarrow.parquet as pq
import zstandard

from freqindex.demo import ANIMALS, demo_eval, write_demo_corpus, write_demo_eval
from tests.reference import ref_normalize


def _windows(text: str, n: int = 50) -> set[str]:
    s = f" {ref_normalize(text)} "
    return {s[i : i + n] for i in range(len(s) - n + 1)}


def _corpus_texts(d) -> tuple[list[str], int]:
    """Every record of the demo corpus read with plain Python: (good texts, bad records)."""
    good, bad = [], 0
    for line in (d / "captions.tsv").read_text().splitlines():
        good.append(line.split("\t", 1)[1])
    raw = [
        (d / "articles-0.jsonl").read_text(),
        gzip.decompress((d / "articles-1.jsonl.gz").read_bytes()).decode(),
        zstandard.ZstdDecompressor()
        .decompressobj()
        .decompress((d / "articles-2.jsonl.zst").read_bytes())
        .decode(),
        (d / "quiz-pages.jsonl").read_text(),
    ]
    rows = []
    for text in raw:
        for line in text.splitlines():
            try:
                rows.append(json.loads(line)["text"])
            except json.JSONDecodeError:
                bad += 1
    rows += pq.read_table(d / "web.parquet").column("text").to_pylist()
    for t in rows:
        if t:
            good.append(t)
        else:
            bad += 1
    return good, bad


def test_demo_world_is_deterministic_and_the_leak_is_planted(tmp_path):
    a = write_demo_corpus(tmp_path / "a", 300, 60, seed=3)
    write_demo_corpus(tmp_path / "b", 300, 60, seed=3)
    for name in a["files"]:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    write_demo_eval(tmp_path / "e", seed=3)
    write_demo_eval(tmp_path / "f", seed=3)
    for name in ("questions.jsonl", "results.jsonl", "concepts.txt", "truth.json"):
        assert (tmp_path / "e" / name).read_bytes() == (tmp_path / "f" / name).read_bytes(), name
    assert demo_eval(4) != demo_eval(3)

    texts, bad = _corpus_texts(tmp_path / "a")
    assert (len(texts), bad) == (a["documents"], a["planted_bad_records"])
    questions = [json.loads(x) for x in (tmp_path / "e" / "questions.jsonl").read_text().splitlines()]
    truth = json.loads((tmp_path / "e" / "truth.json").read_text())
    leaked = set(truth["leaked_ids"])
    assert 0 < len(leaked) == a["planted_leaks"] < len(questions) // 3
    corpus_windows = set().union(*(_windows(t) for t in texts))
    for q in questions:
        inside = any(q["question"] in t for t in texts)
        assert inside == (q["id"] in leaked), q  # leaked questions are in the corpus verbatim, no other is
        if q["id"] not in leaked:  # and no other shares even 50 characters with it
            assert not _windows(q["question"]) & corpus_windows, q
    # one concept per question, every animal asked about; two models answered every question
    assert {q["concept"] for q in questions} == {sg for sg, _ in ANIMALS}
    results = [json.loads(x) for x in (tmp_path / "e" / "results.jsonl").read_text().splitlines()]
    assert {(r["model"], r["id"]) for r in results} == {
        (m, q["id"]) for m in truth["models"] for q in questions
    }
    # the memorizer is right far more often on leaked questions (by construction: 0.9 against 0.2)
    mem = {r["id"]: r["correct"] for r in results if r["model"] == "memorizer"}
    acc_leaked = sum(mem[i] for i in leaked) / len(leaked)
    acc_rest = sum(v for i, v in mem.items() if i not in leaked) / (len(mem) - len(leaked))
    assert acc_leaked > 0.7 > 0.35 > acc_rest


def test_demo_corpus_cli_json_matches_what_it_wrote(tmp_path):
    from tests.conftest import cli

    res = cli("demo-corpus", str(tmp_path / "c"), "--captions", "40", "--articles", "12", "--json", check=0)
    info = json.loads(res.stdout)
    assert sorted(info["files"]) == sorted(p.name for p in (tmp_path / "c").iterdir())
    texts, bad = _corpus_texts(tmp_path / "c")
    assert (len(texts), bad) == (info["documents"], info["planted_bad_records"])
