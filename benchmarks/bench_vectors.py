"""Vector benchmarks.

    python benchmarks/bench_vectors.py --out bench-out [--docs 3000] [--n 1000000] [--queries 10000]

1. Embedding throughput on this machine's cores: freqindex's embedder (the code the embed stage runs:
   windows are embedded in one length-sorted call) vs a plain loop calling ``SentenceTransformer.encode`` on
   consecutive slices of 32 texts in input order (no length bucketing across slices) over the same texts
   (all-MiniLM-L6-v2; the first --docs GSM8K train questions + WikiText-2 paragraphs). documents/s, tokens/s.
2. Search: --queries queries against --n generated 384-d vectors (a clustered mixture, L2-normalized):
   the default FAISS index (ann.choose_factory) vs exact search: build time, queries/s, recall@10.
Writes bench-out/vectors.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DATA  # noqa: E402


def embedding(n_docs: int) -> dict:
    from freqindex.vectors.embedders import load_embedder

    qs = [
        json.loads(ln)["question"]
        for ln in (DATA / "evals" / "gsm8k" / "train.jsonl").read_text().splitlines()
    ]
    wiki = [
        ln for ln in (DATA / "corpora" / "wikitext2" / "valid.txt").read_text().split("\n") if len(ln) > 200
    ]
    texts = (qs[: n_docs // 2] + wiki[: n_docs - n_docs // 2])[:n_docs]
    emb = load_embedder("minilm-v1")
    model = emb._model
    n_tokens = sum(len(s) for s in emb.token_spans(texts))
    emb.encode(texts[:64])  # warm up
    t = time.perf_counter()
    emb.encode(texts)
    ours = time.perf_counter() - t
    t = time.perf_counter()
    for a in range(0, len(texts), 32):
        model.encode(texts[a : a + 32], batch_size=32, normalize_embeddings=True, show_progress_bar=False)
    plain = time.perf_counter() - t
    return {
        "docs": len(texts),
        "tokens": n_tokens,
        "freqindex_length_bucketed": {
            "seconds": round(ours, 2),
            "docs_per_s": round(len(texts) / ours, 1),
            "tokens_per_s": round(n_tokens / ours),
        },
        "plain_encode_loop": {
            "seconds": round(plain, 2),
            "docs_per_s": round(len(texts) / plain, 1),
            "tokens_per_s": round(n_tokens / plain),
        },
        "speedup": round(plain / ours, 2),
    }


def search(n: int, n_q: int, d: int = 384) -> dict:
    from freqindex.vectors import ann

    rng = np.random.default_rng(0)
    centers = rng.standard_normal((1000, d)).astype(np.float32)
    x = np.empty((n, d), dtype=np.float32)
    for a in range(0, n, 100_000):
        b = min(n, a + 100_000)
        x[a:b] = centers[rng.integers(0, 1000, b - a)] + 0.6 * rng.standard_normal((b - a, d)).astype(
            np.float32
        )
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    q = x[rng.choice(n, n_q, replace=False)] + 0.05 * rng.standard_normal((n_q, d)).astype(np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    factory, nprobe = ann.choose_factory(n)
    t = time.perf_counter()
    index = ann.new_index(factory, d)
    nlist = ann.faiss_module().extract_index_ivf(index).nlist if "IVF" in factory else 1
    index = ann.train(index, x[rng.choice(n, min(n, 50 * nlist), replace=False)])
    for a in range(0, n, 250_000):
        index.add(x[a : a + 250_000])
    build_s = time.perf_counter() - t
    t = time.perf_counter()
    _, approx = ann.search(index, q, 10, nprobe)
    approx_s = time.perf_counter() - t
    n_ref = min(n_q, 1000)  # exact search of every query would dominate the run: recall on the first 1,000
    t = time.perf_counter()
    _, exact = ann.exact_search(x, q[:n_ref], 10)
    exact_s = time.perf_counter() - t
    return {
        "vectors": n,
        "dim": d,
        "queries": n_q,
        "factory": factory,
        "nprobe": nprobe,
        "build_seconds": round(build_s, 1),
        "default_index": {
            "seconds": round(approx_s, 2),
            "queries_per_s": round(n_q / approx_s, 1),
            "recall_at_10": round(ann.recall_at_k(approx[:n_ref], exact), 4),
            "recall_queries": n_ref,
        },
        "exact_flat": {"seconds": round(exact_s, 2), "queries_per_s": round(n_ref / exact_s, 1)},
        "gpu": ann.gpu_count() > 0,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="bench-out")
    ap.add_argument("--docs", type=int, default=1000)
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--queries", type=int, default=10_000)
    ap.add_argument("--skip-embedding", action="store_true")
    a = ap.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    res = {}
    if not a.skip_embedding:
        res["embedding"] = embedding(a.docs)
    res["search"] = search(a.n, a.queries)
    (out / "vectors.json").write_text(json.dumps(res, indent=2))
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
