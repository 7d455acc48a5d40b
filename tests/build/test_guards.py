"""The driver's guards, in process (no Spark): skipped files, output apart from inputs, plan-time Parquet
checks, the output lock, the publish-time re-check, and failures that name their cause and the partial."""

from __future__ import annotations

import errno
import fcntl
import json
import os
import shutil
import socket
import subprocess
import sys
import threading

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from freqindex.build import build_index, run_in_process
from freqindex.build.lock import LocalOutputLock, OutputLockedError, lock_for
from freqindex.config import BuildConfig
from freqindex.errors import BadInputError, BuildError, UsageError
from freqindex.manifest import read_manifest


def _corpus(root, n=50):
    root.mkdir(parents=True, exist_ok=True)
    (root / "a.jsonl").write_text(
        "".join(json.dumps({"text": f"doc {i} about a dog"}) + "\n" for i in range(n))
    )
    return root


def _build(inputs, output, messages=None, runner=run_in_process, **kw):
    cfg = BuildConfig(inputs=tuple(str(i) for i in inputs), output=str(output), **kw)
    return build_index(cfg, runner, on_message=(messages.append if messages is not None else None))


def _never(*_a):
    raise AssertionError("no task may run (Spark would have started)")


def test_skipped_files_are_printed_kept_and_fail_strict(tmp_path):
    corpus = _corpus(tmp_path / "c")
    for name in ("README.md", "e.csv", "g.jsonl.bz2", ".hidden.jsonl"):
        (corpus / name).write_text('{"text": "not read"}\n')
    said: list[str] = []
    summary = _build([corpus], tmp_path / "idx", said)
    assert summary["skipped_files"] == 4 and summary["documents"] == 50
    line = next(m for m in said if m.startswith("skipping"))
    assert line == (
        "skipping 4 input file(s): .hidden.jsonl (hidden file), README.md (unknown format .md), "
        "e.csv (unknown format .csv), g.jsonl.bz2 (unsupported compression .bz2 (readable: .gz, .zst))"
    )
    m = read_manifest(tmp_path / "idx")
    assert [(os.path.basename(s["path"]), s["reason"]) for s in m["skipped_files"]][:2] == [
        (".hidden.jsonl", "hidden file"),
        ("README.md", "unknown format .md"),
    ]
    with pytest.raises(
        BadInputError, match=r"4 input file\(s\) would be skipped: .hidden.jsonl .* \(--strict"
    ):
        _build([corpus], tmp_path / "strict", runner=_never, strict=True)
    assert not (tmp_path / "strict").exists()


def test_output_and_inputs_must_not_nest(tmp_path):
    corpus = _corpus(tmp_path / "inside")
    with pytest.raises(UsageError, match="is inside the input directory"):
        _build([corpus], corpus / "idx", runner=_never)
    os.symlink(corpus, tmp_path / "link")  # the same directory under another name
    with pytest.raises(UsageError, match="is inside the input directory"):
        _build([tmp_path / "link"], corpus / "sub" / "idx", runner=_never)
    _build([corpus / "a.jsonl"], tmp_path / "idx")
    with pytest.raises(UsageError, match="is inside the output"):
        _build([tmp_path / "idx" / "docs"], tmp_path / "idx", runner=_never, format="parquet")
    with pytest.raises(UsageError, match="is inside the output"):
        _build([str(tmp_path / "idx" / "**" / "*.parquet")], tmp_path / "idx", runner=_never)
    # files of the input directory named one by one (a glob) may sit beside the output
    _build([str(corpus / "*.jsonl")], corpus / "idx")


def test_parquet_without_the_text_column_is_found_before_spark(tmp_path):
    d = tmp_path / "p"
    d.mkdir()
    pq.write_table(pa.table({"body": ["x"], "id": [1]}), d / "a.parquet")
    with pytest.raises(BadInputError) as e:
        _build([d], tmp_path / "idx", runner=_never)
    assert str(e.value) == (
        f"nothing to index: {d / 'a.parquet'}: missing text column 'text' (columns: body, id); see --text-field"
    )
    _corpus(d)
    with pytest.raises(BadInputError, match=r"a.parquet: missing text column 'text' .* \(--strict\)"):
        _build([d], tmp_path / "idx", runner=_never, strict=True)
    summary = _build([d], tmp_path / "idx")  # beside good files: quarantined, named, and the build goes on
    q = pq.read_table(tmp_path / "idx" / "quarantine" / "quarantine.parquet").to_pylist()
    assert summary["documents"] == 50 and [(os.path.basename(r["source"]), r["line"]) for r in q] == [
        ("a.parquet", None)
    ]


def _dead_owner(host: str) -> dict:
    """A lock file's owner record naming a process that has exited (a build killed with -9)."""
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    return {"pid": int(dead.stdout), "host": host, "started": "then", "command": "x", "token": "t"}


def test_the_lock_names_its_holder_and_detects_stale_ones(tmp_path, monkeypatch):
    out = str(tmp_path / "idx")
    first = lock_for(out)
    assert isinstance(first, LocalOutputLock) and first.path == tmp_path / ".idx.lock"
    with first:
        holder = json.loads(first.path.read_text())
        assert holder["pid"] == os.getpid() and holder["host"] == socket.gethostname()
        with pytest.raises(OutputLockedError) as e:
            LocalOutputLock(out).acquire()
        assert str(e.value).startswith(f"{out} is being built by pid {os.getpid()} on {socket.gethostname()}")
        first.verify()
    assert not first.path.exists()  # released
    # a holder killed with -9 leaves its file but no flock: the next build takes over and says so
    stale = _dead_owner("h")
    first.path.write_text(json.dumps(stale))
    said: list[str] = []
    _build([_corpus(tmp_path / "c")], out, said)
    assert f"took over the lock of an earlier build (pid {stale['pid']} on h (started then))" in said[0]
    assert not first.path.exists()
    # a lock lost before publishing is noticed
    lock = LocalOutputLock(out)
    lock.acquire()
    os.unlink(lock.path)
    with pytest.raises(OutputLockedError, match="lost its lock"):
        lock.verify()
    lock.release()
    # without flock (some network filesystems): the pid decides on this host, another host's lock holds
    monkeypatch.setattr(fcntl, "flock", lambda *_a: (_ for _ in ()).throw(OSError(errno.ENOLCK, "no locks")))
    first.path.write_text(json.dumps({**stale, "host": socket.gethostname()}))
    lock = LocalOutputLock(out)
    lock.acquire()
    assert lock.stale is not None and lock.stale.pid == stale["pid"]
    with pytest.raises(OutputLockedError, match=f"pid {os.getpid()}"):
        LocalOutputLock(out).acquire()
    lock.release()
    first.path.write_text(json.dumps({**stale, "host": "elsewhere"}))
    with pytest.raises(OutputLockedError, match="on elsewhere"):
        LocalOutputLock(out).acquire()
    with pytest.raises(UsageError, match=r"cannot lock an output on nosuch://"):
        lock_for("nosuch://bucket/idx")


def test_a_holder_that_has_not_written_itself_yet_is_waited_for(tmp_path):
    """A build takes the flock and only then writes itself into the lock file; one that loses the race in
    that moment must still name the winner, not an empty file or the dead owner the file held before."""
    out = str(tmp_path / "idx")
    path = tmp_path / ".idx.lock"
    path.write_text(json.dumps(_dead_owner(socket.gethostname())))
    winner = LocalOutputLock(out)
    fd = os.open(path, os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # the winner holds the flock, its file still the old one
    writer = threading.Timer(0.3, winner._write, (fd,))
    writer.start()
    try:
        with pytest.raises(OutputLockedError) as e:
            LocalOutputLock(out).acquire()
        assert f"being built by {winner.owner.describe()};" in str(e.value), e.value
    finally:
        writer.join()
        os.close(fd)


def _failing_on(stage: str, exc: BaseException, before=None):
    def run(description, fn, n):
        if description.startswith(stage):
            if before:
                before()
            raise exc
        return run_in_process(description, fn, n)

    return run


def test_publish_rechecks_the_output(tmp_path):
    corpus = _corpus(tmp_path / "c")
    other = tmp_path / "other"
    _build([_corpus(tmp_path / "c2", 20)], other)

    def publish_behind_our_back(description, fn, n):
        out = run_in_process(description, fn, n)
        if description.startswith("write shards"):
            shutil.copytree(other, tmp_path / "idx")
        return out

    with pytest.raises(BuildError) as e:
        _build([corpus], tmp_path / "idx", runner=publish_behind_our_back)
    msg = str(e.value)
    assert msg.startswith(
        f"{tmp_path / 'idx'} changed while this build ran (another build published there); "
    )
    assert f"the unfinished build is kept in {tmp_path / '.idx.partial'} (" in msg
    assert read_manifest(tmp_path / "idx") == read_manifest(other)  # the other build's index is left alone


def test_disk_full_and_other_failures_name_the_cause_and_the_partial(tmp_path):
    corpus = _corpus(tmp_path / "c")
    enospc = OSError(
        errno.ENOSPC, "No space left on device", str(tmp_path / ".idx.partial" / "sa" / "table.0")
    )
    with pytest.raises(BuildError) as e:
        _build([corpus], tmp_path / "idx", runner=_failing_on("write shards", enospc))
    msg = str(e.value)
    assert msg.startswith(
        f"no space left on device: No space left on device ({tmp_path}/.idx.partial/sa/table.0)"
    )
    assert msg.endswith(
        "run the same command again to resume once there is space, or delete it to free the space"
    )
    assert "\n" not in msg and (tmp_path / ".idx.partial" / "_staging").is_dir()
    # a failure before any task finished keeps nothing
    shutil.rmtree(tmp_path / ".idx.partial")
    boom = BuildError("a Spark task failed: the executors cannot start Python /nope/python (No such file)")
    with pytest.raises(BuildError) as e:
        _build([corpus], tmp_path / "idx", runner=_failing_on("read", boom))
    assert str(e.value) == (
        "a Spark task failed: the executors cannot start Python /nope/python (No such file); "
        "nothing of the unfinished build was kept"
    )
    assert not (tmp_path / ".idx.partial").exists() and not (tmp_path / ".idx.lock").exists()
