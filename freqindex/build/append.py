"""Corpora that grow: ``freqindex build NEW_INPUT... --append-to INDEX``.

The new documents become a new *generation* of shards, numbered after the index's last shard, with doc_ids
continuing after its last document. No file of the index changes: the new shards, their docs parts, the
generation's quarantine file (``quarantine/quarantine-gNNNNN.parquet``) and, where the index was tagged or
embedded, new concept-hit and vector parts are new files; only the manifest (and ``vectors/index.faiss``,
which the new vectors are added to) is replaced, last. The manifest lists the generations, each with its
shards, documents, counts and input files (path, size, sha256); an input already recorded with the same
path, size and sha256 is skipped with a message.

The commit point is the manifest, as for a build: a local index gets its new generation in
``.NAME.partial`` (hard links to the index's files plus the new ones) renamed into place once its manifest
is written; an index at a URL gets the new objects at new keys and its manifest replaced by one PUT. A
failed or killed append leaves the index as it was (rerun the command: it resumes). The output lock is held
from planning to publishing, as in a build.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from freqindex.build.driver import LockedBuild, TaskRunner, _build_locked, _check_plan
from freqindex.build.guards import check_output_apart_from_inputs
from freqindex.build.lock import lock_for
from freqindex.build.target import RemoteTarget, target_for
from freqindex.config import BuildConfig
from freqindex.corpus.readers import ReadOptions, expand_inputs, input_fingerprint, input_records, plan_chunks
from freqindex.errors import BuildError, UsageError
from freqindex.fsutil import file_entry
from freqindex.manifest import SEAL_KEY, generation_quarantine, manifest_problem, write_manifest
from freqindex.text.tokenizers import load_tokenizer

# the settings that decide an index's bytes: an append always takes them from the index it extends
INDEX_SETTINGS = ("text_field", "id_field", "text_per_line", "tags_field", "tokenizer", "normalize")
COUNT_SUMS = (
    "documents",
    "tokens",
    "input_bytes",
    "quarantined",
    "blank_lines",
    "input_files",
    "chunks",
    "skipped_files",
)


def generations(m: dict) -> list[dict]:
    """The manifest's generations; an index built before appends existed is one generation whose inputs
    were not recorded."""
    if m.get("generations"):
        return m["generations"]
    shards = m["shards"]
    return [
        {
            "generation": 0,
            "created": m.get("created"),
            "first_shard": 0,
            "n_shards": len(shards),
            "doc_start": 0,
            "n_docs": sum(s["n_docs"] for s in shards),
            "quarantine": generation_quarantine(0),
            "counts": dict(m["counts"]),
            "inputs": [],
        }
    ]


def append_config(cfg: BuildConfig, m: dict) -> BuildConfig:
    """``cfg`` (new inputs, the index as output, how to run) with the index's own settings: a generation is
    read, normalized and tokenized exactly as the index was. Its shards follow the index's shard size."""
    old = m["config"]
    given = {k: getattr(cfg, k) for k in INDEX_SETTINGS}
    for k in ("tokenizer", "normalize"):
        if given[k] not in (None, "bytes" if k == "tokenizer" else None) and given[k] != old.get(k):
            raise UsageError(
                f"--append-to: the index was built with {k} {old.get(k)!r}; an append cannot use {given[k]!r}"
            )
    shard_size = old.get("shard_size")
    return dataclasses.replace(
        cfg, **{k: old.get(k) for k in INDEX_SETTINGS}, shards=None, shard_size=shard_size
    )


@dataclass
class AppendBase:
    """The index an append extends: what the driver needs to number the new generation and combine it."""

    manifest: dict
    local_root: Path | None  # the local index (tag and embed of the new documents run there)

    @property
    def n_shards(self) -> int:
        return len(self.manifest["shards"])

    @property
    def n_docs(self) -> int:
        return int(self.manifest["counts"]["documents"])

    @property
    def generation(self) -> int:
        return len(generations(self.manifest))

    def combine(self, new: dict, say: Callable[[str], None], run_tasks: TaskRunner, target) -> dict:
        """The manifest of the index plus the generation ``new`` describes (the driver's manifest of the new
        shards alone), with concept hits and vectors extended for the new documents; checked before it is
        published."""
        old = self.manifest
        counts = {k: old["counts"].get(k, 0) + new["counts"][k] for k in COUNT_SUMS}
        reasons = dict(old["counts"].get("quarantine_by_reason", {}))
        for k, v in new["counts"]["quarantine_by_reason"].items():
            reasons[k] = reasons.get(k, 0) + v
        counts["quarantine_by_reason"] = reasons
        out = {k: v for k, v in old.items() if k != SEAL_KEY}
        out.update(
            {
                "created": new["created"],
                "schema_version": new["schema_version"],
                "content_key": new["content_key"],
                "counts": counts,
                "shards": old["shards"] + new["shards"],
                "files": {**old["files"], **new["files"]},
                "skipped_files": old.get("skipped_files", []) + new["skipped_files"],
                "tools": new["tools"],
                "generations": generations(old) + new["generations"],
            }
        )
        if old.get("concepts") or old.get("vectors"):
            out = self._extend_stages(out, say, run_tasks, target)
        problem = manifest_problem(out)
        if problem:
            raise BuildError(f"the append produced an inconsistent index: {problem}")
        return out

    def _extend_stages(self, m: dict, say, run_tasks: TaskRunner, target) -> dict:
        """Tag and embed the new shards' documents with the index's vocabulary and model, as new parts (the
        stage cores of ``freqindex tag`` / ``freqindex embed``, over the new generation only)."""
        from freqindex.suffix.index import Index

        work = target.work_dir()  # the partial index: the index's files (linked) and the new shards
        write_manifest(work, m)  # the new shards, the old stages: a complete index the stage cores open
        index = Index.open(work)
        blocks_from = self.n_shards
        if m.get("concepts"):
            m = _extend_concepts(index, m, blocks_from, run_tasks, say)
            write_manifest(work, m)
            index = Index.open(work)
        if m.get("vectors"):
            m = _extend_vectors(index, m, blocks_from, run_tasks, say, self.local_root)
        return m


def _new_files(root: Path, rels: list[str]) -> dict[str, dict]:
    return {rel: file_entry(root / rel) for rel in rels}


def _extend_concepts(index, m: dict, first_shard: int, run_tasks: TaskRunner, say) -> dict:
    import pyarrow.parquet as pq

    from freqindex.concepts.stage import TAG_BLOCK_BYTES, tag_block

    section = m["concepts"]
    vt = pq.read_table(index.file("concepts/vocab.parquet"))
    payload = [
        (c, n, b, list(f))
        for c, n, b, f in zip(
            vt.column("concept_id").to_pylist(),
            vt.column("concept").to_pylist(),
            vt.column("benchmark").to_pylist(),
            vt.column("forms").to_pylist(),
        )
    ]
    blocks = [b for b in index.plan_blocks(TAG_BLOCK_BYTES) if b[0] >= first_shard]
    base = int(section["parts"])
    root_s, out_s = str(index.path), str(index.path / ".concepts.append")
    say(f"tagging the new documents with the index's vocabulary ({len(blocks)} task(s))")

    def task(i: int) -> dict:
        s, lo, hi = blocks[i]
        return tag_block(root_s, payload, base + i, s, lo, hi, out_s)

    results = run_tasks("tag concepts (append)", task, len(blocks))
    rels = []
    for i in range(len(blocks)):
        rel = f"concepts/hits/part-{base + i:05d}.parquet"
        os.replace(Path(out_s) / "hits" / f"part-{base + i:05d}.parquet", index.path / rel)
        rels.append(rel)
    shutil.rmtree(out_s, ignore_errors=True)
    section = {
        **section,
        "parts": base + len(blocks),
        "n_pairs": section["n_pairs"] + sum(r["pairs"] for r in results),
    }
    return {**m, "concepts": section, "files": {**m["files"], **_new_files(index.path, rels)}}


def _extend_vectors(index, m: dict, first_shard: int, run_tasks: TaskRunner, say, original: Path) -> dict:
    import numpy as np

    from freqindex.vectors import ann
    from freqindex.vectors.stage import EMBED_BLOCK_BYTES, embed_block

    section = m["vectors"]
    if section.get("modality") == "precomputed":
        raise UsageError(
            "--append-to: the index's vectors were supplied precomputed (--precomputed); append, then run "
            "`freqindex embed --precomputed` again with vectors for every document"
        )
    blocks = [b for b in index.plan_blocks(EMBED_BLOCK_BYTES) if b[0] >= first_shard]
    base = int(section["parts"])
    chunk_tokens = tuple(section["chunk_tokens"])
    stride = None if section.get("stride") in (None, "half") else int(section["stride"])
    parallel = max(1, min(len(blocks), getattr(run_tasks, "parallelism", 1)))
    threads = max(1, (os.cpu_count() or 1) // parallel)
    root_s, out_s = str(index.path), str(index.path / ".vectors.append")
    model, dtype, image_root = section["model"], section["dtype"], section.get("image_root")
    say(f"embedding the new documents with {model} ({len(blocks)} task(s))")

    def task(i: int) -> dict:
        s, lo, hi = blocks[i]
        return embed_block(
            root_s, model, base + i, s, lo, hi, chunk_tokens, stride, threads, out_s, dtype, image_root
        )

    t = time.monotonic()
    results = run_tasks("embed (append)", task, len(blocks))
    faiss = ann.faiss_module()
    # the index's own FAISS file (a resumed append may already have replaced the partial index's copy)
    fi = faiss.read_index(str(original / "vectors/index.faiss"))
    rels = []
    for i in range(len(blocks)):
        for ext in (".npy", ".parquet"):
            rel = f"vectors/part-{base + i:05d}{ext}"
            os.replace(Path(out_s) / f"part-{base + i:05d}{ext}", index.path / rel)
            rels.append(rel)
        fi.add(np.load(index.path / f"vectors/part-{base + i:05d}.npy").astype(np.float32))
    shutil.rmtree(out_s, ignore_errors=True)
    # a new file replaces the index's by rename: the linked original is never written into
    tmp = index.path / "vectors" / ".index.faiss.append"
    faiss.write_index(fi, str(tmp))
    os.replace(tmp, index.path / "vectors/index.faiss")
    rels.append("vectors/index.faiss")
    say(f"embedded {sum(r['vectors'] for r in results):,} window(s) in {time.monotonic() - t:.1f} s")
    section = {
        **section,
        "parts": base + len(blocks),
        "n_vectors": section["n_vectors"] + sum(r["vectors"] for r in results),
        "missing_images": section.get("missing_images", 0) + sum(r.get("missing_images", 0) for r in results),
    }
    return {**m, "vectors": section, "files": {**m["files"], **_new_files(index.path, rels)}}


def append_index(
    cfg: BuildConfig,
    run_tasks: TaskRunner,
    *,
    on_message: Callable[[str], None] | None = None,
) -> dict:
    """Append ``cfg.inputs`` to the index at ``cfg.output`` as a new generation. Returns the summary
    (``status`` ``appended``, or ``up-to-date`` when every input is already in the index)."""
    say = on_message or (lambda _m: None)
    t0 = time.monotonic()
    so = cfg.storage_options
    target = target_for(cfg.output, so, cfg.scratch_dir)
    files, skipped = expand_inputs(list(cfg.inputs), cfg.format, so)
    check_output_apart_from_inputs(list(cfg.inputs), cfg.output, so)
    lock = lock_for(target.output, so)
    lock.acquire()
    try:
        if lock.stale is not None:
            say(f"took over the lock of an earlier build ({lock.stale.describe()}) that is no longer running")
        m = target.prepare_append()
        if isinstance(target, RemoteTarget) and (m.get("concepts") or m.get("vectors")):
            raise UsageError(
                f"--append-to {target.output}: the index was tagged or embedded, and the tag and embed stages "
                "write into a local index: pull it, append to the local copy, or append before tagging"
            )
        cfg = append_config(cfg, m).validate()
        known = {
            (i["path"], i["size"], i["sha256"])
            for g in generations(m)
            for i in g.get("inputs", [])
            if i.get("sha256")
        }
        if not m.get("generations"):
            say(
                "the index records no checksums of its inputs (built by an older freqindex): inputs it "
                "already holds cannot be recognized"
            )
        records = input_records(files, so)
        keep = [(f, r) for f, r in zip(files, records) if (r["path"], r["size"], r["sha256"]) not in known]
        dup = [r["path"] for f, r in zip(files, records) if (r["path"], r["size"], r["sha256"]) in known]
        if dup:
            shown = ", ".join(dup[:5]) + (f", and {len(dup) - 5} more" if len(dup) > 5 else "")
            say(
                f"skipping {len(dup)} input file(s) already in the index (same path, size and sha256): {shown}"
            )
        if not keep:
            say(f"{target.output} already holds every input given; nothing to append")
            return {
                "status": "up-to-date",
                "output": target.output,
                **{k: m["counts"][k] for k in COUNT_SUMS},
                "shards": len(m["shards"]),
                "generations": len(generations(m)),
                "already_indexed": dup,
                "seconds": round(time.monotonic() - t0, 3),
            }
        files = [f for f, _ in keep]
        records = [r for _, r in keep]
        opts = ReadOptions(cfg.text_field, cfg.id_field, cfg.text_per_line, cfg.tags_field, so)
        _check_plan(cfg, files, skipped, opts, say)
        chunks = plan_chunks(files, opts, cfg.chunk_bytes)
        tok = m["tokenizer"]
        if tok["name"] == "bytes":
            tokenizer = load_tokenizer("bytes")
        else:  # the index's own tokenizer file: the generation is tokenized exactly as the index was
            local = target.work_dir() / "_append_tokenizer.json"
            if isinstance(target, RemoteTarget):
                target.fs.get_file(target._p(tok["file"]), str(local))
            else:
                local = Path(target.output) / tok["file"]
            tokenizer = load_tokenizer(tok["name"], str(local))
        tok_desc = tokenizer.describe()
        fingerprint = [[p, fmt, comp, *input_fingerprint(p, so)] for p, fmt, comp in files]
        key = cfg.content_key([fingerprint, tok_desc, "append", m[SEAL_KEY]])
        base = AppendBase(m, None if isinstance(target, RemoteTarget) else Path(target.output))
        plan = LockedBuild(target, files, skipped, chunks, tokenizer, tok_desc, key, records)
        summary = _build_locked(cfg, run_tasks, False, say, t0, lock, plan, base)
        summary["already_indexed"] = dup
        return summary
    except (BuildError, OSError) as exc:
        raise BuildError(target.failure_message(exc)) from None
    finally:
        lock.release()
