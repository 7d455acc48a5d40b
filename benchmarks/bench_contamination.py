"""Contamination benchmark: the 1,319 GSM8K test questions against the >=100 MB benchmark index
(bench_count.py builds it), beside an lm-evaluation-harness-style 13-gram set intersection over the same
corpus in plain Python (lower-cased words without punctuation; an item is flagged when any of its 13-grams
occurs). Writes bench-out/contamination.json.

    python benchmarks/bench_contamination.py --out bench-out
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DATA  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="bench-out")
    ap.add_argument("--items", type=int, default=None)
    a = ap.parse_args()
    out = Path(a.out).resolve()
    index_dir = out / "count-index"
    if not (index_dir / "manifest.json").exists():
        raise SystemExit("run benchmarks/bench_count.py first (it builds the benchmark index)")
    from freqindex.contamination.check import Policy, check_items
    from freqindex.evals import load_eval
    from freqindex.suffix.index import Index
    from freqindex.text.normalize import simple_document

    items = load_eval(str(DATA / "evals" / "gsm8k" / "test.jsonl"), fields=["question"])[: a.items]
    idx = Index.open(index_dir)
    t = time.perf_counter()
    records, summary = check_items(idx, items, ["question"], Policy())
    ours = time.perf_counter() - t

    t = time.perf_counter()
    grams: set[int] = set()
    for p in sorted((out / "corpus").glob("*.jsonl")):
        with open(p, encoding="utf-8") as f:
            for ln in f:
                w = simple_document(json.loads(ln)["text"]).split()
                grams.update(hash(tuple(w[i : i + 13])) for i in range(len(w) - 12))
    build_s = time.perf_counter() - t
    t = time.perf_counter()
    flagged13 = set()
    for it in items:
        w = simple_document(it.text).split()
        if any(hash(tuple(w[i : i + 13])) in grams for i in range(len(w) - 12)):
            flagged13.add(it.id)
    query_s = time.perf_counter() - t
    ours_any = {r["id"] for r in records if r["bucket"] in ("dirty", "suspicious")}
    gpt3 = {r["id"] for r in records if r["definitions"].get("gpt3")}
    res = {
        "items": len(items),
        "index_tokens": idx.manifest["counts"]["tokens"],
        "index_shards": len(idx.shards),
        "freqindex": {
            "seconds": round(ours, 1),
            "items_per_s": round(len(items) / ours, 1),
            "buckets": summary["buckets"],
            "definitions": summary["definitions"],
        },
        "ngram13_python": {
            "build_seconds": round(build_s, 1),
            "query_seconds": round(query_s, 2),
            "total_seconds": round(build_s + query_s, 1),
            "distinct_13grams": len(grams),
            "flagged": len(flagged13),
        },
        "agreement": {
            "flagged_by_13gram_and_freqindex_dirty_or_suspicious": len(flagged13 & ours_any),
            "flagged_by_13gram_only": len(flagged13 - ours_any),
            "freqindex_dirty_or_suspicious_only": len(ours_any - flagged13),
            "freqindex_gpt3_flag_vs_13gram_same": len(gpt3 ^ flagged13) == 0,
        },
        "examples": [
            {
                "id": r["id"],
                "bucket": r["bucket"],
                "coverage": r["coverage"],
                "span": (r.get("evidence") or {}).get("span"),
            }
            for r in records
            if r["bucket"] != "clean"
        ][:5],
    }
    (out / "contamination.json").write_text(json.dumps(res, indent=2))
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
