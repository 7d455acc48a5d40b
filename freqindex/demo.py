"""A small, deterministic demo corpus generated on the spot (no download): captions, articles, bad records.

It mixes every input format ``freqindex build`` reads (.tsv captions, .jsonl, .jsonl.gz, .jsonl.zst,
.parquet) and plants a few malformed records so a first build shows the quarantine at work.
"""

from __future__ import annotations

import gzip
import json
import random
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import zstandard

ANIMALS = ["dog", "golden retriever", "cat", "tabby cat", "horse", "bird", "border collie", "goldfish", "cow"]
PEOPLE = ["A child", "A man", "A woman", "Two girls", "A boy", "An old man", "A group of people"]
ACTIONS = ["plays with", "runs after", "throws", "watches", "feeds", "walks with", "photographs"]
THINGS = ["a frisbee", "a red ball", "a stick", "the {a}", "a kite", "an umbrella"]
PLACES = ["in the park", "on the beach", "in the snow", "near a lake", "on a busy street", "in a garden"]
TOPICS = ["Dogs", "Cats", "Horses", "Birds", "Parks", "Beaches", "Kites", "Frisbee"]


def _caption(rng: random.Random) -> str:
    a = rng.choice(ANIMALS)
    thing = rng.choice(THINGS).format(a=a)
    if rng.random() < 0.5:
        return f"{rng.choice(PEOPLE)} {rng.choice(ACTIONS)} {thing} {rng.choice(PLACES)}."
    return f"A {a} {rng.choice(['jumps for', 'carries', 'chases', 'sniffs'])} {thing} {rng.choice(PLACES)}."


def _article(rng: random.Random, k: int) -> str:
    topic = rng.choice(TOPICS)
    sents = [f"{topic} are a common subject of photographs."]
    for _ in range(rng.randint(3, 12)):
        sents.append(_caption(rng))
    if k % 50 == 0:
        sents.append("The quick brown fox jumps over the lazy dog.")
    return " ".join(sents)


def write_demo_corpus(
    out: str | Path, n_captions: int = 20_000, n_articles: int = 3_000, seed: int = 0
) -> dict:
    """Write the demo corpus into ``out`` and return what was written."""
    rng = random.Random(seed)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "captions.tsv", "w", encoding="utf-8") as f:
        for i in range(n_captions):
            f.write(f"img{i // 5:05d}.jpg#{i % 5}\t{_caption(rng)}\n")
    articles = [{"id": f"art-{k:05d}", "text": _article(rng, k)} for k in range(n_articles)]
    third = n_articles // 3
    lines = [json.dumps(a) for a in articles[:third]]
    lines.insert(10, '{"id": "broken", "text": "this line is not valid JSON')
    lines.insert(20, json.dumps({"id": "empty", "text": ""}))
    (out / "articles-0.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    gz = "\n".join(json.dumps(a) for a in articles[third : 2 * third]) + "\n"
    (out / "articles-1.jsonl.gz").write_bytes(gzip.compress(gz.encode(), mtime=0))
    zs = "\n".join(json.dumps(a) for a in articles[2 * third :]) + "\n"
    (out / "articles-2.jsonl.zst").write_bytes(zstandard.ZstdCompressor().compress(zs.encode()))
    rows = [{"id": f"web-{k}", "text": _article(rng, k + 1)} for k in range(500)]
    rows.append({"id": "web-null", "text": None})
    pq.write_table(pa.Table.from_pylist(rows), out / "web.parquet")
    return {
        "dir": str(out),
        "files": sorted(p.name for p in out.iterdir()),
        "documents": n_captions + n_articles + 500,
        "planted_bad_records": 3,
    }
