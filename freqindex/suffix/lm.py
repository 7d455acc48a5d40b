"""Batched n-gram and ∞-gram statistics straight from the suffix arrays, with the infini-gram engine's semantics.

Everything here is computed for many queries at once: every bisection step is one vectorized numpy step over
all pending rows. Patterns are never copied: a pattern is an (offset, length) window into one concatenated
byte buffer of queries, so the n-grams of every position of every item are cheap to address.

**Counts** (:func:`count_ranges`) are the per-shard suffix-array ranges ``[lo, hi)`` of a pattern, equal to the
engine's ``find`` (``segment_by_shard``): every occurrence counts, also one at the very end of a shard (the
last document has no separator after it) and one followed by a document separator. The empty pattern covers
the whole table: every token position, separators included, as in the engine.

**Search.** Every ``stride``-th suffix of a shard (16, more for shards over 32 M tokens) has its first 16
bytes kept as two sorted 64-bit words (at most 32 MiB per shard, built on first use). ``np.searchsorted`` over
the first word (queries sorted first, so the walk is cache friendly) and a bisection over the second where
the first ties bracket each query between two samples; an exact bisection over the memory-mapped table
finishes the job in ``log2(stride)`` steps, longer only where the first 16 bytes tie. Bisections track the
common prefix at both ends of their interval (Manber and Myers), so a comparison starts past it.
Comparisons are end-aware: a suffix that ends before the query does (at the end of a shard) compares less,
exactly as the engine's ``lexicographical_compare`` over a truncated suffix.

**Matching statistics** (:func:`matching_lengths`): for every start ``i`` of an item, the longest prefix of
``x[i:]`` that occurs, as the larger common prefix with the two neighbours of its insertion point.

**∞-gram** (:func:`infgram_positions`): the context of position ``t`` is the longest suffix of ``x[:t]`` that
occurs in the corpus (count > 0), which is the engine's binary-lifting result because occurrence is monotone.
With ``rs[i] = i + ms[i]`` non-decreasing in ``i``, that suffix starts at ``min{i : rs[i] >= t}``: one pass of
matching statistics gives the effective context of every position of every item (probed every 8 starts,
gaps split only where their ends differ), then one batched count per distinct (start, end) pattern gives
``prompt_cnt`` and ``cont_cnt`` (windows of one start are nested, :func:`nested_ranges`).

**Leave-one-out** (:class:`Exclusion`): a corpus document scored as if the index did not hold it, for the
frontier's corpus profile; tested equal to an index built without the document.

**Next-token distributions** (:func:`next_token_counts`): the engine's divide and conquer over a range
(occurrences of a context are sorted by their next token, so a segment whose first and last next tokens agree
is all that token), with the engine's ``unit`` subsampling for ``max_support``. A document end, and the end of a
shard, count as the engine's ``eos_token_id``. One deliberate difference: a segment that starts at the end of a
shard and ends at a separator is split further instead of being counted as all ``eos`` (the engine compares
them after mapping both to ``eos``, which miscounts such a segment); the result is the true distribution.
"""

from __future__ import annotations

import os
import weakref
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from freqindex.suffix import matching
from freqindex.suffix.index import Index
from freqindex.suffix.matching import _plain, _pointers_at, _words_at

MAX_SAMPLES = 1 << 21  # sampled suffixes per shard: at most 32 MiB of keys per shard
_ONES = np.uint64(0xFFFFFFFFFFFFFFFF)


@dataclass
class ShardView:
    """A shard's arrays as plain numpy views, with its sampled-suffix keys."""

    shard: object  # freqindex.suffix.index.Shard with plain (non-memmap) arrays
    n_sfx: int
    ds_size: int
    stride: int
    key1: np.ndarray  # uint64: bytes 0-8 (big-endian) of every stride-th suffix, zero padded at the shard end
    key2: np.ndarray  # uint64: bytes 8-16
    table_words: np.ndarray | None = None  # the table as little-endian integers when its width allows

    def pointers(self, rank: np.ndarray) -> np.ndarray:
        """Suffix-array entries at ``rank`` as int64 byte offsets (one gather for 4- and 8-byte pointers)."""
        if self.table_words is not None:
            return self.table_words[rank].astype(np.int64)
        return _pointers_at(self.shard, rank)


_VIEWS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


THREADS: int | None = None  # threads per search (None: one per core); worker processes set 1


def _per_shard(fn, n: int) -> list:
    """``fn(s)`` for every shard, in threads when there are several cores (the work is numpy gathers and
    ufuncs, which release the GIL); results in shard order."""
    workers = min(n, THREADS or os.cpu_count() or 1)
    if workers <= 1:
        return [fn(s) for s in range(n)]
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fqx-lm") as pool:
        return list(pool.map(fn, range(n)))


def shard_views(index: Index) -> list[ShardView]:
    """The index's shards with their sampled keys, built once per opened index (about a second for 100 M
    tokens) and kept while the index object lives."""
    got = _VIEWS.get(index)
    if got is not None:
        return got
    out = []
    for sh in index.shards:
        n_sfx = sh.table.shape[0] // sh.ptr_size if sh.n_docs else 0
        psh = _plain(sh)
        stride = 16
        while n_sfx // stride > MAX_SAMPLES:
            stride *= 2
        ranks = np.arange(0, n_sfx, stride, dtype=np.int64)
        ptr = _pointers_at(psh, ranks) if ranks.size else np.zeros(0, dtype=np.int64)
        k1 = _words_at(psh.ds, ptr) if ranks.size else np.zeros(0, dtype=np.uint64)
        k2 = _words_at(psh.ds, ptr + 8) if ranks.size else np.zeros(0, dtype=np.uint64)
        words = None
        if psh.ptr_size in (4, 8) and psh.table.shape[0] % psh.ptr_size == 0:
            words = psh.table.view("<u4" if psh.ptr_size == 4 else "<u8")
        out.append(ShardView(psh, n_sfx, int(psh.ds.shape[0]), stride, k1, k2, words))
    _VIEWS[index] = out
    return out


def _mask_top(nbytes: np.ndarray) -> np.ndarray:
    """uint64 masks keeping the top ``nbytes`` (0..8) bytes of a big-endian word."""
    nb = np.minimum(np.maximum(nbytes, 0), 8).astype(np.uint64)
    out = np.where(
        nb == 0, np.uint64(0), _ONES << np.minimum((np.uint64(8) - nb) * np.uint64(8), np.uint64(63))
    )
    return np.where(nb == 8, _ONES, out)


def _equal_bytes(x: np.ndarray) -> np.ndarray:
    """Leading equal bytes of two big-endian words from their XOR (8 where they are equal)."""
    out = np.full(x.shape, 8, dtype=np.int64)
    nz = np.nonzero(x)[0]
    if nz.size:
        xv = x[nz]
        hb = np.log2(xv.astype(np.float64)).astype(np.int64)
        # float rounding can push a value just below 2**k up to k: fix with an exact check
        hb -= (np.uint64(1) << hb.astype(np.uint64)) > xv
        out[nz] = (63 - hb) >> 3
    return out


def _lcp_compare(v: ShardView, ptr, qbuf, qoff, qlen, start, self_query: bool = False):
    """(common prefix in bytes, sign) of each suffix against its query, where the first ``start`` bytes (per
    row) are known to be equal. The common prefix is capped at the query's length and at the shard end; the
    sign is 0 when the suffix starts with the query (a prefix comparison), -1 when the suffix is smaller or
    ends first (the engine's comparison of a truncated suffix), +1 when it is greater. ``self_query``: the
    queries are suffixes of this shard (``qbuf`` is its ``ds``), and the suffix at a query's own position
    is equal to it without reading further."""
    avail = v.ds_size - ptr
    cap = np.minimum(qlen, avail)
    lcp = np.minimum(start, cap)
    sign = np.zeros(ptr.size, dtype=np.int8)
    rows = None  # None: every row (the first round runs on whole arrays, without index lists)
    if self_query:
        lcp = np.where(ptr == qoff, cap, lcp)
        rows = np.nonzero(lcp < cap)[0]
    while True:
        if rows is None:
            off, p, qo, cp = lcp, ptr, qoff, cap
        else:
            off, p, qo, cp = lcp[rows], ptr[rows], qoff[rows], cap[rows]
        s = _words_at(v.shard.ds, p + off)
        q = _words_at(qbuf, qo + off)
        eq = _equal_bytes(s ^ q)
        new = np.minimum(off + eq, cp)
        more = new < cp  # not yet at the query's end or the shard's end
        differ = more & (eq < 8)
        go_on = more & (eq == 8)
        if rows is None:
            lcp = new
            sign[differ] = np.where(s[differ] < q[differ], -1, 1)
            rows = np.nonzero(go_on)[0]
        else:
            lcp[rows] = new
            sign[rows[differ]] = np.where(s[differ] < q[differ], -1, 1)
            rows = rows[go_on]
        if not rows.size:
            break
    sign[(lcp < qlen) & (lcp >= avail)] = -1  # the suffix stopped before the query did
    return lcp, sign


def _bisect(
    v: ShardView,
    qbuf,
    qoff,
    qlen,
    lo,
    hi,
    upper,
    want_lcp: bool = False,
    floor=None,
    self_query: bool = False,
):
    """First rank in [lo, hi) whose suffix compares >= the query (> where ``upper``, a bool or one per row),
    per row. Manber and Myers' trick: the common prefix with the query of the suffixes at both ends of the
    interval is tracked, and every suffix in between shares at least the smaller one, so a comparison starts
    there (or at ``floor``, bytes every suffix in [lo, hi) is known to share). With ``want_lcp`` also returns
    the common prefix with the suffixes at rank ``lo - 1`` and ``lo`` when they were compared during the
    search (else -1)."""
    m = lo.size
    out = lo.copy()
    out_l = np.full(m, -1, dtype=np.int64)
    out_r = np.full(m, -1, dtype=np.int64)
    idx = np.nonzero(lo < hi)[0]
    a_lo, a_hi = lo[idx], hi[idx]
    a_off, a_len = qoff[idx], qlen[idx]
    a_up = np.broadcast_to(np.asarray(upper, dtype=bool), (m,))[idx]
    a_fl = np.zeros(idx.size, dtype=np.int64) if floor is None else floor[idx]
    a_l = np.full(idx.size, -1, dtype=np.int64)  # common prefix with the suffix at lo - 1 (-1: not compared)
    a_r = np.full(idx.size, -1, dtype=np.int64)  # ... and with the suffix at hi
    while idx.size:
        mid = (a_lo + a_hi) >> 1
        start = np.maximum(np.minimum(a_l, a_r), a_fl)
        c_lcp, c = _lcp_compare(v, v.pointers(mid), qbuf, a_off, a_len, start, self_query)
        right = (c < 0) | (a_up & (c == 0))
        a_lo = np.where(right, mid + 1, a_lo)
        a_hi = np.where(right, a_hi, mid)
        a_l = np.where(right, c_lcp, a_l)
        a_r = np.where(right, a_r, c_lcp)
        done = a_lo >= a_hi
        if done.any():
            d = idx[done]
            out[d], out_l[d], out_r[d] = a_lo[done], a_l[done], a_r[done]
            keep = ~done
            idx, a_lo, a_hi, a_off, a_len, a_up, a_fl, a_l, a_r = (
                x[keep] for x in (idx, a_lo, a_hi, a_off, a_len, a_up, a_fl, a_l, a_r)
            )
    if want_lcp:
        return out, out_l, out_r
    return out


def _query_keys(qbuf: np.ndarray, qoff: np.ndarray, qlen: np.ndarray):
    """The first 16 bytes of every query as two big-endian words, padded with 0x00 (``lo``) and with 0xff
    (``hi``): every suffix that starts with the query lies between the two."""
    lo, hi = [], []
    for j in range(2):
        keep = _mask_top(qlen - 8 * j)
        word = _words_at(qbuf, qoff + 8 * j) & keep
        lo.append(word)
        hi.append(word | ~keep)
    return lo, hi


def _search_sorted_array(arr: np.ndarray, lo: np.ndarray, hi: np.ndarray, x: np.ndarray, right: bool):
    """Vectorized bisection in an in-memory sorted array, each row in its own [lo, hi)."""
    lo, hi = lo.copy(), hi.copy()
    act = np.nonzero(lo < hi)[0]
    while act.size:
        mid = (lo[act] + hi[act]) >> 1
        go = arr[mid] <= x[act] if right else arr[mid] < x[act]
        lo[act[go]] = mid[go] + 1
        hi[act[~go]] = mid[~go]
        act = act[lo[act] < hi[act]]
    return lo


def _bracket(v: ShardView, key: list[np.ndarray], order: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rank bounds of each key among the sampled suffixes: samples that compare < the key come before the
    first returned rank's sample, samples > the key at or after the second. ``order`` sorts the first key
    word (a sorted walk over the samples is several times faster)."""
    q1 = key[0][order]
    a = np.empty(q1.size, dtype=np.int64)
    b = np.empty(q1.size, dtype=np.int64)
    a[order] = np.searchsorted(v.key1, q1, side="left")
    b[order] = np.searchsorted(v.key1, q1, side="right")
    tie = np.nonzero(b > a)[0]  # samples equal on the first word: settle on the second
    if tie.size:
        a2 = _search_sorted_array(v.key2, a[tie], b[tie], key[1][tie], right=False)
        b2 = _search_sorted_array(v.key2, a2, b[tie], key[1][tie], right=True)
        a[tie], b[tie] = a2, b2
    lo = np.maximum((a - 1) * v.stride + 1, 0)
    hi = np.minimum(b * v.stride, v.n_sfx)
    return lo, np.maximum(hi, lo)


class _Queries:
    """Queries as windows of one byte buffer, with their sample keys and the order of their first key word
    (shared by every shard)."""

    def __init__(self, qbuf: np.ndarray, qoff: np.ndarray, qlen: np.ndarray):
        self.buf, self.off, self.len = qbuf, qoff, qlen
        self.klo, self.khi = _query_keys(qbuf, qoff, qlen)
        self.order = np.argsort(self.klo[0], kind="stable")

    def take(self, rows: np.ndarray) -> _Queries:
        sub = object.__new__(_Queries)
        sub.buf, sub.off, sub.len = self.buf, self.off[rows], self.len[rows]
        sub.klo = [k[rows] for k in self.klo]
        sub.khi = [k[rows] for k in self.khi]
        at = np.full(self.off.size, -1, dtype=np.int64)
        at[rows] = np.arange(rows.size)
        o = at[self.order]
        sub.order = o[o >= 0]  # the parent's sorted order, restricted to the rows taken
        return sub


def _lower_bounds(v: ShardView, q: _Queries) -> np.ndarray:
    l0, l1 = _bracket(v, q.klo, q.order)
    return _bisect(v, q.buf, q.off, q.len, l0, l1, upper=False)


def shard_ranges(v: ShardView, q: _Queries) -> tuple[np.ndarray, np.ndarray]:
    """(lo, hi) per (non-empty) query in one shard: the engine's ``find`` segment."""
    if not v.n_sfx or not q.off.size:
        z = np.zeros(q.off.size, dtype=np.int64)
        return z, z.copy()
    lo = _lower_bounds(v, q)
    u0, u1 = _bracket(v, q.khi, q.order)
    u0 = np.maximum(u0, lo)
    hi = _bisect(v, q.buf, q.off, q.len, u0, np.maximum(u1, u0), upper=True)
    return lo, hi


def count_ranges(
    index: Index, qbuf: np.ndarray, qoff: np.ndarray, qlen: np.ndarray, need: np.ndarray | None = None
) -> np.ndarray:
    """Per query and shard the suffix-array range, shape (m, n_shards, 2), as the engine's ``find`` gives it;
    ``qlen`` in bytes (whole tokens); the empty query covers the whole table. ``need`` (m, n_shards), when
    given, says which shards can hold the query at all (elsewhere the range is left empty)."""
    views = shard_views(index)
    m = qoff.size
    out = np.zeros((m, len(views), 2), dtype=np.int64)
    empty = qlen == 0
    for s, v in enumerate(views):
        out[empty, s, 1] = v.n_sfx
    ne = np.nonzero(~empty)[0]
    if not ne.size:
        return out
    allq = _Queries(qbuf, qoff[ne], qlen[ne])

    def one(s: int) -> None:
        rows = np.arange(ne.size) if need is None else np.nonzero(need[ne, s])[0]
        if rows.size:
            q = allq if rows.size == ne.size else allq.take(rows)
            lo, hi = shard_ranges(views[s], q)
            out[ne[rows], s, 0], out[ne[rows], s, 1] = lo, hi

    _per_shard(one, len(views))
    return out


def matching_lengths(
    index: Index, qbuf: np.ndarray, qoff: np.ndarray, qlen: np.ndarray, known: np.ndarray | None = None
) -> np.ndarray:
    """Per query and shard, the longest prefix (bytes, whole tokens) that occurs in the shard, shape
    (m, n_shards); the maximum over shards is the matching statistic when the queries are the suffixes of an
    item (the engine's ``creativity``: ``rs[i] - i``). ``known`` (m, n_shards): queries known to occur whole
    in a shard (a document's own suffixes in its shard) are not searched there."""
    w = index.width
    views = shard_views(index)
    best = np.zeros((qoff.size, len(views)), dtype=np.int64)
    if known is not None:
        best[known] = np.broadcast_to(qlen[:, None], best.shape)[known]
    ne = np.nonzero(qlen > 0)[0]
    if not ne.size:
        return best
    allq = _Queries(qbuf, qoff[ne], qlen[ne])

    def one(s: int) -> None:
        v = views[s]
        if not v.n_sfx:
            return
        sel = np.arange(ne.size) if known is None else np.nonzero(~known[ne, s])[0]
        if not sel.size:
            return
        q = allq if sel.size == ne.size else allq.take(sel)
        l0, l1 = _bracket(v, q.klo, q.order)
        pos, llcp, rlcp = _bisect(v, qbuf, q.off, q.len, l0, l1, upper=False, want_lcp=True)
        got = np.maximum(llcp, rlcp)
        for cand, seen in ((pos - 1, llcp), (pos, rlcp)):
            # the neighbours the search never compared (the ends of the starting bracket) are compared now
            ok = np.nonzero((cand >= 0) & (cand < v.n_sfx) & (seen < 0))[0]
            if ok.size:
                lcp, _ = _lcp_compare(
                    v, v.pointers(cand[ok]), qbuf, q.off[ok], q.len[ok], np.zeros(ok.size, np.int64)
                )
                got[ok] = np.maximum(got[ok], lcp)
        best[ne[sel], s] = np.maximum(got, 0)

    _per_shard(one, len(views))
    return best // w * w


def suffix_ranks(index: Index, shard: int, ptrs: np.ndarray) -> np.ndarray:
    """The suffix-array rank of each given position (byte offset, token aligned) of one shard: the inverse
    suffix array, found by an exact search for the suffix itself (two different suffixes always differ
    somewhere, so only the suffix at that position compares equal)."""
    v = shard_views(index)[shard]
    ptrs = np.asarray(ptrs, dtype=np.int64)
    if not ptrs.size:
        return ptrs
    ds = v.shard.ds
    qlen = v.ds_size - ptrs
    q = _Queries(ds, ptrs, qlen)
    l0, l1 = _bracket(v, q.klo, q.order)
    return _bisect(v, ds, ptrs, qlen, l0, l1, upper=False, self_query=True)


@dataclass(frozen=True)
class Exclusion:
    """A sequence that is itself a corpus document: statistics are computed as if it were not in the index
    (leave-one-out). ``start`` is the byte offset of its first token in ``shard``'s tokens."""

    shard: int
    start: int


def _exclusion_stats(index: Index, exs: dict[int, tuple[Exclusion, int]]) -> dict[int, tuple]:
    """For each excluded sequence ``k`` (its exclusion and its length in tokens): the sorted suffix-array
    ranks of the document's own suffixes, and per start its matching length (tokens) in its shard without it.
    The longest match of ``x[j:]`` against the other suffixes of the shard is its common prefix with the
    nearest suffix on either side (in suffix-array order) that starts outside the document. Batched per shard
    over every document."""
    out: dict[int, tuple] = {}
    w = index.width
    by_shard: dict[int, list[int]] = {}
    for k, (ex, _) in exs.items():
        by_shard.setdefault(ex.shard, []).append(k)
    for shard, ks in by_shard.items():
        v = shard_views(index)[shard]
        lens = np.array([exs[k][1] for k in ks], dtype=np.int64)
        starts = np.array([exs[k][0].start for k in ks], dtype=np.int64)
        owner = np.repeat(np.arange(len(ks)), lens)
        first = np.concatenate([[0], np.cumsum(lens)[:-1]])
        ptrs = starts[owner] + (np.arange(int(lens.sum())) - first[owner]) * w
        lo_doc, hi_doc = starts[owner], starts[owner] + lens[owner] * w
        ranks = suffix_ranks(index, shard, ptrs)
        best = np.zeros(ptrs.size, dtype=np.int64)
        for step in (-1, 1):
            cand = ranks + step
            rows = np.arange(ptrs.size)
            while rows.size:  # skip neighbours inside the document itself
                rows = rows[(cand[rows] >= 0) & (cand[rows] < v.n_sfx)]
                if not rows.size:
                    break
                p = v.pointers(cand[rows])
                inside = (p >= lo_doc[rows]) & (p < hi_doc[rows])
                cand[rows[inside]] += step
                done = rows[~inside]
                if done.size:
                    lcp, _ = _lcp_compare(
                        v,
                        p[~inside],
                        v.shard.ds,
                        ptrs[done],
                        hi_doc[done] - ptrs[done],
                        np.zeros(done.size, np.int64),
                    )
                    best[done] = np.maximum(best[done], lcp)
                rows = rows[inside]
        for j, k in enumerate(ks):
            sl = slice(first[j], first[j] + lens[j])
            out[k] = (np.sort(ranks[sl]), best[sl] // w)
    return out


def total_tokens(index: Index) -> int:
    """What the engine counts for the empty pattern: every token position, document separators included."""
    return int(sum(v.n_sfx for v in shard_views(index)))


class QueryBuffer:
    """Token sequences concatenated into one zero-padded byte buffer, addressed by (sequence, token) windows."""

    def __init__(self, index: Index, seqs: list[np.ndarray]):
        self.width = index.width
        dtype = index.dtype
        lens = np.array([len(s) for s in seqs], dtype=np.int64)
        self.lengths = lens  # tokens
        pad = 16
        parts = []
        for s in seqs:
            parts.append(np.asarray(s, dtype=dtype).tobytes())
            parts.append(bytes(pad))
        self.buf = np.frombuffer(b"".join(parts) or bytes(pad), dtype=np.uint8)
        sizes = lens * self.width + pad
        self.base = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64) if len(seqs) else lens

    def release(self) -> None:
        """Drop the word view that the search helpers cache for this buffer (it would keep it alive)."""
        matching._VIEWS.pop(id(self.buf), None)

    def window(self, seq: np.ndarray, start: np.ndarray, end: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(byte offset, byte length) of tokens ``[start, end)`` of each sequence."""
        return self.base[seq] + start * self.width, (end - start) * self.width


def counts(index: Index, qb: QueryBuffer, seq, start, end, need: np.ndarray | None = None) -> np.ndarray:
    """Occurrences of each window (summed over shards); an empty window counts every token position."""
    off, ln = qb.window(np.asarray(seq), np.asarray(start), np.asarray(end))
    r = count_ranges(index, qb.buf, off, ln, need)
    return (r[:, :, 1] - r[:, :, 0]).sum(axis=1)


def nested_ranges(index: Index, qb: QueryBuffer, seq, start, end, need: np.ndarray) -> np.ndarray:
    """Suffix-array ranges (m, n_shards, 2) of windows sorted by (sequence, start, end), none empty.

    Windows that share a start form a block, and their ranges are nested: for ``e1 < e < e2`` the range of
    ``x[s:e]`` starts between those of ``x[s:e1]`` and ``x[s:e2]`` and ends between theirs, and every suffix
    in it shares the first ``e1 - s`` tokens. So per block only the first window is searched from the
    sampled keys; the last one, and then the middle of every gap, by a short bisection between its
    neighbours' bounds that compares only the tokens past ``e1``. A gap whose two ends have the same range
    holds that range throughout (counts never grow with the window), so a text that repeats a corpus passage
    costs a few searches, not one per position. ``need`` (m, n_shards): shards that can hold each window
    (from the matching statistics; a window a shard cannot hold stays empty there)."""
    seq, start, end = (np.asarray(x, dtype=np.int64) for x in (seq, start, end))
    m = seq.size
    views = shard_views(index)
    ranges = np.zeros((m, len(views), 2), dtype=np.int64)
    if not m:
        return ranges
    off, ln = qb.window(seq, start, end)
    block = np.cumsum(np.r_[True, (seq[1:] != seq[:-1]) | (start[1:] != start[:-1])]) - 1

    def one(s: int) -> None:
        v = views[s]
        if not v.n_sfx:
            return
        rows = np.nonzero(need[:, s])[0]  # need shrinks with the window: a prefix of every block
        if not rows.size:
            return
        blk = block[rows]
        firsts = rows[np.r_[True, blk[1:] != blk[:-1]]]
        lasts = rows[np.r_[blk[1:] != blk[:-1], True]]
        q = _Queries(qb.buf, off[firsts], ln[firsts])
        lo, hi = shard_ranges(v, q)
        ranges[firsts, s, 0], ranges[firsts, s, 1] = lo, hi
        more = lasts != firsts
        _between(v, qb.buf, off, ln, ranges, s, firsts[more], lasts[more], last_known=False)
        a, b = firsts[more], lasts[more]
        while a.size:
            gap = b - a > 1
            a, b = a[gap], b[gap]
            same = (ranges[a, s, 0] == ranges[b, s, 0]) & (ranges[a, s, 1] == ranges[b, s, 1])
            if same.any():  # equal ends: the whole gap has that range
                fa, fb = a[same], b[same]
                cnt = fb - fa - 1
                fill = np.repeat(fa + 1, cnt) + (np.arange(cnt.sum()) - np.repeat(np.cumsum(cnt) - cnt, cnt))
                ranges[fill, s] = np.repeat(ranges[fa, s], cnt, axis=0)
            a, b = a[~same], b[~same]
            mid = (a + b) >> 1
            _between(v, qb.buf, off, ln, ranges, s, a, mid, last_known=True, right=b)
            a, b = np.concatenate([a, mid]), np.concatenate([mid, b])

    _per_shard(one, len(views))
    return ranges


def _between(v: ShardView, qbuf, off, ln, ranges, s, left, rows, last_known: bool, right=None) -> None:
    """Ranges (in shard ``s``) of the windows ``rows``, each a longer window of the same start as ``left``:
    inside ``left``'s range, and outside ``right``'s range when it is known (``last_known``)."""
    if not rows.size:
        return
    llo, lhi = ranges[left, s, 0], ranges[left, s, 1]
    if last_known:
        rlo, rhi = ranges[right, s, 0], ranges[right, s, 1]
        lo_hi, hi_lo = rlo, rhi
    else:
        lo_hi, hi_lo = lhi, llo
    k = rows.size
    two = np.r_[rows, rows]
    lo0 = np.r_[llo, np.maximum(hi_lo, llo)]
    hi0 = np.r_[np.minimum(lo_hi, lhi), lhi]
    up = np.r_[np.zeros(k, bool), np.ones(k, bool)]
    floor = np.r_[ln[left], ln[left]]
    got = _bisect(v, qbuf, off[two], ln[two], lo0, np.maximum(hi0, lo0), up, floor=floor)
    ranges[rows, s, 0], ranges[rows, s, 1] = got[:k], got[k:]


@dataclass
class PositionStats:
    """∞-gram statistics of the scored positions ``t`` of one sequence (predicting token ``t`` from the tokens
    before it), and the matching statistics of every start of the sequence."""

    positions: np.ndarray
    suffix_len: np.ndarray  # tokens of effective context (the longest suffix of x[:t] that occurs)
    prompt_cnt: np.ndarray  # occurrences of that context (every token position when it is empty)
    cont_cnt: np.ndarray  # occurrences of the context followed by x[t]
    match_len: np.ndarray  # per start i: the longest prefix of x[i:] that occurs (tokens)
    novel: dict = field(default_factory=dict)  # filled by freqindex.query.distance: n -> flags per n-gram


def _context_starts(ms: np.ndarray, ts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start of the effective context of each position ``t`` and whether ``x[start : t + 1]`` occurs, from the
    matching statistics: ``rs[i] = i + ms[i]`` never decreases, and ``x[i:t]`` occurs iff ``rs[i] >= t``."""
    n = ms.size
    rs = np.arange(n, dtype=np.int64) + ms
    start = np.minimum(np.searchsorted(rs, ts, side="left"), ts)
    occurs = rs[np.minimum(start, max(n - 1, 0))] > ts if n else np.zeros(ts.size, dtype=bool)
    return start, occurs & (ts < n)


PROBE_STRIDE = 8


def _all_matching_lengths(index: Index, qb: QueryBuffer, own, loc, first, todo: dict):
    """Matching statistics of every start: per shard (-1 where not computed) and overall (tokens), with the
    documents in ``todo`` left out of their own shard (leave-one-out), and their suffix ranks.

    ``rs[i] = i + ms[i]`` never decreases, so where two computed starts have the same ``rs`` every start
    between them has it too. Starts are first computed every ``PROBE_STRIDE`` tokens (and at each end); a gap
    whose ends differ is split at its middle until its ends agree or meet. Every start where ``rs`` changes,
    so every start of an effective context, ends up computed; a text the corpus holds verbatim costs
    ``n / PROBE_STRIDE`` searches instead of ``n`` (each comparing up to the rest of the text)."""
    w = index.width
    n_tot = own.size
    n_sh = len(shard_views(index))
    lens = qb.lengths
    known = None
    excluded = np.zeros(n_tot, dtype=bool)
    if todo:  # a document's own suffixes occur whole in its own shard: no search there
        known = np.zeros((n_tot, n_sh), dtype=bool)
        for k, (ex, n) in todo.items():
            known[first[k] : first[k] + n, ex.shard] = True
            excluded[first[k] : first[k] + n] = True
    ex_stats = _exclusion_stats(index, todo)
    loo = np.full(n_tot, -1, dtype=np.int64)
    loo_shard = np.zeros(n_tot, dtype=np.int64)
    for k, (_, vals) in ex_stats.items():
        loo[first[k] : first[k] + lens[k]] = vals
        loo_shard[first[k] : first[k] + lens[k]] = todo[k][0].shard
    ms_shard = np.full((n_tot, n_sh), -1, dtype=np.int64)
    rs = np.zeros(n_tot, dtype=np.int64)
    done = np.zeros(n_tot, dtype=bool)
    off, ln = qb.window(own, loc, lens[own])
    idx = np.nonzero((loc % PROBE_STRIDE == 0) | (loc == lens[own] - 1) | excluded)[0]
    while idx.size:
        got = matching_lengths(index, qb.buf, off[idx], ln[idx], None if known is None else known[idx]) // w
        ms_shard[idx] = got
        used = got.copy()
        ex_rows = np.nonzero(loo[idx] >= 0)[0]
        used[ex_rows, loo_shard[idx[ex_rows]]] = loo[idx[ex_rows]]
        rs[idx] = loc[idx] + (used.max(axis=1) if n_sh else 0)
        done[idx] = True
        comp = np.nonzero(done)[0]
        a, b = comp[:-1], comp[1:]
        gap = (own[a] == own[b]) & (b - a > 1)
        same = gap & (rs[a] == rs[b])
        if same.any():  # fill: every start between shares the ends' rs
            fa, fb = a[same], b[same]
            cnt = fb - fa - 1
            pos = np.repeat(fa + 1, cnt) + (np.arange(cnt.sum()) - np.repeat(np.cumsum(cnt) - cnt, cnt))
            rs[pos] = np.repeat(rs[fa], cnt)
            done[pos] = True
        split = gap & ~same
        idx = (a[split] + b[split]) // 2
    ms = rs - loc
    if todo:  # per-shard values of the documents' own shard, left out
        rows = np.nonzero(loo >= 0)[0]
        ms_shard[rows, loo_shard[rows]] = loo[rows]
    return ms_shard, ms, {k: r for k, (r, _) in ex_stats.items()}


def infgram_positions(
    index: Index,
    seqs: list[np.ndarray],
    positions: list[np.ndarray] | None = None,
    exclude: list[Exclusion | None] | None = None,
) -> list[PositionStats]:
    """The engine's ``infgram_prob(x[:t], x[t])`` for the given positions of every sequence (all by default):
    ``prob = cont_cnt / prompt_cnt``. Matching statistics of every start give every effective context at once;
    then every distinct (start, end) context and continuation is counted in one batch (nested windows inside
    each other's ranges). ``exclude[k]``: sequence ``k`` is a corpus document, scored leave-one-out: every
    match and count is what the index would give without that document (tested equal to such an index)."""
    if not seqs:
        return []
    qb = QueryBuffer(index, seqs)
    lens = qb.lengths
    n_tot = int(lens.sum())
    own = np.repeat(np.arange(len(seqs), dtype=np.int64), lens)
    first = np.concatenate([[0], np.cumsum(lens)[:-1]]).astype(np.int64)
    loc = np.arange(n_tot, dtype=np.int64) - first[own]
    off, ln = qb.window(own, loc, lens[own])
    todo = {k: (ex, int(lens[k])) for k, ex in enumerate(exclude or []) if ex is not None and lens[k]}
    ms_shard, ms, ex_ranks = _all_matching_lengths(index, qb, own, loc, first, todo)
    p_seq, p_start, p_t, p_occ = [], [], [], []
    for k in range(len(seqs)):
        n = int(lens[k])
        ts = np.arange(n, dtype=np.int64) if positions is None else np.asarray(positions[k], dtype=np.int64)
        start, occ = _context_starts(ms[first[k] : first[k] + n], ts)
        p_seq.append(np.full(ts.size, k, dtype=np.int64))
        p_start.append(start)
        p_t.append(ts)
        p_occ.append(occ)
    seq_a, start_a, t_a, occ_a = (np.concatenate(x) for x in (p_seq, p_start, p_t, p_occ))
    # distinct patterns: contexts [start, t) and the continuations [start, t + 1) that occur, keyed by
    # (global start, length) so one 1-d sort finds them (ordered by sequence, start, end)
    pat_seq = np.concatenate([seq_a, seq_a[occ_a]])
    pat_s = np.concatenate([start_a, start_a[occ_a]])
    pat_e = np.concatenate([t_a, t_a[occ_a] + 1])
    span = int(lens.max()) + 1
    ukey, inv = np.unique((first[pat_seq] + pat_s) * span + (pat_e - pat_s), return_inverse=True)
    u_len = ukey % span
    u_gs = ukey // span
    u_seq = np.searchsorted(first, u_gs, side="right") - 1  # (an empty sequence has no positions)
    uniq = np.stack([u_seq, u_gs - first[u_seq], u_gs - first[u_seq] + u_len], axis=1)
    inv = inv.ravel()
    cnt = np.zeros(uniq.shape[0], dtype=np.int64)
    empty = uniq[:, 1] == uniq[:, 2]
    cnt[empty] = total_tokens(index)
    for k in ex_ranks:  # the index without the document has its tokens and its separator fewer
        cnt[empty & (uniq[:, 0] == k)] -= int(lens[k]) + 1
    ne = np.nonzero(~empty)[0]
    if ne.size:
        u = uniq[ne]
        # a shard can hold the pattern only where the match from its start reaches its end there (every
        # pattern starts where the matching statistics were computed, see _all_matching_lengths)
        ms_at = ms_shard[first[u[:, 0]] + u[:, 1]]
        need = (ms_at >= (u[:, 2] - u[:, 1])[:, None]) | (ms_at < 0)
        r = nested_ranges(index, qb, u[:, 0], u[:, 1], u[:, 2], need)
        c = (r[:, :, 1] - r[:, :, 0]).sum(axis=1)
        for k, ranks in ex_ranks.items():  # leave-one-out: minus the document's own suffixes in each range
            sel = np.nonzero(u[:, 0] == k)[0]
            s = exclude[k].shard
            c[sel] -= np.searchsorted(ranks, r[sel, s, 1]) - np.searchsorted(ranks, r[sel, s, 0])
        cnt[ne] = c
    qb.release()
    m = seq_a.size
    prompt = cnt[inv[:m]]
    cont = np.zeros(m, dtype=np.int64)
    cont[occ_a] = cnt[inv[m:]]
    out = []
    b = np.concatenate([[0], np.cumsum([x.size for x in p_t])])
    for k in range(len(seqs)):
        sl = slice(b[k], b[k + 1])
        out.append(
            PositionStats(
                t_a[sl], t_a[sl] - start_a[sl], prompt[sl], cont[sl], ms[first[k] : first[k] + lens[k]]
            )
        )
    return out


def longest_suffixes(index: Index, seqs: list[np.ndarray]) -> np.ndarray:
    """Length (tokens) of the longest suffix of each sequence that occurs: the engine's ``suffix_len`` of
    ``infgram_ntd``."""
    if not seqs:
        return np.zeros(0, dtype=np.int64)
    qb = QueryBuffer(index, seqs)
    lens = qb.lengths
    own = np.repeat(np.arange(len(seqs), dtype=np.int64), lens)
    first = np.concatenate([[0], np.cumsum(lens)[:-1]]).astype(np.int64)
    loc = np.arange(int(lens.sum()), dtype=np.int64) - first[own]
    off, ln = qb.window(own, loc, lens[own])
    ms = matching_lengths(index, qb.buf, off, ln).max(axis=1) // index.width if own.size else own
    qb.release()
    out = np.zeros(len(seqs), dtype=np.int64)
    for k in range(len(seqs)):
        n = int(lens[k])
        if n:
            start, _ = _context_starts(ms[first[k] : first[k] + n], np.array([n]))
            out[k] = n - int(start[0])
    return out


# --- next-token distributions --------------------------------------------------------------------------


def _tokens_at(v: ShardView, rank: np.ndarray, nbytes: np.ndarray, width: int) -> np.ndarray:
    """The token after the first ``nbytes`` of each suffix; -1 at the end of the shard (the separator reads as
    its all-ones value)."""
    ptr = v.pointers(rank) + nbytes
    out = np.full(rank.size, -1, dtype=np.int64)
    ok = ptr + width <= v.ds_size
    ds = v.shard.ds
    val = np.zeros(int(ok.sum()), dtype=np.int64)
    p = ptr[ok]
    for b in range(width):
        val |= ds[p + b].astype(np.int64) << (8 * b)
    out[ok] = val
    return out


def next_token_counts(
    index: Index, ranges: np.ndarray, nbytes: np.ndarray, max_support: int | None = None
) -> tuple[list[dict[int, int]], np.ndarray]:
    """For each query (its per-shard ``ranges``, its length ``nbytes``) the count of every next token, and
    whether it is approximate. ``max_support``: the engine's subsampling (``unit`` doubles until the
    occurrences fit in ``unit * max_support``, and segments shorter than ``4 * unit`` are read every ``unit``
    ranks); None counts exactly. Document ends and the shard end count as ``eos_token_id``."""
    eos = int(index.manifest["engine"]["eos_token_id"])
    width = index.width
    sep = (1 << (8 * width)) - 1
    m = ranges.shape[0]
    total = (ranges[:, :, 1] - ranges[:, :, 0]).sum(axis=1)
    unit = np.ones(m, dtype=np.int64)
    if max_support is not None:
        while True:
            grow = total > unit * max_support
            if not grow.any():
                break
            unit[grow] <<= 1
    acc_row, acc_tok, acc_w = [], [], []
    for s, v in enumerate(shard_views(index)):
        row = np.arange(m, dtype=np.int64)
        a, b = ranges[:, s, 0].copy(), ranges[:, s, 1].copy()
        keep = b > a
        row, a, b = row[keep], a[keep], b[keep]
        while row.size:
            u = unit[row]
            small = (b - a) < 4 * u
            if small.any():
                r, sa, sb, su = row[small], a[small], b[small], u[small]
                nblk = -(-(sb - sa) // su)
                rr = np.repeat(r, nblk)
                first = np.repeat(sa, nblk)
                k = np.arange(nblk.sum()) - np.repeat(np.cumsum(nblk) - nblk, nblk)
                uu = np.repeat(su, nblk)
                end = np.repeat(sb, nblk)
                rank = first + k * uu
                full = rank + uu <= end
                mid = np.where(full, rank + (uu >> 1), (rank + end) >> 1)
                acc_row.append(rr)
                acc_tok.append(_tokens_at(v, mid, nbytes[rr], width))
                acc_w.append(np.where(full, uu, end - rank))
            big = ~small
            row, a, b = row[big], a[big], b[big]
            if not row.size:
                break
            t0 = _tokens_at(v, a, nbytes[row], width)
            t1 = _tokens_at(v, b - 1, nbytes[row], width)
            same = t0 == t1
            acc_row.append(row[same])
            acc_tok.append(t0[same])
            acc_w.append((b - a)[same])
            row, a, b = row[~same], a[~same], b[~same]
            mid = (a + b) >> 1
            row, a, b = np.concatenate([row, row]), np.concatenate([a, mid]), np.concatenate([mid, b])
    out: list[dict[int, int]] = [dict() for _ in range(m)]
    if acc_row:
        rows = np.concatenate(acc_row)
        toks = np.concatenate(acc_tok)
        toks = np.where((toks < 0) | (toks == sep), eos, toks)
        wts = np.concatenate(acc_w)
        key = np.stack([rows, toks], axis=1)
        uniq, inv = np.unique(key, axis=0, return_inverse=True)
        sums = np.bincount(inv.ravel(), weights=wts, minlength=uniq.shape[0]).astype(np.int64)
        for (r, t), c in zip(uniq.tolist(), sums.tolist()):
            out[r][t] = c
    return out, unit > 1


__all__ = [
    "QueryBuffer",
    "PositionStats",
    "Exclusion",
    "count_ranges",
    "counts",
    "infgram_positions",
    "longest_suffixes",
    "suffix_ranks",
    "matching_lengths",
    "next_token_counts",
    "shard_views",
    "total_tokens",
]
