"""Per-concept occurrences and document frequency, from tags (build time) or suffix arrays (query time)."""

from __future__ import annotations

import numpy as np

from freqindex.concepts.vocab import Vocabulary
from freqindex.deadline import Deadline, check
from freqindex.errors import UsageError
from freqindex.query.count import encode_term, union_size
from freqindex.suffix import search
from freqindex.suffix.index import Index

SOURCES = ("auto", "tags", "suffix")


def resolve_source(index: Index, vocab: Vocabulary, source: str) -> str:
    if source not in SOURCES:
        raise UsageError(f"unknown --source {source!r}; choose auto, tags or suffix")
    tagged = index.manifest.get("concepts", {}).get("key")
    if source == "auto":
        return "tags" if tagged == vocab.key else "suffix"
    if source == "tags" and tagged != vocab.key:
        raise UsageError(
            "this index has no tags for that vocabulary; run `freqindex tag` first or use --source suffix"
        )
    return source


def concept_counts(
    index: Index, vocab: Vocabulary, source: str = "auto", deadline: Deadline | None = None
) -> tuple[str, list[dict]]:
    """(source used, one row per concept: concept_id, concept, benchmark, occurrences, doc_frequency).
    The suffix path checks ``deadline`` before every concept."""
    src = resolve_source(index, vocab, source)
    rows = []
    if src == "tags":
        import pyarrow.compute as pc

        hits = index.concept_hits()
        in_caption = pc.greater(hits.column("occurrences"), 0)
        in_tags = hits.column("in_tags")
        hits = hits.append_column("cap", pc.cast(in_caption, "int64"))
        hits = hits.append_column("tag", pc.cast(in_tags, "int64"))
        hits = hits.append_column("both", pc.cast(pc.and_(in_caption, in_tags), "int64"))
        agg = hits.group_by("concept_id").aggregate(
            [("occurrences", "sum"), ("cap", "sum"), ("tag", "sum"), ("both", "sum")]
        )
        stats = {
            cid: (o, c, t, b)
            for cid, o, c, t, b in zip(
                *(
                    agg.column(k).to_pylist()
                    for k in ("concept_id", "occurrences_sum", "cap_sum", "tag_sum", "both_sum")
                )
            )
        }
        multimodal = bool(index.manifest.get("concepts", {}).get("tags_field"))
        for c in vocab.concepts:
            o, cap, tag, both = stats.get(c.concept_id, (0, 0, 0, 0))
            row = _row(c, o, cap)
            if multimodal:
                row.update(
                    caption_doc_frequency=int(cap),
                    tag_doc_frequency=int(tag),
                    matched_doc_frequency=int(both),
                )
            rows.append(row)
        return src, rows
    if index.normalizer.name != "simple":
        raise UsageError("suffix-array concept counts need an index with --normalize simple (whole words)")
    # every distinct form searched once, all in one batched call; documents read only for forms that occur
    forms = list(dict.fromkeys(f" {f} " for c in vocab.concepts for f in c.forms))
    encoded = [encode_term(index, q) for q in forms]
    ranges = dict(zip(forms, search.find_ranges(index, encoded).tolist()))
    occ = {q: sum(hi - lo for lo, hi in r) for q, r in ranges.items()}
    docs: dict[str, list[np.ndarray]] = {}
    for q in forms:
        if occ[q]:
            docs[q] = [search.range_doc_ids(index, s, lo, hi) for s, (lo, hi) in enumerate(ranges[q])]
    for c in vocab.concepts:
        check(deadline)
        per_shard: list[list[np.ndarray]] = [[] for _ in index.shards]
        for f in c.forms:
            for s, arr in enumerate(docs.get(f" {f} ", [])):
                per_shard[s].append(arr)
        rows.append(_row(c, sum(occ[f" {f} "] for f in c.forms), union_size(per_shard)))
    return src, rows


def _row(c, occurrences: int, doc_frequency: int) -> dict:
    return {
        "concept_id": c.concept_id,
        "concept": c.concept,
        "benchmark": c.benchmark,
        "occurrences": int(occurrences),
        "doc_frequency": int(doc_frequency),
    }
