"""Brute-force references, written independently of freqindex's implementation."""

from __future__ import annotations

import json
import unicodedata

import numpy as np


def ref_normalize(text: str, keep_edges: bool = False) -> str:
    """DESIGN.md's `simple`: NFKC, casefold, P* -> space, whitespace runs -> one space, strip (not for queries)."""
    t = unicodedata.normalize("NFKC", text).casefold()
    t = "".join(" " if unicodedata.category(c)[0] == "P" else c for c in t)
    out = []
    prev_space = False
    for c in t:
        if c.isspace():
            if not prev_space:
                out.append(" ")
            prev_space = True
        else:
            out.append(c)
            prev_space = False
    s = "".join(out)
    return s if keep_edges else s.strip()


def stored(text: str, normalization: str) -> str:
    return f" {ref_normalize(text)} " if normalization == "simple" else text


def read_lines_docs(path) -> list[str]:
    """Non-blank lines of a text file, split on \\n only, \\r stripped."""
    raw = open(path, "rb").read().decode("utf-8")
    return [ln.rstrip("\r") for ln in raw.split("\n") if ln.rstrip("\r").strip()]


def read_jsonl_docs(path, field: str) -> list[str]:
    out = []
    for ln in open(path, encoding="utf-8"):
        if ln.strip():
            out.append(json.loads(ln)[field])
    return out


class BruteCorpus:
    """Documents as byte strings; counts overlapping occurrences inside documents by plain search."""

    def __init__(self, docs: list[bytes]):
        self.docs = docs
        self.joined = b"\xff" + b"\xff".join(docs)
        starts = []
        pos = 1
        for d in docs:
            starts.append(pos)
            pos += len(d) + 1
        self.starts = np.array(starts, dtype=np.int64)

    def positions(self, q: bytes) -> list[int]:
        out = []
        i = self.joined.find(q)
        while i != -1:
            out.append(i)
            i = self.joined.find(q, i + 1)
        return out

    def count(self, q: bytes) -> int:
        return len(self.positions(q))

    def doc_count(self, q: bytes) -> int:
        pos = np.array(self.positions(q), dtype=np.int64)
        if pos.size == 0:
            return 0
        return int(np.unique(np.searchsorted(self.starts, pos, side="right") - 1).size)


def count_token_seq(docs: list[list[int]], q: list[int]) -> tuple[int, int]:
    """(occurrences, documents) of the token sequence q inside tokenized documents."""
    occ = 0
    nd = 0
    n = len(q)
    for d in docs:
        c = sum(1 for i in range(len(d) - n + 1) if d[i : i + n] == q)
        occ += c
        nd += 1 if c else 0
    return occ, nd


def _starts(doc, term, width: int) -> list[int]:
    """Token-aligned starts of ``term`` in ``doc``, in tokens (``doc`` bytes of ``width``-byte tokens, or an
    array of token ids)."""
    out = []
    if isinstance(doc, bytes):
        i = doc.find(term)
        while i != -1:
            if i % width == 0:
                out.append(i // width)
            i = doc.find(term, i + 1)
        return out
    d = np.asarray(doc)
    n = len(term)
    if d.size < n:
        return []
    win = np.lib.stride_tricks.sliding_window_view(d, n)
    return np.nonzero(np.all(win == np.asarray(term), axis=1))[0].tolist()


def and_counts(docs: list, clauses: list[list], windows: list[int], width: int = 1) -> list[tuple[int, int]]:
    """Per window, (occurrences, documents) of an AND of clauses (each a list of alternative terms), as the
    README defines it, by plain search in every document. Positions are in tokens (byte strings of
    ``width``-byte tokens, or arrays of token ids).

    documents: documents holding at least one alternative of every clause (the window plays no part).
    occurrences: the anchor is the clause with the fewest occurrences in the corpus (the first on a tie); an
    anchor occurrence counts when every other clause has an occurrence in the same document starting at
    most ``window`` tokens before or after it."""
    import bisect

    per_doc = [[sorted(p for t in c for p in _starts(d, t, width)) for c in clauses] for d in docs]
    totals = [sum(len(pd[k]) for pd in per_doc) for k in range(len(clauses))]
    if min(totals) == 0:
        return [(0, 0)] * len(windows)
    a = totals.index(min(totals))
    n_docs = sum(1 for pd in per_doc if all(pd))
    out = []
    for w in windows:
        occ = 0
        for pd in per_doc:
            if not all(pd):
                continue
            for p in pd[a]:
                near = True
                for k, qs in enumerate(pd):
                    if k != a:
                        i = bisect.bisect_left(qs, p - w)
                        near = near and i < len(qs) and qs[i] <= p + w
                occ += near
        out.append((occ, n_docs))
    return out
