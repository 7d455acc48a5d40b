"""Outputs of `freqindex analyze`: summary.json, items.parquet, PNG figures and report.html."""

from __future__ import annotations

import html
import json
from pathlib import Path

import numpy as np

from freqindex.fsutil import atomic_write_bytes
from freqindex.report.figures import pyplot, save_png

ITEM_COLUMNS = (
    "id",
    "model",
    "correct",
    "concepts",
    "primary_concept",
    "frequency",
    "log10_frequency",
    "pruned_frequency",
    "similarity",
    "similarity_doc_id",
    "longest_match_chars",
    "longest_match_fraction",
)


def items_table(rows: list[dict], eval_name: str):
    import pyarrow as pa

    schema = pa.schema(
        [
            ("eval", pa.string()),
            ("id", pa.string()),
            ("model", pa.string()),
            ("correct", pa.float64()),
            ("concepts", pa.list_(pa.string())),
            ("primary_concept", pa.string()),
            ("frequency", pa.float64()),
            ("log10_frequency", pa.float64()),
            ("pruned_frequency", pa.float64()),
            ("similarity", pa.float64()),
            ("similarity_doc_id", pa.int64()),
            ("longest_match_chars", pa.int64()),
            ("longest_match_fraction", pa.float64()),
        ]
    )
    return pa.Table.from_pylist([{"eval": eval_name, **r} for r in rows], schema=schema)


def figures(rows: list[dict], summary: dict, out: Path) -> dict[str, str]:
    plt = pyplot()
    models = list(summary["models"])
    paths = {}
    if not rows or not models:
        return paths
    by_model = {m: [r for r in rows if r["model"] == m] for m in models}
    # 1. accuracy vs log frequency, fitted curve, coloured by similarity tercile
    n = len(models)
    fig, axes = plt.subplots(1, n, figsize=(4.2 * n, 3.6), squeeze=False, sharey=True)
    for ax, m in zip(axes[0], models):
        rs = by_model[m]
        lf = np.array([r["log10_frequency"] for r in rs])
        y = np.array([r["correct"] for r in rs])
        s = np.array([r["similarity"] for r in rs])
        cuts = np.quantile(s, [1 / 3, 2 / 3]) if len(s) else [0, 0]
        terc = np.searchsorted(cuts, s, side="right")
        for t, (label, color) in enumerate(zip(("low", "mid", "high"), ("#4477aa", "#ddaa33", "#bb5566"))):
            sel = terc == t
            if sel.sum() < 5:
                continue
            edges = np.unique(np.quantile(lf[sel], np.linspace(0, 1, 6)))
            if len(edges) < 2:
                continue
            b = np.clip(np.searchsorted(edges, lf[sel], side="right") - 1, 0, len(edges) - 2)
            xs = [lf[sel][b == k].mean() for k in range(len(edges) - 1) if (b == k).any()]
            ys = [y[sel][b == k].mean() for k in range(len(edges) - 1) if (b == k).any()]
            ax.plot(xs, ys, "o-", color=color, alpha=0.8, label=f"similarity {label}")
        f = summary["models"][m]["frequency"]
        if f.get("slope") is not None and f.get("intercept") is not None and len(lf):
            grid = np.linspace(lf.min(), lf.max(), 50)
            ax.plot(
                grid,
                1 / (1 + np.exp(-(f["intercept"] + f["slope"] * grid))),
                "k--",
                lw=1.5,
                label="logistic fit",
            )
        ax.set_title(f"{m}\n{summary['models'][m]['verdict']}", fontsize=9)
        ax.set_xlabel("log10(1 + concept document frequency)")
        ax.set_ylim(-0.02, 1.02)
    axes[0][0].set_ylabel("accuracy")
    axes[0][0].legend(fontsize=7)
    paths["accuracy_vs_frequency"] = "accuracy_vs_frequency.png"
    save_png(fig, out / paths["accuracy_vs_frequency"])
    # 2. similarity vs log frequency (one point per item)
    rs = by_model[models[0]]
    fig, ax = plt.subplots(figsize=(5, 3.8))
    ax.scatter([r["log10_frequency"] for r in rs], [r["similarity"] for r in rs], s=6, alpha=0.4)
    ax.set_xlabel("log10(1 + concept document frequency)")
    ax.set_ylabel(f"similarity ({summary['data']['similarity']})")
    ax.set_title("Are frequent concepts' items more often near-copied?", fontsize=9)
    paths["similarity_vs_frequency"] = "similarity_vs_frequency.png"
    save_png(fig, out / paths["similarity_vs_frequency"])
    # 3. slopes raw / controlled / pruned with intervals
    fig, ax = plt.subplots(figsize=(max(5, 1.6 * n + 2), 3.8))
    kinds = (
        ("frequency", "raw"),
        ("frequency_controlled", "controlled for similarity"),
        ("pruned", "pruned"),
    )
    for j, (key, label) in enumerate(kinds):
        xs, ys, lo, hi = [], [], [], []
        for i, m in enumerate(models):
            d = summary["models"][m].get(key) or {}
            if d.get("slope") is None:
                continue
            xs.append(i + (j - 1) * 0.22)
            ys.append(d["slope"])
            ci = d.get("ci") or [d["slope"], d["slope"]]
            lo.append(d["slope"] - ci[0])
            hi.append(ci[1] - d["slope"])
        ax.errorbar(xs, ys, yerr=[lo, hi], fmt="o", capsize=3, label=label)
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_xticks(range(n), models, rotation=20, fontsize=8)
    ax.set_ylabel("slope per log10 frequency (95% CI)")
    ax.legend(fontsize=7)
    paths["slopes"] = "slopes.png"
    save_png(fig, out / paths["slopes"])
    return paths


def _ci(d: dict | None) -> str:
    if not d or d.get("slope") is None:
        return "n/a"
    ci = d.get("ci")
    return f"{d['slope']:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else f"{d['slope']:.3f} [n/a]"


def report_html(summary: dict, figs: dict[str, str]) -> str:
    e = html.escape
    d = summary["data"]
    st = summary["settings"]
    rows = []
    for m, r in summary["models"].items():
        lr = r.get("lr_test") or {}
        lr_p = "" if lr.get("p") is None else f"{lr['p']:.3g}"
        rows.append(
            f"<tr><td>{e(m)}</td><td>{r['n_items']}</td><td>{(r['accuracy'] or 0):.3f}</td>"
            f"<td>{_ci(r['frequency'])}</td><td>{_ci(r['similarity'])}</td><td>{_ci(r['frequency_controlled'])}</td>"
            f"<td>{_ci(r['similarity_controlled'])}</td><td>{lr_p}</td>"
            f"<td>{_ci(r.get('pruned'))}</td><td><b>{e(r['verdict'])}</b></td></tr>"
        )
    strata = []
    for m, r in summary["models"].items():
        for s in r.get("stratified", []):
            strata.append(
                f"<tr><td>{e(m)}</td><td>{s['similarity_lo']:.3f} - {s['similarity_hi']:.3f}</td>"
                f"<td>{s['n']}</td><td>{_ci(s)}</td></tr>"
            )
    dist_rows = []
    for m, r in summary["models"].items():
        dd = r.get("distance")
        if not dd:
            continue
        lr = dd.get("lr_test") or {}
        lr_p = "" if lr.get("p") is None else f"{lr['p']:.3g}"
        rho = (dd["accuracy_vs_distance"].get("spearman") or {}).get("rho")
        dist_rows.append(
            f"<tr><td>{e(m)}</td><td>{_ci(dd['accuracy_vs_distance'])}</td><td>{'' if rho is None else f'{rho:.3f}'}</td>"
            f"<td>{_ci(dd['frequency_controlled'])}</td><td>{_ci(dd['distance_controlled'])}</td><td>{lr_p}</td>"
            f"<td><b>{'yes' if dd['frequency_survives'] else 'no'}</b></td></tr>"
        )
    dist_html = (
        "<h2>Distance from the corpus</h2><p>Each item's mean per-token ∞-gram surprisal against the index (bits per "
        "token; higher: farther from the corpus). Does accuracy track distance, and does the frequency slope "
        "survive with distance in the model (its interval above 0 and the likelihood-ratio test of adding "
        "frequency significant)?</p><table><tr><th>model</th><th>accuracy vs distance</th><th>Spearman rho</th>"
        "<th>frequency | distance</th><th>distance | frequency</th><th>LR test p (adding frequency)</th>"
        f"<th>frequency effect survives</th></tr>{''.join(dist_rows)}</table>"
        if dist_rows
        else ""
    )
    reasons = "".join(
        f"<li><b>{e(m)}</b>: {e(r['verdict'])}: {e(r['verdict_reason'])}</li>"
        for m, r in summary["models"].items()
    )
    imgs = "".join(
        f'<figure><img src="{e(p)}" alt="{e(k)}"><figcaption>{e(k.replace("_", " "))}</figcaption></figure>'
        for k, p in figs.items()
    )
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>freqindex analyze: {e(d["eval"])}</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto;line-height:1.45}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:3px 7px;font-size:13px}}img{{max-width:100%}}figure{{margin:1em 0}}</style></head><body>
<h1>Frequency effect or similarity effect? ({e(d["eval"])})</h1>
<h2>Question</h2><p>{e(summary["question"])}</p>
<h2>Data</h2><ul>
<li>{d["n_items"]:,} eval items, {d["n_items_with_concepts"]:,} with at least one concept; {d["n_concepts"]:,} distinct concepts
({d["concepts_with_zero_frequency"]:,} never in the corpus).</li>
<li>Index: {e(d["index"]["path"])} ({d["index"]["documents"]:,} documents; manifest sha256 {e(d["index"]["manifest_sha256"][:16])}).</li>
<li>Frequency: {e(st["frequency"])}, several concepts per item aggregated by <b>{e(st["aggregate"])}</b>.</li>
<li>Similarity: <b>{e(d["similarity"])}</b> (neighbors: max cosine similarity of the item to a corpus document;
verbatim: fraction of the item inside its longest verbatim corpus match).</li>
<li>Pruning: documents with similarity at least {st["prune_threshold"]} to any item removed:
{", ".join(f"{k}: {v:,} documents" for k, v in d["pruned_documents"].items())}.</li>
</ul>
<h2>Figures</h2>{imgs}
<h2>Numbers</h2><p>Logistic-regression slopes with 95% bootstrap intervals over concepts ({st["bootstrap"]} draws).
Frequency slopes are per unit of log10(1 + document frequency).</p>
<table><tr><th>model</th><th>items</th><th>accuracy</th><th>frequency</th><th>similarity</th><th>frequency | similarity</th>
<th>similarity | frequency</th><th>LR test p (adding frequency)</th><th>pruned frequency</th><th>verdict</th></tr>{"".join(rows)}</table>
{dist_html}
<h3>Frequency slope within similarity terciles</h3>
<table><tr><th>model</th><th>similarity</th><th>items</th><th>slope [95% CI]</th></tr>{"".join(strata)}</table>
<h2>Verdict</h2><ul>{reasons}</ul>
<p>Rule: <i>no_frequency_effect</i> when the raw slope's interval is not above 0; <i>frequency_effect_persists</i>
when the slope stays significantly positive with similarity in the model, adding frequency is significant
(likelihood ratio test), and it survives pruning; <i>explained_by_similarity</i> when it vanishes under the
control while similarity's own coefficient is significantly positive; otherwise <i>inconclusive</i>.</p>
<h2>Caveats</h2><ul>
<li>Observational: concept frequency and similarity are measured on this index, which may not be the model's
training corpus; a missing effect here says nothing about data the index does not hold.</li>
<li>Concepts are {e(st.get("concepts", "as given"))}; automatic concepts (nouns) are a proxy for what an item is about.</li>
<li>Near-copies are found by {e(d["similarity"])} similarity; paraphrases below the threshold stay in the pruned corpus.</li>
<li>Items sharing a concept are resampled together (bootstrap over concepts); intervals assume concepts are independent.</li>
</ul></body></html>"""


def write_outputs(out: Path, rows: list[dict], summary: dict, eval_name: str) -> dict[str, Path]:
    import pyarrow.parquet as pq

    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    table = items_table(rows, eval_name)
    tmp = out / ".items.parquet.tmp"
    pq.write_table(table, tmp)
    tmp.replace(out / "items.parquet")
    paths["items.parquet"] = out / "items.parquet"
    figs = figures(rows, summary, out)
    summary = {**summary, "figures": figs}
    atomic_write_bytes(out / "summary.json", (json.dumps(summary, indent=2) + "\n").encode())
    paths["summary.json"] = out / "summary.json"
    atomic_write_bytes(out / "report.html", report_html(summary, figs).encode())
    paths["report.html"] = out / "report.html"
    return paths
