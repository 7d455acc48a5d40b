"""Per-item contamination metrics computed in the index's own token space, after its normalization.

Everything derives from the *matching statistics* of the item: for every token position ``i`` the length
``ms[i]`` of the longest span starting at ``i`` that occurs somewhere in the corpus (one call to the
infini-gram engine's ``creativity``). From them:

- ``longest_match``: ``max(ms)``, in tokens and characters;
- ``coverage(L, S)``: the fraction of the item's tokens inside a corpus match of at least ``L`` tokens,
  where gaps of at most ``S`` tokens between two such matches are bridged (never at the item's ends);
- the short-item rule, for an item shorter than ``L`` but at least ``F`` tokens long (the floor): GPT-3's
  whole-item rule, coverage 1.0 when the item's whole normalized text occurs in the corpus (with the
  ``simple`` normalization as whole words: the stored item keeps its padding spaces), else 0.0. Below the
  floor even a whole match is too likely by chance to mean anything, and the item stays uncheckable;
- the classic definitions, by name in ``DEFINITIONS``: ``gpt3`` (any word N-gram occurs, N from the eval
  set's length distribution: its 5th percentile in words, clamped to 8..13), ``palm`` (at least 70% of the
  word 8-grams occur), ``ig_mini`` (at least 80% of the 50-character substrings starting at word starts
  occur: the infini-gram mini definition).

Word-level definitions need the ``simple`` normalization with the ``bytes`` tokenizer (words are the
space-separated runs of the stored text).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from freqindex.suffix.index import Index


@dataclass
class ItemText:
    """An item field in the index's space: the stored (normalized, padded) text, its token ids, and the maps
    between token and character offsets (``tok_to_char`` has n+1 entries, ``char_to_tok`` len(text)+1)."""

    text: str
    ids: list[int]
    tok_to_char: np.ndarray
    char_to_tok: np.ndarray

    @property
    def n(self) -> int:
        return len(self.ids)


def item_text(index: Index, raw: str) -> ItemText:
    stored = index.normalizer.stored_document(raw)
    data = index.tokenizer.encode(stored) if stored else b""
    if index.width == 1:
        ids = list(data)
        tok_to_char = [c for c, ch in enumerate(stored) for _ in range(len(ch.encode("utf-8")))] + [
            len(stored)
        ]
        char_to_tok = np.cumsum([0] + [len(ch.encode("utf-8")) for ch in stored])
    else:  # Hugging Face tokens: character offsets are spread evenly (approximate)
        ids = np.frombuffer(data, dtype=index.dtype).tolist()
        tok_to_char = np.linspace(0, len(stored), len(ids) + 1).astype(np.int64)
        char_to_tok = np.searchsorted(tok_to_char, np.arange(len(stored) + 1))
    return ItemText(
        stored, ids, np.asarray(tok_to_char, dtype=np.int64), np.asarray(char_to_tok, dtype=np.int64)
    )


def matching_statistics(index: Index, ids: list[int]) -> np.ndarray:
    """``ms[i]``: length of the longest span starting at token ``i`` that occurs in the corpus, from the
    engine's ``creativity`` (one item at a time; the check uses the batched
    :func:`freqindex.suffix.matching.matching_statistics_batch`, tested equal to this)."""
    if not ids:
        return np.zeros(0, dtype=np.int64)
    with index._lock:
        rs = index.engine.creativity(input_ids=ids)["rs"]
    return np.asarray(rs, dtype=np.int64) - np.arange(len(ids), dtype=np.int64)


def covered_mask(
    ms: np.ndarray, min_len: int, skip: int = 0, lo: int = 0, hi: int | None = None
) -> np.ndarray:
    """Tokens inside a match of at least ``min_len`` tokens; gaps of <= ``skip`` tokens between two covered
    runs are bridged. Only tokens in [lo, hi) count (the padding spaces of a stored item are left out)."""
    n = len(ms)
    hi = n if hi is None else hi
    cover = np.zeros(n + 1, dtype=np.int64)
    starts = np.nonzero(ms >= min_len)[0]
    np.add.at(cover, starts, 1)
    np.add.at(cover, starts + ms[starts], -1)
    mask = np.cumsum(cover)[:n] > 0
    if skip > 0 and mask.any():
        idx = np.nonzero(mask)[0]
        for a, b in zip(idx[:-1], idx[1:]):
            if 1 < b - a <= skip + 1:
                mask[a + 1 : b] = True
    out = np.zeros(n, dtype=bool)
    out[lo:hi] = mask[lo:hi]
    return out


def word_starts(text: str) -> list[int]:
    """Character offsets of the spaces that open each word of a stored (padded, normalized) text."""
    return [i for i, ch in enumerate(text) if ch == " " and i + 1 < len(text) and text[i + 1] != " "]


RULES = ("coverage", "whole_item", "too_short")  # how a field's coverage was decided (see the module doc)


@dataclass
class FieldMetrics:
    n_tokens: int
    n_chars: int
    checkable: bool
    coverage: float | None
    longest_match_tokens: int
    longest_match_chars: int
    longest_match_start: int  # token offset in the stored item
    definitions: dict = field(default_factory=dict)
    rule: str = "coverage"  # one of RULES


def whole_item_occurs(it: ItemText, ms: np.ndarray) -> bool:
    """Does the whole stored item (with its padding spaces, so as whole words) occur in the corpus?"""
    return bool(it.n and ms[0] >= it.n)


def _occurs_chars(it: ItemText, ms: np.ndarray, c0: int, c1: int) -> bool:
    """Does the stored item's character span [c0, c1) occur in the corpus?"""
    t0, t1 = int(it.char_to_tok[c0]), int(it.char_to_tok[c1])
    return bool(ms[t0] >= t1 - t0) if t0 < len(ms) else False


def item_bytes(index: Index, it: ItemText) -> bytes:
    """The item's tokens as the index stores them (what the suffix arrays are searched with)."""
    return bytes(it.ids) if index.width == 1 else np.asarray(it.ids, dtype=index.dtype).tobytes()


def field_metrics(
    index: Index,
    raw: str,
    min_len: int,
    skip: int,
    gpt3_n: int,
    it: ItemText | None = None,
    ms: np.ndarray | None = None,
    definitions: tuple[str, ...] | None = None,
    min_short_len: int | None = None,
) -> tuple[FieldMetrics, ItemText, np.ndarray]:
    """Metrics of one field. ``it``/``ms`` may be precomputed (the batched path); by default ``ms`` comes
    from the engine's ``creativity``. ``min_short_len``: the floor of the short-item rule (None: no rule,
    every item shorter than ``min_len`` is uncheckable)."""
    it = it if it is not None else item_text(index, raw)
    ms = ms if ms is not None else matching_statistics(index, it.ids)
    pad = 1 if index.normalizer.pad else 0
    body_lo, body_hi = pad, max(pad, it.n - pad)
    body = body_hi - body_lo
    longest = int(ms.max()) if len(ms) else 0
    start = int(ms.argmax()) if len(ms) else 0
    lm_chars = int(it.tok_to_char[min(start + longest, it.n)] - it.tok_to_char[start]) if it.n else 0
    if body >= min_len:
        rule, coverage = "coverage", float(covered_mask(ms, min_len, skip, body_lo, body_hi).sum() / body)
    elif min_short_len is not None and body >= max(1, min_short_len):
        rule, coverage = "whole_item", 1.0 if whole_item_occurs(it, ms) else 0.0
    else:
        rule, coverage = "too_short", None
    checkable = coverage is not None
    defs: dict = {}
    if index.width == 1 and index.normalizer.name == "simple":
        ws = word_starts(it.text)
        defs = {
            name: fn(it, ms, ws, gpt3_n)
            for name, fn in DEFINITIONS.items()
            if definitions is None or name in definitions
        }
    return (
        FieldMetrics(body, len(it.text.strip()), checkable, coverage, longest, lm_chars, start, defs, rule),
        it,
        ms,
    )


def _ngram_hits(it: ItemText, ms, ws, n: int) -> list[bool]:
    """For every word n-gram of the item: does " w1 ... wn " (whole words) occur?"""
    hits = []
    for k in range(len(ws) - n + 1):
        end = ws[k + n] + 1 if k + n < len(ws) else len(it.text)  # include the closing space
        hits.append(_occurs_chars(it, ms, ws[k], end))
    return hits


def gpt3(it, ms, ws, n: int) -> dict:
    hits = _ngram_hits(it, ms, ws, n)
    if not hits:
        return {"flag": None, "n": n, "ngrams": 0, "hits": 0}
    return {"flag": any(hits), "n": n, "ngrams": len(hits), "hits": int(sum(hits))}


def palm(it, ms, ws, _n: int) -> dict:
    hits = _ngram_hits(it, ms, ws, 8)
    if not hits:
        return {"flag": None, "fraction": None, "ngrams": 0}
    frac = sum(hits) / len(hits)
    return {"flag": frac >= 0.7, "fraction": round(frac, 4), "ngrams": len(hits)}


def ig_mini(it, ms, ws, _n: int) -> dict:
    text = it.text
    subs = [(p + 1, p + 51) for p in ws if p + 51 <= len(text) - 1]  # 50 characters from each word start
    if not subs:
        return {"flag": None, "fraction": None, "substrings": 0}
    hits = [_occurs_chars(it, ms, a, b) for a, b in subs]
    frac = sum(hits) / len(hits)
    return {"flag": frac >= 0.8, "fraction": round(frac, 4), "substrings": len(hits)}


DEFINITIONS = {"gpt3": gpt3, "palm": palm, "ig_mini": ig_mini}


def gpt3_ngram_size(word_counts: list[int]) -> int:
    """GPT-3's N: the 5th percentile of the eval set's lengths in words, clamped to 8..13."""
    if not word_counts:
        return 13
    return int(min(13, max(8, np.percentile(word_counts, 5))))
