"""The small real corpus the candidate-mode and ANN tests share (built once per test module; ~100 s of
embedding on 2 cores, the most expensive fixture of the suite, so every check that needs real vectors uses it).

- 40,460 Flickr8k captions, one document each (one window each: the cheapest real text per window);
- 3,000 GSM8K train questions (the topical neighbours of GSM8K test questions);
- 300 WikiText-2 paragraphs, and 24 more with a GSM8K test question planted in the middle (between two
  paragraphs): 8 verbatim, 16 paraphrased (tests/paraphrase.py: substitution and reordering).

Embedded exhaustively with 32-token windows (stride 16) and an exact ``Flat`` index: about 51,000 windows
(the ANN check of issue #14 asks for 50,000+).
The eval items are the 24 planted questions and 24 GSM8K test questions planted nowhere.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from tests.conftest import FLICKR, GSM8K_TEST, GSM8K_TRAIN, WIKITEXT
from tests.paraphrase import paraphrase
from tests.reference import read_jsonl_docs, read_lines_docs

WINDOWS = (32,)


def make_world(root: Path, runner=None) -> dict:
    """Write the corpus and the eval set under ``root``, build and embed the index (through ``runner``, a
    task runner; default in-process); returns the paths and the planted documents' external ids by item id.
    Reuses a finished world at ``root``."""
    from freqindex.build import build_index, run_in_process
    from freqindex.config import BuildConfig
    from freqindex.manifest import read_manifest
    from freqindex.vectors.stage import run_embedding

    info_file = root / "world.json"
    if info_file.exists():
        return json.loads(info_file.read_text())
    root.mkdir(parents=True, exist_ok=True)
    rng = random.Random(14)
    captions = [ln.split("\t", 1)[1] for ln in read_lines_docs(FLICKR) if "\t" in ln]
    train = read_jsonl_docs(GSM8K_TRAIN, "question")[:3000]
    wiki = [p for p in read_lines_docs(WIKITEXT) if len(p) > 300]
    test = read_jsonl_docs(GSM8K_TEST, "question")
    order = list(range(len(test)))
    rng.shuffle(order)
    docs = [{"id": f"cap-{i}", "text": t} for i, t in enumerate(captions)]
    docs += [{"id": f"train-{i}", "text": t} for i, t in enumerate(train)]
    docs += [{"id": f"wiki-{i}", "text": t} for i, t in enumerate(wiki[:300])]
    items, planted = [], {}
    for n, k in enumerate(order[:24]):
        kind = "verbatim" if n < 8 else "paraphrase"
        text = test[k] if kind == "verbatim" else paraphrase(test[k], k)
        ext = f"planted-{kind}-{n}"
        docs.append({"id": ext, "text": wiki[400 + n] + " " + text + " " + wiki[500 + n]})
        items.append({"id": f"{kind}-{n}", "question": test[k]})
        planted[f"{kind}-{n}"] = ext
    items += [{"id": f"unplanted-{n}", "question": test[k]} for n, k in enumerate(order[24:48])]
    rng.shuffle(docs)
    (root / "eval.jsonl").write_text("".join(json.dumps(r) + "\n" for r in items))
    if not (root / "idx" / "manifest.json").exists():  # else built by an interrupted earlier call
        (root / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))
        build_index(
            BuildConfig(inputs=(str(root / "corpus.jsonl"),), output=str(root / "idx")), run_in_process
        )
    run_embedding(str(root / "idx"), runner or run_in_process, chunk_tokens=WINDOWS, factory="Flat")
    info = {
        "index": str(root / "idx"),
        "eval": str(root / "eval.jsonl"),
        "planted": planted,
        "vectors": read_manifest(root / "idx")["vectors"]["n_vectors"],
    }
    info_file.write_text(json.dumps(info))
    return info
