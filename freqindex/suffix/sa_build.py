"""Suffix-array build for one shard, written in infini-gram's table format.

The table (``table.N``) lists the suffixes of ``tokenized.N`` that start on a token boundary, in the
byte-wise order of the suffixes; each entry is the suffix's byte offset, little-endian, in
``pointer_bytes(ds_size)`` bytes. A string has exactly one suffix array, so every builder below writes
the same bytes, whatever the builder, thread count or machine.

Two builders:

- **libdivsufsort** (``pydivsufsort``, the default): one suffix sort of the whole shard, O(n log n) in
  the worst case whatever the text. Memory: the shard (read from disk, page cache) plus 4 bytes per byte of
  the shard (``int32`` entries; 8 bytes above 2 GiB), whatever the token width: for u16/u32 the byte-order
  suffix array is sorted and the aligned entries kept, which is exactly the order the engine's byte-wise
  comparisons need.
- **infini-gram's indexer binary** (``rust_indexing``: make-part, merge, concat, called directly instead of
  through ``python -m infini_gram.indexing``, which imports ``transformers``, calls ``setrlimit`` and treats
  any existing file as done). Its memory is bounded by ``mem_gib``, but its merge compares suffixes byte by
  byte, so its cost grows with the length of repeated text: eight copies of WikiText-2 valid took 338 s
  where 7 M tokens of distinct text took 23 s, and on distinct text it is also several times slower than
  libdivsufsort (benchmarks/README.md). It is used only for a shard whose libdivsufsort memory does not fit
  ``mem_gib``.
"""

from __future__ import annotations

import ctypes
import math
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np

from freqindex import settings
from freqindex.errors import BuildError

DIVSUFSORT = "libdivsufsort"
INFINI_GRAM = "infini-gram"


def indexer_binary() -> str:
    import infini_gram

    path = Path(infini_gram.__file__).parent / "rust_indexing"
    if not path.is_file():
        raise BuildError(f"infini-gram's indexer binary is missing at {path}; reinstall infini-gram")
    if not os.access(path, os.X_OK):
        try:
            path.chmod(path.stat().st_mode | 0o111)
        except OSError:
            raise BuildError(f"infini-gram's indexer binary is not executable: {path}") from None
    return str(path)


def pointer_bytes(ds_size: int) -> int:
    """Bytes per suffix-array entry, the rule of infini-gram's indexer."""
    return max(1, int(math.ceil(math.log2(ds_size) / 8)))


def _run(args: list[str], step: str) -> None:
    proc = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout or "").strip().splitlines()[-3:]
        raise BuildError(f"suffix-array {step} failed (exit {proc.returncode}): {' | '.join(tail)}")


def divsufsort_memory(ds_size: int) -> int:
    """Bytes of memory libdivsufsort needs for a shard of ``ds_size`` bytes: the shard itself, its
    suffix array (4 bytes per byte below 2 GiB, 8 above) and the write buffer."""
    entry = 4 if ds_size <= np.iinfo(np.int32).max else 8
    return ds_size * (1 + entry) + _WRITE_BLOCK * 24


def choose_builder(ds_size: int, mem_gib: float) -> str:
    """libdivsufsort when its memory fits ``mem_gib``, else infini-gram's bounded-memory indexer."""
    return DIVSUFSORT if divsufsort_memory(ds_size) <= mem_gib * 1024**3 else INFINI_GRAM


def build_suffix_array(
    ds_path: str,
    sa_path: str,
    work_dir: str,
    token_width: int,
    cpus: int,
    mem_gib: float = settings.SA_BUILD_MEM_GIB,
    builder: str | None = None,
) -> str:
    """Build ``sa_path`` (the suffix array of ``ds_path``) atomically: written as ``.tmp``, then renamed.

    ``builder`` is ``"libdivsufsort"``, ``"infini-gram"`` or None (``choose_builder``); ``cpus`` threads
    are used. Returns the builder that ran. The table's bytes do not depend on either choice.
    """
    ds_size = os.path.getsize(ds_path)
    if ds_size < 2 * token_width:
        raise BuildError(f"shard {ds_path} is too small to index ({ds_size} bytes)")
    builder = builder or choose_builder(ds_size, mem_gib)
    if builder == DIVSUFSORT:
        _build_divsufsort(ds_path, sa_path, token_width, cpus)
    elif builder == INFINI_GRAM:
        _build_infini_gram(ds_path, sa_path, work_dir, token_width, cpus, mem_gib)
    else:
        raise BuildError(f"unknown suffix-array builder {builder!r}; choose {DIVSUFSORT} or {INFINI_GRAM}")
    expected = (ds_size // token_width) * pointer_bytes(ds_size)
    got = os.path.getsize(sa_path)
    if got != expected:
        raise BuildError(f"suffix array for {ds_path} has {got} bytes, expected {expected}")
    return builder


_WRITE_BLOCK = 1 << 22  # suffix-array entries converted and written at a time


def _build_divsufsort(
    ds_path: str, sa_path: str, token_width: int, cpus: int, wide: bool | None = None
) -> None:
    """libdivsufsort over the whole shard; ``wide`` (64-bit entries) is chosen by size unless given."""
    from pydivsufsort.dll import libdivsufsort, libdivsufsort64

    ds_size = os.path.getsize(ds_path)
    text = np.memmap(ds_path, dtype=np.uint8, mode="r")
    if wide is None:
        wide = ds_size > np.iinfo(np.int32).max
    sa = np.empty(ds_size, dtype=np.int64 if wide else np.int32)
    # libdivsufsort's OpenMP team size is a per-thread setting of the calling thread; the order it
    # produces does not depend on it.
    libdivsufsort.omp_set_num_threads(max(1, cpus))
    if wide:
        libdivsufsort64.omp_set_num_threads(max(1, cpus))
        rc = libdivsufsort64.divsufsort64(
            ctypes.c_void_p(text.ctypes.data), ctypes.c_void_p(sa.ctypes.data), ctypes.c_int64(ds_size)
        )
    else:
        rc = libdivsufsort.divsufsort(
            ctypes.c_void_p(text.ctypes.data), ctypes.c_void_p(sa.ctypes.data), ctypes.c_int32(ds_size)
        )
    del text
    if rc != 0:
        raise BuildError(f"libdivsufsort failed on {ds_path} (code {rc})")
    _write_table(sa, sa_path, ds_size, token_width)


def _write_table(sa: np.ndarray, sa_path: str, ds_size: int, token_width: int) -> None:
    """Write the byte-order suffix array ``sa`` as an infini-gram table, keeping token-aligned entries."""
    ratio = pointer_bytes(ds_size)
    item = sa.dtype.itemsize  # entries are non-negative, so their low `ratio` little-endian bytes are them
    tmp = sa_path + ".tmp"
    with open(tmp, "wb") as f:
        for i in range(0, sa.size, _WRITE_BLOCK):
            block = sa[i : i + _WRITE_BLOCK]
            if token_width > 1:
                block = block[(block & (token_width - 1)) == 0]
            rows = block.astype(block.dtype.newbyteorder("<"), copy=False).view(np.uint8).reshape(-1, item)
            f.write(np.ascontiguousarray(rows[:, :ratio]).tobytes())
    os.replace(tmp, sa_path)


def _build_infini_gram(
    ds_path: str, sa_path: str, work_dir: str, token_width: int, cpus: int, mem_gib: float
) -> None:
    """infini-gram's indexer. u32 tokens: its u32 path allocates a 2^32-entry bucket array (32 GiB)
    whatever the input size, so u32 shards are indexed at byte width and only the aligned entries kept."""
    if token_width == 4:
        byte_sa = sa_path + ".bytes"
        _build(ds_path, byte_sa, work_dir, 1, cpus, mem_gib)
        _keep_aligned(byte_sa, sa_path, os.path.getsize(ds_path), 4)
        os.unlink(byte_sa)
        return
    _build(ds_path, sa_path, work_dir, token_width, cpus, mem_gib)


def _keep_aligned(byte_sa: str, sa_path: str, ds_size: int, width: int, block: int = 1 << 22) -> None:
    ratio = pointer_bytes(ds_size)
    table = np.memmap(byte_sa, dtype=np.uint8, mode="r").reshape(-1, ratio)
    tmp = sa_path + ".tmp"
    kept = 0
    with open(tmp, "wb") as f:
        for i in range(0, table.shape[0], block):
            raw = np.asarray(table[i : i + block])
            buf = np.zeros((raw.shape[0], 8), dtype=np.uint8)
            buf[:, :ratio] = raw
            mask = buf.view("<u8").ravel() % width == 0
            f.write(raw[mask].tobytes())
            kept += int(mask.sum())
    del table
    if kept != ds_size // width:
        raise BuildError(f"aligned suffix array of {byte_sa} has {kept} entries, expected {ds_size // width}")
    os.replace(tmp, sa_path)


def _build(ds_path: str, sa_path: str, work_dir: str, token_width: int, cpus: int, mem_gib: float) -> None:
    binary = indexer_binary()
    ds_size = os.path.getsize(ds_path)
    ratio = pointer_bytes(ds_size)
    cpus = max(1, cpus)
    mem_bytes = int(mem_gib * 1024**3)
    batches = 1
    while batches * (mem_bytes // (12 if token_width == 1 else 8)) < ds_size:
        batches *= 2
    total_jobs = batches * cpus
    # parts of at least 1 MiB: tiny parts only add overhead (the result does not depend on the split)
    total_jobs = max(1, min(total_jobs, ds_size // (1 << 20)))
    part = ds_size // total_jobs
    if part % token_width:
        part += token_width - part % token_width
    parts_dir = os.path.join(work_dir, "parts")
    merged_dir = os.path.join(work_dir, "merged")
    for d in (parts_dir, merged_dir):
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
    # merge/concat split their output by thread; on small inputs some threads get nothing and concat then
    # fails on a missing file, so give every thread at least 16 MiB.
    threads = max(1, min(cpus, ds_size // (16 << 20)))
    common = ["--ratio", str(ratio), "--token-width", str(token_width)]
    for first in range(0, total_jobs, cpus):
        procs = []
        for i in range(first, min(first + cpus, total_jobs)):
            s, e = i * part, min((i + 1) * part + settings.SA_HACKSIZE, ds_size)
            if s >= ds_size:
                continue
            procs.append(
                subprocess.Popen(
                    [
                        binary,
                        "make-part",
                        "--data-file",
                        ds_path,
                        "--parts-dir",
                        parts_dir,
                        "--start-byte",
                        str(s),
                        "--end-byte",
                        str(e),
                        *common,
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE,
                    text=True,
                )
            )
        for p in procs:
            _, err = p.communicate()
            if p.returncode != 0:
                raise BuildError(f"suffix-array make-part failed (exit {p.returncode}): {err.strip()[-300:]}")
    _run(
        [
            binary,
            "merge",
            "--data-file",
            ds_path,
            "--parts-dir",
            parts_dir,
            "--merged-dir",
            merged_dir,
            "--num-threads",
            str(threads),
            "--hacksize",
            str(settings.SA_HACKSIZE),
            *common,
        ],
        "merge",
    )
    shutil.rmtree(parts_dir, ignore_errors=True)
    tmp = sa_path + ".tmp"
    _run(
        [
            binary,
            "concat",
            "--data-file",
            ds_path,
            "--merged-dir",
            merged_dir,
            "--merged-file",
            tmp,
            "--num-threads",
            str(threads),
            *common,
        ],
        "concat",
    )
    shutil.rmtree(work_dir, ignore_errors=True)
    expected = (ds_size // token_width) * ratio
    got = os.path.getsize(tmp)
    if got != expected:
        raise BuildError(f"suffix array for {ds_path} has {got} bytes, expected {expected}")
    os.replace(tmp, sa_path)
