#!/usr/bin/env bash
# Reproduces docs/examples/udandarao2024_cc3m/: the per-concept frequency study of Udandarao et al. (2024) on
# its released CC-3M counts and per-class zero-shot accuracies (two CLIP models x three prompt styles), through
# `freqindex analyze --concept-counts` (no index needed). Data from ../shared/data (not committed). Usage, from
# anywhere, with the project installed (`pip install -e '.[analyze]'`):
#
#     bash docs/examples/udandarao2024_cc3m/run.sh [WORKDIR]
#
# summary.json's binned fits equal the authors' published_fits.json (tests/analysis/test_per_concept.py).
set -euo pipefail
cd "$(dirname "$0")/../../.."                       # the repository root: paths in summary.json stay relative
DATA="${FREQINDEX_DATA:-../shared/data}/evals/udandarao2024_cc3m"
WORK="${1:-/tmp/freqindex-udandarao2024_cc3m}"
HERE=docs/examples/udandarao2024_cc3m
freqindex analyze --concept-counts "$DATA/counts.csv" --concept-results "$DATA/results.csv" --out "$WORK"
cp "$WORK/summary.json" "$WORK/report.html" "$WORK/accuracy_vs_concept_frequency.png" "$HERE/"
