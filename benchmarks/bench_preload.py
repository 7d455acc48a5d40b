"""`serve --preload` after the index's files left the page cache: how soon the counts are fast.

    python benchmarks/bench_preload.py --out DIR --index scale2/index-1600MB [--queries 2000] [--runs 2]

For each index, ``--queries`` random substrings of its documents (bench_count.py's) are made first. Then,
alternating, ``--runs`` times each: the index's ``sa/`` files are dropped from the page cache
(``posix_fadvise(DONTNEED)``), `freqindex serve` starts, and the queries go to ``POST /v1/count`` one at a
time, in order, in three modes: ``cold`` (no preload: each count reads what it needs from disk),
``preload`` (``--preload``, the counts start as soon as the server answers /healthz, while the files are
still being read) and ``preload-wait`` (the counts start once /healthz says the preload is done). Reported
per run: seconds until the server answered, seconds until the preload finished, each count's latency
(median, p90, max, and the median of each block of 10% of the queries) and the seconds from the server's
start until the last count came back. JSON to DIR/preload.json.
"""

from __future__ import annotations

import json
import os
import random
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_count import _queries  # noqa: E402
from common import drop_page_cache, index_bench_args  # noqa: E402

from freqindex.suffix.index import Index  # noqa: E402
from tests.conftest import free_port  # noqa: E402


def run_once(index: Path, queries: list[str], mode: str) -> dict:
    preload = mode != "cold"
    drop_page_cache(index)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    t0 = time.monotonic()
    cmd = [sys.executable, "-m", "freqindex.cli", "serve", str(index), "--port", str(port)]
    cmd += ["--log-level", "warning"] + (["--preload"] if preload else [])
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    err: list[str] = []
    threading.Thread(target=lambda: err.extend(proc.stderr), daemon=True).start()
    try:
        with httpx.Client(timeout=120) as client:
            while True:
                try:
                    client.get(url + "/healthz")
                    break
                except httpx.HTTPError:
                    if proc.poll() is not None:
                        raise RuntimeError("server exited: " + "".join(err)) from None
                    time.sleep(0.05)
            ready = time.monotonic() - t0
            while (
                mode == "preload-wait"
                and client.get(url + "/healthz").json()["preload"]["state"] == "running"
            ):
                time.sleep(0.05)
            lat = []
            for q in queries:
                t = time.monotonic()
                r = client.post(url + "/v1/count", json={"index": index.name, "query": q})
                r.raise_for_status()
                lat.append((time.monotonic() - t) * 1000)
            last = time.monotonic() - t0
            pre = client.get(url + "/healthz").json().get("preload")
            while pre is not None and pre["state"] == "running":
                time.sleep(0.2)
                pre = client.get(url + "/healthz").json().get("preload")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
    lat_sorted = sorted(lat)
    tenth = max(1, len(lat) // 10)
    return {
        "mode": mode,
        "ready_s": round(ready, 3),
        "preload_s": pre.get("seconds") if pre else None,
        "preload_bytes": pre.get("bytes") if pre else None,
        "count_ms_median": round(statistics.median(lat), 3),
        "count_ms_p90": round(lat_sorted[int(0.9 * (len(lat) - 1))], 3),
        "count_ms_max": round(lat_sorted[-1], 3),
        "count_ms_median_by_tenth": [
            round(statistics.median(lat[k : k + tenth]), 3) for k in range(0, len(lat), tenth)
        ],
        "last_answer_s": round(last, 3),
    }


def main() -> None:
    ap = index_bench_args(__doc__, queries=2000)
    ap.add_argument("--runs", type=int, default=2)
    a = ap.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for path in map(Path, a.index):
        idx = Index.open(path)
        queries = _queries(idx, a.queries, random.Random(0))
        del idx
        for _ in range(a.runs):
            for mode in ("cold", "preload", "preload-wait"):
                row = {"index": str(path), **run_once(path, queries, mode)}
                rows.append(row)
                print(json.dumps(row), flush=True)
    out = {"load_average": os.getloadavg(), "queries": a.queries, "runs": rows}
    (a.out / "preload.json").write_text(json.dumps(out, indent=2) + "\n")
    print(a.out / "preload.json")


if __name__ == "__main__":
    main()
