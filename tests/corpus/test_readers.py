"""Every kind of bad input is reported with its line and reason; good records around it survive."""

import gzip
import json
import os
import random
import zlib

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard

from freqindex.build import build_index, run_in_process
from freqindex.config import BuildConfig
from freqindex.corpus.readers import Bad, Blank, ReadOptions, Record, expand_inputs, plan_chunks, read_chunk
from freqindex.errors import UsageError
from tests.conftest import GSM8K_TRAIN


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
    assert [(os.path.basename(s), why) for s, why in skipped] == [("notes.md", "unknown format .md")]


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


def test_every_skipped_file_is_named_with_its_reason(tmp_path):
    d = tmp_path / "d"
    (d / ".cache").mkdir(parents=True)
    (d / ".cache" / "x.jsonl").write_text('{"text": "never looked at"}\n')
    for name in ("a.jsonl", "README.md", "e.csv", "g.jsonl.bz2", ".hidden.jsonl", "_SUCCESS", "h.txt.xz"):
        (d / name).write_text('{"text": "x"}\n')
    files, skipped = expand_inputs([str(d)], "auto")
    assert [os.path.basename(f[0]) for f in files] == ["a.jsonl"]
    assert {os.path.basename(p): why for p, why in skipped} == {
        ".cache": "hidden directory",
        ".hidden.jsonl": "hidden file",
        "_SUCCESS": "marker file (name starts with '_')",
        "README.md": "unknown format .md",
        "e.csv": "unknown format .csv",
        "g.jsonl.bz2": "unsupported compression .bz2 (readable: .gz, .zst)",
        "h.txt.xz": "unsupported compression .xz (readable: .gz, .zst)",
    }
    # a named file in a compression we cannot read is refused, never read as text (also with --format)
    for fmt in ("auto", "jsonl"):
        with pytest.raises(UsageError, match="unsupported compression .bz2"):
            expand_inputs([str(d / "g.jsonl.bz2")], fmt)
    (tmp_path / "only").mkdir()
    (tmp_path / "only" / "e.csv").write_text("a,b\n")
    with pytest.raises(UsageError) as e:
        expand_inputs([str(tmp_path / "only")], "auto")
    assert (
        str(e.value)
        == f"no input files found in {tmp_path / 'only'} (1 skipped: e.csv (unknown format .csv))"
    )


BOM = b"\xef\xbb\xbf"


@pytest.mark.parametrize("chunk_bytes", [1 << 26, 1024])
def test_a_leading_byte_order_mark_is_dropped_in_every_format(tmp_path, chunk_bytes):
    rows = [json.dumps({"text": f"bom text {i}", "id": f"r{i}"}).encode() for i in range(100)]
    write_lines(tmp_path / "a.jsonl", [BOM + rows[0], *rows[1:]])
    items = read_all(tmp_path / "a.jsonl", chunk_bytes=chunk_bytes)
    assert not bad(items) and good(items)[0] == (1, "bom text 0") and len(good(items)) == 100
    # only the file's first bytes: a BOM at the start of a later chunk's first line is data, not a mark
    (tmp_path / "gz.jsonl.gz").write_bytes(gzip.compress(BOM + b"\n".join(rows) + b"\n"))
    (tmp_path / "zs.jsonl.zst").write_bytes(zstandard.ZstdCompressor().compress(BOM + b"\n".join(rows)))
    for name in ("gz.jsonl.gz", "zs.jsonl.zst"):
        items = read_all(tmp_path / name)
        assert not bad(items) and good(items)[0] == (1, "bom text 0") and len(good(items)) == 100
    (tmp_path / "caps.tsv").write_bytes(BOM + b"img1.jpg#0\tA dog runs.\nimg2.jpg#0\tA cat.\n")
    recs = [r for r in read_all(tmp_path / "caps.tsv", chunk_bytes=chunk_bytes) if isinstance(r, Record)]
    assert [r.ext_id for r in recs] == ["img1.jpg#0", "img2.jpg#0"]
    (tmp_path / "doc.txt").write_bytes(BOM + b"bom text\nmore\n")
    assert good(read_all(tmp_path / "doc.txt")) == [(1, "bom text\nmore\n")]
    lines = good(
        read_all(tmp_path / "doc.txt", opts=ReadOptions(text_per_line=True), chunk_bytes=chunk_bytes)
    )
    assert lines == [(1, "bom text"), (2, "more")]
    # a mark anywhere but the file's start is text, and stays
    write_lines(tmp_path / "mid.tsv", [b"a\tx", BOM + b"b\ty"])
    assert [r.ext_id for r in read_all(tmp_path / "mid.tsv") if isinstance(r, Record)] == ["a", "\ufeffb"]


def _reference_decodable_records(blob: bytes, comp: str, damage_at: int, field: str) -> int:
    """Records in the longest prefix that any decoder can produce: every byte before the damage in one go
    (it is intact), then one byte at a time until the codec gives up. Only complete lines count."""
    if comp == "gz":
        d, errors = zlib.decompressobj(47), (zlib.error,)
    else:
        d, errors = zstandard.ZstdDecompressor().decompressobj(), (zstandard.ZstdError,)
    out = bytearray(d.decompress(blob[:damage_at]))
    try:
        for k in range(damage_at, len(blob)):
            out += d.decompress(blob[k : k + 1])
    except errors:
        pass
    n = 0
    for line in bytes(out).split(b"\n")[:-1]:
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        n += isinstance(obj, dict) and isinstance(obj.get(field), str) and bool(obj[field].strip())
    return n


@pytest.mark.parametrize("comp", ["gz", "zst"])
def test_mid_stream_corruption_keeps_every_record_before_the_damage(tmp_path, comp):
    """GSM8K train (7,473 records) compressed, 5,000 bytes overwritten at several points."""
    raw = GSM8K_TRAIN.read_bytes()
    full = gzip.compress(raw) if comp == "gz" else zstandard.ZstdCompressor().compress(raw)
    opts = ReadOptions(text_field="question")
    for frac in (0.1, 0.5, 0.75, 0.95):
        blob = bytearray(full)
        at = int(len(blob) * frac)
        blob[at : at + 5000] = random.Random(frac).randbytes(5000)
        p = tmp_path / f"train-{frac}.jsonl.{comp}"
        p.write_bytes(bytes(blob))
        items = read_all(p, opts=opts)
        expected = _reference_decodable_records(bytes(blob), comp, at, "question")
        assert 0.9 * frac * 7473 < expected < 7473
        assert len(good(items)) == expected, (frac, len(good(items)), expected)
        line, reason = bad(items)[-1]
        assert line == max(ln for ln, _ in bad(items)) and "this line and everything after it" in reason
        offset = int(reason.split(" at byte ")[1].split(" ")[0].replace(",", ""))
        assert at <= offset <= len(blob), reason
    # the build keeps exactly those records (the last damaged file) and quarantines the rest with the offset
    summary = build_index(
        BuildConfig(inputs=(str(p),), output=str(tmp_path / "idx"), text_field="question"), run_in_process
    )
    assert summary["documents"] == expected and summary["quarantine_by_reason"]["bad_compressed_stream"] == 1


def test_one_big_file_is_read_in_equal_chunks(tmp_path, monkeypatch):
    """A large line file spreads over settings.MIN_FILE_CHUNKS equal chunks (so one file keeps every core
    busy); reading them one after another gives exactly the records of the whole file, also with CRLF line
    ends, lines longer than a read block that cross chunk ends, and no final newline."""
    from freqindex import settings

    p = tmp_path / "one.jsonl"
    lines = [json.dumps({"id": i, "text": f"doc {i} " + "y" * (i % 300)}).encode() for i in range(4000)]
    lines[1000] = json.dumps({"text": "long " + "x" * (3 << 20)}).encode()
    lines[2500] = b'{"text": "crlf"}\r'
    lines[2501] = b"{broken"
    p.write_bytes(b"\n".join(lines))  # no final newline
    size = p.stat().st_size
    files, _ = expand_inputs([str(p)], "auto")
    monkeypatch.setattr(settings, "MIN_FILE_CHUNKS", 1)
    whole = [x for c in plan_chunks(files, ReadOptions(), 1 << 30) for x in read_chunk(c, ReadOptions())]
    monkeypatch.setattr(settings, "MIN_FILE_CHUNKS", 8)
    monkeypatch.setattr(settings, "MIN_CHUNK_BYTES", 256 * 1024)
    chunks = plan_chunks(files, ReadOptions(), 1 << 30)
    assert len(chunks) == 8
    sizes = [c.end - c.start for c in chunks]
    assert max(sizes) - min(sizes) <= 1 and chunks[0].start == 0 and chunks[-1].end == size
    pieces = [x for c in chunks for x in read_chunk(c, ReadOptions())]
    assert pieces == whole
    assert len(good(whole)) == 3999 and bad(whole) == [(2502, bad(whole)[0][1])]
    assert (2501, "crlf") in good(whole) and good(whole)[-1][0] == 4000
    assert plan_chunks(files, ReadOptions(), size // 3) == chunks  # 3 by size, 8 by the minimum
