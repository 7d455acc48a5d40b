"""Where a build writes, and how it publishes: a local directory, or a prefix on an object store.

The driver holds a :class:`BuildTarget`; every task gets its small, picklable :class:`TaskStore`. A task
always works in an *attempt directory* of its own (so two attempts of one task, a Spark retry beside a
speculative copy, never share a file), then hands its finished files to the store, then writes its marker
(``_staging/chunks/chunk-N.done``, ``_staging/shards/shard-N.done``: the sizes and sha256 of its files).
A rerun skips a task only when its marker and the files it vouches for check out.

- :class:`LocalTarget` (a local path, or a shared POSIX filesystem such as NFS): the build lives in
  ``.NAME.partial`` beside the output and is renamed into place after its manifest is written. Attempt
  directories sit inside the partial build, so handing files over is a rename (``--scratch-dir`` moves them
  to a disk of their own, then files are copied over).
- :class:`RemoteTarget` (any fsspec URL): there is no rename, so every file is uploaded to its final key
  under the output prefix, staging files under ``PREFIX/_staging/``; attempts work in executor-local
  scratch (``--scratch-dir``, else Spark's local directories, else the temp directory). Publishing checks
  every object, removes objects a dead attempt of another plan left, writes ``manifest.json`` last (a
  single PUT: readers see no manifest or the whole one) and then removes ``_staging/``. A prefix without a
  manifest is never opened as an index.

Generations (appending shards to a published index) fit this protocol: new files go to new keys, old ones
are never rewritten, and :meth:`BuildTarget.publish` replaces the manifest last.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from freqindex import settings, storage
from freqindex.build.guards import failure_cause, failure_message, human_bytes
from freqindex.errors import BuildError, FreqindexError, UsageError
from freqindex.faults import fault_point
from freqindex.fsutil import atomic_write_json, file_entry, fsync_dir, marker_valid, read_json, sha256_file
from freqindex.manifest import (
    check_files,
    parse_manifest,
    read_manifest,
    seal,
    write_manifest,
)

STAGING = "_staging"
EVALS_PREFIX = "evals/"
REMOTE_STATE = f"{STAGING}/build-state.json"
# bumped when the meaning of staged files changes, so an older unfinished build is never resumed
STAGING_VERSION = 1


def scratch_root(scratch_dir: str | None) -> Path:
    """Executor-local scratch: ``--scratch-dir``, else the first of Spark's local directories (Spark hands
    them to its Python workers as ``SPARK_LOCAL_DIRS``), else the temp directory."""
    if scratch_dir:
        root = Path(storage.local_path(scratch_dir))
    else:
        local_dirs = [d for d in os.environ.get("SPARK_LOCAL_DIRS", "").split(",") if d.strip()]
        root = Path(local_dirs[0]) if local_dirs else Path(tempfile.gettempdir())
    root.mkdir(parents=True, exist_ok=True)
    return root


class TaskStore(ABC):
    """What a task sees of the build's store (picklable: it travels to the executors)."""

    staged_compression: ClassVar[str] = "none"  # Parquet compression of the staged chunks it keeps

    @abstractmethod
    def marker(self, rel: str) -> dict | None:
        """The marker ``rel`` when every file it lists is in the store as recorded, else None."""

    @abstractmethod
    def attempt_dir(self) -> contextlib.AbstractContextManager[Path]:
        """A fresh local directory for one task attempt, removed on the way out (also on failure)."""

    @abstractmethod
    def fetch(self, rel: str, dest: Path) -> None:
        """Make the store's file ``rel`` available at the local path ``dest``."""

    @abstractmethod
    def put(self, work: Path, rels: list[str], early: Sequence[Future] = ()) -> dict[str, str]:
        """Hand the finished files ``work/rel`` to the store; returns the store's content tags by ``rel``.
        ``early`` is what ``put_early`` returned for some of them (waited for, and not put again)."""

    def put_early(self, work: Path, rels: list[str]) -> Future | None:
        """Start handing files that are already final to the store while the task goes on (a shard's token
        files while its suffix array is built, the suffix array while its sample and checksums are made);
        None where there is nothing to gain (a local store renames its files at the end)."""
        return None

    @abstractmethod
    def write_marker(self, work_marker: Path, rel: str, tags: dict[str, str]) -> None:
        """Write the marker (the attempt's own ``work_marker`` file, plus ``tags``) as ``rel``: always last."""

    def localize(self, location: str | None, work: Path) -> str | None:
        """A file the driver put in the store (the tokenizer) as a local path inside ``work``."""
        return location


# ----------------------------------------------------------------------------------------------------------
# local


@dataclass(frozen=True)
class LocalTaskStore(TaskStore):
    root: str  # the partial build directory
    scratch_dir: str | None = None

    def marker(self, rel: str) -> dict | None:
        return marker_valid(Path(self.root) / rel, Path(self.root))

    @contextlib.contextmanager
    def attempt_dir(self) -> Iterator[Path]:
        base = scratch_root(self.scratch_dir) if self.scratch_dir else Path(self.root) / STAGING / "attempts"
        base.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix="attempt-", dir=base))
        try:
            yield work
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def fetch(self, rel: str, dest: Path) -> None:
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(Path(self.root) / rel, dest)
        except OSError:
            shutil.copyfile(Path(self.root) / rel, dest)

    def put(self, work: Path, rels: list[str], early: Sequence[Future] = ()) -> dict[str, str]:
        for rel in rels:
            dest = Path(self.root) / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.replace(work / rel, dest)
            except OSError:  # --scratch-dir on another filesystem: copy, then rename in place
                tmp = dest.with_name(f"{dest.name}.{uuid.uuid4().hex[:8]}.tmp")
                shutil.copyfile(work / rel, tmp)
                os.replace(tmp, dest)
        return {}

    def write_marker(self, work_marker: Path, rel: str, tags: dict[str, str]) -> None:
        dest = Path(self.root) / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f"{dest.name}.{uuid.uuid4().hex[:8]}.tmp")  # two attempts never share a .tmp
        atomic_write_json(tmp, read_json(work_marker))
        os.replace(tmp, dest)


# ----------------------------------------------------------------------------------------------------------
# remote


@dataclass(frozen=True)
class RemoteTaskStore(TaskStore):
    # staged chunks go up to the store and come back down: zstd makes them ~2.7x smaller (text)
    staged_compression: ClassVar[str] = "zstd"

    url: str  # the output prefix
    storage_options: storage.StorageOptions = ()
    scratch_dir: str | None = None
    key: str = ""  # the build's content key: an attempt of another build never writes here

    def _fs(self):
        return storage.filesystem(self.url, self.storage_options)

    def _path(self, rel: str) -> str:
        return f"{self._fs()[1].rstrip('/')}/{rel}"

    def marker(self, rel: str) -> dict | None:
        fs, _ = self._fs()
        fs.invalidate_cache()  # a reused Python worker may hold listings from an earlier task
        try:
            info = json.loads(fs.cat_file(self._path(rel)))
        except (OSError, ValueError):
            return None
        try:
            tags = info.get("store_tags", {})
            for f, meta in info["files"].items():
                if not remote_file_matches(fs, self._path(f), meta, tags.get(f)):
                    return None
        except (OSError, KeyError, TypeError):
            return None
        return info

    @contextlib.contextmanager
    def attempt_dir(self) -> Iterator[Path]:
        work = Path(tempfile.mkdtemp(prefix="freqindex-attempt-", dir=scratch_root(self.scratch_dir)))
        try:
            yield work
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def fetch(self, rel: str, dest: Path) -> None:
        fs, _ = self._fs()
        dest.parent.mkdir(parents=True, exist_ok=True)
        fs.get_file(self._path(rel), str(dest))

    def _still_current(self) -> None:
        """Refuse to write when the prefix now belongs to another build (a zombie attempt of an old one)."""
        fs, _ = self._fs()
        try:
            state = json.loads(fs.cat_file(self._path(REMOTE_STATE)))
        except (OSError, ValueError):
            state = {}
        if state.get("content_key") != self.key:
            raise BuildError(f"{self.url} no longer holds this build (another build took it over)")

    def put(self, work: Path, rels: list[str], early: Sequence[Future] = ()) -> dict[str, str]:
        tags: dict[str, str | None] = {}
        for pending in early:
            tags.update(pending.result())
        tags.update(self._upload(work, [r for r in rels if r not in tags]))
        return {k: v for k, v in tags.items() if v}

    def put_early(self, work: Path, rels: list[str]) -> Future:
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="freqindex-upload")
        try:
            return pool.submit(self._upload, work, list(rels))
        finally:
            pool.shutdown(wait=False)

    def _upload(self, work: Path, rels: list[str]) -> dict[str, str | None]:
        """Upload and check each file; the tag of every file (None where the store gives none)."""
        self._still_current()
        fs, _ = self._fs()
        tags = {}
        for rel in rels:
            local = work / rel
            remote = self._path(rel)
            fs.put_file(str(local), remote)
            tags[rel] = check_upload(fs, remote, local)
        return tags

    def write_marker(self, work_marker: Path, rel: str, tags: dict[str, str]) -> None:
        fs, _ = self._fs()
        info = read_json(work_marker)
        info["store_tags"] = tags
        fs.pipe_file(self._path(rel), (json.dumps(info, indent=2, sort_keys=True) + "\n").encode())

    def localize(self, location: str | None, work: Path) -> str | None:
        if location is None or not storage.is_url(location):
            return location
        dest = work / "_driver" / Path(location).name
        if not dest.exists():
            fs, path = storage.filesystem(location, self.storage_options)
            dest.parent.mkdir(parents=True, exist_ok=True)
            fs.get_file(path, str(dest))
        return str(dest)


def check_upload(fs, remote: str, local: Path) -> str | None:
    """After an upload: the object has the local file's size, and, where the store's ETag is a plain MD5
    (a single-part upload), that MD5. Returns the store's content tag (None when it gives none)."""
    info = fs.info(remote)
    size = local.stat().st_size
    if int(info.get("size") or 0) != size:
        raise BuildError(f"upload of {remote} holds {info.get('size')} bytes, expected {size}")
    tag = storage.store_tag(info)
    if tag and len(tag) == 32 and "-" not in tag and all(c in "0123456789abcdef" for c in tag.lower()):
        if tag.lower() != storage.md5_file(local):
            raise BuildError(f"upload of {remote} does not match the local file (MD5 {tag})")
    return tag


def remote_file_matches(fs, path: str, meta: dict, tag: str | None) -> bool:
    """Is the object at ``path`` the file ``meta`` (size, sha256) describes? The size always; the content by
    the store's tag recorded at upload when there is one, else by streaming its sha256."""
    try:
        info = fs.info(path)
    except (FileNotFoundError, OSError):
        return False
    if int(info.get("size") or 0) != meta["size"]:
        return False
    now = storage.store_tag(info)
    if tag and now:
        return now == tag
    with fs.open(path, "rb", block_size=storage.READ_BLOCK) as f:
        return storage.sha256_stream(f)[0] == meta["sha256"]


# ----------------------------------------------------------------------------------------------------------
# the driver's side


@dataclass
class BuildTarget(ABC):
    """The output as the driver sees it: prepare or resume, driver-side files, publish, discard."""

    output: str  # a resolved local path or a URL, as printed and returned in the summary
    existing: dict | None = field(default=None, init=False)  # the manifest seen when the build started

    @abstractmethod
    def prepare(self, key: str, overwrite: bool) -> dict | None:
        """Check the output; returns its manifest when it already is an index (the build decides)."""

    @abstractmethod
    def start(self, key: str, config: dict, say: Callable[[str], None]) -> None:
        """Resume the unfinished build of this content key, or discard one of another and start afresh."""

    @abstractmethod
    def prepare_append(self) -> dict:
        """``--append-to``: the index's manifest (checked), refused unless the index is intact."""

    @abstractmethod
    def start_append(self, key: str, config: dict, base: dict, say: Callable[[str], None]) -> None:
        """Resume the unfinished append of this content key, or discard one of another; every file of the
        index ``base`` describes stays exactly as it is."""

    @abstractmethod
    def task_store(self) -> TaskStore: ...

    @abstractmethod
    def work_dir(self) -> Path:
        """A local directory for the driver's own files (tokenizer, quarantine) before they are put."""

    @abstractmethod
    def put_driver_file(self, local: Path, rel: str) -> dict:
        """Put a file the driver wrote; returns its manifest entry (size, sha256)."""

    @abstractmethod
    def driver_location(self, rel: str) -> str:
        """Where tasks find a file the driver put (a path on a shared filesystem, or a URL)."""

    @abstractmethod
    def fetch_staged(self, rel: str, dest: Path) -> None: ...

    @abstractmethod
    def read_column(self, rel: str, column: str):
        """One column of a staged Parquet file, as a numpy array (only that column is read)."""

    @abstractmethod
    def publish(self, manifest: dict, tags: dict[str, str], lock) -> None:
        """Check every file, write the manifest last, and leave nothing else under the output."""

    @abstractmethod
    def discard(self) -> None:
        """Remove the unfinished build entirely (nothing to index, --strict)."""

    @abstractmethod
    def failure_message(self, exc: BaseException) -> str: ...


class LocalTarget(BuildTarget):
    """``.NAME.partial`` beside the output, renamed into place once its manifest is written."""

    def __init__(self, output: str, scratch_dir: str | None = None):
        super().__init__(str(Path(storage.local_path(output)).resolve()))
        self.seen: dict | None = None
        self.path = Path(self.output)
        self.partial = self.path.parent / f".{self.path.name}.partial"
        self.scratch_dir = scratch_dir

    def prepare(self, key: str, overwrite: bool) -> dict | None:
        output = self.path
        existing = None
        if output.exists():
            if not output.is_dir():
                raise UsageError(f"--output {output} exists and is not a directory")
            try:
                existing = read_manifest(output, check=False)
            except FreqindexError:
                if any(output.iterdir()):
                    raise UsageError(
                        f"--output {output} exists, is not empty and is not a freqindex index"
                    ) from None
                output.rmdir()
            if existing is not None and existing.get("content_key") == key and not self._intact():
                existing = None  # the same content, but damaged or of an older schema: rebuild it in place
            if existing is not None and existing.get("content_key") != key and not overwrite:
                raise UsageError(
                    f"{output} already holds an index of other input or settings; pass --overwrite or choose another --output"
                )
        output.parent.mkdir(parents=True, exist_ok=True)
        self.existing = existing
        self.seen = self._output_state()
        return existing

    def _intact(self) -> bool:
        """An index of the current schema whose manifest and files pass the open-time checks."""
        try:
            check_files(self.path, read_manifest(self.path))
        except FreqindexError:
            return False
        return True

    def _output_state(self) -> dict | None:
        """What is at the output now: None (nothing), its manifest, or a marker for one that cannot be read
        (damaged, or of an older schema). Compared before publishing to see whether another build published."""
        try:
            return read_manifest(self.path) if self.path.exists() else None
        except FreqindexError:
            try:
                return {"unreadable": (self.path / settings.MANIFEST_NAME).read_bytes().hex()}
            except OSError:
                return {"unreadable": None}

    def start(self, key: str, config: dict, say: Callable[[str], None]) -> None:
        state_path = self.partial / "build-state.json"
        if self.partial.exists():
            try:
                state = read_json(state_path)
            except (OSError, ValueError):
                state = {}
            if state.get("content_key") != key or state.get("staging_version", 0) > STAGING_VERSION:
                say("discarding an unfinished build of other input or settings")
                shutil.rmtree(self.partial)
            else:
                say("resuming an unfinished build: finished stages are kept where their checksums match")
        self.partial.mkdir(parents=True, exist_ok=True)
        atomic_write_json(
            state_path, {"content_key": key, "config": config, "staging_version": STAGING_VERSION}
        )

    def prepare_append(self) -> dict:
        if not (self.path / settings.MANIFEST_NAME).is_file():
            raise UsageError(f"--append-to {self.path}: not a freqindex index (no {settings.MANIFEST_NAME})")
        try:
            m = read_manifest(self.path)
            check_files(self.path, m)
        except FreqindexError as exc:
            raise UsageError(f"--append-to: cannot append to {self.path}: {exc}") from None
        self.existing = m
        self.seen = self._output_state()
        return m

    def start_append(self, key: str, config: dict, base: dict, say: Callable[[str], None]) -> None:
        """The new generation is built in ``.NAME.partial`` beside the index, which starts as hard links to
        every file of the index (no copy; a link is a second name of the same, unchanged file), and replaces
        the index by rename when its manifest is written (as a build publishes). Nothing is ever written
        into a linked file: new files get new names, the manifest is replaced by rename."""
        self.start(key, config, say)
        names = set(base["files"])
        evals = self.path / "evals"
        if evals.is_dir():
            names |= {p.relative_to(self.path).as_posix() for p in evals.rglob("*") if p.is_file()}
        for rel in sorted(names):
            dest = self.partial / rel
            if dest.exists():
                if os.path.samefile(self.path / rel, dest):
                    continue  # a resumed append linked it already
                dest.unlink()  # replaced by the killed attempt (vectors/index.faiss): back to the index's
            dest.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(self.path / rel, dest)
            except OSError:  # a filesystem without hard links: copy
                tmp = dest.with_name(f"{dest.name}.{uuid.uuid4().hex[:8]}.tmp")
                shutil.copyfile(self.path / rel, tmp)
                os.replace(tmp, dest)

    def task_store(self) -> LocalTaskStore:
        return LocalTaskStore(str(self.partial), self.scratch_dir)

    def work_dir(self) -> Path:
        return self.partial

    def put_driver_file(self, local: Path, rel: str) -> dict:
        dest = self.partial / rel
        if local.resolve() != dest.resolve():
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(local, dest)
        return {"size": dest.stat().st_size, "sha256": sha256_file(dest)}

    def driver_location(self, rel: str) -> str:
        return str(self.partial / rel)

    def fetch_staged(self, rel: str, dest: Path) -> None:
        if (self.partial / rel).resolve() != dest.resolve():
            shutil.copyfile(self.partial / rel, dest)

    def read_column(self, rel: str, column: str):
        import pyarrow.parquet as pq

        return pq.read_table(self.partial / rel, columns=[column]).column(0).to_numpy()

    def publish(self, manifest: dict, tags: dict[str, str], lock) -> None:
        partial, output = self.partial, self.path
        fault_point("driver-before-manifest")
        shutil.rmtree(partial / STAGING, ignore_errors=True)
        (partial / "build-state.json").unlink(missing_ok=True)
        write_manifest(partial, manifest)
        fsync_dir(partial)
        lock.verify()
        if self._output_state() != self.seen:
            raise BuildError(f"{output} changed while this build ran (another build published there)")
        if output.exists():
            old = output.parent / f".{output.name}.old"
            shutil.rmtree(old, ignore_errors=True)
            os.replace(output, old)
            os.replace(partial, output)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(partial, output)
        fsync_dir(output.parent)

    def discard(self) -> None:
        shutil.rmtree(self.partial, ignore_errors=True)

    def failure_message(self, exc: BaseException) -> str:
        return failure_message(exc, self.partial)


class RemoteTarget(BuildTarget):
    """An object-store prefix: files at their final keys, staging under ``_staging/``, manifest last."""

    def __init__(
        self, output: str, storage_options: storage.StorageOptions = (), scratch_dir: str | None = None
    ):
        fs, path = storage.filesystem(output, storage_options)
        path = path.rstrip("/")
        if "/" not in path.strip("/"):
            raise UsageError(f"--output {output}: choose a prefix inside the bucket, not the bucket itself")
        super().__init__(storage.url_of(fs, path))
        self.fs, self.root = fs, path
        self.storage_options = storage_options
        self.scratch_dir = scratch_dir
        self.key = ""
        self.seen: bytes | None = None  # the manifest's bytes when the build started (publish re-checks them)
        self.replace = False  # an index is there that this build replaces
        self.known: set[str] = set()  # files of the index an append extends (checked when it was published)
        self._work: tempfile.TemporaryDirectory | None = None

    def _p(self, rel: str) -> str:
        return f"{self.root}/{rel}"

    def _objects(self) -> list[str]:
        """Every object under the prefix, as paths relative to it."""
        self.fs.invalidate_cache()
        try:
            found = self.fs.find(self.root)
        except FileNotFoundError:
            return []
        return sorted(p[len(self.root) + 1 :] for p in found if p.startswith(self.root + "/"))

    def _manifest_raw(self) -> bytes | None:
        self.fs.invalidate_cache()
        try:
            return self.fs.cat_file(self._p(settings.MANIFEST_NAME))
        except FileNotFoundError:
            return None

    def manifest(self) -> dict | None:
        """The published manifest (parsed, not checked), or None when the prefix holds none."""
        raw = self._manifest_raw()
        return None if raw is None else parse_manifest(raw, self.output, check=False)

    def _intact(self) -> bool:
        """The published index passes the open-time checks: a sealed, consistent manifest of this schema, and
        every file it lists present with its size (one listing of the prefix)."""
        try:
            m = parse_manifest(self._manifest_raw() or b"", self.output)
            self.fs.invalidate_cache()
            sizes = {
                p[len(self.root) + 1 :]: int(info.get("size") or 0)
                for p, info in self.fs.find(self.root, detail=True).items()
            }
        except (FreqindexError, OSError):
            return False
        return all(sizes.get(rel) == meta["size"] for rel, meta in m["files"].items())

    def prepare(self, key: str, overwrite: bool) -> dict | None:
        self.key = key
        self.seen = self._manifest_raw()
        try:
            existing = self.manifest()
        except FreqindexError:  # a manifest that cannot be read: an index to rebuild, with --overwrite
            existing = {"unreadable": True}
        self.replace = existing is not None
        if existing is None:
            objects = self._objects()
            if objects and REMOTE_STATE not in objects:
                raise UsageError(
                    f"--output {self.output} is not empty and is neither a freqindex index nor an unfinished "
                    f"build of one ({len(objects)} object(s), e.g. {objects[0]})"
                )
        elif existing.get("content_key") == key and self._intact():
            self.existing = existing
            return existing
        elif existing.get("content_key") != key and not overwrite:
            raise UsageError(
                f"{self.output} already holds an index of other input or settings; pass --overwrite or choose another --output"
            )
        return None  # nothing yet, or an index to replace (--overwrite, or the same one damaged)

    def clean_up_published(self) -> int:
        """After a build whose publish was cut short: remove what the manifest does not list. Returns the
        number of objects removed."""
        try:
            m = self.manifest()
        except FreqindexError:
            return 0
        if m is None:
            return 0
        keep = set(m["files"]) | {settings.MANIFEST_NAME}
        stray = [r for r in self._objects() if r not in keep]
        self._remove(stray)
        return len(stray)

    def _state(self) -> dict | None:
        """The unfinished build's state object (content key, config, staging version), if any."""
        try:
            return json.loads(self.fs.cat_file(self._p(REMOTE_STATE)))
        except (FileNotFoundError, ValueError):
            return None

    @staticmethod
    def _resumable(state: dict | None, key: str) -> bool:
        return (
            state is not None
            and state.get("content_key") == key
            and state.get("staging_version", 0) <= STAGING_VERSION
        )

    def start(self, key: str, config: dict, say: Callable[[str], None]) -> None:
        if self.replace:  # the prefix stops being an index before anything in it changes
            say(
                f"removing the manifest of the index at {self.output}: it is rebuilt (--overwrite, or damaged)"
            )
            self.fs.rm_file(self._p(settings.MANIFEST_NAME))
            self.seen = None
        state = self._state()
        if self._resumable(state, key):
            say("resuming an unfinished build: finished stages are kept where their checksums match")
        else:
            if state is not None:
                say("discarding an unfinished build of other input or settings")
            self._remove(self._objects())  # also the files of an index replaced with --overwrite
        self.fs.pipe_file(
            self._p(REMOTE_STATE),
            json.dumps({"content_key": key, "config": config, "staging_version": STAGING_VERSION}).encode(),
        )

    def prepare_append(self) -> dict:
        self.seen = self._manifest_raw()
        if self.seen is None:
            raise UsageError(
                f"--append-to {self.output}: not a freqindex index (no {settings.MANIFEST_NAME})"
            )
        try:
            m = parse_manifest(self.seen, self.output)
        except FreqindexError as exc:
            raise UsageError(f"--append-to: cannot append to {self.output}: {exc}") from None
        if not self._intact():
            raise UsageError(
                f"--append-to: cannot append to {self.output}: a file its manifest lists is missing or of "
                "another size (run `freqindex verify` on it)"
            )
        self.existing = m
        return m

    def start_append(self, key: str, config: dict, base: dict, say: Callable[[str], None]) -> None:
        """New files go to new keys beside the index's own, which are never written; publishing replaces the
        manifest last (one PUT). Objects of a dead append of other input are removed, the index's never."""
        self.key = key
        self.known = set(base["files"])
        state = self._state()
        if self._resumable(state, key):
            say("resuming an unfinished append: finished stages are kept where their checksums match")
        else:
            keep = self.known | {settings.MANIFEST_NAME}
            stray = [r for r in self._objects() if r not in keep and not r.startswith(EVALS_PREFIX)]
            if stray:
                say(f"discarding an unfinished build beside the index ({len(stray)} object(s))")
                self._remove(stray)
        self.fs.pipe_file(
            self._p(REMOTE_STATE),
            json.dumps({"content_key": key, "config": config, "staging_version": STAGING_VERSION}).encode(),
        )

    def task_store(self) -> RemoteTaskStore:
        return RemoteTaskStore(self.output, self.storage_options, self.scratch_dir, self.key)

    def work_dir(self) -> Path:
        if self._work is None:
            self._work = tempfile.TemporaryDirectory(prefix="freqindex-driver-")
        return Path(self._work.name)

    def put_driver_file(self, local: Path, rel: str) -> dict:
        self.fs.put_file(str(local), self._p(rel))
        check_upload(self.fs, self._p(rel), local)
        return file_entry(local)

    def driver_location(self, rel: str) -> str:
        return storage.join(self.output, rel)

    def fetch_staged(self, rel: str, dest: Path) -> None:
        dest.parent.mkdir(parents=True, exist_ok=True)
        self.fs.get_file(self._p(rel), str(dest))

    def read_column(self, rel: str, column: str):
        import pyarrow.parquet as pq

        fs, path = storage.arrow_filesystem(self.driver_location(rel), self.storage_options)
        return pq.read_table(path, columns=[column], filesystem=fs).column(0).to_numpy()

    def publish(self, manifest: dict, tags: dict[str, str], lock) -> None:
        files = manifest["files"]

        def check(rel: str) -> str | None:
            return None if remote_file_matches(self.fs, self._p(rel), files[rel], tags.get(rel)) else rel

        self.fs.invalidate_cache()
        with ThreadPoolExecutor(max_workers=16) as pool:  # an append's new files; the index's were checked
            bad = [r for r in pool.map(check, sorted(set(files) - self.known)) if r]
        if bad:
            raise BuildError(f"{storage.join(self.output, bad[0])} does not match what its task uploaded")
        lock.verify()
        if self._manifest_raw() != self.seen:
            raise BuildError(f"{self.output} changed while this build ran (another build published there)")
        keep = set(files) | {settings.MANIFEST_NAME}
        if self.known:  # an append leaves what else the index held (eval outputs) as it was
            keep |= {r for r in self._objects() if r.startswith(EVALS_PREFIX)}
        self._remove([r for r in self._objects() if r not in keep and not r.startswith(STAGING + "/")])
        fault_point("driver-before-manifest")
        self.fs.pipe_file(self._p(settings.MANIFEST_NAME), manifest_bytes(manifest))
        self._remove([r for r in self._objects() if r.startswith(STAGING + "/")])
        self._abort_uploads()
        if self._work is not None:
            self._work.cleanup()
            self._work = None

    def _remove(self, rels: list[str]) -> None:
        if rels:
            self.fs.rm([self._p(r) for r in rels])
            self.fs.invalidate_cache(self.root)

    def _abort_uploads(self) -> None:
        """S3: abort multipart uploads that killed attempts left unfinished under the prefix (invisible as
        objects, but stored and billed). Other stores have nothing of the kind."""
        if not hasattr(self.fs, "list_multipart_uploads"):
            return
        bucket, _, prefix = self.root.partition("/")
        try:
            pending = self.fs.call_s3("list_multipart_uploads", Bucket=bucket, Prefix=prefix + "/")
            for u in pending.get("Uploads", []):
                self.fs.call_s3("abort_multipart_upload", Bucket=bucket, Key=u["Key"], UploadId=u["UploadId"])
        except Exception:  # best effort: a store without the call, or no permission to list uploads
            pass

    def discard(self) -> None:
        self._remove(self._objects())
        if self._work is not None:
            self._work.cleanup()
            self._work = None

    def failure_message(self, exc: BaseException) -> str:
        cause = failure_cause(exc)
        try:
            objects = self._objects()
            if self.known:  # an append: the index's own objects are not the unfinished build
                objects = [r for r in objects if r not in self.known and r != settings.MANIFEST_NAME]
            if objects and all(r == REMOTE_STATE for r in objects):
                self._remove(objects)
                objects = []
            size = sum(int(self.fs.info(self._p(r)).get("size") or 0) for r in objects[:10_000])
        except Exception:
            return (
                f"{cause}; the unfinished build may be kept under {self.output}: run the same command again"
            )
        if not objects:
            return f"{cause}; nothing of the unfinished build was kept"
        return (
            f"{cause}; the unfinished build is kept under {self.output} ({len(objects)} objects, "
            f"{human_bytes(size)}): run the same command again to resume"
        )


def manifest_bytes(manifest: dict) -> bytes:
    """The sealed manifest as ``write_manifest`` writes it to a local index (the same bytes)."""
    return (json.dumps(seal(manifest), indent=2, sort_keys=True) + "\n").encode()


def target_for(output: str, storage_options: storage.StorageOptions = (), scratch_dir: str | None = None):
    """:class:`RemoteTarget` for a URL, :class:`LocalTarget` for a path (or ``file://``)."""
    if storage.is_url(output):
        return RemoteTarget(output, storage_options, scratch_dir)
    return LocalTarget(output, scratch_dir)
