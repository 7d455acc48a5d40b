"""A published index in an object store: pull it, open it through a verified local cache, verify it in place.

Queries memory-map local files, so an index given as a URL is first copied to a local directory: ``pull``
(``freqindex pull URL DIR``) or, for every command that reads an index, the cache (``--cache-dir``, default
``platformdirs.user_cache_dir("freqindex")/indexes``, or ``$FREQINDEX_CACHE_DIR``). Every file is checked
against the manifest's size and sha256 as it arrives; the local ``manifest.json`` is written last, so a
directory with a manifest is complete, as everywhere else. A pull is resumable: files already present and
verified are kept, a cut-off download continues where it stopped (its bytes are hashed again first).

A cached copy is re-used while the store's manifest is byte-identical to the cached one and every file still
has the size and modification time recorded when it was verified (``.freqindex-pull.json``); a new manifest
(a rebuilt or grown index) pulls only the files that changed.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from freqindex import settings, storage
from freqindex.errors import CheckFailedError, IndexNotFoundError, UsageError
from freqindex.fsutil import atomic_write_bytes, atomic_write_json, read_json, sha256_file
from freqindex.manifest import EVALS_CATALOG, SEAL_KEY, content_sha256, parse_manifest

PULL_STATE = ".freqindex-pull.json"
PULL_WORKERS = 8
ProgressFn = Callable[[str, int], None]  # (relative path, bytes) once per file done


def default_cache_dir() -> Path:
    """``$FREQINDEX_CACHE_DIR``, else the user's cache directory (``~/.cache/freqindex`` on Linux)."""
    env = os.environ.get("FREQINDEX_CACHE_DIR")
    if env:
        return Path(os.path.expanduser(env))
    import platformdirs

    return Path(platformdirs.user_cache_dir("freqindex"))


def _index_url(url: str, storage_options: storage.StorageOptions) -> tuple[object, str, str]:
    """(filesystem, root path, canonical URL) of an index URL."""
    fs, path = storage.filesystem(url, storage_options)
    root = path.rstrip("/")
    return fs, root, storage.url_of(fs, root)


def remote_manifest(url: str, storage_options: storage.StorageOptions = ()) -> tuple[dict, bytes]:
    """The manifest of the index at ``url`` and its exact bytes. A prefix without one is not an index."""
    fs, root, canonical = _index_url(url, storage_options)
    fs.invalidate_cache()
    try:
        raw = fs.cat_file(f"{root}/{settings.MANIFEST_NAME}")
    except FileNotFoundError:
        raise IndexNotFoundError(
            f"{canonical} is not a complete freqindex index (no {settings.MANIFEST_NAME})"
        ) from None
    except OSError as exc:
        raise UsageError(f"cannot read {canonical}: {exc}") from None
    return parse_manifest(raw, canonical), raw


def _download(fs, remote: str, local: Path, meta: dict) -> None:
    """Fetch ``remote`` into ``local`` through ``local.part`` (continued when present), checking the size
    and sha256 the manifest gives before the file takes its name. A continued download that does not check
    out (the part came from an older version of the file) is started over once."""
    part = local.with_name(local.name + ".part")
    if part.exists():
        try:
            _fetch(fs, remote, local, part, meta)
            return
        except CheckFailedError:
            part.unlink(missing_ok=True)
    _fetch(fs, remote, local, part, meta)


def _fetch(fs, remote: str, local: Path, part: Path, meta: dict) -> None:
    h = hashlib.sha256()
    done = 0
    if part.exists() and part.stat().st_size <= meta["size"]:
        with open(part, "rb") as f:
            while chunk := f.read(storage.COPY_BLOCK):
                h.update(chunk)
                done += len(chunk)
    else:
        part.unlink(missing_ok=True)
    local.parent.mkdir(parents=True, exist_ok=True)
    if done < meta["size"]:
        with fs.open(remote, "rb", block_size=storage.READ_BLOCK, cache_type="none") as src:
            src.seek(done)
            with open(part, "ab") as dst:
                while chunk := src.read(storage.READ_BLOCK):
                    h.update(chunk)
                    dst.write(chunk)
                    done += len(chunk)
                dst.flush()
                os.fsync(dst.fileno())
    if done != meta["size"] or h.hexdigest() != meta["sha256"]:
        part.unlink(missing_ok=True)
        raise CheckFailedError(
            f"pull failed: {storage.url_of(fs, remote)} does not match the manifest "
            f"({done} bytes, manifest says {meta['size']}; or its sha256 differs)"
        )
    os.replace(part, local)


def _state(dest: Path) -> dict:
    try:
        state = read_json(dest / PULL_STATE)
        return state if isinstance(state, dict) else {}
    except (OSError, ValueError):
        return {}


def _vouched(path: Path, meta: dict, record: dict | None) -> bool:
    """Is the local file the one ``meta`` describes, by the record made when it was verified (size, mtime,
    sha256), without reading it?"""
    if not record or record.get("sha256") != meta["sha256"]:
        return False
    try:
        st = path.stat()
    except OSError:
        return False
    return st.st_size == meta["size"] == record.get("size") and st.st_mtime_ns == record.get("mtime_ns")


def pull(
    url: str,
    dest: str | Path,
    storage_options: storage.StorageOptions = (),
    *,
    workers: int = PULL_WORKERS,
    progress: ProgressFn | None = None,
) -> dict:
    """Copy the index at ``url`` into the local directory ``dest``, every file checked against the manifest;
    the manifest is written last. ``dest`` must be new, empty, an index, or an unfinished pull."""
    fs, root, canonical = _index_url(url, storage_options)
    manifest, raw = remote_manifest(url, storage_options)
    dest = Path(storage.local_path(str(dest))).resolve()
    if dest.exists() and not dest.is_dir():
        raise UsageError(f"{dest} exists and is not a directory")
    dest.mkdir(parents=True, exist_ok=True)
    state = _state(dest)
    local_manifest = dest / settings.MANIFEST_NAME
    if any(dest.iterdir()) and not local_manifest.exists() and not state:
        raise UsageError(f"{dest} is not empty and is neither a freqindex index nor an unfinished pull")
    old_files: dict = {}
    if local_manifest.exists():
        if local_manifest.read_bytes() == raw and state.get("url") == canonical:
            old_files = manifest["files"]
        else:
            try:
                old_files = json.loads(local_manifest.read_bytes()).get("files", {})
            except ValueError:
                old_files = {}
        local_manifest.unlink()  # from here on the directory is not an index until the new manifest lands
    records: dict[str, dict] = dict(state.get("files", {})) if state.get("url") == canonical else {}
    files = manifest["files"]
    stats = {"downloaded": 0, "kept": 0, "bytes_downloaded": 0}

    def one(rel: str) -> tuple[str, bool]:
        meta = files[rel]
        local = dest / rel
        if _vouched(local, meta, records.get(rel)):
            return rel, False
        if local.is_file() and local.stat().st_size == meta["size"] and sha256_file(local) == meta["sha256"]:
            return rel, False
        _download(fs, f"{root}/{rel}", local, meta)
        return rel, True

    try:
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            for rel, fetched in pool.map(one, sorted(files)):
                st = (dest / rel).stat()
                records[rel] = {
                    "size": st.st_size,
                    "mtime_ns": st.st_mtime_ns,
                    "sha256": files[rel]["sha256"],
                }
                stats["downloaded" if fetched else "kept"] += 1
                stats["bytes_downloaded"] += files[rel]["size"] if fetched else 0
                if progress:
                    progress(rel, files[rel]["size"])
    finally:
        atomic_write_json(dest / PULL_STATE, {"url": canonical, "files": records})
    for rel in sorted(set(old_files) - set(files)):  # files of the previous version that are gone now
        (dest / rel).unlink(missing_ok=True)
        records.pop(rel, None)
    for p in sorted((dest / "sa").iterdir()) if (dest / "sa").is_dir() else []:
        if f"sa/{p.name}" not in files:  # the engine opens every file in sa/: only the index's may be there
            p.unlink()
    atomic_write_json(dest / PULL_STATE, {"url": canonical, "files": records})
    atomic_write_bytes(local_manifest, raw)
    return {"index": canonical, "dir": str(dest), "files": len(files), **stats}


@contextlib.contextmanager
def _entry_lock(path: Path) -> Iterator[None]:
    """One pull per cache entry at a time (two commands opening the same URL wait for each other)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        cache = path.parents[2]  # CACHE/indexes/HASH/.lock
        raise UsageError(
            f"cannot use the cache directory {cache}: {exc.strerror or exc} "
            "(give another with --cache-dir or FREQINDEX_CACHE_DIR)"
        ) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def cache_entry(url: str, cache_dir: str | Path | None = None) -> Path:
    """The cache directory of ``url``: ``CACHE/indexes/HASH/NAME``, NAME being the index's own name (the
    last part of its URL), so ``serve`` addresses it by the same name as a local copy."""
    root = Path(storage.local_path(str(cache_dir))) if cache_dir else default_cache_dir()
    canonical = url.rstrip("/")
    digest = hashlib.sha256(canonical.encode()).hexdigest()[:16]
    return root / "indexes" / digest / canonical.rsplit("/", 1)[-1]


def cached_index(
    url: str,
    cache_dir: str | Path | None = None,
    storage_options: storage.StorageOptions = (),
    on_message: Callable[[str], None] | None = None,
) -> Path:
    """A verified local copy of the index at ``url`` (pulled or refreshed as needed); the directory to open."""
    _, _, canonical = _index_url(url, storage_options)
    entry = cache_entry(canonical, cache_dir)
    with _entry_lock(entry.parent / ".lock"):
        manifest, raw = remote_manifest(url, storage_options)
        local_manifest = entry / settings.MANIFEST_NAME
        if local_manifest.is_file() and local_manifest.read_bytes() == raw:
            records = _state(entry).get("files", {})
            if all(_vouched(entry / rel, meta, records.get(rel)) for rel, meta in manifest["files"].items()):
                return entry
        size = sum(f["size"] for f in manifest["files"].values())
        if on_message:
            on_message(
                f"pulling {canonical} into the cache {entry} ({len(manifest['files'])} files, {size:,} bytes)"
            )
        pull(url, entry, storage_options)
    return entry


def verify_remote(
    url: str,
    storage_options: storage.StorageOptions = (),
    *,
    workers: int = PULL_WORKERS,
    progress: ProgressFn | None = None,
) -> dict:
    """Check every object the manifest lists, in place: its size, then its sha256 streamed from the store.
    Raises CheckFailedError naming the first bad object (in path order)."""
    fs, root, canonical = _index_url(url, storage_options)
    manifest, _ = remote_manifest(url, storage_options)  # its seal and consistency are checked here
    files = dict(manifest.get("files", {}))
    owner = {rel: "" for rel in files}
    outputs = 0
    try:  # eval outputs declared beside the index (an index uploaded after eval commands ran on it)
        catalog = json.loads(fs.cat_file(f"{root}/{EVALS_CATALOG}"))
    except FileNotFoundError:
        catalog = None
    except ValueError as exc:
        raise CheckFailedError(f"verify failed: unreadable {canonical}/{EVALS_CATALOG}: {exc}") from None
    if catalog is not None:
        if not isinstance(catalog, dict) or catalog.get(SEAL_KEY) != content_sha256(catalog):
            raise CheckFailedError(
                f"verify failed: {canonical}/{EVALS_CATALOG} does not match its {SEAL_KEY}"
            )
        for key, entry in catalog.get("outputs", {}).items():
            outputs += 1
            for rel, meta in entry.get("files", {}).items():
                files[rel], owner[rel] = meta, f" (eval output {key})"

    def check(rel: str) -> str | None:
        meta = files[rel]
        where = f"{canonical}/{rel}{owner[rel]}"
        try:
            size = int(fs.info(f"{root}/{rel}").get("size") or 0)
        except FileNotFoundError:
            return f"verify failed: {where} is missing"
        if size != meta["size"]:
            return f"verify failed: {where} has {size} bytes, manifest says {meta['size']}"
        with fs.open(f"{root}/{rel}", "rb", block_size=storage.READ_BLOCK, cache_type="none") as f:
            digest, _ = storage.sha256_stream(f, storage.READ_BLOCK)
        if digest != meta["sha256"]:
            return f"verify failed: {where} does not match its sha256 in the manifest"
        if progress:
            progress(rel, meta["size"])
        return None

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        problems = [p for p in pool.map(check, sorted(files)) if p]
    if problems:
        raise CheckFailedError(
            problems[0] + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else "")
        )
    index_files = manifest["files"]
    return {
        "index": canonical,
        "files_checked": len(index_files),
        "bytes_checked": sum(v["size"] for v in index_files.values()),
        "eval_outputs_checked": outputs,
        "eval_files_checked": len(files) - len(index_files),
        "ok": True,
    }


def local_index(
    location: str,
    cache_dir: str | None = None,
    storage_options: storage.StorageOptions = (),
    on_message: Callable[[str], None] | None = None,
) -> str:
    """The local directory to open for ``location``: a local path as given, a URL through the cache."""
    if storage.is_url(location):
        return str(cached_index(location, cache_dir, storage_options, on_message))
    return storage.local_path(location) if location.startswith("file://") else location
