"""`count` and `docs`: exact counts and matching documents from the suffix arrays."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from freqindex import settings
from freqindex.deadline import Deadline, check
from freqindex.errors import UsageError
from freqindex.query.count import UNITS, CountResult, count
from freqindex.query.docs import DocHit, find_docs
from freqindex.suffix.index import Index

from .common import open_index


@dataclass(frozen=True)
class CountConfig:
    """``queries`` (given one by one) or ``file`` (one query a line, blank lines skipped), not both."""

    index_dir: str = ""
    queries: tuple[str, ...] = ()
    file: str | None = None
    unit: str = "occurrences"
    literal: bool = False
    max_clause_freq: int = settings.MAX_CLAUSE_FREQ
    max_diff_tokens: int = settings.MAX_DIFF_TOKENS

    def validate(self) -> CountConfig:
        if self.file is not None and self.queries:
            raise UsageError("give either QUERY or --file, not both")
        if self.file is None and not self.queries:
            raise UsageError("missing QUERY (or --file)")
        if self.unit not in UNITS:
            raise UsageError(f"unknown unit {self.unit!r}; choose occurrences or docs")
        return self


def _queries(cfg: CountConfig) -> Iterator[str]:
    if cfg.file is None:
        yield from cfg.queries
        return
    try:
        lines = Path(cfg.file).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read --file {cfg.file}: {exc}") from None
    yield from (q for q in lines if q != "")


def run_count(
    cfg: CountConfig, *, index: Index | None = None, deadline: Deadline | None = None
) -> Iterator[CountResult]:
    """One CountResult per query, in order, as each is counted (a long --file streams). The deadline is
    checked before every query."""
    idx = open_index(cfg.index_dir, index)
    kw = dict(
        unit=cfg.unit,
        literal=cfg.literal,
        max_clause_freq=cfg.max_clause_freq,
        max_diff_tokens=cfg.max_diff_tokens,
    )
    for q in _queries(cfg):
        check(deadline)
        yield count(idx, q, **kw)


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
    idx = open_index(cfg.index_dir, index)
    check(deadline)
    n, hits = find_docs(idx, cfg.query, limit=cfg.limit, literal=cfg.literal)
    return DocsOutcome(n, hits)
