"""The index manifest: read, write atomically (last), verify checksums."""

from __future__ import annotations

import datetime as _dt
import json
import os
import shutil
from pathlib import Path

from freqindex import settings
from freqindex.errors import CheckFailedError, IndexNotFoundError
from freqindex.fsutil import atomic_write_json, fsync_dir, sha256_file


def manifest_path(index_dir: str | Path) -> Path:
    return Path(index_dir) / settings.MANIFEST_NAME


def read_manifest(index_dir: str | Path) -> dict:
    """The manifest of a complete index. A directory without one is never treated as an index."""
    d = Path(index_dir)
    if not d.is_dir():
        raise IndexNotFoundError(f"no index at {index_dir}: not a directory")
    p = manifest_path(d)
    if not p.is_file():
        raise IndexNotFoundError(
            f"{index_dir} is not a complete freqindex index (no {settings.MANIFEST_NAME})"
        )
    try:
        m = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise IndexNotFoundError(f"unreadable manifest in {index_dir}: {exc}") from None
    if m.get("format") != settings.INDEX_FORMAT:
        raise IndexNotFoundError(
            f"{index_dir}: manifest format {m.get('format')!r} is not {settings.INDEX_FORMAT!r}"
        )
    if m.get("schema_version", 0) > settings.SCHEMA_VERSION:
        raise IndexNotFoundError(
            f"{index_dir}: manifest schema {m['schema_version']} is newer than this freqindex understands "
            f"({settings.SCHEMA_VERSION}); upgrade freqindex"
        )
    return m


def write_manifest(index_dir: str | Path, manifest: dict) -> None:
    atomic_write_json(manifest_path(index_dir), manifest)


def verify(index_dir: str | Path, progress=None) -> dict:
    """Check every file the manifest lists (size, then sha256). Raises CheckFailedError naming the first bad file."""
    m = read_manifest(index_dir)
    root = Path(index_dir)
    files = m.get("files", {})
    checked = 0
    for rel, meta in sorted(files.items()):
        p = root / rel
        if not p.is_file():
            raise CheckFailedError(f"verify failed: {rel} is missing")
        if p.stat().st_size != meta["size"]:
            raise CheckFailedError(
                f"verify failed: {rel} has {p.stat().st_size} bytes, manifest says {meta['size']}"
            )
        if sha256_file(p) != meta["sha256"]:
            raise CheckFailedError(f"verify failed: {rel} does not match its sha256 in the manifest")
        checked += 1
        if progress:
            progress(rel, meta["size"])
    return {
        "index": str(root),
        "files_checked": checked,
        "bytes_checked": sum(v["size"] for v in files.values()),
        "ok": True,
    }


def publish_stage(index_dir: str | Path, work: Path, name: str, section: dict) -> dict:
    """Move a finished add-on stage (``work``, a directory inside the index) to ``INDEX/name`` and replace the
    manifest atomically: the stage's files (sizes, sha256) replace any earlier ones under ``name/``, and
    ``section`` (stamped with the time) becomes the manifest's ``name`` entry. Every other file of the index
    stays as it was. Returns the new manifest."""
    root = Path(index_dir).resolve()
    m = read_manifest(root)
    final = root / name
    old = root / f".{name}.old"
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        os.replace(final, old)
    os.replace(work, final)
    files = {k: v for k, v in m["files"].items() if not k.startswith(f"{name}/")}
    for p in sorted(x for x in final.rglob("*") if x.is_file()):
        files[str(p.relative_to(root))] = {"size": p.stat().st_size, "sha256": sha256_file(p)}
    m["files"] = files
    m[name] = {**section, "added": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")}
    write_manifest(root, m)
    fsync_dir(root)
    shutil.rmtree(old, ignore_errors=True)
    return m
