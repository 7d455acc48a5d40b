"""Remote build benchmark: the same build from and to a loopback S3 server (moto_server, the S3-compatible
server of the tests) vs local disk.

    python benchmarks/bench_remote.py --out bench-out [--mb 110] [--pairs 2] [--master 'local[*]']
    python benchmarks/bench_remote.py --out bench-out --put-probe 384 [--pairs 4]

The corpus is benchmarks/common.make_corpus's (real text recombined from ../shared/data, 8 .jsonl files). It is
uploaded once (timed apart). Then `freqindex build` runs in alternating pairs, local corpus to a local index and
s3:// corpus to an s3:// index, each in a fresh process (Spark start-up included), outputs removed in between.
Prints and writes JSON (OUT/remote.json): every run's wall time, peak RSS of the build's process tree (the
moto_server process is not part of it; its CPU seconds during each s3 build are reported apart, since on this
machine the store shares the build's cores) and stage timings, the medians, and the ratio s3 / local.

``--put-probe MB`` measures the store alone instead: one random file of MB megabytes (the size of the 100 MB
build's suffix array is 384) put through s3fs as the build puts it (multipart, s3fs's default parts of 50 MiB)
and as one single PUT, alternating ``--pairs`` times: wall seconds, and the CPU seconds of the moto_server
process and of this client (OUT/put_probe.json).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import make_corpus, run_measured  # noqa: E402

from tests.objectstore import moto_server, s3fs_for, upload  # noqa: E402


def _server_cpu_seconds(port: str) -> float:
    """CPU seconds used so far by the moto_server process listening on ``port`` (0 when not found): the
    loopback store runs on the same 2 cores as the build, so its CPU is part of what the S3 build costs here."""
    tick = os.sysconf("SC_CLK_TCK")
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            if any(b"moto_server" in c for c in cmd) and port.encode() in cmd:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                return (int(fields[11]) + int(fields[12])) / tick
        except OSError:
            continue
    return 0.0


def put_probe(out: Path, mb: int, pairs: int) -> dict:
    """Multipart vs single PUT of one ``mb`` MB file into moto_server (see the module's docstring)."""
    blob = out / f"put-probe-{mb}mb.bin"
    if not blob.exists() or blob.stat().st_size != mb * 1_000_000:
        blob.write_bytes(os.urandom(mb * 1_000_000))
    rows = []
    with moto_server(out) as endpoint:
        fs = s3fs_for(endpoint)
        fs.mkdir("probe")
        port = endpoint.rsplit(":", 1)[1]
        for i in range(pairs):
            for kind, kw in (("multipart", {}), ("single_put", {"chunksize": mb * 1_000_000 + (1 << 20)})):
                server0, client0, t = _server_cpu_seconds(port), sum(os.times()[:2]), time.perf_counter()
                fs.put_file(str(blob), f"probe/{kind}-{i}", **kw)
                row = {
                    "kind": kind,
                    "pair": i,
                    "seconds": round(time.perf_counter() - t, 3),
                    "server_cpu_seconds": round(_server_cpu_seconds(port) - server0, 2),
                    "client_cpu_seconds": round(sum(os.times()[:2]) - client0, 2),
                }
                fs.rm(f"probe/{kind}-{i}")
                rows.append(row)
                print(json.dumps(row), flush=True)
    blob.unlink()
    med = {
        k: {
            m: statistics.median(r[m] for r in rows if r["kind"] == k)
            for m in ("seconds", "server_cpu_seconds")
        }
        for k in ("multipart", "single_put")
    }
    return {"mb": mb, "runs": rows, "median": med, "load_average": os.getloadavg()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="bench-out")
    ap.add_argument("--mb", type=int, default=110)
    ap.add_argument("--pairs", type=int, default=2)
    ap.add_argument("--master", default="local[*]")
    ap.add_argument(
        "--put-probe", type=int, metavar="MB", help="measure the store's PUT paths only (see above)"
    )
    args = ap.parse_args()
    out = Path(args.out).resolve()
    if args.put_probe:
        out.mkdir(parents=True, exist_ok=True)
        res = put_probe(out, args.put_probe, args.pairs)
        (out / "put_probe.json").write_text(json.dumps(res, indent=2))
        print(json.dumps(res["median"], indent=2))
        return
    corpus = out / "corpus" if args.mb == 110 else out / f"corpus-{args.mb}mb"
    info = make_corpus(corpus, args.mb)
    results: dict = {"corpus": info, "master": args.master, "machine_cpus": __import__("os").cpu_count()}
    with moto_server(out) as endpoint:
        fs = s3fs_for(endpoint)
        fs.mkdir("bench")
        t = time.monotonic()
        upload(fs, corpus, "s3://bench/corpus")
        results["upload_seconds"] = round(time.monotonic() - t, 2)
        py = sys.executable

        def build(kind: str, i: int) -> dict:
            if kind == "local":
                src, dest = str(corpus), str(out / "remote-bench-idx")
                shutil.rmtree(dest, ignore_errors=True)
                extra: list[str] = []
            else:
                src, dest = "s3://bench/corpus", "s3://bench/idx"
                if fs.exists("bench/idx"):
                    fs.rm("bench/idx", recursive=True)
                extra = ["--storage-option", f"endpoint_url={endpoint}"]
            cpu0 = _server_cpu_seconds(endpoint.rsplit(":", 1)[1])
            r = run_measured(
                [
                    py,
                    "-m",
                    "freqindex.cli",
                    "build",
                    src,
                    "-o",
                    dest,
                    "--master",
                    args.master,
                    "--json",
                    *extra,
                ],
                cwd=str(REPO),
            )
            s = json.loads(r.pop("stdout"))
            r.update(kind=kind, pair=i, tokens=s["tokens"], shards=s["shards"], timings=s["timings"])
            if kind == "s3":
                r["store_server_cpu_seconds"] = round(
                    _server_cpu_seconds(endpoint.rsplit(":", 1)[1]) - cpu0, 2
                )
            print(json.dumps(r), flush=True)
            return r

        runs = []
        for i in range(args.pairs):  # alternate which goes first: the second of a pair finds warm caches
            order = ("local", "s3") if i % 2 == 0 else ("s3", "local")
            runs += [build(kind, i) for kind in order]
        shutil.rmtree(out / "remote-bench-idx", ignore_errors=True)
    results["runs"] = runs
    med = {k: statistics.median(r["seconds"] for r in runs if r["kind"] == k) for k in ("local", "s3")}
    results["median_seconds"] = med
    results["s3_over_local"] = round(med["s3"] / med["local"], 3)
    (out / "remote.json").write_text(json.dumps(results, indent=2))
    print(
        json.dumps({k: results[k] for k in ("median_seconds", "s3_over_local", "upload_seconds")}, indent=2)
    )


if __name__ == "__main__":
    main()
