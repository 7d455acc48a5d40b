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

import time
from typing import Annotated, Literal

import numpy as np
from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from freqindex import settings
from freqindex.errors import UsageError
from freqindex.suffix.index import Index

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


def _tokens(idx: Index, ids: list[int]) -> list[str]:
    """infini-gram's ``tokens``: a byte as its character, a Hugging Face token as the tokenizer's string."""
    if idx.width == 1:
        return [chr(i) for i in ids]
    tok = getattr(idx.tokenizer, "_tok", None)
    return [(tok.id_to_token(i) if tok is not None else None) or "" for i in ids]


def _decode(idx: Index, ids: list[int]) -> str:
    data = bytes(ids) if idx.width == 1 else np.asarray(ids, dtype=idx.dtype).tobytes()
    return idx.tokenizer.decode(data)


def _encode(idx: Index, text: str) -> list[int]:
    """A query string in the index's token space (empty stays empty: the whole corpus for count / ntd)."""
    if text == "":
        return []
    norm = idx.normalizer.query(text)
    data = idx.tokenizer.encode(norm) if norm else b""
    return list(data) if idx.width == 1 else np.frombuffer(data, dtype=idx.dtype).tolist()


def _check_ids(idx: Index, ids: list[int]) -> None:
    from freqindex.query.prob import vocab_size

    vs = vocab_size(idx)
    for i in ids:
        if i >= vs:
            raise UsageError(f"token id {i} in query_ids is outside the vocabulary (0..{vs - 1})")


def _spans(idx: Index, token_ids: list[int], needles: list[tuple[list[int], str]]) -> list[list]:
    """infini-gram's ``spans``: the document split into pieces, each ``[text, label]`` where ``label`` is the
    index (as a string) of the clause the piece matches, or null."""
    pieces: list[tuple[list[int], str | None]] = [(token_ids, None)]
    for needle, label in needles:
        if not needle:
            continue
        out = []
        for hay, lab in pieces:
            if lab is not None:
                out.append((hay, lab))
                continue
            n = len(needle)
            while True:
                pos = next((p for p in range(len(hay) - n + 1) if hay[p : p + n] == needle), -1)
                if pos < 0:
                    break
                if pos:
                    out.append((hay[:pos], None))
                out.append((hay[pos : pos + n], label))
                hay = hay[pos + n :]
            if hay:
                out.append((hay, None))
        pieces = out
    return [[_decode(idx, ids), lab] for ids, lab in pieces]


def _engine(res: dict) -> dict:
    if "error" in res:
        raise UsageError(res["error"])
    return res


def _dist(idx: Index, r, with_suffix: bool, ids: list[int]) -> dict:
    items = sorted(r.counts.items())
    names = _tokens(idx, [t for t, _ in items])
    out = {
        "prompt_cnt": r.prompt_cnt,
        "result_by_token_id": {
            int(t): {"cont_cnt": c, "prob": c / r.prompt_cnt, "token": name.replace("Ġ", " ")}
            for (t, c), name in zip(items, names)
        },
        "approx": r.approx,
    }
    if with_suffix:
        out["suffix_len"] = r.suffix_len
        out["longest_suffix"] = _decode(idx, ids[len(ids) - r.suffix_len :]) if r.suffix_len else ""
    return out


ENGINE_MAX_CLAUSE_FREQ = 50_000  # the engine's default: which documents search_docs shows for AND queries


def _exact_count(idx: Index, cnf: list[list[list[int]]], window: int) -> int:
    """The exact count of a CNF query of token ids (an empty query counts every token, as the engine does)."""
    from freqindex.query.count import count_encoded

    if len(cnf) == 1 and len(cnf[0]) == 1 and not cnf[0][0]:
        return int(idx.engine.count(input_ids=[])["count"])
    clauses = [[np.asarray(t, dtype=idx.dtype).tobytes() for t in clause] for clause in cnf]
    return count_encoded(idx, clauses, "occurrences", window)


def answer(idx: Index, req: InfinigramRequest) -> dict:
    """The infini-gram API's answer to one request (library calls only; runs under the index's lock)."""
    from freqindex.query import prob as P

    t0 = time.perf_counter()
    qt = req.query_type
    if (req.query is None) == (req.query_ids is None):
        raise UsageError("exactly one of query and query_ids must be present")
    cnf = None
    if req.query is not None:
        if " AND " in req.query or " OR " in req.query:
            if qt not in ("count", "search_docs"):
                raise UsageError(f"AND / OR queries are for count and search_docs, not {qt}")
            from freqindex.query.count import parse_cnf

            cnf = [[_encode(idx, t) for t in clause] for clause in parse_cnf(req.query)]
            if any(not t for c in cnf for t in c):
                raise UsageError("a term of the AND / OR query is empty after normalization")
            ids = None
        else:
            ids = _encode(idx, req.query)
    elif req.query_ids and isinstance(req.query_ids[0], list):
        if qt not in ("count", "search_docs"):
            raise UsageError(f"nested query_ids (CNF) are for count and search_docs, not {qt}")
        cnf = req.query_ids
        ids = None
    else:
        ids = list(req.query_ids)
    if cnf is not None:
        for clause in cnf:
            for term in clause:
                _check_ids(idx, term)
    else:
        _check_ids(idx, ids)
    eng = idx.engine
    window = req.max_diff_tokens or settings.MAX_DIFF_TOKENS
    if qt == "count":  # freqindex's exact counts (AND as README defines it), never sampled
        out = {"count": _exact_count(idx, cnf if cnf is not None else [[ids]], window), "approx": False}
    elif qt in ("prob", "infgram_prob"):
        if not ids:
            raise UsageError("Please provide a non-empty query!")
        q = P.ProbQuery(ids[:-1], ids[-1:])
        if qt == "prob":
            t = P.ngram_probs(idx, [q], len(ids))[0][0]
            out = {
                "prompt_cnt": t.prompt_cnt,
                "cont_cnt": t.cont_cnt,
                "prob": -1.0 if t.prob is None else t.prob,
            }
        else:
            t = P.infgram_probs(idx, [q])[0][0]
            ctx = ids[:-1]
            out = {
                "prompt_cnt": t.prompt_cnt,
                "cont_cnt": t.cont_cnt,
                "prob": t.prob,
                "suffix_len": t.suffix_len,
                "longest_suffix": _decode(idx, ctx[len(ctx) - t.suffix_len :]) if t.suffix_len else "",
            }
    elif qt in ("ntd", "infgram_ntd"):
        r = P.next_tokens(idx, [ids], req.max_support or P.ENGINE_MAX_SUPPORT, infgram=qt == "infgram_ntd")[0]
        out = _dist(idx, r, qt == "infgram_ntd", ids)
    elif qt == "find":
        seg = P.find_ranges(idx, [ids])[0]
        out = {"cnt": sum(b - a for a, b in seg), "segment_by_shard": seg}
    elif qt == "get_doc_by_rank":
        if req.s is None or req.rank is None:
            raise UsageError("get_doc_by_rank needs s and rank")
        doc = _engine(eng.get_doc_by_rank(s=req.s, rank=req.rank, max_disp_len=req.max_disp_len or 1000))
        out = _doc(idx, doc, [(ids, "0")])
    else:  # search_docs
        maxnum, disp = req.maxnum or 1, req.max_disp_len or 1000
        if cnf is not None:
            res = _engine(
                eng.search_docs_cnf(
                    cnf=cnf,
                    maxnum=maxnum,
                    max_disp_len=disp,
                    max_clause_freq=req.max_clause_freq or ENGINE_MAX_CLAUSE_FREQ,
                    max_diff_tokens=window,
                )
            )
            res["cnt"], res["approx"] = (
                _exact_count(idx, cnf, window),
                False,
            )  # the documents are the engine's
            needles = [(term, str(d)) for d, clause in enumerate(cnf) for term in clause]
        else:
            if not ids:
                raise UsageError("Please provide a non-empty query!")
            res = _engine(eng.search_docs(input_ids=ids, maxnum=maxnum, max_disp_len=disp))
            needles = [(ids, "0")]
        approx = "Approximately " if res["approx"] else ""
        out = {
            "cnt": res["cnt"],
            "approx": res["approx"],
            "idxs": res["idxs"],
            "documents": [_doc(idx, d, needles) for d in res["documents"]],
            "message": "0 occurrences found"
            if res["cnt"] == 0
            else f"{approx}{res['cnt']} occurrences found. Displaying the documents of occurrences #{res['idxs']}",
        }
    out["latency"] = (time.perf_counter() - t0) * 1000
    if qt not in ("find", "get_doc_by_rank"):
        if cnf is not None:
            out["token_ids"] = cnf
            out["tokens"] = [[_tokens(idx, term) for term in clause] for clause in cnf]
        else:
            out["token_ids"] = ids
            out["tokens"] = _tokens(idx, ids)
    return out


def _doc(idx: Index, d: dict, needles) -> dict:
    keys = ("doc_ix", "doc_len", "disp_len", "needle_offset", "metadata", "token_ids")
    out = {k: d[k] for k in keys if k in d}
    out["token_ids"] = list(out.get("token_ids", []))
    out["spans"] = _spans(idx, out["token_ids"], needles)
    return out


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
