"""Readers for every supported input format.

Inputs are planned into chunks (a whole file, a byte range of an uncompressed line file, or a Parquet row
group), so one large file still spreads over several Spark tasks. An input may be a local path or a URL of
any fsspec filesystem (``freqindex.storage``): a task opens its own chunk there with ranged reads, so
nothing passes through the driver but the listing and the Parquet footers. A chunk reader yields ``Record`` for every
usable document and ``Bad`` (line + reason) for every malformed one: nothing is dropped silently. Line
numbers are 1-based; for Parquet they are 1-based row numbers.
"""

from __future__ import annotations

import dataclasses
import glob
import json
import os
import posixpath
import zlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from freqindex import settings, storage
from freqindex.errors import UsageError
from freqindex.fsutil import UTF8_BOM, sha256_file

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
# compressions we recognise but cannot read: their files are skipped (and named), never read as plain text
_UNSUPPORTED_COMPRESSIONS = (".bz2", ".xz", ".lzma", ".lz4", ".lz", ".br", ".zip", ".7z", ".snappy", ".z")
_READ_BLOCK = 1 << 20
# compressed bytes handed to the decompressor per call: after a corrupt block only this much input has to be
# replayed byte by byte to recover every byte that still decodes before the damage
_FEED_BYTES = 1 << 16


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
    # newlines in the file before ``start``, when counted beforehand (see ``needs_line_base``); -1: the
    # chunk's reader counts them itself by reading the file up to ``start``
    newlines_before: int = -1


@dataclass(frozen=True)
class ReadOptions:
    text_field: str = "text"
    id_field: str | None = None  # None: "id" when present
    text_per_line: bool = False
    tags_field: str | None = None  # a list-of-strings field of image tags
    storage_options: storage.StorageOptions = ()  # for inputs given as URLs (freqindex.storage)


def split_compression(path: str) -> tuple[str, str]:
    """('.jsonl', 'gz') for 'a.jsonl.gz'."""
    base, ext = os.path.splitext(path)
    comp = _COMPRESSIONS.get(ext.lower())
    if comp:
        return os.path.splitext(base)[1].lower(), comp
    return ext.lower(), "none"


def unsupported_compression(path: str) -> str | None:
    """The extension of a compression freqindex cannot read (``.bz2`` for ``a.jsonl.bz2``), else None."""
    ext = os.path.splitext(path)[1].lower()
    return ext if ext in _UNSUPPORTED_COMPRESSIONS else None


def detect_format(path: str, fmt: str) -> tuple[str, str] | None:
    """(format, compression) of ``path`` under ``--format fmt``; None when auto cannot tell."""
    ext, comp = split_compression(path)
    if fmt != "auto":
        return fmt, comp
    guessed = _EXT_FORMATS.get(ext)
    return (guessed, comp) if guessed else None


def _skip_reason(path: str, fmt: str) -> str | None:
    """Why a file found inside an input directory is not read (None: it is read)."""
    name = os.path.basename(path)
    if name.startswith("."):
        return "hidden file"
    if name.startswith("_"):
        return "marker file (name starts with '_')"
    bad_comp = unsupported_compression(path)
    if bad_comp:
        return f"unsupported compression {bad_comp} (readable: .gz, .zst)"
    ext = split_compression(path)[0]
    if fmt == "auto":
        return None if ext in _EXT_FORMATS else f"unknown format {ext or '(no extension)'}"
    if _EXT_FORMATS.get(ext) not in (None, fmt):
        return f"format {_EXT_FORMATS[ext]}, not --format {fmt}"
    return None


def expand_inputs(
    inputs: list[str], fmt: str, storage_options: storage.StorageOptions = ()
) -> tuple[list[tuple[str, str, str]], list[tuple[str, str]]]:
    """Resolve files, directories and globs to a sorted list of (abs path or URL, format, compression).

    Returns also what was found inside directories and not read, as (abs path, reason): hidden files and
    directories (a leading dot), marker files (a leading underscore, like Spark's ``_SUCCESS``), unknown
    formats and unsupported compressions. A named file whose format or compression cannot be read, or an
    input that matches nothing, is a usage error. URLs (``s3://bucket/dump/``, ``gs://b/*.jsonl.gz``) follow
    the same rules through their fsspec filesystem and come back as full URLs.
    """
    if fmt != "auto" and fmt not in FORMATS:
        raise UsageError(f"unknown --format {fmt!r}; choose one of: auto, {', '.join(FORMATS)}")
    found: dict[str, tuple[str, str]] = {}
    skipped: dict[str, str] = {}
    for raw in inputs:
        if storage.is_url(raw):
            _expand_remote(raw, fmt, storage_options, found, skipped)
            continue
        expanded = storage.local_path(raw)
        matches = sorted(glob.glob(expanded, recursive=True)) if glob.has_magic(expanded) else [expanded]
        if not matches or (len(matches) == 1 and not os.path.lexists(matches[0])):
            raise UsageError(f"input not found: {raw}")
        for m in matches:
            if os.path.isdir(m):
                for root, dirs, files in os.walk(m):
                    for d in sorted(dirs):
                        if d.startswith("."):
                            skipped[os.path.abspath(os.path.join(root, d))] = "hidden directory"
                    dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                    for name in sorted(files):
                        p = os.path.join(root, name)
                        reason = _skip_reason(p, fmt)
                        if reason is not None:
                            skipped[os.path.abspath(p)] = reason
                            continue
                        found[os.path.abspath(p)] = detect_format(p, fmt)
            else:
                found[os.path.abspath(m)] = _named_file(m, fmt)
    if not found:
        raise UsageError(
            f"no input files found in {', '.join(inputs)}"
            + (f" ({len(skipped)} skipped: {describe_skipped(sorted(skipped.items()))})" if skipped else "")
        )
    return [(p, f, c) for p, (f, c) in sorted(found.items())], sorted(skipped.items())


def _named_file(m: str, fmt: str) -> tuple[str, str]:
    """(format, compression) of a file named on the command line, or a usage error."""
    bad_comp = unsupported_compression(m)
    if bad_comp:
        raise UsageError(f"cannot read {m}: unsupported compression {bad_comp} (readable: .gz, .zst)")
    det = detect_format(m, fmt)
    if det is None:
        raise UsageError(f"cannot tell the format of {m}; pass --format jsonl|parquet|text|tsv")
    return det


def _expand_remote(
    raw: str, fmt: str, storage_options: storage.StorageOptions, found: dict, skipped: dict
) -> None:
    """``expand_inputs`` for one URL: a glob, a directory (prefix) walked recursively, or one object."""
    fs, path = storage.filesystem(raw, storage_options)
    try:
        if glob.has_magic(path):
            matches = sorted(fs.glob(path))
        else:
            matches = [path] if fs.exists(path) else []
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot list {raw}: {exc}") from None
    if not matches:
        raise UsageError(f"input not found: {raw}")
    for m in matches:
        if fs.isdir(m):
            for root, dirs, files in fs.walk(m):
                for d in sorted(dirs):
                    if d.startswith("."):
                        skipped[storage.url_of(fs, f"{root}/{d}")] = "hidden directory"
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                for name in sorted(files):
                    url = storage.url_of(fs, f"{root.rstrip('/')}/{name}")
                    reason = _skip_reason(name, fmt)
                    if reason is not None:
                        skipped[url] = reason
                        continue
                    found[url] = detect_format(name, fmt)
        else:
            url = storage.url_of(fs, m)
            found[url] = _named_file(url, fmt)


def input_size(path: str, storage_options: storage.StorageOptions = ()) -> int:
    """Bytes of an input file (0 when it cannot be read: its chunk then reports why)."""
    try:
        if storage.is_url(path):
            fs, p = storage.filesystem(path, storage_options)
            return int(fs.size(p) or 0)
        return os.path.getsize(path)
    except OSError:
        return 0


def input_fingerprint(path: str, storage_options: storage.StorageOptions = ()) -> list:
    """(size, version) of an input, for the content key: the mtime of a local file, the store's content tag
    (ETag, md5) or modification time of an object. None, None when it cannot be read."""
    try:
        if storage.is_url(path):
            fs, p = storage.filesystem(path, storage_options)
            info = fs.info(p)
            version = storage.store_tag(info) or str(
                info.get("LastModified") or info.get("mtime") or info.get("last_modified") or ""
            )
            return [int(info.get("size") or 0), version]
        st = os.stat(path)
        return [st.st_size, st.st_mtime_ns]
    except OSError:
        return [None, None]


def describe_skipped(skipped: list[tuple[str, str]], limit: int = 5) -> str:
    """``README.md (unknown format .md), g.jsonl.bz2 (unsupported compression .bz2), and 3 more``."""
    shown = [f"{posixpath.basename(p.rstrip('/'))} ({why})" for p, why in skipped[:limit]]
    more = len(skipped) - limit
    return ", ".join(shown) + (f", and {more} more" if more > 0 else "")


def plan_chunks(files: list[tuple[str, str, str]], opts: ReadOptions, chunk_bytes: int) -> list[ChunkSpec]:
    """Split files into chunks. Deterministic: depends only on the files and ``chunk_bytes``."""
    chunks: list[ChunkSpec] = []
    for path, fmt, comp in files:
        size = input_size(path, opts.storage_options)
        line_oriented = fmt in ("jsonl", "tsv") or (fmt == "text" and opts.text_per_line)
        if fmt == "parquet":
            n_groups = _parquet_row_groups(path, opts)
            if n_groups is None:  # unreadable: one chunk that reports it
                chunks.append(ChunkSpec(len(chunks), path, fmt, comp, 0, -1))
                continue
            groups_per_chunk = (
                max(1, n_groups * chunk_bytes // max(size, 1)) if size > chunk_bytes else max(n_groups, 1)
            )
            for g in range(0, max(n_groups, 1), groups_per_chunk):
                chunks.append(ChunkSpec(len(chunks), path, fmt, comp, g, min(g + groups_per_chunk, n_groups)))
        elif line_oriented and comp == "none" and (n := _line_file_chunks(size, chunk_bytes)) > 1:
            bounds = [size * k // n for k in range(n + 1)]
            for s, e in zip(bounds, bounds[1:]):
                chunks.append(ChunkSpec(len(chunks), path, fmt, comp, s, e))
        else:
            chunks.append(ChunkSpec(len(chunks), path, fmt, comp, 0, -1))
    return chunks


def _line_file_chunks(size: int, chunk_bytes: int) -> int:
    """How many equal chunks an uncompressed line file of ``size`` bytes is read in: none above
    ``chunk_bytes``, and a large file in at least ``settings.MIN_FILE_CHUNKS`` chunks of at least
    ``settings.MIN_CHUNK_BYTES``, so that one big file is tokenized by several tasks side by side. Depends on
    the data only, never on the cluster."""
    by_size = -(-size // chunk_bytes)
    by_speed = min(settings.MIN_FILE_CHUNKS, size // settings.MIN_CHUNK_BYTES)
    return max(1, by_size, by_speed)


def _parquet_file(path: str, opts: ReadOptions):
    """A ``pyarrow.parquet.ParquetFile`` of a local path or a URL (ranged reads through fsspec)."""
    import pyarrow.parquet as pq

    fs, p = storage.arrow_filesystem(path, opts.storage_options)
    return pq.ParquetFile(p, filesystem=fs) if fs is not None else pq.ParquetFile(p)


def _parquet_row_groups(path: str, opts: ReadOptions) -> int | None:
    try:
        return _parquet_file(path, opts).num_row_groups
    except Exception:
        return None


def parquet_problem(path: str, opts: ReadOptions) -> tuple[str, str] | None:
    """Why a Parquet file cannot give a single document, as (reason, code), from its footer alone (cheap
    enough for the driver to check every file before Spark starts), or None. The stage reports the same
    reason for the file."""
    try:
        names = _parquet_file(path, opts).schema_arrow.names
    except Exception as exc:
        return f"unreadable Parquet file: {exc}", "unreadable_file"
    if opts.text_field not in names:
        columns = ", ".join(names)
        return (
            f"missing text column {opts.text_field!r} (columns: {columns}); see --text-field",
            "missing_text_column",
        )
    return None


class _Truncated(Exception):
    pass


class _Codec:
    """A streaming decompressor factory for one compression, and the errors it raises on corrupt input."""

    def __init__(self, comp: str):
        if comp == "gz":
            self.new = lambda: zlib.decompressobj(47)  # gzip or zlib header, auto-detected
            self.errors: tuple[type[BaseException], ...] = (zlib.error,)
        else:
            import zstandard

            dctx = zstandard.ZstdDecompressor()
            self.new = dctx.decompressobj
            self.errors = (zstandard.ZstdError,)


def _decompressed_blocks(f, comp: str) -> Iterator[bytes]:
    """Blocks of decompressed bytes; raises _Truncated when the stream ends early or is corrupt.

    Every byte that decodes before the damage is yielded, whatever the codec's internal buffering: input
    goes to the decompressor ``_FEED_BYTES`` at a time, and when a call fails, the current gzip member or
    zstd frame is decoded again from its start up to that call and then one byte at a time, so the output
    that the failed call would have produced before reaching the damage is still yielded. The error names
    the compressed byte offset where the damage was detected (at or after the damage itself).
    """
    if comp == "none":
        while block := f.read(_READ_BLOCK):
            yield block
        return
    codec = _Codec(comp)
    d = codec.new()
    frame_start = 0  # compressed offset where the current member / frame starts
    frame_out = 0  # bytes it has yielded so far
    pos = 0  # compressed offset of the next byte read from f
    in_frame = False
    while data := f.read(_READ_BLOCK):
        block_start = pos
        pos += len(data)
        for i in range(0, len(data), _FEED_BYTES):
            piece = data[i : i + _FEED_BYTES]
            piece_start = block_start + i
            while piece:
                in_frame = True
                try:
                    out = d.decompress(piece)
                except codec.errors as exc:
                    salvaged, at = _salvage(f, codec, frame_start, piece_start, piece, frame_out)
                    if salvaged:
                        yield salvaged
                    raise _Truncated(f"corrupt compressed stream at byte {at:,} ({exc})") from None
                if out:
                    frame_out += len(out)
                    yield out
                if d.eof:
                    rest = d.unused_data
                    piece_start += len(piece) - len(rest)
                    piece = rest
                    frame_start, frame_out = piece_start, 0
                    d = codec.new()
                    in_frame = False
                else:
                    piece = b""
    if in_frame:
        raise _Truncated(
            f"truncated compressed stream (ended at byte {pos:,} before its end-of-stream marker)"
        )


def _salvage(
    f, codec: _Codec, frame_start: int, piece_start: int, piece: bytes, done: int
) -> tuple[bytes, int]:
    """Decode the current member / frame again from ``frame_start``: everything before ``piece_start`` in
    bulk (it decoded before), then ``piece`` one byte at a time until the codec fails. Returns the output
    beyond the ``done`` bytes already yielded, and the offset of the byte at which the codec failed."""
    d = codec.new()
    out = bytearray()
    f.seek(frame_start)
    remaining = piece_start - frame_start
    while remaining > 0:
        chunk = f.read(min(_READ_BLOCK, remaining))
        if not chunk:
            break
        remaining -= len(chunk)
        out += d.decompress(chunk)
    at = piece_start
    try:
        for k in range(len(piece)):
            at = piece_start + k
            out += d.decompress(piece[k : k + 1])
    except codec.errors:
        pass
    return bytes(out[done:]), at


def _count_newlines(path: str, end: int, opts: ReadOptions) -> int:
    n = 0
    with storage.open_binary(path, opts.storage_options) as f:
        remaining = end
        while remaining > 0:
            block = f.read(min(_READ_BLOCK * 16, remaining))
            if not block:
                break
            n += block.count(b"\n")
            remaining -= len(block)
    return n


def needs_line_base(spec: ChunkSpec) -> bool:
    """Does this chunk need the count of newlines before it from elsewhere? A byte range of an uncompressed
    file in an object store: counting them itself would read the whole file up to the chunk (every chunk of
    a 10 GB file would transfer 5 GB on average); instead one task per chunk counts its own range once, and
    the driver adds them up (:func:`with_line_bases`). Local files keep counting in the chunk's task."""
    return (
        spec.compression == "none" and spec.end >= 0 and storage.is_url(spec.path) and spec.fmt != "parquet"
    )


def count_newlines(spec: ChunkSpec, opts: ReadOptions) -> int:
    """Newlines in the chunk's byte range [start, end), read once with ranged reads."""
    n = 0
    with storage.open_binary(spec.path, opts.storage_options) as f:
        f.seek(spec.start)
        remaining = spec.end - spec.start
        while remaining > 0:
            block = f.read(min(storage.READ_BLOCK, remaining))
            if not block:
                break
            n += block.count(b"\n")
            remaining -= len(block)
    return n


def with_line_bases(chunks: list[ChunkSpec], counts: dict[int, int]) -> list[ChunkSpec]:
    """The chunks with ``newlines_before`` filled in from ``counts`` (newlines per chunk id, for the chunks
    of every file split into byte ranges, in file order)."""
    out, before = [], {}
    for c in chunks:
        if c.chunk_id in counts:
            base = before.get(c.path, 0)
            before[c.path] = base + counts[c.chunk_id]
            c = dataclasses.replace(c, newlines_before=base)
        out.append(c)
    return out


def _iter_lines(spec: ChunkSpec, opts: ReadOptions) -> Iterator[tuple[int, bytes] | Bad]:
    """(line number, raw line bytes without the newline) for the lines that start inside the chunk.

    A UTF-8 byte-order mark at the very start of the file is dropped (only the chunk at offset 0 sees it).
    """
    with storage.open_binary(spec.path, opts.storage_options) as f:
        if spec.compression == "none" and spec.start > 0:
            f.seek(spec.start - 1)
            skipped = b"" if f.read(1) == b"\n" else f.readline()  # the end of a line of the chunk before
            pos = f.tell()
            if spec.newlines_before >= 0:
                line_no = spec.newlines_before + skipped.endswith(b"\n") + 1
            else:
                line_no = _count_newlines(spec.path, pos, opts) + 1
        else:
            pos, line_no = 0, 1
        at_file_start = pos == 0
        end = spec.end if spec.compression == "none" and spec.end >= 0 else None
        pending = b""
        if end is not None:
            # block reads, split on newlines; ``pos`` is the byte offset of ``pending``, the line in progress
            while pos < end:
                block = f.read(_READ_BLOCK)
                if not block:
                    if at_file_start:
                        pending = pending.removeprefix(UTF8_BOM)
                    if pending:
                        yield line_no, pending.rstrip(b"\r")
                    return
                lines = (pending + block).split(b"\n")
                pending = lines.pop()
                for line in lines:
                    if pos >= end:
                        return
                    size = len(line) + 1
                    if at_file_start:
                        line, at_file_start = line.removeprefix(UTF8_BOM), False
                    yield line_no, line.rstrip(b"\r")
                    pos += size
                    line_no += 1
            return
        try:
            for block in _decompressed_blocks(f, spec.compression):
                block = pending + block
                if at_file_start and (len(block) >= len(UTF8_BOM) or b"\n" in block):
                    block, at_file_start = block.removeprefix(UTF8_BOM), False
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
        if at_file_start:
            pending = pending.removeprefix(UTF8_BOM)
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
            yield from _read_whole_text(spec, opts)
        else:
            yield from _read_line_records(spec, opts)
    except OSError as exc:
        yield Bad(None, f"unreadable file: {exc.strerror or exc}", "unreadable_file")


def _read_line_records(spec: ChunkSpec, opts: ReadOptions) -> Iterator[Record | Bad | Blank]:
    for item in _iter_lines(spec, opts):
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


def _read_whole_text(spec: ChunkSpec, opts: ReadOptions) -> Iterator[Record | Bad]:
    with storage.open_binary(spec.path, opts.storage_options) as f:
        parts = []
        try:
            for block in _decompressed_blocks(f, spec.compression):
                parts.append(block)
        except _Truncated as exc:
            yield Bad(None, str(exc), "bad_compressed_stream")
            return
    text = _decode(b"".join(parts).removeprefix(UTF8_BOM))
    if isinstance(text, Bad):
        yield text
        return
    problem = _check_text(text, "text")
    if problem:
        yield Bad(None, *problem)
        return
    yield Record(1, posixpath.basename(spec.path), text)


def _read_parquet(spec: ChunkSpec, opts: ReadOptions) -> Iterator[Record | Bad]:
    try:
        pf = _parquet_file(spec.path, opts)
    except Exception as exc:
        yield Bad(None, f"unreadable Parquet file: {exc}", "unreadable_file")
        return
    names = pf.schema_arrow.names
    problem = parquet_problem(spec.path, opts)
    if problem:
        yield Bad(None, *problem)
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


def input_records(files: list[tuple[str, str, str]], so: storage.StorageOptions = ()) -> list[dict]:
    """(path, size, sha256) of every input file, hashed in parallel (a URL is streamed from its store)."""

    def one(path: str) -> dict:
        try:
            return read(path)
        except OSError:  # unreadable: its chunk reports why (quarantine); never taken as already indexed
            return {"path": path, "size": None, "sha256": None}

    def read(path: str) -> dict:
        if storage.is_url(path):
            fs, p = storage.filesystem(path, so)
            with fs.open(p, "rb", block_size=storage.READ_BLOCK) as f:
                digest, size = storage.sha256_stream(f)
            return {"path": path, "size": size, "sha256": digest}
        return {"path": path, "size": os.stat(path).st_size, "sha256": sha256_file(path)}

    with ThreadPoolExecutor(max_workers=min(8, max(1, len(files)))) as pool:
        return list(pool.map(one, [p for p, _, _ in files]))
