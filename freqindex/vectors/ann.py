"""FAISS indexes: chosen by size, trained on a sample, built per part and merged; cosine via inner product.

Defaults (``--faiss-factory`` overrides): exact ``Flat`` below 50,000 vectors; ``IVF{nlist},Flat`` up to
2 M (nlist a power of two near 4*sqrt(n), nprobe = nlist/32); ``IVF{nlist},SQ8`` beyond (nprobe = nlist/64).
faiss-gpu is used for training and search when it and a CUDA device are present; the CPU path is the default.
"""

from __future__ import annotations

import math

import numpy as np

from freqindex.errors import UsageError

EXACT_BELOW = 50_000
SQ8_FROM = 2_000_000


def faiss_module():
    try:
        import faiss
    except ImportError:
        raise UsageError("FAISS is missing: pip install faiss-cpu (or the 'gpu' extra)") from None
    return faiss


def gpu_count() -> int:
    faiss = faiss_module()
    try:
        return int(faiss.get_num_gpus()) if hasattr(faiss, "get_num_gpus") else 0
    except Exception:
        return 0


def choose_factory(n: int) -> tuple[str, int | None]:
    """(factory string, nprobe) for ``n`` vectors."""
    if n < EXACT_BELOW:
        return "Flat", None
    nlist = 2 ** max(4, round(math.log2(4 * math.sqrt(n))))
    if n < SQ8_FROM:
        return f"IVF{nlist},Flat", max(16, nlist // 32)
    return f"IVF{nlist},SQ8", max(16, nlist // 64)


def new_index(factory: str, dim: int):
    faiss = faiss_module()
    try:
        return faiss.index_factory(dim, factory, faiss.METRIC_INNER_PRODUCT)
    except Exception as exc:
        raise UsageError(f"bad --faiss-factory {factory!r}: {exc}") from None


def train(index, sample: np.ndarray, use_gpu: bool = False):
    """Train ``index`` (no-op when it needs none) on ``sample``, on the GPU when asked and possible."""
    if index.is_trained:
        return index
    faiss = faiss_module()
    sample = np.ascontiguousarray(sample, dtype=np.float32)
    if use_gpu and gpu_count() > 0 and hasattr(faiss, "index_cpu_to_all_gpus"):
        g = faiss.index_cpu_to_all_gpus(index)
        g.train(sample)
        return faiss.index_gpu_to_cpu(g)
    index.train(sample)
    return index


def set_nprobe(index, nprobe: int | None) -> None:
    if nprobe is None:
        return
    faiss = faiss_module()
    try:
        faiss.extract_index_ivf(index).nprobe = int(nprobe)
    except Exception:
        pass


def search(index, queries: np.ndarray, k: int, nprobe: int | None = None, use_gpu: bool = False):
    """(similarities, vector ids) of the ``k`` nearest vectors by inner product."""
    faiss = faiss_module()
    q = np.ascontiguousarray(queries, dtype=np.float32)
    set_nprobe(index, nprobe)
    if use_gpu and gpu_count() > 0 and hasattr(faiss, "index_cpu_to_all_gpus"):
        g = faiss.index_cpu_to_all_gpus(index)
        if nprobe is not None:
            try:
                faiss.GpuParameterSpace().set_index_parameter(g, "nprobe", int(nprobe))
            except Exception:
                pass
        return g.search(q, k)
    return index.search(q, k)


def exact_search(vectors: np.ndarray, queries: np.ndarray, k: int):
    """Brute-force reference: exact inner-product top-k (FAISS Flat)."""
    faiss = faiss_module()
    flat = faiss.IndexFlatIP(vectors.shape[1])
    flat.add(np.ascontiguousarray(vectors, dtype=np.float32))
    return flat.search(np.ascontiguousarray(queries, dtype=np.float32), k)


def recall_at_k(approx_ids: np.ndarray, exact_ids: np.ndarray) -> float:
    k = exact_ids.shape[1]
    hits = sum(len(set(a[:k]) & set(e)) for a, e in zip(approx_ids, exact_ids))
    return hits / (len(exact_ids) * k)
