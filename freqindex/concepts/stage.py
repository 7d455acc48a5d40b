"""The tagging stage over an existing index, and query-time concept counts.

Tagging adds ``concepts/vocab.parquet`` and ``concepts/hits/part-N.parquet`` (doc_id, concept_id,
occurrences) to an index. Every file the index already had stays untouched; the new files are written
under ``.concepts.partial/``, renamed into place, then the manifest is replaced atomically.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from freqindex.concepts.tagger import Matcher
from freqindex.concepts.vocab import Concept, Vocabulary
from freqindex.errors import UsageError
from freqindex.faults import fault_point
from freqindex.manifest import publish_stage
from freqindex.suffix.index import Index

TAG_BLOCK_BYTES = 32 * 1024 * 1024
HITS_SCHEMA = pa.schema(
    [("doc_id", pa.int64()), ("concept_id", pa.int64()), ("occurrences", pa.int64()), ("in_tags", pa.bool_())]
)
VOCAB_SCHEMA = pa.schema(
    [
        ("concept_id", pa.int64()),
        ("concept", pa.string()),
        ("benchmark", pa.string()),
        ("forms", pa.list_(pa.string())),
    ]
)


def require_taggable(manifest: dict) -> None:
    if manifest["tokenizer"]["name"] != "bytes" or manifest["normalization"]["name"] != "simple":
        raise UsageError(
            "tagging needs an index built with --tokenizer bytes and --normalize simple "
            "(whole-word matching on normalized text); use `freqindex concepts --source suffix`"
        )


def vocab_payload(vocab: Vocabulary) -> list[tuple[int, str, str | None, list[str]]]:
    return [(c.concept_id, c.concept, c.benchmark, c.forms) for c in vocab.concepts]


def vocab_from_payload(payload, name="vocab", exact=False) -> Vocabulary:
    return Vocabulary(name, [Concept(i, c, b, list(f)) for i, c, b, f in payload], exact, [])


def tag_block(index_dir: str, payload, task_id: int, shard: int, lo: int, hi: int, out_dir: str) -> dict:
    """Tag documents [lo, hi) of one shard; write ``hits/part-<task_id>.parquet``."""
    index = Index.open(index_dir, replacing="concepts")
    sh = index.shard(shard)
    text, starts = index.text_block(sh, lo, hi)
    matcher = Matcher.from_vocabulary(vocab_from_payload(payload))
    doc, cid, occ = matcher.tag(text, starts)
    pairs: dict[tuple[int, int], list] = {(int(d), int(c)): [int(o), False] for d, c, o in zip(doc, cid, occ)}
    if index.manifest["config"].get("tags_field"):
        tag_text, tag_starts = _tags_text(index, index.doc_tags(sh, lo, hi))
        tdoc, tcid, _ = matcher.tag(tag_text, tag_starts)
        for d, c in zip(tdoc.tolist(), tcid.tolist()):
            pairs.setdefault((d, c), [0, False])[1] = True
    keys = sorted(pairs)
    table = pa.table(
        {
            "doc_id": [d + sh.doc_start + lo for d, _ in keys],
            "concept_id": [c for _, c in keys],
            "occurrences": [pairs[k][0] for k in keys],
            "in_tags": [pairs[k][1] for k in keys],
        },
        schema=HITS_SCHEMA,
    )
    out = Path(out_dir) / "hits" / f"part-{task_id:05d}.parquet"
    out.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, str(out) + ".tmp")
    os.replace(str(out) + ".tmp", out)
    return {"task": task_id, "docs": hi - lo, "pairs": table.num_rows, "bytes": int(len(text))}


def _tags_text(index: Index, tags: list[list[str] | None]) -> tuple[str, np.ndarray]:
    """Documents' image tags, normalized and padded like documents, as one block of text (a newline before
    each document's tags) and the offsets of those newlines."""
    parts, starts, pos = [], [], 0
    for tg in tags:
        piece = "\n" + "\n".join(index.normalizer.stored_document(t) for t in (tg or []))
        starts.append(pos)
        parts.append(piece)
        pos += len(piece)
    return "".join(parts), np.asarray(starts, dtype=np.int64)


def run_tagging(index_dir: str, vocab: Vocabulary, run_tasks: Callable, source_path: str) -> dict:
    """Tag a whole index with ``vocab`` through ``run_tasks`` (Spark or in-process); update the manifest."""
    t0 = time.monotonic()
    root = Path(index_dir).resolve()
    index = Index.open(root, replacing="concepts")
    m = index.manifest
    require_taggable(m)
    work = root / ".concepts.partial"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    payload = vocab_payload(vocab)
    tasks = index.plan_blocks(TAG_BLOCK_BYTES)
    root_s, work_s = str(root), str(work)

    def task(i: int) -> dict:
        s, lo, hi = tasks[i]
        return tag_block(root_s, payload, i, s, lo, hi, work_s)

    results = run_tasks("tag concepts", task, len(tasks))
    fault_point("tag-tasks-done")  # every hits part written, nothing published yet
    vt = pa.table(
        {
            "concept_id": [c.concept_id for c in vocab.concepts],
            "concept": [c.concept for c in vocab.concepts],
            "benchmark": [c.benchmark for c in vocab.concepts],
            "forms": [c.forms for c in vocab.concepts],
        },
        schema=VOCAB_SCHEMA,
    )
    pq.write_table(vt, work / "vocab.parquet")
    m = publish_stage(
        root,
        work,
        "concepts",
        {
            "vocabulary": vocab.name,
            "source": str(Path(source_path).resolve()),
            "key": vocab.key,
            "exact": vocab.exact,
            "n_concepts": len(vocab.concepts),
            "parts": len(tasks),
            "n_pairs": sum(r["pairs"] for r in results),
            "tags_field": m["config"].get("tags_field"),
        },
    )
    return {
        "index": str(root),
        "concepts": len(vocab.concepts),
        "tasks": len(tasks),
        "doc_concept_pairs": m["concepts"]["n_pairs"],
        "seconds": round(time.monotonic() - t0, 3),
        "warnings": vocab.warnings,
    }
