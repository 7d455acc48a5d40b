"""`count` and `docs`: exact counts and matching documents from the suffix arrays."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from freqindex import settings
from freqindex.deadline import Deadline, check
from freqindex.errors import UsageError

if TYPE_CHECKING:
    from freqindex.query.count import CountError, CountResult
    from freqindex.query.docs import DocHit
    from freqindex.suffix.index import Index

from .common import open_index


@dataclass(frozen=True)
class CountConfig:
    """One ``query``, a batch of ``queries`` (counted together; a bad one fails the batch, naming its
    position), or a ``file`` (one query a line: each line answered, a bad one with an error), exactly one."""

    index_dir: str = ""
    query: str | None = None
    queries: tuple[str, ...] = ()
    file: str | None = None
    unit: str = "occurrences"
    literal: bool = False
    max_diff_tokens: int = settings.MAX_DIFF_TOKENS

    def validate(self) -> CountConfig:
        if self.file is not None and (self.query is not None or self.queries):
            raise UsageError("give either QUERY or --file, not both")
        if self.file is None and self.query is None and not self.queries:
            raise UsageError("missing QUERY (or --file)")
        from freqindex.query.count import UNITS

        if self.unit not in UNITS:
            raise UsageError(f"unknown unit {self.unit!r}; choose occurrences or docs")
        return self

    def count_kwargs(self) -> dict:
        return dict(unit=self.unit, literal=self.literal, max_diff_tokens=self.max_diff_tokens)


def run_count(
    cfg: CountConfig, *, index: Index | None = None, deadline: Deadline | None = None
) -> list[CountResult]:
    """The count of ``cfg.query``, or of every query of ``cfg.queries`` in one batch (the error of a bad
    query names its position, ``queries[i]``)."""
    from freqindex.query.count import count, count_many

    idx = open_index(cfg.index_dir, index)
    check(deadline)
    if cfg.query is not None:
        return [count(idx, cfg.query, **cfg.count_kwargs())]
    return count_many(idx, list(cfg.queries), **cfg.count_kwargs(), deadline=deadline)


def run_count_file(
    cfg: CountConfig, *, index: Index | None = None, deadline: Deadline | None = None
) -> Iterator[tuple[int, CountResult | CountError]]:
    """(line number, result) for every non-empty line of ``cfg.file``, counted in batches of
    ``settings.COUNT_FILE_BATCH`` and yielded as each batch is done; a query that cannot be counted gives a
    CountError, the others are still counted. Afterwards, :func:`count_file_failures` says whether any
    failed."""
    from freqindex.query.count import count_many

    idx = open_index(cfg.index_dir, index)
    try:  # utf-8-sig: a byte-order mark is not part of the first query
        text = Path(cfg.file).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read --file {cfg.file}: {exc}") from None
    numbered = [(n, q.removesuffix("\r")) for n, q in enumerate(text.split("\n"), 1)]
    numbered = [(n, q) for n, q in numbered if q != ""]
    for i in range(0, len(numbered), settings.COUNT_FILE_BATCH):
        check(deadline)
        chunk = numbered[i : i + settings.COUNT_FILE_BATCH]
        results = count_many(
            idx, [q for _, q in chunk], on_error="return", **cfg.count_kwargs(), deadline=deadline
        )
        yield from ((n, res) for (n, _), res in zip(chunk, results))


def count_file_failures(bad_lines: list[int], total: int) -> None:
    """Raise the UsageError (exit 2) of a ``count --file`` run whose ``bad_lines`` could not be counted."""
    if bad_lines:
        shown = ", ".join(map(str, bad_lines[:10])) + (", ..." if len(bad_lines) > 10 else "")
        lines = "line" if len(bad_lines) == 1 else "lines"
        raise UsageError(f"{len(bad_lines)} of {total} queries could not be counted ({lines} {shown})")


@dataclass(frozen=True)
class DocsConfig:
    index_dir: str = ""
    query: str = ""
    limit: int = settings.DEFAULT_DOCS_LIMIT
    literal: bool = False


@dataclass(frozen=True)
class DocsOutcome:
    total_docs: int  # every matching document
    hits: list[DocHit]  # the first ``limit`` of them by doc_id


def run_docs(cfg: DocsConfig, *, index: Index | None = None, deadline: Deadline | None = None) -> DocsOutcome:
    """The documents holding the query (one term or OR-alternatives), with provenance and snippets."""
    from freqindex.query.docs import find_docs

    idx = open_index(cfg.index_dir, index)
    check(deadline)
    n, hits = find_docs(idx, cfg.query, limit=cfg.limit, literal=cfg.literal)
    return DocsOutcome(n, hits)
