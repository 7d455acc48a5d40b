"""infini-gram's public API (``POST /``) served by `freqindex serve`: requests shaped as in infini-gram's
documented examples (count, prob, ntd, infgram_prob, infgram_ntd, search_docs, find, get_doc_by_rank), answers
in the documented shapes and equal to the infini-gram engine's on the same index; errors, auth and limits as
the rest of the server."""

from __future__ import annotations

import json

import httpx
import pytest

from freqindex.build import build_index, run_in_process
from freqindex.config import BuildConfig
from freqindex.suffix.index import Index
from tests.conftest import GSM8K_TRAIN, WIKITEXT
from tests.reference import read_jsonl_docs, read_lines_docs

pytest.importorskip("fastapi")
from tests.server.test_server import Server  # noqa: E402

BASE = {"latency", "token_ids", "tokens"}


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("igapi")
    texts = read_lines_docs(WIKITEXT)[:400] + read_jsonl_docs(GSM8K_TRAIN, "question")[:400]
    texts += ["Natural language processing is a field of study.", "I love natural language processing."]
    (root / "c.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    build_index(
        BuildConfig(inputs=(str(root / "c.jsonl"),), output=str(root / "corpus"), shards=2), run_in_process
    )
    s = Server(root / "corpus")
    yield s, Index.open(root / "corpus")
    s.stop()


def _post(s, body):
    return httpx.post(s.url + "/", json=body, timeout=60)


def _ids(idx: Index, q: str) -> list[int]:
    return list(idx.tokenizer.encode(idx.normalizer.query(q)))


def test_documented_examples_equal_the_engine(served):
    s, idx = served
    eng = idx.engine
    assert httpx.get(s.url + "/").json() == ["corpus"]
    # 1. count (the documentation's example request, and a CNF query)
    for q in ("University of Washington", "natural language processing", "how many"):
        r = _post(s, {"index": "corpus", "query_type": "count", "query": q}).json()
        assert set(r) == BASE | {"count", "approx"}
        ids = _ids(idx, q)
        assert r["token_ids"] == ids and r["tokens"] == [chr(i) for i in ids]
        assert (r["count"], r["approx"]) == (eng.count(input_ids=ids)["count"], False)
    r = _post(s, {"index": "corpus", "query_type": "count", "query": "how many AND eggs"}).json()
    cnf = [[_ids(idx, "how many")], [_ids(idx, "eggs")]]
    # AND is freqindex's exact count (README), not the engine's sampled count_cnf; it is checked against a
    # brute force in tests/query/test_counts_real.py
    from freqindex.query.count import count

    assert r["token_ids"] == cnf and (r["count"], r["approx"]) == (
        count(idx, "how many AND eggs").count,
        False,
    )
    assert (
        _post(s, {"index": "corpus", "query_type": "count", "query_ids": []}).json()["count"]
        == eng.count(input_ids=[])["count"]
    )
    # 2. prob, 4. infgram_prob
    for q in ("natural language processing", "I love natural language processing", "how many eggs"):
        ids = _ids(idx, q)
        r = _post(s, {"index": "corpus", "query_type": "prob", "query": q}).json()
        e = eng.prob(prompt_ids=ids[:-1], cont_id=ids[-1])
        assert set(r) == BASE | {"prompt_cnt", "cont_cnt", "prob"}
        assert (r["prompt_cnt"], r["cont_cnt"], r["prob"]) == (e["prompt_cnt"], e["cont_cnt"], e["prob"])
        r = _post(s, {"index": "corpus", "query_type": "infgram_prob", "query_ids": ids}).json()
        e = eng.infgram_prob(prompt_ids=ids[:-1], cont_id=ids[-1])
        assert set(r) == BASE | {"prompt_cnt", "cont_cnt", "prob", "suffix_len", "longest_suffix"}
        assert [r[k] for k in ("prompt_cnt", "cont_cnt", "prob", "suffix_len")] == [
            e[k] for k in ("prompt_cnt", "cont_cnt", "prob", "suffix_len")
        ]
        k = e["suffix_len"]
        assert r["longest_suffix"] == bytes(ids[-1 - k : -1]).decode()
    r = _post(s, {"index": "corpus", "query_type": "prob", "query": "zqxj zqxj"}).json()
    assert r["prob"] == -1.0 and r["prompt_cnt"] == 0  # the (n-1)-gram never occurs
    # 3. ntd, 5. infgram_ntd (subsampled above max_support, as the engine)
    for q, ms in (("natural language", None), ("how many", 7), ("I love natural language", None)):
        ids = _ids(idx, q)
        body = {"index": "corpus", "query_type": "ntd", "query": q} | ({"max_support": ms} if ms else {})
        r = _post(s, body).json()
        e = eng.ntd(prompt_ids=ids, max_support=ms or 1000)
        assert set(r) == BASE | {"prompt_cnt", "result_by_token_id", "approx"}
        assert (r["prompt_cnt"], r["approx"]) == (e["prompt_cnt"], e["approx"])
        assert {int(t): v["cont_cnt"] for t, v in r["result_by_token_id"].items()} == {
            t: v["cont_cnt"] for t, v in e["result_by_token_id"].items()
        }
        for v in r["result_by_token_id"].values():
            assert set(v) == {"cont_cnt", "prob", "token"} and v["prob"] == v["cont_cnt"] / r["prompt_cnt"]
        r = _post(s, body | {"query_type": "infgram_ntd", "query": "zqxj " + q}).json()
        e = eng.infgram_ntd(prompt_ids=_ids(idx, "zqxj " + q), max_support=ms or 1000)
        assert (r["prompt_cnt"], r["suffix_len"], r["approx"]) == (
            e["prompt_cnt"],
            e["suffix_len"],
            e["approx"],
        )
        assert {int(t): v["cont_cnt"] for t, v in r["result_by_token_id"].items()} == {
            t: v["cont_cnt"] for t, v in e["result_by_token_id"].items()
        }
    # 6. search_docs; find and get_doc_by_rank
    q = "natural language processing"
    ids = _ids(idx, q)
    r = _post(
        s, {"index": "corpus", "query_type": "search_docs", "query": q, "maxnum": 3, "max_disp_len": 100}
    ).json()
    assert set(r) == BASE | {"cnt", "approx", "idxs", "documents", "message"}
    assert r["cnt"] == eng.count(input_ids=ids)["count"] >= 2 and len(r["documents"]) == 3
    for d in r["documents"]:
        assert {"doc_ix", "doc_len", "disp_len", "token_ids", "spans"} <= set(d)
        assert "".join(t for t, _ in d["spans"]) == bytes(d["token_ids"]).decode()
        assert [t for t, lab in d["spans"] if lab == "0"] == [idx.normalizer.query(q)]
        assert (
            d["token_ids"]
            == eng.get_doc_by_ix(doc_ix=d["doc_ix"], max_disp_len=10**6)["token_ids"][: d["disp_len"]]
        )
    f = _post(s, {"index": "corpus", "query_type": "find", "query": q}).json()
    e = eng.find(input_ids=ids)
    assert f["cnt"] == e["cnt"] and f["segment_by_shard"] == [list(x) for x in e["segment_by_shard"]]
    sh = next(k for k, (a, b) in enumerate(f["segment_by_shard"]) if b > a)
    rank = f["segment_by_shard"][sh][0]
    g = _post(
        s,
        {
            "index": "corpus",
            "query_type": "get_doc_by_rank",
            "query": q,
            "s": sh,
            "rank": rank,
            "max_disp_len": 200,
        },
    ).json()
    e = eng.get_doc_by_rank(s=sh, rank=rank, max_disp_len=200)
    assert [g[k] for k in ("doc_ix", "doc_len", "disp_len", "token_ids")] == [
        e[k] for k in ("doc_ix", "doc_len", "disp_len", "token_ids")
    ]
    assert any(lab == "0" for _, lab in g["spans"])


def test_errors_auth_and_limits(served, tmp_path):
    s, idx = served
    cases = [
        ({"index": "corpus", "query_type": "prob", "query": ""}, 400),
        ({"index": "corpus", "query_type": "prob", "query_ids": [300]}, 400),  # outside the vocabulary
        ({"index": "corpus", "query_type": "ntd", "query": "a", "query_ids": [97]}, 400),
        ({"index": "corpus", "query_type": "infgram_prob", "query": "a AND b"}, 400),
        ({"index": "corpus", "query_type": "get_doc_by_rank", "query": "a", "s": 9, "rank": 0}, 400),
        ({"index": "corpus", "query_type": "ntd", "query": "a", "max_support": 5000}, 422),
        ({"index": "corpus", "query_type": "nonsense", "query": "a"}, 422),
        ({"index": "missing", "query_type": "count", "query": "a"}, 404),
    ]
    for body, status in cases:
        r = _post(s, body)
        assert r.status_code == status, (body, r.text)
        assert set(r.json()) == {"error", "message"}
    r = httpx.post(s.url + "/", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["error"] == "malformed_json"
    r = httpx.post(
        s.url + "/", content=b"x" * (2 * 1024 * 1024), headers={"content-type": "application/json"}
    )
    assert r.status_code == 413
    # the same bearer-token rule as every other endpoint
    from fastapi.testclient import TestClient

    from freqindex.server.app import create_app

    client = TestClient(create_app([str(idx.path)], token="t" * 20))
    body = {"index": "corpus", "query_type": "count", "query": "how many"}
    assert client.post("/", json=body).status_code == 401
    ok = client.post("/", json=body, headers={"Authorization": "Bearer " + "t" * 20})
    assert ok.status_code == 200 and ok.json()["count"] > 0
