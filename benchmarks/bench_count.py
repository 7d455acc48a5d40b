"""Count benchmark: freqindex single and batched counts vs the infini-gram engine vs tokengrams vs DuckDB.

    python benchmarks/bench_count.py --out bench-out [--index DIR ...] [--queries 2000]

Without ``--index`` it builds (once) a bytes/simple index of the ~110 MB benchmark corpus into
OUT/count-index (4 shards, the default); ``--index`` takes any index instead (repeat it for several, e.g. a
1-shard build of the same corpus: ``--one-shard`` builds OUT/count-index-1shard from OUT/corpus). For each
index, random substrings (3-30 characters) of random documents are counted:

- ``freqindex`` single: ``freqindex.query.count.count`` per query (normalize, tokenize, compiled search);
- the engine: ``InfiniGramEngine.count`` on pre-tokenized ids, same index files;
- tokengrams: EleutherAI's ``InMemoryIndex.count`` (a Rust suffix array) over the same token stream (every
  shard's ``tokenized`` file, separators included, as u16/u32 tokens), built once into OUT/tokengrams-*
  (``--tokengrams-table widen``: the index's own suffix array widened instead, see ``_tokengrams``;
  ``--tokengrams-memmap``: its ``MemmapIndex``);
- ``freqindex`` batched: ``count_many`` over all queries at once (and batches of 100): time per query;
- ``--unit docs``: ``count(..., unit="docs")`` vs the previous path (engine ``find``, then the pointers'
  documents with numpy);
- AND: two whole words of one document, ``count`` (exact) vs the engine's ``count_cnf``;
- a DuckDB scan of the same documents (fewer queries: each is a full scan);
- with ``--interfaces``: single vs batched at the interfaces, ``/v1/count`` (a request per query vs lists)
  and the CLI (a ``freqindex count`` process per query vs ``count --file``).

Single calls are timed one call at a time, interleaved, rotating which path goes first (the later calls of a
round find the first one's cache lines); medians. A batch is timed whole (wall clock and the thread's CPU
time; on a busy machine the CPU time is the fairer number), median of 5. Every path's counts are checked
equal on all queries. Writes OUT/count.json.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import make_corpus  # noqa: E402


def _build(corpus: Path, out: Path, shards: int | None = None) -> Path:
    if not (out / "manifest.json").exists():
        cmd = [sys.executable, "-m", "freqindex.cli", "build", str(corpus), "-o", str(out), "--json"]
        if shards:
            cmd += ["--shards", str(shards)]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return out


def _summary(lat_us: list[float]) -> dict:
    s = sorted(lat_us)
    return {
        "median_us": round(statistics.median(s), 2),
        "p90_us": round(s[int(0.9 * len(s))], 2),
        "p99_us": round(s[int(0.99 * len(s))], 2),
        "n": len(s),
    }


def _queries(idx, n: int, rng: random.Random) -> list[str]:
    """Random substrings (3-30 characters) of random documents of the index, with something to count."""
    out: list[str] = []
    total = idx.total_docs
    while len(out) < n:
        d = idx.doc_text(rng.randrange(total))
        k = rng.randint(3, 30)
        if len(d) <= k:
            continue
        i = rng.randrange(len(d) - k)
        q = d[i : i + k]
        if q.strip():
            out.append(q)
    return out


def _word_pairs(idx, n: int, rng: random.Random) -> list[str]:
    """``" w1  AND  w2 "`` for two distinct words of one random document."""
    out: list[str] = []
    while len(out) < n:
        words = [w for w in idx.doc_text(rng.randrange(idx.total_docs)).split() if w.isalpha()]
        if len(set(words)) < 2:
            continue
        a, b = rng.sample(sorted(set(words)), 2)
        out.append(f" {a}  AND  {b} ")
    return out


def _tokengrams(idx, cache: Path, table_from: str = "build", memmap: bool = False):
    """A tokengrams index over the concatenated token stream of the index's shards (built once, then loaded).

    ``table_from``: ``build`` runs tokengrams' own suffix sort (675 s for 100 MB here, hours at 1.6 GB);
    ``widen`` writes the table tokengrams would build without sorting again: for one shard of 1-byte tokens
    the byte order infini-gram sorts by is the token order tokengrams sorts by, and a string has exactly one
    suffix array, so it is the index's own ``table.N`` widened to u64 (checked: on the 105.7 M-token index
    it equals tokengrams' own build byte for byte). ``memmap`` loads tokengrams' ``MemmapIndex`` (the table
    stays on disk, mapped, as freqindex's does) instead of ``InMemoryIndex``."""
    import tokengrams

    vocab = 2**16 if idx.width <= 2 else 2**32
    dtype = np.uint16 if idx.width <= 2 else np.uint32
    tokens, table = cache / "tokens.bin", cache / "table.bin"
    t0 = time.perf_counter()
    built = None
    if not table.exists():
        cache.mkdir(parents=True, exist_ok=True)
        with open(tokens, "wb") as f:
            for sh in idx.shards:
                np.frombuffer(np.asarray(sh.ds), dtype=idx.dtype).astype(dtype).tofile(f)
        if table_from == "widen":
            _widen_table(idx, table)
            built = "widened from the index's suffix array"
        else:
            tokengrams.InMemoryIndex.from_token_file(str(tokens), None, vocab).save_index(str(table))
            built = "tokengrams"
    cls = "MemmapIndex" if memmap else "InMemoryIndex"
    if memmap:
        tg = tokengrams.MemmapIndex(str(tokens), str(table), vocab)
    else:
        tg = tokengrams.InMemoryIndex.from_disk(str(tokens), str(table), vocab)
    return tg, {"class": cls, "built": built, "seconds": round(time.perf_counter() - t0, 1), "vocab": vocab}


def _widen_table(idx, table: Path, block: int = 1 << 24) -> None:
    """The index's one suffix array as tokengrams' table: token positions as little-endian u64."""
    if len(idx.shards) != 1 or idx.width != 1:
        raise SystemExit("--tokengrams-table widen needs a one-shard index of 1-byte tokens")
    sh = idx.shards[0]
    n = sh.table.shape[0] // sh.ptr_size
    with open(str(table) + ".tmp", "wb") as f:
        for lo in range(0, n, block):
            sh.pointers(lo, min(n, lo + block)).astype("<u8").tofile(f)
    os.replace(str(table) + ".tmp", table)


def _batch_time(fn, reps: int = 5) -> tuple[float, float]:
    """Median wall and CPU seconds of ``fn()``; the process's CPU time, since a large batch searches in
    several threads (on a quiet machine the wall clock is the number a user sees)."""
    wall, cpu = [], []
    for _ in range(reps):
        w, c = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - w)
        cpu.append(time.process_time() - c)
    return statistics.median(wall), statistics.median(cpu)


def _interfaces(index_dir: Path, queries: list[str], out: Path, singles: int) -> dict:
    """Batched vs single at the two interfaces a user calls: ``/v1/count`` (one request per query, over a
    kept-alive connection, vs lists of up to 1,000 queries per request) and the CLI (one ``freqindex count``
    process per query vs one ``count --file``). Counts are checked equal."""
    import socket

    import httpx

    from freqindex import settings

    res: dict = {}
    with socket.socket() as so:
        so.bind(("127.0.0.1", 0))
        port = so.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    cli = [sys.executable, "-m", "freqindex.cli"]
    proc = subprocess.Popen(
        [*cli, "serve", str(index_dir), "--port", str(port), "--log-level", "warning"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    name = index_dir.name
    try:
        with httpx.Client(base_url=url, timeout=120) as client:
            for _ in range(600):
                try:
                    if client.get("/healthz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.2)
            else:
                raise SystemExit("the server did not start")

            def post(body: dict) -> list[int]:
                r = client.post("/v1/count", json={"index": name, "literal": True, **body})
                r.raise_for_status()
                return [x["count"] for x in r.json()["results"]]

            post({"query": queries[0]})  # warm-up
            lat, one = [], []
            for q in queries[:singles]:
                t = time.perf_counter_ns()
                one += post({"query": q})
                lat.append((time.perf_counter_ns() - t) / 1000)
            step = settings.MAX_QUERIES_PER_REQUEST
            walls, listed = [], []
            for _ in range(3):
                t = time.perf_counter()
                listed = [
                    c for i in range(0, len(queries), step) for c in post({"queries": queries[i : i + step]})
                ]
                walls.append(time.perf_counter() - t)
            assert listed[:singles] == one
            res["http"] = {
                "single_request": _summary(lat),
                "list_us_per_query": round(statistics.median(walls) / len(queries) * 1e6, 2),
                "queries_per_request": step,
            }
            res["http"]["single_over_list"] = round(
                res["http"]["single_request"]["median_us"] / res["http"]["list_us_per_query"], 1
            )
    finally:
        proc.terminate()
        proc.wait(60)
    qfile = out / f"queries-{name}.txt"
    qfile.write_text("".join(q + "\n" for q in queries))
    proc_walls = []
    for q in queries[:5]:
        t = time.perf_counter()
        subprocess.run(
            [*cli, "count", str(index_dir), "--literal", "--json", "--", q], check=True, capture_output=True
        )
        proc_walls.append(time.perf_counter() - t)
    t = time.perf_counter()
    got = subprocess.run(
        [*cli, "count", str(index_dir), "--file", str(qfile), "--literal"], check=True, capture_output=True
    )
    file_wall = time.perf_counter() - t
    assert len(got.stdout.splitlines()) == len(queries)
    res["cli"] = {
        "single_process_seconds": round(statistics.median(proc_walls), 2),
        "file_seconds": round(file_wall, 2),
        "file_queries": len(queries),
        "file_us_per_query": round(file_wall / len(queries) * 1e6, 1),
    }
    res["cli"]["single_over_file_per_query"] = round(
        statistics.median(proc_walls) / (file_wall / len(queries))
    )
    return res


def bench_index(index_dir: Path, out: Path, args) -> dict:
    from freqindex.query.count import count, count_many, encode_term
    from freqindex.suffix.index import Index

    idx = Index.open(index_dir)
    rng = random.Random(0)
    queries = _queries(idx, args.queries, rng)
    ids = [np.frombuffer(encode_term(idx, q), dtype=idx.dtype).tolist() for q in queries]
    engine = idx.engine
    count(idx, queries[0], literal=True)  # compiles (or loads the cached compilation), builds the samples
    paths = {
        "freqindex": lambda k: count(idx, queries[k], literal=True).count,
        "engine": lambda k: engine.count(input_ids=ids[k])["count"],
    }
    res: dict = {
        "index": str(index_dir),
        "documents": idx.total_docs,
        "tokens": int(idx.manifest["counts"]["tokens"]),
        "shards": len(idx.shards),
        "token_dtype": idx.manifest["tokenizer"]["dtype"],
    }
    if not args.no_tokengrams:
        # the token stream is the same for every shard count of one corpus: one tokengrams index for all
        m = idx.manifest
        key = f"{m['counts']['documents']}-{m['counts']['tokens']}-{m['tokenizer']['dtype']}"
        tg, info = _tokengrams(idx, out / f"tokengrams-{key}", args.tokengrams_table, args.tokengrams_memmap)
        res["tokengrams_index"] = info
        paths["tokengrams"] = lambda k: tg.count(ids[k])
    names = list(paths)
    counts = {n: [paths[n](k) for k in range(len(queries))] for n in names}  # also warms the page cache
    for n in names[1:]:
        bad = [k for k in range(len(queries)) if counts[n][k] != counts["freqindex"][k]]
        assert not bad, f"{n} disagrees on {len(bad)} queries, e.g. {queries[bad[0]]!r}"
    res["equal_counts"] = {"queries": len(queries), "paths": names}
    lat: dict[str, list[float]] = {n: [] for n in names}
    for rnd in range(args.rounds):
        for k in range(len(queries)):
            shift = (k + rnd) % len(names)
            for n in names[shift:] + names[:shift]:
                t = time.perf_counter_ns()
                paths[n](k)
                lat[n].append((time.perf_counter_ns() - t) / 1000)
    for n in names:
        res[f"{n}_single"] = _summary(lat[n])
    # batched: all queries in one call, and batches of 100
    many = count_many(idx, queries, literal=True)
    assert [r.count for r in many] == counts["freqindex"]
    wall, cpu = _batch_time(lambda: count_many(idx, queries, literal=True))
    res["freqindex_batched"] = {
        "batch": len(queries),
        "wall_us_per_query": round(wall / len(queries) * 1e6, 2),
        "cpu_us_per_query": round(cpu / len(queries) * 1e6, 2),
    }
    chunks = [queries[i : i + 100] for i in range(0, len(queries), 100)]
    wall, cpu = _batch_time(lambda: [count_many(idx, c, literal=True) for c in chunks])
    res["freqindex_batched_100"] = {
        "batch": 100,
        "wall_us_per_query": round(wall / len(queries) * 1e6, 2),
        "cpu_us_per_query": round(cpu / len(queries) * 1e6, 2),
    }
    # the single calls' CPU time, for a like-for-like batch ratio
    _, cpu = _batch_time(lambda: [count(idx, q, literal=True) for q in queries], reps=3)
    res["freqindex_single_cpu_us_per_query"] = round(cpu / len(queries) * 1e6, 2)
    if args.interfaces:
        res["interfaces"] = _interfaces(index_dir, queries, out, args.http_singles)
    # --unit docs: the compiled path vs the previous one (engine find, numpy pointers and documents)
    docs_q = list(range(min(len(queries), args.docs_queries)))

    def old_docs(k: int) -> int:
        found = engine.find(input_ids=ids[k])["segment_by_shard"]
        return sum(
            int(np.unique(sh.doc_of(sh.pointers(lo, hi))).size) if hi > lo else 0
            for sh, (lo, hi) in zip(idx.shards, found)
        )

    new_lat, old_lat = [], []
    for k in docs_q:
        pair = [
            ("new", lambda k=k: count(idx, queries[k], unit="docs", literal=True).count),
            ("old", lambda k=k: old_docs(k)),
        ]
        got = {}
        for name, fn in pair if k % 2 else pair[::-1]:
            t = time.perf_counter_ns()
            got[name] = fn()
            (new_lat if name == "new" else old_lat).append((time.perf_counter_ns() - t) / 1000)
        assert got["new"] == got["old"], queries[k]
    res["freqindex_docs_single"] = _summary(new_lat)
    res["previous_docs_single_engine_find_numpy"] = _summary(old_lat)
    # AND of two words: exact (freqindex) vs the engine's count_cnf (subsampled, and see issue #12)
    pairs = _word_pairs(idx, args.and_queries, random.Random(1))
    and_new, and_eng, differ = [], [], 0
    for k, q in enumerate(pairs):
        a, b = (np.frombuffer(encode_term(idx, t), dtype=idx.dtype).tolist() for t in q.split(" AND "))
        runs = [
            ("new", lambda q=q: count(idx, q).count),
            ("eng", lambda a=a, b=b: engine.count_cnf(cnf=[[a], [b]])["count"]),
        ]
        got = {}
        for name, fn in runs if k % 2 else runs[::-1]:
            t = time.perf_counter_ns()
            got[name] = fn()
            (and_new if name == "new" else and_eng).append((time.perf_counter_ns() - t) / 1000)
        differ += got["new"] != got["eng"]
    res["freqindex_and_single"] = _summary(and_new)
    res["engine_count_cnf"] = _summary(and_eng)
    res["and_queries_where_engine_differs"] = differ
    if args.duckdb_queries:
        res["duckdb_scan"] = _duckdb(
            idx, queries[: args.duckdb_queries], out / f"texts-{index_dir.name}.parquet"
        )
    single = res["freqindex_single"]["median_us"]
    res["ratios"] = {
        "engine_over_freqindex": round(res["engine_single"]["median_us"] / single, 1),
        "single_per_query_over_batched_wall": round(
            res["freqindex_single"]["median_us"] / res["freqindex_batched"]["wall_us_per_query"], 2
        ),
        "single_per_query_over_batched_cpu": round(
            res["freqindex_single_cpu_us_per_query"] / res["freqindex_batched"]["cpu_us_per_query"], 2
        ),
        "engine_single_over_freqindex_batched_cpu": round(
            res["engine_single"]["median_us"] / res["freqindex_batched"]["cpu_us_per_query"], 1
        ),
        "previous_docs_over_freqindex_docs": round(
            res["previous_docs_single_engine_find_numpy"]["median_us"]
            / res["freqindex_docs_single"]["median_us"],
            1,
        ),
    }
    if "tokengrams_single" in res:
        res["ratios"]["freqindex_over_tokengrams"] = round(single / res["tokengrams_single"]["median_us"], 2)
        res["ratios"]["engine_over_tokengrams"] = round(
            res["engine_single"]["median_us"] / res["tokengrams_single"]["median_us"], 1
        )
    if "duckdb_scan" in res:
        res["ratios"]["duckdb_over_freqindex"] = round(res["duckdb_scan"]["median_us"] / single, 1)
    return res


def _duckdb(idx, queries: list[str], parquet: Path) -> dict:
    """A full scan of the stored (normalized) documents per query, counting non-overlapping occurrences."""
    import duckdb
    import pyarrow as pa
    import pyarrow.parquet as pq

    if not parquet.exists():
        texts = [idx.doc_text(d) for d in range(idx.total_docs)]
        pq.write_table(pa.table({"doc_id": list(range(len(texts))), "text": texts}), parquet)
    con = duckdb.connect()
    con.execute(f"CREATE VIEW t AS SELECT * FROM read_parquet('{parquet}')")
    sql = "SELECT sum((length(text) - length(replace(text, $q, ''))) // length($q)) FROM t"
    lat = []
    for q in queries:
        qn = idx.normalizer.query(q)
        t = time.perf_counter_ns()
        con.execute(sql, {"q": qn}).fetchone()
        lat.append((time.perf_counter_ns() - t) / 1000)
    return _summary(lat)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="bench-out")
    ap.add_argument("--index", action="append", default=[], help="an index to benchmark (repeatable)")
    ap.add_argument("--one-shard", action="store_true", help="also build and benchmark a 1-shard index")
    ap.add_argument("--mb", type=int, default=110)
    ap.add_argument("--queries", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=3, help="timed passes over the queries (single calls)")
    ap.add_argument("--docs-queries", type=int, default=500)
    ap.add_argument("--and-queries", type=int, default=200)
    ap.add_argument("--duckdb-queries", type=int, default=30)
    ap.add_argument("--no-tokengrams", action="store_true")
    ap.add_argument(
        "--tokengrams-table",
        choices=("build", "widen"),
        default="build",
        help="tokengrams' table: its own build, or the index's suffix array widened (1 shard, 1-byte tokens)",
    )
    ap.add_argument(
        "--tokengrams-memmap", action="store_true", help="tokengrams' MemmapIndex, not InMemoryIndex"
    )
    ap.add_argument(
        "--interfaces",
        action="store_true",
        help="also time single vs batched counts through /v1/count and the CLI (starts a server)",
    )
    ap.add_argument("--http-singles", type=int, default=500, help="single /v1/count requests timed")
    args = ap.parse_args()
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    indexes = [Path(p).resolve() for p in args.index]
    if not indexes or args.one_shard:
        corpus = out / "corpus"
        make_corpus(corpus, args.mb)
        if not indexes:
            indexes.append(_build(corpus, out / "count-index"))
        if args.one_shard:
            indexes.append(_build(corpus, out / "count-index-1shard", shards=1))
    results = {
        "machine": {"cpus": os.cpu_count(), "load_avg_before": [round(x, 2) for x in os.getloadavg()]},
        "indexes": [],
    }
    for d in indexes:
        r = bench_index(d, out, args)
        results["indexes"].append(r)
        print(json.dumps(r, indent=2), flush=True)
    results["machine"]["load_avg_after"] = [round(x, 2) for x in os.getloadavg()]
    (out / "count.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
