"""An exclusive claim on a build's output, so that two builds never write, resume or publish the same index.

``lock_for(output)`` picks the implementation for the output's location. Local paths (and shared POSIX
filesystems such as NFS) get :class:`LocalOutputLock`: a lock file beside the output (``.NAME.lock``) that
holds its owner's pid, host, start time and command, and is locked with ``flock`` for as long as the owner
runs. The kernel drops an ``flock`` when its process dies, even by ``kill -9``, so a lock file nobody holds
is stale and is taken over (and said so). An object store has no ``flock``: a remote implementation (a
conditional put of the lock object, with a lease that its owner renews) plugs in with :func:`register_lock`
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
                holder = _read_owner(fd)
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


_LOCKS: dict[str, Callable[[str], OutputLock]] = {"file": LocalOutputLock}


def register_lock(scheme: str, factory: Callable[[str], OutputLock]) -> None:
    """Use ``factory(output)`` for outputs addressed as ``scheme://...`` (e.g. an object store's)."""
    _LOCKS[scheme] = factory


def lock_for(output: str) -> OutputLock:
    """The lock implementation for ``output`` (a local path or ``file://``: :class:`LocalOutputLock`)."""
    scheme = output.split("://", 1)[0] if "://" in output else "file"
    if scheme not in _LOCKS:
        raise UsageError(f"cannot lock an output on {scheme}:// (known: {', '.join(sorted(_LOCKS))})")
    return _LOCKS[scheme](output.removeprefix("file://"))
