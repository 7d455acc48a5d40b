#!/usr/bin/env bash
# Quickstart: set up a virtual environment, generate a demo corpus, index it with Spark, and query it.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e .
export PATH="$PWD/.venv/bin:$PATH"
set -x
freqindex demo-corpus demo/corpus
freqindex build demo/corpus --output demo/index --overwrite
freqindex info demo/index
freqindex count demo/index " golden retriever "
freqindex count demo/index " golden retriever " --unit docs --json
freqindex count demo/index " dog  OR  cat " --unit docs
freqindex docs demo/index " frisbee " --limit 3
freqindex verify demo/index
