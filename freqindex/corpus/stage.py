"""The first build stage as a pure core over files: read, validate, normalize and tokenize one input chunk
into staging Parquet, and merge the bad records into the quarantine table. ``jobs/build_index.py`` runs it
in Spark; nothing here imports Spark.

Staging layout inside a build in progress (``.NAME.partial`` beside the output)::

    _staging/chunks/chunk-N.parquet      documents of chunk N (line, ext_id, tokens, sizes, hash, tags)
    _staging/chunks/chunk-N.bad.parquet  its bad records (line, code, reason)
    _staging/chunks/chunk-N.done         marker with the checksums of both
    quarantine/quarantine.parquet        every bad record of the build: source, line, code, reason
"""

from __future__ import annotations

import hashlib
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from freqindex import settings
from freqindex.corpus.readers import Bad, Blank, ChunkSpec, ReadOptions, read_chunk
from freqindex.fsutil import atomic_write_json, file_entry, marker_valid
from freqindex.text.normalize import get_normalizer
from freqindex.text.tokenizers import load_tokenizer

CHUNK_SCHEMA = pa.schema(
    [
        ("line", pa.int64()),
        ("ext_id", pa.string()),
        ("tokens", pa.large_binary()),
        ("n_bytes", pa.int64()),
        ("n_tokens", pa.int64()),
        ("content_hash", pa.string()),
        ("tags", pa.list_(pa.string())),
    ]
)
BAD_SCHEMA = pa.schema([("line", pa.int64()), ("code", pa.string()), ("reason", pa.string())])
QUARANTINE_SCHEMA = pa.schema(
    [("source", pa.string()), ("line", pa.int64()), ("code", pa.string()), ("reason", pa.string())]
)


@dataclass(frozen=True)
class StageSettings:
    """What a task needs to know (picklable, small)."""

    text_field: str
    id_field: str | None
    text_per_line: bool
    tokenizer: str
    tokenizer_json: str | None
    normalization: str
    strict: bool
    sa_mem_gib: int
    tags_field: str | None = None
    storage_options: tuple = ()  # for inputs given as URLs (freqindex.storage)
    # the staged chunk Parquet: uncompressed on a local disk (no CPU spent for nothing), compressed where it
    # crosses the network through an object store (up from the chunk task, down to the shard task)
    staged_compression: str = "none"

    def read_options(self) -> ReadOptions:
        return ReadOptions(
            self.text_field, self.id_field, self.text_per_line, self.tags_field, self.storage_options
        )


def chunk_paths(staging: Path, chunk_id: int) -> tuple[Path, Path, Path]:
    base = staging / "chunks" / f"chunk-{chunk_id:06d}"
    return base.with_suffix(".parquet"), base.with_suffix(".bad.parquet"), base.with_suffix(".done")


def tokenize_chunk(spec: ChunkSpec, st: StageSettings, build_dir: str) -> dict:
    """Stage 1 for one chunk: read, validate, normalize, tokenize (batched), write staging Parquet.

    Returns a summary (counts, first bad line) and leaves a ``.done`` marker; a rerun with a valid marker
    returns the marker without redoing the work.
    """
    root = Path(build_dir)
    staging = root / "_staging"
    out, bad_out, marker = chunk_paths(staging, spec.chunk_id)
    done = marker_valid(marker, root)
    if done is not None:
        done["resumed"] = True
        return done
    out.parent.mkdir(parents=True, exist_ok=True)
    normalizer = get_normalizer(st.normalization)
    tokenizer = load_tokenizer(st.tokenizer, st.tokenizer_json)
    width = tokenizer.width
    cols: dict[str, list] = {k: [] for k in CHUNK_SCHEMA.names}
    bad_lines: list[int | None] = []
    bad_reasons: list[str] = []
    bad_codes: list[str] = []
    blanks = 0
    pending: list = []

    def flush() -> None:
        if not pending:
            return
        stored = [normalizer.stored_document(r.text) for r in pending]
        toks = tokenizer.encode_batch(stored)
        for rec, s, t in zip(pending, stored, toks):
            if not s.strip():
                bad_lines.append(rec.line)
                bad_reasons.append("empty text after normalization")
                bad_codes.append("empty_after_normalization")
                continue
            if not t:
                bad_lines.append(rec.line)
                bad_reasons.append("no tokens after tokenization")
                bad_codes.append("no_tokens")
                continue
            cols["line"].append(rec.line)
            cols["ext_id"].append(rec.ext_id)
            cols["tokens"].append(t)
            cols["n_bytes"].append(len(rec.text.encode("utf-8")))
            cols["n_tokens"].append(len(t) // width)
            cols["content_hash"].append(hashlib.blake2b(t, digest_size=8).hexdigest())
            cols["tags"].append(list(rec.tags) if rec.tags is not None else None)
        pending.clear()

    for item in read_chunk(spec, st.read_options()):
        if isinstance(item, Blank):
            blanks += 1
        elif isinstance(item, Bad):
            bad_lines.append(item.line)
            bad_reasons.append(item.reason)
            bad_codes.append(item.code)
            if st.strict:
                break
        else:
            pending.append(item)
            if len(pending) >= settings.TOKENIZE_BATCH:
                flush()
                if st.strict and bad_lines:
                    break
    flush()
    order = sorted(range(len(bad_lines)), key=lambda i: (bad_lines[i] is not None, bad_lines[i] or 0))
    bad_lines = [bad_lines[i] for i in order]
    bad_reasons = [bad_reasons[i] for i in order]
    bad_codes = [bad_codes[i] for i in order]
    table = pa.table(cols, schema=CHUNK_SCHEMA)
    pq.write_table(table, str(out) + ".tmp", compression=st.staged_compression)
    os.replace(str(out) + ".tmp", out)
    pq.write_table(
        pa.table({"line": bad_lines, "code": bad_codes, "reason": bad_reasons}, schema=BAD_SCHEMA),
        str(bad_out) + ".tmp",
    )
    os.replace(str(bad_out) + ".tmp", bad_out)
    summary = {
        "chunk_id": spec.chunk_id,
        "source": spec.path,
        "n_docs": table.num_rows,
        "n_tokens": int(sum(cols["n_tokens"])),
        "n_bytes": int(sum(cols["n_bytes"])),
        "n_bad": len(bad_lines),
        "n_blank": blanks,
        "first_bad": ({"line": bad_lines[0], "reason": bad_reasons[0]} if bad_lines else None),
        "python": sys.executable,  # the interpreter this task ran in (the build summary lists them)
        "files": {str(p.relative_to(root)): file_entry(p) for p in (out, bad_out)},
    }
    atomic_write_json(marker, summary)
    summary["resumed"] = False
    return summary


def write_quarantine(
    build_dir: str, chunk_summaries: list[dict], out_dir: str = "quarantine"
) -> tuple[Path, dict[str, int]]:
    """Merge the per-chunk bad records into ``OUT_DIR/quarantine.parquet`` (``out_dir`` relative to
    ``build_dir``); return it and the counts by reason code (the codes the readers set, never parsed out of
    the messages)."""
    root = Path(build_dir)
    staging = root / "_staging"
    parts = []
    for s in chunk_summaries:
        if s["n_bad"] == 0:
            continue
        _, bad, _ = chunk_paths(staging, s["chunk_id"])
        t = pq.read_table(bad)
        parts.append(
            pa.table(
                {
                    "source": [s["source"]] * t.num_rows,
                    "line": t.column("line"),
                    "code": t.column("code"),
                    "reason": t.column("reason"),
                },
                schema=QUARANTINE_SCHEMA,
            )
        )
    table = pa.concat_tables(parts) if parts else QUARANTINE_SCHEMA.empty_table()
    out = root / out_dir / "quarantine.parquet"
    out.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, str(out) + ".tmp")
    os.replace(str(out) + ".tmp", out)
    by_reason: dict[str, int] = {}
    for code in table.column("code").to_pylist():
        by_reason[code] = by_reason.get(code, 0) + 1
    return out, by_reason
