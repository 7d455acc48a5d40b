"""The embedding stage over an existing index, and the FAISS build.

Each task embeds a block of documents (every window of a long document): ``vectors/part-N.npy`` (float32 or
float16, L2-normalized) and ``vectors/part-N.parquet`` (doc_id, char_start, char_end of the window inside the
stored document). The driver then trains the FAISS index on a sample, adds every part in order (vector id =
position in the concatenated parts) and writes ``vectors/index.faiss``. The index's other files stay untouched;
the manifest is replaced atomically at the end.

Everything is written in ``INDEX/.vectors.partial/`` first. A task records its result there
(``resume/part-N.json``) after both of its part files, beside the plan of the run (``resume/plan.json``: the
index's text, model, device, windows, dtype and the blocks of documents). A run that finds the plan of an
interrupted run equal to its own keeps the finished tasks and embeds only the others (embedding is the
expensive stage: hours on CPUs); any other plan starts over. The records are removed before publishing.
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

from freqindex import settings
from freqindex.errors import UsageError
from freqindex.faults import fault_point
from freqindex.fsutil import atomic_write_json, file_entry, marker_valid, read_json
from freqindex.manifest import publish_stage
from freqindex.suffix.index import Index
from freqindex.vectors import ann
from freqindex.vectors.cache import text_hash
from freqindex.vectors.embedders import encode_images, load_embedder, multi_windows, torch_threads

EMBED_BLOCK_BYTES = 256 * 1024  # embedding is slow: small blocks spread even a small index over all cores
META_SCHEMA = pa.schema([("doc_id", pa.int64()), ("char_start", pa.int32()), ("char_end", pa.int32())])
DEFAULT_CHUNK_TOKENS = settings.EMBED_CHUNK_TOKENS  # window sizes, in model tokens
DEFAULT_STRIDE = None  # half of each window
# in .vectors.partial/: the run's plan and a record per finished task (removed before publishing)
RESUME_DIR = "resume"
RESUME_VERSION = 1
PART_FILES = (".npy", ".parquet")  # what one embed task writes, as part-N<ext>


def part_stem(task: int) -> str:
    """The name of task ``task``'s part files without their extension (and of its resume record)."""
    return f"part-{task:05d}"


def embed_block(
    index_dir: str,
    model: str,
    task_id: int,
    shard_no: int,
    lo: int,
    hi: int,
    chunk_tokens: tuple[int, ...],
    stride: int | None,
    threads: int | None,
    out_dir: str,
    dtype: str,
    image_root: str | None = None,
    device: str | None = None,
) -> dict:
    """Embed documents [lo, hi) of a shard: every window of each size in ``chunk_tokens`` (see multi_windows),
    on this executor's GPU when it has one (``device`` auto)."""
    index = Index.open(index_dir, replacing="vectors")
    shard = index.shard(shard_no)
    emb = load_embedder(model, device=device)
    doc_ids, starts, ends, pieces = [], [], [], []
    missing = 0
    if image_root is not None:  # one vector per document: its image, found by external id under image_root
        paths = []
        for ix in range(lo, hi):
            ext = shard.meta(ix).get("id") or ""
            p = Path(image_root) / ext.split("#")[0]
            if not ext or not p.is_file():
                missing += 1
                continue
            doc_ids.append(shard.doc_start + ix)
            starts.append(0)
            ends.append(0)
            paths.append(str(p))
        with torch_threads(threads):
            vecs = encode_images(emb, paths).astype(dtype)
    else:
        texts = index.doc_texts(shard, lo, hi)
        spans = emb.token_spans(texts)
        for k, (t, sp) in enumerate(zip(texts, spans)):
            for cs, ce in multi_windows(sp, chunk_tokens, stride):
                doc_ids.append(shard.doc_start + lo + k)
                starts.append(cs)
                ends.append(ce)
                pieces.append(t[cs:ce])
        with torch_threads(threads):
            vecs = emb.encode(pieces).astype(dtype)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    base = out / part_stem(task_id)
    np.save(str(base) + ".tmp.npy", vecs)
    os.replace(str(base) + ".tmp.npy", str(base) + ".npy")
    pq.write_table(
        pa.table({"doc_id": doc_ids, "char_start": starts, "char_end": ends}, schema=META_SCHEMA),
        str(base) + ".tmp.parquet",
    )
    os.replace(str(base) + ".tmp.parquet", str(base) + ".parquet")
    return {
        "task": task_id,
        "docs": hi - lo,
        "vectors": len(doc_ids),
        "missing_images": missing,
        "embedded_on": f"{emb.device}/{emb.precision}",
    }


def run_embedding(
    index_dir: str,
    run_tasks: Callable,
    model: str = settings.DEFAULT_EMBEDDER,
    chunk_tokens: tuple[int, ...] = DEFAULT_CHUNK_TOKENS,
    stride: int | None = DEFAULT_STRIDE,
    factory: str | None = None,
    dtype: str = "float32",
    block_bytes: int = EMBED_BLOCK_BYTES,
    image_root: str | None = None,
    precomputed: str | None = None,
    vector_field: str = "embedding",
    id_field: str = "id",
    device: str | None = None,
) -> dict:
    """Embed a whole index through ``run_tasks`` (Spark or in-process), build the FAISS index, update the manifest.

    ``device``: where each task embeds (see :mod:`freqindex.vectors.embedders`; ``auto`` picks the GPU of
    the executor that runs the task, when it has one)."""
    if dtype not in ("float32", "float16"):
        raise UsageError("--dtype must be float32 or float16")
    chunk_tokens = tuple(sorted(set(int(c) for c in chunk_tokens)))
    if not chunk_tokens or chunk_tokens[0] < 4:
        raise UsageError("--chunk-tokens takes window sizes of at least 4 tokens")
    if stride is not None and not 1 <= stride <= chunk_tokens[0]:
        raise UsageError("--stride must be between 1 and the smallest window")
    t0 = time.monotonic()
    root = Path(index_dir).resolve()
    idx = Index.open(root, replacing="vectors")
    # fail early, on the driver, when the model is missing or the device unknown (a driver without the
    # executors' GPU checks the model on its CPU)
    emb = load_embedder(model, device="cpu" if device == "cuda" else device)
    if image_root is not None and not Path(image_root).is_dir():
        raise UsageError(f"--image-root {image_root} is not a directory")
    if image_root is None and chunk_tokens[-1] + 2 > emb.max_tokens:
        raise UsageError(
            f"--chunk-tokens {chunk_tokens[-1]} exceeds what {model} reads ({emb.max_tokens - 2})"
        )
    tasks = idx.plan_blocks(block_bytes) if precomputed is None else [(0, 0, 0)]
    plan = {
        "version": RESUME_VERSION,
        "text": text_hash(idx.manifest),
        "model": model,
        "device": device,
        "chunk_tokens": list(chunk_tokens),
        "stride": stride,
        "dtype": dtype,
        "image_root": str(Path(image_root).resolve()) if image_root else None,
        "precomputed": str(Path(precomputed).resolve()) if precomputed else None,
        "fields": [vector_field, id_field],
        "tasks": [list(t) for t in tasks],
    }
    work = root / ".vectors.partial"
    # what an interrupted run of the same plan finished (precomputed vectors: one cheap task, always redone)
    done = _resumable(work, plan, keep=precomputed is None)
    todo = [i for i in range(len(tasks)) if i not in done]
    threads = (
        None
        if precomputed is not None
        else max(1, (os.cpu_count() or 1) // max(1, min(len(todo), getattr(run_tasks, "parallelism", 1))))
    )
    root_s, work_s = str(root), str(work)

    def task(j: int) -> dict:
        i = todo[j]
        s, lo, hi = tasks[i]
        result = embed_block(
            root_s, model, i, s, lo, hi, chunk_tokens, stride, threads, work_s, dtype, image_root, device
        )
        _record(Path(work_s), i, result)  # after both part files
        return result

    t = time.monotonic()
    if precomputed is not None:  # vectors supplied with the corpus: nothing to embed
        done[0] = write_precomputed(str(root), precomputed, work_s, emb.dim, vector_field, id_field, dtype)
    elif todo:
        done.update(zip(todo, run_tasks("embed", task, len(todo))))
    results = [done[i] for i in range(len(tasks))]
    embed_s = time.monotonic() - t
    fault_point("embed-vectors-written")  # every vector part written; no FAISS index, nothing published
    shutil.rmtree(work / RESUME_DIR)  # the resume records are not part of the published stage
    n = sum(r["vectors"] for r in results)
    if n == 0:
        raise UsageError("nothing to embed" + (" (no image found under --image-root)" if image_root else ""))
    t = time.monotonic()
    fac, nprobe = (factory, None) if factory else ann.choose_factory(n)
    if factory and "IVF" in factory:
        nlist = int(factory.split("IVF")[1].split(",")[0].split("_")[0])
        nprobe = max(16, nlist // ann.NPROBE_FRACTION)
    index = ann.new_index(fac, emb.dim)
    parts = [work / f"{part_stem(i)}.npy" for i in range(len(tasks))]
    if not index.is_trained:
        rng = np.random.default_rng(0)
        sample_n = min(
            n, max(256 * 40, 50 * getattr(ann.faiss_module().extract_index_ivf(index), "nlist", 1))
        )
        take = np.sort(rng.choice(n, size=sample_n, replace=False))
        allv = np.concatenate([np.load(p, mmap_mode="r") for p in parts]) if n <= 2_000_000 else None
        sample = allv[take] if allv is not None else _gather(parts, take)
        index = ann.train(index, sample.astype(np.float32), use_gpu=True)
    for p in parts:  # built part by part, merged in order: vector id = position in the concatenated parts
        index.add(np.load(p).astype(np.float32))
    ann.faiss_module().write_index(index, str(work / "index.faiss"))
    build_s = time.monotonic() - t
    m = publish_stage(
        root,
        work,
        "vectors",
        {
            "model": model,
            "dim": emb.dim,
            "chunk_tokens": list(chunk_tokens),
            "stride": stride or "half",
            "dtype": dtype,
            "factory": fac,
            "nprobe": nprobe,
            "n_vectors": n,
            "parts": len(tasks),
            "modality": "precomputed" if precomputed else ("image" if image_root else "text"),
            "precomputed": str(Path(precomputed).resolve()) if precomputed else None,
            "text": None if image_root else "stored (normalized) document text",
            "image_root": str(Path(image_root).resolve()) if image_root else None,
            "missing_images": sum(r.get("missing_images", 0) for r in results),
            "embedded_on": sorted({r["embedded_on"] for r in results if "embedded_on" in r}),
        },
    )
    return {
        "index": str(root),
        "vectors": n,
        "missing_images": m["vectors"]["missing_images"],
        "documents": sum(r["docs"] for r in results),
        "factory": fac,
        "nprobe": nprobe,
        "tasks": len(tasks),
        "resumed_tasks": len(tasks) - len(todo),
        "embed_seconds": round(embed_s, 2),
        "faiss_seconds": round(build_s, 2),
        "seconds": round(time.monotonic() - t0, 2),
    }


def _resumable(work: Path, plan: dict, keep: bool = True) -> dict[int, dict]:
    """Prepare ``work`` for the embedding ``plan`` describes; returns the results of the tasks an earlier,
    interrupted run of the same plan finished there (its record vouches for both part files, sizes and
    sha256, as the build's task markers do), by task number. Anything else that run left (another plan, a
    half-written part) is removed first; with ``keep`` False, everything is."""
    records = work / RESUME_DIR
    try:
        same = keep and read_json(records / "plan.json") == plan
    except (OSError, ValueError):
        same = False
    if not same:
        shutil.rmtree(work, ignore_errors=True)
        records.mkdir(parents=True)
        atomic_write_json(records / "plan.json", plan)
        return {}
    done: dict[int, dict] = {}
    for i in range(len(plan["tasks"])):
        stem = part_stem(i)
        info = marker_valid(records / f"{stem}.json", work)
        if info is not None:
            done[i] = info["result"]
            continue
        for f in (records / f"{stem}.json", *(work / f"{stem}{ext}" for ext in PART_FILES)):
            f.unlink(missing_ok=True)
    for stray in work.glob("*.tmp.*"):  # a task killed while writing
        stray.unlink(missing_ok=True)
    return done


def _record(work: Path, i: int, result: dict) -> None:
    """Task ``i`` is done: its result, and the size and sha256 of both of its part files."""
    stem = part_stem(i)
    files = {f"{stem}{ext}": file_entry(work / f"{stem}{ext}") for ext in PART_FILES}
    atomic_write_json(work / RESUME_DIR / f"{stem}.json", {"result": result, "files": files})


def write_precomputed(
    index_dir: str,
    source: str,
    out_dir: str,
    dim: int,
    vector_field: str = "embedding",
    id_field: str = "id",
    dtype: str = "float32",
) -> dict:
    """Document vectors supplied with the corpus, written as one vector part (one vector per document).

    ``.npy`` files (one, or a directory of them in name order) are aligned with the documents in doc_id
    order, as LAION ships its embedding shards; Parquet files hold a list<float> column ``vector_field``
    and an id column ``id_field`` matched to the documents' external ids. Vectors are L2-normalized.
    """
    idx = Index.open(index_dir, replacing="vectors")
    n_docs = idx.total_docs
    src = Path(source)
    files = sorted(src.iterdir()) if src.is_dir() else [src]
    npys = [f for f in files if f.suffix == ".npy"]
    pqs = [f for f in files if f.suffix == ".parquet"]
    if not npys and not pqs:
        raise UsageError(f"--precomputed {source}: no .npy or .parquet files")
    if npys:
        vecs = np.concatenate([np.load(f).astype(np.float32) for f in npys])
        if vecs.ndim != 2 or len(vecs) != n_docs:
            raise UsageError(
                f"--precomputed: {len(vecs)} vectors for {n_docs} documents (.npy rows must align with doc_id)"
            )
        doc_ids = np.arange(n_docs, dtype=np.int64)
    else:
        ext_to_doc: dict[str, int] = {}
        docs = idx.docs_table(["doc_id", "ext_id"])
        for d, e in zip(docs.column("doc_id").to_pylist(), docs.column("ext_id").to_pylist()):
            if e is not None:
                ext_to_doc.setdefault(e, d)
        rows, ids = [], []
        for f in pqs:
            t = pq.read_table(f)
            if vector_field not in t.column_names or id_field not in t.column_names:
                raise UsageError(f"--precomputed {f}: needs columns {vector_field!r} and {id_field!r}")
            for e, v in zip(t.column(id_field).to_pylist(), t.column(vector_field).to_pylist()):
                d = ext_to_doc.get(str(e))
                if d is not None and v is not None:
                    ids.append(d)
                    rows.append(v)
        if not rows:
            raise UsageError("--precomputed: no vector matched a document's external id")
        order = np.argsort(np.asarray(ids), kind="stable")
        doc_ids = np.asarray(ids, dtype=np.int64)[order]
        vecs = np.asarray(rows, dtype=np.float32)[order]
    if vecs.shape[1] != dim:
        raise UsageError(f"--precomputed vectors have {vecs.shape[1]} dimensions; the query model has {dim}")
    norms = np.linalg.norm(vecs, axis=1, keepdims=True)
    vecs = vecs / np.where(norms == 0, 1, norms)
    out = Path(out_dir)
    np.save(out / "part-00000.npy", vecs.astype(dtype))
    pq.write_table(
        pa.table(
            {
                "doc_id": doc_ids,
                "char_start": np.zeros(len(doc_ids), np.int32),
                "char_end": np.zeros(len(doc_ids), np.int32),
            },
            schema=META_SCHEMA,
        ),
        out / "part-00000.parquet",
    )
    return {
        "task": 0,
        "docs": int(len(set(doc_ids.tolist()))),
        "vectors": int(len(vecs)),
        "missing_images": 0,
        "missing_vectors": int(n_docs - len(set(doc_ids.tolist()))),
    }


def _gather(parts: list[Path], take: np.ndarray) -> np.ndarray:
    out, base = [], 0
    for p in parts:
        a = np.load(p, mmap_mode="r")
        sel = take[(take >= base) & (take < base + len(a))] - base
        out.append(np.asarray(a[sel]))
        base += len(a)
    return np.concatenate(out)
