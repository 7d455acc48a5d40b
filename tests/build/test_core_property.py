"""The pure build core (no Spark) against a brute-force count on random unicode corpora (hypothesis)."""

from __future__ import annotations

import random
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from freqindex.build import build_index, run_in_process
from freqindex.config import BuildConfig
from freqindex.errors import UsageError
from freqindex.query.count import count
from freqindex.suffix.index import Index
from tests.reference import BruteCorpus, ref_normalize

# A small alphabet makes repeated substrings (and so interesting counts) likely; the rest covers unicode.
small = st.sampled_from(list("ab ,.Aé\u00df\u0130\ufb01\u3000-'"))
docs_strategy = st.lists(
    st.text(
        alphabet=st.one_of(small, st.characters(blacklist_categories=("Cs", "Cc"))), min_size=1, max_size=40
    ),
    min_size=1,
    max_size=25,
)


def _build(tmp: Path, docs: list[str], normalize: str, shards: int | None) -> Index:
    src = tmp / "corpus.txt"
    # one document per line: newlines inside a document would split it, so keep them out
    docs = [
        d.replace("\n", " ")
        .replace("\r", " ")
        .replace("\x85", " ")
        .replace("\u2028", " ")
        .replace("\u2029", " ")
        for d in docs
    ]
    src.write_text("\n".join(docs) + "\n", encoding="utf-8")
    cfg = BuildConfig(
        inputs=(str(src),), output=str(tmp / "idx"), text_per_line=True, normalize=normalize, shards=shards
    )
    build_index(cfg, run_in_process)
    return Index.open(tmp / "idx"), docs


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    docs=docs_strategy,
    normalize=st.sampled_from(["simple", "none"]),
    shards=st.sampled_from([None, 2, 3]),
    seed=st.integers(0, 2**32 - 1),
)
def test_counts_equal_brute_force_on_random_unicode(docs, normalize, shards, seed):
    tmp = Path(tempfile.mkdtemp(prefix="fqx-prop-"))
    try:
        if not any(d.strip() and (normalize == "none" or ref_normalize(d)) for d in docs):
            return  # nothing indexable: the build refuses, tested elsewhere
        idx, docs = _build(tmp, docs, normalize, shards)
        kept = []
        for d in docs:
            if not d.strip():
                continue
            if normalize == "simple":
                body = ref_normalize(d)
                if body:
                    kept.append(f" {body} ".encode())
            else:
                kept.append(d.encode())
        brute = BruteCorpus(kept)
        assert idx.manifest["counts"]["documents"] == len(kept)
        rng = random.Random(seed)
        queries = []
        for _ in range(15):
            d = rng.choice(kept).decode()
            i = rng.randrange(len(d))
            j = rng.randrange(i + 1, len(d) + 1)
            queries.append(d[i:j])
        queries.append(kept[0].decode()[-2:] + kept[-1].decode()[:2])  # across a boundary
        queries.append("zq\u2603zq")  # absent
        for q in queries:
            qn = ref_normalize(q, keep_edges=True) if normalize == "simple" else q
            if not qn:
                continue
            if qn.isspace():  # only spaces once normalized: refused, never a count of every space
                with pytest.raises(UsageError, match="nothing to count"):
                    count(idx, q, literal=True)
                continue
            qb = qn.encode()
            got = count(idx, q, literal=True)
            assert got.count == brute.count(qb), (q, qn)
            assert count(idx, q, unit="docs", literal=True).count == brute.doc_count(qb), (q, qn)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def test_shard_files_open_with_infini_gram_directly(tmp_path):
    """The shards are infini-gram's own format: its engine opens them with no help from freqindex."""
    from infini_gram.engine import InfiniGramEngine

    idx, _ = _build(tmp_path, ["the cat sat", "a cat, a hat", "no match here"], "simple", 2)
    eng = InfiniGramEngine(
        index_dir=str(tmp_path / "idx" / "sa"), eos_token_id=254, vocab_size=255, token_dtype="u8"
    )
    assert eng.count(input_ids=list(b" cat "))["count"] == 2
    doc = eng.get_doc_by_ix(doc_ix=1, max_disp_len=100)
    assert bytes(doc["token_ids"]).strip(b"\xff") == b" a cat a hat "
    assert '"doc_id":1' in doc["metadata"]
    # and the docs table lines up with the engine's document order
    import pyarrow.parquet as pq

    t = pq.read_table(tmp_path / "idx" / "docs").sort_by("doc_id")
    assert t.column("doc_id").to_pylist() == [0, 1, 2]
    assert t.column("line").to_pylist() == [1, 2, 3]
    assert np.array_equal(
        t.column("n_tokens").to_numpy(), [len(" the cat sat "), len(" a cat a hat "), len(" no match here ")]
    )
