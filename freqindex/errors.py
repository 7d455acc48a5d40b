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


class CheckFailedError(FreqindexError):
    """A check ran and failed (verify mismatch, a contamination gate)."""

    exit_code = 1


class BuildError(FreqindexError):
    """A build stage failed for a reason other than bad input (a crashed Spark task, a failed indexer)."""

    exit_code = 3


class Cancelled(FreqindexError):
    """Work stopped at a step boundary because its deadline passed or it was cancelled (the server's time
    limit); whatever it held (an index's lock) has been released."""
