"""A published index in an object store (a real moto_server on loopback): pull it (resumable, every file
checked), open it through the verified cache, verify it in place."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from freqindex.build import build_index, run_in_process
from freqindex.config import BuildConfig
from freqindex.errors import CheckFailedError, IndexNotFoundError, UsageError
from freqindex.manifest import verify
from freqindex.query.count import count
from freqindex.remote import PULL_STATE, cached_index, pull, verify_remote
from freqindex.storage import access_problem
from freqindex.suffix.index import Index
from tests.conftest import REPO, cli, free_port
from tests.objectstore import make_corpus, moto_server, s3fs_for, upload

pytestmark = pytest.mark.s3


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    """(storage options, filesystem, local reference index) with the same index published at s3://bkt/idx."""
    tmp = tmp_path_factory.mktemp("remote")
    corpus = make_corpus(tmp / "corpus")
    with moto_server(tmp) as endpoint:
        fs = s3fs_for(endpoint)
        fs.mkdir("bkt")
        so = (("endpoint_url", endpoint),)
        build_index(
            BuildConfig(inputs=(str(corpus),), output=str(tmp / "ref"), shards=2, chunk_bytes=64 << 10),
            run_in_process,
        )
        upload(fs, tmp / "ref", "s3://bkt/idx")
        yield so, fs, tmp / "ref"


def _flip(fs, key: str) -> bytes:
    data = fs.cat_file(key)
    changed = bytearray(data)
    changed[len(changed) // 2] ^= 0x01
    fs.pipe_file(key, bytes(changed))
    return data


def test_pull_checks_every_file_and_resumes(published, tmp_path):
    so, fs, ref = published
    dest = tmp_path / "copy"
    res = pull("s3://bkt/idx", dest, so)
    assert res["downloaded"] == res["files"] == len(json.loads((ref / "manifest.json").read_text())["files"])
    assert (dest / "manifest.json").read_bytes() == (ref / "manifest.json").read_bytes()
    assert verify(dest)["ok"]
    idx, ref_idx = Index.open(dest), Index.open(ref)
    for q in (" dog ", " the ", "frisbee"):
        for unit in ("occurrences", "docs"):
            assert count(idx, q, unit=unit) == count(ref_idx, q, unit=unit)
    # interrupted: a file gone, another cut off mid-download (its .part holds the first half)
    (dest / "manifest.json").unlink()
    (dest / "sa" / "table.0").unlink()
    tokenized = (dest / "sa" / "tokenized.1").read_bytes()
    (dest / "sa" / "tokenized.1").unlink()
    (dest / "sa" / "tokenized.1.part").write_bytes(tokenized[: len(tokenized) // 2])
    res = pull("s3://bkt/idx", dest, so)
    assert res["downloaded"] == 2 and res["kept"] == res["files"] - 2
    assert (dest / "sa" / "tokenized.1").read_bytes() == tokenized and not (
        dest / "sa" / "tokenized.1.part"
    ).exists()
    assert verify(dest)["ok"]
    # a .part of an older version of the file is noticed by the checksum and fetched again
    (dest / "manifest.json").unlink()
    (dest / "sa" / "table.1").unlink()
    (dest / "sa" / "table.1.part").write_bytes(b"\x00" * 100)
    assert pull("s3://bkt/idx", dest, so)["downloaded"] == 1 and verify(dest)["ok"]
    # an object changed in the store: the pull refuses the file, and the directory is no index
    original = _flip(fs, "bkt/idx/sa/metaoff.0")
    (dest / "sa" / "metaoff.0").unlink()
    with pytest.raises(CheckFailedError, match=r"s3://bkt/idx/sa/metaoff.0 does not match the manifest"):
        pull("s3://bkt/idx", dest, so)
    assert not (dest / "manifest.json").exists()
    fs.pipe_file("bkt/idx/sa/metaoff.0", original)
    # a directory that is neither an index nor a pull is left alone
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("x")
    with pytest.raises(
        UsageError, match="is not empty and is neither a freqindex index nor an unfinished pull"
    ):
        pull("s3://bkt/idx", tmp_path / "mine", so)


def test_the_cache_is_verified_and_reused(published, tmp_path):
    so, fs, ref = published
    said: list[str] = []
    entry = cached_index("s3://bkt/idx", tmp_path / "cache", so, said.append)
    assert entry.name == "idx" and entry.parent.parent == tmp_path / "cache" / "indexes"
    assert len(said) == 1 and said[0].startswith("pulling s3://bkt/idx into the cache ")
    assert cached_index("s3://bkt/idx", tmp_path / "cache", so, said.append) == entry and len(said) == 1
    # a cached file changed locally no longer matches its record: it is checked and fetched again
    table = entry / "sa" / "table.0"
    table.write_bytes(table.read_bytes()[:-1] + b"\x00")
    assert cached_index("s3://bkt/idx", tmp_path / "cache", so, said.append) == entry and len(said) == 2
    assert verify(entry)["ok"] and json.loads((entry / PULL_STATE).read_text())["url"] == "s3://bkt/idx"
    # a prefix without a manifest is never opened as an index
    fs.pipe_file("bkt/half/sa/tokenized.0", b"x")
    with pytest.raises(IndexNotFoundError, match=r"s3://bkt/half is not a complete freqindex index"):
        cached_index("s3://bkt/half", tmp_path / "cache", so)


def test_verify_checks_the_objects_in_place(published):
    so, fs, _ = published
    res = verify_remote("s3://bkt/idx", so)
    assert res["ok"] and res["index"] == "s3://bkt/idx" and res["files_checked"] >= 13
    original = _flip(fs, "bkt/idx/docs/part-00001.parquet")
    try:
        with pytest.raises(CheckFailedError) as e:
            verify_remote("s3://bkt/idx", so)
        assert str(e.value) == (
            "verify failed: s3://bkt/idx/docs/part-00001.parquet does not match its sha256 in the manifest"
        )
        fs.pipe_file("bkt/idx/docs/part-00001.parquet", original[:-1])
        with pytest.raises(CheckFailedError, match=r"part-00001.parquet has \d+ bytes, manifest says \d+"):
            verify_remote("s3://bkt/idx", so)
    finally:
        fs.pipe_file("bkt/idx/docs/part-00001.parquet", original)
    assert verify_remote("s3://bkt/idx", so)["ok"]


def _cli_without_aws(*args, extra_env=None):
    """The CLI in a subprocess whose environment holds no AWS credentials at all (no variables, no files)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        AWS_CONFIG_FILE=os.devnull,
        AWS_EC2_METADATA_DISABLED="true",
        AWS_DEFAULT_REGION="us-east-1",
        **(extra_env or {}),
    )
    return subprocess.run(
        [sys.executable, "-m", "freqindex.cli", *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=300,
    )


def _user_error(proc, *words):
    """Exit 2 with one error line that says what is wrong, no traceback and no 'internal error'."""
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1 and "internal error" not in proc.stderr and "Traceback" not in proc.stderr
    for w in words:
        assert w in lines[0], lines[0]
    return lines[0]


def test_storage_that_cannot_be_used_is_a_one_line_user_error(published, tmp_path):
    so, _, ref = published
    endpoint = dict(so)["endpoint_url"]
    keys = {"AWS_ACCESS_KEY_ID": "freqindex-test", "AWS_SECRET_ACCESS_KEY": "freqindex-test-secret"}
    # no credentials anywhere: says so and where they come from
    line = _user_error(
        _cli_without_aws("info", "s3://bkt/idx", "--storage-option", f"endpoint_url={endpoint}"),
        "no credentials",
    )
    assert "AWS_ACCESS_KEY_ID" in line and "--storage-option" in line
    # the same with credentials works (the fixture's server accepts any)
    ok = _cli_without_aws(
        "info", "s3://bkt/idx", "--storage-option", f"endpoint_url={endpoint}", extra_env=keys
    )
    assert ok.returncode == 0, ok.stderr
    # a store nobody answers at
    closed = free_port()
    no_retry = 'config_kwargs={"retries": {"max_attempts": 1}}'
    args = ["--storage-option", f"endpoint_url=http://127.0.0.1:{closed}", "--storage-option", no_retry]
    _user_error(_cli_without_aws("count", "s3://bkt/idx", "dog", *args, extra_env=keys), "cannot reach")
    # a storage option the filesystem does not take
    _user_error(
        _cli_without_aws("info", "s3://bkt/idx", *args[:2], "--storage-option", "retries=1", extra_env=keys),
        "storage option",
        "retries",
    )
    # a cache directory that cannot be one
    not_a_dir = tmp_path / "a-file"
    not_a_dir.write_text("x")
    _user_error(
        _cli_without_aws("count", "s3://bkt/idx", "dog", "--cache-dir", not_a_dir / "cache", extra_env=keys),
        f"cannot use the cache directory {not_a_dir / 'cache'}",
        "--cache-dir",
    )
    # a store that refuses these credentials: a build to it says access is denied, and writes nothing here
    corpus = make_corpus(tmp_path / "corpus")
    with moto_server(tmp_path, server_env={"INITIAL_NO_AUTH_ACTION_COUNT": "0"}) as strict:
        p = _cli_without_aws(
            "build",
            corpus,
            "-o",
            "s3://bkt/out",
            "--storage-option",
            f"endpoint_url={strict}",
            extra_env=keys,
        )
        _user_error(p, "access denied")
    assert ref.is_dir()


def test_access_problems_are_told_apart_along_the_cause_chain():
    """The classifier behind those messages, on the exceptions the clients raise (by class name, so no client
    library is imported to recognise them)."""
    no_credentials = type("NoCredentialsError", (Exception,), {})
    try:
        try:
            raise no_credentials("Unable to locate credentials")
        except Exception as inner:
            raise OSError("listing failed") from inner
    except OSError as outer:
        assert access_problem(outer).startswith("no credentials for the object store (Unable to locate")
    assert access_problem(PermissionError(13, "Permission denied", "/data/x")) == "permission denied: /data/x"
    assert access_problem(PermissionError("Forbidden")).startswith(
        "access denied: Forbidden (credentials come"
    )
    assert access_problem(TypeError("f() got an unexpected keyword argument 'x'")) is None  # not a client's
    assert access_problem(ValueError("a bug")) is None


def test_the_infgram_commands_read_a_url_as_the_local_index(published, tmp_path):
    """prob, ntd, distance and priming on s3://bkt/idx (through the verified cache) answer as on the local
    index it was published from."""
    so, _, ref = published
    remote = [
        "--storage-option",
        f"endpoint_url={dict(so)['endpoint_url']}",
        "--cache-dir",
        tmp_path / "cache",
    ]
    items = tmp_path / "items.jsonl"
    items.write_text(json.dumps({"id": "a", "question": "A dog runs on the grass."}) + "\n")
    keywords = tmp_path / "kw.jsonl"
    keywords.write_text(json.dumps({"context": "a dog runs on the", "keyword": " grass"}) + "\n")
    for args in (
        ["prob", "--context", "a dog runs on the", "--next", " grass", "-n", "3", "--json"],
        ["ntd", "--context", "a dog", "--top", "5", "--json"],
        ["distance", "--eval", items, "--fields", "question", "--json"],
        ["priming", "--file", keywords],
    ):
        local = cli(args[0], ref, *args[1:], check=0).stdout
        assert local.strip()
        assert cli(args[0], "s3://bkt/idx", *args[1:], *remote, check=0).stdout == local, args[0]
