"""What every Spark job shares (no job logic here): the SparkSession and the Python its executors run,
progress reporting, the task runner that runs a stage core's ``fn(i)`` as Spark tasks, the translation of
Spark's failures into one-line domain errors, and the spark-submit entry wrapper that turns a config class
into flags.

The JVM that the session starts writes its stdout and stderr (Spark's own log, Java stack traces, the
executors' Python tracebacks in local mode) to a log file rather than to the terminal: freqindex prints
its own progress, summary and one-line errors, and names the log file when something failed.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import socket
import sys
import tempfile
import threading
import time
import types
import typing
from collections.abc import Callable
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any, get_args, get_origin, get_type_hints

import pyarrow as pa

from freqindex.config import load_config
from freqindex.errors import BuildError, FreqindexError

ProgressFn = Callable[[str, int, int], None]


def _is_loopback(master: str) -> bool:
    return master.startswith("local") or "127.0.0.1" in master or "localhost" in master


def local_cores(master: str) -> int | None:
    """The cores of a local-mode master (``local``: 1, ``local[N]``, ``local[N,F]``, ``local[*]``: this
    machine's), or None for a cluster master."""
    m = re.fullmatch(r"local(?:\[(\*|\d+)(?:,\s*\d+)?\])?", master.strip())
    if m is None:
        return None
    if m.group(1) is None:
        return 1
    return (os.cpu_count() or 1) if m.group(1) == "*" else int(m.group(1))


def executor_python(conf: dict[str, str] | None = None) -> str:
    """The Python the executors run: ``spark.pyspark.python`` when given (``--conf``; a shipped environment
    on YARN or Kubernetes), else ``PYSPARK_PYTHON``, else this very interpreter."""
    return (conf or {}).get("spark.pyspark.python") or os.environ.get("PYSPARK_PYTHON") or sys.executable


def get_spark(master: str, app_name: str, conf: dict[str, str] | None = None, log_path: str | None = None):
    """A SparkSession whose executors run :func:`executor_python`. With ``log_path``, a JVM started here
    writes its output to that file (appending) instead of this process's stdout and stderr."""
    conf = dict(conf or {})
    python = executor_python(conf)
    log4j = resources.files("freqindex").joinpath("resources/log4j2.properties")
    java_opts = f"-Dlog4j2.configurationFile=file:{log4j} -Dlog4j.configurationFile=file:{log4j}"
    settings = {
        "spark.master": master,
        "spark.app.name": app_name,
        "spark.pyspark.driver.python": sys.executable,
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.driver.extraJavaOptions": java_opts,
        "spark.executor.extraJavaOptions": java_opts,
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.python.worker.reuse": "true",
        "spark.executorEnv.PYTHONHASHSEED": "0",
    }
    if _is_loopback(master):
        settings.update({"spark.driver.host": "127.0.0.1", "spark.driver.bindAddress": "127.0.0.1"})
    settings.update(conf)
    settings["spark.pyspark.python"] = python
    from pyspark import SparkConf, SparkContext
    from pyspark.sql import SparkSession

    # pyspark takes the executors' Python from PYSPARK_PYTHON when the context starts (the setting alone is
    # ignored outside spark-submit), so it is set for that moment only
    saved = {k: os.environ.get(k) for k in ("PYSPARK_PYTHON", "PYSPARK_DRIVER_PYTHON")}
    os.environ["PYSPARK_PYTHON"] = python
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    try:
        if log_path and SparkContext._gateway is None and "PYSPARK_GATEWAY_PORT" not in os.environ:
            from pyspark.java_gateway import launch_gateway

            spark_conf = SparkConf().setAll(list(settings.items()))
            with open(log_path, "ab") as log:
                gateway = launch_gateway(spark_conf, popen_kwargs={"stdout": log, "stderr": log})
            SparkContext(conf=spark_conf, gateway=gateway)
        b = SparkSession.builder
        for k, v in settings.items():
            b = b.config(k, v)
        spark = b.getOrCreate()
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
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

    def poll() -> tuple[int, int]:
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
        return done, total

    while t.is_alive():
        done, total = poll()
        if total:
            on_progress(description, done, total)
        t.join(0.25)
    if "error" in result:
        raise result["error"]
    done, total = poll()  # the last tasks finish between two polls: report the final state too
    if total:
        on_progress(description, total, total)
    return result.get("value")


_PY_EXCEPTION = re.compile(r"^(?:[A-Za-z_][\w.]*\.)?[A-Z]\w*(?:Error|Exception|Exit)\b.*?:")
_CANNOT_RUN = re.compile(r'Cannot run program "([^"]*)": error=\d+, (.*)')


def spark_failure_cause(text: str, guess: bool = True) -> str | None:
    """The one line that says why a Spark job or Spark's start failed, from the text of its exception (or
    of the JVM's log): the executors' Python missing, the last Python exception a task raised, or the
    last Java exception, never a stack frame. Nothing of the kind: the last line when ``guess``, else None."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    for ln in lines:
        m = _CANNOT_RUN.search(ln)
        if m:
            return (
                f"the executors cannot start Python {m.group(1)} ({m.group(2)}): point spark.pyspark.python "
                "(--conf) or PYSPARK_PYTHON at an interpreter with freqindex installed on every executor"
            )
    frames = ("at ", "...", "File ", "Traceback", "^", "~")
    candidates = [ln for ln in lines if not ln.startswith(frames)]
    python = [
        ln
        for ln in candidates
        if ln.startswith(("freqindex.errors.", "BuildError", "OSError", "MemoryError"))
        or (_PY_EXCEPTION.match(ln) and not ln.startswith(("java.", "org.", "scala.", "py4j.", "Caused by")))
    ]
    if python:
        return python[-1]
    m = re.search(r'Exception in thread "[^"]*" [\w.$]+: (.+)', text)
    if m:
        return m.group(1).strip()
    java = [ln for ln in candidates if re.match(r"^(Caused by: )?[\w.$]+(Exception|Error)\b", ln)]
    if java:
        return java[-1].removeprefix("Caused by: ")
    if not guess:
        return None
    return candidates[-1] if candidates else "unknown cause"


def _spark_error(exc: BaseException, log_path: str | None = None) -> BuildError:
    where = f" (Spark's log: {log_path})" if log_path and os.path.exists(log_path) else ""
    return BuildError(f"a Spark task failed: {spark_failure_cause(str(exc))[:500]}{where}")


_JVM_LOG: dict[str, str | None] = {"path": None}


def check_master_reachable(master: str | None, timeout_s: float = 5.0) -> None:
    """A standalone master (``spark://host:port``, or several for HA: ``spark://h1:p1,h2:p2``) that does not
    accept a connection fails the build at once, in one line; Spark itself retries for about a minute and
    then reports only that it has no SparkContext."""
    if not master or not master.startswith("spark://"):
        return
    reasons = []
    for address in master[len("spark://") :].split(","):
        host, _, port = address.strip().rpartition(":")
        if not host or not port.isdigit():
            raise BuildError(f"--master {master}: expected spark://HOST:PORT (the master's log prints it)")
        try:
            with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s):
                return
        except OSError as exc:
            reasons.append(f"{address.strip()}: {exc.strerror or exc}")
    raise BuildError(
        f"no Spark master answers at {master} ({'; '.join(reasons)}): is it running, and is this the "
        "address its log gives in 'Starting Spark master at spark://...'?"
    )


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
    def log_path(self) -> str | None:
        """The log file of this process's JVM (shared by every runner of the process), when freqindex
        started the JVM."""
        return _JVM_LOG["path"]

    @property
    def spark(self):
        if self._spark is None:
            from pyspark import SparkContext

            t = time.monotonic()
            if SparkContext._gateway is None and "PYSPARK_GATEWAY_PORT" not in os.environ:
                fd, _JVM_LOG["path"] = tempfile.mkstemp(prefix="freqindex-spark-", suffix=".log")
                os.close(fd)
            log_path = self.log_path
            check_master_reachable(self.master)
            try:
                self._spark = get_spark(self.master, self.app_name, self.conf, log_path)
            except Exception as exc:
                log = (
                    Path(log_path).read_text(errors="replace")
                    if log_path and os.path.exists(log_path)
                    else ""
                )
                cause = spark_failure_cause(log, guess=False) or spark_failure_cause(str(exc))
                where = f" (Spark's log: {log_path})" if log.strip() else ""
                raise BuildError(
                    f"Spark could not start (--master {self.master}): {cause[:500]}{where}"
                ) from None
            self.start_seconds = round(time.monotonic() - t, 3)
        return self._spark

    def discard_log(self) -> None:
        """Remove the JVM's log file (once the session stopped after a run that needs no diagnosis)."""
        if _JVM_LOG["path"]:
            Path(_JVM_LOG["path"]).unlink(missing_ok=True)
            _JVM_LOG["path"] = None

    @property
    def started(self) -> bool:
        return self._spark is not None

    @property
    def parallelism(self) -> int:
        return max(1, self.spark.sparkContext.defaultParallelism)

    def shard_resources(self) -> dict:
        """What ``freqindex.build.scheduling.shard_task_layout`` needs to know about this session's executors:
        the N of ``local[N]`` (local mode), or the cores of a cluster executor when ``spark.executor.cores``
        fixes them and stage-level scheduling can use them (dynamic allocation off), and ``spark.task.cpus``."""
        conf = self.spark.sparkContext.getConf()
        task_cpus = int(conf.get("spark.task.cpus", "1"))
        local = local_cores(conf.get("spark.master", self.master or ""))
        executor_cores = None
        dynamic = conf.get("spark.dynamicAllocation.enabled", "false").lower() == "true"
        if local is None and conf.get("spark.executor.cores") and not dynamic:
            executor_cores = int(conf.get("spark.executor.cores"))
        return {"local_cores": local, "executor_cores": executor_cores, "task_cpus": task_cpus}

    def __call__(self, description: str, fn: Callable[[int], dict], n: int, layout=None) -> list[dict]:
        """``fn(i)`` for every ``i`` in ``range(n)``, one Spark task each; with a ``layout``
        (``freqindex.build.scheduling.ShardTaskLayout``) in local mode ``layout.concurrent`` tasks each run
        their share of ``i`` one after another, and on a cluster each task asks for
        ``layout.cpus_per_task`` cores (a task resource profile; ignored where the cluster manager has
        none)."""

        def task(batches):
            from pyspark import TaskContext

            cpus = TaskContext.get().cpus() if layout is not None else None
            for batch in batches:
                for i in batch.column(0).to_pylist():
                    result = fn(i)
                    if cpus is not None:  # the cores Spark gave the task (what a resource profile asked for)
                        result = {**result, "spark_task_cpus": cpus}
                    yield pa.RecordBatch.from_pydict({"result": [json.dumps(result)]})

        parts = max(1, n)
        profile = None
        if layout is not None and layout.concurrent:
            parts = max(1, min(n, layout.concurrent))
        if layout is not None and layout.cpus_per_task:
            from pyspark.resource import ResourceProfileBuilder, TaskResourceRequests

            profile = (
                ResourceProfileBuilder().require(TaskResourceRequests().cpus(layout.cpus_per_task)).build
            )

        def collect(profile):
            df = self.spark.range(0, n, 1, numPartitions=parts).mapInArrow(
                task, "result string", profile=profile
            )
            return run_with_progress(self.spark, description, df.collect, self.on_progress)

        try:
            try:
                rows = collect(profile)
            except Exception as exc:
                if profile is None or "ResourceProfile" not in str(exc):
                    raise
                rows = collect(None)  # this cluster manager has no stage-level scheduling
        except FreqindexError:
            raise
        except Exception as exc:
            raise _spark_error(exc, self.log_path) from None
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
    ok = False
    try:
        yield runner
        ok = True
    finally:
        if runner.started and not keep_spark:
            runner.spark.stop()
            if ok:
                runner.discard_log()


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
