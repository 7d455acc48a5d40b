"""Shared helpers for the benchmarks: a >=100 MB corpus recombined from ../shared/data, timing and RSS."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("FREQINDEX_SHARED", REPO.parent / "shared")) / "data"


def source_texts() -> list[str]:
    texts: list[str] = []
    for name in ("valid.txt", "test.txt"):
        p = DATA / "corpora" / "wikitext2" / name
        texts += [
            ln
            for ln in p.read_text(encoding="utf-8").split("\n")
            if ln.strip() and not ln.strip().startswith("=")
        ]
    for ln in (DATA / "corpora" / "flickr8k" / "Flickr8k.token.txt").read_text(encoding="utf-8").split("\n"):
        if "\t" in ln:
            texts.append(ln.split("\t", 1)[1])
    for ln in (DATA / "evals" / "gsm8k" / "train.jsonl").read_text(encoding="utf-8").splitlines():
        row = json.loads(ln)
        texts.append(row["question"] + "\n" + row["answer"])
    return texts


def make_corpus(out: Path, target_mb: int = 110, shards: int = 8, seed: int = 0) -> dict:
    """Recombine real texts into documents (1-8 pieces each) until ``target_mb`` MB; jsonl shards."""
    out.mkdir(parents=True, exist_ok=True)
    marker = out.parent / f"{out.name}.info.json"  # outside: infini-gram globs every *.json* in the dir
    if marker.exists():
        return json.loads(marker.read_text())
    rng = random.Random(seed)
    texts = source_texts()
    files = [open(out / f"part-{i:03d}.jsonl", "w", encoding="utf-8") for i in range(shards)]
    total = 0
    n = 0
    while total < target_mb * 1_000_000:
        doc = " ".join(rng.choice(texts) for _ in range(rng.randint(1, 8)))
        line = json.dumps({"id": f"d{n}", "text": doc}) + "\n"
        files[n % shards].write(line)
        total += len(doc.encode())
        n += 1
    for f in files:
        f.close()
    info = {"documents": n, "text_bytes": total, "files": shards}
    marker.write_text(json.dumps(info))
    return info


def tree_pids(pid: int) -> list[int]:
    """A process and all its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(d))
        except (OSError, IndexError, ValueError):
            continue
    out, stack = [], [pid]
    while stack:
        p = stack.pop()
        out.append(p)
        stack.extend(children.get(p, []))
    return out


def _tree_rss(pid: int) -> int:
    """Resident memory (bytes) of a process and all its descendants, from /proc."""
    page = os.sysconf("SC_PAGE_SIZE")
    total = 0
    for p in tree_pids(pid):
        try:
            with open(f"/proc/{p}/statm") as f:
                total += int(f.read().split()[1]) * page
        except (OSError, IndexError, ValueError):
            continue
    return total


def run_measured(cmd: list[str], env: dict | None = None, cwd: str | None = None) -> dict:
    """Run ``cmd``; wall time and peak RSS of its whole process tree (sampled every 0.1 s)."""
    t0 = time.monotonic()
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, **(env or {})},
        cwd=cwd,
        text=True,
    )
    peak = 0
    stop = threading.Event()

    def sample():
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, _tree_rss(proc.pid))
            stop.wait(0.1)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    stdout, stderr = proc.communicate()
    stop.set()
    th.join()
    wall = time.monotonic() - t0
    if proc.returncode != 0:
        sys.stderr.write(stderr[-3000:])
        raise SystemExit(f"command failed ({proc.returncode}): {' '.join(cmd)}")
    return {"seconds": round(wall, 2), "peak_rss_mb": round(peak / 2**20, 1), "stdout": stdout}


def dir_bytes(path: Path, names=("tokenized", "table", "offset", "metadata", "metaoff")) -> int:
    return sum(
        p.stat().st_size for p in Path(path).rglob("*") if p.is_file() and p.name.split(".")[0] in names
    )
