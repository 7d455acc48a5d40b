"""One tabular loader for every user-supplied table: eval sets, model results, concept vocabularies,
concept counts. ``.jsonl``/``.ndjson``, ``.json`` (a list of objects), ``.csv`` and ``.parquet``; a
malformed file gets one clear error naming the file and row."""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

from freqindex.errors import BadInputError, UsageError
from freqindex.fsutil import read_text


def read_jsonl_objects(p: Path, path: str) -> list[tuple[int, dict]]:
    """(line number, object) for every non-blank line; a bad line is an error naming file and line."""
    rows = []
    for i, ln in enumerate(_text(p, path).splitlines(), 1):
        if not ln.strip():
            continue
        try:
            obj = json.loads(ln)
        except ValueError as exc:
            raise BadInputError(f"{path}:{i}: bad JSON: {exc}") from None
        if not isinstance(obj, dict):
            raise BadInputError(f"{path}:{i}: expected a JSON object")
        rows.append((i, obj))
    return rows


def _text(p: Path, path: str) -> str:
    """The file's text (a leading byte-order mark dropped); undecodable bytes are an error naming the file."""
    try:
        return read_text(p)
    except UnicodeDecodeError as exc:
        raise BadInputError(f"{path}: not UTF-8 text (invalid byte at offset {exc.start})") from None


def load_rows(path: str, what: str = "eval") -> list[dict]:
    """Rows of an eval file as dicts. Malformed files get one clear error naming the row."""
    p = Path(os.path.expanduser(path))
    if not p.is_file():
        raise UsageError(f"{what} file not found: {path}")
    name = p.name.lower()
    if name.endswith((".jsonl", ".ndjson")):
        return [obj for _, obj in read_jsonl_objects(p, path)]
    if name.endswith(".json"):
        try:
            data = json.loads(_text(p, path))
        except ValueError as exc:
            raise BadInputError(f"{path}: bad JSON: {exc}") from None
        if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
            raise BadInputError(f"{path}: expected a JSON list of objects")
        return data
    if name.endswith(".csv"):
        return list(csv.DictReader(io.StringIO(_text(p, path), newline="")))
    if name.endswith(".parquet"):
        import pyarrow.parquet as pq

        return pq.read_table(p).to_pylist()
    raise UsageError(f"cannot tell the format of {what} file {path}; use .jsonl, .json, .csv or .parquet")
