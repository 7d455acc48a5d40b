"""`neighbors`: the top-k pretraining documents of every eval item by embedding similarity."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from freqindex import settings
from freqindex.deadline import Deadline, check
from freqindex.errors import UsageError
from freqindex.evals import EvalItem, eval_name, load_eval
from freqindex.report.tables import rows_table, write_rows

if TYPE_CHECKING:
    from freqindex.suffix.index import Index

from .common import open_index

ITEMS_PER_STEP = 256  # items embedded and searched between two deadline checks


@dataclass(frozen=True)
class NeighborsConfig:
    """``fields`` (joined by a newline) or ``template`` make up an item's text; ``out_file``: Parquet or JSONL
    (default ``INDEX/evals/NAME/neighbors.parquet``, the `neighbors` SQL view)."""

    index_dir: str = ""
    eval_file: str = ""
    fields: tuple[str, ...] | None = None
    template: str | None = None
    id_field: str = settings.DEFAULT_ID_FIELD
    k: int = settings.DEFAULT_K
    out_file: str | None = None
    neighbors: str = (
        "auto"  # auto (exhaustive when the index has vectors, else candidates) | exhaustive | candidates
    )
    candidates: int | None = None  # candidate documents per item in candidates mode (None: the default)

    def validate(self) -> NeighborsConfig:
        if not 1 <= self.k <= settings.MAX_K:
            raise UsageError(f"-k must be between 1 and {settings.MAX_K}")
        return self


@dataclass(frozen=True)
class NeighborsOutcome:
    rows: list[
        dict
    ]  # one per (item, document): eval, item_id, rank, doc_id, ext_id, window, similarity, snippet
    n_items: int
    written: str | None  # the Parquet/JSONL file, when written
    mode: str  # the mode that ran (auto resolved)
    median_max_similarity: float | None
    items_at_least_0_9: int  # items whose best document has similarity >= 0.9


def run_neighbors(
    cfg: NeighborsConfig,
    *,
    index: Index | None = None,
    items: list[EvalItem] | None = None,
    write: bool = True,
    deadline: Deadline | None = None,
) -> NeighborsOutcome:
    """Neighbours of the items of ``cfg.eval_file`` (or of ``items``, given in memory by the server), in
    steps of ``ITEMS_PER_STEP`` items with the deadline checked between them; written to ``out_file`` (or
    the default) when ``write``."""
    from freqindex.query.neighbors import NEIGHBOR_SCHEMA, max_similarity, neighbors

    idx = open_index(cfg.index_dir, index)
    name = "request"
    if items is None:
        if not cfg.eval_file:
            raise UsageError("--eval FILE is required")
        items = load_eval(cfg.eval_file, cfg.id_field, list(cfg.fields) if cfg.fields else None, cfg.template)
        name = eval_name(cfg.eval_file)
    rows: list[dict] = []
    stats: dict = {}
    kw = dict(mode=cfg.neighbors, candidates=cfg.candidates, stats=stats)
    for a in range(0, len(items), ITEMS_PER_STEP):
        check(deadline)
        rows += neighbors(idx, items[a : a + ITEMS_PER_STEP], cfg.k, name, **kw)
    target = None
    if write and cfg.out_file:
        Path(cfg.out_file).parent.mkdir(parents=True, exist_ok=True)
        target = str(write_rows(rows, cfg.out_file, schema=NEIGHBOR_SCHEMA))
    elif write:  # the `neighbors` SQL view reads the declared INDEX/evals/NAME/neighbors.parquet
        target = str(idx.publish_eval(name, "neighbors", rows_table(rows, NEIGHBOR_SCHEMA)))
    vals = sorted(max_similarity(rows).values())
    return NeighborsOutcome(
        rows,
        len(items),
        target,
        stats.get("mode", cfg.neighbors),
        vals[len(vals) // 2] if vals else None,
        sum(v >= 0.9 for v in vals),
    )
