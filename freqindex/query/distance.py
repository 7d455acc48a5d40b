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
CHUNK_TOKENS = 200_000
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
    flags = novel_flags([np.asarray(ids)], [match_len], n)[0]
    return float(flags.mean()) if flags.size else None


def novel_flags(seqs: list[np.ndarray], match_lens: list[np.ndarray], n: int) -> list[np.ndarray]:
    """Per sequence, one flag per distinct n-gram (at its first position, in text order): 1.0 when the corpus
    never holds it. All sequences in one sort: each window's tokens, prefixed by its sequence number, as one
    fixed-width byte string."""
    out = [np.zeros(0, dtype=np.float64) for _ in seqs]
    keep = [k for k, s in enumerate(seqs) if len(s) >= n]
    if not keep:
        return out
    width = 4 if max(int(np.max(seqs[k])) for k in keep) > 0xFFFF else 2
    dt = np.dtype(">u4") if width == 4 else np.dtype(">u2")
    rows, owner = [], []
    for k in keep:
        w = np.lib.stride_tricks.sliding_window_view(np.asarray(seqs[k]).astype(dt), n)
        rows.append(w)
        owner.append(np.full(w.shape[0], k, dtype=np.int64))
    owner_a = np.concatenate(owner)
    tab = np.empty((owner_a.size,), dtype=[("k", ">u4"), ("w", dt, (n,))])
    tab["k"] = owner_a
    tab["w"] = np.concatenate(rows)
    keys = tab.view(np.dtype((np.void, tab.dtype.itemsize)))
    _, first = np.unique(keys, return_index=True)
    first = np.sort(first)  # by sequence, then position
    ms_all = np.concatenate([np.asarray(match_lens[k][: len(seqs[k]) - n + 1]) for k in keep])
    absent = (ms_all[first] < n).astype(np.float64)
    bounds = np.searchsorted(owner_a[first], keep + [keep[-1] + 1], side="left")
    for j, k in enumerate(keep):
        out[k] = absent[bounds[j] : bounds[j + 1]]
    return out


def _measures(item_id: str, it: ItemText, st: lm.PositionStats, nov: dict[int, float | None]) -> Distance:
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
    return Distance(item_id, n, k, mean_s, max_s, zero, ctx, nov[5], nov[8], nov[13], longest, chars)


def item_distances(
    index: Index,
    items: list[tuple[str, str]],
    exclude: list[lm.Exclusion | None] | None = None,
    texts: list[ItemText] | None = None,
    with_stats: bool = False,
):
    """Distance measures of every ``(id, raw text)`` item, computed in batches of about ``CHUNK_TOKENS``
    tokens (memory stays bounded, the arrays stay cache-friendly). ``texts`` may carry the items already
    normalized and tokenized (as the corpus profile does for stored documents). With ``with_stats`` returns
    ``(distances, per-item position statistics)``."""
    texts = texts if texts is not None else [item_text(index, raw) for _, raw in items]
    seqs = [np.asarray(t.ids, dtype=np.int64) for t in texts]
    stats: list[lm.PositionStats] = []
    start, size = 0, 0
    for k, sq in enumerate(seqs + [None]):
        if sq is None or (size + len(sq) > CHUNK_TOKENS and k > start):
            ex = exclude[start:k] if exclude is not None else None
            stats += lm.infgram_positions(index, seqs[start:k], exclude=ex)
            start, size = k, 0
        if sq is not None:
            size += len(sq)
    flags = {n: novel_flags(seqs, [st.match_len for st in stats], n) for n in NOVEL_NS}
    for k, st in enumerate(stats):
        st.novel = {n: flags[n][k] for n in NOVEL_NS}
    out = [
        _measures(
            item_id, it, st, {n: (float(f.mean()) if (f := st.novel[n]).size else None) for n in NOVEL_NS}
        )
        for (item_id, _), it, st in zip(items, texts, stats)
    ]
    return (out, stats) if with_stats else out


def per_token(st: lm.PositionStats, measure: str) -> np.ndarray:
    """The values, in text order, whose mean is ``measure``: per scored token (every token after the first),
    or for ``novel_N`` one 0/1 per distinct n-gram at its first position (``st`` from :func:`item_distances`)."""
    if measure.startswith("novel_"):
        return st.novel[int(measure.split("_")[1])]
    scored = st.positions >= 1
    if measure == "mean_surprisal":
        return surprisals(st.prompt_cnt[scored], st.cont_cnt[scored])
    if measure == "zero_prob_share":
        return (st.cont_cnt[scored] == 0).astype(np.float64)
    if measure == "mean_context":
        return st.suffix_len[scored].astype(np.float64)
    raise ValueError(f"{measure} is not a per-token mean")


__all__ = ["Distance", "MEASURES", "NOVEL_NS", "item_distances", "novel_share", "per_token", "surprisals"]
