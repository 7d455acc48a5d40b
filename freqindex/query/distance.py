"""How far a text sits from the corpus, per item, in the index's token space after its normalization.

The item is what the contamination check searches: its stored form (normalized and, with ``simple``, padded
with a space on each side), tokenized by the index's tokenizer. Per item:

- ``mean_surprisal`` / ``max_surprisal``: bits per token, ``-log2 p``, over every token after the first, where
  ``p`` is the ∞-gram probability of the token given all the item's tokens before it (the engine's
  ``infgram_prob``). When the token never followed its effective context in the corpus (``p = 0``, which the
  ∞-gram model gives wherever a match breaks) the surprisal is that of one more occurrence,
  ``log2(prompt_cnt + 1)``, so every value is finite; ``zero_prob_share`` is the share of such tokens.
- ``mean_context``: mean effective context length (tokens of the longest suffix used).
- ``novel_5``, ``novel_8``, ``novel_13``: the share of the item's distinct n-grams (n tokens) that never occur
  in the corpus (None when the item is shorter than n).
- ``longest_match_tokens`` / ``_chars``: the longest span of the item that occurs in the corpus, as the
  contamination check computes it (the maximum of the matching statistics, its first position).

With ``exclude`` (the corpus profile) an item that is itself a corpus document is measured against the corpus
without it (leave-one-out).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from freqindex.contamination.metrics import ItemText, item_text
from freqindex.suffix import lm
from freqindex.suffix.index import Index

NOVEL_NS = (5, 8, 13)
MEASURES = (
    "mean_surprisal",
    "max_surprisal",
    "zero_prob_share",
    "mean_context",
    "novel_5",
    "novel_8",
    "novel_13",
    "longest_match_tokens",
    "longest_match_chars",
)


@dataclass
class Distance:
    """The distance measures of one item (see the module docstring)."""

    id: str
    n_tokens: int
    scored_tokens: int
    mean_surprisal: float | None
    max_surprisal: float | None
    zero_prob_share: float | None
    mean_context: float | None
    novel_5: float | None
    novel_8: float | None
    novel_13: float | None
    longest_match_tokens: int
    longest_match_chars: int

    def to_dict(self) -> dict:
        return asdict(self)


def surprisals(prompt_cnt: np.ndarray, cont_cnt: np.ndarray) -> np.ndarray:
    """``-log2(cont / prompt)``, and ``log2(prompt + 1)`` where the continuation never occurred."""
    prompt = prompt_cnt.astype(np.float64)
    cont = cont_cnt.astype(np.float64)
    with np.errstate(divide="ignore"):
        s = np.log2(prompt) - np.log2(np.maximum(cont, 1))
    return np.where(cont > 0, s, np.log2(prompt + 1))


def novel_share(ids: np.ndarray, match_len: np.ndarray, n: int) -> float | None:
    """Share of the distinct n-grams of ``ids`` that never occur (an n-gram at ``i`` occurs iff the match from
    ``i`` is at least ``n`` tokens long)."""
    if len(ids) < n:
        return None
    windows = np.lib.stride_tricks.sliding_window_view(np.asarray(ids, dtype=np.int64), n)
    absent = match_len[: windows.shape[0]] < n
    _, first = np.unique(windows, axis=0, return_index=True)
    return float(absent[first].mean())


def _measures(item_id: str, it: ItemText, st: lm.PositionStats) -> Distance:
    n = it.n
    ms = st.match_len
    longest = int(ms.max()) if n else 0
    start = int(ms.argmax()) if n else 0
    chars = int(it.tok_to_char[min(start + longest, n)] - it.tok_to_char[start]) if n else 0
    scored = st.positions >= 1
    k = int(scored.sum())
    if k:
        s = surprisals(st.prompt_cnt[scored], st.cont_cnt[scored])
        mean_s, max_s = float(s.mean()), float(s.max())
        zero = float((st.cont_cnt[scored] == 0).mean())
        ctx = float(st.suffix_len[scored].mean())
    else:
        mean_s = max_s = zero = ctx = None
    ids = np.asarray(it.ids, dtype=np.int64)
    nov = {m: novel_share(ids, ms, m) for m in NOVEL_NS}
    return Distance(item_id, n, k, mean_s, max_s, zero, ctx, nov[5], nov[8], nov[13], longest, chars)


def item_distances(
    index: Index,
    items: list[tuple[str, str]],
    exclude: list[lm.Exclusion | None] | None = None,
    texts: list[ItemText] | None = None,
    with_stats: bool = False,
):
    """Distance measures of every ``(id, raw text)`` item, computed in one batch. ``texts`` may carry the
    items already normalized and tokenized (as the corpus profile does for stored documents). With
    ``with_stats`` returns ``(distances, per-item position statistics)``."""
    texts = texts if texts is not None else [item_text(index, raw) for _, raw in items]
    seqs = [np.asarray(t.ids, dtype=np.int64) for t in texts]
    stats = lm.infgram_positions(index, seqs, exclude=exclude)
    out = [_measures(item_id, it, st) for (item_id, _), it, st in zip(items, texts, stats)]
    return (out, stats) if with_stats else out


def per_token(st: lm.PositionStats, measure: str, ids: np.ndarray | None = None) -> np.ndarray:
    """The values, in text order, whose mean is ``measure``: per scored token (every token after the first),
    or for ``novel_N`` one 0/1 per distinct n-gram at its first position (``ids`` needed)."""
    if measure.startswith("novel_"):
        n = int(measure.split("_")[1])
        if ids is None or len(ids) < n:
            return np.zeros(0, dtype=np.float64)
        windows = np.lib.stride_tricks.sliding_window_view(np.asarray(ids, dtype=np.int64), n)
        _, first = np.unique(windows, axis=0, return_index=True)
        first = np.sort(first)
        return (st.match_len[first] < n).astype(np.float64)
    scored = st.positions >= 1
    if measure == "mean_surprisal":
        return surprisals(st.prompt_cnt[scored], st.cont_cnt[scored])
    if measure == "zero_prob_share":
        return (st.cont_cnt[scored] == 0).astype(np.float64)
    if measure == "mean_context":
        return st.suffix_len[scored].astype(np.float64)
    raise ValueError(f"{measure} is not a per-token mean")


__all__ = ["Distance", "MEASURES", "NOVEL_NS", "item_distances", "novel_share", "per_token", "surprisals"]
