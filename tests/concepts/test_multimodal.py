"""Image-caption corpora with image tags (--tags-field): caption, tag and matched document frequencies."""

from __future__ import annotations

import json
import random
import re

import pytest

from freqindex.concepts.vocab import load_vocabulary
from freqindex.query.concepts import concept_counts
from freqindex.suffix.index import Index
from freqindex.text.normalize import get_normalizer
from tests.conftest import build, cli
from tests.reference import ref_normalize

pytestmark = pytest.mark.spark
WORDS = ["dog", "dogs", "cat", "golden retriever", "ball", "frisbee", "park", "grass", "man", "kite"]


def _has(text: str, forms: list[str]) -> int:
    t = ref_normalize(text)
    return sum(len(re.findall(r"(?=(?<!\S)" + re.escape(f) + r"(?!\S))", t)) for f in forms)


def test_caption_tag_and_matched_frequencies(tmp_path):
    rng = random.Random(5)
    rows = []
    for i in range(400):
        cap = (
            "A "
            + " and a ".join(rng.sample(WORDS, rng.randint(1, 3)))
            + " in the "
            + rng.choice(["park", "yard"])
            + "."
        )
        tags = [t.upper() if rng.random() < 0.3 else t for t in rng.sample(WORDS, rng.randint(0, 3))]
        rows.append({"id": f"img{i}", "text": cap, "tags": tags})
    lines = [json.dumps(r) for r in rows]
    lines.append(json.dumps({"id": "bad", "text": "a dog", "tags": "dog"}))  # tags must be a list
    (tmp_path / "caps.jsonl").write_text("\n".join(lines) + "\n")
    (tmp_path / "vocab.txt").write_text("dog\ncat\ngolden retriever\nfrisbee\nkite\nzebra\n")
    summary = build([tmp_path / "caps.jsonl"], tmp_path / "idx", tags_field="tags")
    assert summary["quarantined"] == 1 and summary["documents"] == 400
    cli("tag", tmp_path / "idx", "--concepts", tmp_path / "vocab.txt", "--master", "local[2]", check=0)
    idx = Index.open(tmp_path / "idx")
    vocab = load_vocabulary(str(tmp_path / "vocab.txt"), get_normalizer("simple"))
    src, got = concept_counts(idx, vocab, "auto")
    assert src == "tags"
    for c, r in zip(vocab.concepts, got):
        cap = [_has(row["text"], c.forms) for row in rows]
        tag = [any(_has(t, c.forms) for t in row["tags"]) for row in rows]
        assert r["occurrences"] == sum(cap), c.concept
        assert r["caption_doc_frequency"] == r["doc_frequency"] == sum(x > 0 for x in cap), c.concept
        assert r["tag_doc_frequency"] == sum(tag), c.concept
        assert r["matched_doc_frequency"] == sum(1 for x, t in zip(cap, tag) if x and t), c.concept
    # the suffix path sees captions only, and agrees on them
    _, suffix = concept_counts(idx, vocab, "suffix")
    assert [(r["occurrences"], r["doc_frequency"]) for r in suffix] == [
        (r["occurrences"], r["doc_frequency"]) for r in got
    ]
    # and the SQL view carries the multimodal columns
    out = cli(
        "sql",
        tmp_path / "idx",
        "SELECT concept, doc_frequency, tag_doc_frequency, matched_doc_frequency "
        "FROM concept_freq ORDER BY concept",
        "--format",
        "json",
        check=0,
    ).stdout.splitlines()
    sql = {r["concept"]: r for r in map(json.loads, out)}
    for r in got:
        s = sql[r["concept"]]
        assert (s["doc_frequency"], s["tag_doc_frequency"], s["matched_doc_frequency"]) == (
            r["doc_frequency"],
            r["tag_doc_frequency"],
            r["matched_doc_frequency"],
        )
    assert sql["zebra"]["doc_frequency"] == 0
