"""infini-gram's public HTTP API answered over a freqindex index (the server's ``POST /``, see
freqindex/server/infinigram_api.py for the request and the differences from the public service): counts are
freqindex's exact counts, probabilities and distributions come from the batched suffix-array search
(:mod:`freqindex.query.prob`, equal to the engine), document look-ups from the infini-gram engine."""

from __future__ import annotations

import time

import numpy as np

from freqindex import settings
from freqindex.errors import UsageError
from freqindex.suffix.index import Index


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


def _parse_query(idx: Index, req) -> tuple[list[int] | None, list | None]:
    """(token ids, None) of a plain query, or (None, CNF of token ids) of an AND / OR one; every id checked."""
    qt = req.query_type
    if (req.query is None) == (req.query_ids is None):
        raise UsageError("exactly one of query and query_ids must be present")
    ids = cnf = None
    if req.query is not None and (" AND " in req.query or " OR " in req.query):
        if qt not in ("count", "search_docs"):
            raise UsageError(f"AND / OR queries are for count and search_docs, not {qt}")
        from freqindex.query.count import parse_cnf

        cnf = [[_encode(idx, t) for t in clause] for clause in parse_cnf(req.query)]
        if any(not t for c in cnf for t in c):
            raise UsageError("a term of the AND / OR query is empty after normalization")
    elif req.query is not None:
        ids = _encode(idx, req.query)
    elif req.query_ids and isinstance(req.query_ids[0], list):
        if qt not in ("count", "search_docs"):
            raise UsageError(f"nested query_ids (CNF) are for count and search_docs, not {qt}")
        cnf = req.query_ids
    else:
        ids = list(req.query_ids)
    for term in [term for clause in cnf for term in clause] if cnf is not None else [ids]:
        _check_ids(idx, term)
    return ids, cnf


def _prob(idx: Index, qt: str, ids: list[int]) -> dict:
    """``prob`` (the n-gram probability of the last token after the others) or ``infgram_prob``."""
    from freqindex.query import prob as P

    if not ids:
        raise UsageError("Please provide a non-empty query!")
    q = P.ProbQuery(ids[:-1], ids[-1:])
    if qt == "prob":
        t = P.ngram_probs(idx, [q], len(ids))[0][0]
        return {
            "prompt_cnt": t.prompt_cnt,
            "cont_cnt": t.cont_cnt,
            "prob": -1.0 if t.prob is None else t.prob,
        }
    t = P.infgram_probs(idx, [q])[0][0]
    ctx = ids[:-1]
    return {
        "prompt_cnt": t.prompt_cnt,
        "cont_cnt": t.cont_cnt,
        "prob": t.prob,
        "suffix_len": t.suffix_len,
        "longest_suffix": _decode(idx, ctx[len(ctx) - t.suffix_len :]) if t.suffix_len else "",
    }


def _search_docs(idx: Index, req, ids: list[int] | None, cnf: list | None, window: int) -> dict:
    """``search_docs``: the engine's documents; for a CNF query with freqindex's exact count."""
    eng = idx.engine
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
        res["cnt"], res["approx"] = _exact_count(idx, cnf, window), False  # the documents are the engine's
        needles = [(term, str(d)) for d, clause in enumerate(cnf) for term in clause]
    else:
        if not ids:
            raise UsageError("Please provide a non-empty query!")
        res = _engine(eng.search_docs(input_ids=ids, maxnum=maxnum, max_disp_len=disp))
        needles = [(ids, "0")]
    approx = "Approximately " if res["approx"] else ""
    return {
        "cnt": res["cnt"],
        "approx": res["approx"],
        "idxs": res["idxs"],
        "documents": [_doc(idx, d, needles) for d in res["documents"]],
        "message": "0 occurrences found"
        if res["cnt"] == 0
        else f"{approx}{res['cnt']} occurrences found. Displaying the documents of occurrences #{res['idxs']}",
    }


def answer(idx: Index, req) -> dict:
    """The infini-gram API's answer to one request (``req``: an ``InfinigramRequest`` of
    freqindex/server/infinigram_api.py, or anything with its fields; runs under the index's lock)."""
    from freqindex.query import prob as P

    t0 = time.perf_counter()
    qt = req.query_type
    ids, cnf = _parse_query(idx, req)
    window = req.max_diff_tokens or settings.MAX_DIFF_TOKENS
    if qt == "count":  # freqindex's exact counts (AND as README defines it), never sampled
        out = {"count": _exact_count(idx, cnf if cnf is not None else [[ids]], window), "approx": False}
    elif qt in ("prob", "infgram_prob"):
        out = _prob(idx, qt, ids)
    elif qt in ("ntd", "infgram_ntd"):
        r = P.next_tokens(idx, [ids], req.max_support or P.ENGINE_MAX_SUPPORT, infgram=qt == "infgram_ntd")[0]
        out = _dist(idx, r, qt == "infgram_ntd", ids)
    elif qt == "find":
        seg = P.find_ranges(idx, [ids])[0]
        out = {"cnt": sum(b - a for a, b in seg), "segment_by_shard": seg}
    elif qt == "get_doc_by_rank":
        if req.s is None or req.rank is None:
            raise UsageError("get_doc_by_rank needs s and rank")
        doc = _engine(
            idx.engine.get_doc_by_rank(s=req.s, rank=req.rank, max_disp_len=req.max_disp_len or 1000)
        )
        out = _doc(idx, doc, [(ids, "0")])
    else:
        out = _search_docs(idx, req, ids, cnf, window)
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
