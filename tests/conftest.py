"""Shared fixtures: real data from ../shared/data, real Spark (local[2]), real infini-gram."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("FREQINDEX_SHARED", REPO.parent / "shared")).resolve()
DATA = SHARED / "data"

WIKITEXT = DATA / "corpora" / "wikitext2" / "valid.txt"
FLICKR = DATA / "corpora" / "flickr8k" / "Flickr8k.token.txt"
GSM8K_TRAIN = DATA / "evals" / "gsm8k" / "train.jsonl"
GSM8K_TEST = DATA / "evals" / "gsm8k" / "test.jsonl"


def pytest_configure(config):
    if not DATA.is_dir():
        raise pytest.UsageError(f"the shared data directory is missing: {DATA} (set FREQINDEX_SHARED)")


@pytest.fixture(scope="session", autouse=True)
def _spark_env():
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    yield
    try:
        from pyspark.sql import SparkSession

        s = SparkSession.getActiveSession()
        if s is not None:
            s.stop()
    except Exception:
        pass


def build(inputs, output, **kw):
    """Run the real Spark build (local[2]) in-process, keeping the session for the next test."""
    from freqindex.config import BuildConfig
    from jobs.build_index import run_build

    overwrite = kw.pop("overwrite", False)
    kw.setdefault("master", "local[2]")
    cfg = BuildConfig(inputs=tuple(str(i) for i in inputs), output=str(output), **kw)
    return run_build(cfg, overwrite=overwrite, keep_spark=True)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (bound once by the OS, then released)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cli(*args, check=None, env=None, timeout=600):
    """Run the real `freqindex` CLI in a subprocess; returns CompletedProcess."""
    import subprocess

    e = dict(os.environ)
    e.update(env or {})
    proc = subprocess.run(
        [sys.executable, "-m", "freqindex.cli", *map(str, args)],
        capture_output=True,
        text=True,
        env=e,
        timeout=timeout,
        cwd=REPO,
    )
    if check is not None:
        assert proc.returncode == check, f"exit {proc.returncode}\nstdout:{proc.stdout}\nstderr:{proc.stderr}"
    return proc


def build_in_process(inputs, output, **kw):
    """The build's pure core in this process (no Spark): the same shard files, suffix arrays and manifest."""
    from freqindex.build.driver import build_index, run_in_process
    from freqindex.config import BuildConfig

    overwrite = kw.pop("overwrite", False)
    cfg = BuildConfig(inputs=tuple(str(i) for i in inputs), output=str(output), **kw)
    return build_index(cfg, run_in_process, overwrite=overwrite)
