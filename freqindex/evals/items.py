"""Eval items: the text each eval-facing command checks, built from the rows of an eval file."""

from __future__ import annotations

import string
from dataclasses import dataclass
from pathlib import Path

from freqindex.errors import BadInputError, UsageError
from freqindex.evals.tables import load_rows


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
    rows = load_rows(path)
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


def eval_name(path: str) -> str:
    """The eval set's name: its file name up to the first dot (``test.jsonl`` -> ``test``); outputs and SQL
    views are keyed by it."""
    return Path(path).name.split(".")[0]
