"""Documents that match a query, with provenance and a snippet around the first match."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from freqindex import settings
from freqindex.errors import UsageError
from freqindex.query.count import encode_term, parse_cnf
from freqindex.suffix import search
from freqindex.suffix.index import Index


@dataclass(frozen=True)
class DocHit:
    doc_id: int
    ext_id: str | None
    source: str
    line: int | None
    occurrences: int
    snippet: str

    def to_dict(self) -> dict:
        return asdict(self)


def _snippet(index: Index, shard, local_ix: int, ptr: int, n_bytes: int, context: int) -> str:
    start, end = shard.doc_bounds(local_ix, index.width)
    ctx = context * (1 if index.width == 1 else index.width)
    a = max(start, ptr - ctx)
    b = min(end, ptr + n_bytes + ctx)
    a -= (a - start) % index.width

    def part(x: int, y: int, edge: bool) -> str:
        return index.decode(bytes(shard.ds[x:y]), cut=edge)

    before = part(a, ptr, True)
    hit = part(ptr, ptr + n_bytes, False)
    after = part(ptr + n_bytes, b, True)
    lead = " " if hit[:1].isspace() else ""
    trail = " " if hit[-1:].isspace() else ""
    text = (
        ("…" if a > start else "")
        + before
        + lead
        + "«"
        + hit.strip()
        + "»"
        + trail
        + after
        + ("…" if b < end else "")
    )
    return " ".join(text.split())


def find_docs(
    index: Index,
    query: str,
    limit: int = settings.DEFAULT_DOCS_LIMIT,
    literal: bool = False,
    context: int = settings.SNIPPET_CONTEXT_CHARS,
) -> tuple[int, list[DocHit]]:
    """(number of matching documents, the first ``limit`` of them by doc_id). One term (or OR-alternatives)."""
    if limit < 1 or limit > settings.MAX_DOCS_LIMIT:
        raise UsageError(f"--limit must be between 1 and {settings.MAX_DOCS_LIMIT}")
    clauses = parse_cnf(query, literal)
    if len(clauses) > 1:
        raise UsageError("docs takes one term or OR-alternatives, not AND clauses")
    terms = [encode_term(index, t) for t in clauses[0]]  # a repeated alternative counts twice, as in count
    per_shard: list[list[tuple[np.ndarray, np.ndarray, int]]] = [[] for _ in index.shards]
    for term, ranges in zip(terms, search.find_ranges(index, terms).tolist()):
        for s, (ptrs, docs) in enumerate(index.hits_per_shard(ranges)):
            if ptrs.size:
                per_shard[s].append((ptrs, docs, len(term)))
    n_docs = 0
    hits: list[DocHit] = []
    for sh, items in sorted(zip(index.shards, per_shard), key=lambda x: x[0].doc_start):  # doc_id order
        if not items:
            continue
        all_docs = np.unique(np.concatenate([d for _, d, _ in items]))
        n_docs += int(all_docs.size)
        for ix in all_docs[: max(0, limit - len(hits))].tolist():
            occ = 0
            first = None
            for ptrs, docs, nb in items:
                lo, hi = np.searchsorted(docs, ix, "left"), np.searchsorted(docs, ix, "right")
                occ += int(hi - lo)
                if hi > lo and (first is None or int(ptrs[lo]) < first[0]):
                    first = (int(ptrs[lo]), nb)
            meta = sh.meta(ix)
            hits.append(
                DocHit(
                    doc_id=sh.doc_start + ix,
                    ext_id=meta.get("id"),
                    source=meta.get("source"),
                    line=meta.get("line"),
                    occurrences=occ,
                    snippet=_snippet(index, sh, ix, first[0], first[1], context),
                )
            )
    return n_docs, hits
