"""The CLI end to end, in subprocesses: bad input, strict mode, exit codes, JSON output, verify, resume."""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import time
import zlib
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import zstandard

from tests.conftest import FLICKR, REPO, WIKITEXT, build, cli

pytestmark = pytest.mark.spark


def _complete_lines(truncated: bytes, comp: str) -> int:
    """Lines a damaged stream still holds in full: what zlib / zstandard decode of it, up to the last newline
    (the reference for "records before the damage are kept", computed without freqindex)."""
    if comp == "gz":
        data = zlib.decompressobj(47).decompress(truncated)
    else:
        data = zstandard.ZstdDecompressor().decompressobj().decompress(truncated)
    return data.count(b"\n")


def _bad_corpus(root: Path) -> tuple[Path, int, int]:
    """A corpus with one of every kind of bad record. Returns (dir, good documents, bad records)."""
    d = root / "corpus"
    d.mkdir()
    lines = [
        b'{"text": "A dog runs.", "id": "g1"}',
        b'{"text": "broken',  # malformed JSON
        b'{"text": "caf\xe9"}',  # invalid UTF-8 (latin-1 byte)
        b'{"body": "no text field"}',  # missing text field
        b'{"text": 42}',  # non-string text
        b'{"text": ""}',  # empty text
        b'{"text": "nul\\u0000byte"}',  # NUL byte
        b'{"text": "!!!"}',  # empty after normalization
        b'{"text": "A cat sleeps.", "id": "g2"}',
    ]
    (d / "a.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    many = b"".join(json.dumps({"text": f"gzip doc {i} about a dog"}).encode() + b"\n" for i in range(3000))
    gz = gzip.compress(many, mtime=0)
    gz = gz[: len(gz) // 2]  # truncated .gz
    (d / "b.jsonl.gz").write_bytes(gz)
    zs = zstandard.ZstdCompressor().compress(many)
    zs = zs[: len(zs) // 2]  # truncated .zst
    (d / "c.jsonl.zst").write_bytes(zs)
    os.symlink(d / "missing-target", d / "d.jsonl")  # unreadable file
    good = 2 + _complete_lines(gz, "gz") + _complete_lines(zs, "zst")
    return d, good, 10


def test_bad_input_is_quarantined_and_the_build_goes_on(tmp_path):
    corpus, n_good, n_bad = _bad_corpus(tmp_path)
    p = cli("build", corpus, "-o", tmp_path / "idx", "--master", "local[2]", "--json", check=0)
    summary = json.loads(p.stdout)
    assert summary["quarantined"] == n_bad
    q = pq.read_table(tmp_path / "idx" / "quarantine" / "quarantine.parquet").to_pylist()
    by_file: dict[str, list] = {}
    for r in q:
        by_file.setdefault(Path(r["source"]).name, []).append((r["line"], r["reason"]))
    assert [ln for ln, _ in by_file["a.jsonl"]] == [2, 3, 4, 5, 6, 7, 8]
    reasons = " | ".join(r for _, r in by_file["a.jsonl"])
    for word in (
        "malformed JSON",
        "invalid UTF-8",
        "missing text field",
        "not a string",
        "empty text",
        "NUL byte",
        "after normalization",
    ):
        assert word in reasons
    assert "truncated" in by_file["b.jsonl.gz"][0][1] and "truncated" in by_file["c.jsonl.zst"][0][1]
    assert (
        by_file["d.jsonl"] == [(None, by_file["d.jsonl"][0][1])] and "unreadable" in by_file["d.jsonl"][0][1]
    )
    # the reason codes, grouped in the summary by code (not by the message text)
    assert [r["code"] for r in q if Path(r["source"]).name == "a.jsonl"] == [
        "malformed_json",
        "invalid_utf8",
        "missing_text",
        "text_not_string",
        "empty_text",
        "nul_byte",
        "empty_after_normalization",
    ]
    assert summary["quarantine_by_reason"] == {
        "malformed_json": 1,
        "invalid_utf8": 1,
        "missing_text": 1,
        "text_not_string": 1,
        "empty_text": 1,
        "nul_byte": 1,
        "empty_after_normalization": 1,
        "bad_compressed_stream": 2,
        "unreadable_file": 1,
    }
    # every good record is in the index: the 2 of a.jsonl plus every complete line the damaged streams hold
    assert summary["documents"] == n_good and n_good > 2
    m = json.loads((tmp_path / "idx" / "manifest.json").read_text())
    assert m["counts"]["quarantined"] == n_bad and m["counts"]["documents"] == n_good
    c = json.loads(cli("count", tmp_path / "idx", " dog ", "--json", check=0).stdout)
    assert c["count"] == n_good - 1  # every good document but "A cat sleeps." holds " dog " once
    # the human summary names the quarantine
    p2 = cli("build", corpus, "-o", tmp_path / "idx2", "--master", "local[2]", check=0)
    assert "quarantined 10 bad record(s)" in p2.stderr and "Traceback" not in p2.stderr


def test_strict_stops_at_first_bad_record(tmp_path):
    corpus, _, _ = _bad_corpus(tmp_path)
    p = cli("build", corpus, "-o", tmp_path / "idx", "--master", "local[2]", "--strict", check=2)
    err = p.stderr.strip().splitlines()
    assert len(err) >= 1 and "a.jsonl:2: malformed JSON" in err[-1] and "Traceback" not in p.stderr
    assert not (tmp_path / "idx").exists()


@pytest.fixture(scope="module")
def small_index(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    build([FLICKR], root / "idx", format="tsv", shards=2)
    return root / "idx"


def test_count_json_file_and_units(small_index, tmp_path):
    one = json.loads(cli("count", small_index, " dog ", "--json", check=0).stdout)
    assert (
        set(one) == {"query", "count", "unit", "approx"} and one["unit"] == "occurrences" and one["count"] > 0
    )
    docs = json.loads(cli("count", small_index, " dog ", "--unit", "docs", "--json", check=0).stdout)
    assert 0 < docs["count"] <= one["count"]
    f = tmp_path / "queries.txt"
    f.write_text(" dog \n cat \nzzqqzz\n dog  AND  ball \n")
    rows = [json.loads(x) for x in cli("count", small_index, "--file", f, check=0).stdout.splitlines()]
    assert [r["query"] for r in rows] == [" dog ", " cat ", "zzqqzz", " dog  AND  ball "]
    assert rows[0]["count"] == one["count"] and rows[2]["count"] == 0
    human = cli("count", small_index, " dog ", check=0).stdout
    assert f"{one['count']:,}" in human


def test_docs_and_info_json(small_index):
    hits = [
        json.loads(x)
        for x in cli("docs", small_index, " frisbee ", "--limit", "3", "--json", check=0).stdout.splitlines()
    ]
    assert len(hits) == 3
    for h in hits:
        assert h["ext_id"].endswith(tuple(f"#{i}" for i in range(5))) and "frisbee" in h["snippet"]
    info = json.loads(cli("info", small_index, "--json", check=0).stdout)
    assert info["counts"]["documents"] == 40460 and len(info["shards"]) == 2
    assert info["normalization"] == {"name": "simple", "version": 1} and info["token_dtype"] == "u8"
    assert "40,460" in cli("info", small_index, check=0).stdout


def test_user_errors_exit_2_without_traceback(small_index, tmp_path):
    cases = [
        ("count", tmp_path, "x"),  # not an index
        ("count", small_index, "x", "--unit", "bytes"),
        ("count", small_index),  # no query
        ("count", small_index, ""),  # empty query
        ("docs", small_index, "x", "--limit", "0"),
        ("count", small_index, "a AND  AND b"),
        ("count", small_index, "!!!"),  # only punctuation: it would count every space
        ("docs", small_index, " "),
        ("build", tmp_path / "nope.jsonl", "-o", tmp_path / "o"),
        ("build", FLICKR, "-o", tmp_path / "o", "--shards", "0"),
        ("info", tmp_path / "missing"),
        ("count", small_index, "x", "--no-such-flag"),
    ]
    for args in cases:
        p = cli(*args)
        assert p.returncode == 2, (args, p.returncode, p.stderr)
        assert "Traceback" not in p.stderr and p.stderr.strip(), args


def test_sql_on_an_index_without_its_docs_table(small_index, tmp_path):
    import shutil

    damaged = tmp_path / "idx"
    shutil.copytree(small_index, damaged)
    shutil.rmtree(damaged / "docs")
    p = cli("sql", damaged, "SELECT count(*) FROM docs", check=2)
    assert p.stderr.strip() == f"error: damaged index {damaged}: docs/part-00000.parquet is missing"


def test_count_file_reports_bad_lines_and_counts_the_rest(small_index, tmp_path):
    """One JSON object per non-blank line, with its line number; bad lines become error objects (a long
    one cut), the other lines are counted, and the exit code is 2 at the end."""
    f = tmp_path / "queries.txt"
    long_bad = "x AND " * 1600
    f.write_text(
        "\ufeff dog \n!!!\n\n AND \n" + long_bad + "\n frisbee \n dog  AND  frisbee \n", encoding="utf-8"
    )
    p = cli("count", small_index, "--file", f, "--unit", "docs", check=2)
    rows = [json.loads(x) for x in p.stdout.splitlines()]
    assert [r["line"] for r in rows] == [1, 2, 4, 5, 6, 7]
    assert [("error" in r) for r in rows] == [False, True, True, True, False, False]
    assert rows[0]["query"] == " dog " and rows[0]["count"] > 0  # the byte-order mark is not the query's
    assert "nothing to count" in rows[1]["error"] and "empty term" in rows[2]["error"]
    assert len(rows[3]["query"]) < 100 and len(rows[3]["error"]) < 300
    for r in (rows[0], rows[4], rows[5]):
        one = json.loads(cli("count", small_index, r["query"], "--unit", "docs", "--json", check=0).stdout)
        assert one == {k: v for k, v in r.items() if k != "line"}
    assert "3 of 6 queries" in p.stderr and "lines 2, 4, 5" in p.stderr and "Traceback" not in p.stderr
    bad = cli("count", small_index, long_bad, check=2)
    assert len(bad.stderr) < 400 and "9,600 characters" in bad.stderr


def test_and_on_flickr_captions_equals_brute_force(small_index):
    """Issue #12's case on the Flickr8k captions (TSV): " dog " AND " frisbee " in both units, windows of
    1, 10, 100 and 10,000 tokens; a wider window never finds fewer."""
    from freqindex.query.count import count
    from freqindex.suffix.index import Index
    from tests.reference import and_counts, read_lines_docs, ref_normalize

    captions = [f" {ref_normalize(ln.split(chr(9), 1)[1])} ".encode() for ln in read_lines_docs(FLICKR)]
    idx = Index.open(small_index)
    windows = [1, 10, 100, 10_000]
    want = and_counts(captions, [[b" dog "], [b" frisbee "]], windows)
    got = [
        (
            count(idx, " dog  AND  frisbee ", max_diff_tokens=w).count,
            count(idx, " dog  AND  frisbee ", unit="docs").count,
        )
        for w in windows
    ]
    assert got == want
    assert [g[0] for g in got] == sorted(g[0] for g in got) and got[-1][1] > 200
    one = json.loads(
        cli("count", small_index, " dog  AND  frisbee ", "--max-diff-tokens", "10", "--json", check=0).stdout
    )
    assert (one["count"], one["approx"]) == (want[1][0], False)


def test_verify_catches_a_flipped_byte(tmp_path):
    build([WIKITEXT], tmp_path / "idx", text_per_line=True)
    ok = json.loads(cli("verify", tmp_path / "idx", "--json", check=0).stdout)
    assert ok["ok"] and ok["files_checked"] >= 7
    target = tmp_path / "idx" / "sa" / "table.0"
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0x01
    target.write_bytes(bytes(data))
    p = cli("verify", tmp_path / "idx", check=1)
    assert "sa/table.0" in p.stderr and "Traceback" not in p.stderr


def _shard_bytes(idx: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((idx / "sa").iterdir())}


def _popen_build(args, env=None):
    return subprocess.Popen(
        [sys.executable, "-m", "freqindex.cli", "build", *map(str, args)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
        env={**os.environ, **(env or {})},
    )


def _wait_for(pattern_dir: Path, glob: str, proc, at_least=1, timeout=120) -> bool:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if pattern_dir.exists() and len(list(pattern_dir.glob(glob))) >= at_least:
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.05)
    return False


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """The index the killed builds below must end up equal to, built once without interruption."""
    ref = tmp_path_factory.mktemp("uninterrupted") / "ref"
    build([FLICKR, WIKITEXT], ref, text_per_line=True, chunk_bytes=1 << 20, shards=3)
    return ref


@pytest.mark.parametrize("kill_after", ["first-chunk", "first-shard"])  # chunk: after two chunks are done
def test_kill_and_rerun_yields_a_complete_identical_index(tmp_path, kill_after, uninterrupted):
    inputs = [FLICKR, WIKITEXT]
    args = [*inputs, "--text-per-line", "--chunk-mb", "1", "--shards", "3", "--master", "local[1]"]
    ref = uninterrupted
    out = tmp_path / "idx"
    partial = tmp_path / ".idx.partial"
    proc = _popen_build([*args, "-o", out, "--json"])
    where = partial / "_staging" / ("chunks" if kill_after == "first-chunk" else "shards")
    hit = _wait_for(where, "*.done", proc, at_least=2 if kill_after == "first-chunk" else 1)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert hit, "the build finished or failed before it could be killed"
    assert not (out / "manifest.json").exists()
    # an unfinished build is never opened as an index
    assert cli("count", partial, "dog").returncode == 2
    if kill_after == "first-chunk":  # damage a finished stage: the rerun must notice and redo it
        staged = sorted((partial / "_staging" / "chunks").glob("*.parquet"))[0]
        staged.write_bytes(staged.read_bytes()[:-10] + b"0123456789")
    p = cli("build", *args, "-o", out, "--json", check=0)
    summary = json.loads(p.stdout)
    assert summary["status"] == "built" and summary["resumed_tasks"] >= 1
    assert _shard_bytes(out) == _shard_bytes(ref)
    assert cli("verify", out, check=0).returncode == 0
    assert not partial.exists()
    again = json.loads(cli("build", *args, "-o", out, "--json", check=0).stdout)
    assert again["status"] == "up-to-date"


def test_builds_are_deterministic_across_parallelism(tmp_path):
    a = build([FLICKR], tmp_path / "a", format="tsv", shards=2, chunk_bytes=1 << 20, master="local[1]")
    b = cli(
        "build",
        FLICKR,
        "--format",
        "tsv",
        "--shards",
        "2",
        "--chunk-mb",
        "1",
        "--master",
        "local[2]",
        "-o",
        tmp_path / "b",
        "--json",
        check=0,
    )
    assert a["documents"] == json.loads(b.stdout)["documents"]
    assert _shard_bytes(tmp_path / "a") == _shard_bytes(tmp_path / "b")
    assert (
        pq.read_table(tmp_path / "a" / "docs")
        .sort_by("doc_id")
        .equals(pq.read_table(tmp_path / "b" / "docs").sort_by("doc_id"))
    )


def test_existing_index_of_other_input_needs_overwrite(tmp_path, small_index):
    out = tmp_path / "x"
    build([WIKITEXT], out, text_per_line=True)
    p = cli("build", FLICKR, "--format", "tsv", "-o", out)
    assert p.returncode == 2 and "--overwrite" in p.stderr
    p = cli("build", FLICKR, "--format", "tsv", "-o", out, "--overwrite", "--json", check=0)
    assert json.loads(p.stdout)["documents"] == 40460
