"""`freqindex analyze` at scale: 10,000 eval items x 4 models against the >=100 MB benchmark index
(bench_count.py builds it), index look-ups included (concept document frequencies from the suffix arrays,
verbatim similarity from batched matching statistics, pruning), embedding excluded (verbatim similarity).

Items: every GSM8K train + test question, topped up with WikiText-2 lines, to 10,000. Concepts: spaCy head
nouns (timed separately, then passed as a mapping). Models: four synthetic result columns with known
structure (frequency-driven, similarity-driven, both, neither), so the verdicts are also a sanity check.

    python benchmarks/bench_analyze.py --out bench-out [--items 10000] [--bootstrap 200]
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DATA, StageTimer  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="bench-out")
    ap.add_argument("--items", type=int, default=10_000)
    ap.add_argument("--bootstrap", type=int, default=200)
    a = ap.parse_args()
    out = Path(a.out).resolve()
    index_dir = out / "count-index"
    if not (index_dir / "manifest.json").exists():
        raise SystemExit("run benchmarks/bench_count.py first (it builds the benchmark index)")
    from freqindex.analysis import core
    from freqindex.analysis.run import run_analysis
    from freqindex.evals import EvalItem
    from freqindex.suffix.index import Index

    texts = []
    for name in ("train.jsonl", "test.jsonl"):
        texts += [
            json.loads(ln)["question"] for ln in (DATA / "evals" / "gsm8k" / name).read_text().splitlines()
        ]
    wiki = [
        ln.strip()
        for ln in (DATA / "corpora" / "wikitext2" / "test.txt").read_text().splitlines()
        if len(ln.split()) > 12 and not ln.strip().startswith("=")
    ]
    texts = (texts + wiki)[: a.items]
    items = [EvalItem(f"i{k}", t, {"question": t}) for k, t in enumerate(texts)]
    idx = Index.open(index_dir)

    t = time.perf_counter()
    concepts = core.auto_concepts(items)
    spacy_s = time.perf_counter() - t

    # four synthetic models over the real frequencies and similarities (computed once, outside the timing)
    names = sorted({c for cs in concepts.values() for c in cs})
    freq = {c: int(d.size) for c, d in core.concept_doc_ids(idx, names).items()}
    _, frac, _ = core.verbatim_longest(idx, items)
    rng = random.Random(0)
    results: dict[str, dict[str, float]] = {m: {} for m in ("freq_driven", "sim_driven", "both", "neither")}
    for it in items:
        cs = concepts[it.id]
        lf = math.log10(1 + min(freq[c] for c in cs)) if cs else 0.0
        s = frac[it.id]
        for m, logit in (
            ("freq_driven", -2 + 0.8 * lf),
            ("sim_driven", -1.5 + 3 * s),
            ("both", -2.5 + 0.6 * lf + 2 * s),
            ("neither", 0.0),
        ):
            results[m][it.id] = float(rng.random() < 1 / (1 + math.exp(-logit)))

    idx = Index.open(index_dir)  # a fresh open: the timed run pays for its own look-ups
    progress = StageTimer()

    t = time.perf_counter()
    rows, summary = run_analysis(
        idx, items, results, concepts, similarity="verbatim", n_boot=a.bootstrap, progress=progress
    )
    analysis_s = time.perf_counter() - t
    progress.finish()
    t = time.perf_counter()
    from freqindex.report.analysis import write_outputs

    write_outputs(out / "analysis-bench", rows, summary, "bench")
    write_s = time.perf_counter() - t
    res = {
        "items": len(items),
        "models": len(results),
        "index_tokens": idx.manifest["counts"]["tokens"],
        "concepts": len(names),
        "bootstrap": a.bootstrap,
        "auto_concepts_spacy_seconds": round(spacy_s, 1),
        "analysis_seconds": round(analysis_s, 1),
        "analysis_stages_seconds": progress.stages,
        "report_seconds": round(write_s, 1),
        "total_seconds_excluding_spacy": round(analysis_s + write_s, 1),
        "total_seconds_including_spacy": round(spacy_s + analysis_s + write_s, 1),
        "verdicts": {m: r["verdict"] for m, r in summary["models"].items()},
    }
    (out / "analyze.json").write_text(json.dumps(res, indent=2))
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
