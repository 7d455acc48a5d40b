"""Outputs of a contamination check: items.jsonl, summary.json, report.md, report.html, clean.jsonl."""

from __future__ import annotations

import html
import json
from pathlib import Path

from freqindex.fsutil import atomic_write_bytes
from freqindex.report.figures import png_base64, pyplot


def _hist_png(records: list[dict]) -> str | None:
    covs = [r["coverage"] for r in records if r["coverage"] is not None]
    if not covs:
        return None
    fig, ax = pyplot().subplots(figsize=(6, 3))
    ax.hist(covs, bins=20, range=(0, 1), color="#4477aa")
    ax.set_xlabel("coverage (fraction of item tokens inside a corpus match)")
    ax.set_ylabel("items")
    ax.set_yscale("log")
    return png_base64(fig)


def impact_png(imp: dict) -> str | None:
    """Accuracy per model as items above a coverage are removed (base64 PNG), or None without results."""
    if not imp["models"]:
        return None
    fig, ax = pyplot().subplots(figsize=(6, 3.2))
    for model, d in imp["models"].items():
        xs = [s["coverage_below"] for s in d["sweep"] if s["accuracy"] is not None]
        ys = [s["accuracy"] for s in d["sweep"] if s["accuracy"] is not None]
        ax.plot(xs, ys, marker="o", label=model)
    ax.set_xlabel("keep items with coverage below")
    ax.set_ylabel("accuracy")
    ax.legend(fontsize=7)
    return png_base64(fig)


def _dirtiest(records: list[dict], n: int = 25) -> list[dict]:
    checkable = [r for r in records if r["coverage"] is not None]
    return sorted(checkable, key=lambda r: (-r["coverage"], -r["longest_match"]["tokens"], r["id"]))[:n]


def _rules_line(summary: dict) -> str:
    """How the items were judged: by coverage, by the whole-item rule for short items, or not at all."""
    r = summary["rules"]
    floors = sorted(set(summary["settings"].get("min_short_len_resolved", {}).values()))
    floor = f" of at least {'/'.join(map(str, floors))} tokens" if floors else ""
    return (
        f"Judged by coverage: {r['coverage']}; short items{floor} judged by a whole-item match: "
        f"{r['whole_item']}; too short to judge (uncheckable): {r['too_short']}."
    )


def markdown(summary: dict, records: list[dict]) -> str:
    b = summary["buckets"]
    lines = [
        "# Contamination report",
        "",
        f"{summary['n_items']} items: **{b['dirty']} dirty**, {b['suspicious']} suspicious, {b['clean']} clean, "
        f"{b['uncheckable']} uncheckable; dirty fraction {summary['dirty_fraction']:.4f}.",
        "",
        "| definition | flagged | not applicable |",
        "| --- | --- | --- |",
    ]
    for name, d in summary.get("definitions", {}).items():
        lines.append(f"| {name} | {d['flagged']} | {d['not_applicable']} |")
    lines += ["", f"Boilerplate matches ignored: {summary['boilerplate_matches_ignored']}.", ""]
    if summary.get("rules"):
        lines += [_rules_line(summary), ""]
    if summary.get("gate"):
        g = summary["gate"]
        lines.append(
            f"Gate: {'FAILED' if g['failed'] else 'passed'} (dirty fraction {summary['dirty_fraction']:.4f}, "
            f"fail above {g['fail_above']})."
        )
        lines.append("")
    lines += ["## Dirtiest items", ""]
    for r in _dirtiest(records, 10):
        ev = r.get("evidence") or {}
        lines.append(
            f"- `{r['id']}` coverage {r['coverage']:.2f}, longest match {r['longest_match']['chars']} chars"
            + (f", doc {ev.get('doc_id')} ({ev.get('ext_id') or ev.get('source')})" if ev else "")
        )
        if ev.get("snippet"):
            lines.append(f"  > {ev['snippet']}")
    return "\n".join(lines) + "\n"


def html_report(
    summary: dict, records: list[dict], impact: dict | None = None, impact_png: str | None = None
) -> str:
    esc = html.escape
    b = summary["buckets"]
    png = _hist_png(records)
    rows = []
    for r in _dirtiest(records):
        ev = r.get("evidence") or {}
        snippet = esc(ev.get("snippet", "")).replace("«", "<mark>").replace("»", "</mark>")
        rows.append(
            f"<tr><td>{esc(r['id'])}</td><td>{r['bucket']}</td><td>{r['coverage']:.3f}</td>"
            f"<td>{r['longest_match']['chars']}</td><td>{esc(str(ev.get('doc_id', '')))}</td>"
            f"<td>{esc(str(ev.get('ext_id') or ev.get('source') or ''))}</td><td>{snippet}</td></tr>"
        )
    defs = "".join(
        f"<tr><td>{esc(k)}</td><td>{v['flagged']}</td><td>{v['not_applicable']}</td></tr>"
        for k, v in summary.get("definitions", {}).items()
    )
    impact_html = ""
    if impact:
        irows = "".join(
            f"<tr><td>{esc(m)}</td><td>{d['n_all']}</td><td>{d['accuracy_all']:.4f}</td><td>{d['n_clean']}</td>"
            f"<td>{d['accuracy_clean']:.4f}</td><td>{d['gain']:+.4f}</td><td>[{d['gain_ci'][0]:+.4f}, {d['gain_ci'][1]:+.4f}]</td></tr>"
            for m, d in impact["models"].items()
        )
        impact_html = (
            "<h2>Impact on reported accuracy</h2><p>Estimated performance gain = accuracy on all items "
            "minus accuracy on clean items, with a bootstrap 95% interval.</p><table><tr><th>model</th>"
            "<th>n</th><th>accuracy (all)</th><th>n clean</th><th>accuracy (clean)</th><th>gain</th>"
            f"<th>95% CI</th></tr>{irows}</table>"
            + (f'<img alt="impact" src="data:image/png;base64,{impact_png}">' if impact_png else "")
        )
    settings = esc(json.dumps(summary["settings"], indent=2))
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>Contamination report</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto;line-height:1.4}}
table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:4px 8px;vertical-align:top}}
mark{{background:#ffd54f}}</style></head><body>
<h1>Contamination report</h1>
<p>Index <code>{esc(summary["index"]["path"])}</code> (manifest sha256 {summary["index"]["manifest_sha256"][:16]}…),
{summary["n_items"]} items.</p>
<table><tr><th>dirty</th><th>suspicious</th><th>clean</th><th>uncheckable</th><th>dirty fraction</th></tr>
<tr><td>{b["dirty"]}</td><td>{b["suspicious"]}</td><td>{b["clean"]}</td><td>{b["uncheckable"]}</td>
<td>{summary["dirty_fraction"]:.4f}</td></tr></table>
<h2>Coverage</h2>{f'<img alt="coverage histogram" src="data:image/png;base64,{png}">' if png else "<p>No checkable item.</p>"}
<h2>Classic definitions</h2><table><tr><th>definition</th><th>flagged</th><th>not applicable</th></tr>{defs}</table>
<p>Boilerplate matches ignored: {summary["boilerplate_matches_ignored"]}.</p>
<p>{esc(_rules_line(summary)) if summary.get("rules") else ""}</p>
<h2>Dirtiest items, with evidence</h2>
<table><tr><th>id</th><th>bucket</th><th>coverage</th><th>longest match (chars)</th><th>doc_id</th><th>document</th>
<th>snippet (matched span marked)</th></tr>{"".join(rows)}</table>
{impact_html}
<h2>Settings</h2><pre>{settings}</pre></body></html>
"""


def write_outputs(
    outdir: str | Path,
    records: list[dict],
    summary: dict,
    rows_by_id: dict[str, dict],
    impact: dict | None = None,
    impact_png: str | None = None,
) -> dict[str, str]:
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    files = {
        "items.jsonl": "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records),
        "summary.json": json.dumps(summary, indent=2) + "\n",
        "report.md": markdown(summary, records),
        "report.html": html_report(summary, records, impact, impact_png),
        "clean.jsonl": "".join(
            json.dumps(rows_by_id[r["id"]], ensure_ascii=False) + "\n"
            for r in records
            if r["bucket"] != "dirty"
        ),
    }
    for name, text in files.items():
        atomic_write_bytes(out / name, text.encode("utf-8"))
    return {name: str(out / name) for name in files}


VIEW_COLUMNS = (
    ("eval", "string"),
    ("id", "string"),
    ("bucket", "string"),
    ("coverage", "float64"),
    ("longest_match_chars", "int64"),
    ("gpt3", "bool_"),
    ("palm", "bool_"),
    ("ig_mini", "bool_"),
    ("max_similarity", "float64"),
    ("evidence_doc_id", "int64"),
)


def view_table(records: list[dict], eval_name: str):
    """The flat per-item table behind the ``contamination`` SQL view (one row per item)."""
    import pyarrow as pa

    schema = pa.schema([(name, getattr(pa, kind)()) for name, kind in VIEW_COLUMNS])
    flat = [
        {
            "eval": eval_name,
            "id": r["id"],
            "bucket": r["bucket"],
            "coverage": r["coverage"],
            "longest_match_chars": r["longest_match"]["chars"],
            "gpt3": r["definitions"].get("gpt3"),
            "palm": r["definitions"].get("palm"),
            "ig_mini": r["definitions"].get("ig_mini"),
            "max_similarity": (r.get("semantic") or {}).get("max_similarity"),
            "evidence_doc_id": (r.get("evidence") or {}).get("doc_id"),
        }
        for r in records
    ]
    return pa.Table.from_pylist(flat, schema=schema)
