"""Compiled suffix-array search over the memory-mapped infini-gram shards: the fast path of every count.

The infini-gram engine answers ``count`` correctly, but each call starts two threads per shard (about 0.5-1 ms
on four shards), so a count costs far more than its binary searches. Here the same searches run as numba code
over the very files the engine opens (``table.N`` pointers of ``ptr_size`` little-endian bytes, ``tokenized.N``
token bytes), in the calling thread, with no per-call thread start:

- **Sampled top levels.** Each shard has a sample: the first 8 bytes (as a big-endian word) and the pointer
  of every ``step``-th suffix (``step`` = 256, more for shards above 2^28 suffixes so a sample never exceeds
  2^20 entries: 16 MiB). The build writes it (``sa/sample.N``, mapped here); an index built before that has
  it made at first use, which reads the whole suffix array. A search first bisects this compact sample, then
  only the ``step`` suffixes between two samples in the memory-mapped arrays.
- **Lock-step bounds.** The lower and upper bound of a query in every shard are independent binary
  searches; they advance together, one level at a time, loading all their pointers first and their text
  words next, so the memory accesses of one level overlap instead of waiting on each other. A batch of
  queries (sorted, so neighbouring searches share cache lines) runs the same way in one call; a batch of
  more than ``PARALLEL_MIN_QUERIES`` per core splits into contiguous runs searched in threads side by side
  (the compiled code releases the GIL): 3.4 -> ~1.7 us of search per query on 2 cores.
- **A scalar single count.** One query (``count``, ``/v1/count`` with one query) runs its own kernel: the
  same lock-step bounds in scalar code, with no arrays to allocate and no task bookkeeping (9.2 -> 3.8 us per
  kernel call on the 100 MB benchmark index; what remains there is the random memory reads).
- **Prefetching.** A level in the mapped files is two dependent random reads: the suffix-array entry, then
  the text it points to. Before a single count's bound compares at a level, it asks the CPU (LLVM's
  ``prefetch``) for the text of both ranges it can go to next and for the entries of the four after those,
  so each level waits on about one read (benchmarks/bench_kernel.py, 2,000 queries, medians per call: 100 MB
  3.7-4.2 -> 3.0-3.3 us, 1.6 GB 8.3-8.5 -> 6.6-6.9 us). Plain loads one level ahead were measured before and
  gained nothing: a load must complete before the code goes on, a prefetch need not.
- **Many shards.** Numba compiles a function once per length of the tuples of arrays it is given, and that
  takes longer the longer the tuples (a first count over 480 shards compiled for ~3 minutes). An index of
  more than ``SHARD_GROUP`` shards is searched in groups of exactly that many (the last padded with empty
  shards), so a few tuple lengths serve every index and every append. A single count over more than
  ``PARALLEL_MIN_SHARDS`` shards per core searches runs of groups in threads (480 shards on 2 cores:
  1.4 -> 0.8 ms).
- **Word compares.** A step compares the 8 leading bytes as one integer; only a tie with a query longer than
  8 bytes reads on.

Byte order equals the suffix arrays' order for every token width (infini-gram sorts the little-endian token
bytes byte-wise; only token-aligned suffixes are in the table), so a query's token bytes are searched as
bytes, and a suffix that runs into the end of the shard sorts before every longer string it starts. The
results are the engine's ``find`` ranges exactly (tests compare them on real indexes of every token width).
Compiled code is cached on disk by numba (``cache=True``), so only the first process ever compiles.
"""

from __future__ import annotations

import os
import threading
import weakref
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

if TYPE_CHECKING:
    from freqindex.suffix.index import Index


SAMPLE_STEP = 256  # suffixes per sample entry (the last ~8 levels of a search run in the mapped arrays)
MAX_SAMPLES = 1 << 20  # per shard; larger shards use a larger step
_GROUP = 64  # queries searched in lock step at a time
PARALLEL_MIN_QUERIES = 512  # a batch searches in several threads once each thread gets this many queries
PARALLEL_MIN_SHARDS = 128  # a single count searches in several threads once each thread gets this many shards
SHARD_GROUP = 16  # shards per compiled call: more shards go in runs of this many (see _shard_groups)
_PAGE_SHIFT = 8  # document lookup: the document of every 256th byte is kept, the rest is a short walk

_ALL_ONES = np.uint64(0xFFFFFFFFFFFFFFFF)


@njit(cache=True, nogil=True, inline="always")
def _pointer(table, ps, rank):
    """Suffix-array entry ``rank``: ``ps`` little-endian bytes (unrolled for the usual 4 and 5)."""
    b = rank * ps
    if ps == 4:
        return (
            np.int64(table[b])
            | (np.int64(table[b + 1]) << 8)
            | (np.int64(table[b + 2]) << 16)
            | (np.int64(table[b + 3]) << 24)
        )
    if ps == 5:
        return (
            np.int64(table[b])
            | (np.int64(table[b + 1]) << 8)
            | (np.int64(table[b + 2]) << 16)
            | (np.int64(table[b + 3]) << 24)
            | (np.int64(table[b + 4]) << 32)
        )
    p = np.int64(0)
    for k in range(ps):
        p |= np.int64(table[b + k]) << (8 * k)
    return p


@njit(cache=True, nogil=True, inline="always")
def _word(ds, ptr):
    """Big-endian uint64 of ds[ptr:ptr+8]; bytes past the end read as 0."""
    n = ds.shape[0]
    w = np.uint64(0)
    if ptr + 8 <= n:
        for i in range(8):
            w = (w << np.uint64(8)) | np.uint64(ds[ptr + i])
    else:
        for i in range(8):
            w <<= np.uint64(8)
            if ptr + i < n:
                w |= np.uint64(ds[ptr + i])
    return w


@njit(cache=True, nogil=True, inline="always")
def _compare(ds, ptr, qbuf, q0, qlen):
    """-1, 0, 1: the suffix at ``ptr`` cut to the query's length vs the query (a suffix that ends first is
    smaller)."""
    m = min(qlen, ds.shape[0] - ptr)
    for i in range(m):
        a = ds[ptr + i]
        b = qbuf[q0 + i]
        if a != b:
            return -1 if a < b else 1
    return 0 if m == qlen else -1


def sample_step(n: int) -> int:
    """Suffixes per sample entry for a shard of ``n`` suffixes: ``SAMPLE_STEP``, doubled until the sample
    has at most ``MAX_SAMPLES`` entries."""
    step = SAMPLE_STEP
    while -(-n // step) > MAX_SAMPLES:
        step *= 2
    return step


def make_sample(table: np.ndarray, ps: int, ds: np.ndarray, step: int) -> np.ndarray:
    """A shard's sample as ``sa/sample.N`` holds it: the ``m`` words, then the ``m`` pointers, each as
    little-endian 8-byte integers."""
    w, p = _build_sample(_plain(table), ps, _plain(ds), step)
    return np.concatenate([w, p.view(np.uint64)]).astype("<u8", copy=False)


def write_sample(table_path, ds_path, ps: int, out_path) -> int:
    """Write a shard's sample to ``out_path`` (made once by the build, so no reader rebuilds it: that reads
    the whole suffix array, ~0.1 s per GB warm and seconds per GB from disk); returns its step."""
    table = np.memmap(table_path, dtype=np.uint8, mode="r")
    ds = np.memmap(ds_path, dtype=np.uint8, mode="r")
    step = sample_step(table.shape[0] // ps)
    with open(out_path, "wb") as f:
        f.write(make_sample(table, ps, ds, step).tobytes())
        f.flush()
        os.fsync(f.fileno())
    return step


def _stored_sample(sh, n: int, step: int) -> tuple[np.ndarray, np.ndarray] | None:
    """The shard's sample from ``sa/sample.N`` when the index has one made with ``step``."""
    stored = sh.sample
    m = -(-n // step)
    if stored is None or sh.sample_step != step or stored.shape[0] != 2 * m:
        return None
    arr = _plain(stored)
    return arr[:m], arr[m:].view(np.int64)


@njit(cache=True, nogil=True)
def _build_sample(table, ps, ds, step):
    n = table.shape[0] // ps
    m = (n + step - 1) // step
    words = np.empty(m, np.uint64)
    ptrs = np.empty(m, np.int64)
    for k in range(m):
        p = _pointer(table, ps, k * step)
        ptrs[k] = p
        words[k] = _word(ds, p)
    return words, ptrs


@njit(cache=True, nogil=True)
def _tie(ds, ptr, qbuf, q0, qlen):
    """A suffix whose leading word equals the query's (masked to the query's length): compare the rest."""
    if qlen <= 8 and ptr + qlen <= ds.shape[0]:
        return 0
    return _compare(ds, ptr, qbuf, q0, qlen)


@njit(cache=True, nogil=True, inline="always")
def _query_word(qbuf, q0, qlen):
    """(the query's first 8 bytes as a big-endian word, zero-padded; the mask of its bytes in a word)."""
    w = np.uint64(0)
    for i in range(8):
        w <<= np.uint64(8)
        if i < qlen:
            w |= np.uint64(qbuf[q0 + i])
    nb = min(qlen, 8)
    return w, (_ALL_ONES if nb == 8 else ~((np.uint64(1) << np.uint64(64 - 8 * nb)) - np.uint64(1)))


@njit(cache=True, nogil=True, inline="always")
def _between_samples(k, step, n):
    """The ranks [lo, hi) where a bound lies when sample ``k`` is the first sample past it: after the
    previous sample, at or before this one."""
    return ((k - 1) * step + 1 if k > 0 else 0), min(k * step, n)


@njit(cache=True, nogil=True, inline="always")
def _decide(active, na, lo, hi, mid, ptr, wd, dss, qbuf, qoff, q8, qmask, nq):
    """One level of the lock-step search: each active task compares the query with the suffix at
    ``ptr[t]`` (its first 8 bytes already in ``wd[t]``), halves its range, and stays active while the range
    is not empty. Returns the number of tasks still active (packed at the front of ``active``)."""
    kept = 0
    for j in range(na):
        t = active[j]
        qi = (t >> 1) % nq
        x = wd[t] & qmask[qi]
        if x < q8[qi]:
            c = -1
        elif x > q8[qi]:
            c = 1
        else:
            c = _tie(dss[t // (2 * nq)], ptr[t], qbuf, qoff[qi], qoff[qi + 1] - qoff[qi])
        if c < 0 or (c == 0 and (t & 1)):
            lo[t] = mid[t] + 1
        else:
            hi[t] = mid[t]
        if lo[t] < hi[t]:
            active[kept] = t
            kept += 1
    return kept


@njit(cache=True, nogil=True)
def _find_ranges(tables, dss, words, sptrs, meta, qbuf, qoff):
    """Per query and shard, [lo, hi): the ranks of the suffixes that start with the query.

    ``meta[s]`` = (ptr_size, suffixes, sample step) of shard ``s``. The queries go in groups of
    ``_GROUP``: enough independent searches to overlap their memory accesses, few enough that the pages and
    cache lines of one level are still mapped and cached at the next (one lock step over a whole large
    batch measured 19-21 us per query on the 100 MB index, groups of 64 13 us)."""
    nq = qoff.shape[0] - 1
    out = np.empty((nq, len(tables), 2), np.int64)
    for g0 in range(0, nq, _GROUP):
        g1 = min(nq, g0 + _GROUP)
        out[g0:g1] = _find_group(tables, dss, words, sptrs, meta, qbuf, qoff[g0 : g1 + 1])
    return out


@njit(cache=True, nogil=True)
def _find_group(tables, dss, words, sptrs, meta, qbuf, qoff):
    """``_find_ranges`` for one group of queries, every bound of every shard in lock step. Tasks are
    (shard, query, bound) with the query index fastest, so neighbouring tasks search neighbouring (sorted)
    queries in the same shard."""
    nq = qoff.shape[0] - 1
    ns = len(tables)
    n_tasks = ns * nq * 2
    q8 = np.zeros(nq, np.uint64)
    qmask = np.zeros(nq, np.uint64)
    for qi in range(nq):
        q8[qi], qmask[qi] = _query_word(qbuf, qoff[qi], qoff[qi + 1] - qoff[qi])
    lo = np.zeros(n_tasks, np.int64)
    hi = np.empty(n_tasks, np.int64)
    for t in range(n_tasks):
        hi[t] = words[t // (2 * nq)].shape[0]
    mid = np.empty(n_tasks, np.int64)
    ptr = np.empty(n_tasks, np.int64)
    wd = np.empty(n_tasks, np.uint64)
    active = np.arange(n_tasks)
    na = n_tasks
    # 1. the in-memory sample: first sample >= the query (lower) or > it (upper)
    while na:
        for j in range(na):
            t = active[j]
            s = t // (2 * nq)
            m = (lo[t] + hi[t]) >> 1
            mid[t] = m
            wd[t] = words[s][m]
            ptr[t] = sptrs[s][m]
        na = _decide(active, na, lo, hi, mid, ptr, wd, dss, qbuf, qoff, q8, qmask, nq)
    # 2. the bound lies after the previous sample and at or before this one
    na = 0
    for t in range(n_tasks):
        s = t // (2 * nq)
        lo[t], hi[t] = _between_samples(lo[t], meta[s, 2], meta[s, 1])
        if lo[t] < hi[t]:
            active[na] = t
            na += 1
    while na:
        for j in range(na):  # all pointer loads of this level ...
            t = active[j]
            s = t // (2 * nq)
            m = (lo[t] + hi[t]) >> 1
            mid[t] = m
            ptr[t] = _pointer(tables[s], meta[s, 0], m)
        for j in range(na):  # ... then all text loads ...
            t = active[j]
            ds = dss[t // (2 * nq)]
            p = ptr[t]
            if p + 8 <= ds.shape[0]:
                x = np.uint64(0)
                for i in range(8):
                    x = (x << np.uint64(8)) | np.uint64(ds[p + i])
                wd[t] = x
            else:
                wd[t] = _word(ds, p)
        # ... then the decisions
        na = _decide(active, na, lo, hi, mid, ptr, wd, dss, qbuf, qoff, q8, qmask, nq)
    out = np.empty((nq, ns, 2), np.int64)
    for t in range(n_tasks):
        out[(t >> 1) % nq, t // (2 * nq), t & 1] = lo[t]
    return out


@njit(cache=True, nogil=True, inline="always")
def _side(wd, ptr, ds, q, q8, qmask, upper):
    """True when the bound lies after the suffix at ``ptr`` (leading word ``wd``): it is smaller than the
    query (lower bound), or smaller or equal cut to the query's length (upper bound)."""
    x = wd & qmask
    if x != q8:
        return x < q8
    c = _tie(ds, ptr, q, 0, q.shape[0])
    return c < 0 or (c == 0 and upper)


@njit(cache=True, nogil=True, inline="always")
def _sample_step(ws, sp, lo, hi, ds, q, q8, qmask, upper):
    """One bisection step of a bound over the in-memory sample (nothing when its range is already empty)."""
    if lo >= hi:
        return lo, hi
    m = (lo + hi) >> 1
    if _side(ws[m], sp[m], ds, q, q8, qmask, upper):
        return m + 1, hi
    return lo, m


@intrinsic
def _prefetch(typingctx, arr, i):
    """Ask the CPU to bring ``arr[i]`` into its caches (LLVM's ``prefetch``: a read, kept close). A hint: it
    never faults and changes no result; it only lets a later read of that element wait less."""

    def codegen(context, builder, signature, args):
        aryty = signature.args[0]
        ary = context.make_array(aryty)(context, builder, args[0])
        ptr = cgutils.get_item_pointer(context, builder, aryty, ary, [args[1]], wraparound=False)
        i8p, i32 = ir.IntType(8).as_pointer(), ir.IntType(32)
        fn = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32]), "llvm.prefetch.p0i8"
        )
        builder.call(fn, [builder.bitcast(ptr, i8p), i32(0), i32(3), i32(1)])
        return context.get_dummy_value()

    return types.void(arr, i), codegen


@njit(cache=True, nogil=True, inline="always")
def _prefetch_pointer(table, ps, lo, hi):
    """Prefetch the suffix-array entry that a search of ranks [lo, hi) reads next."""
    if lo < hi:
        _prefetch(table, ((lo + hi) >> 1) * ps)


@njit(cache=True, nogil=True, inline="always")
def _prefetch_text(table, ps, ds, lo, hi):
    """Prefetch the text at the entry that a search of ranks [lo, hi) reads next (the entry itself is read
    now, and is usually cached by then: see ``_prefetch_ahead``)."""
    if lo < hi:
        _prefetch(ds, _pointer(table, ps, (lo + hi) >> 1))


@njit(cache=True, nogil=True, inline="always")
def _prefetch_ahead(table, ps, ds, lo, hi):
    """Before a bound compares at the middle of [lo, hi): prefetch the text of both ranges it can go to next,
    and the entries of the four ranges after those. So each level of the search waits on about one random
    read instead of two dependent ones (an entry, then the text it points to)."""
    if lo >= hi:
        return
    m = (lo + hi) >> 1
    _prefetch_text(table, ps, ds, lo, m)
    _prefetch_text(table, ps, ds, m + 1, hi)
    left, right = (lo + m) >> 1, (m + 1 + hi) >> 1
    _prefetch_pointer(table, ps, lo, left)
    _prefetch_pointer(table, ps, left + 1, m)
    _prefetch_pointer(table, ps, m + 1, right)
    _prefetch_pointer(table, ps, right + 1, hi)


@njit(cache=True, nogil=True)
def _count_one(tables, dss, words, sptrs, meta, q):
    """Occurrences of one query: ``_find_ranges`` for a single query in scalar code (no arrays to allocate,
    no task bookkeeping), the lower and upper bound of each shard still advancing in lock step so that their
    memory accesses overlap."""
    q8, qmask = _query_word(q, 0, q.shape[0])
    total = np.int64(0)
    for s in range(len(tables)):
        ws, ps_, ds, table = words[s], sptrs[s], dss[s], tables[s]
        ps, n, step = meta[s, 0], meta[s, 1], meta[s, 2]
        # 1. the in-memory sample
        a_lo, a_hi, b_lo, b_hi = np.int64(0), ws.shape[0], np.int64(0), ws.shape[0]
        while a_lo < a_hi or b_lo < b_hi:
            a_lo, a_hi = _sample_step(ws, ps_, a_lo, a_hi, ds, q, q8, qmask, False)
            b_lo, b_hi = _sample_step(ws, ps_, b_lo, b_hi, ds, q, q8, qmask, True)
        # 2. between two samples, in the mapped arrays
        a_lo, a_hi = _between_samples(a_lo, step, n)
        b_lo, b_hi = _between_samples(b_lo, step, n)
        _prefetch_pointer(table, ps, a_lo, a_hi)
        _prefetch_pointer(table, ps, b_lo, b_hi)
        while a_lo < a_hi or b_lo < b_hi:
            _prefetch_ahead(table, ps, ds, a_lo, a_hi)
            _prefetch_ahead(table, ps, ds, b_lo, b_hi)
            ma = (a_lo + a_hi) >> 1
            mb = (b_lo + b_hi) >> 1
            pa = _pointer(table, ps, ma) if a_lo < a_hi else 0
            pb = _pointer(table, ps, mb) if b_lo < b_hi else 0
            if a_lo < a_hi:
                if _side(_word(ds, pa), pa, ds, q, q8, qmask, False):
                    a_lo = ma + 1
                else:
                    a_hi = ma
            if b_lo < b_hi:
                if _side(_word(ds, pb), pb, ds, q, q8, qmask, True):
                    b_lo = mb + 1
                else:
                    b_hi = mb
        total += b_lo - a_lo
    return total


@njit(cache=True, nogil=True)
def _gather(table, ps, lo, hi):
    """Pointers of the suffixes ranked [lo, hi), in suffix-array order."""
    out = np.empty(hi - lo, np.int64)
    for r in range(lo, hi):
        out[r - lo] = _pointer(table, ps, r)
    return out


@njit(cache=True, nogil=True)
def _docs_of_sorted(ptrs, starts, pages):
    """Distinct documents of sorted pointers, in order: a pointer's document is found from its page's
    (``pages[p >> _PAGE_SHIFT]``) by a short walk, and pointers inside the last document found are skipped."""
    out = np.empty(ptrs.shape[0], np.int64)
    k = 0
    n = starts.shape[0]
    end = np.int64(-1)  # where the last document found ends
    for i in range(ptrs.shape[0]):
        p = ptrs[i]
        if p < end:
            continue
        d = pages[p >> _PAGE_SHIFT]
        while d + 1 < n and starts[d + 1] <= p:
            d += 1
        out[k] = d
        k += 1
        end = starts[d + 1] if d + 1 < n else np.int64(1) << 62
    return out[:k].copy()


@njit(cache=True, nogil=True)
def _page_docs(starts, n_pages, dtype):
    """The document holding the first byte of every page (``1 << _PAGE_SHIFT`` bytes): one merge of the
    pages' first bytes with the sorted document starts (the first document for bytes before it)."""
    out = np.empty(n_pages, dtype)
    d = 0
    n = starts.shape[0]
    for k in range(n_pages):
        first = np.int64(k) << _PAGE_SHIFT
        while d + 1 < n and starts[d + 1] <= first:
            d += 1
        out[k] = d
    return out


@njit(cache=True, nogil=True)
def _docs_bitmap(table, ps, lo, hi, starts, pages):
    """Distinct documents of the suffixes ranked [lo, hi) through a bitmap over the shard's documents: for
    ranges larger than the shard's document count, where sorting the pointers would cost more."""
    n = starts.shape[0]
    seen = np.zeros(n, np.bool_)
    for r in range(lo, hi):
        p = _pointer(table, ps, r)
        d = pages[p >> _PAGE_SHIFT]
        while d + 1 < n and starts[d + 1] <= p:
            d += 1
        seen[d] = True
    return np.nonzero(seen)[0].astype(np.int64)


@dataclass(frozen=True)
class _Compiled:
    """Per index: plain views of the mapped arrays, each shard's sample, and the packed metadata."""

    tables: tuple
    dss: tuple
    words: tuple
    sptrs: tuple
    meta: np.ndarray  # (shards, 3): ptr_size, suffixes, sample step
    shards: tuple  # the index's shards, in the same order
    groups: tuple  # the same arguments in runs of shards (``_shard_groups``)
    # per shard, made at its first document lookup (a count never needs them): (document start offsets as
    # int64, the document of every (1 << _PAGE_SHIFT)-th byte)
    doc_lookup: dict = field(default_factory=dict)
    doc_lookup_lock: threading.Lock = field(default_factory=threading.Lock)

    def docs_of(self, shard: int) -> tuple[np.ndarray, np.ndarray]:
        hit = self.doc_lookup.get(shard)
        if hit is not None:
            return hit
        with self.doc_lookup_lock:
            hit = self.doc_lookup.get(shard)
            if hit is None:
                sh = self.shards[shard]
                st = _plain(sh.offsets[: sh.n_docs]).view(np.int64)
                n_pages = (self.dss[shard].shape[0] >> _PAGE_SHIFT) + 1
                pages = _page_docs(st, n_pages, np.int32 if sh.n_docs < 2**31 else np.int64)
                hit = self.doc_lookup[shard] = (st, pages)
            return hit


def _shard_groups(tables: tuple, dss: tuple, words: tuple, sptrs: tuple, meta: np.ndarray) -> tuple:
    """The search's arguments in runs of at most ``SHARD_GROUP`` shards. With more shards than that, every
    run holds exactly ``SHARD_GROUP`` (the last padded with empty shards), so the compiled search only ever
    sees tuples of a few lengths: numba compiles a function once per tuple length, and the time that takes
    grows with the length (a count over one 480-tuple compiled for ~3 minutes)."""
    n = len(tables)
    if n <= SHARD_GROUP:
        return ((tables, dss, words, sptrs, meta),)
    pad = -n % SHARD_GROUP
    empty8, empty = _readonly(np.zeros(0, np.uint8)), _readonly(np.zeros(0, np.int64))
    tables = tables + (empty8,) * pad
    dss = dss + (empty8,) * pad
    words = words + (empty.view(np.uint64),) * pad
    sptrs = sptrs + (empty,) * pad
    meta = np.concatenate([meta, np.tile(np.array([[1, 0, SAMPLE_STEP]], np.int64), (pad, 1))])
    g = SHARD_GROUP
    return tuple(
        (tables[a : a + g], dss[a : a + g], words[a : a + g], sptrs[a : a + g], meta[a : a + g])
        for a in range(0, n + pad, g)
    )


_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_CACHE_LOCK = threading.Lock()


def _readonly(a: np.ndarray) -> np.ndarray:
    """``a`` as a read-only array (the mapped files are): a tuple of arrays that differ in this is not one
    type to the compiled search."""
    if a.flags.writeable:
        a = a.view()
        a.flags.writeable = False
    return a


def _plain(a: np.ndarray) -> np.ndarray:
    return np.asarray(a).view(np.ndarray)


def _compiled(index: Index) -> _Compiled:
    hit = _CACHE.get(index)
    if hit is not None:
        return hit
    with _CACHE_LOCK:
        hit = _CACHE.get(index)
        if hit is not None:
            return hit
        tables, dss, words, sptrs, meta = [], [], [], [], []
        for sh in index.shards:
            table, ds = _readonly(_plain(sh.table)), _readonly(_plain(sh.ds))
            ps = int(sh.ptr_size) if sh.n_docs else 1
            n = table.shape[0] // ps if sh.n_docs else 0
            step = sample_step(n)
            stored = _stored_sample(sh, n, step)
            w, p = stored if stored is not None else _build_sample(table, ps, ds, step)
            w, p = _readonly(w), _readonly(p)  # one array type for every shard, stored sample or made here
            tables.append(table)
            dss.append(ds)
            words.append(w)
            sptrs.append(p)
            meta.append((ps, n, step))
        args = (tuple(tables), tuple(dss), tuple(words), tuple(sptrs), np.asarray(meta, np.int64))
        hit = _Compiled(*args, tuple(index.shards), _shard_groups(*args))
        _CACHE[index] = hit
        return hit


def find_ranges(index: Index, queries: list[bytes]) -> np.ndarray:
    """For every query (the index's token bytes, non-empty), per shard the suffix-array range [lo, hi) of
    its occurrences: shape (queries, shards, 2). What the engine's ``find`` returns as ``segment_by_shard``,
    for all queries in one compiled call."""
    c = _compiled(index)
    if not queries:
        return np.zeros((0, len(c.tables), 2), np.int64)
    if any(not q or len(q) % index.width for q in queries):
        raise ValueError("queries must be non-empty whole tokens")
    groups = c.groups
    n_shards = len(c.tables)

    def search(qbuf: np.ndarray, qoff: np.ndarray) -> np.ndarray:
        if len(groups) == 1:
            return _find_ranges(*groups[0], qbuf, qoff)
        return np.concatenate([_find_ranges(*g, qbuf, qoff) for g in groups], axis=1)[:, :n_shards]

    if len(queries) == 1:
        q = queries[0]
        return search(np.frombuffer(q, np.uint8), np.array([0, len(q)]))
    order = sorted(range(len(queries)), key=queries.__getitem__)  # neighbours share cache lines
    data = [queries[i] for i in order]
    qoff = np.zeros(len(data) + 1, np.int64)
    np.cumsum([len(q) for q in data], out=qoff[1:])
    qbuf = np.frombuffer(b"".join(data), np.uint8)
    parts = _split(len(data))
    if len(parts) == 1:
        got = search(qbuf, qoff)
    else:  # the compiled search releases the GIL: contiguous runs of the sorted batch search side by side
        with ThreadPoolExecutor(max_workers=len(parts), thread_name_prefix="freqindex-search") as pool:
            runs = pool.map(lambda ab: search(qbuf, qoff[ab[0] : ab[1] + 1]), parts)
            got = np.concatenate(list(runs))
    out = np.empty_like(got)
    out[np.asarray(order)] = got
    return out


def _split(n: int) -> list[tuple[int, int]]:
    """[a, b) runs of a sorted batch of ``n`` queries, one per search thread: whole groups of at least
    ``PARALLEL_MIN_QUERIES`` queries each, and never more than the threads this process may use."""
    runs = min(_threads(), n // PARALLEL_MIN_QUERIES)
    if runs <= 1:
        return [(0, n)]
    size = -(-n // runs)
    size += -size % _GROUP
    return [(a, min(n, a + size)) for a in range(0, n, size)]


def _threads() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def count_occurrences(index: Index, queries: list[bytes]) -> np.ndarray:
    """Occurrences of every query (token bytes, non-empty): the sizes of its ranges summed over the shards."""
    if len(queries) != 1:
        r = find_ranges(index, queries)
        return (r[:, :, 1] - r[:, :, 0]).sum(axis=1)
    q = queries[0]  # the single count: one compiled call, nothing else in numpy
    if not q or len(q) % index.width:
        raise ValueError("queries must be non-empty whole tokens")
    c = _compiled(index)
    qa = np.frombuffer(q, np.uint8)
    groups = c.groups
    if len(groups) == 1:
        return np.array([_count_one(*groups[0], qa)])

    def run(ab: tuple[int, int]) -> int:
        return sum(_count_one(*g, qa) for g in groups[ab[0] : ab[1]])

    # the compiled search releases the GIL: runs of shard groups are searched side by side, the first here
    runs = _runs_of_groups(len(groups))
    futures = [_pool().submit(run, ab) for ab in runs[1:]]
    total = run(runs[0])
    return np.array([total + sum(f.result() for f in futures)])


def _runs_of_groups(n: int) -> list[tuple[int, int]]:
    """[a, b) runs of a single count's ``n`` shard groups, one per search thread: at least
    ``PARALLEL_MIN_SHARDS`` shards each (handing work to a thread costs ~70 us on this development machine,
    as much as searching ~20 shards), and never more runs than the threads this process may use."""
    runs = min(_threads(), n * SHARD_GROUP // PARALLEL_MIN_SHARDS)
    if runs <= 1:
        return [(0, n)]
    size = -(-n // runs)
    return [(a, min(n, a + size)) for a in range(0, n, size)]


_POOL: ThreadPoolExecutor | None = None
_POOL_LOCK = threading.Lock()


def _forget_pool() -> None:
    """In a forked child: it has none of its parent's threads, and the lock may have been held by one."""
    global _POOL, _POOL_LOCK
    _POOL, _POOL_LOCK = None, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)


def _pool() -> ThreadPoolExecutor:
    """The process's search threads for single counts over many shards (made at first use: a pool per call
    would cost more than the searches)."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(
                max_workers=max(1, _threads() - 1), thread_name_prefix="freqindex-shards"
            )
        return _POOL


def range_positions(index: Index, shard: int, lo: int, hi: int) -> np.ndarray:
    """Sorted byte offsets into ``tokenized.<shard>`` of the suffixes ranked [lo, hi) in that shard."""
    c = _compiled(index)
    if hi <= lo:
        return np.zeros(0, np.int64)
    return np.sort(_gather(c.tables[shard], int(c.meta[shard, 0]), lo, hi))


def range_doc_ids(index: Index, shard: int, lo: int, hi: int) -> np.ndarray:
    """Sorted distinct local document indexes (within the shard) of the suffixes ranked [lo, hi)."""
    c = _compiled(index)
    if hi <= lo or not index.shards[shard].n_docs:
        return np.zeros(0, np.int64)
    starts, pages = c.docs_of(shard)
    ps = int(c.meta[shard, 0])
    if hi - lo > starts.size:
        return _docs_bitmap(c.tables[shard], ps, lo, hi, starts, pages)
    return _docs_of_sorted(np.sort(_gather(c.tables[shard], ps, lo, hi)), starts, pages)


def shard_tokens(index: Index, shard: int) -> np.ndarray:
    """The shard's ``tokenized`` bytes as a plain (memory-mapped) uint8 array."""
    return _compiled(index).dss[shard]


def doc_starts(index: Index, shard: int) -> np.ndarray:
    """Byte offset of every document's separator in ``tokenized.<shard>`` (int64; the tokens follow it)."""
    return _compiled(index).docs_of(shard)[0]


__all__ = [
    "find_ranges",
    "count_occurrences",
    "range_positions",
    "range_doc_ids",
    "doc_starts",
    "shard_tokens",
    "SAMPLE_STEP",
]
