"""Scale benchmark (#13): build cost and count latency at growing corpus sizes with the default shard size,
the count latency per added shard, and the extrapolation to 1 TB and 10 TB.

    python benchmarks/bench_scale.py --out /work/bench-shared/scale                      # 100, 400, 1600 MB
    python benchmarks/bench_scale.py --out DIR --sizes 100 --shard-sweep 1,4,16          # latency per shard
    python benchmarks/bench_scale.py --out DIR --sizes 100,1600 --count-only --count-tree wt-search
    python benchmarks/bench_scale.py --out DIR --sizes 100,1600 --count-only --count-rounds 5

Corpora come from ``common.make_corpus`` (real texts of ../shared/data recombined; 8 JSONL files), one per
size, under ``--out``. Each build is the CLI (``freqindex build CORPUS -o INDEX --json``, local[*], default
settings) in a subprocess: wall time, CPU seconds of the whole process tree (Spark's JVM and its Python
workers included), peak RSS of the tree (sampled every 0.1 s), the build's own stage timings, the load
average before and after. Count latency is measured in a fresh process per index: 2,000 random substrings
(3-30 characters) of random documents of that index, one warm-up pass (the page cache then holds what the
queries touch), then single ``freqindex.query.count.count`` calls timed one by one, 3 passes; also
``unit="docs"`` on the first 500. ``--count-tree REF`` measures the count path of another git ref (e.g. a
branch with a faster search) on the same indexes; ``--count-rounds N`` repeats every count measurement N
times, alternating over the indexes and trees (a fresh process's median moves by 10-40% on a shared VM).
``--page-cache`` sets how the measured indexes' ``sa/`` files sit in the page cache before the counts:
``as-is`` (default: whatever earlier work left), ``preload`` (read by ``serve --preload``'s own code:
dropped, then read start to end; on Linux 6.x with a large-folio file system such as ext4 or XFS the
cache then holds them in 2 MiB folios, which the mappings use as huge pages) or ``random`` (dropped, then
read 4 KiB at a time in random order: 4 KiB pages, as a cache that the queries filled after the files
were dropped). The system's ``FileHugePages`` is recorded with every round.
Results are merged into ``--out/scale.json`` (one entry per size and shard setting), so sizes can be run at
different times; every run recomputes the 1 TB / 10 TB rows from what is there.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import random
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, dir_bytes, make_corpus, run_measured, source_at  # noqa: E402

DEFAULT_SHARD_SIZE = 2_000_000_000  # freqindex.settings.SHARD_SIZE_BYTES, repeated for the extrapolation


def _git(*args: str, cwd: Path = REPO) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True).stdout.strip()


def _tree_info() -> dict:
    return {
        "commit": _git("rev-parse", "HEAD"),
        "dirty": bool(_git("status", "--porcelain", "--", "freqindex")),
    }


def _meminfo_kib(key: str) -> int | None:
    """A /proc/meminfo field in KiB (None where there is none)."""
    try:
        with open("/proc/meminfo") as f:
            for ln in f:
                if ln.startswith(key + ":"):
                    return int(ln.split()[1])
    except OSError:
        pass
    return None


def set_page_cache(indexes: list[Path], mode: str) -> dict:
    """Put the indexes' ``sa/`` files in the page cache as ``mode`` says (module docstring)."""
    import numpy as np

    before = _meminfo_kib("FileHugePages")
    t0 = time.monotonic()
    if mode == "preload":
        from freqindex.server.preload import Preload, shard_paths
        from freqindex.suffix.index import Index

        for index in indexes:
            pre = Preload(shard_paths(Index.open(index))).start()
            pre.join()
            if pre.error:
                raise SystemExit(f"preload failed: {pre.error}")
    elif mode == "random":
        for index in indexes:
            for f in sorted((index / "sa").iterdir()):
                fd = os.open(f, os.O_RDONLY)
                try:
                    size = os.fstat(fd).st_size
                    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
                    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_RANDOM)
                    for page in np.random.default_rng(0).permutation(-(-size // 4096)).tolist():
                        os.pread(fd, 4096, page * 4096)
                finally:
                    os.close(fd)
    return {
        "mode": mode,
        "seconds": round(time.monotonic() - t0, 1),
        "file_huge_pages_kib_before": before,
        "file_huge_pages_kib_after": _meminfo_kib("FileHugePages"),
    }


def _free_gib() -> float:
    return round(_meminfo_kib("MemAvailable") / 2**20, 1)


def build(corpus: Path, dest: Path, extra: list[str]) -> dict:
    shutil.rmtree(dest, ignore_errors=True)
    load0 = os.getloadavg()[0]
    free0 = _free_gib()
    cmd = [sys.executable, "-m", "freqindex.cli", "build", str(corpus), "-o", str(dest), "--json", *extra]
    r = run_measured(cmd, env={"PYTHONPATH": str(REPO)}, cwd=str(REPO))
    s = json.loads(r.pop("stdout"))
    r.update(
        load_before=round(load0, 1),
        load_after=round(os.getloadavg()[0], 1),
        mem_available_gib_before=free0,
        shards=s["shards"],
        documents=s["documents"],
        tokens=s["tokens"],
        input_bytes=s["input_bytes"],
        timings=s["timings"],
        shard_tasks=s.get("shard_tasks"),
        index_bytes=dir_bytes(dest / "sa"),
        token_bytes=sum(p.stat().st_size for p in (dest / "sa").glob("tokenized.*")),
    )
    return r


def count_in_tree(index: Path, tree: Path, queries: int, passes: int) -> dict:
    """Count latency of ``index`` with the freqindex of ``tree``, in a fresh process."""
    cmd = [sys.executable, __file__, "_count", str(index), "--queries", str(queries), "--passes", str(passes)]
    p = subprocess.run(
        cmd, env={**os.environ, "PYTHONPATH": str(tree)}, cwd=str(tree), capture_output=True, text=True
    )
    if p.returncode != 0:
        raise SystemExit(f"count worker failed: {p.stderr[-2000:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def _count_worker(index: str, n_queries: int, passes: int) -> None:
    import freqindex.query.count as qc
    from freqindex.query.count import count
    from freqindex.suffix.index import Index

    idx = Index.open(index)
    rng = random.Random(0)
    queries: list[str] = []
    while len(queries) < n_queries:
        text = idx.doc_text(rng.randrange(idx.total_docs))
        n = rng.randint(3, 30)
        if len(text) <= n:
            continue
        i = rng.randrange(len(text) - n)
        queries.append(text[i : i + n])
    for q in queries:  # warm-up: the page cache then holds what the timed passes touch
        count(idx, q, literal=True)
    lat: list[float] = []
    for _ in range(passes):
        for q in queries:
            t = time.perf_counter_ns()
            count(idx, q, literal=True)
            lat.append((time.perf_counter_ns() - t) / 1000)
    docs: list[float] = []
    for q in queries[:500]:
        t = time.perf_counter_ns()
        count(idx, q, unit="docs", literal=True)
        docs.append((time.perf_counter_ns() - t) / 1000)
    src = Path(qc.__file__).read_text()
    impl = "infini-gram engine" if "engine.count(" in src else "compiled suffix-array search"

    def summ(v: list[float]) -> dict:
        s = sorted(v)
        return {
            "median_us": round(statistics.median(s), 1),
            "p90_us": round(s[int(0.9 * len(s))], 1),
            "n": len(s),
        }

    print(
        json.dumps(
            {
                "shards": len(idx.manifest["shards"]),
                "tokens": idx.manifest["counts"]["tokens"],
                "count": summ(lat),
                "count_docs": summ(docs),
                "count_path": impl,
                "load": round(os.getloadavg()[0], 1),
            }
        )
    )


def _measure_counts(res: dict, path: Path, jobs: list[tuple[str, Path]], trees: dict, args) -> None:
    """Count latency of every (index, tree), ``args.count_rounds`` rounds alternating over all of them, so
    that a slow spell of a shared machine falls on every index alike; merged by ``_merge_rounds``."""
    got: dict[tuple[str, str], list[dict]] = {}
    for rnd in range(args.count_rounds):
        for name, index in jobs:
            for label, tree in trees.items():
                c = count_in_tree(index, tree, args.queries, args.passes)
                c["when"] = dt.datetime.now().isoformat(timespec="seconds")
                c["file_huge_pages_kib"] = _meminfo_kib("FileHugePages")
                got.setdefault((name, label), []).append(c)
                print(name, label, f"round {rnd + 1}/{args.count_rounds}", json.dumps(c), flush=True)
                res["count"].setdefault(name, {})[label] = _merge_rounds(got[name, label])
                _save(path, res)


def _merge_rounds(rounds: list[dict]) -> dict:
    """One count entry from several rounds: medians of the rounds' medians and p90s, and every round."""
    if len(rounds) == 1:
        return rounds[0]
    out = dict(rounds[-1])
    for key in ("count", "count_docs"):
        out[key] = {
            "median_us": round(statistics.median(r[key]["median_us"] for r in rounds), 1),
            "p90_us": round(statistics.median(r[key]["p90_us"] for r in rounds), 1),
            "n": sum(r[key]["n"] for r in rounds),
        }
    out["rounds"] = [
        {
            "count_median_us": r["count"]["median_us"],
            "docs_median_us": r["count_docs"]["median_us"],
            "load": r["load"],
            "when": r["when"],
            "file_huge_pages_kib": r.get("file_huge_pages_kib"),
        }
        for r in rounds
    ]
    return out


def _load(path: Path) -> dict:
    return json.loads(path.read_text()) if path.exists() else {"runs": {}, "count": {}}


def _save(path: Path, res: dict) -> None:
    path.write_text(json.dumps(res, indent=2))


def extrapolate(res: dict) -> dict:
    """1 TB and 10 TB rows from the largest measured build and the measured latency per shard.

    Assumptions (stated in the output): the corpus is like this one (tokens per input byte as measured);
    build CPU time grows linearly with the shard count beyond one default shard (every shard is sorted
    on its own, and each is at most the default size, so its cost per byte no longer grows); count latency
    is the 1-shard latency at the largest size plus the measured cost of each further shard; the index has
    as many bytes per token as measured."""
    runs = [r for r in res["runs"].values() if r.get("shard_setting") == "default"]
    if not runs:
        return {}
    big = max(runs, key=lambda r: r["input_bytes"])
    tokens_per_byte = big["token_bytes"] / big["input_bytes"]
    cpu_per_byte = big["tree_cpu_seconds"] / big["input_bytes"]
    index_per_token_byte = big["index_bytes"] / big["token_bytes"]
    out = {"from_run": big["name"], "assumptions": extrapolate.__doc__.split("Assumptions")[1].strip()}
    slopes = res.get("per_shard_us", {})
    for label, tb in (("1 TB", 1e12), ("10 TB", 1e13)):
        token_bytes = tb * tokens_per_byte
        shards = math.ceil(token_bytes / DEFAULT_SHARD_SIZE)
        row = {
            "input_bytes": tb,
            "shards": shards,
            "build_cpu_hours": round(cpu_per_byte * tb / 3600, 1),
            "index_tb": round(token_bytes * index_per_token_byte / 1e12, 2),
            "shard_task_peak_gib": round((DEFAULT_SHARD_SIZE * 5 + (4 << 20) * 24) / 2**30, 1),
        }
        for path, s in slopes.items():
            base = s["one_shard_us_at_largest"]
            row[f"count_median_us[{path}]"] = round(base + (shards - 1) * s["us_per_shard"])
        out[label] = row
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="bench-out/scale")
    ap.add_argument("--sizes", default="100,400,1600", help="corpus sizes in MB of text")
    ap.add_argument("--repeats", type=int, default=1, help="builds per size (rounds over the sizes)")
    ap.add_argument("--queries", type=int, default=2000)
    ap.add_argument("--passes", type=int, default=3)
    ap.add_argument("--shard-sweep", default=None, help="also build the smallest size with these --shards")
    ap.add_argument("--count-only", action="store_true", help="measure counts on existing indexes only")
    ap.add_argument("--count-tree", default=None, help="also measure counts with freqindex at this git ref")
    ap.add_argument("--extra-index", action="append", default=[], help="NAME=DIR: also measure counts there")
    ap.add_argument("--drop-index", action="store_true", help="delete each index once it has been measured")
    ap.add_argument(
        "--count-rounds",
        type=int,
        default=1,
        help="measure counts this many times, rounds alternating over every index and tree (each a fresh "
        "process); the median of the rounds' medians is reported, every round is kept",
    )
    ap.add_argument(
        "--page-cache",
        choices=("as-is", "preload", "random"),
        default="as-is",
        help="how the measured indexes' files sit in the page cache before the counts (module docstring)",
    )
    args = ap.parse_args()
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    path = out / "scale.json"
    res = _load(path)
    res.setdefault("runs", {})
    res.setdefault("count", {})
    res["machine"] = {
        "cpus": os.cpu_count(),
        "mem_total_gib": round(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 2**30, 1),
    }
    sizes = [int(x) for x in args.sizes.split(",") if x]
    trees = {"this tree": REPO}
    if args.count_tree:
        commit = _git("rev-parse", args.count_tree)
        trees[f"{args.count_tree} ({commit[:10]})"] = source_at(commit, out / f"src-{commit[:12]}")
    jobs: list[tuple[str, int, list[str], str]] = [(f"{mb}MB", mb, [], "default") for mb in sizes]
    if args.shard_sweep:
        for k in args.shard_sweep.split(","):
            jobs.append((f"{sizes[0]}MB-{k}shards", sizes[0], ["--shards", k], f"--shards {k}"))
    count_jobs: list[tuple[str, Path]] = []
    for rep in range(args.repeats):
        for name, mb, extra, setting in jobs:
            corpus = out / f"corpus-{mb}"
            info = make_corpus(corpus, mb)
            index = out / f"index-{name}"
            if not args.count_only:
                print(f"building {name} (round {rep + 1}) ...", flush=True)
                r = build(corpus, index, extra)
                r.update(name=name, mb=mb, corpus=info, shard_setting=setting, tree=_tree_info())
                r["when"] = dt.datetime.now().isoformat(timespec="seconds")
                prev = res["runs"].get(name, {})
                r["all_seconds"] = prev.get("all_seconds", []) + [r["seconds"]]
                r["all_cpu_seconds"] = prev.get("all_cpu_seconds", []) + [r["tree_cpu_seconds"]]
                res["runs"][name] = r
                keys = ("name", "seconds", "tree_cpu_seconds", "peak_rss_mb", "shards")
                print(json.dumps({k: r[k] for k in keys}), flush=True)
                _save(path, res)
            if rep == args.repeats - 1 and (index / "manifest.json").exists():
                if args.drop_index:  # measured now, before the index goes
                    res.setdefault("count_page_cache_by_index", {})[name] = set_page_cache(
                        [index], args.page_cache
                    )
                    _measure_counts(res, path, [(name, index)], trees, args)
                    shutil.rmtree(index, ignore_errors=True)
                else:
                    count_jobs.append((name, index))
    for spec in args.extra_index:
        name, _, d = spec.partition("=")
        count_jobs.append((name, Path(d)))
    if count_jobs:
        res["count_page_cache"] = set_page_cache([d for _, d in count_jobs], args.page_cache)
        print("page cache:", json.dumps(res["count_page_cache"]), flush=True)
    _measure_counts(res, path, count_jobs, trees, args)
    _per_shard(res)
    res["extrapolation"] = extrapolate(res)
    _save(path, res)
    print(json.dumps({"count": res["count"], "extrapolation": res["extrapolation"]}, indent=2))


def _per_shard(res: dict) -> None:
    """Least-squares count latency per added shard, per count path, from the indexes of the smallest corpus
    (its default build and the ``--shard-sweep`` builds)."""
    default_runs = [r for r in res["runs"].values() if r.get("shard_setting") == "default"]
    if not default_runs:
        return
    smallest = min(r["mb"] for r in default_runs)
    largest = max(default_runs, key=lambda r: r["input_bytes"])
    sweep = [c for n, c in res["count"].items() if n == f"{smallest}MB" or n.startswith(f"{smallest}MB-")]
    out = {}
    for p in sorted({p for c in sweep for p in c}):
        pts = sorted((c[p]["shards"], c[p]["count"]["median_us"]) for c in sweep if p in c)
        if len({x for x, _ in pts}) < 2:
            continue
        mx, my = statistics.mean(x for x, _ in pts), statistics.mean(y for _, y in pts)
        slope = sum((x - mx) * (y - my) for x, y in pts) / sum((x - mx) ** 2 for x, _ in pts)
        base = res["count"].get(largest["name"], {}).get(p, {}).get("count", {}).get("median_us")
        out[p] = {
            "points": pts,
            "us_per_shard": round(slope, 2),
            "one_shard_us_at_largest": base or pts[0][1],
        }
    res["per_shard_us"] = out


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_count":
        ap = argparse.ArgumentParser()
        ap.add_argument("cmd")
        ap.add_argument("index")
        ap.add_argument("--queries", type=int, default=2000)
        ap.add_argument("--passes", type=int, default=3)
        a = ap.parse_args()
        _count_worker(a.index, a.queries, a.passes)
    else:
        main()
