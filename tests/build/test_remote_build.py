"""Builds into an object store (a real moto_server on loopback), run in process: the same shards as a local
build, only the finished index left under the prefix, resume from per-task markers with what a dead attempt
left removed, and the object-store output lock."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import pyarrow.parquet as pq
import pytest

from freqindex.build import build_index, run_in_process
from freqindex.build.lock import ObjectStoreLock, OutputLockedError, lock_for
from freqindex.config import BuildConfig
from freqindex.errors import BuildError, UsageError
from tests.objectstore import S3_ENV, make_corpus, moto_server, s3fs_for, upload

pytestmark = pytest.mark.s3
SETTINGS = dict(chunk_bytes=64 << 10, shards=2)


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    """(endpoint, filesystem, local corpus) with the corpus uploaded to s3://bkt/corpus."""
    tmp = tmp_path_factory.mktemp("s3")
    corpus = make_corpus(tmp / "corpus")
    with moto_server(tmp) as endpoint:
        fs = s3fs_for(endpoint)
        fs.mkdir("bkt")
        upload(fs, corpus, "s3://bkt/corpus")
        yield endpoint, fs, corpus


@pytest.fixture(scope="module")
def local_ref(s3, tmp_path_factory):
    _, _, corpus = s3
    out = tmp_path_factory.mktemp("ref") / "idx"
    build_index(BuildConfig(inputs=(str(corpus),), output=str(out), **SETTINGS), run_in_process)
    return out


def _cfg(endpoint: str, output: str, **kw) -> BuildConfig:
    return BuildConfig(
        inputs=("s3://bkt/corpus",),
        output=output,
        storage_options=(("endpoint_url", endpoint),),
        **SETTINGS,
        **kw,
    )


def _objects(fs, prefix: str) -> set[str]:
    fs.invalidate_cache()
    return {p[len(prefix) + 1 :] for p in fs.find(prefix)}


def _same_shards(fs, prefix: str, local_ref) -> None:
    """Token, offset and suffix-array files byte for byte; metadata and docs equal but for the source, which
    names the input where it was read (s3://bkt/corpus/a.jsonl, /tmp/.../a.jsonl)."""
    for p in sorted((local_ref / "sa").iterdir()):
        remote = fs.cat_file(f"{prefix}/sa/{p.name}")
        if p.name.startswith(("tokenized", "table", "offset")):
            assert remote == p.read_bytes(), p.name
        elif p.name.startswith("metadata"):
            a = [json.loads(x) for x in remote.splitlines()]
            b = [json.loads(x) for x in p.read_bytes().splitlines()]
            assert [{**r, "source": r["source"].rsplit("/", 1)[1]} for r in a] == [
                {**r, "source": r["source"].rsplit("/", 1)[1]} for r in b
            ]
            assert all(r["source"].startswith("s3://bkt/corpus/") for r in a)


def test_s3_build_equals_local_build_and_leaves_only_the_index(s3, local_ref):
    endpoint, fs, _ = s3
    said: list[str] = []
    secret = (("key", S3_ENV["AWS_ACCESS_KEY_ID"]), ("secret", S3_ENV["AWS_SECRET_ACCESS_KEY"]))
    cfg = BuildConfig(
        inputs=("s3://bkt/corpus",),
        output="s3://bkt/idx",
        storage_options=(("endpoint_url", endpoint), *secret),
        **SETTINGS,
    )
    summary = build_index(cfg, run_in_process, on_message=said.append)
    ref = json.loads((local_ref / "manifest.json").read_text())
    assert summary["output"] == "s3://bkt/idx" and summary["documents"] == ref["counts"]["documents"]
    assert summary["quarantined"] == 1 and summary["chunks"] == ref["counts"]["chunks"] > 5
    assert "skipping 1 input file(s): README.md (unknown format .md)" in said
    _same_shards(fs, "bkt/idx", local_ref)
    manifest = json.loads(fs.cat_file("bkt/idx/manifest.json"))
    assert _objects(fs, "bkt/idx") == set(manifest["files"]) | {"manifest.json"}  # no _staging, no strays
    assert not fs.exists("bkt/.idx.lock") or not fs.ls("bkt/.idx.lock")  # the lock is released
    assert manifest["config"]["storage_options"] == {"endpoint_url": endpoint, "key": "***", "secret": "***"}
    assert manifest["content_key"] != ref["content_key"]  # other inputs (URLs), same settings
    for rel in ("docs/part-00000.parquet", "quarantine/quarantine.parquet"):
        with fs.open(f"bkt/idx/{rel}") as f:
            remote = pq.read_table(f)
        local = pq.read_table(local_ref / rel)
        assert remote.drop(["source"]).equals(local.drop(["source"])), rel
    # a second run is a no-op
    again = build_index(_cfg(endpoint, "s3://bkt/idx"), run_in_process)
    assert again["status"] == "up-to-date"


def _dead_pid() -> int:
    return int(
        subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True).stdout
    )


def test_a_killed_s3_build_resumes_and_leaves_nothing_behind(s3, local_ref):
    endpoint, fs, _ = s3
    out = "s3://bkt/resume/idx"

    def dies_after_one_shard(description, fn, n):
        if description.startswith("write shards"):
            fn(0)
            raise BuildError("the driver died")
        return run_in_process(description, fn, n)

    with pytest.raises(BuildError) as e:
        build_index(_cfg(endpoint, out), dies_after_one_shard)
    assert str(e.value).startswith(
        "the driver died; the unfinished build is kept under s3://bkt/resume/idx ("
    )
    assert str(e.value).endswith("run the same command again to resume")
    left = _objects(fs, "bkt/resume/idx")
    assert "manifest.json" not in left and "_staging/shards/shard-00000.done" in left
    assert "_staging/shards/shard-00001.done" not in left
    # staged chunks cross the network (up from the chunk task, down to the shard task): zstd-compressed
    with fs.open("bkt/resume/idx/_staging/chunks/chunk-000000.parquet", "rb") as f:
        meta = pq.ParquetFile(f).metadata
    assert meta.num_row_groups >= 1
    assert {meta.row_group(0).column(i).compression for i in range(meta.num_columns)} == {"ZSTD"}
    # what dead attempts left: a file of another plan, an S3 upload never completed, a stale lock
    fs.pipe_file("bkt/resume/idx/sa/table.7", b"from a plan with 8 shards")
    pending = fs.call_s3("create_multipart_upload", Bucket="bkt", Key="resume/idx/sa/table.1")
    holder = {
        "pid": _dead_pid(),
        "host": socket.gethostname(),
        "started": "then",
        "command": "x",
        "token": "t",
    }
    fs.pipe_file(
        "bkt/resume/.idx.lock/00000004", json.dumps({**holder, "expires": time.time() + 600}).encode()
    )
    # a damaged staged chunk is noticed by its marker's checksum and redone
    fs.pipe_file("bkt/resume/idx/_staging/chunks/chunk-000001.parquet", b"damaged")
    said: list[str] = []
    summary = build_index(_cfg(endpoint, out), run_in_process, on_message=said.append)
    assert summary["status"] == "built"
    assert summary["resumed_tasks"] == summary["chunks"] - 1 + 1  # every chunk but the damaged one, shard 0
    assert any(m.startswith(f"took over the lock of an earlier build (pid {holder['pid']} on ") for m in said)
    assert "resuming an unfinished build: finished stages are kept where their checksums match" in said
    _same_shards(fs, "bkt/resume/idx", local_ref)
    manifest = json.loads(fs.cat_file("bkt/resume/idx/manifest.json"))
    assert _objects(fs, "bkt/resume/idx") == set(manifest["files"]) | {"manifest.json"}
    uploads = fs.call_s3("list_multipart_uploads", Bucket="bkt", Prefix="resume/")
    assert pending["UploadId"] not in [u["UploadId"] for u in uploads.get("Uploads", [])]
    assert _objects(fs, "bkt/resume") == {f"idx/{r}" for r in manifest["files"]} | {"idx/manifest.json"}


def test_the_output_must_be_empty_an_index_or_an_unfinished_build(s3):
    endpoint, fs, _ = s3
    fs.pipe_file("bkt/other/data.csv", b"a,b\n")
    with pytest.raises(UsageError, match=r"s3://bkt/other is not empty and is neither a freqindex index"):
        build_index(_cfg(endpoint, "s3://bkt/other"), run_in_process)
    with pytest.raises(UsageError, match="not the bucket itself"):
        build_index(_cfg(endpoint, "s3://bkt2/"), run_in_process)
    with pytest.raises(UsageError, match="inside the input directory"):
        build_index(_cfg(endpoint, "s3://bkt/corpus/idx"), run_in_process)


def test_the_object_store_lock(s3):
    endpoint, fs, _ = s3
    so = (("endpoint_url", endpoint),)
    out = "s3://bkt/locked/idx"
    first = lock_for(out, so)
    assert isinstance(first, ObjectStoreLock) and first.url == "s3://bkt/locked/.idx.lock"
    with first:
        held = json.loads(fs.cat_file("bkt/locked/.idx.lock/00000001"))
        assert held["pid"] == os.getpid() and held["expires"] > time.time()
        with pytest.raises(OutputLockedError) as e:
            ObjectStoreLock(out, so).acquire()
        assert str(e.value).startswith(f"{out} is being built by pid {os.getpid()} on {socket.gethostname()}")
        first.verify()
    assert fs.ls("bkt/locked/.idx.lock") == [] if fs.exists("bkt/locked/.idx.lock") else True
    # another host's build holds the lock while its lease runs, and loses it when the lease ran out
    other = {"pid": 1, "host": "elsewhere", "started": "then", "command": "x", "token": "t"}
    fs.pipe_file(
        "bkt/locked/.idx.lock/00000003", json.dumps({**other, "expires": time.time() + 600}).encode()
    )
    with pytest.raises(OutputLockedError, match="on elsewhere"):
        ObjectStoreLock(out, so).acquire()
    fs.pipe_file("bkt/locked/.idx.lock/00000003", json.dumps({**other, "expires": time.time() - 1}).encode())
    lock = ObjectStoreLock(out, so, lease_s=2)
    lock.acquire()
    assert lock.generation == 4 and lock.stale is not None and lock.stale.host == "elsewhere"
    # the holder renews its lease (every lease_s / 4)
    first_expiry = json.loads(fs.cat_file("bkt/locked/.idx.lock/00000004"))["expires"]
    for _ in range(200):
        if json.loads(fs.cat_file("bkt/locked/.idx.lock/00000004"))["expires"] > first_expiry:
            break
        time.sleep(0.1)
    else:
        pytest.fail("the lease was never renewed")
    # a build that took over (a newer generation) makes the old holder fail before publishing
    fs.pipe_file(
        "bkt/locked/.idx.lock/00000005", json.dumps({**other, "expires": time.time() + 600}).encode()
    )
    with pytest.raises(OutputLockedError, match="lost its lock on s3://bkt/locked/idx to pid 1 on elsewhere"):
        lock.verify()
    lock.release()
    assert fs.exists("bkt/locked/.idx.lock/00000005")  # release removes only its own generation
