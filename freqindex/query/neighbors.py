"""Nearest pretraining neighbours of eval items: one row per (item, document), the best window of each
document, top-k documents per item, in one of two modes (``mode``, each row says which):

- ``exhaustive``: every window of the corpus was embedded by ``freqindex embed``; the items are embedded
  with the same model and searched in its FAISS index. Cost: the embedding of the whole corpus, once.
- ``candidates``: no corpus embedding; each item's candidate documents are found in the suffix arrays and
  only their windows near the shared spans are embedded (cached on disk), see
  :mod:`freqindex.query.candidates`. Cost: proportional to items x candidates, not to the corpus.
- ``auto``: exhaustive when the index has vectors, else candidates.
"""

from __future__ import annotations

import pyarrow as pa

from freqindex import settings
from freqindex.errors import UsageError
from freqindex.evals import EvalItem
from freqindex.query.candidates import top_rows
from freqindex.suffix.index import Index
from freqindex.vectors import ann
from freqindex.vectors.embedders import load_embedder

NEIGHBOR_SCHEMA = pa.schema(
    [
        ("eval", pa.string()),
        ("item_id", pa.string()),
        ("rank", pa.int32()),
        ("doc_id", pa.int64()),
        ("ext_id", pa.string()),
        ("char_start", pa.int32()),
        ("char_end", pa.int32()),
        ("similarity", pa.float32()),
        ("snippet", pa.string()),
        ("mode", pa.string()),
    ]
)
MODES = ("auto", "exhaustive", "candidates")


def resolve_mode(idx: Index, mode: str) -> str:
    """``auto`` -> exhaustive when the index has vectors, else candidates; a mode the index cannot serve is
    an error."""
    if mode not in MODES:
        raise UsageError(f"unknown --neighbors {mode!r}; choose auto, exhaustive or candidates")
    vec = idx.manifest.get("vectors")
    if mode == "auto":
        mode = "exhaustive" if vec else "candidates"
    if mode == "exhaustive" and not vec:
        raise UsageError(
            f"{idx.path} has no vectors; run `freqindex embed {idx.path}` first, or use --neighbors candidates"
        )
    if mode == "candidates" and vec and vec.get("modality", "text") != "text":
        raise UsageError(
            "--neighbors candidates embeds document text; this index's vectors are not text windows"
        )
    return mode


def neighbors(
    idx: Index,
    items: list[EvalItem],
    k: int = 10,
    eval_name: str = "eval",
    nprobe: int | None = None,
    snippet_chars: int = 240,
    *,
    mode: str = "exhaustive",
    candidates: int | None = None,
    cache_dir=None,
    skip_long: bool = False,
    stats: dict | None = None,
) -> list[dict]:
    """Top-``k`` documents for every item (cosine similarity of the best window of each document).

    ``mode``: exhaustive, candidates or auto (module docstring). Candidates mode takes ``candidates``
    documents per item (default ``DEFAULT_CANDIDATES``) and caches window vectors under ``cache_dir``
    (see :mod:`freqindex.vectors.cache`; False: no cache). An item longer than the model reads is an
    error, or, with ``skip_long``, gets no neighbours and is counted. ``stats``, when given, is filled with
    what the run did (mode, model, documents and windows embedded, seconds)."""
    from freqindex.vectors.embedders import DEFAULT_EMBEDDER

    if k < 1 or k > settings.MAX_K:
        raise UsageError(f"-k must be between 1 and {settings.MAX_K}")
    if not items:
        raise UsageError("no eval items")
    mode = resolve_mode(idx, mode)
    model = (idx.manifest.get("vectors") or {}).get("model", DEFAULT_EMBEDDER)
    emb = load_embedder(model)
    texts = [idx.normalizer.document(it.text) for it in items]
    too_long = 0
    if skip_long:
        fits = emb.fits(texts)
        too_long = fits.count(False)
        items = [it for it, ok in zip(items, fits) if ok]
        texts = [t for t, ok in zip(texts, fits) if ok]
    else:
        emb.check_fits([it.id for it in items], texts)
    rows: list[dict] = []
    st: dict = {"mode": mode, "model": model}
    if items and mode == "candidates":
        rows, more = _candidate_rows(idx, items, texts, k, candidates, cache_dir, snippet_chars, emb)
        st.update(more)
    elif items:
        rows, more = _exhaustive_rows(idx, items, texts, k, nprobe, snippet_chars, emb)
        st.update(more)
    for r in rows:
        r["eval"] = eval_name
    if stats is not None:
        stats.update(st, items_too_long=too_long)
    return rows


def _candidate_rows(idx: Index, items, texts, k: int, m: int | None, cache_dir, snippet_chars: int, emb):
    from freqindex.query.candidates import DEFAULT_CANDIDATES, candidate_neighbors
    from freqindex.vectors.cache import EmbeddingCache
    from freqindex.vectors.stage import DEFAULT_CHUNK_TOKENS

    vec = idx.manifest.get("vectors") or {}
    sizes = tuple(vec.get("chunk_tokens", DEFAULT_CHUNK_TOKENS))
    stride = vec.get("stride") if isinstance(vec.get("stride"), int) else None
    cache = EmbeddingCache.for_index(idx, emb.key, emb.dim, cache_dir)
    rows, st = candidate_neighbors(
        idx, items, texts, k, DEFAULT_CANDIDATES if m is None else m, emb, sizes, stride, cache, snippet_chars
    )
    st.update({"window_sizes": list(sizes), "cache": str(cache.directory) if cache.directory else None})
    return rows, st


def _exhaustive_rows(idx: Index, items, texts, k: int, nprobe: int | None, snippet_chars: int, emb):
    vec = idx.manifest["vectors"]
    vectors = idx.vectors
    index, doc_of, cs, ce = vectors.faiss_index, vectors.doc_id, vectors.char_start, vectors.char_end
    q = emb.encode(texts)
    fetch = min(index.ntotal, k * 8)
    sims, ids = ann.search(index, q, fetch, nprobe if nprobe is not None else vec.get("nprobe"), use_gpu=True)
    rows = []
    for it, srow, irow in zip(items, sims, ids):
        hits = [(int(doc_of[v]), s, cs[v], ce[v]) for s, v in zip(srow.tolist(), irow.tolist()) if v >= 0]
        rows += top_rows(idx, it.id, hits, k, "exhaustive", snippet_chars, idx.doc_text)
    return rows, {"factory": vec.get("factory"), "vectors": int(index.ntotal)}


def max_similarity(rows: list[dict]) -> dict[str, float]:
    out: dict[str, float] = {}
    for r in rows:
        out[r["item_id"]] = max(out.get(r["item_id"], -1.0), r["similarity"])
    return out
