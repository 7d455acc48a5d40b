"""Keyword priming: how probable a keyword is after a context according to the corpus, before any learning.

The priming study found that whether learning a new fact "primes" its keyword (the keyword then turns up in
unrelated contexts) is predicted by the keyword's probability before learning, with a sharp threshold near
1e-3: keywords below it spread. Here the probability is the corpus's ∞-gram probability of the keyword's
tokens after the context, chained token by token (each token conditioned on the context and the keyword's
tokens before it), with the counts behind every factor; ``flagged`` is ``prob < threshold``.

With the ``simple`` normalization a keyword is a word: when neither the context ends nor the keyword starts
with a space, one is put between them (``"the sky is" + "blue"`` scores ``" blue"``). Other normalizations
take both as written.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from freqindex.errors import UsageError
from freqindex.query.prob import ProbQuery, TokenProb, chained, check_ids, encode_text, infgram_probs
from freqindex.suffix.index import Index

DEFAULT_THRESHOLD = 1e-3


@dataclass(frozen=True)
class PrimingQuery:
    context: str | None
    keyword: str | None
    context_ids: list[int]
    keyword_ids: list[int]


def make_query(index: Index, obj: dict) -> PrimingQuery:
    """A query from ``{context, keyword}`` (text) or ``{context_ids, keyword_ids}`` (token ids)."""
    if "context_ids" in obj or "keyword_ids" in obj:
        ctx = check_ids(index, obj.get("context_ids"), "context_ids")
        kw = check_ids(index, obj.get("keyword_ids"), "keyword_ids")
        return PrimingQuery(None, None, ctx, kw)
    if "context" not in obj or "keyword" not in obj:
        raise UsageError("expected the fields context and keyword (or context_ids and keyword_ids)")
    context, keyword = obj["context"], obj["keyword"]
    ctx = encode_text(index, context, "context")
    if not isinstance(keyword, str):
        raise UsageError("keyword must be a string")
    norm_kw = index.normalizer.query(keyword)
    if not norm_kw.strip():
        raise UsageError(f"keyword {keyword!r} normalizes to nothing")
    if index.normalizer.name == "simple":
        norm_ctx = index.normalizer.query(context)
        if not norm_ctx.endswith(" ") and not norm_kw.startswith(" "):
            keyword = " " + keyword.lstrip()
    kw = encode_text(index, keyword, "keyword", allow_blank=False)
    return PrimingQuery(context, obj["keyword"], ctx, kw)


def priming(index: Index, queries: list[PrimingQuery], threshold: float = DEFAULT_THRESHOLD) -> list[dict]:
    """One record per query: the chained ∞-gram probability, its log10, whether it is below ``threshold``,
    and the per-token factors with their counts."""
    if not 0 < threshold < 1:
        raise UsageError("--threshold must lie in (0, 1)")
    tokens = infgram_probs(index, [ProbQuery(q.context_ids, q.keyword_ids) for q in queries])
    out = []
    for q, toks in zip(queries, tokens):
        p = chained(toks)
        out.append(
            {
                "context": q.context,
                "keyword": q.keyword,
                "context_tokens": len(q.context_ids),
                "keyword_tokens": len(q.keyword_ids),
                "prob": p,
                "log10_prob": (math.log10(p) if p else None),
                "threshold": threshold,
                "flagged": bool(p is not None and p < threshold),
                "tokens": [t.to_dict() for t in toks],
            }
        )
    return out


__all__ = ["DEFAULT_THRESHOLD", "PrimingQuery", "TokenProb", "make_query", "priming"]
