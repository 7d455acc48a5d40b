"""The build driver: plans chunks and shards, runs the stage cores through a task runner, publishes atomically.

Pure Python; ``jobs/build_index.py`` supplies a runner that executes the tasks in Spark. The index is written
to ``.NAME.partial`` beside the output and renamed into place only once its manifest is written, so a
directory with a manifest is always complete. A rerun resumes: a task whose ``.done`` marker and checksums
match is not redone; a partial build of other input or settings is discarded. A lock beside the output
(``freqindex.build.lock``) keeps a second build of the same output out from planning to publishing.
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict
from importlib import metadata as _md
from pathlib import Path

from freqindex import __version__, settings
from freqindex.build.guards import check_output_apart_from_inputs, failure_message
from freqindex.build.lock import OutputLock, lock_for
from freqindex.build.scheduling import ShardTaskLayout, shard_task_layout
from freqindex.config import BuildConfig
from freqindex.corpus.readers import (
    ChunkSpec,
    ReadOptions,
    describe_skipped,
    expand_inputs,
    parquet_problem,
    plan_chunks,
)
from freqindex.corpus.stage import StageSettings, tokenize_chunk, write_quarantine
from freqindex.errors import BadInputError, BuildError, FreqindexError, UsageError
from freqindex.fsutil import atomic_write_json, fsync_dir, read_json, sha256_file
from freqindex.manifest import read_manifest, write_manifest
from freqindex.suffix.stage import ShardPlan, plan_shards, write_shard
from freqindex.text.tokenizers import load_tokenizer

TaskRunner = Callable[[str, Callable[[int], dict], int], list]


def run_in_process(description: str, fn: Callable[[int], dict], n: int) -> list[dict]:
    """A task runner without Spark: the pure core, one task after another."""
    return [fn(i) for i in range(n)]


_ENGINE_LIMITS = {1: 255, 2: 65535, 4: 2**32 - 1}


def _tool_versions() -> dict:
    out = {"python": platform.python_version(), "freqindex": __version__}
    for pkg in ("pyspark", "infini-gram", "pydivsufsort", "pyarrow", "tokenizers", "numpy"):
        try:
            out[pkg] = _md.version(pkg)
        except _md.PackageNotFoundError:
            out[pkg] = None
    return out


def _prepare_output(cfg: BuildConfig, key: str, overwrite: bool) -> tuple[Path, Path, dict | None]:
    output = Path(os.path.expanduser(cfg.output)).resolve()
    existing = None
    if output.exists():
        if not output.is_dir():
            raise UsageError(f"--output {output} exists and is not a directory")
        try:
            existing = read_manifest(output)
        except FreqindexError:
            if any(output.iterdir()):
                raise UsageError(
                    f"--output {output} exists, is not empty and is not a freqindex index"
                ) from None
            output.rmdir()
        if existing is not None and existing.get("content_key") != key and not overwrite:
            raise UsageError(
                f"{output} already holds an index of other input or settings; pass --overwrite or choose another --output"
            )
    output.parent.mkdir(parents=True, exist_ok=True)
    return output, _partial_path(output), existing


def _partial_path(output: Path) -> Path:
    return output.parent / f".{output.name}.partial"


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
    problems = [(p, why) for p, why in problems if why]
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


def _unchanged(output: Path, seen: dict | None) -> bool:
    """Is the output still what this build saw when it started (no index, or the same manifest)?"""
    try:
        now = read_manifest(output) if output.exists() else None
    except FreqindexError:
        now = {"unreadable": True}
    return now == seen


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
    files, skipped = expand_inputs(list(cfg.inputs), cfg.format)
    check_output_apart_from_inputs(list(cfg.inputs), cfg.output)
    opts = ReadOptions(cfg.text_field, cfg.id_field, cfg.text_per_line, cfg.tags_field)
    _check_plan(cfg, files, skipped, opts, say)
    chunks = plan_chunks(files, opts, cfg.chunk_bytes)
    tokenizer = load_tokenizer(cfg.tokenizer)
    tok_desc = tokenizer.describe()
    fingerprint = []
    for p, fmt, comp in files:
        try:
            stt = os.stat(p)
            fingerprint.append([p, fmt, comp, stt.st_size, stt.st_mtime_ns])
        except OSError:
            fingerprint.append([p, fmt, comp, None, None])
    key = cfg.content_key([fingerprint, tok_desc])
    resolved = Path(os.path.expanduser(cfg.output)).resolve()
    lock = lock_for(str(resolved))
    lock.acquire()
    try:
        if lock.stale is not None:
            say(f"took over the lock of an earlier build ({lock.stale.describe()}) that is no longer running")
        return _build_locked(
            cfg, run_tasks, overwrite, say, t0, lock, files, skipped, chunks, tokenizer, tok_desc, key
        )
    except (BuildError, OSError) as exc:
        raise BuildError(failure_message(exc, _partial_path(resolved))) from None
    finally:
        lock.release()


def _build_locked(
    cfg: BuildConfig,
    run_tasks: TaskRunner,
    overwrite: bool,
    say: Callable[[str], None],
    t0: float,
    lock: OutputLock,
    files: list,
    skipped: list,
    chunks: list[ChunkSpec],
    tokenizer,
    tok_desc: dict,
    key: str,
) -> dict:
    """The build once the output is locked: prepare or resume the partial build, run the stages, publish."""
    output, partial, existing = _prepare_output(cfg, key, overwrite)
    if existing is not None and existing.get("content_key") == key:
        say(f"{output} is already a complete index of this input and settings; nothing to do")
        return {
            "status": "up-to-date",
            "output": str(output),
            **existing["counts"],
            "shards": len(existing["shards"]),
            "seconds": round(time.monotonic() - t0, 3),
        }

    state_path = partial / "build-state.json"
    if partial.exists():
        try:
            state = read_json(state_path)
        except (OSError, ValueError):
            state = {}
        if state.get("content_key") != key:
            say("discarding an unfinished build of other input or settings")
            shutil.rmtree(partial)
        else:
            say("resuming an unfinished build: finished stages are kept where their checksums match")
    partial.mkdir(parents=True, exist_ok=True)
    atomic_write_json(state_path, {"content_key": key, "config": cfg.to_dict()})

    tokenizer_json = None
    if cfg.tokenizer != "bytes":
        tok_dir = partial / "tokenizer"
        tok_dir.mkdir(exist_ok=True)
        tokenizer_json = str(tok_dir / "tokenizer.json")
        Path(tokenizer_json).write_text(tokenizer.to_json_str(), encoding="utf-8")
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
    )
    build_dir = str(partial)
    chunk_payload = [asdict(c) for c in chunks]
    timings: dict[str, float] = {}

    def tokenize_task(cid: int) -> dict:
        return tokenize_chunk(ChunkSpec(**chunk_payload[cid]), st, build_dir)

    t = time.monotonic()
    summaries = sorted(run_tasks("read + tokenize", tokenize_task, len(chunks)), key=lambda s: s["chunk_id"])
    timings["tokenize"] = round(time.monotonic() - t, 3)

    n_bad = sum(s["n_bad"] for s in summaries)
    if cfg.strict and n_bad:
        first = next(s for s in summaries if s["n_bad"])
        fb = first["first_bad"]
        shutil.rmtree(partial, ignore_errors=True)
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
        shutil.rmtree(partial, ignore_errors=True)
        raise BadInputError(f"nothing to index: 0 valid documents, {n_bad} bad records{hint}")

    plans: list[ShardPlan] = plan_shards(
        build_dir, summaries, cfg.shards, tokenizer.width, shard_size=cfg.shard_size_bytes
    )
    sources = {c.chunk_id: c.path for c in chunks}
    layout = _shard_layout(run_tasks, plans, cfg.sa_mem_gib)

    def shard_task(sid: int) -> dict:
        return write_shard(plans[sid], sources, st, build_dir, layout.threads)

    t = time.monotonic()
    results = _run_shard_tasks(run_tasks, "write shards + suffix arrays", shard_task, len(plans), layout)
    shard_summaries = sorted(results, key=lambda s: s["shard"])
    timings["shards"] = round(time.monotonic() - t, 3)

    t = time.monotonic()
    qpath, by_reason = write_quarantine(build_dir, summaries)
    files_meta: dict[str, dict] = {}
    for s in shard_summaries:
        files_meta.update(s["files"])
    for extra in [qpath] + ([Path(tokenizer_json)] if tokenizer_json else []):
        files_meta[str(extra.relative_to(partial))] = {
            "size": extra.stat().st_size,
            "sha256": sha256_file(extra),
        }
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
    limit = _ENGINE_LIMITS[width]
    manifest = {
        "format": settings.INDEX_FORMAT,
        "schema_version": settings.SCHEMA_VERSION,
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "content_key": key,
        "config": cfg.to_dict(),
        "tokenizer": tok_manifest,
        "token_dtype": tok_desc["dtype"],
        "normalization": {"name": cfg.normalization, "version": 1},
        "engine": {"version": 4, "vocab_size": limit, "eos_token_id": limit - 1},
        "counts": counts,
        "shards": [
            {k: s[k] for k in ("shard", "doc_start", "n_docs", "n_tokens", "ds_bytes")}
            for s in shard_summaries
        ],
        "files": files_meta,
        "skipped_files": [{"path": p, "reason": why} for p, why in skipped],
        "tools": _tool_versions(),
    }
    shutil.rmtree(Path(build_dir) / "_staging", ignore_errors=True)
    state_path.unlink(missing_ok=True)
    write_manifest(partial, manifest)
    fsync_dir(partial)
    lock.verify()
    if not _unchanged(output, existing):
        raise BuildError(f"{output} changed while this build ran (another build published there)")
    if output.exists():
        old = output.parent / f".{output.name}.old"
        shutil.rmtree(old, ignore_errors=True)
        os.replace(output, old)
        os.replace(partial, output)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(partial, output)
    fsync_dir(output.parent)
    timings["finalize"] = round(time.monotonic() - t, 3)
    resumed = sum(1 for s in summaries if s.get("resumed")) + sum(
        1 for s in shard_summaries if s.get("resumed")
    )
    return {
        "status": "built",
        "output": str(output),
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
        "timings": timings,
        "seconds": round(time.monotonic() - t0, 3),
    }
