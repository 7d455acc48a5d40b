"""Spark-built indexes of real corpora (WikiText-2, Flickr8k, GSM8K train) against brute-force counts."""

from __future__ import annotations

import random
import re

import pytest

from freqindex.query.count import count
from freqindex.suffix.index import Index
from tests.conftest import FLICKR, GSM8K_TRAIN, WIKITEXT, build
from tests.reference import BruteCorpus, read_jsonl_docs, read_lines_docs, ref_normalize

pytestmark = pytest.mark.spark


def _raw_docs() -> list[str]:
    return read_lines_docs(FLICKR) + read_lines_docs(WIKITEXT) + read_jsonl_docs(GSM8K_TRAIN, "question")


@pytest.fixture(scope="module")
def real(tmp_path_factory):
    root = tmp_path_factory.mktemp("real")
    raw = _raw_docs()
    out = {}
    for norm, shards in (("simple", 3), ("none", 1)):
        summary = build(
            [FLICKR, WIKITEXT, GSM8K_TRAIN],
            root / norm,
            text_per_line=True,
            text_field="question",
            normalize=norm,
            shards=shards,
        )
        docs = [f" {ref_normalize(t)} ".encode() if norm == "simple" else t.encode() for t in raw]
        docs = [d for d in docs if d.strip()]
        out[norm] = (Index.open(root / norm), BruteCorpus(docs), summary)
    return out


def _queries(brute: BruteCorpus, rng: random.Random) -> list[tuple[str, str]]:
    docs = brute.docs
    qs: list[tuple[str, str]] = []
    for _ in range(420):  # random substrings
        d = rng.choice(docs).decode()
        n = rng.choice([1, 2, 3, 4, 5, 6, 8, 10, 12, 16, 20, 30, 40])
        i = rng.randrange(max(1, len(d) - n + 1))
        qs.append(("random", d[i : i + n]))
    for _ in range(40):  # at the start of a document
        d = rng.choice(docs).decode()
        qs.append(("start", d[: rng.randint(2, 25)]))
    for _ in range(40):  # at the end of a document
        d = rng.choice(docs).decode()
        qs.append(("end", d[-rng.randint(2, 25) :]))
    for _ in range(30):  # across the boundary between two consecutive documents
        k = rng.randrange(len(docs) - 1)
        a, b = docs[k].decode(), docs[k + 1].decode()
        qs.append(("cross", a[-rng.randint(3, 12) :] + b[: rng.randint(3, 12)]))
    for _ in range(30):  # absent
        qs.append(("absent", "".join(rng.choice("qxzjv") for _ in range(rng.randint(6, 12)))))
    return qs


@pytest.mark.parametrize("norm", ["simple", "none"])
def test_counts_equal_brute_force(real, norm):
    idx, brute, summary = real[norm]
    assert summary["documents"] == len(brute.docs)
    rng = random.Random(1234 + len(norm))
    qs = _queries(brute, rng)
    assert len(qs) >= 500
    seen_kinds = {k: 0 for k in ("random", "start", "end", "cross", "absent")}
    for kind, q in qs:
        qn = ref_normalize(q, keep_edges=True) if norm == "simple" else q
        if not qn:
            continue
        qb = qn.encode()
        expect_occ = brute.count(qb)
        got = count(idx, q, literal=True)
        assert (got.count, got.approx) == (expect_occ, False), (kind, q)
        assert count(idx, q, unit="docs", literal=True).count == brute.doc_count(qb), (kind, q)
        if kind == "absent":
            assert expect_occ == 0
        if kind in ("random", "start", "end"):
            assert expect_occ > 0
        seen_kinds[kind] += 1
    assert all(v >= 25 for v in seen_kinds.values()), seen_kinds


def test_crossing_queries_count_zero_when_absent_inside_documents(real):
    """With `none` the boundary string is kept literally: unless it occurs inside a document, it counts 0."""
    idx, brute, _ = real["none"]
    k = 0
    zero = 0
    while zero < 20 and k < len(brute.docs) - 1:
        a, b = brute.docs[k].decode(), brute.docs[k + 1].decode()
        q = a[-6:] + b[:6]
        if brute.count(q.encode()) == 0:
            assert count(idx, q, literal=True).count == 0
            assert count(idx, q, unit="docs", literal=True).count == 0
            zero += 1
        k += 1
    assert zero == 20


def test_whole_word_semantics(real):
    idx, brute, _ = real["simple"]
    # " dog " counts the whole word, also at document edges; "dog" counts inside "hotdogs" too
    whole = count(idx, " dog ").count
    part = count(idx, "dog").count
    assert whole == brute.count(b" dog ") and part == brute.count(b"dog") and part > whole > 0
    assert count(idx, "DOG!!").count == brute.count(
        b"dog "
    )  # case and punctuation normalized like the corpus


def test_cnf_queries(real):
    idx, brute, _ = real["simple"]
    # OR: the sum of occurrences; docs: the union
    q = " dog  OR  cat "  # the separator takes one space on each side: two keep the words whole
    assert count(idx, " dog OR cat ").count == brute.count(b" dog") + brute.count(b"cat ")
    assert count(idx, q).count == brute.count(b" dog ") + brute.count(b" cat ")
    both = brute.doc_count(b" dog ") + brute.doc_count(b" cat ")
    union = count(idx, q, unit="docs").count
    assert union <= both and union >= max(brute.doc_count(b" dog "), brute.doc_count(b" cat "))
    import numpy as np

    pos = np.array(brute.positions(b" dog ") + brute.positions(b" cat "))
    assert union == np.unique(np.searchsorted(brute.starts, pos, side="right") - 1).size
    # AND: infini-gram's co-occurrence semantics; at most the rarer clause's count, and exact docs
    res = count(idx, " dog  AND  ball ", unit="docs")
    assert 0 < res.count <= min(brute.doc_count(b" dog "), brute.doc_count(b" ball "))
    assert count(idx, " dog  AND  ball ").count > 0
    # --literal turns parsing off
    assert count(idx, "cats AND dogs", literal=True).count == brute.count(b"cats and dogs")


def test_docs_lookup(real):
    from freqindex.query.docs import find_docs

    idx, brute, _ = real["simple"]
    n, hits = find_docs(idx, " frisbee ", limit=5)
    assert n == brute.doc_count(b" frisbee ")
    assert [h.doc_id for h in hits] == sorted(h.doc_id for h in hits)
    for h in hits:
        assert re.search(r"«\s*frisbee\s*»", h.snippet), h.snippet
        assert h.source.endswith("Flickr8k.token.txt") and h.line >= 1 and h.ext_id is None
        assert idx.doc_text(h.doc_id).count(" frisbee ") == h.occurrences
