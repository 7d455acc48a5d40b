"""Eval-set loading shared by every eval-facing command (jsonl, csv, parquet)."""

from __future__ import annotations

import csv
import json
import os
import string
from dataclasses import dataclass
from pathlib import Path

from freqindex.errors import BadInputError, UsageError


def read_jsonl_objects(p: Path, path: str) -> list[tuple[int, dict]]:
    """(line number, object) for every non-blank line; a bad line is an error naming file and line."""
    rows = []
    for i, ln in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
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


def load_eval_rows(path: str) -> list[dict]:
    """Rows of an eval file as dicts. Malformed files get one clear error naming the row."""
    p = Path(os.path.expanduser(path))
    if not p.is_file():
        raise UsageError(f"eval file not found: {path}")
    name = p.name.lower()
    if name.endswith((".jsonl", ".ndjson")):
        return [obj for _, obj in read_jsonl_objects(p, path)]
    if name.endswith(".json"):
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise BadInputError(f"{path}: bad JSON: {exc}") from None
        if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
            raise BadInputError(f"{path}: expected a JSON list of objects")
        return data
    if name.endswith(".csv"):
        with open(p, newline="", encoding="utf-8") as f:
            return list(csv.DictReader(f))
    if name.endswith(".parquet"):
        import pyarrow.parquet as pq

        return pq.read_table(p).to_pylist()
    raise UsageError(f"cannot tell the format of eval file {path}; use .jsonl, .json, .csv or .parquet")


@dataclass(frozen=True)
class EvalItem:
    id: str
    text: str
    row: dict


def load_eval(
    path: str,
    id_field: str = "id",
    fields: list[str] | None = None,
    template: str | None = None,
    default_fields: tuple[str, ...] = ("question", "text", "prompt", "input"),
) -> list[EvalItem]:
    """The items of an eval set. The item text is ``fields`` joined by a newline, or ``template`` filled in
    (``"{question}\\n{answer}"``). Ids come from ``id_field`` when the rows have it, else the row number (1-based).
    A missing field or an empty item is an error naming the row."""
    rows = load_eval_rows(path)
    if not rows:
        raise BadInputError(f"{path}: the eval set is empty")
    if template is not None:
        names = [f for _, f, _, _ in string.Formatter().parse(template) if f]
        if not names:
            raise UsageError("--template names no field (write e.g. '{question}\\n{answer}')")
    elif not fields:
        fields = [next((f for f in default_fields if f in rows[0]), None)]
        if fields[0] is None:
            raise UsageError(
                f"{path}: say which fields make up an item with --fields (columns: {', '.join(rows[0])})"
            )
    items = []
    use_ids = all(id_field in r and r[id_field] not in (None, "") for r in rows)
    seen: set[str] = set()
    for i, r in enumerate(rows, 1):
        need = names if template is not None else fields
        missing = [f for f in need if r.get(f) is None]
        if missing:
            raise BadInputError(f"{path}: row {i} has no field {missing[0]!r}")
        text = (
            template.format(**{k: r[k] for k in need})
            if template is not None
            else "\n".join(str(r[f]) for f in fields)
        )
        if not text.strip():
            raise BadInputError(f"{path}: row {i} is an empty item")
        item_id = str(r[id_field]) if use_ids else str(i)
        if item_id in seen:
            raise BadInputError(f"{path}: row {i} repeats id {item_id!r}")
        seen.add(item_id)
        items.append(EvalItem(item_id, text, r))
    return items
