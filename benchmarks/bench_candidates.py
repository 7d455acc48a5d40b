"""Candidate-mode neighbours against exhaustive search, on a ~10 MB real corpus with planted paraphrases.

    python benchmarks/bench_candidates.py --out bench-out [--work /work/bench-shared/candidates] [--mb 10]
    python benchmarks/bench_candidates.py --out bench-out --stage pool     # what a candidate pool can reach

1. Corpus: real texts recombined from ../shared/data (WikiText-2 paragraphs, Flickr8k captions, GSM8K train
   question + answer; 1-8 pieces per document) to about --mb MB, with GSM8K *test* questions planted
   between two pieces of random documents: 40 verbatim, 80 paraphrased (word substitution + reordering,
   tests/paraphrase.py) and 60 "hard" paraphrases (looser substitutions of the remaining content words too).
2. Index (`freqindex build`) and the exhaustive embedding of every window (32/64/128 tokens, the `embed`
   defaults, exact `Flat` index). The embedding takes 20-70 minutes on 2 cores, so it runs through a task
   runner that keeps every finished part under WORK/embed-cache: a rerun (or a crashed run) only embeds the
   parts it lacks.
3. Eval items: the 1,319 GSM8K test questions. Exhaustive top-10 documents per item (exact search over all
   windows) against candidates mode (top-M candidate documents per item from the suffix arrays, then their
   windows near the shared spans). Candidates mode reads its window vectors from an embedding cache that is
   pre-filled from the exhaustive vectors (the same (doc, window) keys), so sweeping M costs no embedding;
   a cold run on a subset checks that the vectors it computes itself give the same similarities (1e-5).
   Reported: recall@10 per M, planted documents at rank 1 per kind and mode, the windows and tokens
   candidates mode embeds, and how often a hard paraphrase that shares no informative word is missed.

Writes OUT/candidates.json.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from common import DATA, REPO, source_texts  # noqa: E402

from tests.paraphrase import paraphrase  # noqa: E402

KINDS = (("verbatim", 40), ("paraphrase", 80), ("hard", 60))


def make_planted_corpus(out: Path, target_mb: float, seed: int = 0) -> dict:
    """Recombined real documents with planted GSM8K test questions; returns the plant record."""
    record = out.parent / "planted.json"
    if record.exists():
        return json.loads(record.read_text())
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    texts = source_texts()
    test = [json.loads(ln)["question"] for ln in (DATA / "evals" / "gsm8k" / "test.jsonl").open()]
    docs: list[list[str]] = []
    total = 0
    while total < target_mb * 1_000_000:
        pieces = [rng.choice(texts) for _ in range(rng.randint(1, 8))]
        docs.append(pieces)
        total += sum(len(p.encode()) + 1 for p in pieces)
    order = list(range(len(test)))
    rng.shuffle(order)
    planted = []
    at = 0
    for kind, n in KINDS:
        for item in order[at : at + n]:
            q = test[item]
            text = q if kind == "verbatim" else paraphrase(q, item, hard=kind == "hard")
            d = rng.randrange(len(docs))
            while any(p["doc"] == d for p in planted):
                d = rng.randrange(len(docs))
            docs[d].insert(rng.randint(0, len(docs[d])), text)
            planted.append({"item": item + 1, "kind": kind, "doc": d, "text": text})
        at += n
    files = [open(out / f"part-{i}.jsonl", "w", encoding="utf-8") for i in range(4)]
    for n, pieces in enumerate(docs):
        files[n % 4].write(json.dumps({"id": f"d{n}", "text": " ".join(pieces)}) + "\n")
    for f in files:
        f.close()
    info = {
        "documents": len(docs),
        "text_bytes": sum(sum(len(p.encode()) + 1 for p in d) for d in docs),
        "planted": [{**p, "ext_id": f"d{p['doc']}"} for p in planted],
    }
    record.write_text(json.dumps(info))
    return info


def build_index(corpus: Path, index: Path) -> None:
    if (index / "manifest.json").exists():
        return
    subprocess.run(
        [
            sys.executable,
            "-m",
            "freqindex.cli",
            "build",
            str(corpus),
            "-o",
            str(index),
            "--master",
            "local[2]",
        ],
        check=True,
        cwd=REPO,
    )


def _embed_task(args: tuple) -> dict:
    from freqindex.vectors.stage import embed_block

    t, cpu = time.monotonic(), time.process_time()
    r = embed_block(*args)
    r.update(wall_s=round(time.monotonic() - t, 2), cpu_s=round(time.process_time() - cpu, 2))
    return r


class CachingRunner:
    """A task runner for the embed stage that keeps each finished part (``part-N.npy/.parquet`` and the
    task's result with its wall and CPU seconds) in ``cache`` and copies it back instead of recomputing it,
    so an interrupted embedding resumes. Missing parts are embedded by ``workers`` processes with one torch
    thread each (on a busy machine two single-threaded processes embed about twice as fast as one process
    with two threads, whose threads wait on each other)."""

    def __init__(self, index: Path, cache: Path, chunk_tokens=(32, 64, 128), workers: int = 2):
        from freqindex.suffix.index import Index
        from freqindex.vectors.stage import EMBED_BLOCK_BYTES

        self.index = index
        self.work = index / ".vectors.partial"
        self.cache = cache
        self.chunk_tokens = tuple(chunk_tokens)
        self.workers = workers
        self.tasks = Index.open(index).plan_blocks(EMBED_BLOCK_BYTES)  # the blocks run_embedding plans
        cache.mkdir(parents=True, exist_ok=True)

    def _done(self, i: int) -> Path:
        return self.cache / f"part-{i:05d}.json"

    def __call__(self, description, fn, n):
        import multiprocessing as mp

        assert n == len(self.tasks), (n, len(self.tasks))
        todo = [i for i in range(n) if not self._done(i).exists()]
        scratch = self.cache / "scratch"
        scratch.mkdir(exist_ok=True)
        args = [
            (
                str(self.index),
                "minilm-v1",
                i,
                *self.tasks[i],
                self.chunk_tokens,
                None,
                1,
                str(scratch),
                "float32",
            )
            for i in todo
        ]
        t0 = time.monotonic()
        with mp.get_context("spawn").Pool(self.workers) as pool:
            for k, r in enumerate(pool.imap_unordered(_embed_task, args)):
                base = f"part-{r['task']:05d}"
                for ext in (".npy", ".parquet"):
                    (scratch / f"{base}{ext}").replace(self.cache / f"{base}{ext}")
                self._done(r["task"]).write_text(json.dumps(r))
                print(f"  part {k + 1}/{len(todo)} embedded ({time.monotonic() - t0:.0f} s)", flush=True)
        out = []
        for i in range(n):
            base = f"part-{i:05d}"
            for ext in (".npy", ".parquet"):
                shutil.copyfile(self.cache / f"{base}{ext}", self.work / f"{base}{ext}")
            out.append(json.loads(self._done(i).read_text()))
        return out


def embed_exhaustive(index: Path, cache: Path) -> dict:
    from freqindex.manifest import read_manifest
    from freqindex.vectors.stage import run_embedding

    m = read_manifest(index)
    if m.get("vectors"):
        return m["vectors"]
    t = time.monotonic()
    summary = run_embedding(str(index), CachingRunner(index, cache), factory="Flat")
    summary["wall_seconds"] = round(time.monotonic() - t, 1)
    (cache / "summary.json").write_text(json.dumps(summary))
    return read_manifest(index)["vectors"]


def _exhaustive_windows(index: Path) -> tuple[np.ndarray, list[tuple[int, int, int]]]:
    import pyarrow.parquet as pq

    parts = sorted((index / "vectors").glob("part-*.npy"))
    vecs = np.concatenate([np.load(p) for p in parts])
    meta = pq.read_table([str(p.with_suffix(".parquet")) for p in parts]).to_pydict()
    return vecs, list(zip(meta["doc_id"], meta["char_start"], meta["char_end"]))


def prefilled_cache(idx, work: Path, vecs: np.ndarray, keys: list) -> Path:
    """An embedding cache holding every exhaustive window vector, so candidate-mode sweeps embed nothing."""
    from freqindex.vectors.cache import EmbeddingCache

    root = work / "cache-prefilled"
    cache = EmbeddingCache.for_index(idx, "minilm-v1", vecs.shape[1], root)
    if len(cache) < len(keys):
        cache.add(keys, vecs)
    return root


def _top(rows: list[dict]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for r in sorted(rows, key=lambda r: (r["item_id"], r["rank"])):
        out.setdefault(r["item_id"], []).append(r["doc_id"])
    return out


SIMILARITY_BANDS = ((0.8, 1.01), (0.7, 0.8), (0.6, 0.7), (-1.0, 0.6))


def _recall_by_band(ex: list[dict], cand: list[dict]) -> dict:
    """Of the exhaustive top-10 neighbours in each band of cosine similarity (near-copies at the top,
    loose topical neighbours at the bottom), how many are also in candidates mode's top 10."""
    found = {(r["item_id"], r["doc_id"]) for r in cand}
    out = {}
    for lo, hi in SIMILARITY_BANDS:
        pairs = [(r["item_id"], r["doc_id"]) for r in ex if lo <= r["similarity"] < hi]
        hit = sum(p in found for p in pairs)
        name = f">= {lo:g}" if hi > 1 else (f"< {hi:g}" if lo < 0 else f"{lo:g}-{hi:g}")
        out[name] = {
            "neighbours": len(pairs),
            "found": hit,
            "recall": round(hit / len(pairs), 4) if pairs else None,
        }
    return out


def evaluate(work: Path, info: dict, ms: list[int], size_sets: list[tuple[int, ...]]) -> dict:
    from freqindex.evals import load_eval
    from freqindex.query.candidates import candidate_neighbors
    from freqindex.query.neighbors import neighbors
    from freqindex.suffix.index import Index
    from freqindex.vectors.cache import EmbeddingCache
    from freqindex.vectors.embedders import load_embedder

    index = work / "index"
    idx = Index.open(index)
    items = load_eval(str(DATA / "evals" / "gsm8k" / "test.jsonl"), fields=["question"])
    ext_doc = {}
    for d in range(idx.total_docs):
        sh, ix = idx.doc_location(d)
        ext_doc[sh.meta(ix)["id"]] = d
    planted = {str(p["item"]): (p["kind"], ext_doc[p["ext_id"]], p["text"]) for p in info["planted"]}
    t = time.monotonic()
    ex_stats: dict = {}
    ex = neighbors(idx, items, 10, mode="exhaustive", snippet_chars=0, stats=ex_stats)
    ex_s = time.monotonic() - t
    ex_top = _top(ex)
    vecs, keys = _exhaustive_windows(index)
    cache_root = prefilled_cache(idx, work, vecs, keys)
    emb = load_embedder("minilm-v1")
    cache = EmbeddingCache.for_index(idx, "minilm-v1", emb.dim, cache_root)
    queries = [idx.normalizer.document(it.text) for it in items]
    out: dict = {
        "corpus": {k: info[k] for k in ("documents", "text_bytes")},
        "exhaustive": {"windows": len(keys), "search_seconds": round(ex_s, 1)},
        "sweep": [],
    }

    def rank1(top: dict, kind: str) -> dict:
        sel = [(i, d) for i, (k, d, _) in planted.items() if k == kind]
        return {"planted": len(sel), "rank1": sum(top.get(i, [None])[0] == d for i, d in sel)}

    out["exhaustive"]["planted_rank1"] = {k: rank1(ex_top, k) for k, _ in KINDS}
    # which hard paraphrases share no informative term (none of the terms candidate retrieval reads) with
    # their item: those are the ones candidates mode cannot see
    from freqindex.query.candidates import select_terms

    hard = [(i, d, text) for i, (k, d, text) in planted.items() if k == "hard"]
    sel, _, _ = select_terms(idx, [items[int(i) - 1].text for i, _, _ in hard])
    blind = {}
    for (i, _, text), s_ in zip(hard, sel):
        stored = idx.tokenizer.encode(idx.normalizer.stored_document(text))
        blind[i] = not any(t in stored for t in s_.chosen)
    for sizes in size_sets:
        for m in ms:
            t = time.monotonic()
            rows, st = candidate_neighbors(
                idx, items, queries, 10, m, emb, sizes, None, cache, snippet_chars=0
            )
            secs = time.monotonic() - t
            assert st["windows_embedded"] == 0, st
            top = _top(rows)
            rec = [len(set(ex_top[i]) & set(top.get(i, []))) / len(ex_top[i]) for i in ex_top]
            res = {
                "m": m,
                "window_sizes": list(sizes),
                "recall_at_10": round(float(np.mean(rec)), 4),
                "items_recall_below_0.5": int(sum(r < 0.5 for r in rec)),
                "recall_by_similarity": _recall_by_band(ex, rows),
                "planted_rank1": {k: rank1(top, k) for k, _ in KINDS},
                "windows": st["windows"],
                "window_tokens_cold": st["window_tokens"],
                "candidate_seconds": st["candidate_seconds"],
                "seconds_warm_cache": round(secs, 1),
            }
            ex1 = {i for i, (_, d, _) in planted.items() if ex_top.get(i, [None])[0] == d}
            ca1 = {i for i, (_, d, _) in planted.items() if top.get(i, [None])[0] == d}
            res["planted_rank1_both"] = {
                "exhaustive": len(ex1),
                "candidates": len(ca1),
                "exhaustive_only": len(ex1 - ca1),  # found first by exhaustive search, not by candidates
                "candidates_only": len(ca1 - ex1),
            }
            res["hard_sharing_no_informative_term"] = {
                "n": sum(blind.values()),
                "exhaustive_rank1": sum(ex_top[i][0] == d for i, d, _ in hard if blind[i]),
                "candidates_rank1": sum(top.get(i, [None])[0] == d for i, d, _ in hard if blind[i]),
                "candidates_top10": sum(d in top.get(i, []) for i, d, _ in hard if blind[i]),
            }
            res["hard_sharing_some"] = {
                "n": sum(not b for b in blind.values()),
                "exhaustive_rank1": sum(ex_top[i][0] == d for i, d, _ in hard if not blind[i]),
                "candidates_rank1": sum(top.get(i, [None])[0] == d for i, d, _ in hard if not blind[i]),
            }
            out["sweep"].append(res)
            print(json.dumps(res), flush=True)
    return out


def pool_reach(work: Path, pools: list[int], m: int, every: int = 4) -> dict:
    """How much of the exhaustive top 10 a candidate pool holds, and what choosing ``m`` of it keeps: on every
    ``every``-th item, from the stored exhaustive vectors (documents only, nothing embedded). Rows: the
    first pass's best P documents (``P`` in ``pools``; no choice of ``m`` >= 10 of them can hold more), and
    ``m`` of them chosen by the token-vector ranker; also ``m`` chosen by the suffix-array score."""
    import freqindex.query.candidates as C
    from freqindex.evals import load_eval
    from freqindex.query.neighbors import neighbors
    from freqindex.suffix.index import Index
    from freqindex.vectors.embedders import load_embedder

    idx = Index.open(work / "index")
    items = load_eval(str(DATA / "evals" / "gsm8k" / "test.jsonl"), fields=["question"])[::every]
    top = _top(neighbors(idx, items, 10, mode="exhaustive", snippet_chars=0))
    ranker = C.TokenVectorRanker.of(load_embedder("minilm-v1"))
    texts = [it.text for it in items]

    def reach(chosen: list[list[int]]) -> float:
        return round(float(np.mean([len(set(top[it.id]) & set(c)) / 10 for it, c in zip(items, chosen)])), 3)

    rows = []
    for p in pools:
        keep, C.RERANK_POOL = C.RERANK_POOL, p
        try:
            pool = C.find_candidates(idx, texts, p, ranker=ranker)  # m = p: the whole pool, unreordered
            ranked = C.find_candidates(idx, texts, m, ranker=ranker)
        finally:
            C.RERANK_POOL = keep
        rows.append(
            {
                "pool": p,
                "pool_holds": reach([[c.doc_id for c in cs] for cs in pool]),
                f"ranker_{m}_of_pool": reach([[c.doc_id for c in cs] for cs in ranked]),
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    by_score = C.find_candidates(idx, texts, m)
    return {
        "items": len(items),
        "m": m,
        f"suffix_array_score_{m}": reach([[c.doc_id for c in cs] for cs in by_score]),
        "pools": rows,
    }


PERF_DRIVER = """
import json, os, resource, sys, time
t0 = time.monotonic()
from freqindex.evals import load_eval
from freqindex.query.neighbors import neighbors
from freqindex.suffix.index import Index
idx = Index.open(sys.argv[1])
items = load_eval(sys.argv[2], fields=["question"])[: int(sys.argv[6]) or None]
stats = {}
rows = neighbors(idx, items, int(sys.argv[3]), mode="candidates", candidates=int(sys.argv[4]),
                 cache_dir=sys.argv[5], snippet_chars=0, stats=stats)
ru = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"seconds_in_process": round(time.monotonic() - t0, 1), "rows": len(rows),
                  "cpu_seconds": round(ru.ru_utime + ru.ru_stime, 1), "stats": stats}))
"""


def perf(index: Path, m: int, k: int = 10, n_items: int = 0) -> dict:
    """Neighbours of the 1,319 GSM8K test questions (the first ``n_items`` when given) in candidates mode
    with a cold (empty) cache, as one fresh process: wall time includes interpreter start, imports, index
    open and model load."""
    import tempfile

    from common import run_measured

    with tempfile.TemporaryDirectory(prefix="fqx-cold-cache-") as cache:
        load_before = open("/proc/loadavg").read().split()[0]
        res = run_measured(
            [
                sys.executable,
                "-c",
                PERF_DRIVER,
                str(index),
                str(DATA / "evals" / "gsm8k" / "test.jsonl"),
                str(k),
                str(m),
                cache,
                str(n_items),
            ],
            cwd=str(REPO),
        )
        load_after = open("/proc/loadavg").read().split()[0]
    out = json.loads(res["stdout"].strip().splitlines()[-1])
    out.update(
        index=str(index),
        items=n_items or 1319,
        wall_seconds=res["seconds"],
        peak_rss_mb=res["peak_rss_mb"],
        load_average_1min=[float(load_before), float(load_after)],
    )
    return out


def exhaustive_cost(cache: Path, corpus_bytes: int, targets: dict[str, float]) -> dict:
    """Embedding cost of the exhaustive mode, measured per part on the 10 MB sample and scaled by size."""
    parts = [json.loads(p.read_text()) for p in sorted(cache.glob("part-*.json"))]
    timed = [p for p in parts if p.get("cpu_s")]
    cpu = sum(p["cpu_s"] for p in timed)
    share = sum(p["docs"] for p in timed) / max(1, sum(p["docs"] for p in parts))
    cpu_per_mb = cpu / (corpus_bytes * share / 1e6)
    vectors_per_mb = sum(p["vectors"] for p in parts) / (corpus_bytes / 1e6)
    return {
        "sample_mb": round(corpus_bytes / 1e6, 1),
        "parts_timed": len(timed),
        "cpu_seconds_per_mb": round(cpu_per_mb, 1),
        "vectors_per_mb": round(vectors_per_mb),
        "estimates": {
            name: {
                "cpu_hours": round(mb * cpu_per_mb / 3600, 1),
                "hours_on_2_cores": round(mb * cpu_per_mb / 2 / 3600, 1),
                "vectors": round(mb * vectors_per_mb),
            }
            for name, mb in targets.items()
        },
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="bench-out")
    ap.add_argument("--work", default="/work/bench-shared/candidates")
    ap.add_argument("--mb", type=float, default=10)
    ap.add_argument("--stage", default="all", choices=["corpus", "embed", "recall", "pool", "perf", "all"])
    ap.add_argument("--pools", default="256,512,1000", help="pool sizes for --stage pool")
    ap.add_argument(
        "--perf-index",
        default="/work/bench-shared/scale2/index-100MB,/work/bench-shared/scale2/index-400MB",
        help="indexes to time the 1,319 GSM8K questions against (comma-separated)",
    )
    ap.add_argument("--perf-m", type=int, default=None, help="candidates per item for the timing runs")
    ap.add_argument("--perf-items", type=int, default=0, help="time only the first N questions (0: all)")
    ap.add_argument("--m", default="8,16,32,64", help="candidates per item to sweep")
    ap.add_argument("--sizes", default="32,64,128;32,64;32", help="window-size sets to sweep (;-separated)")
    a = ap.parse_args()
    work = Path(a.work)
    info = make_planted_corpus(work / "corpus", a.mb)
    print(f"corpus: {info['documents']:,} documents, {info['text_bytes'] / 1e6:.1f} MB", flush=True)
    build_index(work / "corpus", work / "index")
    if a.stage == "corpus":
        return
    vec = embed_exhaustive(work / "index", work / "embed-cache")
    print(f"exhaustive vectors: {vec['n_vectors']:,}", flush=True)
    if a.stage == "embed":
        return
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    res: dict = {}
    if a.stage in ("all", "recall"):
        sizes = [tuple(int(x) for x in s.split(",")) for s in a.sizes.split(";")]
        res["recall"] = evaluate(work, info, [int(x) for x in a.m.split(",")], sizes)
    if a.stage in ("all", "pool"):
        res["pool"] = pool_reach(work, [int(x) for x in a.pools.split(",")], 32)
    if a.stage in ("all", "perf"):
        res["exhaustive_cost"] = exhaustive_cost(
            work / "embed-cache",
            info["text_bytes"],
            {"count-index (110 MB)": 110.0, "1 TB": 1e6, "10 TB": 1e7},
        )
        from freqindex.query.candidates import DEFAULT_CANDIDATES

        res["perf"] = []
        for p in a.perf_index.split(","):  # each result kept as soon as it is measured
            res["perf"].append(perf(Path(p), a.perf_m or DEFAULT_CANDIDATES, n_items=a.perf_items))
            print(json.dumps(res["perf"][-1]), flush=True)
            (out / "candidates.json").write_text(json.dumps(res, indent=2))
    (out / "candidates.json").write_text(json.dumps(res, indent=2))
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
