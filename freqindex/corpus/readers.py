"""Readers for every supported input format.

Inputs are planned into chunks (a whole file, a byte range of an uncompressed line file, or a Parquet row
group), so one large file still spreads over several Spark tasks. A chunk reader yields ``Record`` for every
usable document and ``Bad`` (line + reason) for every malformed one: nothing is dropped silently. Line
numbers are 1-based; for Parquet they are 1-based row numbers.
"""

from __future__ import annotations

import glob
import json
import os
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from freqindex.errors import UsageError

FORMATS = ("jsonl", "parquet", "text", "tsv")
_EXT_FORMATS = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".parquet": "parquet",
    ".txt": "text",
    ".tsv": "tsv",
}
_COMPRESSIONS = {".gz": "gz", ".zst": "zst", ".zstd": "zst"}
_READ_BLOCK = 1 << 20


@dataclass(frozen=True)
class Record:
    line: int
    ext_id: str | None
    text: str
    tags: tuple[str, ...] | None = None  # image tags (--tags-field), image-caption corpora


@dataclass(frozen=True)
class Bad:
    """A record that cannot be indexed: its line, a message for people (it may quote the data), and a stable
    reason code (``malformed_json``, ``invalid_utf8``, ...; listed in the README) that summaries group by."""

    line: int | None
    reason: str
    code: str


@dataclass(frozen=True)
class Blank:
    """A blank line in a line-oriented file: a separator, not a record. Counted, never quarantined."""

    line: int


@dataclass(frozen=True)
class ChunkSpec:
    chunk_id: int
    path: str
    fmt: str
    compression: str  # none | gz | zst
    start: int  # byte offset (line files) or row group (parquet)
    end: int  # byte end (exclusive; -1 = to the end) or row group end (parquet)


@dataclass(frozen=True)
class ReadOptions:
    text_field: str = "text"
    id_field: str | None = None  # None: "id" when present
    text_per_line: bool = False
    tags_field: str | None = None  # a list-of-strings field of image tags


def split_compression(path: str) -> tuple[str, str]:
    """('.jsonl', 'gz') for 'a.jsonl.gz'."""
    base, ext = os.path.splitext(path)
    comp = _COMPRESSIONS.get(ext.lower())
    if comp:
        return os.path.splitext(base)[1].lower(), comp
    return ext.lower(), "none"


def detect_format(path: str, fmt: str) -> tuple[str, str] | None:
    """(format, compression) of ``path`` under ``--format fmt``; None when auto cannot tell."""
    ext, comp = split_compression(path)
    if fmt != "auto":
        return fmt, comp
    guessed = _EXT_FORMATS.get(ext)
    return (guessed, comp) if guessed else None


def expand_inputs(inputs: list[str], fmt: str) -> tuple[list[tuple[str, str, str]], list[str]]:
    """Resolve files, directories and globs to a sorted list of (abs path, format, compression).

    Returns also the files found inside directories that were skipped because their format is unknown.
    A named file whose format cannot be inferred, or an input that matches nothing, is a usage error.
    """
    if fmt != "auto" and fmt not in FORMATS:
        raise UsageError(f"unknown --format {fmt!r}; choose one of: auto, {', '.join(FORMATS)}")
    found: dict[str, tuple[str, str]] = {}
    skipped: list[str] = []
    for raw in inputs:
        expanded = os.path.expanduser(raw)
        matches = sorted(glob.glob(expanded, recursive=True)) if glob.has_magic(expanded) else [expanded]
        if not matches or (len(matches) == 1 and not os.path.lexists(matches[0])):
            raise UsageError(f"input not found: {raw}")
        for m in matches:
            if os.path.isdir(m):
                for root, dirs, files in os.walk(m):
                    dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                    for name in sorted(files):
                        if name.startswith(".") or name.startswith("_"):
                            continue
                        p = os.path.join(root, name)
                        det = detect_format(p, fmt if fmt != "auto" else "auto")
                        if det is None or (
                            fmt != "auto" and _EXT_FORMATS.get(split_compression(p)[0]) not in (None, fmt)
                        ):
                            skipped.append(os.path.abspath(p))
                            continue
                        found[os.path.abspath(p)] = det
            else:
                det = detect_format(m, fmt)
                if det is None:
                    raise UsageError(f"cannot tell the format of {m}; pass --format jsonl|parquet|text|tsv")
                found[os.path.abspath(m)] = det
    if not found:
        raise UsageError(
            "no input files found" + (f" ({len(skipped)} files of unknown format skipped)" if skipped else "")
        )
    return [(p, f, c) for p, (f, c) in sorted(found.items())], skipped


def plan_chunks(files: list[tuple[str, str, str]], opts: ReadOptions, chunk_bytes: int) -> list[ChunkSpec]:
    """Split files into chunks. Deterministic: depends only on the files and ``chunk_bytes``."""
    chunks: list[ChunkSpec] = []
    for path, fmt, comp in files:
        try:
            size = os.path.getsize(path)
        except OSError:
            size = 0
        line_oriented = fmt in ("jsonl", "tsv") or (fmt == "text" and opts.text_per_line)
        if fmt == "parquet":
            n_groups = _parquet_row_groups(path)
            if n_groups is None:  # unreadable: one chunk that reports it
                chunks.append(ChunkSpec(len(chunks), path, fmt, comp, 0, -1))
                continue
            groups_per_chunk = (
                max(1, n_groups * chunk_bytes // max(size, 1)) if size > chunk_bytes else max(n_groups, 1)
            )
            for g in range(0, max(n_groups, 1), groups_per_chunk):
                chunks.append(ChunkSpec(len(chunks), path, fmt, comp, g, min(g + groups_per_chunk, n_groups)))
        elif line_oriented and comp == "none" and size > chunk_bytes:
            for s in range(0, size, chunk_bytes):
                chunks.append(ChunkSpec(len(chunks), path, fmt, comp, s, min(s + chunk_bytes, size)))
        else:
            chunks.append(ChunkSpec(len(chunks), path, fmt, comp, 0, -1))
    return chunks


def _parquet_row_groups(path: str) -> int | None:
    import pyarrow.parquet as pq

    try:
        return pq.ParquetFile(path).num_row_groups
    except Exception:
        return None


class _Truncated(Exception):
    pass


def _decompressed_blocks(f, comp: str) -> Iterator[bytes]:
    """Blocks of decompressed bytes; raises _Truncated when the stream ends early or is corrupt."""
    if comp == "none":
        while block := f.read(_READ_BLOCK):
            yield block
        return
    if comp == "gz":

        def new():
            return zlib.decompressobj(47)

        errors: tuple[type[BaseException], ...] = (zlib.error,)
    else:
        import zstandard

        dctx = zstandard.ZstdDecompressor()

        def new():
            return dctx.decompressobj()

        errors = (zstandard.ZstdError,)
    d = new()
    in_frame = False
    try:
        while data := f.read(_READ_BLOCK):
            while data:
                in_frame = True
                out = d.decompress(data)
                if out:
                    yield out
                if d.eof:
                    data = d.unused_data
                    d = new()
                    in_frame = False
                else:
                    data = b""
    except errors as exc:
        raise _Truncated(f"corrupt compressed stream ({exc})") from None
    if in_frame:
        raise _Truncated("truncated compressed stream (ended before its end-of-stream marker)")


def _count_newlines(path: str, end: int) -> int:
    n = 0
    with open(path, "rb") as f:
        remaining = end
        while remaining > 0:
            block = f.read(min(_READ_BLOCK * 16, remaining))
            if not block:
                break
            n += block.count(b"\n")
            remaining -= len(block)
    return n


def _iter_lines(spec: ChunkSpec) -> Iterator[tuple[int, bytes] | Bad]:
    """(line number, raw line bytes without the newline) for the lines that start inside the chunk."""
    with open(spec.path, "rb") as f:
        if spec.compression == "none" and spec.start > 0:
            f.seek(spec.start - 1)
            if f.read(1) != b"\n":
                f.readline()
            pos = f.tell()
            line_no = _count_newlines(spec.path, pos) + 1
        else:
            pos, line_no = 0, 1
        end = spec.end if spec.compression == "none" and spec.end >= 0 else None
        if end is not None:
            while pos < end:
                line = f.readline()
                if not line:
                    break
                pos += len(line)
                yield line_no, line.rstrip(b"\n").rstrip(b"\r")
                line_no += 1
            return
        pending = b""
        try:
            for block in _decompressed_blocks(f, spec.compression):
                block = pending + block
                lines = block.split(b"\n")
                pending = lines.pop()
                for line in lines:
                    yield line_no, line.rstrip(b"\r")
                    line_no += 1
        except _Truncated as exc:
            yield Bad(
                line_no,
                f"{exc}; this line and everything after it could not be read",
                "bad_compressed_stream",
            )
            return
        if pending:
            yield line_no, pending.rstrip(b"\r")


def _decode(raw: bytes) -> str | Bad:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return Bad(None, f"invalid UTF-8 at byte {exc.start}", "invalid_utf8")


def _check_text(text: object, field: str) -> tuple[str, str] | None:
    """(reason, code) when the text is unusable, else None."""
    if text is None:
        return f"missing text field {field!r}", "missing_text"
    if not isinstance(text, str):
        return f"text field {field!r} is not a string ({type(text).__name__})", "text_not_string"
    if "\x00" in text:
        return "NUL byte in text", "nul_byte"
    if not text.strip():
        return "empty text", "empty_text"
    return None


def _tags(value: object, field: str) -> tuple[str, ...] | None | str:
    """The tags of a record (None when absent), or a reason string when the field is malformed."""
    if value is None:
        return None
    if not isinstance(value, (list, tuple)) or not all(isinstance(t, str) for t in value):
        return f"tags field {field!r} is not a list of strings"
    return tuple(value)


def _ext_id(obj: dict, opts: ReadOptions) -> str | None:
    field = opts.id_field or "id"
    v = obj.get(field)
    if v is None or isinstance(v, (dict, list)):
        return None
    return str(v)


def read_chunk(spec: ChunkSpec, opts: ReadOptions) -> Iterator[Record | Bad | Blank]:
    """Every record of a chunk, in file order. Never raises for bad data: unreadable files become ``Bad``."""
    try:
        if spec.fmt == "parquet":
            yield from _read_parquet(spec, opts)
        elif spec.fmt == "text" and not opts.text_per_line:
            yield from _read_whole_text(spec)
        else:
            yield from _read_line_records(spec, opts)
    except OSError as exc:
        yield Bad(None, f"unreadable file: {exc.strerror or exc}", "unreadable_file")


def _read_line_records(spec: ChunkSpec, opts: ReadOptions) -> Iterator[Record | Bad | Blank]:
    for item in _iter_lines(spec):
        if isinstance(item, Bad):
            yield item
            continue
        line_no, raw = item
        text = _decode(raw)
        if isinstance(text, Bad):
            yield Bad(line_no, text.reason, text.code)
            continue
        if not text.strip():
            yield Blank(line_no)
            continue
        if spec.fmt == "jsonl":
            try:
                obj = json.loads(text)
            except json.JSONDecodeError as exc:
                yield Bad(line_no, f"malformed JSON: {exc.msg} at column {exc.colno}", "malformed_json")
                continue
            if not isinstance(obj, dict):
                yield Bad(line_no, f"JSON value is not an object ({type(obj).__name__})", "not_an_object")
                continue
            body = obj.get(opts.text_field)
            problem = _check_text(body, opts.text_field)
            if problem:
                yield Bad(line_no, *problem)
                continue
            tags = _tags(obj.get(opts.tags_field), opts.tags_field) if opts.tags_field else None
            if isinstance(tags, str):
                yield Bad(line_no, tags, "bad_tags")
                continue
            yield Record(line_no, _ext_id(obj, opts), body, tags)
        elif spec.fmt == "tsv":
            ext, sep, body = text.partition("\t")
            if not sep:
                yield Bad(line_no, "expected 'id<TAB>text', found no tab", "no_tab")
                continue
            problem = _check_text(body, "text")
            if problem:
                yield Bad(line_no, *problem)
                continue
            yield Record(line_no, ext or None, body)
        else:  # text, one document per line
            problem = _check_text(text, "text")
            if problem:
                yield Bad(line_no, *problem)
                continue
            yield Record(line_no, None, text)


def _read_whole_text(spec: ChunkSpec) -> Iterator[Record | Bad]:
    with open(spec.path, "rb") as f:
        parts = []
        try:
            for block in _decompressed_blocks(f, spec.compression):
                parts.append(block)
        except _Truncated as exc:
            yield Bad(None, str(exc), "bad_compressed_stream")
            return
    text = _decode(b"".join(parts))
    if isinstance(text, Bad):
        yield text
        return
    problem = _check_text(text, "text")
    if problem:
        yield Bad(None, *problem)
        return
    yield Record(1, Path(spec.path).name, text)


def _read_parquet(spec: ChunkSpec, opts: ReadOptions) -> Iterator[Record | Bad]:
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(spec.path)
    except Exception as exc:
        yield Bad(None, f"unreadable Parquet file: {exc}", "unreadable_file")
        return
    names = pf.schema_arrow.names
    if opts.text_field not in names:
        yield Bad(
            None,
            f"missing text column {opts.text_field!r} (columns: {', '.join(names)})",
            "missing_text_column",
        )
        return
    id_field = opts.id_field or "id"
    tags_field = opts.tags_field if opts.tags_field in names else None
    columns = (
        [opts.text_field] + ([id_field] if id_field in names else []) + ([tags_field] if tags_field else [])
    )
    row = sum(pf.metadata.row_group(g).num_rows for g in range(spec.start))
    end = spec.end if spec.end >= 0 else pf.num_row_groups
    for g in range(spec.start, end):
        try:
            table = pf.read_row_group(g, columns=columns)
        except Exception as exc:
            n = pf.metadata.row_group(g).num_rows
            yield Bad(row + 1, f"unreadable row group {g} ({n} rows): {exc}", "unreadable_row_group")
            row += n
            continue
        texts = table.column(opts.text_field).to_pylist()
        ids = table.column(id_field).to_pylist() if id_field in names else [None] * len(texts)
        tag_lists = table.column(tags_field).to_pylist() if tags_field else [None] * len(texts)
        for t, i, tg in zip(texts, ids, tag_lists):
            row += 1
            problem = _check_text(t, opts.text_field)
            tags = _tags(tg, tags_field) if tags_field else None
            if isinstance(tags, str):
                problem = problem or (tags, "bad_tags")
            if problem:
                yield Bad(row, *problem)
                continue
            yield Record(row, None if i is None else str(i), t, tags)
