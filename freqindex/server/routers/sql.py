"""Read-only SQL over an index's views (the sandbox of `freqindex sql`); past the time limit the query is
interrupted inside DuckDB."""

from __future__ import annotations

import json

from fastapi import APIRouter, Request

from freqindex.commands.sql import SqlConfig, run_sql

from ..models import SqlRequest, SqlResponse
from ..state import state_of

router = APIRouter(tags=["queries"])


@router.post("/v1/sql")
async def sql_endpoint(req: SqlRequest, request: Request) -> SqlResponse:
    state = state_of(request)
    idx = state.index(req.index)
    cfg = SqlConfig(index_dir=str(idx.path), query=req.sql, limit=req.max_rows)
    holder: dict = {}

    def interrupt() -> None:
        if holder.get("con") is not None:
            holder["con"].interrupt()

    res = await state.run(
        None, lambda _: run_sql(cfg, on_open=lambda con: holder.setdefault("con", con)), on_timeout=interrupt
    )
    rows = json.loads(json.dumps(res.table.to_pylist(), default=str))
    return SqlResponse(index=req.index, columns=res.table.column_names, rows=rows, truncated=res.truncated)
