"""What a fresh process pays before its first count: ``Index.open`` and the first ``count``, each in a new
Python process, with the page cache warm or with the index's files dropped from it (``--cold``).

    python benchmarks/bench_first_count.py --out DIR --index scale2/index-100MB --index scale2/index-1600MB \
        [--cold] [--runs 3]

Before the build stored each shard's search sample (``sa/sample.N``, manifest schema 3), the first count
made the sample, which reads every shard's whole suffix array, and the lookup from bytes to documents; an
index of schema 2 still takes that path, so the same command compares both. ``--cold`` asks the kernel to
drop each ``sa/`` file's cached pages first (``posix_fadvise(DONTNEED)``: pages another process maps stay).
Each run also times two more counts in the same process. Medians over ``--runs`` runs; JSON to
DIR/first_count.json.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import drop_page_cache, index_bench_args  # noqa: E402

_CHILD = r"""
import json, sys, time
root, terms = sys.argv[1], sys.argv[2:]
from freqindex.query.count import count
from freqindex.suffix.index import Index
t = time.perf_counter()
idx = Index.open(root)
opened = time.perf_counter() - t
times, counts = [], []
for term in terms:
    t = time.perf_counter()
    counts.append(count(idx, term).count)
    times.append(time.perf_counter() - t)
stored = all(sh.sample is not None for sh in idx.shards)
print(json.dumps({"open_s": opened, "count_s": times, "counts": counts, "stored_samples": stored}))
"""

TERMS = ["the river", "mathematics", "in the year"]


def run_once(index: str, cold: bool) -> dict:
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    if cold:
        drop_page_cache(index)
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, index, *TERMS],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = index_bench_args(__doc__)
    ap.add_argument("--cold", action="store_true", help="drop the index's files from the page cache first")
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    results = []
    for index in a.index:
        runs = [run_once(index, a.cold) for _ in range(a.runs)]
        first = statistics.median(r["count_s"][0] for r in runs)
        later = statistics.median(t for r in runs for t in r["count_s"][1:])
        row = {
            "index": index,
            "cold": a.cold,
            "stored_samples": runs[0]["stored_samples"],
            "open_ms": round(1000 * statistics.median(r["open_s"] for r in runs), 2),
            "first_count_ms": round(1000 * first, 1),
            "later_count_ms": round(1000 * later, 2),
            "counts": runs[0]["counts"],
            "runs": runs,
        }
        results.append(row)
        print(
            f"{Path(index).name}: open {row['open_ms']} ms, first count {row['first_count_ms']} ms, later "
            f"{row['later_count_ms']} ms (stored samples: {row['stored_samples']}, cold: {a.cold})",
            flush=True,
        )
    doc = {"terms": TERMS, "load_average": os.getloadavg(), "results": results}
    (a.out / "first_count.json").write_text(json.dumps(doc, indent=2))
    print(a.out / "first_count.json")


if __name__ == "__main__":
    main()
