"""Outputs of `freqindex frontier`: kept.jsonl, rejected.jsonl, scores.parquet, summary.json, frontier.png and
report.html (the candidates' distribution against the corpus profile)."""

from __future__ import annotations

import html
import json
from pathlib import Path

import numpy as np

from freqindex.fsutil import atomic_write_bytes
from freqindex.query.distance import MEASURES
from freqindex.report.figures import pyplot, save_png

_COLORS = {"profile": "#999999", "kept": "#228833", "rejected": "#cc3311"}


def scores_table(records: list[dict]):
    import pyarrow as pa

    cols = {
        "id": pa.string(),
        "kept": pa.bool_(),
        "reason": pa.string(),
        "measure": pa.string(),
        "score": pa.float64(),
        "se": pa.float64(),
        "percentile": pa.float64(),
        "n_tokens": pa.int64(),
        "scored_tokens": pa.int64(),
    }
    for m in MEASURES:
        cols[m] = pa.float64()
    rows = []
    for r in records:
        row = {k: r.get(k) for k in ("id", "kept", "reason", "measure", "score", "se", "percentile")}
        row.update({k: r["measures"].get(k) for k in ("n_tokens", "scored_tokens", *MEASURES)})
        rows.append(row)
    return pa.Table.from_pylist(rows, schema=pa.schema(list(cols.items())))


def figure(records: list[dict], profile: list[dict], band: dict, out: Path) -> str:
    """Left: the band measure, candidates (kept / rejected) against the profile, with the band's edges.
    Right: mean surprisal against the novel 13-gram share, the two views of distance."""
    plt = pyplot()
    m = band["measure"]
    fig, axes = plt.subplots(1, 2, figsize=(10.5, 3.9))
    ax = axes[0]
    prof = np.array([r[m] for r in profile if r.get(m) is not None], dtype=float)
    kept = np.array([r["score"] for r in records if r["kept"] and r["score"] is not None], dtype=float)
    rej = np.array([r["score"] for r in records if not r["kept"] and r["score"] is not None], dtype=float)
    allv = np.concatenate([prof, kept, rej]) if prof.size + kept.size + rej.size else np.zeros(1)
    bins = np.linspace(np.nanmin(allv), np.nanmax(allv) + 1e-9, 40)
    for vals, label in ((prof, "corpus profile"), (kept, "kept"), (rej, "rejected")):
        if vals.size:
            key = "profile" if label == "corpus profile" else label
            ax.hist(
                vals,
                bins=bins,
                density=True,
                alpha=0.45,
                color=_COLORS[key],
                label=f"{label} ({vals.size:,})",
            )
    for edge in (band.get("lo"), band.get("hi")):
        if edge is not None:
            ax.axvline(edge, color="black", ls="--", lw=1)
    ax.set_xlabel(m.replace("_", " "))
    ax.set_ylabel("density")
    ax.set_title("candidates against the corpus profile", fontsize=9)
    ax.legend(fontsize=7)
    ax = axes[1]
    for group, rows in (
        ("profile", profile),
        ("kept", [r["measures"] for r in records if r["kept"]]),
        ("rejected", [r["measures"] for r in records if not r["kept"]]),
    ):
        pts = [(r["mean_surprisal"], r["novel_13"]) for r in rows if r.get("mean_surprisal") is not None]
        pts = [p for p in pts if p[1] is not None]
        if pts:
            x, y = zip(*pts)
            ax.scatter(x, y, s=5, alpha=0.4, color=_COLORS[group], label=group)
    ax.set_xlabel("mean surprisal (bits per token)")
    ax.set_ylabel("novel 13-gram share")
    ax.legend(fontsize=7)
    save_png(fig, out / "frontier.png")
    return "frontier.png"


def report_html(summary: dict, fig: str, examples: list[dict]) -> str:
    e = html.escape
    b = summary["band"]
    p = summary["profile"]
    if b.get("lo_pct") is not None:
        band_txt = (
            f"the profile's {b['lo_pct']:g}th to {b['hi_pct']:g}th percentile: [{b['lo']:.4g}, {b['hi']:.4g}]"
        )
    else:
        lo = "-inf" if b.get("lo") is None else f"{b['lo']:.4g}"
        hi = "+inf" if b.get("hi") is None else f"{b['hi']:.4g}"
        band_txt = f"absolute thresholds [{lo}, {hi}]"
    reasons = "".join(
        f"<tr><td>{e(k)}</td><td>{v:,}</td></tr>" for k, v in sorted(summary["reasons"].items())
    )
    rows = []
    for r in examples:
        score = "" if r["score"] is None else f"{r['score']:.4g}"
        pct = "" if r["percentile"] is None else f"{r['percentile']:.1f}"
        rows.append(
            f"<tr><td>{e(r['id'])}</td><td>{e(r['reason'])}</td><td>{score}</td><td>{pct}</td>"
            f"<td>{e(r.get('text', '')[:160])}</td></tr>"
        )
    rows = "".join(rows)
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>freqindex frontier</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto;line-height:1.45}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:3px 7px;font-size:13px}}img{{max-width:100%}}</style></head><body>
<h1>The learning frontier: {summary["kept"]:,} of {summary["n_candidates"]:,} candidates kept</h1>
<p>Each candidate is scored by its distance from the corpus ({e(b["measure"])}) and compared with the corpus's
own profile: the same measure on {p["documents"]:,} sampled documents of the index (seed {p["seed"]}), each measured
against the index without it. The band is {band_txt}; a candidate is rejected only when its score lies outside
the band by more than {b["tolerance"]:g} standard errors of its own per-token mean (candidates with fewer than
{b["min_tokens"]} scored tokens are rejected as too short).</p>
<figure><img src="{e(fig)}" alt="frontier"><figcaption>Left: the candidates' scores against the corpus profile
(dashed: the band). Right: the two views of distance, probabilistic (mean ∞-gram surprisal) and verbatim
(share of 13-token spans the corpus never holds).</figcaption></figure>
<h2>Decisions</h2><table><tr><th>reason</th><th>candidates</th></tr>{reasons}</table>
<h2>Examples</h2><table><tr><th>id</th><th>reason</th><th>score</th><th>profile percentile</th><th>text</th></tr>{rows}</table>
<h2>Reading the numbers</h2><ul>
<li><i>too_far</i>: farther from the corpus than its typical documents (the student is unlikely to learn it);
<i>too_close</i>: closer than its typical documents (near-copies of what the corpus already holds).</li>
<li>The profile is this index's own text; a corpus unlike the model's training data gives a different frontier.</li>
</ul></body></html>"""


def write_outputs(
    out: Path,
    records: list[dict],
    texts: dict[str, str],
    rows: dict[str, dict],
    summary: dict,
    profile: list[dict],
) -> dict[str, Path]:
    import pyarrow.parquet as pq

    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, keep in (("kept.jsonl", True), ("rejected.jsonl", False)):
        lines = []
        for r in records:
            if r["kept"] != keep:
                continue
            frontier = {k: r[k] for k in ("reason", "measure", "score", "se", "percentile")}
            frontier["measures"] = r["measures"]
            lines.append(
                json.dumps({**rows.get(r["id"], {"id": r["id"]}), "frontier": frontier}, ensure_ascii=False)
            )
        atomic_write_bytes(out / name, ("\n".join(lines) + ("\n" if lines else "")).encode())
        paths[name] = out / name
    tmp = out / ".scores.parquet.tmp"
    pq.write_table(scores_table(records), tmp)
    tmp.replace(out / "scores.parquet")
    paths["scores.parquet"] = out / "scores.parquet"
    fig = figure(records, profile, summary["band"], out)
    summary = {**summary, "figure": fig}
    atomic_write_bytes(out / "summary.json", (json.dumps(summary, indent=2) + "\n").encode())
    paths["summary.json"] = out / "summary.json"
    rejected = [r for r in records if not r["kept"]]
    kept = [r for r in records if r["kept"]]
    examples = [{**r, "text": texts.get(r["id"], "")} for r in rejected[:10] + kept[:5]]
    atomic_write_bytes(out / "report.html", report_html(summary, fig, examples).encode())
    paths["report.html"] = out / "report.html"
    return paths
