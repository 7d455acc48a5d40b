"""FAISS indexes: chosen by size, trained on a sample, built per part and merged; cosine via inner product.

Defaults (``--faiss-factory`` overrides), chosen from recall measured on real all-MiniLM-L6-v2 vectors of
real text (94,370 windows of Flickr8k captions, GSM8K questions and WikiText paragraphs; queries: GSM8K
test questions, some planted in long documents, and corpus windows; README "FAISS defaults"): exact
``Flat`` below ``EXACT_BELOW`` (250,000) vectors, where exact search costs little; ``IVF{nlist},Flat`` up
to 2 M (nlist a power of two near 4*sqrt(n), nprobe = nlist/8: at nlist/32, the old default, recall@10 of
the eval items was 0.94 and a planted question lost its rank 1; at nlist/8 0.987 and every rank 1 kept);
``IVF{nlist},SQ8`` beyond (nprobe = nlist/8, not measured on real vectors at that size).
faiss-gpu is used for training and search when it and a CUDA device are present; the CPU path is the default.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from freqindex.errors import UsageError

EXACT_BELOW = 250_000
SQ8_FROM = 2_000_000
NPROBE_FRACTION = 8  # nprobe = nlist / NPROBE_FRACTION


def faiss_module():
    try:
        import faiss
    except ImportError:
        raise UsageError("FAISS is missing: pip install faiss-cpu (or the 'gpu' extra)") from None
    return faiss


def gpu_count() -> int:
    """CUDA devices FAISS can use (0 with faiss-cpu). A GPU build whose driver fails is reported, not hidden."""
    faiss = faiss_module()
    if not hasattr(faiss, "get_num_gpus"):
        return 0
    try:
        return int(faiss.get_num_gpus())
    except RuntimeError as exc:  # faiss-gpu installed but CUDA unusable: say so once, then run on the CPU
        warnings.warn(
            f"faiss-gpu cannot use the GPU, searching on the CPU: {exc}", RuntimeWarning, stacklevel=2
        )
        return 0


def choose_factory(n: int, exact_below: int | None = None) -> tuple[str, int | None]:
    """(factory string, nprobe) for ``n`` vectors; ``exact_below`` overrides ``EXACT_BELOW`` (tests use 0 to
    check the approximate rule on a corpus they can afford to embed)."""
    if n < (EXACT_BELOW if exact_below is None else exact_below):
        return "Flat", None
    nlist = 2 ** max(4, round(math.log2(4 * math.sqrt(n))))
    nprobe = max(16, nlist // NPROBE_FRACTION)
    return (f"IVF{nlist},Flat" if n < SQ8_FROM else f"IVF{nlist},SQ8"), nprobe


def new_index(factory: str, dim: int):
    faiss = faiss_module()
    try:
        return faiss.index_factory(dim, factory, faiss.METRIC_INNER_PRODUCT)
    except RuntimeError as exc:  # FAISS reports a bad factory string as a RuntimeError
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


def set_nprobe(index, nprobe: int | None) -> bool:
    """Set the IVF lists searched; True when applied, False when ``index`` has no IVF level (Flat, HNSW:
    nothing to set) or ``nprobe`` is None."""
    if nprobe is None:
        return False
    ivf = faiss_module().try_extract_index_ivf(index)
    if ivf is None:
        return False
    ivf.nprobe = int(nprobe)
    return True


# CPU index id -> (the CPU index, its copy on the GPUs). The CPU index is kept so its id stays its own; the
# copy is made once per process (copying a large index to the GPUs costs far more than a search).
_GPU_INDEXES: dict[int, tuple[object, object]] = {}


def gpu_index(index):
    """The copy of ``index`` on all GPUs, made on first use and reused by every later search."""
    hit = _GPU_INDEXES.get(id(index))
    if hit is not None and hit[0] is index:
        return hit[1]
    g = faiss_module().index_cpu_to_all_gpus(index)
    _GPU_INDEXES[id(index)] = (index, g)
    return g


def search(index, queries: np.ndarray, k: int, nprobe: int | None = None, use_gpu: bool = False):
    """(similarities, vector ids) of the ``k`` nearest vectors by inner product."""
    faiss = faiss_module()
    q = np.ascontiguousarray(queries, dtype=np.float32)
    is_ivf = set_nprobe(index, nprobe)
    if use_gpu and gpu_count() > 0 and hasattr(faiss, "index_cpu_to_all_gpus"):
        g = gpu_index(index)
        if is_ivf:
            faiss.GpuParameterSpace().set_index_parameter(g, "nprobe", int(nprobe))
        return g.search(q, k)
    return index.search(q, k)


def exact_search(vectors: np.ndarray, queries: np.ndarray, k: int):
    """Brute-force reference: exact inner-product top-k (FAISS Flat)."""
    faiss = faiss_module()
    flat = faiss.IndexFlatIP(vectors.shape[1])
    flat.add(np.ascontiguousarray(vectors, dtype=np.float32))
    return flat.search(np.ascontiguousarray(queries, dtype=np.float32), k)


def recall_at_k_ties(approx_sims: np.ndarray, exact_sims: np.ndarray) -> float:
    """recall@k by similarity: a result counts when it is at least as similar as the k-th exact one (less
    1e-5). Unlike id overlap, it does not punish picking one of several identical vectors (real corpora
    repeat texts: duplicate captions, quoted passages)."""
    k = exact_sims.shape[1]
    return float(np.mean((approx_sims[:, :k] >= exact_sims[:, k - 1 : k] - 1e-5).sum(axis=1) / k))


def recall_at_k(approx_ids: np.ndarray, exact_ids: np.ndarray) -> float:
    k = exact_ids.shape[1]
    hits = sum(len(set(a[:k]) & set(e)) for a, e in zip(approx_ids, exact_ids))
    return hits / (len(exact_ids) * k)
