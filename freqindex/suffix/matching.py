"""Batched matching statistics straight from the memory-mapped suffix arrays.

For a query string ``q`` and every start ``i``, ``ms[i]`` is the length of the longest prefix of ``q[i:]``
that occurs in the corpus. In a sorted suffix array the suffix sharing the longest prefix with a string is
one of the two neighbours of the string's insertion point, so one binary search per start gives ``ms[i]``
exactly: ``max(lcp(q[i:], SA[pos-1]), lcp(q[i:], SA[pos]))``.

All starts of all queries are searched together, one vectorized numpy step per bisection level, comparing
big-endian 64-bit words gathered from the shard's ``tokenized`` bytes (a word decides almost every step). A
search first compares ``K`` bytes; starts whose match fills the whole window are searched again for the
next ``K`` bytes, only inside the block of suffixes that share the first window (found by an upper-bound
bisection), until no match is cut short. The infini-gram engine's ``creativity`` computes the same thing
one query at a time (it starts threads per shard per call, ~150 ms per 250-byte item on four shards); this
computes 1,319 such items in a few seconds.

Byte order equals the order of the suffix arrays for every token width (infini-gram sorts the little-endian
token bytes; only token-aligned suffixes are in the table), and a byte LCP of ``b`` is ``b // width`` tokens.
"""

from __future__ import annotations

import numpy as np

from freqindex.suffix.index import Index, Shard

_ARANGE8 = np.arange(8, dtype=np.int64)


def _words_at(buf: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """Big-endian uint64 of ``buf[pos:pos+8]`` for every position (bytes past the end read as 0): one
    gather through an overlapping, byte-strided view of the buffer as 8-byte words."""
    n = buf.shape[0]
    if n < 8:
        raw = np.zeros((pos.size, 8), dtype=np.uint8)
        idx = pos[:, None] + _ARANGE8[None, :]
        inside = idx < n
        raw[inside] = buf[idx[inside]]
        return raw.view(">u8")[:, 0].astype(np.uint64)
    words = _word_view(buf)
    last = n - 8
    if pos.size and int(pos.max()) > last:
        out = np.zeros(pos.size, dtype=np.uint64)
        ok = pos <= last
        out[ok] = words[pos[ok]]
        for i in np.nonzero(~ok)[0]:
            p = int(pos[i])
            if p < n:
                out[i] = int.from_bytes(bytes(buf[p:n]) + bytes(8 - (n - p)), "big")
        return out
    return words[pos].astype(np.uint64)


_VIEWS: dict = {}  # id(buffer) -> (buffer, strided view); the buffer is kept so the id stays valid


def _word_view(buf: np.ndarray) -> np.ndarray:
    key = id(buf)
    hit = _VIEWS.get(key)
    if hit is not None and hit[0] is buf:
        return hit[1]
    view = np.ndarray((buf.shape[0] - 7,), dtype=">u8", buffer=buf, strides=(1,))
    if len(_VIEWS) > 64:
        _VIEWS.clear()
    _VIEWS[key] = (buf, view)
    return view


def _pointers_at(sh: Shard, rank: np.ndarray) -> np.ndarray:
    """Suffix-array entries at the given ranks, as byte offsets into ``tokenized``: one gather through a
    view of the table as 8-byte little-endian words at a stride of ``ptr_size``, masked to its bytes."""
    ps = sh.ptr_size
    n_sfx = sh.table.shape[0] // ps
    if ps >= 8 or n_sfx < 2 or sh.table.shape[0] < 8:
        raw = np.zeros((rank.size, 8), dtype=np.uint8)
        raw[:, :ps] = sh.table[rank[:, None] * ps + _ARANGE8[None, :ps]]
        return raw.view("<u8")[:, 0].astype(np.int64)
    n_view = (sh.table.shape[0] - 8) // ps + 1  # entries whose 8-byte read stays inside the table
    key = ("ptr", id(sh.table))
    hit = _VIEWS.get(key)
    if hit is None or hit[0] is not sh.table:
        hit = (sh.table, np.ndarray((n_view,), dtype="<u8", buffer=sh.table, strides=(ps,)))
        _VIEWS[key] = hit
    view = hit[1]
    mask = np.uint64((1 << (8 * ps)) - 1)
    if rank.size and int(rank.max()) >= n_view:
        out = np.zeros(rank.size, dtype=np.int64)
        ok = rank < n_view
        out[ok] = (view[rank[ok]] & mask).astype(np.int64)
        for i in np.nonzero(~ok)[0]:
            r = int(rank[i])
            out[i] = int.from_bytes(bytes(sh.table[r * ps : (r + 1) * ps]), "little")
        return out
    return (view[rank] & mask).astype(np.int64)


def _plain(sh: Shard) -> Shard:
    """The shard with its memory maps viewed as plain arrays (numpy's memmap indexing wrapper is slow)."""
    from dataclasses import replace

    return replace(sh, ds=np.asarray(sh.ds).view(np.ndarray), table=np.asarray(sh.table).view(np.ndarray))


def _leading_equal_bytes(x: np.ndarray) -> np.ndarray:
    """For XORs of two big-endian words: how many leading bytes are equal (8 where x == 0)."""
    out = np.full(x.shape, 8, dtype=np.int64)
    nz = x != 0
    if nz.any():
        hi_bit = np.floor(np.log2(x[nz].astype(np.float64))).astype(np.int64)
        # float64 rounding can push a value just below 2**k up to k: fix with an exact check
        hi_bit = np.where((np.uint64(1) << hi_bit.astype(np.uint64)) > x[nz], hi_bit - 1, hi_bit)
        out[nz] = (63 - hi_bit) // 8
    return out


def _bisect(
    sh: Shard,
    qwords: np.ndarray,
    skip: int,
    lo: np.ndarray,
    hi: np.ndarray,
    upper: bool,
    qlen: np.ndarray | None = None,
) -> np.ndarray:
    """Per row, the first rank in [lo, hi) whose suffix (from byte ``skip``, over the window's words)
    compares >= the query window (> with ``upper``). Every suffix in [lo, hi) shares the query's first
    ``skip`` bytes, so comparisons start there. With ``qlen`` (bytes per row) only that many bytes of the
    window are compared: a suffix that starts with the query compares equal (prefix search)."""
    lo, hi = lo.copy(), hi.copy()
    masks = None
    if qlen is not None:
        valid = np.clip(qlen[:, None] - 8 * np.arange(qwords.shape[1])[None, :], 0, 8).astype(np.uint64)
        masks = np.where(
            valid >= 8,
            np.uint64(0xFFFFFFFFFFFFFFFF),
            ~((np.uint64(1) << (np.uint64(64) - valid * np.uint64(8)) % np.uint64(64)) - np.uint64(1)),
        )
        masks = np.where(valid == 0, np.uint64(0), masks)
        qwords = qwords & masks
    n_words = qwords.shape[1]
    active = np.nonzero(lo < hi)[0]
    while active.size:
        mid = (lo[active] + hi[active]) // 2
        ptr = _pointers_at(sh, mid) + skip
        less = np.full(active.size, upper)  # go right: suffix < query (or == with ``upper``)
        undecided = np.arange(active.size)
        for j in range(n_words):
            if not undecided.size:
                break
            s = _words_at(sh.ds, ptr[undecided] + 8 * j)
            q = qwords[active[undecided], j]
            if masks is not None:
                s = s & masks[active[undecided], j]
            differ = s != q
            less[undecided[differ]] = s[differ] < q[differ]
            undecided = undecided[~differ]
        lo[active[less]] = mid[less] + 1
        hi[active[~less]] = mid[~less]
        active = active[lo[active] < hi[active]]
    return lo


def _search_shard(
    sh: Shard, qwords: np.ndarray, qlen: np.ndarray, skip: int, lo0: np.ndarray, hi0: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Byte LCP of every query window with the shard, capped at ``skip`` + the window; the search runs in
    [lo0, hi0), the block of suffixes already known to share the query's first ``skip`` bytes. Also returns
    the block of suffixes that share the whole window (for rows whose LCP fills it: the next, longer search
    runs inside it)."""
    m, n_words = qwords.shape
    ds = sh.ds
    n_sfx = sh.table.shape[0] // sh.ptr_size
    lo = _bisect(sh, qwords, skip, lo0, hi0, upper=False)
    best = np.full(m, skip, dtype=np.int64)
    for cand in (lo - 1, lo):
        ok = np.nonzero((cand >= lo0) & (cand < hi0) & (cand < n_sfx))[0]
        if not ok.size:
            continue
        ptr = _pointers_at(sh, cand[ok])
        lcp = np.full(ok.size, skip, dtype=np.int64)
        going = np.arange(ok.size)
        for j in range(n_words):
            if not going.size:
                break
            x = _words_at(ds, ptr[going] + skip + 8 * j) ^ qwords[ok[going], j]
            eq = _leading_equal_bytes(x)
            lcp[going] += eq
            going = going[eq == 8]
        avail = ds.shape[0] - ptr
        lcp = np.minimum(np.minimum(lcp, avail), qlen[ok])
        best[ok] = np.maximum(best[ok], lcp)
    # rows with an empty starting block never matched the first ``skip`` bytes here: nothing
    best[lo0 >= hi0] = 0
    full = best >= skip + n_words * 8
    hi = hi0.copy()
    if full.any():
        f = np.nonzero(full)[0]
        hi[f] = _gallop_upper(sh, qwords[f], skip, lo[f], hi0[f])
    return best, lo, hi


def _gallop_upper(sh: Shard, qwords: np.ndarray, skip: int, lo: np.ndarray, hi0: np.ndarray) -> np.ndarray:
    """Upper bound of each row's block of equal suffixes, starting at its lower bound ``lo``: probe lo+1,
    lo+2, lo+4, ... until a suffix compares greater (blocks are mostly tiny), then bisect in the last gap."""
    step = np.ones(lo.size, dtype=np.int64)
    left = lo.copy()  # known: rank < left are <= the window
    right = hi0.copy()
    active = np.arange(lo.size)
    while active.size:
        probe = np.minimum(left[active] + step[active], right[active])
        at_end = probe >= right[active]
        ptr_rows = active[~at_end]
        if ptr_rows.size:
            pr = probe[~at_end]
            ptr = _pointers_at(sh, pr) + skip
            equal = np.ones(ptr_rows.size, dtype=bool)
            for j in range(qwords.shape[1]):
                e = np.nonzero(equal)[0]
                if not e.size:
                    break
                equal[e] = _words_at(sh.ds, ptr[e] + 8 * j) == qwords[ptr_rows[e], j]
            left[ptr_rows[equal]] = pr[equal] + 1
            step[ptr_rows[equal]] *= 2
            right[ptr_rows[~equal]] = pr[~equal]
            done = ~equal
        else:
            done = np.zeros(0, dtype=bool)
        # rows that hit the end or found a greater suffix stop galloping
        keep = np.ones(active.size, dtype=bool)
        keep[at_end] = False
        keep[np.nonzero(~at_end)[0][done]] = False
        active = active[keep]
    return _bisect(sh, qwords, skip, left, right, upper=True)


def _ms_at(
    index: Index, queries: list[bytes], owner: np.ndarray, local: np.ndarray, window: int
) -> np.ndarray:
    """Byte length of the longest corpus match starting at each (query ``owner``, byte offset ``local``)."""
    lengths = np.array([len(q) for q in queries], dtype=np.int64)
    remaining = lengths[owner] - local  # bytes from the start to the end of its query
    best = np.zeros(owner.size, dtype=np.int64)
    if not owner.size:
        return best
    step = max(8, window // 8 * 8)
    max_len = int(lengths.max())
    # every query padded with zero bytes so a window never reads into the next query
    pad = ((max_len + step) // 8 + 1) * 8
    buf = np.frombuffer(b"".join(q + bytes(pad) for q in queries), dtype=np.uint8)
    qbase = np.concatenate([[0], np.cumsum(lengths + pad)[:-1]]).astype(np.int64)
    for sh in index.shards:
        if not sh.n_docs:
            continue
        sh = _plain(sh)
        n_sfx = sh.table.shape[0] // sh.ptr_size
        rows = np.arange(owner.size)
        lo = np.zeros(rows.size, dtype=np.int64)
        hi = np.full(rows.size, n_sfx, dtype=np.int64)
        skip = 0
        while rows.size:
            # the window q[start + skip : start + skip + step]; bytes past a query's end read as zeros and the
            # LCP is capped at the query's true length
            pos = qbase[owner[rows]] + local[rows] + skip
            qwords = np.stack([_words_at(buf, pos + 8 * j) for j in range(step // 8)], axis=1)
            qlen = np.minimum(remaining[rows], skip + step)
            lcp, lo, hi = _search_shard(sh, qwords, qlen, skip, lo, hi)
            best[rows] = np.maximum(best[rows], lcp)
            cont = (lcp >= skip + step) & (remaining[rows] > skip + step)
            rows, lo, hi = rows[cont], lo[cont], hi[cont]
            skip += step
    _VIEWS.clear()
    return best


def _check(index: Index, queries: list[bytes]) -> np.ndarray:
    lengths = np.array([len(q) for q in queries], dtype=np.int64)
    if (lengths % index.width).any():
        raise ValueError("query bytes are not a whole number of tokens")
    return lengths


def matching_statistics_batch(index: Index, queries: list[bytes], window: int = 64) -> list[np.ndarray]:
    """``ms`` in tokens for every token start of every query (each given as the index's token bytes)."""
    if not queries:
        return []
    w = index.width
    lengths = _check(index, queries)
    starts_per = [np.arange(0, n, w, dtype=np.int64) for n in lengths]
    owner = np.concatenate([np.full(s.size, k, dtype=np.int64) for k, s in enumerate(starts_per)])
    local = np.concatenate(starts_per)
    best = _ms_at(index, queries, owner, local, window) // w
    return np.split(best, np.cumsum([s.size for s in starts_per])[:-1])


def matching_statistics_at(
    index: Index, queries: list[bytes], starts: list[np.ndarray], window: int = 64
) -> list[np.ndarray]:
    """``ms`` in tokens at chosen token starts of each query (e.g. word starts only): the same search as
    :func:`matching_statistics_batch`, for the starts given."""
    if not queries:
        return []
    w = index.width
    _check(index, queries)
    starts = [np.asarray(s, dtype=np.int64) for s in starts]
    owner = np.concatenate([np.full(s.size, k, dtype=np.int64) for k, s in enumerate(starts)])
    local = np.concatenate(starts) * w if starts else np.zeros(0, dtype=np.int64)
    best = _ms_at(index, queries, owner, local, window) // w
    return np.split(best, np.cumsum([s.size for s in starts])[:-1])


def longest_match_batch(
    index: Index, queries: list[bytes], stride: int = 8, window: int = 64
) -> list[tuple[int, int]]:
    """(length, start) in tokens of each query's longest corpus match, exactly, without the matching
    statistics of every start: ``ms`` at every ``stride``-th start gives a lower bound ``LB``; a start ``i``
    just before a sampled start ``p`` can only reach it when ``ms[p] + (p - i) >= LB`` (since
    ``ms[i] <= ms[p] + (p - i)``), and only those starts are searched. An item the corpus holds whole is
    settled by its first start."""
    if not queries:
        return []
    w = index.width
    lengths = _check(index, queries) // w  # tokens
    best = np.zeros(len(queries), dtype=np.int64)
    start = np.zeros(len(queries), dtype=np.int64)
    # first the whole item from its first token: an item the corpus holds whole is settled at once
    nonempty = np.nonzero(lengths > 0)[0]
    first = _ms_at(index, queries, nonempty, np.zeros(nonempty.size, dtype=np.int64), window) // w
    best[nonempty] = first
    whole = set(nonempty[first >= lengths[nonempty]].tolist())
    own, loc = [], []
    for k, n in enumerate(lengths.tolist()):
        if k in whole or not n:
            continue
        pts = list(range(stride, n, stride))
        if n > 1 and (not pts or pts[-1] != n - 1):
            pts.append(n - 1)  # the last start closes the last gap
        own += [k] * len(pts)
        loc += pts
    owner, local = np.asarray(own, dtype=np.int64), np.asarray(loc, dtype=np.int64)
    ms = _ms_at(index, queries, owner, local * w, window) // w
    # the sampled starts (0 included) per query: longest first, then earliest
    owner = np.concatenate([nonempty, owner])
    local = np.concatenate([np.zeros(nonempty.size, dtype=np.int64), local])
    ms = np.concatenate([first, ms])
    keep = (
        ~np.isin(owner, np.fromiter(whole, dtype=np.int64, count=len(whole)))
        if whole
        else np.ones(owner.size, bool)
    )
    owner, local, ms = owner[keep], local[keep], ms[keep]
    order = np.lexsort((local, -ms, owner))
    if order.size:
        firsts = order[np.r_[True, owner[order][1:] != owner[order][:-1]]]
        best[owner[firsts]] = ms[firsts]
        start[owner[firsts]] = local[firsts]
    order = np.lexsort((local, owner))  # walk the samples of each query left to right
    owner, local, ms = owner[order], local[order], ms[order]
    # candidates: starts strictly between two sampled starts whose bound can beat the lower bound
    c_own, c_loc = [], []
    prev_q, prev_p = -1, -1
    for q, p, m in zip(owner.tolist(), local.tolist(), ms.tolist()):
        lo = prev_p + 1 if q == prev_q else 0
        for i in range(
            lo, min(p, p + m - int(best[q]) + 1)
        ):  # the i with m + (p - i) >= best (ties: earliest)
            c_own.append(q)
            c_loc.append(i)
        prev_q, prev_p = q, p
    if c_own:
        co, cl = np.asarray(c_own, dtype=np.int64), np.asarray(c_loc, dtype=np.int64)
        cm = _ms_at(index, queries, co, cl * w, window) // w
        for q, i, m in zip(co.tolist(), cl.tolist(), cm.tolist()):
            if m > best[q] or (m == best[q] and i < start[q]):
                best[q], start[q] = m, i
    return list(zip(best.tolist(), start.tolist()))


def occurrences_batch(
    index: Index, ranges: list[list[tuple[int, int]]]
) -> list[tuple[np.ndarray, np.ndarray]]:
    """For every query's suffix-array ranges (one [lo, hi) per shard, as :func:`find_batch` returns them),
    the global document id and the token offset inside that document of each occurrence: one vectorized
    gather of suffix-array entries and one search of the document offsets per shard, for all queries."""
    out_doc: list[list[np.ndarray]] = [[] for _ in ranges]
    out_off: list[list[np.ndarray]] = [[] for _ in ranges]
    w = index.width
    for s, sh in enumerate(index.shards):
        if not ranges or not sh.n_docs:
            continue
        lo = np.asarray([r[s][0] for r in ranges], dtype=np.int64)
        n = np.asarray([r[s][1] - r[s][0] for r in ranges], dtype=np.int64)
        total = int(n.sum())
        if not total:
            continue
        ends = np.cumsum(n)
        ranks = np.repeat(lo - (ends - n), n) + np.arange(total, dtype=np.int64)
        ptrs = _pointers_at(_plain(sh), ranks)
        starts = np.asarray(sh.offsets, dtype=np.int64)
        local = np.searchsorted(starts, ptrs, side="right") - 1
        doc = local + sh.doc_start
        off = (ptrs - starts[local] - w) // w
        for q, (a, b) in enumerate(zip((ends - n).tolist(), ends.tolist())):
            if b > a:
                out_doc[q].append(doc[a:b])
                out_off[q].append(off[a:b])
    _VIEWS.clear()
    empty = np.zeros(0, dtype=np.int64)
    return [
        (np.concatenate(d) if d else empty, np.concatenate(o) if o else empty)
        for d, o in zip(out_doc, out_off)
    ]


def find_batch(index: Index, queries: list[bytes]) -> list[list[tuple[int, int]]]:
    """For every query (token bytes), per shard the suffix-array range [lo, hi) of its occurrences: what the
    engine's ``find`` returns as ``segment_by_shard``, for all queries in two vectorized bisections."""
    lengths = _check(index, queries)
    out: list[list[tuple[int, int]]] = [[] for _ in queries]
    if not queries:
        return out
    if (lengths == 0).any():
        raise ValueError("empty query")
    n_words = int(-(-lengths.max() // 8))
    pad = n_words * 8
    buf = np.frombuffer(b"".join(q + bytes(pad) for q in queries), dtype=np.uint8)
    qbase = np.concatenate([[0], np.cumsum(lengths + pad)[:-1]]).astype(np.int64)
    qwords = np.stack([_words_at(buf, qbase + 8 * j) for j in range(n_words)], axis=1)
    for sh in index.shards:
        n_sfx = sh.table.shape[0] // sh.ptr_size if sh.n_docs else 0
        if not n_sfx:
            for o in out:
                o.append((0, 0))
            continue
        psh = _plain(sh)
        zeros = np.zeros(len(queries), dtype=np.int64)
        top = np.full(len(queries), n_sfx, dtype=np.int64)
        lo = _bisect(psh, qwords, 0, zeros, top, upper=False, qlen=lengths)
        hi = _bisect(psh, qwords, 0, lo, top, upper=True, qlen=lengths)
        for o, a, b in zip(out, lo.tolist(), hi.tolist()):
            o.append((a, b))
    _VIEWS.clear()
    return out


__all__ = [
    "matching_statistics_batch",
    "matching_statistics_at",
    "longest_match_batch",
    "find_batch",
    "occurrences_batch",
]
