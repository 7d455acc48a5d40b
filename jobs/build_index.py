"""`freqindex build` as a Spark job: read + validate + tokenize per input chunk, then one task per shard
writes the infini-gram shard files and builds its suffix array (libdivsufsort, infini-gram's table format).

Runnable with spark-submit too::

    spark-submit --master spark://HOST:7077 jobs/build_index.py --config build.toml

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
from freqindex.config import BuildConfig
from freqindex.corpus.readers import expand_inputs, input_size
from jobs.spark import run_entry, spark_runner

ProgressFn = Callable[[str, int, int], None]


def run_build(
    cfg: BuildConfig,
    *,
    overwrite: bool = False,
    on_progress: ProgressFn | None = None,
    on_message: Callable[[str], None] | None = None,
    keep_spark: bool = False,
) -> dict:
    """Build the index ``cfg`` describes on the Spark master ``cfg.master`` (or, with ``cfg.append_to``,
    append its inputs to that index as a new generation). Returns the build summary."""
    cfg.validate()
    if cfg.append_to and _small_local_append(cfg):
        if on_message:
            on_message("a small append on a local master: run in this process, without starting Spark")
        return append_index(cfg, run_in_process, on_message=on_message)
    with spark_runner(cfg.master, "freqindex-build", on_progress, dict(cfg.spark_conf), keep_spark) as runner:
        if cfg.append_to:
            summary = append_index(cfg, runner, on_message=on_message)
        else:
            summary = build_index(cfg, runner, overwrite=overwrite, on_message=on_message)
    if runner.started:  # part of the first stage's time and of ``seconds``, which the driver measures
        summary.setdefault("timings", {})["spark_start"] = runner.start_seconds
    return summary


def _small_local_append(cfg: BuildConfig) -> bool:
    """An append of at most ``MIN_CHUNK_BYTES`` of input on a ``local`` master is one or a few small tasks:
    Spark's start and per-job costs (seconds) would be most of its time, and its parallelism buys nothing."""
    if not cfg.master.startswith("local"):
        return False
    files, _ = expand_inputs(list(cfg.inputs), cfg.format, cfg.storage_options)
    return sum(input_size(p, cfg.storage_options) for p, _, _ in files) <= settings.MIN_CHUNK_BYTES


def main(argv: list[str] | None = None) -> int:
    """spark-submit entry point: ``build_index.py --config build.toml`` (keys as in BuildConfig)."""
    from freqindex.config import load_toml

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", required=True, help="TOML file with a [build] table")
    ap.add_argument("--overwrite", action="store_true")
    args = ap.parse_args(argv)

    def job() -> dict:
        return run_build(
            BuildConfig.from_table(load_toml(args.config)), overwrite=args.overwrite, on_message=print
        )

    return run_entry(job)


if __name__ == "__main__":
    sys.exit(main())
