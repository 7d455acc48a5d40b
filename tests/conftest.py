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


# CI runs two pytest-xdist workers (``-n 2 --dist loadfile --no-loadscope-reorder``). Under them torch's
# OpenMP threads must not spin while the other worker computes: two embedding processes side by side on 2
# cores took 37 s each with spinning threads, 20 s each with passive ones (12.5 s alone). Set before any test
# imports torch; CLI subprocesses and Spark's Python workers inherit it.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

# the test files with the longest fixtures go first, so that the other worker runs the many short files
# beside them instead of one worker finishing them alone at the end
FIRST = (
    "tests/query/test_candidates.py",
    "tests/golden/test_golden.py",
    "tests/vectors/test_vectors.py",
    "tests/jobs/test_cluster_s3.py",
    "tests/analysis/test_analyze_neighbors.py",
    "tests/server/test_server.py",
    "tests/jobs/test_cluster.py",
    "tests/cli/test_cli.py",
)


def pytest_collection_modifyitems(config, items):
    rank = {name: k for k, name in enumerate(FIRST)}
    items.sort(key=lambda it: rank.get(it.nodeid.split("::")[0], len(FIRST)))  # stable: the rest in order


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
