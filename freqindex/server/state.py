"""What the routers share: the served indexes by name, and running library work under an index's lock and
the request's time limit."""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from freqindex.deadline import Deadline
from freqindex.errors import Cancelled, FreqindexError
from freqindex.suffix.index import Index

from .errors import ApiError
from .models import IndexInfo

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


@dataclass(frozen=True)
class ServerState:
    indexes: dict[str, Index]  # name (the directory name) -> the index, opened once at start-up
    timeout_s: float  # per-request time limit

    def index(self, name: str) -> Index:
        """The served index named ``name`` (a table look-up: a name is never joined to a path); 404 else."""
        idx = self.indexes.get(name)
        if idx is None:
            raise ApiError(404, "unknown_index", f"no index named {name!r} (see /v1/indexes)")
        return idx

    async def run(
        self, idx: Index | None, work: Callable[[Deadline], Any], on_timeout: Callable | None = None
    ):
        """Run ``work(deadline)`` in a worker thread, under ``idx``'s lock (engine calls on one index are
        serialized) and the time limit. Past the limit the request is answered 504 and the deadline is
        cancelled, so the library loop stops at its next step and releases the lock; ``on_timeout`` can
        interrupt what has no steps (a DuckDB query). Work that waited for the lock past its deadline never
        starts."""
        deadline = Deadline(self.timeout_s)

        def locked():
            if idx is None:
                return work(deadline)
            with idx._lock:  # noqa: SLF001
                deadline.check()
                return work(deadline)

        try:
            return await asyncio.wait_for(run_in_threadpool(locked), self.timeout_s)
        except (TimeoutError, Cancelled):
            deadline.cancel()
            if on_timeout is not None:
                on_timeout()
            message = f"the request took longer than {self.timeout_s:g} s and was cancelled"
            raise ApiError(504, "timeout", message) from None


def state_of(request: Request) -> ServerState:
    return request.app.state.freqindex


def open_indexes(dirs: list[str]) -> dict[str, Index]:
    """Open every served directory once; names must be valid and distinct."""
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


def warm_up(indexes: dict[str, Index]) -> None:
    """Answer one count on every served index before binding: loading the compiled search kernels and the
    index's tokenizer takes about a second and a half the first time, which a first request must not pay
    against the time limit."""
    from freqindex.commands.query import CountConfig, run_count

    for idx in indexes.values():
        run_count(CountConfig(index_dir=str(idx.path), query=" the "), index=idx)


def index_info(name: str, idx: Index) -> IndexInfo:
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
