"""Concept benchmarks on the >=100 MB benchmark index (bench_count.py builds it).

    python benchmarks/bench_concepts.py --out bench-out

1. Tagging all 1,665 CLIP_benchmark class names (with inflections): the Aho-Corasick tagging core on one
   core (MB/s per core) and as a Spark job on all cores, beside a naive per-concept regular-expression scan
   of the same text (measured on a slice of the text, with the same vocabulary, reported as MB/s).
2. Query-time counts of all 1,665 names from the suffix arrays (occurrences + document frequency).
Writes bench-out/concepts.json.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DATA  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="bench-out")
    ap.add_argument("--naive-mb", type=float, default=2.0, help="MB of text the naive scan runs over")
    args = ap.parse_args()
    out = Path(args.out).resolve()
    index_dir = out / "count-index"
    if not (index_dir / "manifest.json").exists():
        raise SystemExit("run benchmarks/bench_count.py first (it builds the benchmark index)")
    import numpy as np

    from freqindex.concepts.stage import TAG_BLOCK_BYTES, tag_block, vocab_payload
    from freqindex.concepts.vocab import load_vocabulary
    from freqindex.query.concepts import concept_counts
    from freqindex.suffix.index import Index
    from freqindex.text.normalize import get_normalizer

    classnames = DATA / "concepts" / "clip_benchmark_en_classnames.json"
    vocab = load_vocabulary(str(classnames), get_normalizer("simple"))
    idx = Index.open(index_dir)
    text_mb = sum(s["ds_bytes"] for s in idx.manifest["shards"]) / 1e6
    res: dict = {
        "index_mb": round(text_mb, 1),
        "concepts": len(vocab.concepts),
        "forms": sum(len(c.forms) for c in vocab.concepts),
    }

    # 1a. tagging core, one core, whole index
    tasks = idx.plan_blocks(TAG_BLOCK_BYTES)
    payload = vocab_payload(vocab)
    work = out / "tag-work"
    t = time.perf_counter()
    for i, (s, lo, hi) in enumerate(tasks):
        tag_block(str(index_dir), payload, i, s, lo, hi, str(work))
    dt = time.perf_counter() - t
    res["tagger_one_core"] = {"seconds": round(dt, 2), "mb_per_s": round(text_mb / dt, 2)}

    # 1b. the Spark job (all cores), through the CLI
    import subprocess

    t = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "freqindex.cli",
            "tag",
            str(index_dir),
            "--concepts",
            str(classnames),
            "--json",
        ],
        check=True,
        capture_output=True,
    )
    res["tagger_spark_all_cores"] = {"seconds": round(time.perf_counter() - t, 2)}
    res["tagger_spark_all_cores"]["mb_per_s"] = round(text_mb / res["tagger_spark_all_cores"]["seconds"], 2)

    # 1c. naive: one regular expression per form, over a slice of the same normalized text
    sh = idx.shard(0)
    n = int(np.searchsorted(sh.offsets, args.naive_mb * 1e6))
    text, _ = idx.text_block(sh, 0, max(1, n))
    pats = [re.compile(r"(?<!\S)" + re.escape(f) + r"(?!\S)") for c in vocab.concepts for f in c.forms]
    t = time.perf_counter()
    for p in pats:
        sum(1 for _ in p.finditer(text))
    dt = time.perf_counter() - t
    res["naive_regex_one_core"] = {
        "text_mb": round(len(text.encode()) / 1e6, 2),
        "seconds": round(dt, 2),
        "mb_per_s": round(len(text.encode()) / 1e6 / dt, 3),
    }
    res["tagger_speedup_per_core_vs_naive"] = round(
        res["tagger_one_core"]["mb_per_s"] / res["naive_regex_one_core"]["mb_per_s"], 1
    )

    # 2. query-time counts from the suffix arrays
    idx2 = Index.open(index_dir)
    t = time.perf_counter()
    _, rows = concept_counts(idx2, vocab, "suffix")
    res["suffix_all_concepts"] = {
        "seconds": round(time.perf_counter() - t, 2),
        "concepts_with_hits": sum(r["doc_frequency"] > 0 for r in rows),
    }
    (out / "concepts.json").write_text(json.dumps(res, indent=2))
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
