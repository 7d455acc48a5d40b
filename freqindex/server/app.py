"""`freqindex serve`: the query layer over HTTP (FastAPI on uvicorn). No logic of its own: every endpoint calls
the library functions the CLI calls, under the limits of ``freqindex.settings``.

- Indexes are opened once at start-up and shared by all requests, addressed by name (the directory name).
  A name is looked up in that table and never joined to a path, so it cannot escape the served directories.
- Engine calls on one index are serialized by the index's lock (the infini-gram binding's thread safety is
  not documented); ``--workers N`` runs N processes for parallelism.
- Every request but ``/healthz`` needs ``Authorization: Bearer TOKEN`` when a token is configured (required
  for any non-loopback bind); tokens are compared in constant time.
- Errors are JSON ``{"error": CODE, "message": TEXT}`` with stable codes, never a stack trace.
- Each request has a time limit (504 ``timeout``); a SQL query past it is interrupted in DuckDB.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import os
import re
import time
from pathlib import Path
from typing import Annotated, Literal

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from freqindex import settings
from freqindex.errors import FreqindexError
from freqindex.query.count import CountResult, count, count_many
from freqindex.query.docs import DocHit, find_docs
from freqindex.server.infinigram_api import infinigram_router
from freqindex.suffix.index import Index

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
ENV_CONFIG = "FREQINDEX_SERVE_CONFIG"


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


# --- request / response models ------------------------------------------------------------------------

Query = Annotated[str, Field(min_length=1, max_length=settings.MAX_QUERY_CHARS)]
IndexName = Annotated[
    str, Field(min_length=1, max_length=128, description="Index name, as listed by /v1/indexes.")
]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CountRequest(Strict):
    index: IndexName
    query: Query | None = Field(None, description="One query (CNF: ' AND ' between clauses, ' OR ' inside).")
    queries: (
        Annotated[list[Query], Field(min_length=1, max_length=settings.MAX_QUERIES_PER_REQUEST)] | None
    ) = None
    unit: Literal["occurrences", "docs"] = "occurrences"
    literal: bool = Field(False, description="Count the string as written (no AND/OR parsing).")


class CountResponse(BaseModel):
    index: str
    results: list[CountResult]  # the library's own result types are the response models


class DocsRequest(Strict):
    index: IndexName
    query: Query
    limit: int = Field(settings.DEFAULT_DOCS_LIMIT, ge=1, le=settings.MAX_DOCS_LIMIT)
    literal: bool = False


class DocsResponse(BaseModel):
    index: str
    query: str
    total_docs: int
    docs: list[DocHit]


class ConceptSpec(Strict):
    concept: Annotated[str, Field(min_length=1, max_length=settings.MAX_QUERY_CHARS)]
    aliases: Annotated[
        list[Annotated[str, Field(max_length=settings.MAX_QUERY_CHARS)]], Field(max_length=100)
    ] = []
    benchmark: str | None = None


class ConceptsRequest(Strict):
    index: IndexName
    concepts: Annotated[
        list[Annotated[str, Field(min_length=1, max_length=settings.MAX_QUERY_CHARS)] | ConceptSpec],
        Field(min_length=1, max_length=settings.MAX_QUERIES_PER_REQUEST),
    ]
    exact: bool = Field(False, description="No singular/plural forms.")
    source: Literal["auto", "tags", "suffix"] = "auto"


class ConceptRow(BaseModel):
    model_config = ConfigDict(extra="allow")
    concept_id: int
    concept: str
    benchmark: str | None
    occurrences: int
    doc_frequency: int


class ConceptsResponse(BaseModel):
    index: str
    source: str
    warnings: list[str]
    concepts: list[ConceptRow]


class Item(Strict):
    id: Annotated[str, Field(min_length=1, max_length=256)]
    text: Annotated[str, Field(min_length=1, max_length=settings.MAX_QUERY_CHARS)]


Items = Annotated[list[Item], Field(min_length=1, max_length=settings.MAX_ITEMS_PER_REQUEST)]


class NeighborsRequest(Strict):
    index: IndexName
    items: Items
    k: int = Field(10, ge=1, le=settings.MAX_K)


class NeighborRow(BaseModel):
    item_id: str
    rank: int
    doc_id: int
    ext_id: str | None
    char_start: int
    char_end: int
    similarity: float
    snippet: str | None


class NeighborsResponse(BaseModel):
    index: str
    neighbors: list[NeighborRow]


class ContaminationRequest(Strict):
    index: IndexName
    items: Items
    min_len: int | None = Field(None, ge=1, le=10_000)
    skip: int = Field(0, ge=0, le=1000)
    clean_below: float = Field(0.2, ge=0, le=1)
    dirty_at: float = Field(0.8, ge=0, le=1)
    boilerplate_ceiling: int = Field(1000, ge=1)
    definitions: list[Literal["gpt3", "palm", "ig_mini"]] | None = None


class ContaminationResponse(BaseModel):
    index: str
    items: list[dict]
    summary: dict


class SqlRequest(Strict):
    index: IndexName
    sql: Annotated[str, Field(min_length=1, max_length=settings.MAX_QUERY_CHARS)]
    max_rows: int = Field(1000, ge=1, le=settings.MAX_SQL_ROWS)


class SqlResponse(BaseModel):
    index: str
    columns: list[str]
    rows: list[dict]
    truncated: bool


class IndexInfo(BaseModel):
    name: str
    documents: int
    tokens: int
    shards: int
    tokenizer: str
    normalization: str
    has_vectors: bool
    has_concepts: bool
    manifest_sha256: str


class ErrorBody(BaseModel):
    error: str
    message: str


# --- the app -------------------------------------------------------------------------------------------


class Metrics:
    def __init__(self):
        from prometheus_client import CollectorRegistry, Counter, Histogram

        self.registry = CollectorRegistry()
        self.requests = Counter(
            "freqindex_http_requests",
            "HTTP requests by route and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "freqindex_http_request_seconds",
            "Request latency by route",
            ["route"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=self.registry,
        )

    def text(self) -> bytes:
        from prometheus_client import generate_latest

        return generate_latest(self.registry)


def _open_indexes(dirs: list[str]) -> dict[str, Index]:
    out: dict[str, Index] = {}
    for d in dirs:
        idx = Index.open(d)
        name = idx.path.name
        if not NAME_RE.match(name):
            raise FreqindexError(
                f"index directory name {name!r} is not a valid index name (letters, digits, . _ -)"
            )
        if name in out:
            raise FreqindexError(
                f"two served indexes are both named {name!r}; serve directories with distinct names"
            )
        out[name] = idx
    return out


def create_app(
    index_dirs: list[str], token: str | None = None, timeout_s: float = settings.REQUEST_TIMEOUT_S
) -> FastAPI:
    indexes = _open_indexes(index_dirs)
    metrics = Metrics()
    app = FastAPI(
        title="freqindex",
        version="1",
        description="Exact n-gram counts, documents, concept frequencies, nearest neighbours, contamination "
        "checks and read-only SQL over pretraining-corpus indexes.",
        responses={
            400: {"model": ErrorBody},
            401: {"model": ErrorBody},
            404: {"model": ErrorBody},
            413: {"model": ErrorBody},
            415: {"model": ErrorBody},
            422: {"model": ErrorBody},
            504: {"model": ErrorBody},
        },
    )
    app.state.indexes = indexes

    def openapi():  # the spec lists the served index names, so clients (and fuzzers) see what exists
        if app.openapi_schema is None:
            from fastapi.openapi.utils import get_openapi

            spec = get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes
            )
            for comp in spec.get("components", {}).get("schemas", {}).values():
                prop = comp.get("properties", {}).get("index")
                if prop is not None:
                    prop["enum"] = sorted(indexes)
            app.openapi_schema = spec
        return app.openapi_schema

    app.openapi = openapi

    def err(status: int, code: str, message: str) -> JSONResponse:
        return JSONResponse({"error": code, "message": message}, status_code=status)

    @app.middleware("http")
    async def guard(request: Request, call_next):
        t = time.perf_counter()
        path = request.url.path
        if token is not None and path != "/healthz":
            got = request.headers.get("authorization", "")
            scheme, _, value = got.partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(value.strip().encode(), token.encode()):
                resp = err(401, "unauthorized", "missing or wrong bearer token")
                resp.headers["WWW-Authenticate"] = "Bearer"
                return _observe(metrics, request, resp, t)
        if request.method == "POST":
            ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
            if ctype != "application/json":
                return _observe(
                    metrics,
                    request,
                    err(
                        415,
                        "unsupported_media_type",
                        "send the body as JSON with Content-Type: application/json",
                    ),
                    t,
                )
        try:
            resp = await call_next(request)
        except Exception:  # never a stack trace on the wire
            resp = err(500, "internal", "internal error")
        return _observe(metrics, request, resp, t)

    app.add_middleware(BodyLimit, limit=settings.MAX_BODY_BYTES)

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError):
        return err(exc.status, exc.code, exc.message)

    @app.exception_handler(FreqindexError)
    async def _lib_error(_: Request, exc: FreqindexError):
        return err(400, "bad_query", str(exc))

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError):
        errors = exc.errors()
        first = errors[0] if errors else {}
        if first.get("type") == "json_invalid":
            return err(400, "malformed_json", "the body is not valid JSON (or not UTF-8)")
        loc = ".".join(str(x) for x in first.get("loc", ()) if x != "body")
        return err(
            422,
            "invalid_request",
            f"{loc}: {first.get('msg', 'invalid')}" if loc else first.get("msg", "invalid"),
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException):
        codes = {404: "not_found", 405: "method_not_allowed"}
        if exc.status_code == 400 and "parsing the body" in str(exc.detail):
            return err(400, "malformed_json", "the body is not valid JSON (or not UTF-8)")
        return err(exc.status_code, codes.get(exc.status_code, "http_error"), str(exc.detail))

    @app.exception_handler(UnicodeDecodeError)
    async def _unicode(_: Request, exc: UnicodeDecodeError):
        return err(400, "malformed_json", "the body is not UTF-8")

    def get_index(name: str) -> Index:
        idx = indexes.get(name)
        if idx is None:
            raise ApiError(404, "unknown_index", f"no index named {name!r} (see /v1/indexes)")
        return idx

    async def call(idx: Index | None, fn, on_timeout=None):
        """Run library work in a thread under the index's lock and the request time limit."""

        def work():
            if idx is None:
                return fn()
            with idx._lock:  # noqa: SLF001
                return fn()

        try:
            return await asyncio.wait_for(run_in_threadpool(work), timeout_s)
        except TimeoutError:
            if on_timeout is not None:
                on_timeout()
            raise ApiError(
                504, "timeout", f"the request took longer than {timeout_s:g} s and was cancelled"
            ) from None

    app.include_router(infinigram_router(get_index, call, list(indexes)))  # infini-gram's API: POST /

    @app.get("/healthz", tags=["service"])
    async def healthz() -> dict:
        return {"status": "ok", "indexes": len(indexes)}

    @app.get("/metrics", tags=["service"], response_class=PlainTextResponse)
    async def metrics_endpoint():
        return PlainTextResponse(metrics.text(), media_type="text/plain; version=0.0.4")

    @app.get("/v1/indexes", tags=["indexes"])
    async def list_indexes() -> list[IndexInfo]:
        return [_info(name, idx) for name, idx in indexes.items()]

    @app.post("/v1/count", tags=["queries"])
    async def count_endpoint(req: CountRequest) -> CountResponse:
        if (req.query is None) == (req.queries is None):
            raise ApiError(422, "invalid_request", "give exactly one of query or queries")
        idx = get_index(req.index)
        if req.query is not None:
            res = await call(idx, lambda: [count(idx, req.query, unit=req.unit, literal=req.literal)])
        else:  # one batch: the error of a bad query names its position (queries[i])
            res = await call(idx, lambda: count_many(idx, req.queries, unit=req.unit, literal=req.literal))
        return CountResponse(index=req.index, results=res)

    @app.post("/v1/docs", tags=["queries"])
    async def docs_endpoint(req: DocsRequest) -> DocsResponse:
        idx = get_index(req.index)
        n, hits = await call(idx, lambda: find_docs(idx, req.query, limit=req.limit, literal=req.literal))
        return DocsResponse(index=req.index, query=req.query, total_docs=n, docs=hits)

    @app.post("/v1/concepts", tags=["queries"])
    async def concepts_endpoint(req: ConceptsRequest) -> ConceptsResponse:
        from freqindex.concepts.vocab import vocabulary_from_rows
        from freqindex.query.concepts import concept_counts

        idx = get_index(req.index)
        rows = [
            (None, c, []) if isinstance(c, str) else (c.benchmark, c.concept, c.aliases) for c in req.concepts
        ]

        def work():
            vocab = vocabulary_from_rows(rows, idx.normalizer, req.exact)
            src, out = concept_counts(idx, vocab, req.source)
            return src, out, vocab.warnings

        src, out, warns = await call(idx, work)
        return ConceptsResponse(
            index=req.index, source=src, warnings=warns, concepts=[ConceptRow(**r) for r in out]
        )

    @app.post("/v1/neighbors", tags=["queries"])
    async def neighbors_endpoint(req: NeighborsRequest) -> NeighborsResponse:
        from freqindex.evals import EvalItem
        from freqindex.query.neighbors import neighbors

        idx = get_index(req.index)
        _unique_ids(req.items)
        items = [EvalItem(i.id, i.text, {"text": i.text}) for i in req.items]
        rows = await call(idx, lambda: neighbors(idx, items, req.k, "request"))
        return NeighborsResponse(
            index=req.index,
            neighbors=[NeighborRow(**{k: r[k] for k in NeighborRow.model_fields}) for r in rows],
        )

    @app.post("/v1/contamination", tags=["queries"])
    async def contamination_endpoint(req: ContaminationRequest) -> ContaminationResponse:
        from freqindex.contamination.check import Policy, check_items
        from freqindex.evals import EvalItem

        idx = get_index(req.index)
        _unique_ids(req.items)
        policy = Policy(
            min_len=req.min_len,
            skip=req.skip,
            clean_below=req.clean_below,
            dirty_at=req.dirty_at,
            boilerplate_ceiling=req.boilerplate_ceiling,
        ).validate()
        items = [EvalItem(i.id, i.text, {"text": i.text}) for i in req.items]
        defs = tuple(dict.fromkeys(req.definitions)) if req.definitions is not None else None
        records, summary = await call(
            idx, lambda: check_items(idx, items, ["text"], policy, None, definitions=defs)
        )
        return ContaminationResponse(index=req.index, items=records, summary=summary)

    @app.post("/v1/sql", tags=["queries"])
    async def sql_endpoint(req: SqlRequest) -> SqlResponse:
        from freqindex.sqlcat import run_query

        idx = get_index(req.index)
        holder: dict = {}
        table = await call(
            None,
            lambda: run_query(idx.path, req.sql, req.max_rows, on_open=lambda c: holder.setdefault("con", c)),
            on_timeout=lambda: holder.get("con") and holder["con"].interrupt(),
        )
        truncated = table.num_rows > req.max_rows
        table = table.slice(0, req.max_rows)
        rows = json.loads(json.dumps(table.to_pylist(), default=str))
        return SqlResponse(index=req.index, columns=table.column_names, rows=rows, truncated=truncated)

    return app


class BodyLimit:
    """Pure ASGI middleware: refuse bodies over ``limit`` bytes with 413, by Content-Length or, for chunked
    bodies, by reading at most ``limit + 1`` bytes (then handed on unchanged)."""

    def __init__(self, app, limit: int):
        self.app, self.limit = app, limit

    async def _reply(self, send, status: int, code: str, message: str) -> None:
        body = json.dumps({"error": code, "message": message}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        cl = headers.get(b"content-length")
        too_large = f"request body over {self.limit} bytes"
        if cl is not None:
            if not cl.isdigit():
                return await self._reply(send, 400, "bad_request", "invalid Content-Length")
            if int(cl) > self.limit:
                return await self._reply(send, 413, "body_too_large", too_large)
            return await self.app(scope, receive, send)
        if scope.get("method") not in ("POST", "PUT", "PATCH"):
            return await self.app(scope, receive, send)
        chunks, size = [], 0
        while True:
            msg = await receive()
            if msg["type"] != "http.request":
                return
            chunks.append(msg.get("body", b""))
            size += len(chunks[-1])
            if size > self.limit:
                return await self._reply(send, 413, "body_too_large", too_large)
            if not msg.get("more_body"):
                break
        body, sent = b"".join(chunks), False

        async def replay():
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return await self.app(scope, replay, send)


def _unique_ids(items) -> None:
    seen = set()
    for it in items:
        if it.id in seen:
            raise ApiError(422, "invalid_request", f"item id {it.id!r} appears twice")
        seen.add(it.id)


def _info(name: str, idx: Index) -> IndexInfo:
    import hashlib

    m = idx.manifest
    return IndexInfo(
        name=name,
        documents=int(m["counts"]["documents"]),
        tokens=int(m["counts"]["tokens"]),
        shards=len(m["shards"]),
        tokenizer=m["tokenizer"]["name"],
        normalization=m["normalization"]["name"],
        has_vectors=bool(m.get("vectors")),
        has_concepts=bool(m.get("concepts")),
        manifest_sha256=hashlib.sha256(json.dumps(m, sort_keys=True).encode()).hexdigest(),
    )


def _observe(metrics: Metrics, request: Request, resp, t0: float):
    route = request.scope.get("route")
    label = getattr(route, "path", None) or "unmatched"
    metrics.requests.labels(request.method, label, str(resp.status_code)).inc()
    metrics.latency.labels(label).observe(time.perf_counter() - t0)
    return resp


def app_from_env() -> FastAPI:
    """uvicorn factory for worker processes: the configuration comes in an environment variable."""
    cfg = json.loads(os.environ[ENV_CONFIG])
    token = Path(cfg["token_file"]).read_text().strip() if cfg.get("token_file") else None
    return create_app(cfg["indexes"], token, cfg.get("timeout_s", settings.REQUEST_TIMEOUT_S))


__all__ = ["create_app", "app_from_env", "NAME_RE"]
