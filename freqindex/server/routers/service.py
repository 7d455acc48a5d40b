"""Service endpoints: health, Prometheus metrics, the served indexes."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse

from ..models import IndexInfo
from ..state import index_info, state_of

router = APIRouter()


@router.get("/healthz", tags=["service"])
async def healthz(request: Request) -> dict:
    out = {"status": "ok", "indexes": len(state_of(request).indexes)}
    preload = getattr(request.app.state, "preload", None)
    if preload is not None:  # serve --preload: reading the shard files into the page cache
        out["preload"] = preload.status()
    return out


@router.get("/metrics", tags=["service"], response_class=PlainTextResponse)
async def metrics_endpoint(request: Request):
    return PlainTextResponse(request.app.state.metrics.text(), media_type="text/plain; version=0.0.4")


@router.get("/v1/indexes", tags=["indexes"])
async def list_indexes(request: Request) -> list[IndexInfo]:
    return [index_info(name, idx) for name, idx in state_of(request).indexes.items()]
