"""Exact counts from the suffix arrays.

A count is the number of (possibly overlapping) occurrences inside documents; a match never spans two
documents (the separator token never occurs in a query). ``unit="docs"`` counts distinct documents,
computed vectorized from the suffix-array range and the document offsets.

CNF queries (infini-gram's form): clauses joined by `` AND ``, alternatives inside a clause by `` OR ``.
A single clause counts the sum of its alternatives' occurrences (docs: the union of their documents). Several
clauses use infini-gram's AND semantics: occurrences where every clause appears within ``max_diff_tokens``
tokens; when a clause is more frequent than ``max_clause_freq`` the engine subsamples and ``approx`` is true.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from freqindex import settings
from freqindex.errors import UsageError
from freqindex.suffix.index import Index

UNITS = ("occurrences", "docs")


@dataclass(frozen=True)
class CountResult:
    query: str
    count: int
    unit: str
    approx: bool

    def to_dict(self) -> dict:
        return asdict(self)


def parse_cnf(query: str, literal: bool = False) -> list[list[str]]:
    """Clauses of alternatives. With ``literal`` the whole string is one term."""
    if not query:
        raise UsageError("empty query")
    if len(query) > settings.MAX_QUERY_CHARS:
        raise UsageError(f"query longer than {settings.MAX_QUERY_CHARS} characters")
    if literal:
        return [[query]]
    clauses = [[t for t in c.split(" OR ")] for c in query.split(" AND ")]
    for c in clauses:
        for t in c:
            if not t:
                raise UsageError(f"empty term in CNF query {query!r} (use --literal to count it as written)")
    return clauses


def _check_engine(res: dict) -> dict:
    if "error" in res:
        raise UsageError(f"engine rejected the query: {res['error']}")
    return res


def _term_doc_ids(index: Index, ids: list[int]) -> list[np.ndarray]:
    """Per shard, the sorted distinct local document indexes that contain ``ids``."""
    found = _check_engine(index.engine.find(input_ids=ids))
    return index.docs_per_shard(found["segment_by_shard"])


def union_size(per_shard: list[list[np.ndarray]]) -> int:
    """Distinct documents over several sorted per-shard document arrays (one list of arrays per shard)."""
    total = 0
    for arrays in per_shard:
        if len(arrays) == 1:
            total += int(arrays[0].size)
        elif arrays:
            total += int(np.unique(np.concatenate(arrays)).size)
    return total


def count(
    index: Index,
    query: str,
    unit: str = "occurrences",
    literal: bool = False,
    max_clause_freq: int = settings.MAX_CLAUSE_FREQ,
    max_diff_tokens: int = settings.MAX_DIFF_TOKENS,
) -> CountResult:
    """Count ``query`` in ``index`` (normalized and tokenized exactly as the index was)."""
    if unit not in UNITS:
        raise UsageError(f"unknown unit {unit!r}; choose occurrences or docs")
    clauses = parse_cnf(query, literal)
    encoded = [[index.encode_query(t) for t in c] for c in clauses]
    if len(encoded) == 1:
        terms = encoded[0]
        if unit == "occurrences":
            total = sum(_check_engine(index.engine.count(input_ids=ids))["count"] for ids in terms)
            return CountResult(query, int(total), unit, False)
        per_term = [_term_doc_ids(index, ids) for ids in terms]
        n = union_size([[pt[s] for pt in per_term] for s in range(len(index.shards))])
        return CountResult(query, n, unit, False)
    if unit == "occurrences":
        res = _check_engine(
            index.engine.count_cnf(
                cnf=encoded, max_clause_freq=max_clause_freq, max_diff_tokens=max_diff_tokens
            )
        )
        return CountResult(query, int(res["count"]), unit, bool(res["approx"]))
    res = _check_engine(
        index.engine.find_cnf(cnf=encoded, max_clause_freq=max_clause_freq, max_diff_tokens=max_diff_tokens)
    )
    n = 0
    for sh, ptrs in zip(index.shards, res.get("ptrs_by_shard") or []):
        if ptrs:
            n += int(np.unique(sh.doc_of(np.asarray(ptrs, dtype=np.uint64))).size)
    return CountResult(query, n, unit, bool(res["approx"]))


def count_many(index: Index, queries: list[str], **kw) -> list[CountResult]:
    return [count(index, q, **kw) for q in queries]
