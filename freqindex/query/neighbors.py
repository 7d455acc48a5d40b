"""Nearest pretraining neighbours of eval items: embed with the index's own model, search FAISS, one row per
(item, document), best window of each document, top-k documents per item."""

from __future__ import annotations

import pyarrow as pa

from freqindex import settings
from freqindex.errors import UsageError
from freqindex.evals import EvalItem
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
    ]
)


def neighbors(
    idx: Index,
    items: list[EvalItem],
    k: int = 10,
    eval_name: str = "eval",
    nprobe: int | None = None,
    snippet_chars: int = 240,
) -> list[dict]:
    """Top-``k`` documents for every item (cosine similarity of the best window of each document)."""
    vec = idx.manifest.get("vectors")
    if not vec:
        raise UsageError(f"{idx.path} has no vectors; run `freqindex embed {idx.path}` first")
    if k < 1 or k > settings.MAX_K:
        raise UsageError(f"-k must be between 1 and {settings.MAX_K}")
    vectors = idx.vectors
    index, doc_of, cs, ce = vectors.faiss_index, vectors.doc_id, vectors.char_start, vectors.char_end
    emb = load_embedder(vec["model"])
    q = emb.encode([idx.normalizer.document(it.text) for it in items])
    fetch = min(index.ntotal, k * 8)
    sims, ids = ann.search(index, q, fetch, nprobe if nprobe is not None else vec.get("nprobe"), use_gpu=True)
    rows = []
    for it, srow, irow in zip(items, sims, ids):
        best: dict[int, tuple[float, int]] = {}
        for s, v in zip(srow.tolist(), irow.tolist()):
            if v < 0:
                continue
            d = int(doc_of[v])
            if d not in best or s > best[d][0]:
                best[d] = (s, v)
        top = sorted(best.items(), key=lambda kv: (-kv[1][0], kv[0]))[:k]
        for rank, (d, (s, v)) in enumerate(top, 1):
            if not snippet_chars:  # ids and similarities only (the analysis path): no document reads
                rows.append(
                    {
                        "eval": eval_name,
                        "item_id": it.id,
                        "rank": rank,
                        "doc_id": d,
                        "ext_id": None,
                        "char_start": int(cs[v]),
                        "char_end": int(ce[v]),
                        "similarity": float(s),
                        "snippet": None,
                    }
                )
                continue
            sh, ix = idx.doc_location(d)
            meta = sh.meta(ix)
            text = idx.doc_text(d)
            rows.append(
                {
                    "eval": eval_name,
                    "item_id": it.id,
                    "rank": rank,
                    "doc_id": d,
                    "ext_id": meta.get("id"),
                    "char_start": int(cs[v]),
                    "char_end": int(ce[v]),
                    "similarity": float(s),
                    "snippet": " ".join(text[int(cs[v]) : int(ce[v])].split())[:snippet_chars],
                }
            )
    return rows


def max_similarity(rows: list[dict]) -> dict[str, float]:
    out: dict[str, float] = {}
    for r in rows:
        out[r["item_id"]] = max(out.get(r["item_id"], -1.0), r["similarity"])
    return out
