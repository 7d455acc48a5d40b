"""A cancellation token for long library work: loops call ``check()`` between steps (a query, an item, a
concept, a batch) and stop with :class:`~freqindex.errors.Cancelled` once the deadline has passed or
``cancel()`` was called. The server gives every request one, so a request answered 504 releases its index's
lock at its next step instead of running to the end."""

from __future__ import annotations

import threading
import time

from freqindex.errors import Cancelled


class Deadline:
    """Expires ``seconds`` after creation (never when None), or as soon as :meth:`cancel` is called."""

    def __init__(self, seconds: float | None = None):
        self.seconds = seconds
        self._at = None if seconds is None else time.monotonic() + seconds
        self._cancelled = threading.Event()

    def cancel(self) -> None:
        self._cancelled.set()

    @property
    def expired(self) -> bool:
        return self._cancelled.is_set() or (self._at is not None and time.monotonic() >= self._at)

    def check(self) -> None:
        """Raise Cancelled when expired; otherwise return at once."""
        if self.expired:
            limit = f" of {self.seconds:g} s" if self.seconds is not None else ""
            raise Cancelled(f"stopped at the time limit{limit}")


def check(deadline: Deadline | None) -> None:
    """``deadline.check()`` that accepts None (no deadline)."""
    if deadline is not None:
        deadline.check()
