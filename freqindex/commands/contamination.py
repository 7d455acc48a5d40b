"""`contamination`: is this eval set in this corpus? Per-item buckets, every classic definition, evidence,
reports, the SQL view, and a CI gate."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from freqindex import settings
from freqindex.contamination.check import Policy, check_items
from freqindex.contamination.metrics import DEFINITIONS
from freqindex.deadline import Deadline, check
from freqindex.errors import MissingExtraError, UsageError
from freqindex.evals import EvalItem, eval_name, load_eval, load_results
from freqindex.report.contamination import view_table, write_outputs
from freqindex.suffix.index import Index

from .common import open_index


@dataclass(frozen=True)
class ContaminationConfig:
    """``fields``: each checked on its own; ``out_dir``: default ``INDEX/evals/NAME/contamination``;
    ``results``: per-item model results for the impact table; ``definitions``: the classic definitions to
    report; ``policy``: thresholds and per-field overrides (the ``--config`` file); ``neighbors``: how each
    item's best neighbour is found for the semantic columns (auto, exhaustive, candidates, or off; auto
    without the embed extra: none, and the summary says why; None: no semantic similarity and no word of
    it in the summary, as the server answers), ``candidates``: documents per item in candidates mode."""

    index_dir: str = ""
    eval_file: str = ""
    fields: tuple[str, ...] = ("question",)
    id_field: str = settings.DEFAULT_ID_FIELD
    out_dir: str | None = None
    results: str | None = None
    definitions: tuple[str, ...] = tuple(DEFINITIONS)
    policy: Policy = field(default_factory=Policy)
    neighbors: str | None = "auto"
    candidates: int | None = None

    def validate(self) -> ContaminationConfig:
        unknown = [n for n in self.definitions if n not in DEFINITIONS]
        if unknown:
            raise UsageError(
                f"unknown definition(s) {', '.join(unknown)}; choose from {', '.join(DEFINITIONS)} or all"
            )
        self.policy.validate()
        return self


@dataclass(frozen=True)
class ContaminationOutcome:
    records: list[dict]  # one per item: bucket, coverage, longest match, definitions, per field, evidence
    summary: dict  # what summary.json holds (with "impact" and "gate" when asked for)
    paths: dict[str, str]  # output name -> file (empty when nothing was written)
    gate_failed: bool  # the dirty fraction exceeds policy.fail_above


def run_contamination(
    cfg: ContaminationConfig,
    *,
    index: Index | None = None,
    items: list[EvalItem] | None = None,
    write: bool = True,
    progress: Callable[[str, int, int], None] | None = None,
    deadline: Deadline | None = None,
) -> ContaminationOutcome:
    """Check the items of ``cfg.eval_file`` (or ``items``, given in memory by the server) against the index.
    With ``write``: items.jsonl, summary.json, report.html/.md, clean.jsonl in the output directory and the
    ``contamination`` view's Parquet file. The deadline is checked between steps (batches of matching
    statistics, items); ``progress`` gets ("check items", done, total)."""
    idx = open_index(cfg.index_dir, index)
    name = "request"
    if items is None:
        if not cfg.eval_file:
            raise UsageError("--eval FILE is required")
        items = load_eval(cfg.eval_file, cfg.id_field, list(cfg.fields))
        name = eval_name(cfg.eval_file)
    semantic, semantic_stats = (None, None) if cfg.neighbors is None else _semantic(idx, items, name, cfg)

    def step(done: int, total: int) -> None:
        if progress is not None:
            progress("check items", done, total)

    check(deadline)
    records, summary = check_items(
        idx,
        items,
        list(cfg.fields),
        cfg.policy,
        semantic,
        progress=step,
        definitions=cfg.definitions,
        deadline=deadline,
    )
    if semantic_stats is not None:
        summary.setdefault("semantic", {}).update(semantic_stats)
    imp = imp_png = None
    if cfg.results:
        from freqindex.contamination.impact import impact
        from freqindex.report.contamination import impact_png

        imp = impact(records, load_results(cfg.results, items))
        imp_png = impact_png(imp)
        summary["impact"] = imp
    fail_above = cfg.policy.fail_above
    gate_failed = fail_above is not None and summary["dirty_fraction"] > fail_above
    if fail_above is not None:
        summary["gate"] = {"fail_above": fail_above, "failed": gate_failed}
    paths: dict[str, str] = {}
    if write:
        target = Path(cfg.out_dir) if cfg.out_dir else idx.eval_dir(name, "contamination")
        paths = write_outputs(target, records, summary, {it.id: it.row for it in items}, imp, imp_png)
        view_file = idx.publish_eval(name, "contamination", view_table(records, name), target)
        paths["contamination.parquet"] = str(view_file)
    return ContaminationOutcome(records, summary, paths, gate_failed)


def _semantic(
    idx: Index, items: list[EvalItem], name: str, cfg: ContaminationConfig
) -> tuple[dict[str, tuple[float, int]] | None, dict]:
    """Each item's best neighbour (similarity, doc_id) for the report, and how it was found; ``auto``
    without the embed extra (or ``off``) reports none and says why."""
    from freqindex.query.neighbors import neighbors

    if cfg.neighbors == "off":
        return None, {"mode": "off"}
    stats: dict = {}
    try:
        rows = neighbors(
            idx, items, 1, name, mode=cfg.neighbors, candidates=cfg.candidates, skip_long=True, stats=stats
        )
    except MissingExtraError as exc:
        if cfg.neighbors != "auto":
            raise
        return None, {"mode": "off", "reason": str(exc)}
    keep = ("mode", "model", "items_too_long", "candidates_per_item", "windows_embedded")
    best = {r["item_id"]: (r["similarity"], r["doc_id"]) for r in rows}
    return best, {k: stats[k] for k in keep if k in stats}
