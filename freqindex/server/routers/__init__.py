"""The HTTP API's routers, one module per group of endpoints; ``ROUTERS`` is what the app factory mounts.
Each endpoint validates its request model, builds the command's config and calls the same library run
function as the CLI, through ``ServerState.run`` (index lock, time limit)."""

from __future__ import annotations

from . import evals, queries, service, sql

ROUTERS = (service.router, queries.router, evals.router, sql.router)
