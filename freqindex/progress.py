"""Progress for a log: when stderr is not a terminal (a batch job, CI, ``2> build.log``) a live bar is
useless, so each stage gets plain lines instead."""

from __future__ import annotations

import time
from collections.abc import Callable


class LineProgress:
    """A ``(description, done, total)`` callback that writes ``read + tokenize: 3/8 tasks (12 s)``: the first
    report of a stage, then a changed count at most every ``min_interval_s`` seconds, and always the count
    that completes the stage, once."""

    def __init__(
        self,
        write: Callable[[str], None],
        min_interval_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.write, self.min_interval_s, self.clock = write, min_interval_s, clock
        self._started: dict[str, float] = {}
        self._last: dict[str, tuple[float, int, int]] = {}  # description -> (when written, done, total)

    def __call__(self, description: str, done: int, total: int) -> None:
        now = self.clock()
        start = self._started.setdefault(description, now)
        last = self._last.get(description)
        if last is not None:
            when, last_done, last_total = last
            if (done, total) == (last_done, last_total):
                return
            if last_done >= last_total:  # finished and said so
                return
            if done < total and now - when < self.min_interval_s:
                return
        self._last[description] = (now, done, total)
        self.write(f"{description}: {done}/{total} tasks ({now - start:.0f} s)")
