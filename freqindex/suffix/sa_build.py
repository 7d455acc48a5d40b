"""Suffix-array build for one shard with infini-gram's own indexer binary (``rust_indexing``).

This runs the same three steps as ``python -m infini_gram.indexing`` (make-part, merge, concat) on a
``tokenized.N`` file, without that script's ``transformers`` import and its ``setrlimit`` call, so it works
for an unprivileged user and inside a Spark task.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
from pathlib import Path

from freqindex import settings
from freqindex.errors import BuildError


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


def build_suffix_array(
    ds_path: str,
    sa_path: str,
    work_dir: str,
    token_width: int,
    cpus: int,
    mem_gib: int = settings.SA_BUILD_MEM_GIB,
) -> None:
    """Build ``sa_path`` (the suffix array of ``ds_path``) atomically: written as ``.tmp`` then renamed.

    u32 tokens: the indexer's u32 path allocates a 2^32-entry bucket array (32 GiB) whatever the input size,
    so u32 shards are indexed at byte width and only the token-aligned suffixes are kept. The engine compares
    suffixes byte by byte, so the byte-order suffix array restricted to aligned positions is exactly the
    u32 suffix array it expects.
    """
    if token_width == 4:
        byte_sa = sa_path + ".bytes"
        _build(ds_path, byte_sa, work_dir, 1, cpus, mem_gib)
        _keep_aligned(byte_sa, sa_path, os.path.getsize(ds_path), 4)
        os.unlink(byte_sa)
        return
    _build(ds_path, sa_path, work_dir, token_width, cpus, mem_gib)


def _keep_aligned(byte_sa: str, sa_path: str, ds_size: int, width: int, block: int = 1 << 22) -> None:
    import numpy as np

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


def _build(ds_path: str, sa_path: str, work_dir: str, token_width: int, cpus: int, mem_gib: int) -> None:
    binary = indexer_binary()
    ds_size = os.path.getsize(ds_path)
    if ds_size < 2 * token_width:
        raise BuildError(f"shard {ds_path} is too small to index ({ds_size} bytes)")
    ratio = pointer_bytes(ds_size)
    cpus = max(1, cpus)
    mem_bytes = mem_gib * 1024**3
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
