"""Checks a build makes before and after its work, kept out of the driver's flow: the output must not lie
inside an input (nor an input inside the output), and a failed build's error names its cause and what
became of the unfinished build."""

from __future__ import annotations

import errno
import glob
import os
import shutil
from pathlib import Path

from freqindex.errors import UsageError


def _real(path: str) -> str:
    return os.path.realpath(os.path.expanduser(path))


def _inside(child: str, parent: str, sep: str = os.sep) -> bool:
    return child == parent or child.startswith(parent.rstrip(sep) + sep)


def _check_remote(inputs: list[str], output: str, storage_options: tuple) -> None:
    """The same rule for URLs on one store: prefixes compared as strings (a glob by its literal part)."""
    from freqindex import storage

    fs, out = storage.filesystem(output, storage_options)
    out_url = storage.url_of(fs, out.rstrip("/"))
    out_parent = out_url.rsplit("/", 1)[0]
    for raw in inputs:
        if storage.scheme_of(raw) != storage.scheme_of(output):
            continue
        ifs, path = storage.filesystem(raw, storage_options)
        literal = path
        if glob.has_magic(path):
            literal = path[: min(path.index(c) for c in "*?[" if c in path)].rsplit("/", 1)[0]
        url = storage.url_of(ifs, literal.rstrip("/"))
        if _inside(url, out_url, "/"):
            raise UsageError(
                f"input {raw} is inside the output {output}: choose an output outside the inputs"
            )
        if _inside(out_parent, url, "/") and (glob.has_magic(path) or ifs.isdir(path)):
            raise UsageError(
                f"--output {output} is inside the input directory {raw}: a rerun would read the index as "
                "input; choose an output outside it"
            )


def check_output_apart_from_inputs(inputs: list[str], output: str, storage_options: tuple = ()) -> None:
    """Refuse an output inside an input directory (a rerun would read the index, its manifest and Parquet
    files as corpus) and an input inside the output (the build would replace what it reads). Paths are
    compared after resolving symbolic links; a glob counts by what it matches. URLs are compared with the
    URLs of the same scheme."""
    from freqindex import storage

    if storage.is_url(output):
        _check_remote(inputs, output, storage_options)
        return
    out = _real(storage.local_path(output))
    out_parent = os.path.dirname(out)
    for raw in inputs:
        if storage.is_url(raw):
            continue
        expanded = storage.local_path(raw)
        matches = glob.glob(expanded, recursive=True) if glob.has_magic(expanded) else [expanded]
        for m in matches:
            real = _real(m)
            if _inside(real, out):
                raise UsageError(
                    f"input {m} is inside the output {output}: choose an output outside the inputs"
                )
            if os.path.isdir(real) and _inside(out_parent, real):
                raise UsageError(
                    f"--output {output} is inside the input directory {m}: a rerun would read the index as "
                    "input; choose an output outside it"
                )


def _size(path: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(root, f)).st_size
            except OSError:
                pass
    return total


def human_bytes(n: int) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:,} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def _holds_work(partial: Path) -> bool:
    """Did the unfinished build get as far as any stage (anything but its state file and tokenizer)?"""
    return any(p.name not in ("build-state.json", "tokenizer") for p in partial.iterdir())


def is_disk_full(exc: BaseException) -> bool:
    """ENOSPC or a quota, raised here or reported in the text of a failed Spark task or indexer run."""
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    text = str(exc)
    return any(
        s in text for s in ("No space left on device", "Disk quota exceeded", "[Errno 28]", "errno 28")
    )


def failure_cause(exc: BaseException) -> str:
    """The first line of why a build failed (``no space left on device: ...`` for a full disk)."""
    if isinstance(exc, OSError):
        where = f" ({exc.filename})" if exc.filename else ""
        cause = f"{exc.strerror or exc}{where}"
    else:
        cause = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if is_disk_full(exc):
        cause = f"no space left on device: {cause}"
    return cause


def failure_message(exc: BaseException, partial: Path) -> str:
    """One line: why the build failed, and where its unfinished work is (or that nothing was kept)."""
    cause = failure_cause(exc)
    if partial.exists() and not _holds_work(partial):
        shutil.rmtree(partial, ignore_errors=True)
    if partial.exists():
        kept = (
            f"the unfinished build is kept in {partial} ({human_bytes(_size(partial))}): run the same command "
            "again to resume"
            + (" once there is space, or delete it to free the space" if is_disk_full(exc) else "")
        )
    else:
        kept = "nothing of the unfinished build was kept"
    return f"{cause}; {kept}"
