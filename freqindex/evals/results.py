"""Per-item model results: model -> item id -> correctness (0..1).

Layouts: long (``id, model, correct`` or ``score``; .jsonl/.csv/.parquet), or wide (GSM8K's
example_model_solutions.jsonl: one row per item keyed by its question text, every model a key holding
``{"is_correct": bool}``). Wide rows are matched to eval items by the item's question text.
"""

from __future__ import annotations

from freqindex.errors import BadInputError
from freqindex.evals.items import EvalItem
from freqindex.evals.tables import load_rows


def load_results(
    path: str, items: list[EvalItem], key_field: str = "question"
) -> dict[str, dict[str, float]]:
    """model -> item id -> correctness (0..1)."""
    rows = load_rows(path, "results")
    if not rows:
        raise BadInputError(f"{path}: no results")
    out: dict[str, dict[str, float]] = {}
    if {"model"} <= set(rows[0]) and ({"correct"} <= set(rows[0]) or {"score"} <= set(rows[0])):
        ids = {it.id for it in items}
        for i, r in enumerate(rows, 1):
            v = r.get("correct", r.get("score"))
            if r.get("id") is None or v is None:
                raise BadInputError(f"{path}: row {i} needs id, model and correct (or score)")
            if str(r["id"]) in ids:
                out.setdefault(str(r["model"]), {})[str(r["id"])] = _as_score(v, path, i)
        return out
    by_text = {str(it.row.get(key_field, "")).strip(): it.id for it in items}
    for r in rows:
        item_id = by_text.get(str(r.get(key_field, "")).strip())
        if item_id is None:
            continue
        for model, v in r.items():
            if isinstance(v, dict) and "is_correct" in v:
                out.setdefault(model, {})[item_id] = float(bool(v["is_correct"]))
    if not out:
        raise BadInputError(
            f"{path}: no result matched an eval item (long layout needs id, model, correct; "
            f"the wide layout is matched by {key_field!r})"
        )
    return out


def _as_score(v, path: str, row: int) -> float:
    if isinstance(v, bool):
        return float(v)
    if isinstance(v, str):
        if v.strip().lower() in ("true", "yes", "1", "correct"):
            return 1.0
        if v.strip().lower() in ("false", "no", "0", "incorrect", "wrong"):
            return 0.0
    try:
        return float(v)
    except (TypeError, ValueError):
        raise BadInputError(f"{path}: row {row}: correctness {v!r} is not a boolean or a number") from None
