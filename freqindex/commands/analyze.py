"""`analyze`: is the frequency effect a similarity effect? Per item (concepts, frequencies, similarity, fits,
verdicts, figures and the report) or per concept (per-class accuracy against class frequency, the study's
binned fit, a fixed-effect slope, the pruned-count control)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from freqindex import settings
from freqindex.errors import UsageError
from freqindex.evals import eval_name, load_eval, load_results
from freqindex.extras import require

from .common import open_index

AUTO_CONCEPTS = "automatic (nouns and proper nouns by spaCy's part-of-speech tagger, stop words dropped)"
PER_ITEM_ONLY = ("eval_file", "results", "concept_field", "auto_concepts", "prune_sweep", "covariate")


@dataclass(frozen=True)
class AnalyzeConfig:
    """Per item (``index_dir``, ``eval_file``, ``results``): concepts come from exactly one of
    ``concept_field`` (an item field), ``concepts`` (a mapping file: id, concept) and ``auto_concepts``;
    ``out_dir`` defaults to ``INDEX/evals/NAME/analysis``. Per concept (``concept_results``): frequencies
    from ``index_dir`` + ``concepts`` (the class-name vocabulary) or from ``concept_counts``; ``out_dir``
    defaults to ``INDEX/evals/NAME/concept_analysis``. ``bootstrap`` None: 200 per item, 1000 per concept."""

    index_dir: str | None = None
    eval_file: str | None = None
    results: str | None = None
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
    bootstrap: int | None = None
    seed: int = 0
    covariate: str | None = None
    neighbors: str = "auto"
    candidates: int | None = None
    # per concept
    concept_results: str | None = None
    concept_counts: str | None = None
    count: str = "auto"
    count_column: str = "count"
    pruned_count_column: str | None = None
    test_items: str | None = None
    bins: int = 12
    accuracy_scale: str = "auto"
    exact: bool = False

    @property
    def per_concept(self) -> bool:
        return self.concept_results is not None or self.concept_counts is not None

    def validate(self) -> AnalyzeConfig:
        if self.per_concept:
            if any(getattr(self, k) for k in PER_ITEM_ONLY):
                raise UsageError(
                    "--eval, --results, --concept-field, --auto-concepts, --prune-sweep and --covariate belong "
                    "to the per-item analysis; the per-concept one takes --concept-results"
                )
            return self
        if self.index_dir is None or self.eval_file is None or self.results is None:
            raise UsageError(
                "analyze needs DIR, --eval and --results (or --concept-results for the per-concept analysis)"
            )
        chosen = [x for x in (self.concept_field, self.concepts, self.auto_concepts or None) if x]
        if len(chosen) != 1:
            raise UsageError(
                "say where concepts come from: exactly one of --concept-field, --concepts, --auto-concepts"
            )
        if self.bootstrap is not None and not 20 <= self.bootstrap <= 100_000:
            raise UsageError("--bootstrap takes 20 to 100000 draws")
        if any(not 0 < t <= 1 for t in self.prune_sweep or ()):
            raise UsageError("--prune-sweep thresholds must lie in (0, 1]")
        return self


@dataclass(frozen=True)
class AnalyzeOutcome:
    rows: list[dict]  # per item: one per (item, model); per concept: one per (model, benchmark, concept)
    summary: dict  # what summary.json holds (schemas in freqindex/analysis/run.py and per_concept.py)
    paths: dict[str, str]  # summary.json, report.html, ... and the SQL view's file when on an index
    per_concept: bool


def run_analyze(cfg: AnalyzeConfig, *, progress: Callable[[str], None] | None = None) -> AnalyzeOutcome:
    """Run the analysis ``cfg`` asks for (``progress`` gets each stage's name) and write its outputs."""
    step = progress or (lambda stage: None)
    if cfg.per_concept:
        return _run_per_concept(cfg, step)
    return _run_per_item(cfg, step)


def _run_per_item(cfg: AnalyzeConfig, step: Callable[[str], None]) -> AnalyzeOutcome:
    """Load the eval set, results and concepts, run the analysis and write summary.json, items.parquet,
    figures, report.html and the ``analysis_items`` view's file."""
    require("statsmodels.api", "analyze", "analyze")  # before any work: the fits need it
    from freqindex.analysis import core
    from freqindex.analysis.run import run_analysis
    from freqindex.report.analysis import items_table, write_outputs

    idx = open_index(cfg.index_dir)
    items = load_eval(cfg.eval_file, cfg.id_field, list(cfg.fields) if cfg.fields else None)
    name = eval_name(cfg.eval_file)
    res = load_results(cfg.results, items)
    step("concepts")
    if cfg.concept_field:
        item_concepts = core.concepts_from_field(items, cfg.concept_field)
        how = f"the field {cfg.concept_field!r}"
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
        n_boot=200 if cfg.bootstrap is None else cfg.bootstrap,
        seed=cfg.seed,
        progress=step,
        covariate=cfg.covariate,
        neighbors_mode=cfg.neighbors,
        candidates=cfg.candidates,
    )
    summary["settings"]["concepts"] = how
    target = Path(cfg.out_dir) if cfg.out_dir else idx.eval_dir(name, "analysis")
    paths = {k: str(v) for k, v in write_outputs(target, rows, summary, name).items()}
    paths["analysis.parquet"] = str(idx.publish_eval(name, "analysis", items_table(rows, name), target))
    written = json.loads(Path(paths["summary.json"]).read_text())
    return AnalyzeOutcome(rows, written, paths, per_concept=False)


def _run_per_concept(cfg: AnalyzeConfig, step: Callable[[str], None]) -> AnalyzeOutcome:
    """`analyze --concept-results`: run_concept_analysis, its outputs, and (on an index) the
    ``concept_analysis`` SQL view's file."""
    from freqindex.analysis.concept_run import run_concept_analysis
    from freqindex.analysis.per_concept import ConceptAnalysisConfig
    from freqindex.report.per_concept import items_table, write_concept_outputs

    if cfg.concept_results is None:
        raise UsageError("--concept-counts goes with --concept-results RESULTS")
    name = Path(cfg.concept_results).name.split(".")[0]
    concept_cfg = ConceptAnalysisConfig(
        results=cfg.concept_results,
        counts=cfg.concept_counts,
        index=cfg.index_dir,
        vocabulary=cfg.concepts,
        count=cfg.count,
        count_column=cfg.count_column,
        pruned_count_column=cfg.pruned_count_column,
        test_items=cfg.test_items,
        prune_threshold=cfg.prune_threshold,
        bins=cfg.bins,
        bootstrap=1000 if cfg.bootstrap is None else cfg.bootstrap,
        seed=cfg.seed,
        accuracy_scale=cfg.accuracy_scale,
        exact=cfg.exact,
        name=name,
    )
    concept_cfg.validate()
    if cfg.out_dir is None and cfg.index_dir is None:
        raise UsageError("say where to write the outputs with --out DIR")
    step("per-concept analysis")
    rows, summary = run_concept_analysis(concept_cfg, progress=step)
    idx = open_index(cfg.index_dir) if cfg.index_dir is not None else None
    target = Path(cfg.out_dir) if cfg.out_dir else idx.eval_dir(name, "concept_analysis")
    paths = {k: str(v) for k, v in write_concept_outputs(target, rows, summary).items()}
    if (
        idx is not None
    ):  # the `concept_analysis` SQL view reads the declared evals/NAME/concept_analysis.parquet
        view = idx.publish_eval(name, "concept_analysis", items_table(rows), target)
        paths["concept_analysis.parquet"] = str(view)
    written = json.loads(Path(paths["summary.json"]).read_text())
    return AnalyzeOutcome(rows, written, paths, per_concept=True)
