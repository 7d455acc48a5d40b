"""Spark-built indexes of real corpora (WikiText-2, Flickr8k, GSM8K train) against brute-force counts."""

from __future__ import annotations

import random
import re

import numpy as np
import pytest

from freqindex.errors import UsageError
from freqindex.query.count import CountError, count, count_many, encode_term
from freqindex.suffix import search
from freqindex.suffix.index import Index
from tests.conftest import FLICKR, GSM8K_TRAIN, WIKITEXT, build
from tests.reference import BruteCorpus, and_counts, read_jsonl_docs, read_lines_docs, ref_normalize

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
        if not qn.strip():  # only spaces (and punctuation): refused, it would count every space
            with pytest.raises(UsageError, match="nothing to count"):
                count(idx, q, literal=True)
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
    # AND (exactly, against a brute force, in test_and_counts_equal_brute_force): at most the rarer clause
    res = count(idx, " dog  AND  ball ", unit="docs")
    assert 0 < res.count <= min(brute.doc_count(b" dog "), brute.doc_count(b" ball "))
    assert 0 < count(idx, " dog  AND  ball ").count <= brute.count(b" ball ")
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


def _edge_queries(brute: BruteCorpus, rng: random.Random) -> list[str]:
    """Random substrings, document starts and ends, whole documents, strings longer than any document,
    boundary-crossing and absent strings."""
    qs = [q for _, q in _queries(brute, rng)]
    longest = max(brute.docs, key=len).decode()
    qs += [
        longest,
        longest + "x",
        longest + longest,
        "q" * 5000,
        brute.docs[0].decode(),
        brute.docs[-1].decode(),
    ]
    qs += [d.decode() for d in rng.sample(brute.docs, 20)]
    return qs


def _encodable(idx, qs: list[str]) -> list[bytes]:
    """The token bytes of every query the index accepts (the refused ones left out)."""
    terms = []
    for q in qs:
        try:
            terms.append(encode_term(idx, q))
        except UsageError:
            continue
    return terms


def _assert_batch_equals_singles(idx, qs: list[str], literal: bool) -> None:
    """count_many equals count query by query in both units; a refused query gets count's error."""
    for unit in ("occurrences", "docs"):
        many = count_many(idx, qs, unit=unit, literal=literal, on_error="return")
        for q, m in zip(qs, many):
            try:
                want = count(idx, q, unit=unit, literal=literal)
            except UsageError as exc:
                assert isinstance(m, CountError) and m.error == str(exc)
                continue
            assert m == want, q


@pytest.mark.parametrize("norm", ["simple", "none"])
def test_compiled_search_equals_the_engine(real, norm):
    """The compiled suffix-array search returns the engine's ``find`` ranges in every shard, one query at a
    time and batched; count_many equals count in both units."""
    idx, brute, _ = real[norm]
    qs = _edge_queries(brute, random.Random(77))
    terms = _encodable(idx, qs)
    assert len(terms) >= 500
    batched = search.find_ranges(idx, terms)
    for k, (t, got) in enumerate(zip(terms, batched)):
        want = idx.engine.find(input_ids=list(t))["segment_by_shard"]
        assert [tuple(r) for r in got.tolist()] == [tuple(r) for r in want], t[:80]
        if k % 5 == 0:
            assert search.find_ranges(idx, [t]).tolist() == [got.tolist()]
        # the single count's own scalar kernel
        assert search.count_occurrences(idx, [t]).tolist() == [sum(hi - lo for lo, hi in want)], t[:80]
    longest = max(brute.docs, key=len).decode()
    assert count(idx, longest, literal=True).count >= 1
    assert count(idx, longest + "x", literal=True).count == 0
    assert count(idx, longest, unit="docs", literal=True).count >= 1
    sample = qs[:150] + qs[-30:]
    _assert_batch_equals_singles(idx, sample, literal=True)


def test_sampled_search_at_tiny_steps_equals_the_engine(real, monkeypatch):
    """The in-memory sample narrows every search: with steps of 3 and 64 suffixes (many samples share
    their first 8 bytes), the ranges are still the engine's."""
    idx, brute, _ = real["none"]
    terms = [encode_term(idx, q) for q in _edge_queries(brute, random.Random(5))[:250] if q.strip()]
    want = [[tuple(r) for r in idx.engine.find(input_ids=list(t))["segment_by_shard"]] for t in terms]
    try:
        for step in (3, 64):
            monkeypatch.setattr(search, "SAMPLE_STEP", step)
            search._CACHE.pop(idx, None)
            got = search.find_ranges(idx, terms).tolist()
            assert [[tuple(r) for r in g] for g in got] == want, step
            singles = [int(search.count_occurrences(idx, [t])[0]) for t in terms]
            assert singles == [sum(hi - lo for lo, hi in w) for w in want], step
    finally:
        search._CACHE.pop(idx, None)


def test_shards_in_groups_and_threads_equal_the_engine(real, monkeypatch):
    """An index with more shards than one compiled call takes is searched in groups of ``SHARD_GROUP``
    shards (the last padded with empty ones), and a single count over many groups in threads: with groups
    of 2 over the 3 shards (one padded) and every group in a thread of its own, the ranges, batched and
    one by one, and the single counts are still the engine's."""
    idx, brute, _ = real["simple"]
    terms = _encodable(idx, _edge_queries(brute, random.Random(23))[:300])
    want = [[tuple(r) for r in idx.engine.find(input_ids=list(t))["segment_by_shard"]] for t in terms]
    monkeypatch.setattr(search, "SHARD_GROUP", 2)
    monkeypatch.setattr(search, "PARALLEL_MIN_SHARDS", 1)
    monkeypatch.setattr(search, "_threads", lambda: 2)
    try:
        search._CACHE.pop(idx, None)
        c = search._compiled(idx)
        assert [len(g[0]) for g in c.groups] == [2, 2] and c.groups[1][4][1].tolist() == [
            1,
            0,
            search.SAMPLE_STEP,
        ]
        assert search._runs_of_groups(len(c.groups)) == [(0, 1), (1, 2)]
        assert [[tuple(r) for r in g] for g in search.find_ranges(idx, terms).tolist()] == want
        assert [[tuple(r) for r in search.find_ranges(idx, [t])[0].tolist()] for t in terms[:40]] == want[:40]
        singles = [int(search.count_occurrences(idx, [t])[0]) for t in terms]
        assert singles == [sum(hi - lo for lo, hi in w) for w in want]
    finally:
        search._CACHE.pop(idx, None)


def test_an_index_mixing_stored_samples_and_samples_made_on_use_counts(real, monkeypatch):
    """A schema 2 index appended to by this freqindex has shards without a stored sample (made on use)
    beside shards with one (mapped, read-only): the search takes both in one call and still returns the
    engine's counts."""
    idx, brute, _ = real["simple"]
    terms = _encodable(idx, _edge_queries(brute, random.Random(29))[:200])
    want = [[tuple(r) for r in idx.engine.find(input_ids=list(t))["segment_by_shard"]] for t in terms]
    stored = search._stored_sample
    first = idx.shards[0]
    monkeypatch.setattr(
        search, "_stored_sample", lambda sh, n, step: None if sh is first else stored(sh, n, step)
    )
    try:
        search._CACHE.pop(idx, None)
        c = search._compiled(idx)
        assert not np.shares_memory(c.words[0], first.sample) and np.shares_memory(
            c.words[1], idx.shards[1].sample
        )
        assert [[tuple(r) for r in g] for g in search.find_ranges(idx, terms).tolist()] == want
        singles = [int(search.count_occurrences(idx, [t])[0]) for t in terms]
        assert singles == [sum(hi - lo for lo, hi in w) for w in want]
    finally:
        search._CACHE.pop(idx, None)


def test_stored_samples_and_the_lazy_document_lookup(real):
    """Each shard's sample is read from the file the build wrote (equal to one made from its suffix array
    now, and not rebuilt); the document lookup is made at the first count in documents, not before, and
    equals a bisection of the document starts for every page."""
    idx = Index.open(real["simple"][0].path)
    count(idx, " the ")
    c = search._compiled(idx)
    assert c.doc_lookup == {}
    for s, sh in enumerate(idx.shards):
        stored = np.fromfile(idx.path / f"sa/sample.{sh.shard}", dtype="<u8")
        assert np.array_equal(stored, search.make_sample(sh.table, sh.ptr_size, sh.ds, int(c.meta[s, 2])))
        assert np.shares_memory(c.words[s], sh.sample) and np.shares_memory(c.sptrs[s], sh.sample)
    assert count(idx, " the ", unit="docs").count == real["simple"][1].doc_count(b" the ")
    assert sorted(c.doc_lookup) == list(range(len(idx.shards)))
    for s, sh in enumerate(idx.shards):
        starts, pages = c.docs_of(s)
        first = np.arange(0, sh.ds.shape[0] + 1, 1 << search._PAGE_SHIFT)
        assert np.array_equal(pages, np.maximum(np.searchsorted(starts, first, side="right") - 1, 0))


def test_batch_split_across_threads_equals_one_thread(real, monkeypatch):
    """A large batch searches in several threads, each over a contiguous run of the sorted queries: the
    ranges equal the one-thread search, in the caller's order; count_many over a mix of single terms, OR,
    AND and bad queries equals count query by query."""
    idx, brute, _ = real["simple"]
    qs = _edge_queries(brute, random.Random(11))
    terms = _encodable(idx, qs)
    terms = terms + terms[:37]  # duplicates, and a count that is no multiple of a run
    one = search.find_ranges(idx, terms)
    monkeypatch.setattr(search, "PARALLEL_MIN_QUERIES", 64)
    monkeypatch.setattr(search, "_threads", lambda: 3)
    assert len(search._split(len(terms))) == 3
    assert search.find_ranges(idx, terms).tolist() == one.tolist()
    mixed = qs[:120] + [" dog  AND  frisbee ", " dog  OR  dogs ", "!!!", " the  AND  of "] * 20
    _assert_batch_equals_singles(idx, mixed, literal=False)


AND_QUERIES = [
    " dog  AND  frisbee ",
    " dog  OR  dogs  AND  ball ",  # alternatives inside a clause
    " frisbee  AND  the ",  # a frequent clause: read through the windows around the anchors
    " the  AND  of  AND  and ",  # three frequent clauses: joined through their sorted positions
    " dog  AND  dog ",  # a clause with itself: every occurrence
    " a  AND  a dog ",  # overlapping clauses
    " zzqqx  AND  dog ",  # an absent clause
]


@pytest.mark.parametrize("query", AND_QUERIES)
def test_and_counts_equal_brute_force(real, query):
    """AND in both units, windows of 1, 10, 100 and 10,000 tokens, against a brute force of the README's
    definition; exact (approx is false)."""
    idx, brute, _ = real["simple"]
    clauses = [
        [ref_normalize(t, keep_edges=True).encode() for t in c.split(" OR ")] for c in query.split(" AND ")
    ]
    windows = [1, 10, 100, 10_000]
    for w, (occ, nd) in zip(windows, and_counts(brute.docs, clauses, windows)):
        got = count(idx, query, max_diff_tokens=w)
        assert (got.count, got.approx) == (occ, False), (query, w)
        assert count(idx, query, unit="docs", max_diff_tokens=w).count == nd, (query, w)
    if "zzqqx" not in query:
        assert occ > 0


def test_and_counts_without_normalization(real):
    idx, brute, _ = real["none"]
    for query in ("dog AND frisbee", "The AND of OR in"):
        clauses = [[t.encode() for t in c.split(" OR ")] for c in query.split(" AND ")]
        for w, (occ, nd) in zip((30, 100), and_counts(brute.docs, clauses, [30, 100])):
            assert count(idx, query, max_diff_tokens=w).count == occ > 0, (query, w)
            assert count(idx, query, unit="docs", max_diff_tokens=w).count == nd, (query, w)


def test_queries_of_only_spaces_or_punctuation_are_refused(real):
    idx, _, _ = real["simple"]
    for q in ("!!!", " ", "\u2013", "?.,;", "  \t ", " dog  AND  !!! "):
        with pytest.raises(UsageError, match="nothing to count"):
            count(idx, q)
    with pytest.raises(UsageError, match="not valid Unicode"):
        count(idx, "dog\ud800")
    res = count_many(idx, [" dog ", "!!!", " AND ", " cat "], on_error="return")
    assert isinstance(res[1], CountError) and isinstance(res[2], CountError)
    assert res[0] == count(idx, " dog ") and res[3] == count(idx, " cat ")
    with pytest.raises(UsageError, match=r"queries\[1\]"):
        count_many(idx, [" dog ", "!!!"])
    # a long malformed query is not echoed in full
    with pytest.raises(UsageError) as exc:
        count(idx, "x AND " * 1600)
    assert len(str(exc.value)) < 300 and "9,600 characters" in str(exc.value)
