"""An exclusive claim on a build's output, so that two builds never write, resume or publish the same index.

``lock_for(output)`` picks the implementation for the output's location. Local paths (and shared POSIX
filesystems such as NFS) get :class:`LocalOutputLock`: a lock file beside the output (``.NAME.lock``) that
holds its owner's pid, host, start time and command, and is locked with ``flock`` for as long as the owner
runs. The kernel drops an ``flock`` when its process dies, even by ``kill -9``, so a lock file nobody holds
is stale and is taken over (and said so). An object store has no ``flock``: outputs given as URLs get
:class:`ObjectStoreLock`, built on the one atomic operation every object store offers, *create this object
unless it exists*, and a lease its owner renews. Other implementations plug in with :func:`register_lock`
and the same three calls: ``acquire``, ``verify`` (just before publishing) and ``release``.
"""

from __future__ import annotations

import datetime as _dt
import errno
import fcntl
import json
import os
import socket
import sys
import threading
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from freqindex.errors import BuildError, UsageError


class OutputLockedError(BuildError):
    """Another build holds (or took over) the output."""


@dataclass(frozen=True)
class LockOwner:
    """Who holds a lock: enough for a person to find the process."""

    pid: int
    host: str
    started: str
    command: str
    token: str

    @classmethod
    def me(cls) -> LockOwner:
        return cls(
            os.getpid(),
            socket.gethostname(),
            _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
            " ".join(sys.argv)[:300],
            uuid.uuid4().hex,
        )

    def describe(self) -> str:
        return f"pid {self.pid} on {self.host} (started {self.started})"


class OutputLock(ABC):
    """An exclusive, non-blocking claim on one output location."""

    def __init__(self, output: str):
        self.output = output
        self.owner = LockOwner.me()
        self.stale: LockOwner | None = None  # the previous owner when acquire took over a stale lock

    @abstractmethod
    def acquire(self) -> None:
        """Take the claim now, or raise OutputLockedError naming the holder (never waits)."""

    @abstractmethod
    def verify(self) -> None:
        """Raise OutputLockedError unless this object still holds the claim (checked before publishing)."""

    @abstractmethod
    def release(self) -> None:
        """Give the claim up; safe to call twice or after a failed acquire."""

    def __enter__(self) -> OutputLock:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()


_NO_LOCKS = {errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EINVAL, errno.ENOSYS}


class LocalOutputLock(OutputLock):
    """``flock`` on ``.NAME.lock`` beside the output; the file holds the owner as JSON and is removed on
    release. Where the filesystem has no ``flock``, the owner's pid decides: a lock of this host whose
    process is gone is stale; one of another host is respected."""

    def __init__(self, output: str):
        super().__init__(output)
        out = Path(output)
        self.path = out.parent / f".{out.name}.lock"
        self._fd: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(5):  # a holder that releases between our open and our flock: look again
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as exc:
                raise BuildError(f"cannot lock {self.output}: {exc.strerror} ({self.path})") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = self._holder_of(fd)
                current = self._is_current(fd)
                os.close(fd)
                if not current:
                    continue
                raise self._locked(holder) from None
            except OSError as exc:
                if exc.errno not in _NO_LOCKS:
                    os.close(fd)
                    raise
                self._acquire_without_flock(fd)
                return
            if not self._is_current(fd):  # we locked a file its holder had just removed
                os.close(fd)
                continue
            previous = _read_owner(fd)
            self.stale = previous if previous and previous.token != self.owner.token else None
            self._write(fd)
            self._fd = fd
            return
        raise OutputLockedError(f"could not lock {self.output}: its lock file {self.path} keeps changing")

    def _acquire_without_flock(self, fd: int) -> None:
        previous = _read_owner(fd)
        if previous and (previous.host != self.owner.host or _alive(previous.pid)):
            os.close(fd)
            raise self._locked(previous)
        self.stale = previous
        self._write(fd)
        self._fd = fd

    def _locked(self, holder: LockOwner | None) -> OutputLockedError:
        who = holder.describe() if holder else "another process"
        return OutputLockedError(
            f"{self.output} is being built by {who}; wait for it to finish or choose another --output "
            f"(lock file: {self.path})"
        )

    def _holder_of(self, fd: int, wait_s: float = 2.0) -> LockOwner | None:
        """The owner of a lock file someone else holds. A holder writes itself into the file just after it
        takes the ``flock``, so for a moment the file may be empty or still name a previous, dead owner:
        read again until it names a live owner, or ``wait_s`` has passed."""
        deadline = time.monotonic() + wait_s
        while True:
            holder = _read_owner(fd)
            settled = holder is not None and (holder.host != self.owner.host or _alive(holder.pid))
            if settled or time.monotonic() >= deadline:
                return holder
            time.sleep(0.02)

    def _is_current(self, fd: int) -> bool:
        try:
            return os.stat(self.path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            return False

    def _write(self, fd: int) -> None:
        data = json.dumps(asdict(self.owner)).encode()
        os.ftruncate(fd, 0)
        os.pwrite(fd, data, 0)
        os.fsync(fd)

    def verify(self) -> None:
        if self._fd is None or not self._is_current(self._fd):
            raise OutputLockedError(f"this build lost its lock on {self.output} ({self.path} was removed)")
        holder = _read_owner(self._fd)
        if holder is None or holder.token != self.owner.token:
            who = holder.describe() if holder else "someone"
            raise OutputLockedError(f"this build lost its lock on {self.output} to {who} ({self.path})")

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            if self._is_current(self._fd):
                holder = _read_owner(self._fd)
                if holder is not None and holder.token == self.owner.token:
                    self.path.unlink(missing_ok=True)
        finally:
            os.close(self._fd)  # drops the flock
            self._fd = None


def _read_owner(fd: int) -> LockOwner | None:
    try:
        raw = os.pread(fd, 65536, 0)
        return LockOwner(**json.loads(raw)) if raw.strip() else None
    except (OSError, ValueError, TypeError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class ObjectStoreLock(OutputLock):
    """A lock on an object store: generations of lock objects under ``PARENT/.NAME.lock/``.

    The holder is the owner of the highest generation, ``.NAME.lock/00000007``: its JSON names the owner
    (pid, host, start, command, token) and ``expires``, a lease the owner's heartbeat thread extends every
    ``lease_s / 4`` seconds by rewriting its own object. Taking the lock is creating the next generation
    with *create unless it exists* (S3 ``If-None-Match: *``, GCS ``ifGenerationMatch=0``, Azure
    ``If-None-Match``), so of two builds racing for one output exactly one succeeds, whatever the timing;
    nothing else ever writes an object another build created. A generation whose lease ran out, or whose
    owner is a dead process of this host, is stale and taken over by creating the one above it. ``verify``
    checks that this build's generation is still the highest and its lease still runs.

    What it relies on: the store's atomic create-if-absent and strongly consistent listing (S3 since 2020,
    GCS, Azure); and clocks that agree to well within the lease (NTP) for leases judged across hosts. Where
    an fsspec implementation has no atomic create (it falls back to exists-then-write), two builds that start
    within the same few milliseconds could both proceed; the publish-time re-check of the manifest still
    keeps one from replacing an index the other published.
    """

    def __init__(self, output: str, storage_options: tuple = (), lease_s: float | None = None):
        super().__init__(output)
        from freqindex import settings, storage

        self.fs, path = storage.filesystem(output, storage_options)
        parent, _, name = path.rstrip("/").rpartition("/")
        self.dir = f"{parent}/.{name}.lock"
        self.url = storage.url_of(self.fs, self.dir)
        self.lease_s = float(lease_s or settings.LOCK_LEASE_S)
        self.generation: int | None = None
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None
        self._beat_error: str | None = None

    def _gen_path(self, gen: int) -> str:
        return f"{self.dir}/{gen:08d}"

    def _generations(self) -> list[int]:
        self.fs.invalidate_cache()
        try:
            names = self.fs.ls(self.dir, detail=False)
        except FileNotFoundError:
            return []
        return sorted(int(n.rsplit("/", 1)[-1]) for n in names if n.rsplit("/", 1)[-1].isdigit())

    def _read(self, gen: int) -> dict | None:
        try:
            return json.loads(self.fs.cat_file(self._gen_path(gen)))
        except (FileNotFoundError, ValueError):
            return None

    def _body(self) -> bytes:
        return json.dumps({**asdict(self.owner), "expires": time.time() + self.lease_s}).encode()

    def _create(self, gen: int) -> bool:
        """Create generation ``gen`` unless it exists; True when this call created it."""
        try:
            self.fs.pipe_file(self._gen_path(gen), self._body(), mode="create")
            return True
        except FileExistsError:
            return False
        except OSError as exc:
            if exc.errno == errno.EINVAL or "Precondition" in str(exc) or "Conflict" in str(exc):
                return False  # S3: 412 Precondition Failed / 409 ConditionalRequestConflict
            raise BuildError(f"cannot lock {self.output}: {exc} ({self.url})") from None

    def _is_stale(self, holder: dict | None) -> bool:
        if holder is None:
            return True  # unreadable or removed meanwhile: the next generation decides
        if holder.get("host") == self.owner.host and not _alive(int(holder.get("pid", -1))):
            return True
        return float(holder.get("expires", 0)) < time.time()

    @staticmethod
    def _who(holder: dict | None) -> str:
        if not holder:
            return "another build"
        return f"pid {holder.get('pid')} on {holder.get('host')} (started {holder.get('started')})"

    def _locked_error(self, holder: dict | None) -> OutputLockedError:
        return OutputLockedError(
            f"{self.output} is being built by {self._who(holder)}; wait for it to finish or choose another "
            f"--output (lock: {self.url})"
        )

    def acquire(self) -> None:
        for _ in range(5):
            gens = self._generations()
            top = gens[-1] if gens else 0
            holder = self._read(top) if top else None
            if top and not self._is_stale(holder):
                raise self._locked_error(holder)
            if self._create(top + 1):
                self.generation = top + 1
                if holder is not None:
                    fields = {k: holder.get(k) for k in ("pid", "host", "started", "command", "token")}
                    self.stale = LockOwner(**fields)
                self._remove([g for g in gens if g <= top])
                self._stop.clear()
                self._beat = threading.Thread(target=self._heartbeat, name="freqindex-lock", daemon=True)
                self._beat.start()
                return
        raise OutputLockedError(f"could not lock {self.output}: its lock {self.url} keeps changing")

    def _heartbeat(self) -> None:
        while not self._stop.wait(self.lease_s / 4):
            try:
                if self._generations()[-1:] != [self.generation]:
                    self._beat_error = "a newer build took the lock over"
                    return
                self.fs.pipe_file(self._gen_path(self.generation), self._body())
            except Exception as exc:  # the store is unreachable for a while: verify() decides
                self._beat_error = f"renewing the lease failed: {exc}"

    def _remove(self, gens: list[int]) -> None:
        for g in gens:
            try:
                self.fs.rm_file(self._gen_path(g))
            except (FileNotFoundError, OSError):
                pass

    def verify(self) -> None:
        if self.generation is None:
            raise OutputLockedError(f"this build does not hold the lock on {self.output}")
        gens = self._generations()
        mine = self._read(self.generation)
        if gens[-1:] != [self.generation] or mine is None or mine.get("token") != self.owner.token:
            who = self._who(self._read(gens[-1]) if gens else None)
            raise OutputLockedError(f"this build lost its lock on {self.output} to {who} ({self.url})")
        if float(mine.get("expires", 0)) < time.time():
            raise OutputLockedError(
                f"this build's lease on {self.output} ran out ({self._beat_error or 'no renewal'}); "
                "another build may have taken over"
            )

    def release(self) -> None:
        self._stop.set()
        if self._beat is not None:
            self._beat.join(timeout=30)
            self._beat = None
        if self.generation is not None:
            gens = [g for g in self._generations() if g <= self.generation]
            self._remove(gens)
            self.generation = None


LockFactory = Callable[[str, tuple], OutputLock]
_LOCKS: dict[str, LockFactory] = {"file": lambda output, _options: LocalOutputLock(output)}


def register_lock(scheme: str, factory: LockFactory) -> None:
    """Use ``factory(output, storage_options)`` for outputs addressed as ``scheme://...``."""
    _LOCKS[scheme] = factory


def lock_for(output: str, storage_options: tuple = ()) -> OutputLock:
    """The lock implementation for ``output``: :class:`LocalOutputLock` for a local path or ``file://``,
    the one registered for its scheme, else :class:`ObjectStoreLock` for any filesystem fsspec knows."""
    from freqindex import storage

    scheme = storage.scheme_of(output)
    if scheme in _LOCKS:
        return _LOCKS[scheme](storage.local_path(output) if scheme == "file" else output, storage_options)
    from fsspec.registry import known_implementations

    if scheme not in known_implementations:
        raise UsageError(f"cannot lock an output on {scheme}:// (not a filesystem fsspec knows)")
    return ObjectStoreLock(output, storage_options)
