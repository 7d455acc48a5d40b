"""Shared helpers for the benchmarks: a >=100 MB corpus recombined from ../shared/data, timing and RSS."""

from __future__ import annotations

import argparse
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


def make_one_file_corpus(out: Path, target_mb: int = 100, seed: int = 0) -> dict:
    """One JSONL file of short documents (one real text each, drawn with replacement) until ``target_mb`` MB
    of text: the shape of a single big dump file."""
    out.mkdir(parents=True, exist_ok=True)
    marker = out.parent / f"{out.name}.info.json"
    if marker.exists():
        return json.loads(marker.read_text())
    rng = random.Random(seed)
    texts = source_texts()
    total = n = 0
    with open(out / "dump.jsonl", "w", encoding="utf-8") as f:
        while total < target_mb * 1_000_000:
            doc = rng.choice(texts)
            f.write(json.dumps({"id": f"d{n}", "text": doc}) + "\n")
            total += len(doc.encode())
            n += 1
    info = {
        "documents": n,
        "text_bytes": total,
        "files": 1,
        "file_bytes": (out / "dump.jsonl").stat().st_size,
    }
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


def _tree_cpu(pid: int, seen: dict[int, float]) -> None:
    """Record in ``seen`` the CPU seconds (user + system) each process of the tree has used so far."""
    tick = os.sysconf("SC_CLK_TCK")
    for p in tree_pids(pid):
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            seen[p] = (int(fields[11]) + int(fields[12])) / tick
        except (OSError, IndexError, ValueError):
            continue


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


def run_measured(
    cmd: list[str], env: dict | None = None, cwd: str | None = None, timeout: float | None = None
) -> dict:
    """Run ``cmd``; wall time, peak RSS of its whole process tree (sampled every 0.1 s), the CPU seconds
    of the process and its waited-for children, and those of every process seen in the tree. Past ``timeout`` seconds the whole tree is killed and the
    result says ``timed_out`` (``seconds`` is then the timeout)."""
    t0 = time.monotonic()
    before = os.times()
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, **(env or {})},
        cwd=cwd,
        text=True,
        start_new_session=True,
    )
    peak = 0
    stop = threading.Event()
    cpu_seen: dict[int, float] = {}

    def sample():
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, _tree_rss(proc.pid))
            _tree_cpu(proc.pid, cpu_seen)
            stop.wait(0.1)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    timed_out = False
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        for pid in reversed(tree_pids(proc.pid)):
            try:
                os.kill(pid, 9)
            except OSError:
                pass
        stdout, stderr = proc.communicate()
    stop.set()
    th.join()
    wall = time.monotonic() - t0
    after = os.times()
    cpu = (after.children_user - before.children_user) + (after.children_system - before.children_system)
    if proc.returncode != 0 and not timed_out:
        sys.stderr.write(stderr[-3000:])
        raise SystemExit(f"command failed ({proc.returncode}): {' '.join(cmd)}")
    out = {"seconds": round(wall, 2), "peak_rss_mb": round(peak / 2**20, 1), "stdout": stdout}
    out["cpu_seconds"] = round(cpu, 2)
    # every process of the tree, sampled like the RSS (a process that outlives its parent, e.g. Spark's JVM
    # after the driver exits, is missed by the waited-for children's times above)
    out["tree_cpu_seconds"] = round(sum(cpu_seen.values()), 2)
    if timed_out:
        out.update(timed_out=True, seconds=timeout)
    return out


def source_at(ref: str, dest: Path) -> Path:
    """This repository's tree at git ``ref`` (e.g. ``main``), extracted into ``dest`` once; put it first on
    PYTHONPATH to run that version of freqindex (Spark's Python workers inherit PYTHONPATH)."""
    dest.mkdir(parents=True, exist_ok=True)
    if not (dest / "freqindex").is_dir():
        archive = subprocess.run(["git", "archive", ref], cwd=REPO, capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return dest


def dir_bytes(path: Path, names=("tokenized", "table", "offset", "metadata", "metaoff")) -> int:
    return sum(
        p.stat().st_size for p in Path(path).rglob("*") if p.is_file() and p.name.split(".")[0] in names
    )


class StageTimer:
    """A ``progress(stage)`` callback that times each stage until the next one starts; ``finish()`` closes
    the last. ``stages``: stage name -> seconds (wall, rounded to 10 ms)."""

    def __init__(self) -> None:
        self.stages: dict[str, float] = {}
        self._t = time.perf_counter()
        self._stage: str | None = None

    def __call__(self, stage: str | None) -> None:
        now = time.perf_counter()
        if self._stage is not None:
            self.stages[self._stage] = round(now - self._t, 2)
        self._t, self._stage = now, stage

    def finish(self) -> None:
        self(None)


def index_bench_args(doc: str | None, queries: int | None = None) -> argparse.ArgumentParser:
    """The argument parser of a benchmark over existing indexes: ``--out DIR``, ``--index`` (repeatable),
    and ``--queries N`` when it has a default."""
    ap = argparse.ArgumentParser(description=(doc or "").split("\n\n")[0])
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--index", action="append", required=True, help="an index directory (repeatable)")
    if queries is not None:
        ap.add_argument("--queries", type=int, default=queries)
    return ap


def drop_page_cache(index: str | Path) -> None:
    """Ask the kernel to drop the cached pages of an index's ``sa/`` files (``posix_fadvise(DONTNEED)``;
    pages another process maps stay)."""
    sa = Path(index) / "sa"
    for name in os.listdir(sa):
        fd = os.open(sa / name, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)
