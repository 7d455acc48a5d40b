"""Eval items against an index: nearest neighbours and the contamination check."""

from __future__ import annotations

from fastapi import APIRouter, Request

from freqindex.commands.contamination import ContaminationConfig, run_contamination
from freqindex.commands.neighbors import NeighborsConfig, run_neighbors
from freqindex.contamination.check import Policy
from freqindex.evals import EvalItem

from ..errors import unique_ids
from ..models import (
    ContaminationRequest,
    ContaminationResponse,
    Item,
    NeighborRow,
    NeighborsRequest,
    NeighborsResponse,
)
from ..state import state_of

router = APIRouter(tags=["queries"])


def _items(items: list[Item]) -> list[EvalItem]:
    unique_ids(items)
    return [EvalItem(i.id, i.text, {"text": i.text}) for i in items]


@router.post("/v1/neighbors")
async def neighbors_endpoint(req: NeighborsRequest, request: Request) -> NeighborsResponse:
    state = state_of(request)
    idx = state.index(req.index)
    items = _items(req.items)
    cfg = NeighborsConfig(index_dir=str(idx.path), k=req.k, neighbors="exhaustive")
    res = await state.run(
        idx, lambda deadline: run_neighbors(cfg, index=idx, items=items, write=False, deadline=deadline)
    )
    rows = [NeighborRow(**{k: r[k] for k in NeighborRow.model_fields}) for r in res.rows]
    return NeighborsResponse(index=req.index, neighbors=rows)


@router.post("/v1/contamination")
async def contamination_endpoint(req: ContaminationRequest, request: Request) -> ContaminationResponse:
    state = state_of(request)
    idx = state.index(req.index)
    items = _items(req.items)
    policy = Policy(
        min_len=req.min_len,
        skip=req.skip,
        clean_below=req.clean_below,
        dirty_at=req.dirty_at,
        boilerplate_ceiling=req.boilerplate_ceiling,
    )
    cfg = ContaminationConfig(
        index_dir=str(idx.path),
        fields=("text",),
        policy=policy,
        neighbors=None,
        **({"definitions": tuple(dict.fromkeys(req.definitions))} if req.definitions is not None else {}),
    ).validate()
    res = await state.run(
        idx, lambda deadline: run_contamination(cfg, index=idx, items=items, write=False, deadline=deadline)
    )
    return ContaminationResponse(index=req.index, items=res.records, summary=res.summary)
