"""Builds under faults, through the real CLI and real Spark: two builds racing for one output, Spark that
cannot start or cannot start its Python workers, and a disk that fills up. Each ends with one line on
stderr that names the cause (exit 3, no traceback); a build that wins prints plain progress lines to a
stderr that is not a terminal."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import GSM8K_TRAIN, REPO, WIKITEXT, cli, free_port

pytestmark = pytest.mark.spark


def _no_traceback(stderr: str) -> None:
    assert "Traceback" not in stderr and "\tat " not in stderr and "more\n" not in stderr, stderr


def _popen(*args) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "freqindex.cli", "build", *map(str, args)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_two_builds_race_for_one_output(tmp_path):
    """Started together with different inputs: one builds, the other fails at once naming the winner."""
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    (a / "gsm8k.jsonl").write_text("".join(GSM8K_TRAIN.read_text().splitlines(keepends=True)[:2000]))
    os.symlink(WIKITEXT, b / "valid.txt")
    for d in (a, b):
        (d / "README.md").write_text("# not corpus\n")
    out = tmp_path / "idx"
    common = ["-o", out, "--master", "local[1]", "--shards", "2"]
    procs = {
        "a": _popen(a, "--text-field", "question", *common),
        "b": _popen(b, "--text-per-line", *common),
    }
    started, ended = time.monotonic(), {}
    while len(ended) < 2:
        for k, p in procs.items():
            if k not in ended and p.poll() is not None:
                ended[k] = time.monotonic()
        time.sleep(0.05)
    results = {k: (p.returncode, *p.communicate()) for k, p in procs.items()}
    assert sorted(rc for rc, _, _ in results.values()) == [0, 3], results
    winner = next(k for k, r in results.items() if r[0] == 0)
    loser = "b" if winner == "a" else "a"
    err = results[loser][2].strip().splitlines()
    assert err[-1].startswith(
        f"error: {out} is being built by pid {procs[winner].pid} on {socket.gethostname()} (started "
    ), err
    assert err[-1].endswith(f"(lock file: {tmp_path / '.idx.lock'})"), err
    assert all(ln.startswith(("building ", "skipping ")) for ln in err[:-1]), err  # before the lock: planning
    _no_traceback(results[loser][2])
    # the directory holds the winner's index, complete, and the lock is gone
    assert cli("verify", out).returncode == 0 and not (tmp_path / ".idx.lock").exists()
    info = cli("info", out, check=0).stdout
    assert re.search(r"skipped files\s+1: README.md \(unknown format .md\)", info), info
    log = results[winner][2]
    assert "skipping 1 input file(s): README.md (unknown format .md)" in log
    # without a terminal, every stage still reports its progress, up to its last task (on local[1] the 2
    # shards are one Spark task that builds them one after the other: freqindex.build.scheduling)
    assert "read + tokenize: 1/1 tasks" in log, log
    assert "write shards + suffix arrays: 1/1 tasks" in log and "0/1 tasks" in log, log
    # `seconds` covers Spark's start once: never more than the process's own lifetime
    seconds = float(re.search(r"seconds\s+([\d.]+)", log).group(1))
    assert seconds <= ended[winner] - started, (seconds, ended[winner] - started)


def test_spark_that_cannot_start_or_cannot_run_python(tmp_path):
    corpus = tmp_path / "c"
    corpus.mkdir()
    (corpus / "a.jsonl").write_text("".join(GSM8K_TRAIN.read_text().splitlines(keepends=True)[:50]))
    env = {"TMPDIR": str(tmp_path)}  # where Spark's log goes
    p = cli(
        "build",
        corpus,
        "-o",
        tmp_path / "x",
        "--text-field",
        "question",
        "--master",
        "bogus://x",
        check=3,
        env=env,
    )
    err = p.stderr.strip().splitlines()
    assert err[-1].startswith(
        "error: Spark could not start (--master bogus://x): Master must either be yarn or start with spark, k8s, "
        "or local (Spark's log: "
    ), err
    assert err[-1].endswith("nothing of the unfinished build was kept") and len(err) == 2, err
    _no_traceback(p.stderr)
    log = Path(re.search(r"Spark's log: (\S+)\)", err[-1]).group(1))
    assert log.parent == tmp_path and "at org.apache.spark.deploy.SparkSubmit" in log.read_text()
    p = cli(
        "build",
        corpus,
        "-o",
        tmp_path / "y",
        "--text-field",
        "question",
        "--master",
        "local[1]",
        "--conf",
        "spark.pyspark.python=/nonexistent/bin/python3",
        check=3,
        env=env,
    )
    err = p.stderr.strip().splitlines()
    assert err[-1].startswith(
        "error: a Spark task failed: the executors cannot start Python /nonexistent/bin/python3 (No such file or "
        "directory): point spark.pyspark.python (--conf) or PYSPARK_PYTHON at an interpreter"
    ), err
    _no_traceback(p.stderr)
    assert not (tmp_path / "y").exists() and not (tmp_path / ".y.partial").exists()
    # a standalone master that is not there: said at once (Spark itself gives up after about a minute)
    closed = free_port()
    master = f"spark://127.0.0.1:{closed}"
    p = cli("build", corpus, "-o", tmp_path / "z", "--text-field", "question", "--master", master, check=3)
    err = p.stderr.strip().splitlines()
    assert err[-1] == (
        f"error: no Spark master answers at {master} (127.0.0.1:{closed}: Connection refused): is it running, and "
        "is this the address its log gives in 'Starting Spark master at spark://...'?; nothing of the unfinished "
        "build was kept"
    ), err
    assert not (tmp_path / "z").exists() and not (tmp_path / ".z.partial").exists()


def test_a_full_disk_is_named_and_the_partial_build_reported(tmp_path):
    """A real 3 MiB tmpfs (mounting one needs root; the error path itself is also tested in process, with an
    injected ENOSPC, in tests/build/test_guards.py)."""
    mnt = tmp_path / "small-disk"
    mnt.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mnt)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a size-limited tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        p = cli(
            "build",
            WIKITEXT,
            "--text-per-line",
            "-o",
            mnt / "idx",
            "--master",
            "local[1]",
            check=3,
            env={"TMPDIR": str(tmp_path)},
        )
        err = p.stderr.strip().splitlines()[-1]
        assert err.startswith("error: no space left on device: "), p.stderr
        partial = mnt / ".idx.partial"
        assert re.search(rf"the unfinished build is kept in {re.escape(str(partial))} \([\d.]+ MiB\)", err), (
            err
        )
        assert err.endswith("once there is space, or delete it to free the space")
        _no_traceback(p.stderr)
        assert partial.is_dir() and not (mnt / "idx").exists()
    finally:
        subprocess.run(["umount", str(mnt)], capture_output=True)
    assert not Path(mnt).is_mount()
