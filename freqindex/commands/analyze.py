"""`analyze`: is the frequency effect a similarity effect? Concepts, frequencies, similarity, fits,
verdicts, figures and the report."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from freqindex import settings
from freqindex.errors import UsageError
from freqindex.evals import eval_name, load_eval, load_results
from freqindex.extras import require
from freqindex.report.tables import write_table

from .common import eval_dir, open_index

AUTO_CONCEPTS = "automatic (nouns and proper nouns by spaCy's part-of-speech tagger, stop words dropped)"


@dataclass(frozen=True)
class AnalyzeConfig:
    """Concepts come from exactly one of ``concept_field`` (an item field), ``concepts`` (a mapping file:
    id, concept) and ``auto_concepts``. ``out_dir``: default ``INDEX/evals/NAME/analysis``."""

    index_dir: str = ""
    eval_file: str = ""
    results: str = ""
    out_dir: str | None = None
    concept_field: str | None = None
    concepts: str | None = None
    auto_concepts: bool = False
    fields: tuple[str, ...] | None = None
    id_field: str = settings.DEFAULT_ID_FIELD
    aggregate: str = "min"
    similarity: str = "auto"
    prune_threshold: float = 0.9
    prune_sweep: tuple[float, ...] | None = None
    bootstrap: int = 200
    seed: int = 0

    def validate(self) -> AnalyzeConfig:
        if not self.index_dir or not self.eval_file or not self.results:
            raise UsageError("give the index DIR, --eval FILE and --results FILE")
        chosen = [x for x in (self.concept_field, self.concepts, self.auto_concepts or None) if x]
        if len(chosen) != 1:
            raise UsageError(
                "say where concepts come from: exactly one of --concept-field, --concepts, --auto-concepts"
            )
        if self.bootstrap < 20 or self.bootstrap > 100_000:
            raise UsageError("--bootstrap takes 20 to 100000 draws")
        if any(not 0 < t <= 1 for t in self.prune_sweep or ()):
            raise UsageError("--prune-sweep thresholds must lie in (0, 1]")
        return self


@dataclass(frozen=True)
class AnalyzeOutcome:
    rows: list[dict]  # one per (item, model): correctness, concepts, frequency, similarity, ...
    summary: dict  # what summary.json holds (schema in freqindex/analysis/run.py)
    paths: dict[str, str]  # summary.json, items.parquet, report.html, analysis.parquet (the SQL view's)


def run_analyze(cfg: AnalyzeConfig, *, progress: Callable[[str], None] | None = None) -> AnalyzeOutcome:
    """Load the eval set, results and concepts, run the analysis (``progress`` gets each stage's name) and
    write summary.json, items.parquet, figures, report.html and the ``analysis_items`` view's file."""
    require("statsmodels.api", "analyze", "analyze")  # before any work: the fits need it
    from freqindex.analysis import core
    from freqindex.analysis.run import run_analysis
    from freqindex.report.analysis import items_table, write_outputs

    step = progress or (lambda stage: None)
    idx = open_index(cfg.index_dir)
    items = load_eval(cfg.eval_file, cfg.id_field, list(cfg.fields) if cfg.fields else None)
    name = eval_name(cfg.eval_file)
    res = load_results(cfg.results, items)
    step("concepts")
    if cfg.concept_field:
        item_concepts, how = (
            core.concepts_from_field(items, cfg.concept_field),
            f"the field {cfg.concept_field!r}",
        )
    elif cfg.concepts:
        item_concepts, how = core.concepts_from_map(cfg.concepts, items), f"from {cfg.concepts}"
    else:
        item_concepts, how = core.auto_concepts(items), AUTO_CONCEPTS
    rows, summary = run_analysis(
        idx,
        items,
        res,
        item_concepts,
        eval_name=name,
        aggregate=cfg.aggregate,
        similarity=cfg.similarity,
        prune_threshold=cfg.prune_threshold,
        prune_sweep=list(cfg.prune_sweep) if cfg.prune_sweep else None,
        n_boot=cfg.bootstrap,
        seed=cfg.seed,
        progress=step,
    )
    summary["settings"]["concepts"] = how
    target = Path(cfg.out_dir) if cfg.out_dir else eval_dir(idx, name) / "analysis"
    paths = {k: str(v) for k, v in write_outputs(target, rows, summary, name).items()}
    view_file = eval_dir(idx, name) / "analysis.parquet"
    view_file.parent.mkdir(parents=True, exist_ok=True)
    paths["analysis.parquet"] = str(write_table(items_table(rows, name), view_file))
    written = json.loads(Path(paths["summary.json"]).read_text())
    return AnalyzeOutcome(rows, written, paths)
