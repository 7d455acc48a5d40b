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

from freqindex.build import build_index
from freqindex.config import BuildConfig
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
    """Build the index ``cfg`` describes on the Spark master ``cfg.master``. Returns the build summary."""
    cfg.validate()
    with spark_runner(cfg.master, "freqindex-build", on_progress, dict(cfg.spark_conf), keep_spark) as runner:
        summary = build_index(cfg, runner, overwrite=overwrite, on_message=on_message)
    if runner.started:  # part of the first stage's time and of ``seconds``, which the driver measures
        summary.setdefault("timings", {})["spark_start"] = runner.start_seconds
    return summary


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
