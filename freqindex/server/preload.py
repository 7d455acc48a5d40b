"""`serve --preload`: read the served indexes' shard files into the page cache in the background.

A count touches a dozen pages at random places in a shard's suffix array and text. Right after a reboot
(or once other work has pushed the index out of memory) each of those is a disk read, so the first counts
on a large index take ~0.1 s each instead of microseconds, until the pages they need happen to be cached.
Reading the files once, start to end, caches them at the disk's sequential speed instead; the service
answers meanwhile. ``/healthz`` reports the progress.

Each file's cached pages are dropped first (``POSIX_FADV_DONTNEED``: clean pages that no process has mapped)
and read again start to end. On Linux 6.x with a file system that caches in large folios (ext4, XFS) a
sequential read caches the file in 2 MiB folios, which the search's memory maps then use as huge pages,
while pages cached by random reads (counts on a cold cache) or by a copy (``cp``) stay 4 KiB pages. Fewer
TLB misses make single counts faster on large shards: on the 1.6 GB benchmark index 10.0-10.6 µs against
11.4-12.5 µs (benchmarks/bench_scale.py ``--page-cache preload`` vs ``random``, README *Scale*).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

from freqindex.manifest import shard_files
from freqindex.suffix.index import Index

_BLOCK = 8 << 20  # bytes read at a time


def shard_paths(idx: Index) -> list[Path]:
    """The files a count or a document lookup reads: every shard's ``sa/`` files (text, suffix array,
    sample, offsets, metadata), not the docs table (DuckDB's)."""
    out = []
    for info in sorted(idx.manifest["shards"], key=lambda s: s["shard"]):
        files = shard_files(info["shard"], sampled=info.get("sample_step") is not None)
        out += [idx.file(rel) for kind, rel in files.items() if kind != "docs"]
    return out


def available_memory() -> int | None:
    """MemAvailable from /proc/meminfo in bytes (None where there is no such file)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


class Preload:
    """One background thread reading ``paths`` start to end; ``status()`` is safe to call from any thread."""

    def __init__(self, paths: list[Path], say: Callable[[str], None] = lambda _: None):
        self.paths = paths
        self.total_bytes = sum(p.stat().st_size for p in paths)
        self.done_bytes = 0
        self.started = time.monotonic()
        self.seconds: float | None = None
        self.error: str | None = None
        self._say = say
        self._thread = threading.Thread(target=self._run, name="freqindex-preload", daemon=True)

    def start(self) -> Preload:
        gb = self.total_bytes / 1e9
        free = available_memory()
        tail = ""
        if free is not None and self.total_bytes > free:
            tail = f"; only {free / 1e9:.1f} GB of memory is available, so only part of them stays cached"
        self._say(f"preloading {gb:.2f} GB of shard files ({len(self.paths)} files) in the background{tail}")
        self._thread.start()
        return self

    def _run(self) -> None:
        buf = bytearray(_BLOCK)
        view = memoryview(buf)
        try:
            for path in self.paths:
                with open(path, "rb", buffering=0) as f:
                    if hasattr(os, "posix_fadvise"):  # cache it anew, read ahead in large steps (docstring)
                        os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
                        os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_SEQUENTIAL)
                    while n := f.readinto(view):
                        self.done_bytes += n
        except OSError as exc:
            self.error = f"{exc.filename or ''}: {exc.strerror or exc}"
            self._say(f"preload stopped: {self.error}")
            return
        self.seconds = time.monotonic() - self.started
        rate = self.done_bytes / 1e6 / max(self.seconds, 1e-9)
        self._say(
            f"preloaded {self.done_bytes / 1e9:.2f} GB of shard files in {self.seconds:.1f} s ({rate:,.0f} MB/s)"
        )

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    def status(self) -> dict:
        state = "failed" if self.error else ("done" if self.seconds is not None else "running")
        out = {"state": state, "bytes": self.done_bytes, "total_bytes": self.total_bytes}
        if self.seconds is not None:
            out["seconds"] = round(self.seconds, 3)
        if self.error:
            out["error"] = self.error
        return out
