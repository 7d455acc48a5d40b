"""Bounded load test of `freqindex serve` on loopback: N concurrent clients for D seconds of mixed requests
(count 70%, docs 20%, contamination 10%), then stop. Starts the server itself on a free port, measures
its memory (RSS of the server process tree) before and after, and writes bench-out/serve.json with
throughput, p50/p99 latency per kind and overall, and the error count (target: 0).

    python benchmarks/bench_serve.py --out bench-out [--clients 50] [--seconds 60] [--workers 1] [--index DIR]

The default index is the >=100 MB benchmark index that bench_count.py builds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DATA, _tree_rss, tree_pids  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_split(pid: int) -> dict:
    """Resident memory of the server process tree split into anonymous (heap: what a leak grows) and
    file-backed (the memory-mapped index pages the OS caches) megabytes, from /proc/PID/status."""
    out = {"anon_mb": 0.0, "file_mb": 0.0}
    for p in tree_pids(pid):
        try:
            for ln in open(f"/proc/{p}/status"):
                if ln.startswith("RssAnon:"):
                    out["anon_mb"] += int(ln.split()[1]) / 1024
                elif ln.startswith("RssFile:") or ln.startswith("RssShmem:"):
                    out["file_mb"] += int(ln.split()[1]) / 1024
        except OSError:
            pass
    return {k: round(v, 1) for k, v in out.items()}


def pct(xs: list[float], q: float) -> float | None:
    if not xs:
        return None
    xs = sorted(xs)
    return round(xs[min(len(xs) - 1, int(q * len(xs)))] * 1000, 2)


async def client(
    http,
    url: str,
    name: str,
    until: float,
    rng: random.Random,
    words: list[str],
    questions: list[str],
    lat: dict,
    errors: list,
) -> None:
    while time.monotonic() < until:
        r = rng.random()
        if r < 0.7:
            kind = "count"
            k = rng.randint(1, 3)
            i = rng.randrange(len(words) - k)
            body = {"index": name, "query": " ".join(words[i : i + k])}
        elif r < 0.9:
            kind = "docs"
            i = rng.randrange(len(words) - 2)
            body = {"index": name, "query": " ".join(words[i : i + 2]), "limit": 5}
        else:
            kind = "contamination"
            body = {
                "index": name,
                "items": [{"id": f"q{j}", "text": rng.choice(questions)} for j in range(rng.randint(1, 3))],
            }
        t = time.perf_counter()
        try:
            resp = await http.post(f"{url}/v1/{kind}", json=body)
            ok = resp.status_code == 200
            if not ok:
                errors.append(f"{kind}: {resp.status_code} {resp.text[:120]}")
        except Exception as exc:  # a transport error counts as an error, the test goes on
            errors.append(f"{kind}: {type(exc).__name__}: {exc}")
            ok = False
        if ok:
            lat.setdefault(kind, []).append(time.perf_counter() - t)


async def run(
    url: str, name: str, clients: int, seconds: float, words, questions
) -> tuple[dict, list, float]:
    import httpx

    lat: dict[str, list[float]] = {}
    errors: list[str] = []
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(timeout=120, limits=limits) as http:
        t = time.monotonic()
        until = t + seconds
        await asyncio.gather(
            *(
                client(http, url, name, until, random.Random(c), words, questions, lat, errors)
                for c in range(clients)
            )
        )
        return lat, errors, time.monotonic() - t


def main() -> None:
    import httpx

    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="bench-out")
    ap.add_argument("--index", default=None)
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument(
        "--rounds",
        type=int,
        default=2,
        help="Load rounds; memory is read after each (growth after "
        "the first round is what a leak looks like).",
    )
    a = ap.parse_args()
    out = Path(a.out).resolve()
    index_dir = Path(a.index).resolve() if a.index else out / "count-index"
    if not (index_dir / "manifest.json").exists():
        raise SystemExit(
            "run benchmarks/bench_count.py first (it builds the benchmark index), or pass --index"
        )
    words = " ".join(
        ln for ln in (DATA / "corpora" / "wikitext2" / "valid.txt").read_text().splitlines()[:2000]
    ).split()
    words = [w for w in words if any(c.isalnum() for c in w)]  # a query of punctuation alone is refused
    questions = [
        json.loads(ln)["question"]
        for ln in (DATA / "evals" / "gsm8k" / "test.jsonl").read_text().splitlines()
    ]
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "freqindex.cli",
            "serve",
            str(index_dir),
            "--port",
            str(port),
            "--workers",
            str(a.workers),
            "--log-level",
            "warning",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        for _ in range(600):
            try:
                if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        else:
            raise SystemExit("the server did not start")
        # warm-up: one request of each kind (first-use costs are not what the load test measures)
        httpx.post(url + "/v1/count", json={"index": index_dir.name, "query": "the"}, timeout=60)
        httpx.post(
            url + "/v1/contamination",
            json={"index": index_dir.name, "items": [{"id": "w", "text": questions[0]}]},
            timeout=60,
        )
        rss_before = _tree_rss(proc.pid)
        mem = [{"when": "before", **rss_split(proc.pid)}]
        rounds = []
        for r in range(a.rounds):
            lat, errors, wall = asyncio.run(run(url, index_dir.name, a.clients, a.seconds, words, questions))
            mem.append({"when": f"after round {r + 1}", **rss_split(proc.pid)})
            rounds.append((lat, errors, wall))
        rss_after = _tree_rss(proc.pid)
        lat = {k: [x for rr in rounds for x in rr[0].get(k, [])] for k in {k for rr in rounds for k in rr[0]}}
        errors = [e for rr in rounds for e in rr[1]]
        wall = sum(rr[2] for rr in rounds)
        metrics = httpx.get(url + "/metrics", timeout=10).text
        healthy = httpx.get(url + "/healthz", timeout=10).status_code == 200
    finally:
        proc.terminate()
        proc.wait(60)
    every = [x for v in lat.values() for x in v]
    res = {
        "index": str(index_dir),
        "clients": a.clients,
        "seconds": round(wall, 1),
        "workers": a.workers,
        "requests_ok": len(every),
        "errors": len(errors),
        "error_examples": errors[:5],
        "throughput_rps": round(len(every) / wall, 1),
        "latency_ms": {
            "all": {
                "p50": pct(every, 0.5),
                "p99": pct(every, 0.99),
                "mean": round(statistics.mean(every) * 1000, 2) if every else None,
            },
            **{k: {"n": len(v), "p50": pct(v, 0.5), "p99": pct(v, 0.99)} for k, v in sorted(lat.items())},
        },
        "rounds": a.rounds,
        "server_rss_mb": {"before": round(rss_before / 2**20, 1), "after": round(rss_after / 2**20, 1)},
        "server_memory": mem,
        "healthy_after": healthy,
        "metrics_lines": sum(
            1 for ln in metrics.splitlines() if ln.startswith("freqindex_http_requests_total")
        ),
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "serve.json").write_text(json.dumps(res, indent=2))
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
