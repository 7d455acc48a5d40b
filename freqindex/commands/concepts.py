"""`concepts`: occurrences and document frequency of every concept of a vocabulary."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from freqindex.deadline import Deadline, check
from freqindex.errors import UsageError
from freqindex.report.tables import write_rows

if TYPE_CHECKING:
    from freqindex.suffix.index import Index

from .common import open_index

VocabRow = tuple[str | None, str, list[str]]  # (benchmark, concept, aliases)


@dataclass(frozen=True)
class ConceptsConfig:
    """``concepts``: a vocabulary file (see `freqindex tag --help`); ``source``: auto (tags when the index
    was tagged with this vocabulary), tags or suffix; ``out_file``: also write the table (.parquet, .csv,
    .jsonl)."""

    index_dir: str = ""
    concepts: str = ""
    source: str = "auto"
    exact: bool = False
    label_field: str | None = None
    out_file: str | None = None

    def validate(self) -> ConceptsConfig:
        from freqindex.query.concepts import SOURCES

        if self.source not in SOURCES:
            raise UsageError(f"unknown --source {self.source!r}; choose auto, tags or suffix")
        return self


@dataclass(frozen=True)
class ConceptsOutcome:
    source: str  # the source used (auto resolved)
    rows: list[dict]  # concept_id, concept, benchmark, occurrences, doc_frequency (+ multimodal columns)
    warnings: list[str]  # from the vocabulary: merged duplicates, skipped empty names
    written: str | None  # out_file, when given


def run_concepts(
    cfg: ConceptsConfig,
    *,
    index: Index | None = None,
    vocab_rows: list[VocabRow] | None = None,
    deadline: Deadline | None = None,
) -> ConceptsOutcome:
    """Count every concept of the vocabulary file ``cfg.concepts`` (or of ``vocab_rows``, given in memory by
    the server). The deadline is checked before every concept."""
    from freqindex.concepts.vocab import load_vocabulary, vocabulary_from_rows
    from freqindex.query.concepts import concept_counts

    idx = open_index(cfg.index_dir, index)
    if vocab_rows is not None:
        vocab = vocabulary_from_rows(vocab_rows, idx.normalizer, cfg.exact)
    elif cfg.concepts:
        vocab = load_vocabulary(cfg.concepts, idx.normalizer, cfg.exact, cfg.label_field)
    else:
        raise UsageError("--concepts FILE is required")
    check(deadline)
    src, rows = concept_counts(idx, vocab, cfg.source, deadline=deadline)
    if cfg.out_file:
        write_rows(rows, cfg.out_file)
    return ConceptsOutcome(src, rows, list(vocab.warnings), cfg.out_file)
