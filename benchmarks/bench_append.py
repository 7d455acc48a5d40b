"""Append benchmark (#13): adding 10% more data to an index (``freqindex build NEW --append-to INDEX``) vs
rebuilding the whole, grown corpus. Target: the append costs at most 0.2x the rebuild.

    python benchmarks/bench_append.py --out /tmp/bench-append                  # 30 MB + 10%, 3 pairs
    python benchmarks/bench_append.py --out DIR --mb 40 --repeats 1 --modes core

The corpus comes from ``common.make_corpus`` (real texts of ../shared/data recombined) as 11 JSONL files of
equal size: the base index holds the first 10, the append adds the 11th (10% more data); the rebuild indexes
all 11. Two modes, each timed as alternating pairs (append, rebuild) with medians reported:

- ``cli``: the command a user runs, ``freqindex build ... --json`` on Spark ``local[*]`` in a subprocess
  (wall time and peak RSS of the process tree). Both pay Spark's start, a fixed cost that dominates a small
  append; the ratio is also given without it (the build's own ``timings.spark_start``).
- ``core``: the same driver code run in process without Spark (``freqindex.build.run_in_process``): the
  work itself.

Every append starts from a fresh copy of the base index (copied outside the timing). Results go to
``--out/append.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, make_corpus, run_measured  # noqa: E402

FILES = 11  # base: 10 files; the append: 1 more (10%)


def _cli(args: list[str]) -> dict:
    cmd = [sys.executable, "-c", "from freqindex.cli import app; app(prog_name='freqindex')", "build", *args]
    r = run_measured(cmd + ["--json"], env={"PYTHONPATH": str(REPO)}, cwd=str(REPO))
    s = json.loads(r.pop("stdout"))
    spark = s.get("timings", {}).get("spark_start", 0.0)
    return {
        "seconds": round(r["seconds"], 2),
        "peak_rss_mb": r["peak_rss_mb"],
        "tree_cpu_seconds": r["tree_cpu_seconds"],
        "spark_start": spark,
        "without_spark_start": round(r["seconds"] - spark, 2),
        "documents": s["documents"],
        "shards": s["shards"],
        "status": s["status"],
    }


def _core(kind: str, inputs: list[str], output: str) -> dict:
    """One in-process run in a fresh interpreter (no state carried between runs)."""
    code = (
        "import json, sys, time\n"
        "from freqindex.build import build_index, run_in_process\n"
        "from freqindex.build.append import append_index\n"
        "from freqindex.config import BuildConfig\n"
        "kind, out, inputs = sys.argv[1], sys.argv[2], sys.argv[3:]\n"
        "t = time.monotonic()\n"
        "fn = append_index if kind == 'append' else build_index\n"
        "s = fn(BuildConfig(inputs=tuple(inputs), output=out), run_in_process)\n"
        "print(json.dumps({'seconds': round(time.monotonic() - t, 3), 'documents': s['documents'],"
        " 'shards': s['shards'], 'status': s['status'], 'timings': s.get('timings')}))\n"
    )
    p = subprocess.run(
        [sys.executable, "-c", code, kind, output, *inputs],
        env={**os.environ, "PYTHONPATH": str(REPO)},
        cwd=str(REPO),
        capture_output=True,
        text=True,
    )
    if p.returncode != 0:
        raise SystemExit(f"{kind} failed: {p.stderr[-2000:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def run_mode(mode: str, files: list[Path], work: Path, repeats: int) -> dict:
    base_files, new_file = [str(f) for f in files[:-1]], str(files[-1])
    base = work / f"base-{mode}"
    shutil.rmtree(base, ignore_errors=True)
    if mode == "cli":
        base_run = _cli([*base_files, "-o", str(base)])
    else:
        base_run = _core("build", base_files, str(base))
    appends, rebuilds = [], []
    for i in range(repeats):
        grown = work / f"grown-{mode}"
        shutil.rmtree(grown, ignore_errors=True)
        shutil.copytree(base, grown)
        full = work / f"full-{mode}"
        shutil.rmtree(full, ignore_errors=True)
        if mode == "cli":
            appends.append(_cli([new_file, "--append-to", str(grown)]))
            rebuilds.append(_cli([*base_files, new_file, "-o", str(full)]))
        else:
            appends.append(_core("append", [new_file], str(grown)))
            rebuilds.append(_core("build", [*base_files, new_file], str(full)))
        assert appends[-1]["status"] == "appended", appends[-1]
        print(
            f"{mode} pair {i + 1}: append {appends[-1]['seconds']} s, rebuild {rebuilds[-1]['seconds']} s",
            file=sys.stderr,
        )
    a = statistics.median(r["seconds"] for r in appends)
    b = statistics.median(r["seconds"] for r in rebuilds)
    out = {
        "base_build": base_run,
        "appends": appends,
        "rebuilds": rebuilds,
        "append_median_s": round(a, 2),
        "rebuild_median_s": round(b, 2),
        "ratio": round(a / b, 3),
    }
    if mode == "cli":
        a2 = statistics.median(r["without_spark_start"] for r in appends)
        b2 = statistics.median(r["without_spark_start"] for r in rebuilds)
        out["ratio_without_spark_start"] = round(a2 / b2, 3)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--mb", type=int, default=30, help="size of the base + appended corpus, MB")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--modes", default="cli,core")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    corpus = args.out / f"corpus-{args.mb}mb"
    info = make_corpus(corpus, target_mb=args.mb, shards=FILES)
    files = sorted(corpus.glob("part-*.jsonl"))
    sizes = [f.stat().st_size for f in files]
    result = {
        "benchmark": "append",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "load_before": round(os.getloadavg()[0], 1),
        "corpus": {"info": info, "base_bytes": sum(sizes[:-1]), "appended_bytes": sizes[-1]},
        "appended_fraction": round(sizes[-1] / sum(sizes[:-1]), 3),
        "target_ratio": 0.2,
    }
    t = time.monotonic()
    for mode in args.modes.split(","):
        result[mode] = run_mode(mode, files, args.out, args.repeats)
    result["load_after"] = round(os.getloadavg()[0], 1)
    result["seconds"] = round(time.monotonic() - t, 1)
    (args.out / "append.json").write_text(json.dumps(result, indent=2) + "\n")
    print(
        json.dumps(
            {
                m: {k: v for k, v in result[m].items() if "ratio" in k or "median" in k}
                for m in args.modes.split(",")
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
