"""`freqindex build` as a Spark job: read + validate + tokenize per input chunk, then one task per shard
writes the infini-gram shard files and builds its suffix array with infini-gram's own indexer.

Runnable with spark-submit too::

    spark-submit --master spark://HOST:7077 jobs/build_index.py --config build.toml

Executors must share the output filesystem with the driver (a shared or network filesystem on a cluster).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from contextlib import contextmanager

import pyarrow as pa

from freqindex.config import BuildConfig
from freqindex.driver import build_index
from freqindex.errors import BuildError, FreqindexError

ProgressFn = Callable[[str, int, int], None]


def _spark_error(exc: BaseException) -> BuildError:
    text = str(exc)
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    errs = [
        ln for ln in lines if ln.startswith(("freqindex.errors.", "BuildError", "OSError", "MemoryError"))
    ]
    msg = errs[-1] if errs else (lines[-1] if lines else type(exc).__name__)
    return BuildError(f"a Spark task failed: {msg[:500]}")


class SparkTaskRunner:
    """Runs ``fn(i)`` for ``i in range(n)`` as ``n`` Spark tasks (``mapInArrow`` over ``spark.range``).

    Given a ``master`` instead of a session, the session starts on the first call, so a build that turns out
    to be up to date, or a usage error found while planning, never waits for a JVM."""

    def __init__(
        self,
        spark=None,
        on_progress: ProgressFn | None = None,
        master: str | None = None,
        conf: dict | None = None,
        app_name: str = "freqindex",
    ):
        self._spark = spark
        self.on_progress = on_progress
        self.master, self.conf, self.app_name = master, conf or {}, app_name
        self.start_seconds = 0.0

    @property
    def spark(self):
        if self._spark is None:
            from freqindex.spark import get_spark

            t = time.monotonic()
            self._spark = get_spark(self.master, self.app_name, self.conf)
            self.start_seconds = round(time.monotonic() - t, 3)
        return self._spark

    @property
    def started(self) -> bool:
        return self._spark is not None

    @property
    def parallelism(self) -> int:
        return max(1, self.spark.sparkContext.defaultParallelism)

    def __call__(self, description: str, fn: Callable[[int], dict], n: int) -> list[dict]:
        from freqindex.spark import run_with_progress

        def task(batches):
            for batch in batches:
                for i in batch.column(0).to_pylist():
                    yield pa.RecordBatch.from_pydict({"result": [json.dumps(fn(i))]})

        df = self.spark.range(0, n, 1, numPartitions=max(1, n)).mapInArrow(task, "result string")
        try:
            rows = run_with_progress(self.spark, description, df.collect, self.on_progress)
        except FreqindexError:
            raise
        except Exception as exc:
            raise _spark_error(exc) from None
        return [json.loads(r.result) for r in rows]


@contextmanager
def spark_runner(
    master: str,
    app_name: str,
    on_progress: ProgressFn | None = None,
    conf: dict | None = None,
    keep_spark: bool = False,
):
    """A lazily started SparkTaskRunner, stopped on the way out unless ``keep_spark`` (the next job of the
    same command then finds the session running)."""
    runner = SparkTaskRunner(on_progress=on_progress, master=master, conf=conf, app_name=app_name)
    try:
        yield runner
    finally:
        if runner.started and not keep_spark:
            runner.spark.stop()


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
    if runner.started:
        summary.setdefault("timings", {})["spark_start"] = runner.start_seconds
        summary["seconds"] = round(summary["seconds"] + runner.start_seconds, 3)
    return summary


def main(argv: list[str] | None = None) -> int:
    """spark-submit entry point: ``build_index.py --config build.toml`` (keys as in BuildConfig)."""
    from freqindex.config import load_toml

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", required=True, help="TOML file with a [build] table")
    ap.add_argument("--overwrite", action="store_true")
    args = ap.parse_args(argv)

    def job() -> dict:
        table = load_toml(args.config)
        table["inputs"] = tuple(table.get("inputs", ()))
        table["spark_conf"] = tuple(dict(table.get("spark_conf", {})).items())
        return run_build(BuildConfig(**table), overwrite=args.overwrite, on_message=print)

    return run_entry(job)


def run_entry(job: Callable[[], dict]) -> int:
    """spark-submit entry: print the job's summary as JSON; a domain error prints one line and sets the exit code."""
    try:
        print(json.dumps(job(), indent=2))
        return 0
    except FreqindexError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
