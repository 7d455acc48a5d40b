"""Count benchmark on a >=100 MB index: freqindex count vs the infini-gram engine called directly vs DuckDB.

    python benchmarks/bench_count.py --out bench-out [--queries 1000]

Builds (once) a bytes/simple index of the benchmark corpus, then times 1,000 random queries (substrings of
random documents, 3-30 characters) three ways: ``freqindex.query.count.count`` (normalize + tokenize +
engine), ``InfiniGramEngine.count`` on pre-normalized byte ids, and a DuckDB scan over a Parquet table of
the same normalized documents (fewer queries: each is a full scan). Writes bench-out/count.json.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import make_corpus  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="bench-out")
    ap.add_argument("--mb", type=int, default=110)
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--duckdb-queries", type=int, default=30)
    args = ap.parse_args()
    out = Path(args.out).resolve()
    corpus = out / "corpus"
    make_corpus(corpus, args.mb)
    index_dir = out / "count-index"
    if not (index_dir / "manifest.json").exists():
        subprocess.run(
            [sys.executable, "-m", "freqindex.cli", "build", str(corpus), "-o", str(index_dir), "--json"],
            check=True,
            stdout=subprocess.DEVNULL,
        )

    import duckdb
    import pyarrow as pa
    import pyarrow.parquet as pq

    from freqindex.query.count import count
    from freqindex.suffix.index import Index
    from freqindex.text.normalize import simple_document, simple_query

    idx = Index.open(index_dir)
    rng = random.Random(0)
    docs = []
    for p in sorted(corpus.glob("*.jsonl")):
        with open(p, encoding="utf-8") as f:
            for ln in f:
                docs.append(" " + simple_document(json.loads(ln)["text"]) + " ")
    texts_parquet = out / "count-texts.parquet"
    if not texts_parquet.exists():
        pq.write_table(pa.table({"doc_id": list(range(len(docs))), "text": docs}), texts_parquet)
    queries = []
    while len(queries) < args.queries:
        d = rng.choice(docs)
        n = rng.randint(3, 30)
        if len(d) <= n:
            continue
        i = rng.randrange(len(d) - n)
        queries.append(d[i : i + n])
    engine = idx.engine
    pre = [list(simple_query(q).encode()) for q in queries]
    for ids in pre:  # warm the page cache for every query, for both paths alike
        engine.count(input_ids=ids)
    fq, direct = [], []

    def run_fq(q, ids):
        t = time.perf_counter_ns()
        count(idx, q, literal=True)
        fq.append((time.perf_counter_ns() - t) / 1000)

    def run_direct(q, ids):
        t = time.perf_counter_ns()
        engine.count(input_ids=ids)
        direct.append((time.perf_counter_ns() - t) / 1000)

    # interleaved, alternating which path goes first: the second call of a pair finds the first one's
    # cache lines, so a fixed order would favour one side
    for k, (q, ids) in enumerate(zip(queries, pre)):
        for fn in (run_fq, run_direct) if k % 2 == 0 else (run_direct, run_fq):
            fn(q, ids)

    def timed(fn, qs):
        lat = []
        for q in qs:
            t = time.perf_counter_ns()
            fn(q)
            lat.append((time.perf_counter_ns() - t) / 1000)
        return lat

    fq_docs = timed(lambda q: count(idx, q, unit="docs", literal=True), queries)
    # same answers (sanity)
    for q, ids in zip(queries[:100], pre[:100]):
        assert count(idx, q, literal=True).count == engine.count(input_ids=ids)["count"]
    con = duckdb.connect()
    con.execute(f"CREATE VIEW t AS SELECT * FROM read_parquet('{texts_parquet}')")
    sql = "SELECT sum((length(text) - length(replace(text, $q, ''))) // length($q)) FROM t"
    dd = []
    for q in queries[: args.duckdb_queries]:
        qn = simple_query(q)
        t = time.perf_counter_ns()
        con.execute(sql, {"q": qn}).fetchone()
        dd.append((time.perf_counter_ns() - t) / 1000)

    def summ(lat):
        s = sorted(lat)
        return {
            "median_us": round(statistics.median(s), 1),
            "p90_us": round(s[int(0.9 * len(s))], 1),
            "n": len(s),
        }

    res = {
        "index": {
            "documents": idx.manifest["counts"]["documents"],
            "tokens": idx.manifest["counts"]["tokens"],
        },
        "freqindex_count": summ(fq),
        "engine_direct_count": summ(direct),
        "freqindex_count_docs": summ(fq_docs),
        "duckdb_scan_count": summ(dd),
    }
    res["ratio_freqindex_over_engine"] = round(
        res["freqindex_count"]["median_us"] / res["engine_direct_count"]["median_us"], 3
    )
    res["speedup_vs_duckdb"] = round(
        res["duckdb_scan_count"]["median_us"] / res["freqindex_count"]["median_us"], 1
    )
    (out / "count.json").write_text(json.dumps(res, indent=2))
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
