"""The small hierarchy of domain errors. Only the CLI and the HTTP layer translate them to exit/status codes."""

from __future__ import annotations


class FreqindexError(Exception):
    """Base class. ``exit_code`` is what the CLI exits with when this error reaches it."""

    exit_code = 2


class UsageError(FreqindexError):
    """Bad flags, bad arguments, an unknown registry name."""


class BadInputError(FreqindexError):
    """Input data that cannot be used (with --strict: the first malformed record)."""


class IndexNotFoundError(FreqindexError):
    """A directory that is not a complete freqindex index (no manifest.json)."""


class IndexDamagedError(FreqindexError):
    """An index whose files or manifest do not agree (a missing or truncated file, a hand-edited manifest)."""


class CheckFailedError(FreqindexError):
    """A check ran and failed (verify mismatch, a contamination gate)."""

    exit_code = 1


class BuildError(FreqindexError):
    """A build stage failed for a reason other than bad input (a crashed Spark task, a failed indexer)."""

    exit_code = 3


class Cancelled(FreqindexError):
    """Work stopped at a step boundary because its deadline passed or it was cancelled (the server's time
    limit); whatever it held (an index's lock) has been released."""


class MissingExtraError(UsageError):
    """An optional dependency is not installed; ``extra`` names the freqindex extra that installs it."""

    def __init__(self, message: str, extra: str):
        super().__init__(message)
        self.extra = extra


class BadLinesError(UsageError):
    """Some lines of a batch file could not be answered; the others were (and their answers written).
    ``lines``: (line number, reason) for each bad line, which the faces show one by one."""

    def __init__(self, path: str, lines: list[tuple[int, str]]):
        super().__init__(f"{len(lines)} bad line(s) in {path}; the other lines were answered")
        self.path = path
        self.lines = lines
