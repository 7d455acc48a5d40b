"""Per-concept counts from an index for `freqindex analyze --concept-results`, and their similarity control.

Counts are the document frequencies ``freqindex concepts`` reports for the same index and vocabulary
(query/concepts.py): ``caption`` (documents whose text holds a form of the concept), ``tags`` (documents whose
image tags do) or ``matched`` (both: the study's "integrated" counts); ``auto`` is ``matched`` on an index
built with ``--tags-field`` and tagged with this vocabulary, else ``caption`` (tags when tagged, else the
suffix arrays).

Pruning (``--test-items`` with ``--prune-threshold T``): the test items of each benchmark (their image
vectors, or texts embedded with the index's own model) are searched in the index's FAISS vectors; every
document with a vector at least T similar (cosine) to a test item of a benchmark is not counted for that
benchmark's concepts. The search asks for more neighbours until every item's last neighbour is below T
(or the whole index was returned), so no document above T is missed by a top-k cut.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from freqindex.analysis.per_concept import (
    ConceptAnalysisConfig,
    _Inputs,
    join_counts,
    load_results_table,
)
from freqindex.errors import BadInputError, UsageError
from freqindex.suffix.index import Index

COUNT_COLUMNS = {"caption": "doc_frequency", "tags": "tag_doc_frequency", "matched": "matched_doc_frequency"}


def resolve_count(index: Index, vocab, count: str) -> tuple[str, str]:
    """(count kind, concept_counts source) for ``count`` on this index and vocabulary."""
    from freqindex.query.concepts import resolve_source

    multimodal = bool(index.manifest.get("concepts", {}).get("tags_field"))
    tagged = index.manifest.get("concepts", {}).get("key") == vocab.key
    if count == "auto":
        count = "matched" if multimodal and tagged else "caption"
    if count in ("tags", "matched"):
        if not index.manifest.get("config", {}).get("tags_field"):
            raise UsageError(f"--count {count} needs an image-caption index built with --tags-field")
        if index.manifest.get("concepts", {}).get("key") != vocab.key:
            raise UsageError(
                f"--count {count} reads the index's concept tags, and it is not tagged with this vocabulary: "
                f"run `freqindex tag {index.path} --concepts VOCAB` first (or use --count caption)"
            )
        return count, resolve_source(index, vocab, "tags")
    return count, resolve_source(index, vocab, "auto")


def concept_doc_sets(index: Index, vocab, source: str, count: str) -> dict[int, np.ndarray]:
    """concept_id -> sorted global ids of the documents that ``count`` counts for it (their number is the
    concept's count; the pruned count removes some of them)."""
    if source == "tags":
        import pyarrow.dataset as ds

        hits = ds.dataset(str(index.path / "concepts" / "hits"), format="parquet").to_table().to_pandas()
        cap = hits["occurrences"].to_numpy() > 0
        tag = hits["in_tags"].to_numpy(dtype=bool)
        keep = {"caption": cap, "tags": tag, "matched": cap & tag}[count]
        hits = hits[keep]
        grouped = {
            int(c): np.unique(g.to_numpy(dtype=np.int64)) for c, g in hits.groupby("concept_id")["doc_id"]
        }
        return {c.concept_id: grouped.get(c.concept_id, np.zeros(0, np.int64)) for c in vocab.concepts}
    from freqindex.analysis.core import doc_ids_many

    forms = sorted({f for c in vocab.concepts for f in c.forms})
    found = dict(zip(forms, doc_ids_many(index, [index.encode_query(f" {f} ") for f in forms])))
    out = {}
    for c in vocab.concepts:
        arrays = [found[f] for f in c.forms]
        out[c.concept_id] = np.unique(np.concatenate(arrays)) if arrays else np.zeros(0, np.int64)
    return out


def load_test_items(path: str, index: Index) -> tuple[np.ndarray, np.ndarray]:
    """(benchmark per item, L2-normalized vectors) of a test-item table: ``benchmark`` and, per row, a
    ``vector`` (a list of floats: the test image's embedding in the index's vector space) or a ``text``
    (embedded with the index's own model, normalized like the stored documents)."""
    from freqindex.analysis.per_concept import read_table

    df = read_table(path, ("benchmark",), "test items")
    bench = df["benchmark"].map(lambda v: "" if v is None else str(v).strip()).to_numpy()
    if (bench == "").any():
        raise BadInputError(f"{path}: row {int(np.flatnonzero(bench == '')[0]) + 1}: benchmark is empty")
    if "vector" not in df.columns and "text" not in df.columns:
        raise BadInputError(f"{path}: test items need a 'vector' or a 'text' column (and 'benchmark')")
    dim = int(index.manifest["vectors"]["dim"])
    vectors = df["vector"].tolist() if "vector" in df.columns else [None] * len(df)
    texts = df["text"].tolist() if "text" in df.columns else [None] * len(df)
    out = np.zeros((len(df), dim), dtype=np.float32)
    to_embed: list[int] = []
    for i, (v, t) in enumerate(zip(vectors, texts)):
        if v is not None and not (isinstance(v, float) and np.isnan(v)):
            try:
                arr = np.asarray(v, dtype=np.float32)
            except (TypeError, ValueError):
                raise BadInputError(f"{path}: row {i + 1}: the vector is not a list of numbers") from None
            if arr.shape != (dim,):
                raise BadInputError(f"{path}: row {i + 1}: the vector must hold {dim} numbers (the index's)")
            out[i] = arr
        elif isinstance(t, str) and t.strip():
            to_embed.append(i)
        else:
            raise BadInputError(f"{path}: row {i + 1}: no vector and no text")
    if to_embed:
        from freqindex.vectors.embedders import load_embedder

        emb = load_embedder(index.manifest["vectors"]["model"])
        out[to_embed] = emb.encode([index.normalizer.document(texts[i]) for i in to_embed])
    if not np.isfinite(out).all():
        raise BadInputError(f"{path}: a vector holds NaN or infinity")
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    if (norms == 0).any():
        raise BadInputError(f"{path}: row {int(np.flatnonzero(norms[:, 0] == 0)[0]) + 1}: the vector is zero")
    return bench, out / norms


def documents_near(index: Index, vectors: np.ndarray, threshold: float, start_k: int = 256) -> np.ndarray:
    """Sorted ids of the documents with a vector at least ``threshold`` similar to any of ``vectors``
    (the index's FAISS search; k grows until every query's last hit is below the threshold)."""
    from freqindex.vectors import ann

    vec = index.vectors
    faiss_index, doc_of = vec.faiss_index, vec.doc_id
    nprobe = index.manifest["vectors"].get("nprobe")
    total = int(faiss_index.ntotal)
    hits: list[np.ndarray] = []
    todo = np.arange(len(vectors))
    k = min(total, start_k)
    while todo.size and k > 0:
        sims, ids = ann.search(faiss_index, vectors[todo], k, nprobe, use_gpu=True)
        keep = (sims >= threshold) & (ids >= 0)
        hits.append(ids[keep])
        # an item whose k-th neighbour is still above the threshold may have more: ask again with more
        full = (sims[:, -1] >= threshold) & (ids[:, -1] >= 0)
        if k >= total:
            break
        todo = todo[full]
        k = min(total, k * 4)
    vec_ids = np.unique(np.concatenate(hits)) if hits else np.zeros(0, np.int64)
    return np.unique(doc_of[vec_ids]).astype(np.int64) if vec_ids.size else np.zeros(0, np.int64)


def inputs_from_index(config: ConceptAnalysisConfig, step) -> tuple[_Inputs, dict]:
    """Load the results, count the vocabulary on the index (and prune), and join them."""
    from freqindex.concepts.vocab import load_vocabulary
    from freqindex.query.concepts import concept_counts

    index = Index.open(config.index)
    vocab = load_vocabulary(config.vocabulary, index.normalizer, config.exact)
    results, scale, w_res = load_results_table(
        config.results, index.normalizer.document, config.accuracy_scale
    )
    count, source = resolve_count(index, vocab, config.count)
    src, crows = concept_counts(index, vocab, source)
    column = COUNT_COLUMNS[count]
    counts = pd.DataFrame(
        {
            "concept_id": [r["concept_id"] for r in crows],
            "benchmark": [r["benchmark"] for r in crows],
            "concept": [r["concept"] for r in crows],
            "concept_key": [index.normalizer.document(r["concept"]) for r in crows],
            "count": [float(r[column]) for r in crows],
        }
    )
    inputs = join_counts(results, counts, counts_label=config.vocabulary, results_label=config.results)
    inputs.warnings[:0] = w_res + [f"{config.vocabulary}: {w}" for w in vocab.warnings]
    data: dict = {
        "accuracy": scale,
        "counts": {
            "kind": "index",
            "index": str(index.path),
            "documents": index.total_docs,
            "vocabulary": config.vocabulary,
            "count": count,
            "source": src,
            "column": column,
            "normalization": index.normalizer.name,
        },
    }
    if config.test_items is not None:
        if not index.manifest.get("vectors"):
            raise UsageError(f"--test-items needs vectors in {index.path}; run `freqindex embed` first")
        step("pruning near-copies of the test items")
        inputs.table["pruned_count"], data["pruning"] = _pruned_counts(
            index, vocab, src, count, config, inputs
        )
    return inputs, data


def _pruned_counts(
    index: Index, vocab, source: str, count: str, config: ConceptAnalysisConfig, inputs: _Inputs
) -> tuple[np.ndarray, dict]:
    """Per row of the joined table, the count without the documents near that benchmark's test items."""
    bench, vecs = load_test_items(config.test_items, index)
    docs = concept_doc_sets(index, vocab, source, count)
    by_key = {}
    for c in vocab.concepts:
        by_key.setdefault((c.benchmark, index.normalizer.document(c.concept)), c.concept_id)
    table = inputs.table
    benchmarks = sorted(set(table["benchmark"]))
    near = {
        b: documents_near(index, vecs[bench == b], config.prune_threshold)
        for b in benchmarks
        if (bench == b).any()
    }
    lacking = [b for b in benchmarks if b not in near]
    if lacking:
        inputs.warnings.append(
            f"{config.test_items}: no test items for benchmarks {', '.join(lacking)}; their counts are not pruned"
        )
    extra = sorted(set(bench) - set(benchmarks))
    if extra:
        inputs.warnings.append(
            f"{config.test_items}: test items of benchmarks without results: {', '.join(extra)}"
        )
    pruned = np.empty(len(table))
    cache: dict[tuple, float] = {}
    for i, (b, k) in enumerate(zip(table["benchmark"], table["concept_key"])):
        if (b, k) not in cache:
            cid = by_key.get((b, k), by_key.get((None, k)))
            d = docs[cid]
            p = near.get(b)
            cache[(b, k)] = (
                float(d.size - np.isin(d, p, assume_unique=True).sum()) if p is not None else float(d.size)
            )
        pruned[i] = cache[(b, k)]
    info = {
        "test_items": config.test_items,
        "threshold": config.prune_threshold,
        "items_per_benchmark": {b: int((bench == b).sum()) for b in sorted(set(bench))},
        "documents_removed_per_benchmark": {b: int(v.size) for b, v in near.items()},
    }
    return pruned, info


__all__ = ["inputs_from_index", "concept_doc_sets", "documents_near", "load_test_items", "resolve_count"]
