"""SparkSession construction shared by every job (no job logic here)."""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable
from importlib import resources
from typing import Any


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
