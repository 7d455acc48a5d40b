"""The second build stage as a pure core over files: plan contiguous, byte-balanced shards over the staged
documents, then write each shard in infini-gram's format (tokenized/offset/metadata/metaoff), build its
suffix array (``table.N``) and its part of the docs table. ``jobs/build_index.py`` runs it in Spark.

Layout written into a build in progress::

    sa/ tokenized.N offset.N metadata.N metaoff.N table.N
    docs/part-N.parquet
    _staging/shards/shard-N.done          marker with the checksums of the shard's files
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from json.encoder import encode_basestring  # type: ignore[attr-defined]
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from freqindex import settings
from freqindex.corpus.stage import StageSettings, chunk_paths
from freqindex.errors import BuildError
from freqindex.fsutil import atomic_write_json, file_entry, marker_valid
from freqindex.suffix.sa_build import build_suffix_array, pointer_bytes
from freqindex.suffix.search import write_sample
from freqindex.text.tokenizers import load_tokenizer, separator

DOCS_SCHEMA = pa.schema(
    [
        ("doc_id", pa.int64()),
        ("shard", pa.int32()),
        ("source", pa.string()),
        ("line", pa.int64()),
        ("ext_id", pa.string()),
        ("n_bytes", pa.int64()),
        ("n_tokens", pa.int64()),
        ("content_hash", pa.string()),
        ("tags", pa.list_(pa.string())),
    ]
)


@dataclass(frozen=True)
class ShardPlan:
    shard: int
    doc_start: int  # global doc_id of the shard's first document
    n_docs: int
    slices: tuple[tuple[int, int, int], ...]  # (chunk_id, row_start, row_end)
    ds_bytes: int = 0  # planned size of tokenized.N (documents and their separators)


def default_shards(token_bytes: int, shard_size: int = settings.SHARD_SIZE_BYTES) -> int:
    """The fewest shards of at most ``shard_size`` bytes each, ``ceil(token_bytes / shard_size)`` (the plan
    makes them of equal size, to a document). Depends on the data and the setting only, never on the cluster, so
    builds stay byte-identical across masters; and every shard adds a search to each query, so the count is
    kept as low as the shard size allows."""
    return max(1, math.ceil(token_bytes / shard_size))


def plan_shards(
    build_dir: str,
    chunk_summaries: list[dict],
    n_shards: int | None,
    width: int,
    read_n_tokens: Callable[[int], np.ndarray] | None = None,
    *,
    shard_size: int = settings.SHARD_SIZE_BYTES,
) -> list[ShardPlan]:
    """Split the documents (in global order: chunk order, then line) into contiguous, byte-balanced shards:
    ``n_shards`` of them, or when None as many as ``default_shards(total bytes, shard_size)``.

    ``read_n_tokens(chunk_id)`` gives a staged chunk's ``n_tokens`` column where the staging files are not in
    ``build_dir`` (a build into an object store reads that one column from there)."""
    staging = Path(build_dir) / "_staging"
    sizes_per_chunk = []
    for s in chunk_summaries:
        if s["n_docs"] == 0:
            sizes_per_chunk.append(np.zeros(0, dtype=np.int64))
            continue
        if read_n_tokens is not None:
            n_tok = read_n_tokens(s["chunk_id"])
        else:
            path, _, _ = chunk_paths(staging, s["chunk_id"])
            n_tok = pq.read_table(path, columns=["n_tokens"]).column(0).to_numpy()
        sizes_per_chunk.append((n_tok.astype(np.int64) + 1) * width)
    sizes = np.concatenate(sizes_per_chunk) if sizes_per_chunk else np.zeros(0, dtype=np.int64)
    n = int(sizes.size)
    if n == 0:
        return []
    total = int(sizes.sum())
    if n_shards is None:
        n_shards = default_shards(total, shard_size)
    n_shards = min(n_shards, n)
    cum = np.cumsum(sizes) - sizes  # byte start of every document
    bounds = [0]
    for k in range(1, n_shards):
        b = int(np.searchsorted(cum, k * total / n_shards, side="left"))
        b = max(b, bounds[-1] + 1)
        b = min(b, n - (n_shards - k))
        bounds.append(b)
    bounds.append(n)
    chunk_starts = np.cumsum([0] + [len(x) for x in sizes_per_chunk])
    plans = []
    for k in range(n_shards):
        lo, hi = bounds[k], bounds[k + 1]
        slices = []
        for ci, s in enumerate(chunk_summaries):
            c0, c1 = int(chunk_starts[ci]), int(chunk_starts[ci + 1])
            a, b = max(lo, c0), min(hi, c1)
            if a < b:
                slices.append((s["chunk_id"], a - c0, b - c0))
        ds_bytes = int(cum[hi - 1] + sizes[hi - 1] - cum[lo])
        plans.append(ShardPlan(k, lo, hi - lo, tuple(slices), ds_bytes))
    return plans


def _starts(sizes: list[int], pos: int) -> tuple[np.ndarray, int]:
    """Byte offsets (little-endian u64) of consecutive records of ``sizes`` bytes written from ``pos``, and
    the position after the last."""
    ends = np.cumsum(np.asarray(sizes, dtype=np.int64)) + pos
    return (ends - np.asarray(sizes, dtype=np.int64)).astype("<u8"), int(ends[-1]) if len(sizes) else pos


def metadata_lines(doc_id: int, source: str, lines: list, ext_ids: list) -> list[bytes]:
    """The ``metadata.N`` line of each document: exactly ``json.dumps({"doc_id", "source", "line", "id"},
    ensure_ascii=False, separators=(",", ":")) + "\\n"`` in UTF-8, formatted without a JSON encoder per
    document (the source is encoded once)."""
    src = encode_basestring(source)
    out = []
    for i, (line, ext) in enumerate(zip(lines, ext_ids)):
        line_s = "null" if line is None else str(int(line))
        ext_s = "null" if ext is None else encode_basestring(ext)
        out.append(f'{{"doc_id":{doc_id + i},"source":{src},"line":{line_s},"id":{ext_s}}}\n'.encode())
    return out


def write_shard(
    plan: ShardPlan,
    sources: dict[int, str],
    st: StageSettings,
    build_dir: str,
    cpus: int,
    ready: Callable[[list[str]], None] | None = None,
) -> dict:
    """Stage 2 for one shard: infini-gram shard files, its suffix array, and its part of the docs table.
    ``ready`` is called with files (relative to ``build_dir``) as they become final: the token files and the
    docs part before the suffix array, the longest step, is built; the suffix array itself before its
    sample and the files' checksums are made."""
    root = Path(build_dir)
    staging = root / "_staging"
    marker = staging / "shards" / f"shard-{plan.shard:05d}.done"
    done = marker_valid(marker, root)
    if done is not None and "sample_step" in done:  # a marker of an older freqindex lacks it: redo the shard
        done["resumed"] = True
        return done
    marker.parent.mkdir(parents=True, exist_ok=True)
    sa_dir = root / "sa"
    docs_dir = root / "docs"
    sa_dir.mkdir(exist_ok=True)
    docs_dir.mkdir(exist_ok=True)
    tokenizer_width = load_tokenizer(st.tokenizer, st.tokenizer_json).width
    sep = separator(tokenizer_width)
    s = plan.shard
    names = {
        k: sa_dir / f"{k}.{s}" for k in ("tokenized", "offset", "metadata", "metaoff", "table", "sample")
    }
    tmp = {k: Path(str(p) + ".tmp") for k, p in names.items()}
    docs_cols: dict[str, list] = {k: [] for k in DOCS_SCHEMA.names}
    ds_pos = 0
    mt_pos = 0
    doc_id = plan.doc_start
    n_tokens = 0
    with (
        open(tmp["tokenized"], "wb") as ds,
        open(tmp["offset"], "wb") as od,
        open(tmp["metadata"], "wb") as mt,
        open(tmp["metaoff"], "wb") as om,
    ):
        for chunk_id, r0, r1 in plan.slices:
            path, _, _ = chunk_paths(staging, chunk_id)
            table = pq.read_table(path).slice(r0, r1 - r0)
            source = sources[chunk_id]
            lines = table.column("line").to_pylist()
            ext_ids = table.column("ext_id").to_pylist()
            toks = table.column("tokens").to_pylist()
            n_bytes = table.column("n_bytes").to_pylist()
            n_toks = table.column("n_tokens").to_pylist()
            hashes = table.column("content_hash").to_pylist()
            tags = table.column("tags").to_pylist()
            k = len(toks)
            meta = metadata_lines(doc_id, source, lines, ext_ids)
            offsets, ds_pos = _starts([len(t) + len(sep) for t in toks], ds_pos)
            metaoffs, mt_pos = _starts([len(m) for m in meta], mt_pos)
            if k:
                ds.write(sep + sep.join(toks))
            od.write(offsets.tobytes())
            mt.write(b"".join(meta))
            om.write(metaoffs.tobytes())
            docs_cols["doc_id"].extend(range(doc_id, doc_id + k))
            docs_cols["shard"].extend([s] * k)
            docs_cols["source"].extend([source] * k)
            docs_cols["line"].extend(lines)
            docs_cols["ext_id"].extend(ext_ids)
            docs_cols["n_bytes"].extend(n_bytes)
            docs_cols["n_tokens"].extend(n_toks)
            docs_cols["content_hash"].extend(hashes)
            docs_cols["tags"].extend(tags)
            doc_id += k
            n_tokens += sum(n_toks)
    if doc_id - plan.doc_start != plan.n_docs:
        raise BuildError(f"shard {s}: wrote {doc_id - plan.doc_start} documents, planned {plan.n_docs}")
    if plan.ds_bytes and ds_pos != plan.ds_bytes:
        raise BuildError(f"shard {s}: wrote {ds_pos} token bytes, planned {plan.ds_bytes}")
    for k in ("tokenized", "offset", "metadata", "metaoff"):
        os.replace(tmp[k], names[k])
    # the docs table first: its columns (Python objects for every document) are freed before the suffix
    # array, the build's largest allocation, is made
    docs_path = docs_dir / f"part-{s:05d}.parquet"
    pq.write_table(pa.table(docs_cols, schema=DOCS_SCHEMA), str(docs_path) + ".tmp")
    del docs_cols
    os.replace(str(docs_path) + ".tmp", docs_path)
    if ready is not None:
        final = [names[k] for k in ("tokenized", "offset", "metadata", "metaoff")] + [docs_path]
        ready([str(p.relative_to(root)) for p in final])
    sa_builder = build_suffix_array(
        str(names["tokenized"]),
        str(names["table"]),
        str(staging / f"sa-work-{s}"),
        tokenizer_width,
        cpus,
        st.sa_mem_gib,
    )
    if ready is not None:
        ready([str(names["table"].relative_to(root))])
    ptr_size = pointer_bytes(ds_pos)
    step = write_sample(names["table"], names["tokenized"], ptr_size, tmp["sample"])
    os.replace(tmp["sample"], names["sample"])
    summary = {
        "shard": s,
        "doc_start": plan.doc_start,
        "n_docs": plan.n_docs,
        "n_tokens": n_tokens,
        "ds_bytes": ds_pos,
        "sa_builder": sa_builder,
        "ptr_size": ptr_size,  # recorded, so a reader never infers it from the table's size
        "sample_step": step,  # sa/sample.N: the search's in-memory first levels, made once here
        "files": {str(p.relative_to(root)): file_entry(p) for p in [*names.values(), docs_path]},
    }
    atomic_write_json(marker, summary)
    summary["resumed"] = False
    return summary
