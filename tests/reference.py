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
