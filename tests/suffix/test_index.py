"""The one way into an index: damaged files are refused at open (issue #12 item 1), the shards are in the
engine's order, and the suffix-array range -> documents helpers agree with a brute force over the input."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from freqindex.errors import IndexDamagedError
from freqindex.query.count import count
from freqindex.query.docs import find_docs
from freqindex.suffix.index import Index
from freqindex.suffix.matching import find_batch
from tests.conftest import WIKITEXT, build_in_process, cli
from tests.reference import BruteCorpus, read_lines_docs, ref_normalize

SHARDS = 12  # more than 10: the engine orders shard files as strings (0, 1, 10, 11, 2, ...)
QUERIES = [" the ", " of the ", "ing ", " game ", " valkyria ", "tion", " he was "]


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """A real 12-shard index (in-process build: infini-gram's indexer, no Spark) of the first ~400 kB of
    WikiText-2 valid, and the brute force over the same lines."""
    root = tmp_path_factory.mktemp("index")
    raw = WIKITEXT.read_bytes()[:400_000]
    src = root / "wiki.txt"
    src.write_bytes(raw[: raw.rindex(b"\n") + 1])
    build_in_process([src], root / "idx", text_per_line=True, shards=SHARDS)
    docs = [f" {ref_normalize(t)} ".encode() for t in read_lines_docs(src) if ref_normalize(t)]
    return root / "idx", BruteCorpus(docs)


def _ref_doc_ids(brute: BruteCorpus, q: bytes) -> np.ndarray:
    pos = np.array(brute.positions(q), dtype=np.int64)
    return np.unique(np.searchsorted(brute.starts, pos, side="right") - 1)


def test_twelve_shards_count_docs_and_list_in_doc_id_order(small):
    idx_dir, brute = small
    idx = Index.open(idx_dir)
    assert len(idx.shards) == SHARDS and idx.total_docs == len(brute.docs)
    for q in QUERIES:
        want = _ref_doc_ids(brute, q.encode())
        assert count(idx, q).count == brute.count(q.encode()), q
        assert count(idx, q, unit="docs").count == want.size, q
        n, hits = find_docs(idx, q, limit=10_000)
        assert n == want.size and [h.doc_id for h in hits] == want.tolist(), q
        _, first = find_docs(idx, q, limit=3)
        assert [h.doc_id for h in first] == want[:3].tolist(), q


def test_range_helpers_against_the_brute_force(small):
    idx_dir, brute = small
    idx = Index.open(idx_dir)
    ranges = find_batch(idx, [q.encode() for q in QUERIES])
    for q, r in zip(QUERIES, ranges):
        want = _ref_doc_ids(brute, q.encode())
        assert idx.doc_ids(r).tolist() == want.tolist(), q
        per_shard = idx.docs_per_shard(r)
        assert sorted((sh.doc_start + d).tolist() for sh, d in zip(idx.shards, per_shard) for d in d) == (
            want.tolist()
        )
        hits = idx.hits_per_shard(r)
        assert sum(p.size for p, _ in hits) == brute.count(q.encode()), q
        for sh, (ptrs, docs) in zip(idx.shards, hits):
            assert np.all(np.diff(ptrs.astype(np.int64)) > 0) and np.all(np.diff(docs) >= 0)
            # each pointer lies inside its document and starts the query there
            for p, d in zip(ptrs[:20].tolist(), docs[:20].tolist()):
                a, b = sh.doc_bounds(d, 1)
                assert a <= p < b and bytes(sh.ds[p : p + len(q.encode())]) == q.encode()


def test_stored_text_read_one_way(small):
    idx_dir, brute = small
    idx = Index.open(idx_dir)
    for sh in idx.shards:
        want = [d.decode() for d in brute.docs[sh.doc_start : sh.doc_start + sh.n_docs]]
        assert idx.doc_texts(sh, 0, sh.n_docs) == want
        text, starts = idx.text_block(sh, 1, sh.n_docs)
        assert np.array_equal(starts, np.cumsum([0] + [len(w) + 1 for w in want[1:-1]]))
        assert text == "".join("\n" + w for w in want[1:])
    assert idx.doc_text(len(brute.docs) - 1) == brute.docs[-1].decode()
    blocks = idx.plan_blocks(4096)
    assert sum(hi - lo for _, lo, hi in blocks) == idx.total_docs
    assert [(s, lo) for s, lo, _ in blocks] == sorted((s, lo) for s, lo, _ in blocks)


def _damage(kind: str, sa):
    if kind == "truncate table":
        with open(sa / "table.0", "r+b") as f:
            f.truncate((sa / "table.0").stat().st_size // 3)
    elif kind == "truncate offset":
        with open(sa / "offset.0", "r+b") as f:
            f.truncate(64)
    elif kind == "delete table":
        (sa / "table.0").unlink()
    elif kind == "truncate tokenized":
        with open(sa / "tokenized.0", "r+b") as f:
            f.truncate(1000)


# each damage with the command issue #12 saw it break: a count of 0 with exit 0, a wrong --unit docs count, a
# segfault (exit 139) of docs and of count
DAMAGES = [
    ("truncate table", ("count",)),
    ("truncate offset", ("count", "--unit", "docs")),
    ("delete table", ("docs",)),
    ("truncate tokenized", ("count",)),
]


@pytest.mark.parametrize("kind,command", DAMAGES, ids=[k for k, _ in DAMAGES])
def test_damaged_shard_file_is_refused(small, tmp_path, kind, command):
    """Now: exit 2 and one line naming the file, before any answer."""
    idx_dir, _ = small
    copy = tmp_path / "idx"
    shutil.copytree(idx_dir, copy)
    _damage(kind, copy / "sa")
    name = "sa/table.0" if "table" in kind else f"sa/{kind.split()[1]}.0"
    p = cli(command[0], copy, " the ", *command[1:], check=2)
    assert name in p.stderr and "Traceback" not in p.stderr, p.stderr
    assert len(p.stderr.strip().splitlines()) == 1 and not p.stdout, p.stderr


def test_other_damage_is_refused_in_process(small, tmp_path):
    idx_dir, _ = small
    copy = tmp_path / "idx"
    shutil.copytree(idx_dir, copy)
    (copy / "sa" / "table.99").write_bytes(b"\0" * 8)  # the engine would read a file nobody listed
    with pytest.raises(IndexDamagedError, match=r"sa/table\.99 is not in the manifest"):
        Index.open(copy)
    (copy / "sa" / "table.99").unlink()
    (copy / "docs" / "part-00003.parquet").unlink()
    with pytest.raises(IndexDamagedError, match=r"docs/part-00003\.parquet is missing"):
        Index.open(copy)
    Index.open(copy, check_files=False)  # what the benchmark of the checks compares against
    p = cli("sql", copy, "SELECT count(*) FROM docs", check=2)  # was a 3-line internal error
    assert "docs/part-00003.parquet is missing" in p.stderr and len(p.stderr.strip().splitlines()) == 1
