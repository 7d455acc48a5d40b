"""`freqindex build` as a Spark job: read + validate + tokenize per input chunk, then one task per shard
writes the infini-gram shard files and builds its suffix array (libdivsufsort, infini-gram's table format).

Runnable with spark-submit too (every BuildConfig field is a flag; flags win over the file)::

    spark-submit --master spark://HOST:7077 jobs/build_index.py --config build.toml [--overwrite]
    spark-submit jobs/build_index.py corpus/ --output idx --shards 2 --spark-conf spark.executor.memory=8g

Inputs and the output may be URLs (``s3://``, ``gs://``, ``hdfs://``, ``abfs://``): executors then read
their own input chunks from the store, build in local scratch and upload their finished files; they share
no filesystem with the driver. A local ``--output`` on a cluster must be on a filesystem every executor
mounts (NFS, a shared volume).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from freqindex import settings
from freqindex.build import build_index, run_in_process
from freqindex.build.append import append_index
from freqindex.config import BuildConfig, EmbedConfig, TagConfig
from freqindex.corpus.readers import expand_inputs, input_size
from jobs.spark import config_main, spark_runner

ProgressFn = Callable[[str, int, int], None]


def run_build(
    cfg: BuildConfig,
    *,
    overwrite: bool = False,
    concepts: str | None = None,
    embed: bool = False,
    on_progress: ProgressFn | None = None,
    on_message: Callable[[str], None] | None = None,
    keep_spark: bool = False,
) -> dict:
    """Build the index ``cfg`` describes on the Spark master ``cfg.master`` (or, with ``cfg.append_to``,
    append its inputs to that index as a new generation); then, when asked, tag it with the vocabulary
    ``concepts`` and embed it with the default model, in the same Spark session. Returns the build summary
    (with ``concepts`` and ``vectors`` summaries when those ran)."""
    cfg.validate()
    cfg.check_follow_ups(concepts, embed, overwrite)
    if cfg.append_to and _small_local_append(cfg):
        if on_message:
            on_message("a small append on a local master: run in this process, without starting Spark")
        return append_index(cfg, run_in_process, on_message=on_message)
    then = concepts is not None or embed
    with spark_runner(
        cfg.master, "freqindex-build", on_progress, dict(cfg.spark_conf), keep_spark or then
    ) as runner:
        if cfg.append_to:
            summary = append_index(cfg, runner, on_message=on_message)
        else:
            summary = build_index(cfg, runner, overwrite=overwrite, on_message=on_message)
    if runner.started:  # part of the first stage's time and of ``seconds``, which the driver measures
        summary.setdefault("timings", {})["spark_start"] = runner.start_seconds
    if concepts is not None:
        from jobs.tag_concepts import run_tag

        tag = TagConfig(index_dir=summary["output"], concepts=concepts, master=cfg.master)
        summary["concepts"] = run_tag(tag, on_progress=on_progress, keep_spark=keep_spark or embed)
    if embed:
        from jobs.embed_index import run_embed

        vec = EmbedConfig(index_dir=summary["output"], master=cfg.master)
        summary["vectors"] = run_embed(vec, on_progress=on_progress, keep_spark=keep_spark)
    return summary


def _small_local_append(cfg: BuildConfig) -> bool:
    """An append of at most ``MIN_CHUNK_BYTES`` of input on a ``local`` master is one or a few small tasks:
    Spark's start and per-job costs (seconds) would be most of its time, and its parallelism buys nothing."""
    if not cfg.master.startswith("local"):
        return False
    files, _ = expand_inputs(list(cfg.inputs), cfg.format, cfg.storage_options)
    return sum(input_size(p, cfg.storage_options) for p, _, _ in files) <= settings.MIN_CHUNK_BYTES


def main(argv: list[str] | None = None) -> int:
    """spark-submit entry point: ``build_index.py [INPUT...] [--config build.toml] [--FIELD VALUE...]
    [--overwrite]``; prints the build summary as JSON."""

    def flags(ap: argparse.ArgumentParser) -> None:
        ap.add_argument("--overwrite", action="store_true", help="replace an index of other input/settings")

    def job(cfg: BuildConfig, args: argparse.Namespace) -> dict:
        return run_build(cfg, overwrite=args.overwrite, on_message=print)

    return config_main(BuildConfig, "build", job, argv, __doc__, positional=("inputs",), extra=flags)


if __name__ == "__main__":
    sys.exit(main())
