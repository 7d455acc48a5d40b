"""Crash points for crash-and-resume tests.

A stage calls ``crash_point("tag:tasks-done")`` at a moment where a real crash (the machine lost, the process
killed for memory) must leave nothing that looks finished. With ``FREQINDEX_CRASH_AT`` set to that name the
process kills itself with SIGKILL there: no ``finally`` block, ``atexit`` hook or Spark shutdown runs, exactly
as in a real crash. Unset (always, outside tests) it does nothing.
"""

from __future__ import annotations

import os
import signal

CRASH_ENV = "FREQINDEX_CRASH_AT"


def crash_point(name: str) -> None:
    """SIGKILL this process when ``FREQINDEX_CRASH_AT`` equals ``name``."""
    if os.environ.get(CRASH_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)
