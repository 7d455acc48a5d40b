"""The build driver: plans chunks and shards, runs the stage cores through a task runner, publishes atomically.

Pure Python; ``jobs/build_index.py`` supplies a runner that executes the tasks in Spark. Where the files go
is a :class:`~freqindex.build.target.BuildTarget`: a local output is written to ``.NAME.partial`` beside it
and renamed into place only once its manifest is written; an output URL gets every file at its final key
and ``manifest.json`` last. Either way a manifest means a complete index. A rerun resumes: a task whose
``.done`` marker and checksums match is not redone; an unfinished build of other input or settings is
discarded. A lock beside the output (``freqindex.build.lock``) keeps a second build of the same output out
from planning to publishing. The driver only plans, collects the tasks' small summaries and publishes.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import os
import platform
import time
from collections.abc import Callable
from dataclasses import asdict
from importlib import metadata as _md
from typing import TYPE_CHECKING

from freqindex import __version__, settings
from freqindex.build.guards import check_output_apart_from_inputs
from freqindex.build.lock import OutputLock, lock_for
from freqindex.build.scheduling import ShardTaskLayout, shard_task_layout
from freqindex.build.target import BuildTarget, RemoteTarget, target_for
from freqindex.build.tasks import chunk_bad_file, chunk_file, run_chunk_task, run_shard_task
from freqindex.config import BuildConfig
from freqindex.corpus.readers import (
    ChunkSpec,
    ReadOptions,
    count_newlines,
    describe_skipped,
    expand_inputs,
    input_fingerprint,
    input_records,
    needs_line_base,
    parquet_problem,
    plan_chunks,
    with_line_bases,
)
from freqindex.corpus.stage import StageSettings, write_quarantine
from freqindex.errors import BadInputError, BuildError
from freqindex.faults import fault_point
from freqindex.manifest import engine_params, generation_quarantine
from freqindex.suffix.stage import ShardPlan, plan_shards
from freqindex.text.tokenizers import load_tokenizer

if TYPE_CHECKING:
    from freqindex.build.append import AppendBase

TaskRunner = Callable[[str, Callable[[int], dict], int], list]


# what the manifest keeps of each shard task's summary
_SHARD_KEYS = ("shard", "doc_start", "n_docs", "n_tokens", "ds_bytes", "ptr_size", "sample_step")


def run_in_process(description: str, fn: Callable[[int], dict], n: int) -> list[dict]:
    """A task runner without Spark: the pure core, one task after another."""
    return [fn(i) for i in range(n)]


def _tool_versions() -> dict:
    out = {"python": platform.python_version(), "freqindex": __version__}
    for pkg in ("pyspark", "infini-gram", "pydivsufsort", "pyarrow", "tokenizers", "numpy"):
        try:
            out[pkg] = _md.version(pkg)
        except _md.PackageNotFoundError:
            out[pkg] = None
    return out


def _check_plan(cfg: BuildConfig, files: list, skipped: list, opts: ReadOptions, say) -> None:
    """What the driver can tell before Spark starts: skipped files are named (and fail ``--strict``), and a
    Parquet file without the text column fails ``--strict``, or the build when no input has the column."""
    if skipped:
        listing = describe_skipped(skipped)
        if cfg.strict:
            raise BadInputError(
                f"{len(skipped)} input file(s) would be skipped: {listing} (--strict; name the files to index, "
                "e.g. with a glob, or drop --strict)"
            )
        say(f"skipping {len(skipped)} input file(s): {listing}")
    problems = [(p, parquet_problem(p, opts)) for p, fmt, _ in files if fmt == "parquet"]
    problems = [(p, why[0]) for p, why in problems if why]
    if problems and cfg.strict:
        raise BadInputError(f"{problems[0][0]}: {problems[0][1]} (--strict)")
    if problems and len(problems) == len(files):
        raise BadInputError(f"nothing to index: {problems[0][0]}: {problems[0][1]}")


def _shard_layout(run_tasks: TaskRunner, plans: list[ShardPlan], mem_gib: float) -> ShardTaskLayout:
    """How the shard tasks use the cores and memory of the runner's executors (``freqindex.build.scheduling``).
    A runner that does not describe its resources runs one task at a time in this process: all cores."""
    resources = getattr(run_tasks, "shard_resources", None)
    if resources is None:
        return ShardTaskLayout(threads=os.cpu_count() or 1)
    return shard_task_layout([p.ds_bytes for p in plans], mem_gib, **resources())


def _run_shard_tasks(
    run_tasks: TaskRunner, description: str, fn: Callable[[int], dict], n: int, layout: ShardTaskLayout
) -> list:
    if getattr(run_tasks, "shard_resources", None) is None:
        return run_tasks(description, fn, n)
    return run_tasks(description, fn, n, layout=layout)


def build_index(
    cfg: BuildConfig,
    run_tasks: TaskRunner,
    *,
    overwrite: bool = False,
    on_message: Callable[[str], None] | None = None,
) -> dict:
    """Build (or resume, or confirm) the index that ``cfg`` describes. Returns the build summary.

    ``run_tasks(description, fn, n)`` runs ``fn(i)`` for every ``i in range(n)`` (as Spark tasks in
    ``jobs/build_index.py``, or in this process for tests of the pure core) and returns the results.
    """
    cfg.validate()
    say = on_message or (lambda _m: None)
    t0 = time.monotonic()
    so = cfg.storage_options
    files, skipped = expand_inputs(list(cfg.inputs), cfg.format, so)
    check_output_apart_from_inputs(list(cfg.inputs), cfg.output, so)
    opts = ReadOptions(cfg.text_field, cfg.id_field, cfg.text_per_line, cfg.tags_field, so)
    _check_plan(cfg, files, skipped, opts, say)
    chunks = plan_chunks(files, opts, cfg.chunk_bytes)
    tokenizer = load_tokenizer(cfg.tokenizer)
    tok_desc = tokenizer.describe()
    fingerprint = [[p, fmt, comp, *input_fingerprint(p, so)] for p, fmt, comp in files]
    key = cfg.content_key([fingerprint, tok_desc])
    target = target_for(cfg.output, so, cfg.scratch_dir)
    lock = lock_for(target.output, so)
    lock.acquire()
    try:
        if lock.stale is not None:
            say(f"took over the lock of an earlier build ({lock.stale.describe()}) that is no longer running")
        existing = target.prepare(key, overwrite)
        inputs = (
            [] if existing is not None and existing.get("content_key") == key else input_records(files, so)
        )
        plan = LockedBuild(target, files, skipped, chunks, tokenizer, tok_desc, key, inputs)
        return _build_locked(cfg, run_tasks, overwrite, say, t0, lock, plan, prepared=existing)
    except (BuildError, OSError) as exc:
        raise BuildError(target.failure_message(exc)) from None
    finally:
        lock.release()


@dataclasses.dataclass(frozen=True)
class LockedBuild:
    """What a build holding its output's lock writes: the target, the input files (and those skipped), their
    chunks, the tokenizer with its description, the content key, and the input records for the manifest."""

    target: BuildTarget
    files: list
    skipped: list
    chunks: list[ChunkSpec]
    tokenizer: object
    tok_desc: dict
    key: str
    inputs: list[dict]


def _build_locked(
    cfg: BuildConfig,
    run_tasks: TaskRunner,
    overwrite: bool,
    say: Callable[[str], None],
    t0: float,
    lock: OutputLock,
    plan: LockedBuild,
    base: AppendBase | None = None,
    prepared: dict | None = None,
) -> dict:
    """The build once the output is locked: prepare or resume the unfinished build, run the stages, publish.

    With ``base`` (``freqindex build --append-to``) the index ``base.manifest`` describes stays as it is: the
    new documents become a new generation of shards numbered after its last, and the new manifest lists both.
    """
    target, files, skipped, chunks = plan.target, plan.files, plan.skipped, plan.chunks
    tokenizer, tok_desc, key, inputs = plan.tokenizer, plan.tok_desc, plan.key, plan.inputs
    existing = prepared
    if existing is not None and existing.get("content_key") == key:
        removed = target.clean_up_published() if isinstance(target, RemoteTarget) else 0
        if removed:
            say(f"removed {removed} object(s) an interrupted publish left beside the index")
        say(f"{target.output} is already a complete index of this input and settings; nothing to do")
        return {
            "status": "up-to-date",
            "output": target.output,
            **existing["counts"],
            "shards": len(existing["shards"]),
            "seconds": round(time.monotonic() - t0, 3),
        }
    if base is None:
        target.start(key, cfg.to_dict(), say)
    else:
        target.start_append(key, cfg.to_dict(), base.manifest, say)

    tokenizer_json = None
    driver_files: dict[str, dict] = {}
    if base is not None and cfg.tokenizer != "bytes":  # the index's own tokenizer file, never rewritten
        tokenizer_json = target.driver_location(base.manifest["tokenizer"]["file"])
    elif cfg.tokenizer != "bytes":
        rel = "tokenizer/tokenizer.json"
        local = target.work_dir() / rel
        local.parent.mkdir(parents=True, exist_ok=True)
        local.write_text(tokenizer.to_json_str(), encoding="utf-8")
        driver_files[rel] = target.put_driver_file(local, rel)
        tokenizer_json = target.driver_location(rel)
    st = StageSettings(
        cfg.text_field,
        cfg.id_field,
        cfg.text_per_line,
        cfg.tokenizer,
        tokenizer_json,
        cfg.normalization,
        cfg.strict,
        cfg.sa_mem_gib,
        cfg.tags_field,
        cfg.storage_options,
    )
    store = target.task_store()
    timings: dict[str, float] = {}
    split = [c for c in chunks if needs_line_base(c)]
    if split:  # remote byte ranges: count each range's newlines once, so no task reads what precedes it
        t = time.monotonic()
        split_payload = [asdict(c) for c in split]
        read_opts = st.read_options()

        def count_task(i: int) -> dict:
            spec = ChunkSpec(**split_payload[i])
            return {"chunk_id": spec.chunk_id, "newlines": count_newlines(spec, read_opts)}

        counted = run_tasks("count lines", count_task, len(split))
        chunks = with_line_bases(chunks, {r["chunk_id"]: r["newlines"] for r in counted})
        timings["count_lines"] = round(time.monotonic() - t, 3)
    chunk_payload = [asdict(c) for c in chunks]

    def tokenize_task(cid: int) -> dict:
        return run_chunk_task(ChunkSpec(**chunk_payload[cid]), st, store)

    t = time.monotonic()
    summaries = sorted(run_tasks("read + tokenize", tokenize_task, len(chunks)), key=lambda s: s["chunk_id"])
    timings["tokenize"] = round(time.monotonic() - t, 3)
    fault_point("driver-tokenized")

    n_bad = sum(s["n_bad"] for s in summaries)
    if cfg.strict and n_bad:
        first = next(s for s in summaries if s["n_bad"])
        fb = first["first_bad"]
        target.discard()
        where = f"{first['source']}:{fb['line']}" if fb["line"] is not None else first["source"]
        raise BadInputError(f"{where}: {fb['reason']} (--strict)")
    n_docs = sum(s["n_docs"] for s in summaries)
    if n_docs == 0:
        firsts = [s for s in summaries if s["first_bad"]]
        hint = ""
        if firsts:
            fb = firsts[0]["first_bad"]
            where = firsts[0]["source"] + (f":{fb['line']}" if fb["line"] is not None else "")
            hint = f"; first bad record: {where}: {fb['reason']}"
        target.discard()
        raise BadInputError(f"nothing to index: 0 valid documents, {n_bad} bad records{hint}")

    plans: list[ShardPlan] = plan_shards(
        "",
        summaries,
        cfg.shards,
        tokenizer.width,
        lambda cid: target.read_column(chunk_file(cid), "n_tokens"),
        shard_size=cfg.shard_size_bytes,
    )
    if base is not None:  # a new generation: shard numbers and doc_ids continue the index's
        plans = [
            dataclasses.replace(p, shard=p.shard + base.n_shards, doc_start=p.doc_start + base.n_docs)
            for p in plans
        ]
    sources = {c.chunk_id: c.path for c in chunks}
    layout = _shard_layout(run_tasks, plans, cfg.sa_mem_gib)

    def shard_task(sid: int) -> dict:
        return run_shard_task(plans[sid], sources, st, store, layout.threads)

    t = time.monotonic()
    results = _run_shard_tasks(run_tasks, "write shards + suffix arrays", shard_task, len(plans), layout)
    shard_summaries = sorted(results, key=lambda s: s["shard"])
    timings["shards"] = round(time.monotonic() - t, 3)
    fault_point("driver-before-publish")

    t = time.monotonic()
    work = target.work_dir()
    for s in summaries:
        if s["n_bad"]:
            target.fetch_staged(chunk_bad_file(s["chunk_id"]), work / chunk_bad_file(s["chunk_id"]))
    if base is None:
        qpath, by_reason = write_quarantine(str(work), summaries)
        qrel = str(qpath.relative_to(work))
    else:  # the earlier generations' quarantine files stay as they are: this one gets a file of its own
        qpath, by_reason = write_quarantine(
            str(work), summaries, f"_staging/quarantine-g{base.generation:05d}"
        )
        qrel = generation_quarantine(base.generation)
    files_meta: dict[str, dict] = {}
    store_tags: dict[str, str] = {}
    for s in shard_summaries:
        files_meta.update(s["files"])
        store_tags.update(s.get("store_tags") or {})
    files_meta[qrel] = target.put_driver_file(qpath, qrel)
    files_meta.update(driver_files)
    width = tokenizer.width
    counts = {
        "documents": n_docs,
        "tokens": sum(s["n_tokens"] for s in shard_summaries),
        "input_bytes": sum(s["n_bytes"] for s in summaries),
        "quarantined": n_bad,
        "blank_lines": sum(s["n_blank"] for s in summaries),
        "input_files": len(files),
        "chunks": len(chunks),
        "skipped_files": len(skipped),
        "quarantine_by_reason": by_reason,
    }
    tok_manifest = dict(tok_desc)
    if tokenizer_json:
        tok_manifest["file"] = "tokenizer/tokenizer.json"
    gen_shards = [{k: s[k] for k in _SHARD_KEYS} for s in shard_summaries]
    generation = {
        "generation": 0 if base is None else base.generation,
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "first_shard": gen_shards[0]["shard"],
        "n_shards": len(gen_shards),
        "doc_start": gen_shards[0]["doc_start"],
        "n_docs": n_docs,
        "quarantine": qrel,
        "counts": dict(counts),
        "inputs": inputs,
    }
    manifest = {
        "format": settings.INDEX_FORMAT,
        "schema_version": settings.SCHEMA_VERSION,
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "content_key": key,
        "config": cfg.to_dict(),
        "tokenizer": tok_manifest,
        "token_dtype": tok_desc["dtype"],
        "normalization": {"name": cfg.normalization, "version": 1},
        "engine": engine_params(width),
        "counts": counts,
        "shards": [{k: s[k] for k in _SHARD_KEYS} for s in shard_summaries],
        "files": files_meta,
        "skipped_files": [{"path": p, "reason": why} for p, why in skipped],
        "tools": _tool_versions(),
        "generations": [generation],
    }
    if base is not None:
        manifest = base.combine(manifest, say, run_tasks, target)
    target.publish(manifest, store_tags, lock)
    timings["finalize"] = round(time.monotonic() - t, 3)
    resumed = sum(1 for s in summaries if s.get("resumed")) + sum(
        1 for s in shard_summaries if s.get("resumed")
    )
    return {
        "status": "built" if base is None else "appended",
        **({"generation": base.generation, "quarantine_file": qrel} if base is not None else {}),
        "output": target.output,
        **counts,
        "shards": len(shard_summaries),
        "token_dtype": tok_desc["dtype"],
        "normalization": cfg.normalization,
        "resumed_tasks": resumed,
        "shard_tasks": {
            **layout.describe(),
            "spark_task_cpus": sorted(
                {s["spark_task_cpus"] for s in shard_summaries if "spark_task_cpus" in s}
            ),
        },
        "skipped": [{"path": p, "reason": why} for p, why in skipped],
        "executor_python": sorted({s["python"] for s in summaries if s.get("python")}),
        "executor_scratch": sorted({s["scratch"] for s in summaries + shard_summaries if s.get("scratch")}),
        "timings": timings,
        "seconds": round(time.monotonic() - t0, 3),
    }
