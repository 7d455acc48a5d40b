"""Where a single count's compiled search spends its time, per index: the call itself, the in-memory sample,
and the binary levels in the memory-mapped files.

    python benchmarks/bench_kernel.py --out DIR --index scale2/index-100MB --index scale2/index-1600MB

For each index, the same random queries as bench_count.py (substrings of its documents), encoded as the
index encodes them, then one call per query of three compiled functions with the same arguments, timed one
by one (medians; the best of ``--passes`` passes after a warm-up pass):

- ``call``: a compiled function that takes the search's arguments and returns at once (numba's dispatch and
  argument unboxing, paid by every single count);
- ``sample``: the two bounds' bisection over the in-memory sample only (the first part of ``_count_one``);
- ``full``: ``freqindex.suffix.search._count_one`` itself (its count checked against infini-gram's engine
  on the first 200 queries).

``full - sample`` is the part in the mapped files: ``log2(step)`` binary levels, each a pointer read in the
suffix array and a text read at that pointer. Its cost per level is what grows with the files' size on a
machine whose random reads cost more in larger mappings (benchmarks/README.md, *Scale*). JSON to
DIR/kernel.json.
"""

from __future__ import annotations

import json
import math
import os
import random
import sys
import time
from pathlib import Path

import numpy as np
from numba import njit

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench_count import _queries  # noqa: E402
from common import index_bench_args  # noqa: E402

from freqindex.query.count import encode_term  # noqa: E402
from freqindex.suffix import search  # noqa: E402
from freqindex.suffix.index import Index  # noqa: E402


@njit(nogil=True)
def _call_only(tables, dss, words, sptrs, meta, q):
    return np.int64(q.shape[0])


@njit(nogil=True)
def _sample_only(tables, dss, words, sptrs, meta, q):
    """The first part of ``search._count_one``: each shard's lower and upper bound over its sample."""
    q8, qmask = search._query_word(q, 0, q.shape[0])
    total = np.int64(0)
    for s in range(len(tables)):
        ws, ps_, ds = words[s], sptrs[s], dss[s]
        a_lo, a_hi, b_lo, b_hi = np.int64(0), ws.shape[0], np.int64(0), ws.shape[0]
        while a_lo < a_hi or b_lo < b_hi:
            a_lo, a_hi = search._sample_step(ws, ps_, a_lo, a_hi, ds, q, q8, qmask, False)
            b_lo, b_hi = search._sample_step(ws, ps_, b_lo, b_hi, ds, q, q8, qmask, True)
        total += b_lo - a_lo
    return total


def _time(fn, args, encoded, passes: int) -> float:
    """Median microseconds per call, best of ``passes``."""
    best = math.inf
    for _ in range(passes):
        ts = np.empty(len(encoded))
        for i, q in enumerate(encoded):
            t = time.perf_counter_ns()
            fn(*args, q)
            ts[i] = time.perf_counter_ns() - t
        best = min(best, float(np.median(ts)) / 1000)
    return best


def measure(path: str, n_queries: int, passes: int) -> dict:
    idx = Index.open(path)
    queries = _queries(idx, n_queries, random.Random(0))
    encoded = [np.frombuffer(encode_term(idx, q), np.uint8) for q in queries]
    c = search._compiled(idx)
    args = (c.tables, c.dss, c.words, c.sptrs, c.meta)
    for q, raw in zip(encoded[:200], queries[:200]):  # the kernel is the engine's count (a spot check)
        assert search._count_one(*args, q) == idx.engine.count(input_ids=idx.encode_query(raw))["count"], raw
    for fn in (_call_only, _sample_only, search._count_one):  # compile, and warm the page cache
        for q in encoded:
            fn(*args, q)
    res = {
        name: _time(fn, args, encoded, passes)
        for name, fn in (("call", _call_only), ("sample", _sample_only), ("full", search._count_one))
    }
    steps = [int(s) for s in c.meta[:, 2]]
    mapped_levels = sum(math.ceil(math.log2(s)) for s in steps)
    mapped = res["full"] - res["sample"]
    return {
        "index": str(path),
        "shards": len(steps),
        "tokens": int(sum(int(n) for n in c.meta[:, 1])),
        "sample_entries": [int(w.shape[0]) for w in c.words],
        "sample_step": steps,
        "mapped_levels": mapped_levels,
        "queries": len(encoded),
        "median_us": res,
        "sample_us": res["sample"] - res["call"],
        "mapped_us": mapped,
        "mapped_us_per_level": mapped / mapped_levels if mapped_levels else None,
    }


def main() -> None:
    ap = index_bench_args(__doc__, queries=2000)
    ap.add_argument("--passes", type=int, default=3)
    a = ap.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for path in a.index:
        row = measure(path, a.queries, a.passes)
        rows.append(row)
        r = row["median_us"]
        print(
            f"{Path(path).name}: full {r['full']:.2f} us = call {r['call']:.2f} + sample {row['sample_us']:.2f} + "
            f"mapped {row['mapped_us']:.2f} ({row['mapped_levels']} levels, "
            f"{row['mapped_us_per_level']:.3f} us each)",
            flush=True,
        )
    out = {"load_average": os.getloadavg(), "indexes": rows}
    (a.out / "kernel.json").write_text(json.dumps(out, indent=2) + "\n")
    print(a.out / "kernel.json")


if __name__ == "__main__":
    main()
