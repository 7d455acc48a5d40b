"""Atomic writes and checksums."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path


def sha256_file(path: str | Path, block: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(block):
            h.update(chunk)
    return h.hexdigest()


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a ``.tmp`` sibling, fsync, then ``os.replace``."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def atomic_write_json(path: str | Path, obj: object) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())


def read_json(path: str | Path) -> dict:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def fsync_dir(path: str | Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def file_entry(path: Path) -> dict:
    return {"size": path.stat().st_size, "sha256": sha256_file(path)}


def marker_valid(marker: Path, root: Path) -> dict | None:
    """The marker's content when every file it vouches for exists with the recorded size and sha256."""
    if not marker.is_file():
        return None
    try:
        info = read_json(marker)
        for rel, meta in info["files"].items():
            p = root / rel
            if not p.is_file() or p.stat().st_size != meta["size"] or sha256_file(p) != meta["sha256"]:
                return None
        return info
    except (OSError, ValueError, KeyError):
        return None


UTF8_BOM = b"\xef\xbb\xbf"


def strip_bom(text: str) -> str:
    """``text`` without a leading UTF-8 byte-order mark (U+FEFF), which editors on Windows write and which
    would otherwise become part of the first record, id, word or query."""
    return text[1:] if text.startswith("\ufeff") else text


def read_text(path: str | Path) -> str:
    """The content of a UTF-8 text file without a leading byte-order mark: use it wherever user text enters
    (eval sets, results, vocabularies, query and config files). Line endings are kept as written (the csv
    module needs that; ``splitlines`` handles both). Raises OSError / UnicodeDecodeError."""
    with open(path, encoding="utf-8-sig", newline="") as f:
        return f.read()
