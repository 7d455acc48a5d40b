"""What every Spark job shares (no job logic here): the SparkSession whose Python workers run this interpreter,
progress reporting, the task runner that runs a stage core's ``fn(i)`` as Spark tasks, and the spark-submit
entry wrapper that turns a config class into flags."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import threading
import time
import types
import typing
from collections.abc import Callable
from contextlib import contextmanager
from importlib import resources
from typing import Any, get_args, get_origin, get_type_hints

import pyarrow as pa

from freqindex.config import load_config
from freqindex.errors import BuildError, FreqindexError

ProgressFn = Callable[[str, int, int], None]


def _is_loopback(master: str) -> bool:
    return master.startswith("local") or "127.0.0.1" in master or "localhost" in master


def get_spark(master: str, app_name: str, conf: dict[str, str] | None = None):
    """A SparkSession whose Python workers run this very interpreter (``spark.pyspark.python``)."""
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    from pyspark.sql import SparkSession

    log4j = resources.files("freqindex").joinpath("resources/log4j2.properties")
    java_opts = f"-Dlog4j2.configurationFile=file:{log4j} -Dlog4j.configurationFile=file:{log4j}"
    b = (
        SparkSession.builder.master(master)
        .appName(app_name)
        .config("spark.pyspark.python", sys.executable)
        .config("spark.pyspark.driver.python", sys.executable)
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.driver.extraJavaOptions", java_opts)
        .config("spark.executor.extraJavaOptions", java_opts)
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.python.worker.reuse", "true")
        .config("spark.executorEnv.PYTHONHASHSEED", "0")
    )
    if _is_loopback(master):
        b = b.config("spark.driver.host", "127.0.0.1").config("spark.driver.bindAddress", "127.0.0.1")
    for k, v in (conf or {}).items():
        b = b.config(k, v)
    spark = b.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def run_with_progress(
    spark, description: str, action: Callable[[], Any], on_progress: Callable[[str, int, int], None] | None
) -> Any:
    """Run a Spark action in a thread, reporting (description, completed tasks, total tasks) as it goes."""
    if on_progress is None:
        return action()
    sc = spark.sparkContext
    group = f"freqindex-{id(action)}-{time.monotonic_ns()}"
    result: dict[str, Any] = {}

    def target():
        sc.setJobGroup(group, description)
        try:
            result["value"] = action()
        except BaseException as exc:  # re-raised in the caller's thread
            result["error"] = exc

    t = threading.Thread(target=target, daemon=True)
    t.start()
    tracker = sc.statusTracker()
    while t.is_alive():
        done = total = 0
        for job_id in tracker.getJobIdsForGroup(group):
            job = tracker.getJobInfo(job_id)
            if job is None:
                continue
            for sid in job.stageIds:
                info = tracker.getStageInfo(sid)
                if info is not None:
                    done += info.numCompletedTasks
                    total += info.numTasks
        if total:
            on_progress(description, done, total)
        t.join(0.25)
    if "error" in result:
        raise result["error"]
    return result.get("value")


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


def run_entry(job: Callable[[], dict]) -> int:
    """spark-submit entry: print the job's summary as JSON; a domain error prints one line and sets the exit code."""
    try:
        print(json.dumps(job(), indent=2))
        return 0
    except FreqindexError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code


def config_main(
    cls: type,
    section: str,
    job: Callable[[Any, argparse.Namespace], dict],
    argv: list[str] | None,
    description: str,
    positional: tuple[str, ...] = (),
    extra: Callable[[argparse.ArgumentParser], None] | None = None,
) -> int:
    """A spark-submit ``main(argv)`` for the config class ``cls``: every field is a flag (``--field-name``;
    the ``positional`` ones are arguments), plus ``--config FILE`` (its ``[section]`` table). The config is
    resolved by :func:`freqindex.config.load_config` (defaults, then the file, then the flags given), exactly
    as the CLI resolves it, and ``job(cfg, args)`` runs; its summary is printed as JSON (see
    :func:`run_entry`). ``extra(parser)`` adds flags that are not config fields (``args`` holds them)."""
    ap = argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--config", help=f"TOML file with a [{section}] table (flags given here win)")
    hints = get_type_hints(cls)
    for f in dataclasses.fields(cls):
        hint = _unwrap_optional(hints[f.name])
        many = get_origin(hint) is tuple
        if f.name in positional:
            ap.add_argument(f.name, nargs="*" if many else "?", default=None)
        elif hint is bool:
            ap.add_argument("--" + f.name.replace("_", "-"), dest=f.name, action="store_true", default=None)
        else:
            pairs = many and get_origin(get_args(hint)[0]) is tuple
            ap.add_argument(
                "--" + f.name.replace("_", "-"),
                dest=f.name,
                default=None,
                action="append" if pairs else "store",
                help="KEY=VALUE (repeatable)" if pairs else ("comma-separated" if many else None),
            )
    if extra is not None:
        extra(ap)
    args = ap.parse_args(argv)
    given = {
        f.name: getattr(args, f.name)
        for f in dataclasses.fields(cls)
        if getattr(args, f.name) not in (None, [])
    }
    return run_entry(lambda: job(load_config(cls, args.config, section=section, overrides=given), args))


def _unwrap_optional(hint: Any) -> Any:
    """``X`` for ``X | None``, else the hint itself."""
    args = [a for a in get_args(hint) if a is not type(None)]
    return args[0] if get_origin(hint) in (types.UnionType, typing.Union) and len(args) == 1 else hint
