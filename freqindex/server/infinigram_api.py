"""infini-gram's public HTTP API, served over a freqindex index: ``POST /`` with ``index``, ``query_type`` and
``query`` (a string) or ``query_ids`` (token ids), answered in the shapes of infini-gram's API documentation,
so a script written for ``https://api.infini-gram.io/`` runs against a self-hosted index by changing the URL.

Query types: ``count`` (also CNF: ``a AND b OR c`` or triply nested ``query_ids``), ``prob``, ``ntd``,
``infgram_prob``, ``infgram_ntd``, ``find``, ``get_doc_by_rank``, ``search_docs`` (also CNF). Every answer
carries ``latency`` (milliseconds) and, except ``find`` and ``get_doc_by_rank``, the query's ``token_ids`` and
``tokens``. Probabilities and distributions come from the batched suffix-array search
(:mod:`freqindex.query.prob`, equal to the engine); counts, CNF queries and document look-ups from the
infini-gram engine itself.

Differences from the public service, all deliberate: a ``query`` string is normalized and tokenized exactly
as the index was (like every freqindex query); token ids must lie inside the index's vocabulary (the
separator is not a token); errors follow the rest of the server (HTTP 4xx with ``{"error", "message"}``, where
the public service answers 200 with ``{"error"}``; a client that checks for ``error`` works with both).
``GET /`` lists the served index names, as the public service does.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from freqindex import settings
from freqindex.commands.infinigram import answer

QUERY_TYPES = (
    "count",
    "prob",
    "ntd",
    "infgram_prob",
    "infgram_ntd",
    "find",
    "get_doc_by_rank",
    "search_docs",
)

TokenId = Annotated[int, Field(ge=0, le=2**32 - 1)]
Ids = Annotated[list[TokenId], Field(max_length=settings.MAX_QUERY_CHARS)]
CnfIds = Annotated[
    list[Annotated[list[Annotated[list[TokenId], Field(min_length=1)]], Field(min_length=1, max_length=16)]],
    Field(min_length=1, max_length=16),
]


class InfinigramRequest(BaseModel):
    """The request of infini-gram's API (see its documentation for each query type's fields)."""

    model_config = ConfigDict(extra="forbid")
    index: Annotated[str, Field(min_length=1, max_length=128, description="Index name, as listed by GET /.")]
    query_type: Literal[QUERY_TYPES]
    query: Annotated[str, Field(max_length=settings.MAX_QUERY_CHARS)] | None = None
    query_ids: Ids | CnfIds | None = None
    max_support: Annotated[int, Field(ge=1, le=1000)] | None = None
    max_clause_freq: Annotated[int, Field(ge=1, le=500_000)] | None = None
    max_diff_tokens: Annotated[int, Field(ge=1, le=1000)] | None = None
    maxnum: Annotated[int, Field(ge=1, le=10)] | None = None
    max_disp_len: Annotated[int, Field(ge=1, le=10_000)] | None = None
    s: Annotated[int, Field(ge=0)] | None = None
    rank: Annotated[int, Field(ge=0)] | None = None


def infinigram_router(get_index, call, names: list[str]) -> APIRouter:
    """The router: ``get_index(name)`` looks a served index up (404 otherwise), ``call(idx, fn)`` runs library
    work under the index's lock and the request time limit (both from :func:`freqindex.server.app.create_app`);
    ``names``: the served index names, listed by ``GET /`` as the public service does."""
    router = APIRouter(tags=["infini-gram API"])

    @router.post("/", summary="infini-gram's public API (count, prob, ntd, infgram_prob, infgram_ntd, ...)")
    async def infinigram(req: InfinigramRequest) -> dict:
        idx = get_index(req.index)
        return await call(idx, lambda: answer(idx, req))

    @router.get("/", summary="Names of the served indexes")
    async def list_names() -> list[str]:
        return sorted(names)

    return router


__all__ = ["InfinigramRequest", "QUERY_TYPES", "answer", "infinigram_router"]
