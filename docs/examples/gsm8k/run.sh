#!/usr/bin/env bash
# Reproduces docs/examples/gsm8k/: GSM8K test against an index of GSM8K train (question + worked answer,
# one document per problem) + WikiText-2 (one document per line), with the four real models' per-item
# results. Data from ../shared/data (not committed). Usage, from the repository root with the project
# installed (`pip install -e '.[embed,analyze]'`):
#
#     bash docs/examples/gsm8k/run.sh [WORKDIR]
#
set -euo pipefail
DATA="${FREQINDEX_DATA:-$(cd "$(dirname "$0")/../../.." && pwd)/../shared/data}"
WORK="${1:-/tmp/freqindex-gsm8k}"
HERE="$(cd "$(dirname "$0")" && pwd)"
mkdir -p "$WORK/corpus"
python - "$DATA/evals/gsm8k/train.jsonl" "$WORK/corpus/gsm8k-train.jsonl" <<'PY'
import json, sys
with open(sys.argv[1]) as f, open(sys.argv[2], "w") as out:
    for k, line in enumerate(f):
        r = json.loads(line)
        out.write(json.dumps({"id": f"train-{k}", "text": r["question"] + "\n" + r["answer"]}) + "\n")
PY
cp "$DATA/corpora/wikitext2/test.txt" "$DATA/corpora/wikitext2/valid.txt" "$WORK/corpus/"
freqindex build "$WORK/corpus" -o "$WORK/index" --text-per-line --id-field id --embed
freqindex contamination "$WORK/index" --eval "$DATA/evals/gsm8k/test.jsonl" --fields question \
  --results "$DATA/evals/gsm8k/example_model_solutions.jsonl" --out "$WORK/contamination" || true
mkdir -p "$HERE/contamination"
cp "$WORK/contamination/summary.json" "$WORK/contamination/report.md" "$HERE/contamination/"
python - "$WORK/contamination/items.jsonl" "$HERE/contamination/flagged_items.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
keep = [r for r in rows if r["bucket"] in ("dirty", "suspicious") or any(r["definitions"].values())]
keep.sort(key=lambda r: -(r["coverage"] or 0))
with open(sys.argv[2], "w") as out:
    for r in keep:
        out.write(json.dumps({k: r.get(k) for k in ("id", "bucket", "coverage", "longest_match", "definitions", "semantic", "evidence")}) + "\n")
PY
freqindex analyze "$WORK/index" --eval "$DATA/evals/gsm8k/test.jsonl" --fields question \
  --results "$DATA/evals/gsm8k/example_model_solutions.jsonl" --auto-concepts --out "$WORK/analysis" \
  --prune-sweep 0.8,0.85,0.95
mkdir -p "$HERE/analysis"
cp "$WORK/analysis/summary.json" "$WORK/analysis/report.html" "$WORK/analysis/"*.png "$HERE/analysis/"
