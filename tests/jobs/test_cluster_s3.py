"""From s3:// to s3:// on a real Spark standalone cluster: a master and two workers on 127.0.0.1, each with a
work and a scratch directory of its own (infra/spark-standalone.sh), and a real S3-compatible server
(moto_server) on loopback. Nothing is shared between driver and executors but the store: stage-1 outputs
travel through it, shard tasks build in their worker's scratch and upload.

Checked: the index equals, byte for byte, a build of the same input written to local disk; queries through
the s3:// URL equal the local ones; verify on the URL; a driver killed at two points and a worker killed
mid-build, then a rerun, give the same bytes and leave nothing but the index; a shard task that fails once
is retried by Spark and the build completes byte-identically."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from freqindex.build import build_index, run_in_process
from freqindex.cli import app
from freqindex.config import BuildConfig
from tests.conftest import REPO
from tests.objectstore import make_corpus, moto_server, s3fs_for, upload

pytestmark = [pytest.mark.spark, pytest.mark.cluster, pytest.mark.s3]
SCRIPT = REPO / "infra" / "spark-standalone.sh"
CHUNK = 128 << 10


class Env:
    def __init__(self, url, state, endpoint, fs, ref, tmp):
        self.url, self.state, self.endpoint, self.fs, self.ref, self.tmp = url, state, endpoint, fs, ref, tmp
        self.so = ["--storage-option", f"endpoint_url={endpoint}"]
        self.config = tmp / "build.toml"
        self.config.write_text(f"[build]\nchunk_bytes = {CHUNK}\nshards = 2\n")

    def build_args(self, out: str, *extra) -> list[str]:
        return [
            "build",
            "s3://bkt/corpus",
            "-o",
            out,
            "--master",
            self.url,
            "--config",
            str(self.config),
            *self.so,
            "--json",
            *extra,
        ]

    def popen(self, out: str, *extra, env=None) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "-m", "freqindex.cli", *self.build_args(out, *extra)],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
            env={**os.environ, **(env or {})},
        )

    def build(self, out: str, *extra, env=None) -> tuple[int, str, str]:
        p = self.popen(out, *extra, env=env)
        stdout, stderr = p.communicate(timeout=600)
        return p.returncode, stdout, stderr

    def objects(self, prefix: str) -> set[str]:
        self.fs.invalidate_cache()
        return {p[len(prefix) + 1 :] for p in self.fs.find(prefix)}

    def assert_finished_index_equal_to_ref(self, prefix: str) -> None:
        """Every file of the index equals the local build's, and nothing else is under the prefix."""
        manifest = json.loads(self.fs.cat_file(f"{prefix}/manifest.json"))
        ref = json.loads((self.ref / "manifest.json").read_text())
        assert manifest["files"] == ref["files"] and manifest["content_key"] == ref["content_key"]
        for rel in sorted(ref["files"]):
            assert self.fs.cat_file(f"{prefix}/{rel}") == (self.ref / rel).read_bytes(), rel
        assert self.objects(prefix) == set(ref["files"]) | {"manifest.json"}
        lock_dir = f"{prefix.rsplit('/', 1)[0]}/.{prefix.rsplit('/', 1)[1]}.lock"
        assert not self.fs.exists(lock_dir) or not self.fs.ls(lock_dir)


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cluster-s3")
    corpus = make_corpus(tmp / "corpus")
    with moto_server(tmp) as endpoint:  # sets AWS_* here, so the workers and their executors inherit them
        fs = s3fs_for(endpoint)
        fs.mkdir("bkt")
        upload(fs, corpus, "s3://bkt/corpus")
        # the reference: the same s3:// input built to local disk (same sources, so every byte compares)
        ref = tmp / "ref"
        cfg = BuildConfig(
            inputs=("s3://bkt/corpus",),
            output=str(ref),
            chunk_bytes=CHUNK,
            shards=2,
            storage_options=(("endpoint_url", endpoint),),
        )
        build_index(cfg, run_in_process)
        state = tmp / "standalone"
        state.mkdir()
        cluster_env = {**os.environ, "FREQINDEX_CLUSTER_DIR": str(state), "PYSPARK_PYTHON": sys.executable}
        started = subprocess.run(
            ["bash", str(SCRIPT), "start", "", "1", "1g", "2"],
            capture_output=True,
            text=True,
            env=cluster_env,
            timeout=300,
        )
        try:
            assert started.returncode == 0, started.stderr + started.stdout
            url = started.stdout.strip().splitlines()[-1]
            yield Env(url, state, endpoint, fs, ref, tmp)
        finally:
            subprocess.run(["bash", str(SCRIPT), "stop"], capture_output=True, env=cluster_env, timeout=120)


def _invoke(*args) -> tuple[int, str]:
    r = CliRunner().invoke(app, [str(a) for a in args])
    return r.exit_code, r.output


def test_s3_to_s3_on_two_workers_equals_a_local_build(env):
    rc, stdout, stderr = env.build("s3://bkt/idx")
    assert rc == 0, stderr
    summary = json.loads(stdout)
    assert summary["status"] == "built" and summary["output"] == "s3://bkt/idx" and summary["chunks"] >= 6
    # the tasks worked in their workers' scratch directories (SPARK_LOCAL_DIRS), nowhere else
    scratch = summary["executor_scratch"]
    workers = {env.state / "local", env.state / "local-2"}
    assert scratch and all(any(Path(s).is_relative_to(w) for w in workers) for s in scratch), scratch
    env.assert_finished_index_equal_to_ref("bkt/idx")
    # queries through the URL (verified local cache) equal the local index's
    queries = env.tmp / "queries.txt"
    queries.write_text(" dog \nfrisbee\n how many \n dog  AND  frisbee \n the \n")
    vocab = env.tmp / "vocab.txt"
    vocab.write_text("dog\nfrisbee\nbeach\nstamp\nretriever\n")
    cache = ["--cache-dir", env.tmp / "cache", *env.so]
    for args in (
        ["count", "{}", "--file", queries],
        ["count", "{}", "--file", queries, "--unit", "docs"],
        ["docs", "{}", " frisbee ", "--limit", "5", "--json"],
        ["concepts", "{}", "--concepts", vocab, "--source", "suffix", "--json"],
    ):
        rc_url, remote = _invoke(*[("s3://bkt/idx" if a == "{}" else a) for a in args], *cache)
        rc_local, local = _invoke(*[(env.ref if a == "{}" else a) for a in args])
        rows = [json.loads(ln) for ln in local.splitlines() if ln.startswith("{")]
        assert rc_url == rc_local == 0 and rows, (args, local)
        assert [json.loads(ln) for ln in remote.splitlines() if ln.startswith("{")] == rows, args
    # verify on the URL checks the objects in place, and names the one changed byte's object
    rc, text = _invoke("verify", "s3://bkt/idx", *env.so)
    assert rc == 0 and text.startswith("ok: ")
    key = "bkt/idx/sa/table.1"
    original = env.fs.cat_file(key)
    changed = bytearray(original)
    changed[len(changed) // 3] ^= 0x40
    env.fs.pipe_file(key, bytes(changed))
    try:
        rc, text = _invoke("verify", "s3://bkt/idx", *env.so)
        assert rc == 1 and "s3://bkt/idx/sa/table.1 does not match its sha256" in text, text
    finally:
        env.fs.pipe_file(key, original)


def test_a_killed_driver_resumes_byte_identical(env):
    """The driver is killed between its own steps, when no task runs, so ``local[2]`` (executors inside the
    driver's JVM, which dies with it) tests the same thing as the cluster at a fraction of its start-up."""
    out = "s3://bkt/killed/idx"
    # killed (SIGKILL, with its JVM) after stage 1, then again after every shard was uploaded and checked
    # and the strays removed, just before the manifest
    for point in ("driver-tokenized", "driver-before-manifest"):
        rc, _, stderr = env.build(out, "--master", "local[2]", env={"FREQINDEX_FAULTS": f"{point}=kill"})
        assert rc == -signal.SIGKILL, stderr
        left = env.objects("bkt/killed/idx")
        assert "manifest.json" not in left and "_staging/build-state.json" in left, left
        assert env.fs.ls("bkt/killed/.idx.lock")  # the dead driver's lock stays until a rerun takes it over
    assert {r for r in left if r.startswith("_staging/shards/")} == {
        "_staging/shards/shard-00000.done",
        "_staging/shards/shard-00001.done",
    }
    rc, stdout, stderr = env.build(out, "--master", "local[2]")
    assert rc == 0, stderr
    summary = json.loads(stdout)
    assert summary["resumed_tasks"] == summary["chunks"] + summary["shards"]  # nothing was redone
    env.assert_finished_index_equal_to_ref("bkt/killed/idx")


def test_a_shard_task_that_fails_once_is_retried(env):
    fired = env.tmp / "fault-fired"
    rc, stdout, stderr = env.build(
        "s3://bkt/retried/idx",
        "--conf",
        "spark.task.maxFailures=2",
        "--conf",
        f"spark.executorEnv.FREQINDEX_FAULTS=shard-uploaded:1=fail-once:{fired}",
    )
    assert rc == 0, stderr
    assert fired.exists()  # shard 1's first attempt uploaded its files, then failed before its marker
    assert json.loads(stdout)["status"] == "built"
    env.assert_finished_index_equal_to_ref("bkt/retried/idx")


def test_a_killed_worker_then_a_rerun_give_the_same_index(env):
    """Last in this module: it leaves the cluster with one worker."""
    out = "s3://bkt/worker/idx"
    proc = env.popen(out)
    t0 = time.monotonic()
    while time.monotonic() - t0 < 300 and proc.poll() is None:
        done = (
            [r for r in env.objects("bkt/worker/idx") if r.endswith(".done")]
            if env.fs.exists("bkt/worker/idx")
            else []
        )
        if done:
            break
        time.sleep(0.1)
    worker = int((env.state / "worker-2.pid").read_text())
    os.kill(worker, signal.SIGKILL)  # its executor notices and exits: its running tasks are lost
    stdout, stderr = proc.communicate(timeout=600)
    assert done, "the build ended before the worker could be killed"
    if proc.returncode != 0:  # Spark may also finish on the remaining worker by itself
        rc, stdout, stderr = env.build(out)
        assert rc == 0, stderr
    assert json.loads(stdout)["status"] == "built"
    env.assert_finished_index_equal_to_ref("bkt/worker/idx")
