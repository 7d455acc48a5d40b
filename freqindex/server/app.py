"""`freqindex serve`: the query layer over HTTP (FastAPI on uvicorn). No logic of its own: every endpoint
calls the library run function the CLI calls (freqindex/commands/), under the limits of
``freqindex.settings``.

- Indexes are opened once at start-up and shared by all requests, addressed by name (the directory name).
  A name is looked up in that table and never joined to a path, so it cannot escape the served directories.
- Engine calls on one index are serialized by the index's lock (the infini-gram binding's thread safety is
  not documented); ``--workers N`` runs N processes for parallelism.
- Every request but ``/healthz`` needs ``Authorization: Bearer TOKEN`` when a token is configured (required
  for any non-loopback bind); tokens are compared in constant time.
- infini-gram's own HTTP API (``POST /``) is mounted beside freqindex's (``infinigram_api``).
- Errors are JSON ``{"error": CODE, "message": TEXT}`` with stable codes, never a stack trace.
- Each request has a time limit (504 ``timeout``); its work stops at the next step of the library loop (a
  query, an item, a concept), releasing the index's lock, and a SQL query is interrupted in DuckDB.

Layout: ``models`` (request/response types), ``errors`` (the JSON error shape), ``middleware`` (auth, body
limit, metrics), ``state`` (served indexes, lock + time limit), ``routers/`` (the endpoints), ``serve``
(``ServeConfig`` and the uvicorn launch); this module only assembles them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

from fastapi import FastAPI

from freqindex import settings

from .errors import install_error_handlers
from .infinigram_api import infinigram_router
from .middleware import BodyLimit, Metrics, install_guard
from .models import ErrorBody
from .preload import Preload, shard_paths
from .routers import ROUTERS
from .state import NAME_RE, ServerState, open_indexes, warm_up

ENV_CONFIG = "FREQINDEX_SERVE_CONFIG"
_ERRORS = {status: {"model": ErrorBody} for status in (400, 401, 404, 413, 415, 422, 504)}


def create_app(
    index_dirs: list[str],
    token: str | None = None,
    timeout_s: float = settings.REQUEST_TIMEOUT_S,
    preload: Callable[[str], None] | None = None,
) -> FastAPI:
    """The app serving ``index_dirs`` (opened here, so a bad index fails before binding); ``token``: the
    bearer token every request but /healthz must send; ``timeout_s``: the per-request time limit;
    ``preload``: when given, the shard files are read into the page cache in the background, and this is
    told what happens (``serve --preload``; /healthz reports the progress)."""
    indexes = open_indexes(index_dirs)
    warm_up(indexes)
    app = FastAPI(
        title="freqindex",
        version="1",
        description="Exact n-gram counts, documents, concept frequencies, nearest neighbours, contamination "
        "checks and read-only SQL over pretraining-corpus indexes.",
        responses=_ERRORS,
    )
    app.state.freqindex = ServerState(indexes, timeout_s)
    app.state.indexes = indexes
    app.state.metrics = Metrics()
    app.state.preload = None
    if preload is not None:
        paths = [p for idx in indexes.values() for p in shard_paths(idx)]
        app.state.preload = Preload(paths, say=preload).start()
    for router in ROUTERS:
        app.include_router(router)
    app.include_router(_infinigram_router(app.state.freqindex))  # infini-gram's API: POST /
    install_guard(app, app.state.metrics, token)
    app.add_middleware(BodyLimit, limit=settings.MAX_BODY_BYTES)
    install_error_handlers(app)
    app.openapi = lambda: _openapi(app, sorted(indexes))
    return app


def _infinigram_router(state: ServerState):
    """infini-gram's public API (freqindex/server/infinigram_api.py) over the same indexes, lock and limit."""
    return infinigram_router(
        state.index, lambda idx, fn: state.run(idx, lambda deadline: fn()), list(state.indexes)
    )


def _openapi(app: FastAPI, names: list[str]) -> dict:
    """The spec, with every request's ``index`` field listing the served names (clients and fuzzers see
    what exists)."""
    if app.openapi_schema is None:
        from fastapi.openapi.utils import get_openapi

        spec = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        for comp in spec.get("components", {}).get("schemas", {}).values():
            prop = comp.get("properties", {}).get("index")
            if prop is not None:
                prop["enum"] = names
        app.openapi_schema = spec
    return app.openapi_schema


def app_from_env() -> FastAPI:
    """uvicorn factory for worker processes: the configuration comes in an environment variable."""
    cfg = json.loads(os.environ[ENV_CONFIG])
    token = Path(cfg["token_file"]).read_text().strip() if cfg.get("token_file") else None
    return create_app(cfg["indexes"], token, cfg.get("timeout_s", settings.REQUEST_TIMEOUT_S))


__all__ = ["create_app", "app_from_env", "NAME_RE", "ENV_CONFIG"]
