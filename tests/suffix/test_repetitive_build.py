"""A real Spark build of highly repetitive text (exact copies of WikiText-2 valid and a long periodic document
in one shard) counts every duplicate exactly. infini-gram's indexer took minutes on two copies; libdivsufsort
takes seconds."""

from __future__ import annotations

import json
import random

import pytest

from freqindex.query.count import count
from freqindex.suffix.index import Index
from tests.conftest import WIKITEXT, build
from tests.reference import BruteCorpus, read_lines_docs

pytestmark = pytest.mark.spark

COPIES = 4
PERIOD = "the cat sat on the mat. "


def test_repeated_wikitext_counts_duplicates_exactly(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    lines = read_lines_docs(WIKITEXT)
    for k in range(COPIES):
        (corpus / f"copy-{k}.txt").write_bytes(WIKITEXT.read_bytes())
    periodic = PERIOD * (400_000 // len(PERIOD))
    with open(corpus / "periodic.jsonl", "w", encoding="utf-8") as f:
        f.write(json.dumps({"id": "p", "text": periodic}) + "\n")
    summary = build([corpus], tmp_path / "idx", text_per_line=True, normalize="none", shards=1)
    docs = [ln.encode() for ln in lines] * COPIES + [periodic.encode()]
    assert summary["documents"] == len(docs) and summary["shards"] == 1
    idx = Index.open(tmp_path / "idx")
    brute = BruteCorpus(docs)
    rng = random.Random(3)
    queries = [" the ", " = Valkyria Chronicles", PERIOD * 3, PERIOD * 400, "sat on the mat. the cat"]
    queries += [lines[0], lines[len(lines) // 2]]  # whole paragraphs: exactly COPIES occurrences each
    for _ in range(120):
        d = rng.choice(lines)
        n = rng.choice([3, 8, 20, 60, 200])
        i = rng.randrange(max(1, len(d) - n + 1))
        queries.append(d[i : i + n])
    for q in queries:
        qb = q.encode()
        got = count(idx, q, literal=True)
        assert (got.count, got.approx) == (brute.count(qb), False), q[:60]
        assert count(idx, q, unit="docs", literal=True).count == brute.doc_count(qb), q[:60]
        if q in lines:
            assert got.count == COPIES * sum(ln.count(q) for ln in lines)
    assert count(idx, PERIOD * 400, literal=True).count == len(periodic) // len(PERIOD) - 399
