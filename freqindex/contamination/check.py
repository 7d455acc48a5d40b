"""The contamination check: metrics per item and field, buckets, boilerplate control, evidence, summary.

Buckets (by the highest coverage over the item's checkable fields): ``clean`` (< clean_below, 0.2),
``suspicious`` (up to dirty_at), ``dirty`` (>= dirty_at, 0.8), ``uncheckable`` (every field is shorter
than the short-item floor: never silently called clean). A field shorter than ``min_len`` but at least
``min_short_len`` tokens long is judged by the whole-item rule (coverage 1.0 when its whole normalized text
occurs in the corpus, else 0.0; see ``metrics``); every record says which rule decided it. Boilerplate
control: a match whose first ``min_len`` tokens (for a short item: the whole item) occur in more than
``boilerplate_ceiling`` corpus documents (templates, famous quotes, formula boilerplate) does not count
toward coverage; such matches are counted in the report.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, replace

import numpy as np

from freqindex import settings
from freqindex.config import load_config
from freqindex.contamination.metrics import (
    DEFINITIONS,
    RULES,
    FieldMetrics,
    covered_mask,
    field_metrics,
    gpt3_ngram_size,
    item_bytes,
    item_text,
)
from freqindex.deadline import Deadline, check
from freqindex.errors import UsageError
from freqindex.evals import EvalItem
from freqindex.suffix.index import Index

BUCKETS = ("clean", "suspicious", "dirty", "uncheckable")
MS_BATCH_TOKENS = 16_384  # matching statistics are computed for this many item tokens at a time


@dataclass(frozen=True)
class Policy:
    """The contamination policy (``contamination --config policy.toml``: top-level keys or a
    ``[contamination]`` table, per-field overrides in ``[fields.NAME]`` tables; flags win over the file).
    Defaults live in freqindex/settings.py, shared with the server's request model."""

    min_len: int | None = None  # tokens; None: settings.MIN_LEN_BYTES for bytes, MIN_LEN_TOKENS for HF tokens
    # the floor of the whole-item rule for items shorter than min_len; None: settings.MIN_SHORT_LEN_BYTES for
    # bytes, MIN_SHORT_LEN_TOKENS for HF tokens. Set it to min_len to turn the rule off (every shorter item
    # is then uncheckable).
    min_short_len: int | None = None
    skip: int = settings.CONTAMINATION_SKIP
    clean_below: float = settings.CLEAN_BELOW
    dirty_at: float = settings.DIRTY_AT
    boilerplate_ceiling: int = settings.BOILERPLATE_CEILING
    fail_above: float | None = None
    fields: dict = field(default_factory=dict)  # per-field overrides of min_len/skip/clean_below/dirty_at

    def for_field(self, name: str, index: Index) -> Policy:
        p = replace(self, **{k: v for k, v in self.fields.get(name, {}).items() if k in _FIELD_KEYS})
        if p.min_len is None:
            p = replace(p, min_len=settings.MIN_LEN_BYTES if index.width == 1 else settings.MIN_LEN_TOKENS)
        if p.min_short_len is None:
            p = replace(
                p,
                min_short_len=settings.MIN_SHORT_LEN_BYTES
                if index.width == 1
                else settings.MIN_SHORT_LEN_TOKENS,
            )
        return p

    def validate(self) -> Policy:
        if not 0 <= self.clean_below <= self.dirty_at <= 1:
            raise UsageError("thresholds must satisfy 0 <= clean_below <= dirty_at <= 1")
        if self.min_len is not None and self.min_len < 1:
            raise UsageError("min_len must be at least 1")
        if self.min_short_len is not None and self.min_short_len < 1:
            raise UsageError("min_short_len must be at least 1")
        if self.skip < 0 or self.boilerplate_ceiling < 1:
            raise UsageError("skip must be >= 0 and boilerplate_ceiling >= 1")
        if self.fail_above is not None and not 0 <= self.fail_above <= 1:
            raise UsageError("--fail-above takes a fraction between 0 and 1")
        for name, override in self.fields.items():
            if not isinstance(override, dict):
                raise UsageError(f"[fields.{name}] must be a table of {', '.join(sorted(_FIELD_KEYS))}")
            unknown = sorted(set(override) - _FIELD_KEYS)
            if unknown:
                raise UsageError(
                    f"unknown key(s) in [fields.{name}]: {', '.join(unknown)} "
                    f"(known: {', '.join(sorted(_FIELD_KEYS))})"
                )
            base = {k: getattr(self, k) for k in _FIELD_KEYS}
            try:
                load_config(Policy, overrides={**base, **override})
            except UsageError as exc:
                raise UsageError(f"[fields.{name}]: {exc}") from None
        return self


_FIELD_KEYS = {"min_len", "min_short_len", "skip", "clean_below", "dirty_at"}


def bucket_of(coverage: float | None, p: Policy) -> str:
    if coverage is None:
        return "uncheckable"
    if coverage >= p.dirty_at:
        return "dirty"
    if coverage >= p.clean_below:
        return "suspicious"
    return "clean"


def _is_boilerplate(index: Index, key: tuple[int, ...], p: Policy, cache: dict) -> bool:
    """Does the token span ``key`` occur in more than ``boilerplate_ceiling`` documents?"""
    if key not in cache:
        with index._lock:
            occ = int(index.engine.count(input_ids=list(key))["count"])
        if occ <= p.boilerplate_ceiling:
            cache[key] = False
        else:
            from freqindex.query.count import _term_doc_ids

            docs = sum(int(a.size) for a in _term_doc_ids(index, list(key)))
            cache[key] = docs > p.boilerplate_ceiling
    return cache[key]


def _boilerplate_filter(
    index: Index, ids: list[int], ms: np.ndarray, p: Policy, cache: dict
) -> tuple[np.ndarray, int]:
    """Matching statistics with boilerplate matches removed (set to 0), and how many were removed."""
    out = ms.copy()
    removed = 0
    for s in np.nonzero(ms >= p.min_len)[0].tolist():
        if _is_boilerplate(index, tuple(ids[s : s + p.min_len]), p, cache):
            out[s] = 0
            removed += 1
    return out, removed


def _evidence(index: Index, text: str, tok_to_char: np.ndarray, start: int, length: int) -> dict | None:
    from freqindex.query.docs import find_docs

    if length <= 0:
        return None
    c0, c1 = int(tok_to_char[start]), int(tok_to_char[min(start + length, len(tok_to_char) - 1)])
    span = text[c0:c1]
    if not span.strip():
        return None
    n, hits = find_docs(index, span, limit=1, literal=True)
    if not hits:
        return None
    h = hits[0]
    return {
        "doc_id": h.doc_id,
        "ext_id": h.ext_id,
        "source": h.source,
        "line": h.line,
        "span": span.strip(),
        "documents_with_span": n,
        "snippet": h.snippet,
    }


def parse_definitions(spec: str | None) -> tuple[str, ...]:
    """``gpt3,palm`` -> the selected definitions (``all`` or None: every registered one)."""
    if spec is None or spec.strip() in ("", "all"):
        return tuple(DEFINITIONS)
    names = tuple(dict.fromkeys(n.strip() for n in spec.split(",") if n.strip()))
    unknown = [n for n in names if n not in DEFINITIONS]
    if unknown:
        raise UsageError(
            f"unknown definition(s) {', '.join(unknown)}; choose from {', '.join(DEFINITIONS)} or all"
        )
    return names


def _batches(keys: list, size, budget: int = MS_BATCH_TOKENS) -> list[list]:
    """``keys`` in order, cut into batches of about ``budget`` tokens (``size(key)`` each)."""
    out: list[list] = [[]]
    used = 0
    for key in keys:
        if out[-1] and used + size(key) > budget:
            out.append([])
            used = 0
        out[-1].append(key)
        used += size(key)
    return out


def check_items(
    index: Index,
    items: list[EvalItem],
    fields: list[str],
    policy: Policy,
    semantic: dict[str, tuple[float, int]] | None = None,
    progress=None,
    definitions: tuple[str, ...] | None = None,
    deadline: Deadline | None = None,
) -> tuple[list[dict], dict]:
    """Per-item records and the summary. ``semantic``: item id -> (max similarity, doc_id), when available.
    ``definitions``: the classic definitions to compute (default: all of ``DEFINITIONS``). ``deadline`` is
    checked between batches of the matching statistics and between items."""
    from freqindex.suffix.matching import matching_statistics_batch

    definitions = tuple(DEFINITIONS) if definitions is None else definitions
    word_counts = [
        len(it.row.get(f, "").split()) for it in items for f in fields if isinstance(it.row.get(f), str)
    ]
    gpt3_n = gpt3_ngram_size(word_counts)
    cache: dict = {}
    records = []
    boiler_total = 0
    # matching statistics of every field of every item in one batched pass over the suffix arrays
    texts = {}
    for k, it in enumerate(items):
        for f in fields:
            value = it.row.get(f)
            if value is None:
                raise UsageError(f"item {it.id!r} has no field {f!r}")
            texts[(k, f)] = item_text(index, str(value))
    all_ms: dict = {}
    for batch in _batches(list(texts), lambda key: texts[key].n):
        check(deadline)
        all_ms.update(
            zip(batch, matching_statistics_batch(index, [item_bytes(index, texts[k]) for k in batch]))
        )
    for k, it in enumerate(items):
        per_field = {}
        best = (None, None)  # (coverage, field)
        evidence = None
        longest = {"tokens": 0, "chars": 0, "field": None}
        flags: dict[str, bool | None] = {}
        for f in fields:
            p = policy.for_field(f, index)
            m, itx, ms = field_metrics(
                index,
                "",
                p.min_len,
                p.skip,
                gpt3_n,
                it=texts[(k, f)],
                ms=all_ms[(k, f)],
                definitions=definitions,
                min_short_len=p.min_short_len,
            )
            removed = 0
            if m.rule == "coverage":
                ms_clean, removed = _boilerplate_filter(index, itx.ids, ms, p, cache)
                pad = 1 if index.normalizer.pad else 0
                body = slice(pad, max(pad, itx.n - pad))
                m.coverage = float(
                    covered_mask(ms_clean, p.min_len, p.skip, body.start, body.stop).sum()
                    / max(1, body.stop - body.start)
                )
            elif m.rule == "whole_item" and m.coverage and _is_boilerplate(index, tuple(itx.ids), p, cache):
                m.coverage, removed = 0.0, 1
            boiler_total += removed
            per_field[f] = {
                "rule": m.rule,
                "tokens": m.n_tokens,
                "coverage": m.coverage,
                "bucket": bucket_of(m.coverage, p),
                "longest_match_tokens": m.longest_match_tokens,
                "longest_match_chars": m.longest_match_chars,
                "boilerplate_matches": removed,
                "definitions": m.definitions,
            }
            if m.coverage is not None and (best[0] is None or m.coverage > best[0]):
                best = (m.coverage, f)
            if m.longest_match_tokens > longest["tokens"]:
                longest = {"tokens": m.longest_match_tokens, "chars": m.longest_match_chars, "field": f}
                evidence = (itx, m)
            for name, d in m.definitions.items():
                if d.get("flag") is not None:
                    flags[name] = bool(flags.get(name)) or bool(d["flag"])
                else:
                    flags.setdefault(name, None)
        p_best = policy.for_field(best[1], index) if best[1] else policy
        rec = {
            "id": it.id,
            "bucket": bucket_of(best[0], p_best),
            "rule": per_field[best[1]]["rule"] if best[1] else "too_short",
            "coverage": best[0],
            "longest_match": longest,
            "definitions": flags,
            "fields": per_field,
            "evidence": _evidence(
                index,
                evidence[0].text,
                evidence[0].tok_to_char,
                evidence[1].longest_match_start,
                evidence[1].longest_match_tokens,
            )
            if evidence
            else None,
        }
        if semantic is not None and it.id in semantic:
            sim, doc = semantic[it.id]
            rec["semantic"] = {"max_similarity": sim, "doc_id": doc}
        records.append(rec)
        if progress:
            progress(k + 1, len(items))
        check(deadline)
    counts = {b: sum(r["bucket"] == b for r in records) for b in BUCKETS}
    n = len(records)
    summary = {
        "n_items": n,
        "buckets": counts,
        "rules": {rule: sum(r["rule"] == rule for r in records) for rule in RULES},
        "dirty_fraction": counts["dirty"] / n if n else 0.0,
        "definitions": {
            name: {
                "flagged": sum(1 for r in records if r["definitions"].get(name)),
                "not_applicable": sum(1 for r in records if r["definitions"].get(name) is None),
            }
            for name in definitions
            if any(name in r["definitions"] for r in records)
        },
        "gpt3_ngram_words": gpt3_n,
        "boilerplate_matches_ignored": boiler_total,
        "settings": {
            **asdict(policy),
            "fields_checked": fields,
            "definitions": list(definitions),
            "min_len_resolved": {f: policy.for_field(f, index).min_len for f in fields},
            "min_short_len_resolved": {f: policy.for_field(f, index).min_short_len for f in fields},
        },
        "index": {
            "path": str(index.path),
            "manifest_sha256": hashlib.sha256(
                json.dumps(index.manifest, sort_keys=True).encode()
            ).hexdigest(),
        },
    }
    if semantic is not None:
        sims = [r["semantic"]["max_similarity"] for r in records if "semantic" in r]
        summary["semantic"] = {
            "items": len(sims),
            "median_max_similarity": float(np.median(sims)) if sims else None,
            "at_least_0.9": sum(s >= 0.9 for s in sims),
        }
    return records, summary


__all__ = [
    "Policy",
    "check_items",
    "parse_definitions",
    "bucket_of",
    "BUCKETS",
    "FieldMetrics",
]
