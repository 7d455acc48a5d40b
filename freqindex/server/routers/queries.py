"""Queries over the suffix arrays: count, docs, concepts."""

from __future__ import annotations

from fastapi import APIRouter, Request

from freqindex.commands.concepts import ConceptsConfig, run_concepts
from freqindex.commands.query import CountConfig, DocsConfig, run_count, run_docs

from ..errors import ApiError
from ..models import (
    ConceptRow,
    ConceptsRequest,
    ConceptsResponse,
    CountRequest,
    CountResponse,
    DocsRequest,
    DocsResponse,
)
from ..state import state_of

router = APIRouter(tags=["queries"])


@router.post("/v1/count")
async def count_endpoint(req: CountRequest, request: Request) -> CountResponse:
    if (req.query is None) == (req.queries is None):
        raise ApiError(422, "invalid_request", "give exactly one of query or queries")
    state = state_of(request)
    idx = state.index(req.index)
    queries = () if req.queries is None else tuple(req.queries)  # a batch: a bad query names its position
    cfg = CountConfig(
        index_dir=str(idx.path), query=req.query, queries=queries, unit=req.unit, literal=req.literal
    )
    results = await state.run(idx, lambda deadline: run_count(cfg, index=idx, deadline=deadline))
    return CountResponse(index=req.index, results=results)


@router.post("/v1/docs")
async def docs_endpoint(req: DocsRequest, request: Request) -> DocsResponse:
    state = state_of(request)
    idx = state.index(req.index)
    cfg = DocsConfig(index_dir=str(idx.path), query=req.query, limit=req.limit, literal=req.literal)
    res = await state.run(idx, lambda deadline: run_docs(cfg, index=idx, deadline=deadline))
    return DocsResponse(index=req.index, query=req.query, total_docs=res.total_docs, docs=res.hits)


@router.post("/v1/concepts")
async def concepts_endpoint(req: ConceptsRequest, request: Request) -> ConceptsResponse:
    state = state_of(request)
    idx = state.index(req.index)
    rows = [
        (None, c, []) if isinstance(c, str) else (c.benchmark, c.concept, c.aliases) for c in req.concepts
    ]
    cfg = ConceptsConfig(index_dir=str(idx.path), source=req.source, exact=req.exact)
    res = await state.run(
        idx, lambda deadline: run_concepts(cfg, index=idx, vocab_rows=rows, deadline=deadline)
    )
    return ConceptsResponse(
        index=req.index,
        source=res.source,
        warnings=res.warnings,
        concepts=[ConceptRow(**r) for r in res.rows],
    )
