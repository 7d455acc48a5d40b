"""Outputs of the per-concept `freqindex analyze`: summary.json, items.parquet, the study's figure, report.html."""

from __future__ import annotations

import html
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from freqindex.fsutil import atomic_write_bytes
from freqindex.report.figures import pyplot, save_png

FIGURE = "accuracy_vs_concept_frequency.png"


def items_schema():
    """The columns of items.parquet and of the ``concept_analysis`` SQL view."""
    import pyarrow as pa

    return pa.schema(
        [
            ("eval", pa.string()),
            ("model", pa.string()),
            ("benchmark", pa.string()),
            ("concept", pa.string()),
            ("concept_key", pa.string()),
            ("accuracy", pa.float64()),  # percent
            ("count", pa.float64()),
            ("log_count", pa.float64()),  # ln(max(count, 1)): the binned fit's x
            ("log10_count", pa.float64()),  # log10(max(count, 1)): the slope's x
            ("bin", pa.int64()),
            ("pruned_count", pa.float64()),
            ("pruned_bin", pa.int64()),
            ("verdict", pa.string()),
        ]
    )


def items_table(rows: pd.DataFrame):
    """``rows`` of run_concept_analysis as an Arrow table with the fixed schema."""
    import pyarrow as pa

    schema = items_schema()
    cols = {}
    for f in schema:
        s = rows[f.name]
        if f.name == "pruned_bin":
            cols[f.name] = pa.array(s.astype("Int64").to_numpy(dtype=object, na_value=None), type=f.type)
        elif f.type == pa.float64():
            v = s.to_numpy(dtype=float)
            cols[f.name] = pa.array(v, type=f.type, mask=np.isnan(v))
        else:
            cols[f.name] = pa.array(s.tolist(), type=f.type)
    return pa.table(cols, schema=schema)


def _curve(binned: dict | None) -> tuple[list[float], list[float]]:
    """The inner bins of a binned fit as (count at the bin's upper edge, mean accuracy)."""
    if not binned:
        return [], []
    pts = [(math.exp(b["hi"]), b["mean"]) for b in binned["bins"][1:-1] if b["mean"] is not None]
    return [p[0] for p in pts], [p[1] for p in pts]


def figure(summary: dict, out: Path) -> str | None:
    """The study's figure: mean accuracy per bin against concept frequency (log axis), one line per model,
    Pearson r in the legend; a second panel for the pruned counts when there are any."""
    models = summary["models"]
    if not models:
        return None
    plt = pyplot()
    source = "/".join(Path(summary["settings"]["results"]).parts[-2:])
    pruned = any(m.get("pruned") and m["pruned"].get("binned") for m in models.values())
    panels = [("binned", "counts")] + ([("pruned", "pruned counts")] if pruned else [])
    fig, axes = plt.subplots(1, len(panels), figsize=(6.2 * len(panels), 4.4), squeeze=False, sharey=True)
    cmap = plt.get_cmap("tab10" if len(models) <= 10 else "tab20")
    for ax, (key, label) in zip(axes[0], panels):
        for i, (name, m) in enumerate(models.items()):
            binned = m["binned"] if key == "binned" else (m.get("pruned") or {}).get("binned")
            xs, ys = _curve(binned)
            if not xs:
                continue
            r = binned.get("pearson_r")
            ax.plot(
                xs,
                ys,
                "o-",
                ms=3.5,
                lw=1.3,
                color=cmap(i % cmap.N),
                label=f"{name} (r={r:.2f})" if r is not None else name,
            )
        ax.set_xscale("log")
        ax.set_xlabel(f"concept frequency ({label}; bin upper edge, log scale)")
        ax.set_title(f"{source}: mean per-class accuracy per frequency bin ({label})", fontsize=9)
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(fontsize=6 if len(models) > 8 else 8, ncol=2 if len(models) > 12 else 1)
    axes[0][0].set_ylabel("mean zero-shot accuracy (%)")
    save_png(fig, out / FIGURE)
    return FIGURE


def _num(v, fmt: str = ".3f") -> str:
    return "n/a" if v is None else format(v, fmt)


def _ci(slope, ci) -> str:
    if slope is None:
        return "n/a"
    return f"{slope:.2f} [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else f"{slope:.2f} [n/a]"


def _concept_list(rows: list[dict], limit: int = 200) -> str:
    e = html.escape
    items = "".join(
        f"<li>{e(str(r.get('benchmark')))}: {e(str(r.get('concept')))}</li>" for r in rows[:limit]
    )
    more = f"<li>... and {len(rows) - limit} more (all in summary.json)</li>" if len(rows) > limit else ""
    return f"<ul>{items}{more}</ul>" if rows else "<p>none</p>"


def report_html(summary: dict, fig: str | None) -> str:
    """report.html: question, data, figure, numbers per model, bins, verdicts with the rule, what did not
    match, warnings, caveats."""
    e = html.escape
    d, st, models, um = summary["data"], summary["settings"], summary["models"], summary["unmatched"]
    title = "/".join(Path(st["results"]).parts[-2:])
    counts = d["counts"]
    if counts["kind"] == "file":
        source = f"the file {e(counts['path'])}, column <code>{e(counts['count_column'])}</code>"
    else:
        source = (
            f"the index {e(counts['index'])} ({counts['documents']:,} documents): <b>{e(counts['count'])}</b> "
            f"document frequency of each concept's forms ({e(counts['source'])}), as <code>freqindex concepts</code> "
            "reports it"
        )
    rows = []
    for name, m in models.items():
        p = m.get("pruned") or {}
        b = m["binned"]
        rows.append(
            f"<tr><td>{e(name)}</td><td>{m['n_concepts']:,}</td><td>{m['accuracy_mean']:.2f}</td>"
            f"<td>{_num(b['pearson_r'])}</td><td>{_num(b['p'], '.2g')}</td><td>{_ci(m['slope'], m['ci'])}</td>"
            f"<td>{_num((m['spearman'] or {}).get('rho'))}</td>"
            f"<td>{_ci(p.get('slope'), p.get('ci')) if p else '-'}</td>"
            f"<td>{_ci((p.get('difference') or {}).get('slope'), (p.get('difference') or {}).get('ci')) if p else '-'}</td>"
            f"<td><b>{e(m['verdict'])}</b></td></tr>"
        )
    bins_rows = []
    for name, m in models.items():
        cells = "".join(f"<td>{b['n']}<br>{_num(b['mean'], '.1f')}</td>" for b in m["binned"]["bins"])
        bins_rows.append(f"<tr><td>{e(name)}</td>{cells}</tr>")
    first = next(iter(models.values()))
    head = "".join(
        f"<th>{i}<br>&le; {math.exp(b['hi']):,.0f}</th>" for i, b in enumerate(first["binned"]["bins"])
    )
    reasons = "".join(
        f"<li><b>{e(n)}</b>: {e(m['verdict'])}: {e(m['verdict_reason'])}</li>" for n, m in models.items()
    )
    missing = "".join(
        f"<h4>{e(model)} lacks {len(lst)}</h4>{_concept_list(lst, 50)}"
        for model, lst in um["missing_results"].items()
    )
    only = ""
    if um["benchmarks_only_in_counts"] or um["benchmarks_only_in_results"]:
        only = (
            f"<p>Benchmarks only in the counts: {e(', '.join(um['benchmarks_only_in_counts']) or 'none')}; "
            f"only in the results: {e(', '.join(um['benchmarks_only_in_results']) or 'none')}.</p>"
        )
    pruned_lack = (
        f"<h3>Concepts without a pruned count ({len(um['no_pruned_count'])})</h3>{_concept_list(um['no_pruned_count'])}"
        if "no_pruned_count" in um
        else ""
    )
    warnings = "".join(f"<li>{e(w)}</li>" for w in summary["warnings"]) or "<li>none</li>"
    pruning = d.get("pruning")
    if st.get("pruned_count_column"):
        control = (
            "<li>Similarity control: the counts after near-duplicates of the test sets were removed, column "
            f"<code>{e(st['pruned_count_column'])}</code>.</li>"
        )
    elif pruning:
        removed = ", ".join(f"{b}: {n:,}" for b, n in pruning["documents_removed_per_benchmark"].items())
        control = (
            f"<li>Similarity control: index documents at least {pruning['threshold']} similar (cosine) to a test "
            f"item of the benchmark are not counted ({e(pruning['test_items'])}; documents removed per "
            f"benchmark: {e(removed)}).</li>"
        )
    else:
        control = "<li>Similarity control: none given, so no verdict can say the effect survives it.</li>"
    img = f'<figure><img src="{e(fig)}" alt="accuracy vs concept frequency"></figure>' if fig else ""
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>freqindex analyze (per concept): {e(title)}</title>
<style>body{{font-family:sans-serif;max-width:1150px;margin:2em auto;line-height:1.45}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:3px 6px;font-size:12px;text-align:right}}td:first-child{{text-align:left}}
img{{max-width:100%}}code{{background:#f4f4f4}}</style></head><body>
<h1>Concept frequency and per-class accuracy ({e(title)})</h1>
<h2>Question</h2><p>{e(summary["question"])}</p>
<h2>Data</h2><ul>
<li>Results: {e(st["results"])}: {d["n_models"]} models, {d["n_concepts"]:,} concepts in {len(d["benchmarks"])} benchmarks
({e(", ".join(d["benchmarks"]))}). Accuracy scale found: <b>{e(d["accuracy_scale_found"])}</b> ({e(d["accuracy_scale_reason"])});
everything below is in percent.</li>
<li>Counts: {source}; {d["concepts_with_zero_count"]:,} concepts have a count of 0. Names matched per benchmark after
<code>{e(counts["normalization"])}</code> normalization.</li>
{control}
</ul>
<h2>Figure</h2>{img}
<p>As in Udandarao et al. (2024): x = ln(max(count, 1)), {st["bins"]} equal-width bin edges from its minimum to its
maximum, a concept's bin = numpy.digitize(x, edges, right=True); each point is a bin's mean accuracy at its upper
edge; the two end bins are left out, and r is Pearson's between the inner edges and their means.</p>
<h2>Numbers</h2>
<p>Slope: accuracy points per tenfold frequency (log10(max(count, 1))) with a fixed effect per benchmark, 95%
percentile interval from {st["bootstrap"]} bootstrap draws over concepts (seed {st["seed"]}). Spearman: count
against accuracy, pooled.</p>
<table><tr><th>model</th><th>concepts</th><th>mean accuracy</th><th>binned r</th><th>p</th><th>slope [95% CI]</th>
<th>Spearman rho</th><th>pruned slope</th><th>drop (raw - pruned)</th><th>verdict</th></tr>{"".join(rows)}</table>
<h3>Bins (concepts, mean accuracy %; header: bin and its upper count)</h3>
<table><tr><th>model</th>{head}</tr>{"".join(bins_rows)}</table>
<h2>Verdict</h2><ul>{reasons}</ul>
<p>Rule: <i>no_frequency_effect</i> when the slope's interval is not above 0; <i>frequency_effect_persists</i> when
it is and the slope on pruned counts is still above 0; <i>explained_by_similarity</i> when the pruned slope is not
above 0 and the drop (same bootstrap draws) is; otherwise (also without a similarity control) <i>inconclusive</i>.</p>
<h2>Unmatched</h2>
{only}
<h3>Concepts with results but no count ({len(um["no_count"])})</h3>{_concept_list(um["no_count"])}
<h3>Concepts with a count but no result ({len(um["no_result"])})</h3>{_concept_list(um["no_result"])}
{pruned_lack}
{missing}
<h2>Warnings</h2><ul>{warnings}</ul>
<h2>Caveats</h2><ul>
<li>Observational: frequency is counted in this corpus, which may not be the models' training data.</li>
<li>Counts depend on how a concept is found (caption text, image tags, both) and on name matching; synonyms and
misspellings not in the vocabulary are missed.</li>
<li>Concepts are treated as independent in the bootstrap; classes of one benchmark share a test set.</li>
<li>Pruning removes only near-copies above the threshold; paraphrases below it stay.</li>
</ul></body></html>"""


def _json_safe(obj):
    if isinstance(obj, dict):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return None if not math.isfinite(float(obj)) else float(obj)
    return obj


def write_concept_outputs(out: Path, rows: pd.DataFrame, summary: dict) -> dict[str, Path]:
    """Write items.parquet, the figure, summary.json and report.html into ``out`` (each atomically)."""
    import pyarrow.parquet as pq

    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    tmp = out / ".items.parquet.tmp"
    pq.write_table(items_table(rows), tmp)
    tmp.replace(out / "items.parquet")
    paths["items.parquet"] = out / "items.parquet"
    fig = figure(summary, out)
    summary = _json_safe({**summary, "figures": {"accuracy_vs_concept_frequency": fig} if fig else {}})
    atomic_write_bytes(out / "summary.json", (json.dumps(summary, indent=2) + "\n").encode())
    paths["summary.json"] = out / "summary.json"
    atomic_write_bytes(out / "report.html", report_html(summary, fig).encode())
    paths["report.html"] = out / "report.html"
    if fig:
        paths["figure"] = out / fig
    return paths


__all__ = ["write_concept_outputs", "items_table", "items_schema", "figure", "report_html", "FIGURE"]
