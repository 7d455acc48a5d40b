"""Neighbours whose cost follows the eval set: candidate documents from the suffix arrays, then embeddings of
only their windows.

**Candidates.** For every item, the documents that share its informative spans, found exactly in the suffix
arrays for all items at once (one batched search, :func:`freqindex.suffix.matching.find_batch`):

- its words and adjacent word pairs as whole words (the item's own tokens and token pairs on an index built
  with a Hugging Face tokenizer);
- its long matches: at every word start, the longest span the corpus holds (matching statistics), kept when
  it spans at least ``MIN_SPAN_WORDS`` whole words and is not inside the previous one.

Each term weighs ``idf = ln(1 + (N - df + 0.5) / (df + 0.5))`` (BM25's idf; N documents, df the documents
holding the term), so a rare word or a long shared span counts much more than a common word. Terms are taken
rarest first until the item has read ``occurrence_budget`` suffix-array entries: the cost per item is bounded
whatever the corpus size, and the terms left out are the most common ones, which weigh least. A document
scores the best sum of the weights of distinct terms that fall inside one *region* of the size of the item
(at least ``REGION_TOKENS`` index tokens): the words of an item copied or paraphrased into a long document
sit together, while the same words scattered over a long document do not. The top ``m`` documents by score
are the item's candidates, each with its best region.

**Choosing the M.** When the embedding model has a fast tokenizer and an input embedding matrix (the
sentence-transformers models), the first pass keeps ``RERANK_POOL`` documents per item and
:class:`TokenVectorRanker` chooses the ``m``: the first pass's best ``LEXICAL_KEEP`` (copies and close
paraphrases), then the nearest to the item by the cosine of idf-weighted means of the model's own input
token vectors over each document's best region (plus ``RERANK_CONTEXT_CHARS`` on each side). This is the
model without its transformer layers: it costs a tokenization and a sparse product, not an embedding, and it
follows what the model finds similar far better than the rarest shared words do (benchmarks/README.md:
recall@10 against the exhaustive mode at M = 32 rose from 0.31 to 0.47 on the 10 MB benchmark corpus). Without it
(open_clip), the first pass keeps ``RESCORE_FACTOR * m`` documents and ``_rescore`` orders them on their
text.

**Windows.** A candidate document gets windows of the grid that ``freqindex embed`` would give it (the same
sizes, strides and model: :func:`freqindex.vectors.embedders.windows`), but only ``WINDOWS_PER_SIZE`` per
window size: of the ``WINDOW_POOL`` that overlap its best region most (ties: the nearest centre), those the
ranker finds nearest to the item (without a ranker: those that overlap most). A short document is one
window. The vectors come from :class:`freqindex.vectors.cache.EmbeddingCache` when it has them, else they
are embedded (one call for all items, longest first) and stored. So a reported similarity is the cosine of
the item and a window that the exhaustive mode also embeds: the two modes agree on it (tested to 1e-5).

**What it can miss.** A document similar in meaning but sharing no informative word with the item (a
paraphrase in other words) is never a candidate; the README reports how often that happens.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from freqindex.errors import UsageError
from freqindex.suffix.index import Index

DEFAULT_CANDIDATES = 32  # candidate documents per item (--candidates); see the README for how it was chosen
MAX_CANDIDATES = 1000
OCCURRENCE_BUDGET = 20_000  # suffix-array entries read per item, rarest terms first
MIN_SPAN_WORDS = 3  # a long match counts as a term of its own from this many whole words
REGION_TOKENS = {1: 128, 2: 32, 4: 32}  # region size floor in index tokens (the region is the item's size)
ITEM_CHUNK = 256  # items whose terms are gathered together (bounds memory)
RESCORE_FACTOR, RESCORE_MIN = 4, 64  # first-pass documents per item that are scored again on their text
RERANK_POOL = 256  # first-pass documents per item that the model's token vectors order (when it has them)
RERANK_CONTEXT_CHARS = 100  # text read on each side of a pooled document's best region for the re-ranking
LEXICAL_KEEP = 2  # the first pass's best documents stay candidates whatever the re-ranking says
WINDOWS_PER_SIZE = 2  # grid windows embedded per candidate document and window size
WINDOW_POOL = 4  # with a ranker: the windows nearest the region per size that it chooses the 2 from


@dataclass(frozen=True)
class Candidate:
    """A candidate document of an item: its score and best region (token offsets in the stored document)."""

    doc_id: int
    score: float
    region_start: int
    region_end: int


# --- terms ----------------------------------------------------------------------------------------------


def _encode(index: Index, text: str) -> bytes:
    return index.tokenizer.encode(text)


@dataclass
class ItemTerms:
    """An item's terms as token bytes (what the suffix arrays are searched with)."""

    words: list[bytes]
    pairs: list[bytes]
    spans: list[bytes]

    def all(self) -> list[bytes]:
        return list(dict.fromkeys(t for t in self.words + self.pairs + self.spans if t))


def item_terms(index: Index, stored: str, data: bytes, ms_at_words: np.ndarray | None) -> ItemTerms:
    """The item's words, adjacent word pairs and long matches (see the module docstring).

    ``stored`` is the item in the index's stored form and ``data`` its tokens; ``ms_at_words`` the matching
    statistics at each word start (bytes indexes) or each token (others)."""
    w = index.width
    spans: list[bytes] = []
    if w == 1:
        words = stored.split()
        pad = index.normalizer.pad

        def term(ws: list[str]) -> bytes:
            t = " ".join(ws)
            return _encode(index, f" {t} " if pad else t)

        word_terms = [term([x]) for x in words]
        pair_terms = [term(words[i : i + 2]) for i in range(len(words) - 1)]
        if ms_at_words is not None:
            starts = _word_starts(data)
            prev_end = -1
            for s, L in zip(starts.tolist(), ms_at_words.tolist()):
                span = data[s : s + L]
                cut = span.rfind(b" ")  # end on a word boundary: the span is whole words
                if cut <= 0:
                    continue
                span = span[: cut + 1]
                if span.count(b" ") - 1 < MIN_SPAN_WORDS or s + len(span) <= prev_end:
                    continue
                prev_end = s + len(span)
                spans.append(span)
    else:
        ids = np.frombuffer(data, dtype=index.dtype)
        word_terms = [ids[i : i + 1].tobytes() for i in range(len(ids))]
        pair_terms = [ids[i : i + 2].tobytes() for i in range(len(ids) - 1)]
        if ms_at_words is not None:
            prev_end = -1
            for s, L in enumerate(ms_at_words.tolist()):
                if L >= MIN_SPAN_WORDS + 1 and s + L > prev_end:
                    prev_end = s + L
                    spans.append(ids[s : s + L].tobytes())
    dedup = lambda ts: list(dict.fromkeys(t for t in ts if t))  # noqa: E731
    return ItemTerms(dedup(word_terms), dedup(pair_terms), dedup(spans))


def _word_starts(data: bytes) -> np.ndarray:
    """Byte offsets of the space before each word of a stored (space-separated) text, or of a word's first
    byte when no space precedes it."""
    b = np.frombuffer(data, dtype=np.uint8)
    space = b == 0x20
    nxt = np.zeros_like(space)
    nxt[:-1] = ~space[1:]
    starts = np.nonzero(space & nxt)[0]
    if b.size and not space[0]:
        starts = np.concatenate([[0], starts])
    return starts.astype(np.int64)


# --- hits -----------------------------------------------------------------------------------------------


@dataclass
class _Hits:
    doc: np.ndarray  # global doc ids
    off: np.ndarray  # token offset inside the stored document


def idf(n_docs: int, occurrences: int) -> float:
    """BM25's idf, with a term's occurrences standing in for its document frequency (an upper bound of it,
    known from the suffix-array range alone: no document look-ups for common terms)."""
    return math.log(1.0 + (n_docs - occurrences + 0.5) / (occurrences + 0.5))


def _score_item(hits: list[tuple[_Hits, float, int]], m: int, region: int) -> list[Candidate]:
    """Top ``m`` documents by their best region's sum of term weights (``hits``: per term, its hits, weight
    and length in tokens). A term counts at most once per region-sized stretch of a document."""
    if not hits:
        return []
    doc = np.concatenate([h.doc for h, _, _ in hits])
    if not doc.size:
        return []
    off = np.concatenate([h.off for h, _, _ in hits])
    sizes = [h.doc.size for h, _, _ in hits]
    tid = np.repeat(np.arange(len(hits), dtype=np.int64), sizes)
    weights = np.asarray([w_ for _, w_, _ in hits], dtype=np.float64)
    lengths = np.asarray([n for _, _, n in hits], dtype=np.int64)
    udoc, drank = np.unique(doc, return_inverse=True)
    # one hit per (term, document, region-sized bucket): a word repeated through a paragraph counts once
    bucket = off // region
    key = (drank * len(hits) + tid) * (int(bucket.max()) + 1) + bucket
    _, first = np.unique(key, return_index=True)
    drank, off, tid = drank[first], off[first], tid[first]
    # preselect documents by the sum over their distinct terms, then score regions of those only
    dt = np.unique(drank * len(hits) + tid)
    doc_score = np.bincount(dt // len(hits), weights=weights[dt % len(hits)], minlength=udoc.size)
    pre = max(2 * m, 64)
    if udoc.size > pre:
        top = np.argpartition(-doc_score, pre - 1)[:pre]
        sel = np.isin(drank, top)
        drank, off, tid = drank[sel], off[sel], tid[sel]
    order = np.lexsort((off, drank))
    drank, off, tid = drank[order], off[order], tid[order]
    wt, tl = weights[tid], lengths[tid]
    pos = drank * (int(off.max()) + region + 1) + off
    j = np.searchsorted(pos, pos + region, side="left")  # the region starting at hit i: hits [i, j)
    csum = np.concatenate([[0.0], np.cumsum(wt)])
    region_score = csum[j] - csum[: drank.size]
    region_end = np.maximum(off[j - 1] + tl[j - 1], off + tl)
    best = np.lexsort((-region_score, drank))  # per document, its best region first
    firsts = best[np.r_[True, drank[best][1:] != drank[best][:-1]]]
    ranked = firsts[np.lexsort((udoc[drank[firsts]], -region_score[firsts]))][:m]
    return [
        Candidate(int(udoc[drank[i]]), float(region_score[i]), int(off[i]), int(region_end[i]))
        for i in ranked.tolist()
    ]


def _rescore(
    index: Index, cands: list[Candidate], terms: ItemTerms, weight: dict[bytes, float], region: int, m: int
) -> list[Candidate]:
    """Score each candidate again on the text of its region (``region`` tokens around the first pass's
    best region): the weights of the item's words found there (common words included, which the first
    pass leaves out to bound its cost) plus those of its word pairs found in order."""
    w = index.width
    if w == 1:
        word_w = {t.strip(b" "): weight.get(t, 0.0) for t in terms.words}
        pair_w = {t: weight.get(t, 0.0) for t in terms.pairs}
    else:
        dt = index.dtype
        word_w = {int(np.frombuffer(t, dt)[0]): weight.get(t, 0.0) for t in terms.words}
        pair_w = {tuple(np.frombuffer(t, dt).tolist()): weight.get(t, 0.0) for t in terms.pairs}
    out = []
    for c in cands:
        sh, ix = index.doc_location(c.doc_id)
        a, b = sh.doc_bounds(ix, w)
        centre = (c.region_start + c.region_end) // 2
        lo = max(0, centre - region // 2)
        hi = min((b - a) // w, lo + region)
        raw = bytes(sh.ds[a + lo * w : a + hi * w])
        if w == 1:
            present = set(raw.split())
            padded = b" " + raw + b" "
            score = sum(v for t, v in word_w.items() if t in present)
            score += sum(v for t, v in pair_w.items() if t in padded)
        else:
            ids = np.frombuffer(raw, index.dtype).tolist()
            present_ids, bigrams = set(ids), set(zip(ids[:-1], ids[1:]))
            score = sum(v for t, v in word_w.items() if t in present_ids)
            score += sum(v for t, v in pair_w.items() if t in bigrams)
        out.append(Candidate(c.doc_id, float(score), c.region_start, c.region_end))
    out.sort(key=lambda c: (-c.score, c.doc_id))
    return out[:m]


@dataclass
class _Selected:
    terms: ItemTerms
    chosen: list[bytes]  # the terms whose occurrences are read, rarest first
    tokens: int  # the item's length in index tokens


def select_terms(
    index: Index, texts: list[str], occurrence_budget: int = OCCURRENCE_BUDGET
) -> tuple[list[_Selected], dict[bytes, list[tuple[int, int]]], dict[bytes, float]]:
    """Every item's terms and the informative ones it reads (rarest first within ``occurrence_budget``
    suffix-array entries), with the suffix-array ranges and the weight of every term: one batched
    matching-statistics search and one batched range search for all items."""
    from freqindex.contamination.metrics import item_bytes, item_text
    from freqindex.suffix.matching import find_batch, matching_statistics_at

    n_docs = max(1, index.total_docs)
    its = [item_text(index, t) for t in texts]
    datas = [item_bytes(index, it) for it in its]
    if index.width == 1:
        starts = [_word_starts(d) for d in datas]
    else:
        starts = [np.arange(len(d) // index.width, dtype=np.int64) for d in datas]
    ms = matching_statistics_at(index, datas, starts)
    per_item = [item_terms(index, it.text, d, s) for it, d, s in zip(its, datas, ms)]
    distinct = list(dict.fromkeys(t for ts in per_item for t in ts.all()))
    ranges = dict(zip(distinct, find_batch(index, distinct))) if distinct else {}
    occ = {t: sum(hi - lo for lo, hi in r) for t, r in ranges.items()}
    weight = {t: idf(n_docs, o) for t, o in occ.items() if o > 0}
    out = []
    for d, ts in zip(datas, per_item):
        keep, spent = [], 0
        for t in sorted((t for t in ts.all() if occ[t] > 0), key=lambda t: (-weight[t], t)):
            if spent + occ[t] > occurrence_budget:
                break
            spent += occ[t]
            keep.append(t)
        out.append(_Selected(ts, keep, len(d) // index.width))
    return out, ranges, weight


class TokenVectorRanker:
    """Orders a pool of candidate documents by how close their best region is to the item in a cheap
    stand-in of the embedding model: the idf-weighted mean of the model's own input token vectors (no
    transformer layers), idf taken over the regions being ranked. Measured on the 10 MB benchmark corpus
    (benchmarks/README.md): choosing the 32 candidates out of 256 this way instead of by the suffix-array
    score raised recall@10 against the exhaustive mode from 0.31 to 0.47, at the same embedding cost."""

    def __init__(self, tokenizer, matrix: np.ndarray, special: np.ndarray):
        self.tokenizer, self.matrix, self.special = tokenizer, matrix, special

    @classmethod
    def of(cls, emb) -> TokenVectorRanker | None:
        """The ranker of an embedder (``Embedder.token_table``), or None when the model offers none."""
        table = emb.token_table()
        return cls(*table) if table is not None else None

    def vectors(self, regions: list[str], queries: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Unit vectors of the regions and of the queries (idf over the regions)."""
        from scipy import sparse

        encs = self.tokenizer.encode_batch(regions + queries, add_special_tokens=False)
        lens = np.fromiter((len(e.ids) for e in encs), np.int64, len(encs))
        ids = np.fromiter((i for e in encs for i in e.ids), np.int64, int(lens.sum()))
        vocab = self.matrix.shape[0]
        keep = ~np.isin(ids, self.special) & (ids >= 0) & (ids < vocab)
        owner = np.repeat(np.arange(len(encs), dtype=np.int64), lens)[keep]
        ids = ids[keep]
        nr = len(regions)
        # term counts per text (duplicates summed), then each region's distinct tokens give the df
        x = sparse.csr_matrix(
            (np.ones(ids.size, np.float32), (owner, ids)), shape=(len(encs), vocab), dtype=np.float32
        )
        df = np.bincount(x.indices[: x.indptr[nr]], minlength=vocab)
        idf_w = np.log1p((nr - df + 0.5) / (df + 0.5)).astype(np.float32)
        x.data *= idf_w[x.indices]
        v = np.asarray(x @ self.matrix, dtype=np.float32)
        v /= np.linalg.norm(v, axis=1, keepdims=True) + 1e-9
        return v[:nr], v[nr:]

    def order(
        self, index: Index, texts: list[str], pools: list[list[Candidate]], m: int
    ) -> list[list[Candidate]]:
        """The ``m`` candidates of each pool: its first ``LEXICAL_KEEP`` (the documents sharing the most of the
        item's rarest terms: copies and close paraphrases, which the stand-in can rank below documents on
        the same theme), then the nearest to the item in the stand-in; ties keep the pool order."""
        from freqindex.contamination.metrics import item_text

        keys = list(dict.fromkeys((c.doc_id, c.region_start, c.region_end) for p in pools for c in p))
        regions, by_doc = [], {}
        for d, a, b in keys:
            if d not in by_doc:
                by_doc[d] = _stored(index, d)
            raw, text = by_doc[d]
            ca, cb = _region_chars(index, raw, text, a, b)
            regions.append(text[max(0, ca - RERANK_CONTEXT_CHARS) : cb + RERANK_CONTEXT_CHARS])
        rv, qv = self.vectors(regions, [item_text(index, t).text for t in texts])
        row = {k: i for i, k in enumerate(keys)}
        out = []
        for q, pool in zip(qv, pools):
            if not pool:
                out.append([])
                continue
            sims = rv[[row[(c.doc_id, c.region_start, c.region_end)] for c in pool]] @ q
            keep = min(LEXICAL_KEEP, m)
            rest = np.argsort(-sims[keep:], kind="stable")[: m - keep]
            out.append(pool[:keep] + [pool[keep + j] for j in rest.tolist()])
        return out


def find_candidates(
    index: Index,
    texts: list[str],
    m: int = DEFAULT_CANDIDATES,
    occurrence_budget: int = OCCURRENCE_BUDGET,
    ranker: TokenVectorRanker | None = None,
) -> list[list[Candidate]]:
    """The top ``m`` candidate documents of every text (an eval item), best first (module docstring).

    With a ``ranker``, the first pass keeps ``max(m, RERANK_POOL)`` documents per item and the ranker
    chooses the ``m``; without one, the first pass keeps ``RESCORE_FACTOR * m`` and they are scored again on
    their text (``_rescore``)."""
    from freqindex.suffix.matching import occurrences_batch

    if not 1 <= m <= MAX_CANDIDATES:
        raise UsageError(f"--candidates must be between 1 and {MAX_CANDIDATES}")
    out: list[list[Candidate]] = []
    for a in range(0, len(texts), ITEM_CHUNK):
        chunk = texts[a : a + ITEM_CHUNK]
        selected, ranges, weight = select_terms(index, chunk, occurrence_budget)
        needed = list(dict.fromkeys(t for sel in selected for t in sel.chosen))
        gathered = {
            t: _Hits(*h) for t, h in zip(needed, occurrences_batch(index, [ranges[t] for t in needed]))
        }
        pools = []
        for sel in selected:
            region = max(sel.tokens, REGION_TOKENS.get(index.width, 128))
            hits = [(gathered[t], weight[t], len(t) // index.width) for t in sel.chosen]
            if ranker is not None:
                pools.append(_score_item(hits, max(m, RERANK_POOL), region))
            else:
                first = _score_item(hits, max(RESCORE_FACTOR * m, RESCORE_MIN), region)
                out.append(_rescore(index, first, sel.terms, weight, region, m))
        if ranker is not None:
            out += ranker.order(index, chunk, pools, m)
    return out


# --- windows and neighbours -----------------------------------------------------------------------------


def _stored(index: Index, doc_id: int) -> tuple[bytes, str]:
    """A document's token bytes as stored and their decoded text (what regions and windows index into)."""
    sh, ix = index.doc_location(doc_id)
    a, b = sh.doc_bounds(ix, index.width)
    raw = bytes(sh.ds[a:b])
    return raw, index.tokenizer.decode(raw)


def _region_chars(index: Index, raw: bytes, text: str, a: int, b: int) -> tuple[int, int]:
    """Character range in the decoded stored document of the token range [a, b)."""
    w = index.width
    if w == 1:
        return len(raw[:a].decode("utf-8", errors="ignore")), len(raw[:b].decode("utf-8", errors="ignore"))
    dec = index.tokenizer.decode
    lo = len(dec(raw[: a * w]))
    return min(lo, len(text)), min(len(dec(raw[: b * w])), len(text))


def window_choices(
    spans: list[tuple[int, int]],
    sizes: tuple[int, ...],
    stride: int | None,
    region: tuple[int, int],
    limit: int = WINDOWS_PER_SIZE,
) -> list[list[tuple[int, int]]]:
    """Per window size, up to ``limit`` windows of the exhaustive grid, those that overlap ``region``
    (characters) most first, ties to the nearest centre (the first window of a size always, so a document
    shorter than the region still gets one)."""
    from freqindex.vectors.embedders import windows

    rc = (region[0] + region[1]) / 2

    def overlap(x):
        return min(x[1], region[1]) - max(x[0], region[0])

    out = []
    for size in sizes:
        ws = windows(spans, size, stride or max(1, size // 2))
        if not ws:
            continue
        ranked = sorted(ws, key=lambda x: (-overlap(x), abs((x[0] + x[1]) / 2 - rc)))
        out.append([x for k, x in enumerate(ranked[:limit]) if k == 0 or overlap(x) > 0])
    return out


def select_windows(
    spans: list[tuple[int, int]],
    sizes: tuple[int, ...],
    stride: int | None,
    region: tuple[int, int],
) -> list[tuple[int, int]]:
    """Per window size, the ``WINDOWS_PER_SIZE`` windows of the exhaustive grid that overlap ``region``
    (characters) most, ties to the nearest centre; deduplicated, in order."""
    return sorted({w for ws in window_choices(spans, sizes, stride, region) for w in ws})


def _choices_of(index: Index, c: Candidate, raws, texts, spans, sizes, stride, limit) -> list:
    """``window_choices`` of one candidate around its best region (token offsets -> characters)."""
    region = _region_chars(index, raws[c.doc_id], texts[c.doc_id], c.region_start, c.region_end)
    return window_choices(spans[c.doc_id], sizes, stride, region, limit)


def _windows_by_ranker(ranker: TokenVectorRanker, queries: list[str], choices: list, texts: dict) -> list:
    """``choices`` (per item, per candidate, per window size: windows nearest the region first) with each
    size's windows ordered by the ranker's similarity to the item, the nearest to the region on a tie: the
    region is the item's size, and of the windows around it the one holding the item's words counts most."""
    keys = list(
        dict.fromkeys((d, w) for per_cand in choices for d, sizes in per_cand for ws in sizes for w in ws)
    )
    if not keys:
        return choices
    rv, qv = ranker.vectors([texts[d][w[0] : w[1]] for d, w in keys], queries)
    row = {k: i for i, k in enumerate(keys)}
    out = []
    for q, per_cand in zip(qv, choices):
        out.append(
            [
                (d, [sorted(ws, key=lambda w, d=d: -float(rv[row[(d, w)]] @ q)) for ws in sizes])
                for d, sizes in per_cand
            ]
        )
    return out


def _tokens_in(spans: list[tuple[int, int]], window: tuple[int, int]) -> int:
    import bisect

    starts = [a for a, _ in spans]
    return bisect.bisect_left(starts, window[1]) - bisect.bisect_left(starts, window[0])


def top_rows(
    index: Index,
    item_id: str,
    hits,
    k: int,
    mode: str,
    snippet_chars: int,
    text_of,
) -> list[dict]:
    """The neighbour rows of one item: ``hits`` are (doc_id, similarity, char_start, char_end) of windows;
    each document's best window, the ``k`` best documents (ties by doc_id), ranked from 1. With
    ``snippet_chars`` the rows carry the external id and the window's text (``text_of(doc_id)``)."""
    best: dict[int, tuple[float, int, int]] = {}
    for d, s, a, b in hits:
        if d not in best or s > best[d][0]:
            best[d] = (s, a, b)
    rows = []
    for rank, (d, (s, a, b)) in enumerate(sorted(best.items(), key=lambda kv: (-kv[1][0], kv[0]))[:k], 1):
        row = {
            "eval": None,
            "item_id": item_id,
            "rank": rank,
            "doc_id": d,
            "ext_id": None,
            "char_start": int(a),
            "char_end": int(b),
            "similarity": float(s),
            "snippet": None,
            "mode": mode,
        }
        if snippet_chars:  # ids and similarities only (the analysis path): no document reads
            sh, ix = index.doc_location(d)
            row["ext_id"] = sh.meta(ix).get("id")
            row["snippet"] = " ".join(text_of(d)[int(a) : int(b)].split())[:snippet_chars]
        rows.append(row)
    return rows


def candidate_neighbors(
    index: Index,
    items: list,
    queries: list[str],
    k: int,
    m: int,
    emb,
    sizes: tuple[int, ...],
    stride: int | None,
    cache,
    snippet_chars: int = 240,
) -> tuple[list[dict], dict]:
    """Top-``k`` documents per item among its candidates: (rows as in ``neighbors``, statistics).

    ``queries`` are the items' texts as embedded (normalized), ``emb`` the embedder, ``sizes``/``stride``
    the windows, ``cache`` an EmbeddingCache."""
    import time

    t0 = time.monotonic()
    ranker = TokenVectorRanker.of(emb)
    cands = find_candidates(index, [it.text for it in items], m, ranker=ranker)
    t_cand = time.monotonic() - t0
    docs = sorted({c.doc_id for cs in cands for c in cs})
    raws, texts = {}, {}
    for d in docs:
        raws[d], texts[d] = _stored(index, d)
    spans = dict(zip(docs, emb.token_spans([texts[d] for d in docs]))) if docs else {}
    limit = WINDOW_POOL if ranker is not None else WINDOWS_PER_SIZE
    choices = [
        [(c.doc_id, _choices_of(index, c, raws, texts, spans, sizes, stride, limit)) for c in cs]
        for cs in cands
    ]
    if ranker is not None:
        choices = _windows_by_ranker(ranker, queries, choices, texts)
    per_item: list[list[tuple[int, tuple[int, int]]]] = []
    n_tokens: dict[tuple[int, int, int], int] = {}
    for per_cand in choices:
        wins = []
        for d, per_size in per_cand:
            for w in sorted({w for ws in per_size for w in ws[:WINDOWS_PER_SIZE]}):
                wins.append((d, w))
                n_tokens.setdefault((d, w[0], w[1]), _tokens_in(spans[d], w))
        per_item.append(wins)
    keys = list(dict.fromkeys((d, w[0], w[1]) for wins in per_item for d, w in wins))
    found, vecs = cache.lookup(keys)
    missing = [k_ for k_, f in zip(keys, found) if not f]
    t1 = time.monotonic()
    new = (
        emb.encode([texts[d][a:b] for d, a, b in missing]) if missing else np.zeros((0, emb.dim), np.float32)
    )
    cache.add(missing, new)
    t_embed = time.monotonic() - t1
    row_of = {k_: i for i, k_ in enumerate(k_ for k_, f in zip(keys, found) if f)}
    allv = np.concatenate([vecs, new]) if len(missing) else vecs
    for i, k_ in enumerate(missing):
        row_of[k_] = len(vecs) + i
    qv = emb.encode(queries)
    rows = []
    for it, q, wins in zip(items, qv, per_item):
        if not wins:
            continue
        idx_rows = np.asarray([row_of[(d, w[0], w[1])] for d, w in wins], dtype=np.int64)
        sims = allv[idx_rows] @ q
        hits = [(d, s, w[0], w[1]) for (d, w), s in zip(wins, sims.tolist())]
        rows += top_rows(index, it.id, hits, k, "candidates", snippet_chars, texts.__getitem__)
    stats = {
        "mode": "candidates",
        "candidates_per_item": m,
        "candidate_order": "model token vectors" if ranker is not None else "suffix-array score and text",
        "candidate_documents": len(docs),
        "windows": len(keys),
        "windows_embedded": len(missing),
        "window_tokens": int(sum(n_tokens.values())),
        "window_tokens_embedded": int(sum(n_tokens[k_] for k_ in missing)),
        "candidate_seconds": round(t_cand, 2),
        "embed_seconds": round(t_embed, 2),
    }
    return rows, stats
