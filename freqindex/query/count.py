"""Exact counts from the suffix arrays.

A count is the number of (possibly overlapping) occurrences inside documents; a match never spans two
documents (the separator token never occurs in a query). ``unit="docs"`` counts distinct documents.

CNF queries (infini-gram's form): clauses joined by `` AND ``, alternatives inside a clause by `` OR ``.

- One clause: occurrences are the sum of its alternatives' occurrences; docs the union of their documents.
- Several clauses (AND), ``docs``: the documents that hold every clause (at least one alternative of each),
  anywhere in the document.
- Several clauses (AND), ``occurrences``: the *anchor* is the clause with the fewest occurrences in the whole
  index (the first such clause on a tie). Counted are the anchor's occurrences (every alternative's, as for
  one clause) that have, for every other clause, an occurrence of one of its alternatives in the same
  document whose start is at most ``max_diff_tokens`` tokens before or after the anchor occurrence's start.
  So ``" dog  AND  frisbee "`` counts the ``" frisbee "`` occurrences with a ``" dog "`` nearby, a wider
  window never counts fewer, and the count never exceeds the rarest clause's.

Everything is exact: ranges come from ``freqindex.suffix.search`` (compiled binary searches over the shards),
documents from the ranges' pointers and the document offsets, and AND from a join of sorted positions (or, for
a very frequent clause, from reading the window around each anchor occurrence). Work is bounded, not sampled:
a query that would read more than ``settings.MAX_DOC_PTRS`` suffix-array entries is refused, so ``approx`` is
always false. The infini-gram engine is not called; tests use it as the reference for single terms (its own
``count_cnf`` subsamples and drops matches whose window crosses a document boundary, see issue #12).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from numba import njit

from freqindex import settings
from freqindex.deadline import Deadline, check
from freqindex.errors import FreqindexError, UsageError
from freqindex.suffix import search
from freqindex.suffix.index import Index

UNITS = ("occurrences", "docs")
SHOWN_QUERY_CHARS = 80  # error messages show at most this much of a query
# AND: read the windows around the anchor occurrences (instead of sorting all of a clause's positions) when
# they hold fewer token starts than this many times the clause's occurrences
_SCAN_FACTOR = 8
_CACHE_ELEMENTS = 20_000_000  # a batch keeps at most this many cached positions/documents (160 MB)


@dataclass(frozen=True)
class CountResult:
    query: str
    count: int
    unit: str
    approx: bool

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class CountError:
    """A query of a batch that could not be counted (``count_many(..., on_error="return")``): the query (cut
    to ``SHOWN_QUERY_CHARS``) and the reason."""

    query: str
    error: str

    def to_dict(self) -> dict:
        return asdict(self)


def cut(query: str, limit: int = SHOWN_QUERY_CHARS) -> str:
    """A query cut to ``limit`` characters (an ellipsis marks the cut), for error objects and messages."""
    return query if len(query) <= limit else query[:limit] + "…"


def shown(query: str, limit: int = SHOWN_QUERY_CHARS) -> str:
    """A query as error messages show it: quoted, cut to ``limit`` characters, with its length if cut."""
    if len(query) <= limit:
        return repr(query)
    return f"{cut(query, limit)!r} ({len(query):,} characters)"


def parse_cnf(query: str, literal: bool = False) -> list[list[str]]:
    """Clauses of alternatives. With ``literal`` the whole string is one term."""
    if not query:
        raise UsageError("empty query")
    if len(query) > settings.MAX_QUERY_CHARS:
        raise UsageError(f"query longer than {settings.MAX_QUERY_CHARS:,} characters ({len(query):,})")
    if literal:
        return [[query]]
    clauses = [c.split(" OR ") for c in query.split(" AND ")]
    for c in clauses:
        for t in c:
            if not t:
                raise UsageError(
                    f"empty term in CNF query {shown(query)} (use --literal to count it as written)"
                )
    return clauses


def encode_term(index: Index, term: str) -> bytes:
    """The index's token bytes of one query term, normalized exactly as the index's documents were.

    A term that normalizes to nothing but whitespace is refused: it would count every space of the corpus
    (with ``simple``, punctuation becomes spaces, so ``"!!!"`` or ``"?.,;"`` is such a term)."""
    norm = index.normalizer.query(term)
    if not norm or norm.isspace():
        what = "spaces and punctuation" if index.normalizer.name == "simple" else "whitespace"
        raise UsageError(f"query {shown(term)} is only {what}: nothing to count")
    try:
        data = index.tokenizer.encode(norm)
    except UnicodeEncodeError:
        raise UsageError(f"query {shown(term)} is not valid Unicode text") from None
    if not data:
        raise UsageError(f"query {shown(term)} has no tokens after tokenization")
    return data


def _check_options(unit: str, max_diff_tokens: int) -> None:
    if unit not in UNITS:
        raise UsageError(f"unknown unit {unit!r}; choose occurrences or docs")
    if not isinstance(max_diff_tokens, int) or max_diff_tokens < 0:
        raise UsageError(f"max_diff_tokens must be a whole number >= 0, not {max_diff_tokens!r}")


def count(
    index: Index,
    query: str,
    unit: str = "occurrences",
    literal: bool = False,
    max_diff_tokens: int = settings.MAX_DIFF_TOKENS,
) -> CountResult:
    """Count ``query`` in ``index`` (normalized and tokenized exactly as the index was)."""
    _check_options(unit, max_diff_tokens)
    clauses = [[encode_term(index, t) for t in c] for c in parse_cnf(query, literal)]
    return CountResult(query, count_encoded(index, clauses, unit, max_diff_tokens), unit, False)


def count_encoded(
    index: Index,
    clauses: list[list[bytes]],
    unit: str = "occurrences",
    max_diff_tokens: int = settings.MAX_DIFF_TOKENS,
) -> int:
    """The exact count of a CNF query given as token bytes (clauses of alternatives), with ``count``'s
    semantics; the form for callers that already hold token ids (the infini-gram-compatible API)."""
    _check_options(unit, max_diff_tokens)
    if any(not t or len(t) % index.width for c in clauses for t in c):
        raise UsageError("every term needs at least one token")
    if unit == "occurrences" and len(clauses) == 1 and len(clauses[0]) == 1:
        return int(search.count_occurrences(index, clauses[0])[0])
    terms = list(dict.fromkeys(t for c in clauses for t in c))
    ranges = dict(zip(terms, search.find_ranges(index, terms)))
    return _Evaluator(index, ranges, max_diff_tokens).count(clauses, unit)


def count_many(
    index: Index,
    queries: list[str],
    unit: str = "occurrences",
    literal: bool = False,
    max_diff_tokens: int = settings.MAX_DIFF_TOKENS,
    on_error: str = "raise",
    deadline: Deadline | None = None,
) -> list[CountResult | CountError]:
    """Count every query, batched: all their distinct terms are searched in one compiled call, and the
    documents of a term are read once for all the queries that use it.

    ``on_error="raise"`` raises the first bad query's error, prefixed with its 0-based position;
    ``"return"`` puts a ``CountError`` in its place and counts the rest. ``deadline`` is checked before each
    query is evaluated (the server's time limit)."""
    _check_options(unit, max_diff_tokens)
    if on_error not in ("raise", "return"):
        raise ValueError(f"on_error must be 'raise' or 'return', not {on_error!r}")
    # a query is its token bytes when it is one term, its clauses of token bytes otherwise
    parsed: list[bytes | list[list[bytes]] | CountError] = []
    for k, q in enumerate(queries):
        try:
            clauses = parse_cnf(q, literal)
            if len(clauses) == 1 and len(clauses[0]) == 1:
                parsed.append(encode_term(index, clauses[0][0]))
            else:
                parsed.append([[encode_term(index, t) for t in c] for c in clauses])
        except FreqindexError as exc:
            if on_error == "raise":
                raise type(exc)(f"queries[{k}]: {exc}") from None
            parsed.append(CountError(cut(q), str(exc)))
    terms: dict[bytes, None] = {}
    for p in parsed:
        if type(p) is bytes:
            terms[p] = None
        elif not isinstance(p, CountError):
            terms.update((t, None) for c in p for t in c)
    found = search.find_ranges(index, list(terms))
    totals = dict(zip(terms, (found[:, :, 1] - found[:, :, 0]).sum(axis=1).tolist()))
    ev = None  # documents and AND need the ranges themselves
    out: list[CountResult | CountError] = []
    occurrences = unit == "occurrences"
    for k, (q, p) in enumerate(zip(queries, parsed)):
        check(deadline)
        if occurrences and type(p) is bytes:
            out.append(CountResult(q, totals[p], unit, False))
        elif isinstance(p, CountError):
            out.append(p)
        elif occurrences and len(p) == 1:
            out.append(CountResult(q, sum(totals[t] for t in p[0]), unit, False))
        else:
            if type(p) is bytes:
                p = [[p]]
            if ev is None:
                ev = _Evaluator(index, dict(zip(terms, found)), max_diff_tokens)
            try:
                out.append(CountResult(q, ev.count(p, unit), unit, False))
            except FreqindexError as exc:
                if on_error == "raise":
                    raise type(exc)(f"queries[{k}]: {exc}") from None
                out.append(CountError(cut(q), str(exc)))
    return out


class _Evaluator:
    """Counts CNF queries of encoded terms from the terms' suffix-array ranges; caches per-term documents
    and positions, so terms shared by the queries of a batch are read once."""

    def __init__(self, index: Index, ranges: dict[bytes, np.ndarray], max_diff_tokens: int):
        self.index = index
        self.ranges = {t: r.tolist() for t, r in ranges.items()}  # term -> per shard [lo, hi]
        self.totals = {t: sum(hi - lo for lo, hi in r) for t, r in self.ranges.items()}
        self.window = min(max_diff_tokens, 1 << 40) * index.width  # in bytes (past any shard's size)
        self._docs: dict[tuple[bytes, int], np.ndarray] = {}
        self._pos: dict[tuple[bytes, int], np.ndarray] = {}
        self._cached = 0  # elements held by the two caches

    def _keep(self, cache: dict, key: tuple, value: np.ndarray) -> np.ndarray:
        if self._cached + value.size > _CACHE_ELEMENTS:
            self._docs.clear()
            self._pos.clear()
            self._cached = 0
        cache[key] = value
        self._cached += value.size
        return value

    def occurrences(self, term: bytes) -> int:
        return self.totals[term]

    def docs(self, term: bytes, shard: int) -> np.ndarray:
        key = (term, shard)
        if key in self._docs:
            return self._docs[key]
        lo, hi = self.ranges[term][shard]
        return self._keep(self._docs, key, search.range_doc_ids(self.index, shard, lo, hi))

    def positions(self, term: bytes, shard: int) -> np.ndarray:
        key = (term, shard)
        if key in self._pos:
            return self._pos[key]
        lo, hi = self.ranges[term][shard]
        return self._keep(self._pos, key, search.range_positions(self.index, shard, lo, hi))

    def _bound(self, terms: list[bytes], what: str) -> None:
        total = sum(self.occurrences(t) for t in terms)
        if total > settings.MAX_DOC_PTRS:
            raise UsageError(
                f"too many occurrences ({total:,}, above {settings.MAX_DOC_PTRS:,}) to {what}; narrow the query"
            )

    def count(self, clauses: list[list[bytes]], unit: str) -> int:
        per_clause = [sum(self.occurrences(t) for t in c) for c in clauses]
        if len(clauses) == 1 and unit == "occurrences":
            return per_clause[0]
        if min(per_clause) == 0:
            return 0
        if unit == "docs":
            self._bound([t for c in clauses for t in c], "count distinct documents")
            return sum(self._docs_holding_all(clauses, s) for s in range(len(self.index.shards)))
        return self._anchored(clauses, per_clause)

    def _clause_docs(self, clause: list[bytes], shard: int) -> np.ndarray:
        arrays = [self.docs(t, shard) for t in clause]
        return arrays[0] if len(arrays) == 1 else np.unique(np.concatenate(arrays))

    def _docs_holding_all(self, clauses: list[list[bytes]], shard: int) -> int:
        docs = None
        for c in sorted(clauses, key=lambda c: sum(self.occurrences(t) for t in c)):
            d = self._clause_docs(c, shard)
            docs = d if docs is None else np.intersect1d(docs, d, assume_unique=True)
            if not docs.size:
                return 0
        return int(docs.size)

    def _anchored(self, clauses: list[list[bytes]], per_clause: list[int]) -> int:
        a = int(np.argmin(per_clause))  # the first of the rarest clauses
        anchor, others = clauses[a], clauses[:a] + clauses[a + 1 :]
        width = self.index.width
        read = per_clause[a]  # suffix-array entries read, bounded by MAX_DOC_PTRS
        self._check_read(read)
        total = 0
        for s in range(len(self.index.shards)):
            pos = [self.positions(t, s) for t in anchor]
            anchors = pos[0] if len(pos) == 1 else np.sort(np.concatenate(pos))
            if not anchors.size:
                continue
            ds = search.shard_tokens(self.index, s)
            starts = search.doc_starts(self.index, s)
            d = np.searchsorted(starts, anchors, side="right") - 1
            doc_first = starts[d] + width  # the document's first token
            doc_last = np.append(starts, ds.shape[0])[d + 1] - width  # its last token
            lo = np.maximum(anchors - self.window, doc_first)
            hi = np.minimum(anchors + self.window, doc_last)
            ok = np.ones(anchors.size, dtype=bool)
            for c in others:
                live = np.nonzero(ok)[0]
                if not live.size:
                    break
                found = np.zeros(live.size, dtype=bool)
                clause_occ = sum(int(self.ranges[t][s][1] - self.ranges[t][s][0]) for t in c)
                starts_to_scan = int(((hi[live] - lo[live]) // width + 1).sum()) * len(c)
                if starts_to_scan < _SCAN_FACTOR * clause_occ:
                    # a frequent clause near few anchors: read the windows instead of every occurrence
                    for t in c:
                        found |= _window_has(ds, lo[live], hi[live], np.frombuffer(t, np.uint8), width)
                else:
                    read += clause_occ
                    self._check_read(read)
                    for t in c:
                        p = self.positions(t, s)
                        if p.size:  # the first occurrence at or after the window's start, if inside it
                            i = np.minimum(np.searchsorted(p, lo[live], side="left"), p.size - 1)
                            found |= (p[i] >= lo[live]) & (p[i] <= hi[live])
                ok[live] = found
            total += int(ok.sum())
        return total

    @staticmethod
    def _check_read(read: int) -> None:
        if read > settings.MAX_DOC_PTRS:
            raise UsageError(
                f"too many occurrences (above {settings.MAX_DOC_PTRS:,}) to join the AND clauses; narrow the query"
            )


@njit(cache=True, nogil=True)
def _window_has(ds, lo, hi, term, width):
    """For each window [lo[i], hi[i]] of byte offsets: does an occurrence of ``term`` start in it (at a
    token-aligned offset)?"""
    n = ds.shape[0]
    m = term.shape[0]
    out = np.zeros(lo.shape[0], np.bool_)
    for i in range(lo.shape[0]):
        x = lo[i]
        while x <= hi[i] and x + m <= n:
            j = 0
            while j < m and ds[x + j] == term[j]:
                j += 1
            if j == m:
                out[i] = True
                break
            x += width
    return out


def term_doc_ids(index: Index, term: bytes) -> list[np.ndarray]:
    """Per shard, the sorted distinct local document indexes that contain ``term`` (token bytes)."""
    return index.docs_per_shard(search.find_ranges(index, [term])[0].tolist())


def _term_doc_ids(index: Index, ids: list[int]) -> list[np.ndarray]:
    """``term_doc_ids`` for a list of token ids (the form the contamination check passes)."""
    return term_doc_ids(index, np.asarray(ids, dtype=index.dtype).tobytes())


def union_size(per_shard: list[list[np.ndarray]]) -> int:
    """Distinct documents over several sorted per-shard document arrays (one list of arrays per shard)."""
    total = 0
    for arrays in per_shard:
        if len(arrays) == 1:
            total += int(arrays[0].size)
        elif arrays:
            total += int(np.unique(np.concatenate(arrays)).size)
    return total
