"""The build's two task kinds around their stage cores: each attempt works in a directory of its own, hands
its finished files to the store (``freqindex.build.target``), and writes its marker last.

``tokenize_chunk`` and ``write_shard`` stay pure cores over a local directory; what is here is only their
I/O: where the attempt works, which staged files it fetches, what it puts, and when.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from concurrent.futures import Future, wait
from pathlib import Path

from freqindex.build.target import STAGING, RemoteTaskStore, TaskStore
from freqindex.corpus.readers import ChunkSpec
from freqindex.corpus.stage import StageSettings, chunk_paths, tokenize_chunk
from freqindex.faults import fault_point
from freqindex.suffix.stage import ShardPlan, write_shard


def chunk_marker(chunk_id: int) -> str:
    return str(chunk_paths(Path(STAGING), chunk_id)[2])


def chunk_file(chunk_id: int) -> str:
    return str(chunk_paths(Path(STAGING), chunk_id)[0])


def chunk_bad_file(chunk_id: int) -> str:
    return str(chunk_paths(Path(STAGING), chunk_id)[1])


def shard_marker(shard: int) -> str:
    return f"{STAGING}/shards/shard-{shard:05d}.done"


def _resumed(done: dict) -> dict:
    done["resumed"] = True
    return done


def _put_and_mark(
    store: TaskStore, work, marker: str, summary: dict, fault: str, key: int, early: Sequence[Future] = ()
) -> dict:
    """Upload the attempt's files (those of ``early`` are already on their way), then its marker (the task is
    done once the marker exists); the summary gains the store's tags and, on an object store, the
    executor-local scratch the attempt worked in."""
    tags = store.put(work, sorted(summary["files"]), early)
    fault_point(fault, key)
    store.write_marker(work / marker, marker, tags)
    summary["store_tags"] = tags
    if isinstance(store, RemoteTaskStore):
        summary["scratch"] = str(work.parent)
    return summary


def run_chunk_task(spec: ChunkSpec, st: StageSettings, store: TaskStore) -> dict:
    """Stage 1 for one chunk: read, validate, tokenize into staging Parquet; skipped when its marker holds."""
    marker = chunk_marker(spec.chunk_id)
    done = store.marker(marker)
    if done is not None:
        return _resumed(done)
    with store.attempt_dir() as work:
        local = dataclasses.replace(
            st,
            tokenizer_json=store.localize(st.tokenizer_json, work),
            staged_compression=store.staged_compression,
        )
        summary = tokenize_chunk(spec, local, str(work))
        return _put_and_mark(store, work, marker, summary, "chunk-uploaded", spec.chunk_id)


def run_shard_task(
    plan: ShardPlan, sources: dict[int, str], st: StageSettings, store: TaskStore, cpus: int
) -> dict:
    """Stage 2 for one shard: fetch the staged slices it needs, write the shard files, build the suffix array
    and the docs part in the attempt directory, put them, then the marker."""
    marker = shard_marker(plan.shard)
    done = store.marker(marker)
    if done is not None and "sample_step" in done:  # a marker of an older freqindex lacks it: redo the shard
        return _resumed(done)
    with store.attempt_dir() as work:
        # the shard's token files go up while its suffix array is built, the suffix array while its sample
        # and the files' checksums are made
        early: list[Future] = []

        def ready(rels: list[str]) -> None:
            pending = store.put_early(work, rels)
            if pending is not None:
                early.append(pending)

        try:
            local = dataclasses.replace(st, tokenizer_json=store.localize(st.tokenizer_json, work))
            for chunk_id in sorted({c for c, _, _ in plan.slices}):
                store.fetch(chunk_file(chunk_id), work / chunk_file(chunk_id))
            summary = write_shard(plan, sources, local, str(work), cpus, ready=ready)
            fault_point("shard-built", plan.shard)
            return _put_and_mark(store, work, marker, summary, "shard-uploaded", plan.shard, early)
        finally:
            wait(early)  # never remove the attempt's files under a running upload
