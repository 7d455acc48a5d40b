"""Every kind of bad input is reported with its line and reason; good records around it survive."""

import gzip
import json
import os

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard

from freqindex.corpus.readers import Bad, Blank, ReadOptions, Record, expand_inputs, plan_chunks, read_chunk
from freqindex.errors import UsageError


def read_all(path, fmt="auto", opts=ReadOptions(), chunk_bytes=1 << 26):
    files, _ = expand_inputs([str(path)], fmt)
    out = []
    for c in plan_chunks(files, opts, chunk_bytes):
        out.extend(read_chunk(c, opts))
    return out


def good(items):
    return [(r.line, r.text) for r in items if isinstance(r, Record)]


def bad(items):
    return [(b.line, b.reason) for b in items if isinstance(b, Bad)]


def write_lines(path, lines: list[bytes]):
    path.write_bytes(b"\n".join(lines) + b"\n")


def test_malformed_json(tmp_path):
    p = tmp_path / "a.jsonl"
    write_lines(p, [b'{"text": "one"}', b'{"text": "two"', b'{"text": "three"}'])
    items = read_all(p)
    assert good(items) == [(1, "one"), (3, "three")]
    assert bad(items)[0][0] == 2 and "malformed JSON" in bad(items)[0][1]


def test_invalid_utf8(tmp_path):
    p = tmp_path / "a.jsonl"
    write_lines(p, [b'{"text": "one"}', b'{"text": "t\xffwo"}', b'{"text": "three"}'])
    items = read_all(p)
    assert good(items) == [(1, "one"), (3, "three")]
    assert bad(items) == [(2, "invalid UTF-8 at byte 11")]


def test_missing_and_non_string_text(tmp_path):
    p = tmp_path / "a.jsonl"
    write_lines(p, [b'{"body": "x"}', b'{"text": 5}', b"[1, 2]", b'{"text": null}', b'{"text": "ok"}'])
    items = read_all(p)
    assert good(items) == [(5, "ok")]
    reasons = dict(bad(items))
    assert reasons[1] == "missing text field 'text'"
    assert reasons[2] == "text field 'text' is not a string (int)"
    assert reasons[3] == "JSON value is not an object (list)"
    assert reasons[4] == "missing text field 'text'"


def test_empty_text_and_nul(tmp_path):
    p = tmp_path / "a.jsonl"
    write_lines(p, [b'{"text": ""}', b'{"text": "  "}', b'{"text": "a\\u0000b"}', b'{"text": "fine"}'])
    items = read_all(p)
    assert good(items) == [(4, "fine")]
    assert bad(items) == [(1, "empty text"), (2, "empty text"), (3, "NUL byte in text")]


def test_blank_lines_are_counted_not_quarantined(tmp_path):
    p = tmp_path / "a.jsonl"
    write_lines(p, [b'{"text": "a"}', b"", b"   ", b'{"text": "b"}'])
    items = read_all(p)
    assert good(items) == [(1, "a"), (4, "b")]
    assert [x.line for x in items if isinstance(x, Blank)] == [2, 3]


def test_truncated_gzip_keeps_what_came_before(tmp_path):
    data = b"".join(json.dumps({"text": f"doc {i} " + "x" * 50}).encode() + b"\n" for i in range(5000))
    full = gzip.compress(data)
    p = tmp_path / "a.jsonl.gz"
    p.write_bytes(full[: len(full) // 2])
    items = read_all(p)
    g = good(items)
    assert 0 < len(g) < 5000
    assert [line for line, _ in g] == list(range(1, len(g) + 1))
    ((line, reason),) = bad(items)
    assert line == len(g) + 1 and "truncated" in reason


def test_truncated_zstd(tmp_path):
    data = b"".join(json.dumps({"text": f"doc {i} " + "y" * 50}).encode() + b"\n" for i in range(20000))
    full = zstandard.ZstdCompressor().compress(data)
    p = tmp_path / "a.jsonl.zst"
    p.write_bytes(full[: len(full) * 2 // 3])
    items = read_all(p)
    assert len(good(items)) < 20000
    ((line, reason),) = bad(items)
    assert "truncated" in reason and line == len(good(items)) + 1


def test_complete_compressed_files_read_fully(tmp_path):
    data = b"".join(json.dumps({"text": f"doc {i}", "id": i}).encode() + b"\n" for i in range(1000))
    (tmp_path / "a.jsonl.gz").write_bytes(gzip.compress(data))
    (tmp_path / "b.jsonl.zst").write_bytes(zstandard.ZstdCompressor().compress(data))
    for name in ("a.jsonl.gz", "b.jsonl.zst"):
        items = read_all(tmp_path / name)
        assert len(good(items)) == 1000 and not bad(items)
        assert [r.ext_id for r in items][:3] == ["0", "1", "2"]


def test_unreadable_file(tmp_path):
    p = tmp_path / "gone.jsonl"
    os.symlink(tmp_path / "does-not-exist", p)  # root ignores permission bits; a dangling link cannot be read
    items = read_all(p)
    assert good(items) == []
    ((line, reason),) = bad(items)
    assert line is None and reason.startswith("unreadable file")


def test_tsv_and_text_formats(tmp_path):
    p = tmp_path / "caps.tsv"
    write_lines(p, [b"img1.jpg#0\tA dog runs.", b"no tab here", b"img2.jpg#0\tA cat sits."])
    items = read_all(p)
    assert [(r.ext_id, r.text) for r in items if isinstance(r, Record)] == [
        ("img1.jpg#0", "A dog runs."),
        ("img2.jpg#0", "A cat sits."),
    ]
    assert bad(items)[0][0] == 2
    t = tmp_path / "doc.txt"
    t.write_text("line one\nline two\n")
    assert good(read_all(t)) == [(1, "line one\nline two\n")]
    assert good(read_all(t, opts=ReadOptions(text_per_line=True))) == [(1, "line one"), (2, "line two")]


def test_parquet(tmp_path):
    p = tmp_path / "a.parquet"
    pq.write_table(pa.table({"text": ["a", None, "c"], "id": [10, 11, 12]}), p, row_group_size=2)
    items = read_all(p)
    assert [(r.line, r.ext_id, r.text) for r in items if isinstance(r, Record)] == [
        (1, "10", "a"),
        (3, "12", "c"),
    ]
    assert bad(items) == [(2, "missing text field 'text'")]
    q = tmp_path / "b.parquet"
    pq.write_table(pa.table({"body": ["a"]}), q)
    assert "missing text column" in bad(read_all(q))[0][1]
    r = tmp_path / "c.parquet"
    r.write_bytes(b"PAR1 not really")
    assert "unreadable Parquet" in bad(read_all(r))[0][1]


@pytest.mark.parametrize("chunk_bytes", [1024, 1500, 4096])
def test_chunked_reading_equals_whole_file(tmp_path, chunk_bytes):
    p = tmp_path / "big.jsonl"
    lines = [json.dumps({"text": f"document number {i} " + "z" * (i % 37)}).encode() for i in range(500)]
    lines[123] = b"{broken"
    lines[300] = b""
    write_lines(p, lines)
    whole = read_all(p, chunk_bytes=1 << 30)
    files, _ = expand_inputs([str(p)], "auto")
    chunks = plan_chunks(files, ReadOptions(), chunk_bytes)
    assert len(chunks) > 1
    pieces = [x for c in chunks for x in read_chunk(c, ReadOptions())]
    assert pieces == whole
    assert bad(whole)[0][0] == 124


def test_expand_inputs_errors(tmp_path):
    with pytest.raises(UsageError, match="input not found"):
        expand_inputs([str(tmp_path / "nope.jsonl")], "auto")
    (tmp_path / "x.weird").write_text("hi")
    with pytest.raises(UsageError, match="cannot tell the format"):
        expand_inputs([str(tmp_path / "x.weird")], "auto")
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a.jsonl").write_text('{"text":"a"}\n')
    (tmp_path / "d" / "notes.md").write_text("skip me")
    files, skipped = expand_inputs([str(tmp_path / "d")], "auto")
    assert [os.path.basename(f[0]) for f in files] == ["a.jsonl"]
    assert [os.path.basename(s) for s in skipped] == ["notes.md"]


def test_every_bad_record_carries_its_reason_code(tmp_path):
    """One record of every kind a reader refuses; the code is set where the record is refused (written here
    by hand per line), never derived from the message."""
    p = tmp_path / "a.jsonl"
    write_lines(
        p,
        [
            b'{"text": "broken',
            b'{"text": "caf\xe9"}',
            b"[1, 2]",
            b'{"body": "x"}',
            b'{"text": 5}',
            b'{"text": "a\\u0000b"}',
            b'{"text": " "}',
            b'{"text": "ok", "tags": "not a list"}',
            b'{"text": "fine"}',
        ],
    )
    got = [(b.line, b.code) for b in read_all(p, opts=ReadOptions(tags_field="tags")) if isinstance(b, Bad)]
    assert got == [
        (1, "malformed_json"),
        (2, "invalid_utf8"),
        (3, "not_an_object"),
        (4, "missing_text"),
        (5, "text_not_string"),
        (6, "nul_byte"),
        (7, "empty_text"),
        (8, "bad_tags"),
    ]
    t = tmp_path / "caps.tsv"
    write_lines(t, [b"no tab here"])
    assert [b.code for b in read_all(t)] == ["no_tab"]
    z = tmp_path / "b.jsonl.gz"
    full = gzip.compress(b"".join(b'{"text": "doc %d"}\n' % i for i in range(20000)))
    z.write_bytes(full[: len(full) // 2])
    assert [b.code for b in read_all(z) if isinstance(b, Bad)] == ["bad_compressed_stream"]
    gone = tmp_path / "gone.jsonl"
    os.symlink(tmp_path / "does-not-exist", gone)
    assert [b.code for b in read_all(gone)] == ["unreadable_file"]
    pq.write_table(pa.table({"body": ["a"]}), tmp_path / "c.parquet")
    assert [b.code for b in read_all(tmp_path / "c.parquet")] == ["missing_text_column"]
    pq.write_table(pa.table({"text": ["a", None]}), tmp_path / "d.parquet")
    assert [b.code for b in read_all(tmp_path / "d.parquet") if isinstance(b, Bad)] == ["missing_text"]
    (tmp_path / "e.parquet").write_bytes(b"PAR1 not really")
    assert [b.code for b in read_all(tmp_path / "e.parquet")] == ["unreadable_file"]


def test_quarantine_keeps_code_and_message_and_counts_by_code(tmp_path):
    """The build's quarantine table holds both columns, and the counts by reason group by the code: two
    malformed-JSON records with different messages are one group."""
    from collections import Counter

    from freqindex.build import build_index, run_in_process
    from freqindex.config import BuildConfig

    p = tmp_path / "a.jsonl"
    write_lines(
        p,
        [
            b'{"text": "broken',
            b'{"text": 1 2}',
            b'{"text": "caf\xe9"}',
            b'{"text": "!!!"}',
            b'{"text": "a dog"}',
        ],
    )
    summary = build_index(BuildConfig(inputs=(str(p),), output=str(tmp_path / "idx")), run_in_process)
    q = pq.read_table(tmp_path / "idx" / "quarantine" / "quarantine.parquet").to_pylist()
    assert [(r["line"], r["code"]) for r in q] == [
        (1, "malformed_json"),
        (2, "malformed_json"),
        (3, "invalid_utf8"),
        (4, "empty_after_normalization"),
    ]
    assert q[0]["reason"] != q[1]["reason"] and all(r["reason"] for r in q)
    want = {"malformed_json": 2, "invalid_utf8": 1, "empty_after_normalization": 1}
    assert summary["quarantine_by_reason"] == want == dict(Counter(r["code"] for r in q))
    m = json.loads((tmp_path / "idx" / "manifest.json").read_text())
    assert m["counts"]["quarantine_by_reason"] == want
