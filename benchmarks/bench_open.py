"""The cost of the open-time checks (issue #12 item 1): ``Index.open`` and the first count, with and without
the checks, on the ~100 MB benchmark index.

    python benchmarks/bench_open.py --index /work/bench-shared/count-index --out bench-out [--repeats 21]

Three ways to open, each followed by the first count of ``" dog "`` (which starts the infini-gram engine):

- ``unchecked``: parse manifest.json and wrap it (what open did before the checks);
- ``manifest``: ``Index.open(check_files=False)``: the manifest's seal (sha256 of its canonical content) and
  the consistency of its sections;
- ``full``: ``Index.open()``: the above plus one ``stat`` per listed file (presence and size) and a listing
  of ``sa/``, the default.

The three are interleaved in every repeat (so drifting machine load hits them alike) and the medians are
reported, in one process with warm page caches. An index of an older schema (the shared benchmark index was
built before schema 2) is opened through a directory of symbolic links to its files with an upgraded manifest
(each shard's ``ptr_size`` by infini-gram's rule, checked against the table's size, and the seal), written
under ``OUT/open-index``; the index itself is not touched. Writes ``OUT/open.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path


def upgraded_view(index: Path, work: Path) -> Path:
    """``index`` itself when its manifest is current; else a directory of symbolic links to its files with a
    schema-2 manifest."""
    from freqindex import settings
    from freqindex.manifest import read_manifest, write_manifest
    from freqindex.suffix.sa_build import pointer_bytes

    m = read_manifest(index, check=False)
    if m.get("schema_version") == settings.SCHEMA_VERSION:
        return index
    view = work / "open-index"
    if (view / "manifest.json").exists():
        return view
    width = m["tokenizer"]["width"]
    for sh in m["shards"]:
        sh["ptr_size"] = pointer_bytes(sh["ds_bytes"])
        table = (index / "sa" / f"table.{sh['shard']}").stat().st_size
        if table != sh["ptr_size"] * (sh["ds_bytes"] // width):
            raise SystemExit(f"table.{sh['shard']} has {table} bytes; not {sh['ptr_size']}-byte pointers")
    for rel in m["files"]:
        (view / rel).parent.mkdir(parents=True, exist_ok=True)
        os.symlink(index / rel, view / rel)
    m["schema_version"] = settings.SCHEMA_VERSION
    write_manifest(view, m)
    return view


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--index", default="/work/bench-shared/count-index")
    ap.add_argument("--out", default="bench-out")
    ap.add_argument("--repeats", type=int, default=21)
    ap.add_argument("--query", default=" dog ")
    args = ap.parse_args()
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    from freqindex.manifest import read_manifest
    from freqindex.query.count import count
    from freqindex.suffix.index import Index

    path = upgraded_view(Path(args.index).resolve(), out)
    ways = {
        "unchecked": lambda: Index(path, read_manifest(path, check=False)),
        "manifest": lambda: Index.open(path, check_files=False),
        "full": lambda: Index.open(path),
    }
    opened: dict[str, list[float]] = {k: [] for k in ways}
    first: dict[str, list[float]] = {k: [] for k in ways}
    answers = set()
    for r in range(args.repeats):
        order = list(ways) if r % 2 == 0 else list(reversed(ways))
        for k in order:
            t0 = time.perf_counter()
            idx = ways[k]()
            t1 = time.perf_counter()
            answers.add(count(idx, args.query).count)
            t2 = time.perf_counter()
            opened[k].append(t1 - t0)
            first[k].append(t2 - t0)
            del idx
    m = read_manifest(path)
    ms = {k: round(statistics.median(v) * 1000, 3) for k, v in opened.items()}
    fc = {k: round(statistics.median(v) * 1000, 3) for k, v in first.items()}
    result = {
        "index": str(Path(args.index).resolve()),
        "opened_as": str(path),
        "documents": m["counts"]["documents"],
        "tokens": m["counts"]["tokens"],
        "shards": len(m["shards"]),
        "files_listed": len(m["files"]),
        "manifest_bytes": (path / "manifest.json").stat().st_size,
        "query": args.query,
        "count": sorted(answers),
        "repeats": args.repeats,
        "open_ms_median": ms,
        "open_plus_first_count_ms_median": fc,
        "checks_cost_ms": {
            "open": round(ms["full"] - ms["unchecked"], 3),
            "open_plus_first_count": round(fc["full"] - fc["unchecked"], 3),
        },
        "checks_cost_fraction_of_first_count": round((fc["full"] - fc["unchecked"]) / fc["unchecked"], 4),
    }
    (out / "open.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
